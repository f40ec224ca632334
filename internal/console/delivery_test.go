package console

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/delivery/file"
	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/streams"
)

// brokenBuckets resolves bucket "broken" to a destination that always
// fails, and every other bucket to a directory.
type brokenBuckets struct{ files *file.Buckets }

type failing struct{}

func (failing) Deliver(context.Context, delivery.Object) error {
	return delivery.Permanent(errors.New("NoSuchBucket: the bucket does not exist"))
}

func (b brokenBuckets) Resolve(ctx context.Context, arn string) (delivery.Destination, error) {
	if arn == "arn:aws:s3:::broken" {
		return failing{}, nil
	}
	return b.files.Resolve(ctx, arn)
}

// fixedRates is a DeliveryRates with a fixed history.
type fixedRates map[string][]DeliverySample

func (f fixedRates) DeliveryRates(name string) []DeliverySample { return f[name] }

// deliveryEnv is a console with delivery streams, on real clocks (delivery
// waits for its buffering intervals).
type deliveryEnv struct {
	*env
	dsvc *delivery.Service
}

func newDeliveryEnv(t *testing.T) *deliveryEnv {
	t.Helper()
	ctx := context.Background()
	eng := mem.New(mem.DefaultOptions())
	so := streams.DefaultOptions()
	so.TransitionDelay = 0
	svc, err := streams.New(ctx, eng, so)
	if err != nil {
		t.Fatal(err)
	}
	ls := leases.New(eng.Meta(), leases.OnStreams(svc), leases.Options{})
	dopts := delivery.DefaultOptions()
	dopts.TransitionDelay = 0
	dopts.RetryMin, dopts.RetryMax = 20*time.Millisecond, 100*time.Millisecond
	dopts.Resolver = brokenBuckets{file.NewBuckets(t.TempDir())}
	dsvc, err := delivery.New(eng.Meta(), svc, ls, dopts)
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Streams, opts.Leases, opts.Delivery = svc, ls, dsvc
	opts.Rates = NewSampler(svc, nil, 10, time.Now)
	opts.DeliveryRates = fixedRates{"clicks": {
		{Time: time.Now().Add(-10 * time.Second), IncomingRecords: 5},
		{Time: time.Now().Add(-5 * time.Second), IncomingRecords: 7, DeliveredRecords: 3, FreshnessMillis: 1500},
	}}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	e := &env{t: t, svc: svc, leases: ls, c: c, srv: srv, http: srv.Client()}
	t.Cleanup(func() {
		srv.Close()
		c.Close()
		_ = dsvc.Close()
		svc.Close()
		eng.Close()
	})
	return &deliveryEnv{env: e, dsvc: dsvc}
}

func (e *deliveryEnv) createDelivery(name, bucket string, source *string) {
	e.t.Helper()
	in := &delivery.CreateDeliveryStreamInput{
		DeliveryStreamName: &name,
		ExtendedS3DestinationConfiguration: &delivery.ExtendedS3DestinationConfiguration{
			RoleARN: ptr("arn:aws:iam::000000000000:role/r"), BucketARN: ptr("arn:aws:s3:::" + bucket),
			Prefix:            ptr("raw/"),
			CompressionFormat: ptr("GZIP"),
			BufferingHints:    &delivery.BufferingHints{IntervalInSeconds: ptr(int32(0)), SizeInMBs: ptr(int32(2))},
		},
	}
	if source != nil {
		in.DeliveryStreamType = ptr(delivery.TypeKinesis)
		in.KinesisStreamSourceConfiguration = &delivery.KinesisStreamSourceConfiguration{
			KinesisStreamARN: ptr("arn:aws:kinesis:us-east-1:000000000000:stream/" + *source), RoleARN: ptr("arn:aws:iam::000000000000:role/r")}
	}
	if _, err := e.dsvc.CreateDeliveryStream(context.Background(), in); err != nil {
		e.t.Fatal(err)
	}
}

// waitPage loads path until its body satisfies ok.
func (e *deliveryEnv) waitPage(path, what string, ok func(body string) bool) string {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body := e.get(path)
		if status == http.StatusOK && ok(body) {
			return body
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %s never showed; last answer %d:\n%s", path, what, status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDeliveryStreamsPage(t *testing.T) {
	e := newDeliveryEnv(t)
	ctx := context.Background()
	e.create("events", 1)
	e.createDelivery("clicks", "lake", nil)
	e.createDelivery("archive", "broken", ptr("events"))
	for i := range 4 {
		if _, err := e.dsvc.PutRecord(ctx, &delivery.PutRecordInput{DeliveryStreamName: ptr("clicks"), Record: &delivery.Record{Data: []byte{'a' + byte(i)}}}); err != nil {
			t.Fatal(err)
		}
	}
	e.put("events", "k", "to the broken bucket")

	// The list: both delivery streams with their configuration, the
	// records delivered, and the failure of the broken one.
	body := e.waitPage("/console/delivery-streams/", "4 records delivered and a failure", func(b string) bool {
		return strings.Contains(b, `<td class="num records-delivered">4</td>`) && strings.Contains(b, "NoSuchBucket")
	})
	for _, want := range []string{
		`<a href="/console/delivery-streams/clicks">clicks</a>`,
		`<a href="/console/delivery-streams/archive">archive</a>`,
		`<span class="status ACTIVE">ACTIVE</span>`,
		`Direct PUT`,
		`<a href="/console/streams/events">events</a>`,
		`lake<span class="muted">/raw/</span>`,
		`2 MiB or 0 s`,
		`<td>GZIP</td>`,
		`UNKNOWN_ERROR: Delivery to arn:aws:s3:::broken failed`,
		`<svg class="spark"`, // clicks' history
		`href="/console/delivery-streams/">Delivery streams</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("delivery streams page lacks %q", want)
		}
	}
	if i, j := strings.Index(body, `data-delivery-stream="archive"`), strings.Index(body, `data-delivery-stream="clicks"`); i < 0 || j < 0 || i > j {
		t.Error("delivery streams are not listed in name order")
	}

	// A delivery stream's page: its facts and charts.
	body = e.waitPage("/console/delivery-streams/clicks", "its page", func(string) bool { return true })
	for _, want := range []string{`id="records-delivered">4<`, `id="chart-incoming"`, `id="chart-freshness"`, `id="chart-delivered"`, `None: the destination takes the objects.`} {
		if !strings.Contains(body, want) {
			t.Errorf("clicks' page lacks %q", want)
		}
	}
	body = e.waitPage("/console/delivery-streams/archive", "its failure", func(string) bool { return true })
	if !strings.Contains(body, "NoSuchBucket") {
		t.Error("archive's page does not show its failure")
	}
	if !strings.Contains(body, `id="freshness">`) || strings.Contains(body, `id="freshness">0 ms<`) {
		t.Error("archive's page shows no freshness while its record waits")
	}

	// The source stream's page lists the delivery stream that reads it,
	// and only that one.
	_, body = e.get("/console/streams/events")
	if !strings.Contains(body, `data-delivery-stream="archive"`) || strings.Contains(body, `data-delivery-stream="clicks"`) {
		t.Errorf("the stream page does not list exactly its delivery stream:\n%s", body)
	}

	if status, body := e.get("/console/delivery-streams/nope"); status != http.StatusNotFound || !strings.Contains(body, "ResourceNotFoundException") {
		t.Errorf("a missing delivery stream: %d %s", status, body)
	}
}

func TestNoDeliveryPagesWithoutService(t *testing.T) {
	e := newEnv(t)
	if status, _ := e.get("/console/delivery-streams/"); status != http.StatusNotFound {
		t.Errorf("delivery streams page without a delivery service: %d", status)
	}
	if _, body := e.get("/console/"); strings.Contains(body, "Delivery streams") {
		t.Error("the navigation links to delivery streams without a delivery service")
	}
}
