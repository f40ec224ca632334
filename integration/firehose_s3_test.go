package integration

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnel/runnel/internal/delivery/s3/s3test"
)

// readBucket returns every object under prefix in the bucket, decompressed
// by its extension, keyed by key.
func readBucket(t *testing.T, c *s3.Client, bucket, prefix string) []object {
	t.Helper()
	ctx := context.Background()
	var objs []object
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(*o.Key, ".gz") {
				b = decompress(t, types.CompressionFormatGzip, b)
			}
			objs = append(objs, object{key: *o.Key, body: b})
		}
	}
	return objs
}

// TestFirehoseS3 runs runnel with a configuration file that maps bucket
// lake to a versitygw's bucket datalake and declares a delivery stream;
// a second delivery stream is created with the API. Records put to both
// are read back with the S3 client. Then the store goes down for 30 s:
// delivery reports the failure, waits, and delivers every record, in
// order, once it is back.
func TestFirehoseS3(t *testing.T) {
	store := s3test.Start(t)
	store.CreateBucket("datalake")
	conf := filepath.Join(t.TempDir(), "runnel.yaml")
	yaml := fmt.Sprintf(`connections:
  versity:
    s3:
      endpoint: %s
      access_key_id: %s
      secret_access_key: %s
      path_style: true
buckets:
  lake:
    connection: versity
    name: datalake
streams:
  - name: clicks
    shards: 2
delivery_streams:
  - name: declared
    bucket: lake
    prefix: declared/
    buffer_interval_seconds: 0
    append_newline: true
  - name: clicks-to-lake
    source_stream: clicks
    bucket: lake
    prefix: clicks/
    compression: GZIP
    buffer_interval_seconds: 1
    append_newline: true
`, store.Endpoint(), s3test.AccessKey, s3test.SecretKey)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, t.TempDir(), "--config", conf, "--delivery-retry-max", "2s")
	fh := srv.firehose()
	ctx := context.Background()
	_, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String("api"),
		ExtendedS3DestinationConfiguration: s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) {
			d.Prefix = aws.String("api/")
			d.CompressionFormat = types.CompressionFormatGzip
			d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(1), SizeInMBs: aws.Int32(1)}
			d.ProcessingConfiguration = &types.ProcessingConfiguration{Enabled: aws.Bool(true),
				Processors: []types.Processor{{Type: types.ProcessorTypeAppendDelimiterToRecord}}}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("nowhere"), ExtendedS3DestinationConfiguration: s3Dest("unmapped")})
	wantAPIError(t, err, "InvalidArgumentException", "Bucket unmapped is not configured on this server")
	waitFor(t, 20*time.Second, "ACTIVE", func() bool {
		for _, n := range []string{"api", "declared"} {
			d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String(n)})
			if err != nil || d.DeliveryStreamDescription.DeliveryStreamStatus != types.DeliveryStreamStatusActive {
				return false
			}
		}
		return true
	})

	want := map[string][]string{}
	next := 0
	put := func(stream string, n int) {
		t.Helper()
		recs := make([]types.Record, n)
		for i := range recs {
			s := fmt.Sprintf("%s-%06d", stream, next)
			next++
			want[stream] = append(want[stream], s)
			recs[i] = types.Record{Data: []byte(s)}
		}
		out, err := fh.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String(stream), Records: recs})
		if err != nil || aws.ToInt32(out.FailedPutCount) != 0 {
			t.Fatalf("put: %v %v", out, err)
		}
	}
	c := store.Client()
	check := func(what string) {
		t.Helper()
		for stream, prefix := range map[string]string{"api": "api/", "declared": "declared/"} {
			var objs []object
			waitFor(t, 60*time.Second, what+": "+stream+" delivered", func() bool {
				objs = readBucket(t, c, "datalake", prefix)
				n := 0
				for _, o := range objs {
					n += len(lines(o.body))
				}
				return n >= len(want[stream])
			})
			var got []string
			for _, o := range objs {
				got = append(got, lines(o.body)...)
			}
			if !sameMultiset(got, want[stream]) {
				t.Fatalf("%s: %s delivered %d records, want %d each once", what, stream, len(got), len(want[stream]))
			}
			if inOrder(objs) != strings.Join(want[stream], "\n")+"\n" {
				t.Fatalf("%s: %s: objects are not consecutive runs in put order", what, stream)
			}
		}
	}
	put("api", 500)
	put("declared", 100)
	check("store up")

	// The declared stream exists, and its declared delivery stream reads it.
	kc := srv.client()
	waitActive(t, kc, "clicks")
	var clicks []string
	entries := make([]kinesistypes.PutRecordsRequestEntry, 50)
	for i := range entries {
		clicks = append(clicks, fmt.Sprintf("click-%03d", i))
		entries[i] = kinesistypes.PutRecordsRequestEntry{Data: []byte(clicks[i]), PartitionKey: aws.String(clicks[i])}
	}
	if _, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "clicks delivered", func() bool {
		var got []string
		for _, o := range readBucket(t, c, "datalake", "clicks/") {
			got = append(got, lines(o.body)...)
		}
		return sameMultiset(got, clicks)
	})

	store.Stop()
	put("api", 300)
	put("declared", 50)
	waitFor(t, 30*time.Second, "failure reported", func() bool {
		d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("api")})
		return err == nil && d.DeliveryStreamDescription.FailureDescription != nil &&
			strings.Contains(aws.ToString(d.DeliveryStreamDescription.FailureDescription.Details), "arn:aws:s3:::lake")
	})
	downSince := time.Now()
	for time.Since(downSince) < 30*time.Second {
		put("api", 100)
		time.Sleep(3 * time.Second)
	}
	store.Restart()
	check("store back after 30 s")
	waitFor(t, 30*time.Second, "failure cleared", func() bool {
		d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("api")})
		return err == nil && d.DeliveryStreamDescription.FailureDescription == nil
	})
	d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("api")})
	if err != nil {
		t.Fatal(err)
	}
	e := d.DeliveryStreamDescription.Destinations[0].ExtendedS3DestinationDescription
	if aws.ToString(e.BucketARN) != "arn:aws:s3:::lake" {
		t.Fatalf("the description shows %s, not the bucket ARN the client gave", aws.ToString(e.BucketARN))
	}
}
