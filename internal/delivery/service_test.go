package delivery_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/delivery/file"
	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/metrics"
	"github.com/runnel/runnel/internal/streams"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ptr[T any](v T) *T { return &v }

// TestServiceDeliversAndStops runs the service on the memory engine: a
// record put is delivered to a directory, and Close stops every worker.
func TestServiceDeliversAndStops(t *testing.T) {
	ctx := context.Background()
	eng := mem.New(mem.DefaultOptions())
	defer eng.Close()
	sopts := streams.DefaultOptions()
	sopts.TransitionDelay = 0
	st, err := streams.New(ctx, eng, sopts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ls := leases.New(eng.Meta(), leases.OnStreams(st), leases.Options{})
	dir := t.TempDir()
	opts := delivery.DefaultOptions()
	opts.TransitionDelay = 0
	opts.Resolver = file.NewBuckets(dir)
	svc, err := delivery.New(eng.Meta(), st, ls, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.CreateDeliveryStream(ctx, &delivery.CreateDeliveryStreamInput{
		DeliveryStreamName: ptr("s"),
		ExtendedS3DestinationConfiguration: &delivery.ExtendedS3DestinationConfiguration{
			RoleARN: ptr("arn:aws:iam::000000000000:role/r"), BucketARN: ptr("arn:aws:s3:::bucket"),
			BufferingHints: &delivery.BufferingHints{IntervalInSeconds: ptr(int32(0))},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.PutRecord(ctx, &delivery.PutRecordInput{DeliveryStreamName: ptr("s"), Record: &delivery.Record{Data: []byte("hello")}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var found []string
		_ = filepath.WalkDir(filepath.Join(dir, "bucket"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
				found = append(found, p)
			}
			return nil
		})
		if len(found) == 1 {
			b, err := os.ReadFile(found[0])
			if err != nil || string(b) != "hello" {
				t.Fatalf("object holds %q (%v)", b, err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not delivered: %v", found)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The counters move once the object is checkpointed, just after it
	// is written.
	for {
		d, err := svc.DescribeDeliveryStream(ctx, &delivery.NameInput{DeliveryStreamName: ptr("s")})
		if err != nil {
			t.Fatal(err)
		}
		s := d.DeliveryStreamDescription.RunnelDeliveryStats
		if s != nil && s.RecordsDelivered == 1 && s.ObjectsDelivered == 1 && s.BytesDelivered == 5 {
			break
		}
		if time.Now().After(deadline) || s != nil && s.RecordsDelivered > 1 {
			t.Fatalf("stats %+v", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReconcile(t *testing.T) {
	ctx := context.Background()
	eng := mem.New(mem.DefaultOptions())
	defer eng.Close()
	sopts := streams.DefaultOptions()
	sopts.TransitionDelay = 0
	st, err := streams.New(ctx, eng, sopts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	opts := delivery.DefaultOptions()
	opts.TransitionDelay = 0
	opts.Resolver = file.NewBuckets(t.TempDir())
	svc, err := delivery.New(eng.Meta(), st, leases.New(eng.Meta(), leases.OnStreams(st), leases.Options{}), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	decl := func(prefix string) *delivery.CreateDeliveryStreamInput {
		return &delivery.CreateDeliveryStreamInput{DeliveryStreamName: ptr("d"), ExtendedS3DestinationConfiguration: &delivery.ExtendedS3DestinationConfiguration{
			RoleARN: ptr("arn:aws:iam::000000000000:role/r"), BucketARN: ptr("arn:aws:s3:::bucket"), Prefix: ptr(prefix)}}
	}
	for i, step := range []struct {
		prefix, action, version string
	}{{"a/", "created", "1"}, {"a/", "kept", "1"}, {"b/", "updated", "2"}} {
		action, err := svc.Reconcile(ctx, decl(step.prefix))
		if err != nil || action != step.action {
			t.Fatalf("step %d: %q, %v; want %q", i, action, err, step.action)
		}
		d, err := svc.DescribeDeliveryStream(ctx, &delivery.NameInput{DeliveryStreamName: ptr("d")})
		if err != nil || d.DeliveryStreamDescription.VersionId != step.version ||
			*d.DeliveryStreamDescription.Destinations[0].ExtendedS3DestinationDescription.Prefix != step.prefix {
			t.Fatalf("step %d: %+v, %v", i, d, err)
		}
	}
	other := decl("b/")
	other.DeliveryStreamType = ptr(delivery.TypeKinesis)
	other.KinesisStreamSourceConfiguration = &delivery.KinesisStreamSourceConfiguration{KinesisStreamARN: ptr("arn:aws:kinesis:us-east-1:000000000000:stream/x"), RoleARN: ptr("arn:aws:iam::000000000000:role/r")}
	if err := st.CreateStream(ctx, &streams.CreateStreamInput{StreamName: ptr("x"), ShardCount: ptr(int32(1))}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Reconcile(ctx, other); err == nil || !strings.Contains(err.Error(), "exists with another source") {
		t.Fatalf("a declaration with another source: %v", err)
	}
}

// TestSameMillisecondCreations creates two delivery streams at the same
// instant (a clock that stands still): each keeps its own worker, progress
// and counters, and delivers its own records only.
func TestSameMillisecondCreations(t *testing.T) {
	ctx := context.Background()
	eng := mem.New(mem.DefaultOptions())
	defer eng.Close()
	sopts := streams.DefaultOptions()
	sopts.TransitionDelay = 0
	st, err := streams.New(ctx, eng, sopts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir := t.TempDir()
	reg, err := metrics.New(metrics.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	opts := delivery.DefaultOptions()
	opts.TransitionDelay = 0
	opts.Resolver = file.NewBuckets(dir)
	opts.Metrics = reg
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	opts.Now = func() time.Time { return at }
	svc, err := delivery.New(eng.Meta(), st, leases.New(eng.Meta(), leases.OnStreams(st), leases.Options{}), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for _, name := range []string{"a", "b"} {
		_, err = svc.CreateDeliveryStream(ctx, &delivery.CreateDeliveryStreamInput{
			DeliveryStreamName: ptr(name),
			ExtendedS3DestinationConfiguration: &delivery.ExtendedS3DestinationConfiguration{
				RoleARN: ptr("arn:aws:iam::000000000000:role/r"), BucketARN: ptr("arn:aws:s3:::bucket-" + name),
				BufferingHints: &delivery.BufferingHints{IntervalInSeconds: ptr(int32(0))},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{"a", "b", "b"} {
		if _, err := svc.PutRecordBatch(ctx, &delivery.PutRecordBatchInput{DeliveryStreamName: ptr(name), Records: []delivery.Record{{Data: []byte(name + strconv.Itoa(i))}}}); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]int{"a": 1, "b": 2}
	deadline := time.Now().Add(20 * time.Second)
	for name, n := range want {
		for {
			c, ok := reg.DeliveryCounts(name)
			if ok && c.DeliveredRecords == uint64(n) {
				if c.IncomingRecords != uint64(n) || c.IncomingPutRequests != uint64(n) {
					t.Errorf("%s: counts %+v, want %d records put in %d requests", name, c, n, n)
				}
				break
			}
			if time.Now().After(deadline) || c.DeliveredRecords > uint64(n) {
				t.Fatalf("%s: counts %+v (%v), want %d delivered", name, c, ok, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
		var found []string
		_ = filepath.WalkDir(filepath.Join(dir, "bucket-"+name), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
				b, _ := os.ReadFile(p)
				found = append(found, string(b))
			}
			return nil
		})
		for _, body := range found {
			if !strings.HasPrefix(body, name) {
				t.Errorf("bucket %s holds %q, a record of another delivery stream", name, body)
			}
		}
	}
}
