package integration

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/klauspost/compress/s2"

	"github.com/runnel/runnel/internal/sdkclient"
	"github.com/runnel/runnel/kpl"
	"github.com/runnel/runnel/runneltest"
)

func (s *server) firehose() *firehose.Client {
	return firehose.New(firehose.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:   sdkclient.Guard(awshttp.NewBuildableClient()),
	})
}

// wantAPIError checks that err is the API error code with a message
// containing msg.
func wantAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want %s", err, code)
	}
	if ae.ErrorCode() != code || !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("got %s: %q, want %s containing %q", ae.ErrorCode(), ae.ErrorMessage(), code, msg)
	}
}

func s3Dest(bucket string, tune ...func(*types.ExtendedS3DestinationConfiguration)) *types.ExtendedS3DestinationConfiguration {
	d := &types.ExtendedS3DestinationConfiguration{
		BucketARN: aws.String("arn:aws:s3:::" + bucket),
		RoleARN:   aws.String("arn:aws:iam::000000000000:role/firehose"),
	}
	for _, f := range tune {
		f(d)
	}
	return d
}

func TestFirehoseAPI(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithBucketsDir(t.TempDir()))
	fh := srv.FirehoseClient(t)
	ctx := context.Background()

	out, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName:                 aws.String("orders"),
		ExtendedS3DestinationConfiguration: s3Dest("lake"),
		Tags:                               []types.Tag{{Key: aws.String("team"), Value: aws.String("data")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToString(out.DeliveryStreamARN); got != "arn:aws:firehose:us-east-1:000000000000:deliverystream/orders" {
		t.Fatalf("ARN %s", got)
	}
	_, err = fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String("orders"), ExtendedS3DestinationConfiguration: s3Dest("lake")})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("second create: %v, want ResourceInUseException", err)
	}

	d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	desc := d.DeliveryStreamDescription
	if desc.DeliveryStreamStatus != types.DeliveryStreamStatusActive || desc.DeliveryStreamType != types.DeliveryStreamTypeDirectPut ||
		aws.ToString(desc.VersionId) != "1" || len(desc.Destinations) != 1 || aws.ToString(desc.Destinations[0].DestinationId) != "destinationId-000000000001" {
		t.Fatalf("description %+v", desc)
	}
	e := desc.Destinations[0].ExtendedS3DestinationDescription
	if aws.ToInt32(e.BufferingHints.SizeInMBs) != 5 || aws.ToInt32(e.BufferingHints.IntervalInSeconds) != 300 ||
		e.CompressionFormat != types.CompressionFormatUncompressed || e.EncryptionConfiguration.NoEncryptionConfig != types.NoEncryptionConfigNoEncryption {
		t.Fatalf("defaults %+v", e)
	}

	list, err := fh.ListDeliveryStreams(ctx, &firehose.ListDeliveryStreamsInput{})
	if err != nil || !slices.Equal(list.DeliveryStreamNames, []string{"orders"}) {
		t.Fatalf("list %v, %v", list, err)
	}

	// Records.
	put, err := fh.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("orders"), Record: &types.Record{Data: []byte("one")}})
	if err != nil || aws.ToString(put.RecordId) == "" {
		t.Fatalf("put %v, %v", put, err)
	}
	recs := make([]types.Record, 500)
	for i := range recs {
		recs[i] = types.Record{Data: []byte(fmt.Sprintf("r%d", i))}
	}
	batch, err := fh.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("orders"), Records: recs})
	if err != nil || aws.ToInt32(batch.FailedPutCount) != 0 || len(batch.RequestResponses) != 500 {
		t.Fatalf("batch %+v, %v", batch, err)
	}
	_, err = fh.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("orders"), Records: append(recs, recs[0])})
	wantAPIError(t, err, "ValidationException", "Member must have length between 1 and 500")
	_, err = fh.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("orders"), Record: &types.Record{Data: make([]byte, 1000<<10+1)}})
	wantAPIError(t, err, "ValidationException", "Member must have length less than or equal to 1024000")
	if _, err := fh.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("orders"), Record: &types.Record{Data: make([]byte, 1000<<10)}}); err != nil {
		t.Fatalf("a record of 1,000 KiB: %v", err)
	}
	big := make([]types.Record, 5)
	for i := range big {
		big[i] = types.Record{Data: make([]byte, 1000<<10)}
	}
	_, err = fh.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("orders"), Records: big})
	wantAPIError(t, err, "InvalidArgumentException", "Records size exceeds 4 MiB limit")
	_, err = fh.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("nope"), Record: &types.Record{Data: []byte("x")}})
	wantAPIError(t, err, "ResourceNotFoundException", "Firehose nope under account 000000000000 not found.")

	// UpdateDestination with the version.
	_, err = fh.UpdateDestination(ctx, &firehose.UpdateDestinationInput{
		DeliveryStreamName: aws.String("orders"), CurrentDeliveryStreamVersionId: aws.String("1"),
		DestinationId:               aws.String("destinationId-000000000001"),
		ExtendedS3DestinationUpdate: &types.ExtendedS3DestinationUpdate{Prefix: aws.String("v2/"), CompressionFormat: types.CompressionFormatGzip},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = fh.UpdateDestination(ctx, &firehose.UpdateDestinationInput{
		DeliveryStreamName: aws.String("orders"), CurrentDeliveryStreamVersionId: aws.String("1"),
		DestinationId:               aws.String("destinationId-000000000001"),
		ExtendedS3DestinationUpdate: &types.ExtendedS3DestinationUpdate{Prefix: aws.String("v3/")},
	})
	var cme *types.ConcurrentModificationException
	if !errors.As(err, &cme) {
		t.Fatalf("stale update: %v, want ConcurrentModificationException", err)
	}
	d, _ = fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("orders")})
	e = d.DeliveryStreamDescription.Destinations[0].ExtendedS3DestinationDescription
	if aws.ToString(d.DeliveryStreamDescription.VersionId) != "2" || aws.ToString(e.Prefix) != "v2/" || e.CompressionFormat != types.CompressionFormatGzip ||
		aws.ToInt32(e.BufferingHints.SizeInMBs) != 5 || d.DeliveryStreamDescription.LastUpdateTimestamp == nil {
		t.Fatalf("after update %+v %+v", d.DeliveryStreamDescription, e)
	}

	// Tags.
	if _, err := fh.TagDeliveryStream(ctx, &firehose.TagDeliveryStreamInput{DeliveryStreamName: aws.String("orders"),
		Tags: []types.Tag{{Key: aws.String("env"), Value: aws.String("test")}, {Key: aws.String("team"), Value: aws.String("lake")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := fh.ListTagsForDeliveryStream(ctx, &firehose.ListTagsForDeliveryStreamInput{DeliveryStreamName: aws.String("orders"), Limit: aws.Int32(1)})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "env" || !aws.ToBool(tags.HasMoreTags) {
		t.Fatalf("tags %+v, %v", tags, err)
	}
	if _, err := fh.UntagDeliveryStream(ctx, &firehose.UntagDeliveryStreamInput{DeliveryStreamName: aws.String("orders"), TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, _ = fh.ListTagsForDeliveryStream(ctx, &firehose.ListTagsForDeliveryStreamInput{DeliveryStreamName: aws.String("orders")})
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Value) != "lake" {
		t.Fatalf("tags after untag %+v", tags.Tags)
	}
	_, err = fh.TagDeliveryStream(ctx, &firehose.TagDeliveryStreamInput{DeliveryStreamName: aws.String("orders"),
		Tags: []types.Tag{{Key: aws.String("aws:reserved"), Value: aws.String("x")}}})
	wantAPIError(t, err, "ValidationException", "failed to satisfy constraint")

	// Encryption.
	if _, err := fh.StartDeliveryStreamEncryption(ctx, &firehose.StartDeliveryStreamEncryptionInput{DeliveryStreamName: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}
	d, _ = fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("orders")})
	if enc := d.DeliveryStreamDescription.DeliveryStreamEncryptionConfiguration; enc.Status != types.DeliveryStreamEncryptionStatusEnabled || enc.KeyType != types.KeyTypeAwsOwnedCmk {
		t.Fatalf("encryption %+v", enc)
	}
	if _, err := fh.StopDeliveryStreamEncryption(ctx, &firehose.StopDeliveryStreamEncryptionInput{DeliveryStreamName: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}

	// Bad input.
	_, err = fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("bad name"), ExtendedS3DestinationConfiguration: s3Dest("lake")})
	wantAPIError(t, err, "ValidationException", "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
	_, err = fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("p"),
		ExtendedS3DestinationConfiguration: s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) { d.Prefix = aws.String("x/!{timestamp:yyyy}/") })})
	wantAPIError(t, err, "InvalidArgumentException", "ErrorOutputPrefix can't be null when Prefix contains expressions.")
	_, err = fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("p"),
		ExtendedS3DestinationConfiguration: s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) {
			d.BufferingHints = &types.BufferingHints{SizeInMBs: aws.Int32(129)}
		})})
	wantAPIError(t, err, "ValidationException", "Member must have value between 1 and 128")
	_, err = fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("p"),
		ExtendedS3DestinationConfiguration: s3Dest("NO")})
	wantAPIError(t, err, "InvalidArgumentException", "does not name a bucket")

	// The hidden stream is not a Kinesis stream users see.
	ls, err := srv.Client(t).ListStreams(ctx, nil)
	if err != nil || len(ls.StreamNames) != 0 {
		t.Fatalf("ListStreams shows %v, %v", ls, err)
	}

	if _, err := fh.DeleteDeliveryStream(ctx, &firehose.DeleteDeliveryStreamInput{DeliveryStreamName: aws.String("orders")}); err != nil {
		t.Fatal(err)
	}
	_, err = fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("orders")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("describe after delete: %v", err)
	}
}

// TestFirehoseStates checks CREATING -> ACTIVE and DELETING -> gone with a
// transition delay.
func TestFirehoseStates(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithBucketsDir(t.TempDir()), runneltest.WithTransitionDelay(300*time.Millisecond))
	fh := srv.FirehoseClient(t)
	ctx := context.Background()
	if _, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("s"), ExtendedS3DestinationConfiguration: s3Dest("lake")}); err != nil {
		t.Fatal(err)
	}
	d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("s")})
	if err != nil || d.DeliveryStreamDescription.DeliveryStreamStatus != types.DeliveryStreamStatusCreating {
		t.Fatalf("%+v, %v", d, err)
	}
	_, err = fh.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("s"), Record: &types.Record{Data: []byte("x")}})
	wantAPIError(t, err, "ResourceNotFoundException", "is not ACTIVE, instead in state CREATING")
	waitFor(t, 20*time.Second, "ACTIVE", func() bool {
		d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("s")})
		return err == nil && d.DeliveryStreamDescription.DeliveryStreamStatus == types.DeliveryStreamStatusActive
	})
	if _, err := fh.DeleteDeliveryStream(ctx, &firehose.DeleteDeliveryStreamInput{DeliveryStreamName: aws.String("s")}); err != nil {
		t.Fatal(err)
	}
	d, err = fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("s")})
	if err != nil || d.DeliveryStreamDescription.DeliveryStreamStatus != types.DeliveryStreamStatusDeleting {
		t.Fatalf("%+v, %v", d, err)
	}
	waitFor(t, 20*time.Second, "gone", func() bool {
		_, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("s")})
		var nf *types.ResourceNotFoundException
		return errors.As(err, &nf)
	})
	// The name can be used again at once.
	if _, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("s"), ExtendedS3DestinationConfiguration: s3Dest("lake")}); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not %s within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// object is one delivered file.
type object struct {
	key  string
	body []byte
}

// readObjects returns the files below dir (a bucket), decompressed with
// gunzip when their name ends in .gz, in key order.
func readObjects(t *testing.T, dir string) []object {
	t.Helper()
	var objs []object
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == dir {
			return filepath.SkipDir
		}
		if err != nil || d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			return nil // a write in progress
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(path, ".gz") {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			if b, err = io.ReadAll(zr); err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
		}
		rel, _ := filepath.Rel(dir, path)
		objs = append(objs, object{key: filepath.ToSlash(rel), body: b})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// lines splits newline-delimited records.
func lines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 1<<20), 4<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

var objectKey = regexp.MustCompile(`^logs/(\d{4})/(\d{2})/(\d{2})/(\d{2})/clicks-1-(\d{4})-(\d{2})-(\d{2})-(\d{2})-\d{2}-\d{2}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.gz$`)

// TestFirehoseDeliversToFiles puts records through DirectPut and reads
// them back from the bucket's directory: GZIP, newline-delimited, in
// order, under the prefix and Firehose's object names.
func TestFirehoseDeliversToFiles(t *testing.T) {
	buckets := t.TempDir()
	srv := runneltest.NewServer(t, runneltest.WithBucketsDir(buckets))
	fh := srv.FirehoseClient(t)
	ctx := context.Background()
	_, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String("clicks"),
		ExtendedS3DestinationConfiguration: s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) {
			d.Prefix = aws.String("logs/")
			d.CompressionFormat = types.CompressionFormatGzip
			d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(1), SizeInMBs: aws.Int32(1)}
			d.ProcessingConfiguration = &types.ProcessingConfiguration{Enabled: aws.Bool(true),
				Processors: []types.Processor{{Type: types.ProcessorTypeAppendDelimiterToRecord}}}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for b := range 6 {
		recs := make([]types.Record, 500)
		for i := range recs {
			s := fmt.Sprintf(`{"batch":%d,"i":%03d,"pad":"%s"}`, b, i, strings.Repeat("x", 900))
			want = append(want, s)
			recs[i] = types.Record{Data: []byte(s)}
		}
		out, err := fh.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("clicks"), Records: recs})
		if err != nil || aws.ToInt32(out.FailedPutCount) != 0 {
			t.Fatalf("put: %v %v", out, err)
		}
	}
	var objs []object
	waitFor(t, 30*time.Second, "delivered", func() bool {
		objs = readObjects(t, filepath.Join(buckets, "lake"))
		n := 0
		for _, o := range objs {
			n += len(lines(o.body))
		}
		return n >= len(want)
	})
	var got []string
	for _, o := range objs {
		m := objectKey.FindStringSubmatch(o.key)
		if m == nil {
			t.Fatalf("object key %q is not <prefix>YYYY/MM/dd/HH/<name>", o.key)
		}
		if m[1] != m[5] || m[2] != m[6] || m[3] != m[7] || m[4] != m[8] {
			t.Errorf("key %q: the prefix's hour and the name's differ", o.key)
		}
		if len(o.body) > 1<<20+len(lines(o.body)) {
			t.Errorf("object %s holds %d bytes, more than SizeInMBs", o.key, len(o.body))
		}
		got = append(got, lines(o.body)...)
	}
	if !sameMultiset(got, want) {
		t.Fatalf("delivered %d records, want the %d put, each once", len(got), len(want))
	}
	if inOrder(objs) != strings.Join(want, "\n")+"\n" {
		t.Fatal("objects are not consecutive runs of the records in the order they were put")
	}
	if len(objs) < 3 {
		t.Errorf("%d objects for 5.5 MiB with SizeInMBs 1", len(objs))
	}
	d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("clicks")})
	if err != nil {
		t.Fatal(err)
	}
	if d.DeliveryStreamDescription.FailureDescription != nil {
		t.Errorf("failure %+v", d.DeliveryStreamDescription.FailureDescription)
	}
}

// inOrder concatenates the objects ordered by the records they hold (the
// put order is also the lexical order of the test's records). Object names
// sort by the second of their oldest record and then by a hash, so they
// do not show the order themselves.
func inOrder(objs []object) string {
	objs = slices.Clone(objs)
	slices.SortFunc(objs, func(a, b object) int { return bytes.Compare(a.body, b.body) })
	var all []byte
	for _, o := range objs {
		all = append(all, o.body...)
	}
	return string(all)
}

func sameMultiset(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestFirehoseWaitsForDestination makes the bucket unwritable (a file
// where its directory should be), puts records, and checks that delivery
// reports the failure, waits, and delivers everything in order once the
// bucket is back.
func TestFirehoseWaitsForDestination(t *testing.T) {
	buckets := t.TempDir()
	srv := runneltest.NewServer(t, runneltest.WithBucketsDir(buckets), runneltest.WithDeliveryRetry(100*time.Millisecond, 500*time.Millisecond))
	fh := srv.FirehoseClient(t)
	ctx := context.Background()
	bucket := filepath.Join(buckets, "down")
	if err := os.WriteFile(bucket, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String("patient"),
		ExtendedS3DestinationConfiguration: s3Dest("down", func(d *types.ExtendedS3DestinationConfiguration) {
			d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(0), SizeInMBs: aws.Int32(1)}
			d.ProcessingConfiguration = &types.ProcessingConfiguration{Enabled: aws.Bool(true),
				Processors: []types.Processor{{Type: types.ProcessorTypeAppendDelimiterToRecord}}}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	put := func(from, n int) {
		recs := make([]types.Record, n)
		for i := range recs {
			s := fmt.Sprintf("record-%05d", from+i)
			want = append(want, s)
			recs[i] = types.Record{Data: []byte(s)}
		}
		if _, err := fh.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("patient"), Records: recs}); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 100)
	waitFor(t, 20*time.Second, "failing", func() bool {
		d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("patient")})
		return err == nil && d.DeliveryStreamDescription.FailureDescription != nil
	})
	put(100, 100)
	time.Sleep(500 * time.Millisecond)
	put(200, 100)
	if err := os.Remove(bucket); err != nil {
		t.Fatal(err)
	}
	var got []string
	var objs []object
	waitFor(t, 30*time.Second, "delivered", func() bool {
		objs = readObjects(t, bucket)
		got = got[:0]
		for _, o := range objs {
			got = append(got, lines(o.body)...)
		}
		return len(got) >= len(want)
	})
	if !sameMultiset(got, want) {
		t.Fatalf("delivered %d records, want %d each once", len(got), len(want))
	}
	if inOrder(objs) != strings.Join(want, "\n")+"\n" {
		t.Fatal("objects are not consecutive runs of the records in the order they were put")
	}
	waitFor(t, 10*time.Second, "recovered", func() bool {
		d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("patient")})
		return err == nil && d.DeliveryStreamDescription.FailureDescription == nil
	})
}

// TestFirehoseCrash kills runnel (SIGKILL, from inside, via the
// RUNNEL_CRASHPOINT hook) in the middle of a delivery: after the batch's
// plan is stored, after its object is written, and after its checkpoint.
// After a restart every acknowledged record is in exactly one object, and
// no record is in two.
func TestFirehoseCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts server processes")
	}
	for _, point := range []string{"delivery-after-plan", "delivery-after-object", "delivery-after-checkpoint"} {
		t.Run(point, func(t *testing.T) {
			dir, buckets := t.TempDir(), t.TempDir()
			args := []string{"--transition-delay", "0s", "--buckets-dir", buckets}
			srv := launchEnv(t, dir, []string{"RUNNEL_CRASHPOINT=" + point}, args...)
			exited := make(chan struct{})
			go func() { _ = srv.cmd.Wait(); close(exited) }()
			fh := srv.firehose()
			ctx := context.Background()
			_, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
				DeliveryStreamName: aws.String("crashy"),
				ExtendedS3DestinationConfiguration: s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) {
					d.CompressionFormat = types.CompressionFormatGzip
					d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(1), SizeInMBs: aws.Int32(1)}
					d.ProcessingConfiguration = &types.ProcessingConfiguration{Enabled: aws.Bool(true),
						Processors: []types.Processor{{Type: types.ProcessorTypeAppendDelimiterToRecord}}}
				}),
			})
			if err != nil {
				t.Fatal(err)
			}
			acked := map[string]bool{}
			next := 0
			put := func(c *firehose.Client, n int) error {
				recs := make([]types.Record, n)
				names := make([]string, n)
				for i := range recs {
					names[i] = fmt.Sprintf("rec-%06d-%s", next, strings.Repeat("p", 1000))
					recs[i] = types.Record{Data: []byte(names[i])}
					next++
				}
				out, err := c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("crashy"), Records: recs})
				if err != nil {
					return err
				}
				for i, r := range out.RequestResponses {
					if r.ErrorCode == nil {
						acked[names[i]] = true
					}
				}
				return nil
			}
			// Put until the server dies at the crash point.
			deadline := time.Now().Add(60 * time.Second)
		putting:
			for {
				select {
				case <-exited:
					break putting
				default:
				}
				if time.Now().After(deadline) {
					t.Fatalf("the server did not reach %s; log:\n%s", point, srv.log.String())
				}
				if err := put(fh, 200); err != nil {
					<-exited
					break
				}
			}
			if len(acked) == 0 {
				t.Fatal("no record acknowledged before the crash")
			}
			srv2 := startServer(t, dir, args...)
			fh2 := srv2.firehose()
			for range 5 {
				if err := put(fh2, 200); err != nil {
					t.Fatal(err)
				}
			}
			lake := filepath.Join(buckets, "lake")
			waitFor(t, 60*time.Second, "every acknowledged record delivered", func() bool {
				have := map[string]bool{}
				for _, o := range readObjects(t, lake) {
					for _, l := range lines(o.body) {
						have[l] = true
					}
				}
				for r := range acked {
					if !have[r] {
						return false
					}
				}
				return true
			})
			// Let anything still in flight land, then count.
			time.Sleep(1500 * time.Millisecond)
			seen := map[string]string{}
			for _, o := range readObjects(t, lake) {
				for _, l := range lines(o.body) {
					if prev, dup := seen[l]; dup {
						t.Fatalf("record %.10s is in %s and in %s", l, prev, o.key)
					}
					seen[l] = o.key
				}
			}
			for r := range acked {
				if seen[r] == "" {
					t.Fatalf("acknowledged record %.10s lost", r)
				}
			}
			srv2.kill()
			if redo := strings.Contains(srv2.log.String(), "writing again a batch planned before a restart"); redo != (point != "delivery-after-checkpoint") {
				t.Errorf("after a crash at %s, the restarted server wrote a planned batch again: %v", point, redo)
			}
			t.Logf("%d records acknowledged, %d delivered, crash at %s", len(acked), len(seen), point)
		})
	}
}

// decompress undoes a delivery stream's compression format.
func decompress(t *testing.T, format types.CompressionFormat, b []byte) []byte {
	t.Helper()
	var out []byte
	var err error
	switch format {
	case types.CompressionFormatUncompressed:
		return b
	case types.CompressionFormatGzip:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bytes.NewReader(b)); err == nil {
			out, err = io.ReadAll(zr)
		}
	case types.CompressionFormatZip:
		var zr *zip.Reader
		if zr, err = zip.NewReader(bytes.NewReader(b), int64(len(b))); err == nil {
			if len(zr.File) != 1 {
				t.Fatalf("zip holds %d files, want 1", len(zr.File))
			}
			var f io.ReadCloser
			if f, err = zr.File[0].Open(); err == nil {
				out, err = io.ReadAll(f)
			}
		}
	case types.CompressionFormatSnappy:
		out, err = io.ReadAll(s2.NewReader(bytes.NewReader(b)))
	case types.CompressionFormatHadoopSnappy:
		for len(b) > 0 && err == nil {
			if len(b) < 8 {
				t.Fatal("truncated hadoop-snappy block")
			}
			raw, clen := binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])
			var blk []byte
			blk, err = s2.Decode(nil, b[8:8+clen])
			if err == nil && uint32(len(blk)) != raw {
				err = fmt.Errorf("block of %d bytes, header says %d", len(blk), raw)
			}
			out = append(out, blk...)
			b = b[8+clen:]
		}
	}
	if err != nil {
		t.Fatalf("%s: %v", format, err)
	}
	return out
}

// TestFirehoseCompression delivers the same records in every compression
// format and reads each object back decompressed.
func TestFirehoseCompression(t *testing.T) {
	buckets := t.TempDir()
	srv := runneltest.NewServer(t, runneltest.WithBucketsDir(buckets))
	fh := srv.FirehoseClient(t)
	ctx := context.Background()
	var body bytes.Buffer
	recs := make([]types.Record, 300)
	for i := range recs {
		s := fmt.Sprintf(`{"i":%d,"text":"%s"}`, i, strings.Repeat("compressible ", i%50))
		recs[i] = types.Record{Data: []byte(s)}
		body.WriteString(s + "\n")
	}
	ext := map[types.CompressionFormat]string{
		types.CompressionFormatUncompressed: "", types.CompressionFormatGzip: ".gz", types.CompressionFormatZip: ".zip",
		types.CompressionFormatSnappy: ".snappy", types.CompressionFormatHadoopSnappy: ".hsnappy",
	}
	for format, suffix := range ext {
		name := "c-" + strings.ToLower(string(format))
		_, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
			DeliveryStreamName: aws.String(name),
			ExtendedS3DestinationConfiguration: s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) {
				d.Prefix = aws.String(name + "/")
				d.CompressionFormat = format
				d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(1), SizeInMBs: aws.Int32(64)}
				d.ProcessingConfiguration = &types.ProcessingConfiguration{Enabled: aws.Bool(true),
					Processors: []types.Processor{{Type: types.ProcessorTypeAppendDelimiterToRecord}}}
			}),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fh.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String(name), Records: recs}); err != nil {
			t.Fatal(err)
		}
		t.Run(string(format), func(t *testing.T) {
			dir := filepath.Join(buckets, "lake", name)
			var files []string
			waitFor(t, 30*time.Second, "delivered", func() bool {
				files = nil
				_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
					if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
						files = append(files, p)
					}
					return nil
				})
				return len(files) > 0
			})
			if len(files) != 1 {
				t.Fatalf("%d objects, want 1", len(files))
			}
			if !strings.HasSuffix(files[0], suffix) || suffix == "" && strings.Contains(filepath.Base(files[0]), ".") {
				t.Errorf("object %s lacks the extension %q", files[0], suffix)
			}
			b, err := os.ReadFile(files[0])
			if err != nil {
				t.Fatal(err)
			}
			if got := decompress(t, format, b); !bytes.Equal(got, body.Bytes()) {
				t.Fatalf("decompressed %d bytes differ from the %d put", len(got), body.Len())
			}
		})
	}
}

// TestFirehosePrefixExpressions delivers under a prefix with timestamp and
// random-string expressions and a custom file extension.
func TestFirehosePrefixExpressions(t *testing.T) {
	buckets := t.TempDir()
	srv := runneltest.NewServer(t, runneltest.WithBucketsDir(buckets))
	fh := srv.FirehoseClient(t)
	ctx := context.Background()
	_, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String("expr"),
		ExtendedS3DestinationConfiguration: s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) {
			d.Prefix = aws.String("year=!{timestamp:yyyy}/hour=!{timestamp:HH}/r=!{firehose:random-string}/")
			d.ErrorOutputPrefix = aws.String("errors/!{firehose:error-output-type}/")
			d.FileExtension = aws.String(".json")
			d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(0), SizeInMBs: aws.Int32(1)}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC()
	if _, err := fh.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("expr"), Record: &types.Record{Data: []byte(`{"a":1}`)}}); err != nil {
		t.Fatal(err)
	}
	var objs []object
	waitFor(t, 30*time.Second, "delivered", func() bool {
		objs = readObjects(t, filepath.Join(buckets, "lake"))
		return len(objs) > 0
	})
	after := time.Now().UTC()
	re := regexp.MustCompile(`^year=(\d{4})/hour=(\d{2})/r=[0-9a-f]{11}/expr-1-\d{4}-\d{2}-\d{2}-(\d{2})-\d{2}-\d{2}-[0-9a-f-]{36}\.json$`)
	m := re.FindStringSubmatch(objs[0].key)
	if m == nil {
		t.Fatalf("key %q", objs[0].key)
	}
	if (m[1] != before.Format("2006") && m[1] != after.Format("2006")) || (m[2] != before.Format("15") && m[2] != after.Format("15")) || m[2] != m[3] {
		t.Fatalf("key %q: year or hour not the record's arrival (%s..%s)", objs[0].key, before, after)
	}
	if string(objs[0].body) != `{"a":1}` {
		t.Fatalf("body %q", objs[0].body)
	}
}

// TestFirehoseKinesisSource delivers a Kinesis stream of two shards, split
// while it is delivered: every record put after the delivery stream's
// creation lands in exactly one object, and none from before it.
func TestFirehoseKinesisSource(t *testing.T) {
	buckets := t.TempDir()
	srv := runneltest.NewServer(t, runneltest.WithBucketsDir(buckets))
	fh, kc := srv.FirehoseClient(t), srv.Client(t)
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	put := func(from, n int) []string {
		var out []string
		entries := make([]kinesistypes.PutRecordsRequestEntry, n)
		for i := range entries {
			s := fmt.Sprintf("event-%05d", from+i)
			out = append(out, s)
			entries[i] = kinesistypes.PutRecordsRequestEntry{Data: []byte(s), PartitionKey: aws.String(fmt.Sprintf("k%d", i%17))}
		}
		res, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: entries})
		if err != nil || aws.ToInt32(res.FailedRecordCount) != 0 {
			t.Fatalf("put %v %v", res, err)
		}
		return out
	}
	put(0, 50) // before the delivery stream: not delivered
	time.Sleep(20 * time.Millisecond)
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	_, err = fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String("from-kinesis"),
		DeliveryStreamType: types.DeliveryStreamTypeKinesisStreamAsSource,
		KinesisStreamSourceConfiguration: &types.KinesisStreamSourceConfiguration{
			KinesisStreamARN: sum.StreamDescriptionSummary.StreamARN, RoleARN: aws.String("arn:aws:iam::000000000000:role/r")},
		ExtendedS3DestinationConfiguration: s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) {
			d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(1), SizeInMBs: aws.Int32(1)}
			d.ProcessingConfiguration = &types.ProcessingConfiguration{Enabled: aws.Bool(true),
				Processors: []types.Processor{{Type: types.ProcessorTypeAppendDelimiterToRecord}}}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = fh.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("from-kinesis"), Record: &types.Record{Data: []byte("x")}})
	wantAPIError(t, err, "InvalidArgumentException", "not permitted on KinesisStreamAsSource")
	time.Sleep(20 * time.Millisecond)
	want := put(1000, 300)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("events"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, kc, "events")
	want = append(want, put(2000, 300)...)
	var got []string
	waitFor(t, 30*time.Second, "delivered", func() bool {
		got = got[:0]
		for _, o := range readObjects(t, filepath.Join(buckets, "lake")) {
			got = append(got, lines(o.body)...)
		}
		return len(got) >= len(want)
	})
	time.Sleep(time.Second)
	got = got[:0]
	for _, o := range readObjects(t, filepath.Join(buckets, "lake")) {
		got = append(got, lines(o.body)...)
	}
	if !sameMultiset(got, want) {
		t.Fatalf("delivered %d records, want the %d put after creation, each once", len(got), len(want))
	}
	d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String("from-kinesis")})
	if err != nil {
		t.Fatal(err)
	}
	src := d.DeliveryStreamDescription.Source.KinesisStreamSourceDescription
	if src == nil || aws.ToString(src.KinesisStreamARN) != aws.ToString(sum.StreamDescriptionSummary.StreamARN) || src.DeliveryStartTimestamp == nil {
		t.Fatalf("source %+v", d.DeliveryStreamDescription.Source)
	}
}

// TestFirehoseDynamicPartitioning partitions JSON records by two keys a jq
// query extracts, after splitting records that hold several JSON objects
// (RecordDeAggregation) and KPL aggregates (a Kinesis stream source).
// Records the query cannot read go to the error prefix as Firehose's error
// documents.
func TestFirehoseDynamicPartitioning(t *testing.T) {
	buckets := t.TempDir()
	srv := runneltest.NewServer(t, runneltest.WithBucketsDir(buckets))
	fh, kc := srv.FirehoseClient(t), srv.Client(t)
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	dest := s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) {
		d.Prefix = aws.String("customer=!{partitionKeyFromQuery:customer}/kind=!{partitionKeyFromQuery:kind}/")
		d.ErrorOutputPrefix = aws.String("errors/!{firehose:error-output-type}/")
		d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(1), SizeInMBs: aws.Int32(64)}
		d.DynamicPartitioningConfiguration = &types.DynamicPartitioningConfiguration{Enabled: aws.Bool(true)}
		d.ProcessingConfiguration = &types.ProcessingConfiguration{Enabled: aws.Bool(true), Processors: []types.Processor{
			{Type: types.ProcessorTypeRecordDeAggregation, Parameters: []types.ProcessorParameter{
				{ParameterName: types.ProcessorParameterNameSubRecordType, ParameterValue: aws.String("JSON")}}},
			{Type: types.ProcessorTypeMetadataExtraction, Parameters: []types.ProcessorParameter{
				{ParameterName: types.ProcessorParameterNameMetadataExtractionQuery, ParameterValue: aws.String("{customer: .customer, kind: .kind}")},
				{ParameterName: types.ProcessorParameterNameJsonParsingEngine, ParameterValue: aws.String("JQ-1.6")}}},
			{Type: types.ProcessorTypeAppendDelimiterToRecord},
		}}
	})
	_, err = fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String("parts"),
		DeliveryStreamType: types.DeliveryStreamTypeKinesisStreamAsSource,
		KinesisStreamSourceConfiguration: &types.KinesisStreamSourceConfiguration{
			KinesisStreamARN: sum.StreamDescriptionSummary.StreamARN, RoleARN: aws.String("arn:aws:iam::000000000000:role/r")},
		ExtendedS3DestinationConfiguration: dest,
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)

	want := map[string][]string{} // partition prefix -> records
	var entries []kinesistypes.PutRecordsRequestEntry
	agg := kpl.NewAggregator()
	for i := range 120 {
		a := fmt.Sprintf(`{"customer":"c%d","kind":"k%d","i":%d}`, i%3, i%2, 2*i)
		b := fmt.Sprintf(`{"customer":"c%d","kind":"k%d","i":%d}`, i%3, i%2, 2*i+1)
		p := fmt.Sprintf("customer=c%d/kind=k%d/", i%3, i%2)
		want[p] = append(want[p], a, b)
		// Two JSON objects in one record; every fourth record inside a
		// KPL aggregate.
		data := []byte(a + "\n" + b)
		if i%4 == 0 {
			if err := agg.Add(fmt.Sprintf("pk%d", i), "", data); err != nil {
				t.Fatal(err)
			}
			continue
		}
		entries = append(entries, kinesistypes.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String("pk")})
	}
	a := agg.Drain()
	entries = append(entries, kinesistypes.PutRecordsRequestEntry{Data: a.Data, PartitionKey: aws.String(a.PartitionKey)})
	bad := []string{`not json`, `{"customer":null,"kind":"k"}`}
	for _, b := range bad {
		entries = append(entries, kinesistypes.PutRecordsRequestEntry{Data: []byte(b), PartitionKey: aws.String("pk")})
	}
	if out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("orders"), Records: entries}); err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("put: %v %v", out, err)
	}
	lake := filepath.Join(buckets, "lake")
	total := 240 + len(bad)
	var objs []object
	waitFor(t, 30*time.Second, "delivered", func() bool {
		objs = readObjects(t, lake)
		n := 0
		for _, o := range objs {
			n += len(lines(o.body))
		}
		return n >= total
	})
	got := map[string][]string{}
	var errs []map[string]any
	for _, o := range objs {
		if strings.HasPrefix(o.key, "errors/processing-failed/") {
			for _, l := range lines(o.body) {
				var doc map[string]any
				if err := json.Unmarshal([]byte(l), &doc); err != nil {
					t.Fatalf("error document %q: %v", l, err)
				}
				errs = append(errs, doc)
			}
			continue
		}
		// customer=cX/kind=kY/ and the hour Firehose appends to a prefix
		// without a timestamp.
		m := regexp.MustCompile(`^(customer=c\d/kind=k\d/)\d{4}/\d{2}/\d{2}/\d{2}/parts-1-`).FindStringSubmatch(o.key)
		if m == nil {
			t.Fatalf("object key %q", o.key)
		}
		got[m[1]] = append(got[m[1]], lines(o.body)...)
	}
	if len(got) != 6 {
		t.Fatalf("%d partitions (%v), want 6", len(got), slices.Collect(maps.Keys(got)))
	}
	for p, recs := range want {
		if !sameMultiset(got[p], recs) {
			t.Errorf("partition %s holds %d records, want %d", p, len(got[p]), len(recs))
		}
	}
	if len(errs) != len(bad) {
		t.Fatalf("%d error documents, want %d", len(errs), len(bad))
	}
	var raws []string
	for _, doc := range errs {
		raw, _ := base64.StdEncoding.DecodeString(doc["rawData"].(string))
		raws = append(raws, string(raw)+" "+doc["errorCode"].(string))
		if doc["attemptsMade"] == nil || doc["arrivalTimestamp"] == nil || doc["errorMessage"] == "" {
			t.Errorf("error document %v", doc)
		}
	}
	wantErrs := []string{bad[0] + " RecordDeAggregation.Failed", bad[1] + " DynamicPartitioning.MetadataExtractionFailed"}
	if !sameMultiset(raws, wantErrs) {
		t.Errorf("error documents hold %q, want %q", raws, wantErrs)
	}

	// The rules of dynamic partitioning.
	for name, tc := range map[string]struct {
		tune func(*types.ExtendedS3DestinationConfiguration)
		msg  string
	}{
		"small buffer": {func(d *types.ExtendedS3DestinationConfiguration) {
			d.BufferingHints = &types.BufferingHints{SizeInMBs: aws.Int32(5)}
		}, "must be at least 64"},
		"no error prefix": {func(d *types.ExtendedS3DestinationConfiguration) { d.ErrorOutputPrefix = nil }, "ErrorOutputPrefix is required"},
		"bad query": {func(d *types.ExtendedS3DestinationConfiguration) {
			d.ProcessingConfiguration.Processors[1].Parameters[0].ParameterValue = aws.String("{customer: .customer")
		}, "is not a valid jq query"},
	} {
		d := *dest
		pc := *dest.ProcessingConfiguration
		pc.Processors = slices.Clone(pc.Processors)
		pc.Processors[1].Parameters = slices.Clone(pc.Processors[1].Parameters)
		d.ProcessingConfiguration = &pc
		tc.tune(&d)
		_, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{DeliveryStreamName: aws.String("x"), ExtendedS3DestinationConfiguration: &d})
		if err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %q", name, err, tc.msg)
		}
	}
}
