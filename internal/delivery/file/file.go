// Package file is the local-files destination of delivery streams, a
// runnel extension: a directory stands for a bucket, and an object key is
// a path below it ("2026/12/06/05/orders-1-2026-12-06-05-31-02-<id>.gz").
// Each object is written to a temporary file in its final directory,
// synced, and renamed over its name, so a reader sees either no object or
// a whole one, and a batch written again after a crash replaces its file.
package file

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/runnel/runnel/internal/delivery"
)

// Dir is one directory used as a bucket.
type Dir struct {
	root string
}

var _ delivery.Destination = (*Dir)(nil)

// NewDir returns the destination that writes below root, which is created
// on first delivery when missing.
func NewDir(root string) *Dir { return &Dir{root: root} }

// Root returns the directory.
func (d *Dir) Root() string { return d.root }

// path maps an object key to a file below the root, refusing keys that
// would leave it.
func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.ContainsRune(key, 0) {
		return "", fmt.Errorf("file: object key %q cannot name a file", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("file: object key %q has an empty, . or .. segment", key)
		}
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Deliver writes obj.Body to the file its key names, atomically.
func (d *Dir) Deliver(ctx context.Context, obj delivery.Object) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	path, err := d.path(obj.Key)
	if err != nil {
		return delivery.Permanent(err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return classify(err)
	}
	var suffix [6]byte
	_, _ = rand.Read(suffix[:])
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp-"+hex.EncodeToString(suffix[:]))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return classify(err)
	}
	_, err = f.Write(obj.Body)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return classify(err)
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return classify(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return classify(err)
	}
	return nil
}

// classify marks errors that retrying cannot cure as permanent: a
// permission refused or a path that is a file where a directory must be.
// A full disk is not permanent: space may come back.
func classify(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, os.ErrExist) {
		return delivery.Permanent(err)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "not a directory") {
		return delivery.Permanent(err)
	}
	return err
}

// Buckets maps every bucket ARN arn:aws:s3:::<name> to the directory
// <root>/<name>: the server's --buckets-dir.
type Buckets struct {
	root string
}

var _ delivery.Resolver = (*Buckets)(nil)

// NewBuckets returns the resolver of buckets below root.
func NewBuckets(root string) *Buckets { return &Buckets{root: root} }

// Resolve returns the directory of the bucket arn names.
func (b *Buckets) Resolve(_ context.Context, arn string) (delivery.Destination, error) {
	name, ok := strings.CutPrefix(arn, "arn:aws:s3:::")
	if !ok || !validBucket(name) {
		return nil, &delivery.Error{Code: delivery.CodeInvalidArgument,
			Message: fmt.Sprintf("BucketARN %s does not name a bucket of 3 to 63 characters of a-z, 0-9, '.' and '-'.", arn)}
	}
	return NewDir(filepath.Join(b.root, name)), nil
}

// validBucket applies S3's bucket naming rules that matter for a directory
// name: 3 to 63 of [a-z0-9.-], starting and ending with a letter or digit.
func validBucket(name string) bool {
	if len(name) < 3 || len(name) > 63 || strings.Contains(name, "..") {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		edge := i == 0 || i == len(name)-1
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || !edge && (c == '.' || c == '-')) {
			return false
		}
	}
	return true
}
