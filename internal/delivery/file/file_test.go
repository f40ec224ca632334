package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/internal/delivery"
)

func TestDeliverReplacesAtomically(t *testing.T) {
	ctx := context.Background()
	d := NewDir(t.TempDir())
	key := "2026/12/06/05/orders-1-2026-12-06-05-31-02-id.gz"
	for _, body := range []string{"first", "second"} {
		if err := d.Deliver(ctx, delivery.Object{Key: key, Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(d.Root(), filepath.FromSlash(key)))
		if err != nil || string(got) != body {
			t.Fatalf("read %q, %v; want %q", got, err, body)
		}
	}
	entries, err := os.ReadDir(filepath.Join(d.Root(), "2026/12/06/05"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("directory holds %v (%v), want only the object", entries, err)
	}
}

func TestDeliverRefusesEscapingKeys(t *testing.T) {
	d := NewDir(t.TempDir())
	for _, key := range []string{"", "/etc/passwd", "a/../../x", "a//b", "a/./b", "dir/"} {
		err := d.Deliver(context.Background(), delivery.Object{Key: key, Body: []byte("x")})
		if err == nil || !delivery.IsPermanent(err) {
			t.Errorf("key %q: %v, want a permanent error", key, err)
		}
	}
}

func TestDeliverIntoUnwritableDirectoryIsPermanent(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes anywhere")
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(root, 0o700) })
	err := NewDir(root).Deliver(context.Background(), delivery.Object{Key: "a/b", Body: []byte("x")})
	if !delivery.IsPermanent(err) {
		t.Fatalf("got %v, want a permanent error", err)
	}
}

func TestBuckets(t *testing.T) {
	b := NewBuckets("/data")
	d, err := b.Resolve(context.Background(), "arn:aws:s3:::my-bucket")
	if err != nil || d.(*Dir).Root() != "/data/my-bucket" {
		t.Fatalf("got %v, %v", d, err)
	}
	for _, arn := range []string{"arn:aws:s3:::ab", "arn:aws:s3:::Upper", "arn:aws:s3:::-x-", "arn:aws:s3:::a..b", "arn:aws:kinesis:::abc", "arn:aws:s3:::../etc"} {
		if _, err := b.Resolve(context.Background(), arn); err == nil {
			t.Errorf("%s resolved", arn)
		}
	}
}
