package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// Object is one object to deliver: its key (evaluated prefix and name)
// and its bytes. The destination may not keep Body after Deliver returns.
type Object struct {
	Key  string
	Body []byte
	// Records is how many records Body holds, for the destination's log.
	Records int
}

// Destination stores objects. Deliver stores the whole object under its
// key, replacing any object of the same key, or fails; a reader never
// sees part of an object. A failure that retrying cannot cure is wrapped
// with Permanent. Deliver is called by one goroutine per source shard and
// must be safe for concurrent use.
type Destination interface {
	Deliver(ctx context.Context, obj Object) error
}

// Resolver finds the destination a bucket ARN names ("arn:aws:s3:::name"),
// from the server's configuration. It returns an error the client sees
// (*Error) when no destination is configured for the bucket.
type Resolver interface {
	Resolve(ctx context.Context, bucketARN string) (Destination, error)
}

// objectName returns the name part of an object key (Firehose's suffix):
// <stream>-<version>-<yyyy>-<MM>-<dd>-<HH>-<mm>-<ss>-<unique><ext>, where
// at is the arrival of the object's oldest record (in the destination's
// time zone) and unique is derived
// from the position of the object's records (see uniqueID).
func objectName(stream string, version int64, at time.Time, unique, ext string) string {
	return fmt.Sprintf("%s-%d-%04d-%02d-%02d-%02d-%02d-%02d-%s%s", stream, version,
		at.Year(), at.Month(), at.Day(), at.Hour(), at.Minute(), at.Second(), unique, ext)
}

// uniqueID is a UUID-shaped name for a batch of records: a hash of the
// source stream's id, the shard, the first and last sequence numbers, and
// the part (partition) of the batch. The same records always get the same
// id, so a batch written again after a crash replaces its object instead
// of adding a second one.
func uniqueID(streamID, shard, first, last, part string) string {
	h := sha256.Sum256([]byte(streamID + "\x00" + shard + "\x00" + first + "\x00" + last + "\x00" + part))
	s := hex.EncodeToString(h[:16])
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// randomString is the n-th !{firehose:random-string} of a batch: 11
// characters derived from the batch's id, so that a rewritten batch gets
// the same key.
func randomString(unique string, n int) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", unique, n)))
	return hex.EncodeToString(h[:6])[:11]
}
