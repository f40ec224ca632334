package config

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/delivery/file"
	"github.com/runnel/runnel/internal/delivery/s3"
)

const sample = `
connections:
  minio:
    s3:
      endpoint: http://127.0.0.1:9000
      access_key_id: ak
      secret_access_key: sk
      path_style: true
  archive:
    directory: /srv/archive
buckets:
  lake:
    connection: minio
    name: datalake
  logs:
    connection: archive
streams:
  - name: orders
    shards: 2
delivery_streams:
  - name: orders-to-lake
    source_stream: orders
    bucket: lake
    compression: GZIP
    buffer_interval_seconds: 0
`

func TestParseAndResolve(t *testing.T) {
	f, err := Parse([]byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Streams) != 1 || len(f.DeliveryStreams) != 1 || *f.DeliveryStreams[0].BufferIntervalSeconds != 0 {
		t.Fatalf("parsed %+v", f)
	}
	ctx := context.Background()
	r := NewResolver(f, "")
	d, err := r.Resolve(ctx, "arn:aws:s3:::lake")
	if b, ok := d.(*s3.Bucket); err != nil || !ok || b.Name() != "datalake" {
		t.Fatalf("lake: %T %v", d, err)
	}
	d, err = r.Resolve(ctx, "arn:aws:s3:::logs")
	if dir, ok := d.(*file.Dir); err != nil || !ok || dir.Root() != filepath.FromSlash("/srv/archive/logs") {
		t.Fatalf("logs: %T %v", d, err)
	}
	_, err = r.Resolve(ctx, "arn:aws:s3:::other")
	var de *delivery.Error
	if !errors.As(err, &de) || de.Code != delivery.CodeInvalidArgument || !strings.Contains(de.Message, "--buckets-dir") {
		t.Fatalf("unlisted bucket: %v", err)
	}
	d, err = NewResolver(f, "/data").Resolve(ctx, "arn:aws:s3:::other")
	if dir, ok := d.(*file.Dir); err != nil || !ok || dir.Root() != filepath.FromSlash("/data/other") {
		t.Fatalf("fallback: %T %v", d, err)
	}
	in := f.DeliveryStreams[0].input("us-east-1", "000000000000")
	if *in.DeliveryStreamType != delivery.TypeKinesis || *in.KinesisStreamSourceConfiguration.KinesisStreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/orders" ||
		*in.ExtendedS3DestinationConfiguration.BufferingHints.IntervalInSeconds != 0 || in.ExtendedS3DestinationConfiguration.BufferingHints.SizeInMBs != nil {
		t.Fatalf("input %+v", in)
	}
}

func TestParseErrors(t *testing.T) {
	for name, tc := range map[string]struct{ yaml, want string }{
		"unknown key":        {"connection:\n  x: {}\n", "unknown field"},
		"both kinds":         {"connections:\n  x:\n    directory: /a\n    s3: {endpoint: http://h}\n", "not both"},
		"neither kind":       {"connections:\n  x: {}\n", "give s3"},
		"half credentials":   {"connections:\n  x:\n    s3: {access_key_id: a}\n", "both access_key_id"},
		"no such connection": {"buckets:\n  b: {connection: nope}\n", `no connection named "nope"`},
		"stream twice":       {"streams:\n  - {name: a, shards: 1}\n  - {name: a, shards: 1}\n", "declared twice"},
		"no shards":          {"streams:\n  - {name: a}\n", "shards >= 1"},
		"no bucket":          {"delivery_streams:\n  - {name: d}\n", "needs a name and a bucket"},
		"not yaml":           {"connections: [\n", "config:"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
