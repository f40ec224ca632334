package metrics

import (
	"testing"
	"time"
)

func TestDeliveryStreamCounters(t *testing.T) {
	r := newRegistry(t, nil)
	d := r.DeliveryStream("clicks", "1")
	if r.DeliveryStream("clicks", "1") != d {
		t.Fatal("the same delivery stream resolved twice gives other counters")
	}
	d.Put(false, 1, 10, 0)
	d.Put(true, 48, 480, 2)
	d.Throttled(5)
	d.ObserveLatency(OpFirehosePutRecord, 3*time.Millisecond)
	d.ObserveLatency(OpFirehosePutRecordBatch, 7*time.Millisecond)
	d.ObserveLatency(OpFirehosePutRecordBatch, 9*time.Millisecond)
	d.ObjectWritten(false)
	d.ObjectWritten(true)
	d.ObjectWritten(true)
	d.Delivered(40, 400, 2)
	d.SetFreshness(func() int64 { return 2500 })

	fams := scrape(t, r)
	for name, want := range map[string]float64{
		"firehose_IncomingRecords":            49,
		"firehose_IncomingBytes":              490,
		"firehose_IncomingPutRequests":        2,
		"firehose_PutRecord_Requests":         1,
		"firehose_PutRecord_Bytes":            10,
		"firehose_PutRecordBatch_Requests":    1,
		"firehose_PutRecordBatch_Records":     48,
		"firehose_PutRecordBatch_Bytes":       480,
		"firehose_ThrottledRecords":           7,
		"firehose_PutRecord_Latency":          1,
		"firehose_PutRecordBatch_Latency":     2,
		"firehose_DeliveryToS3_Records":       40,
		"firehose_DeliveryToS3_Bytes":         400,
		"firehose_DeliveryToS3_Success":       2,
		"firehose_DeliveryToS3_ObjectCount":   2,
		"runnel_delivery_failed_puts":         1,
		"firehose_DeliveryToS3_DataFreshness": 2.5,
	} {
		if got, ok := value(fams, name, "delivery_stream", "clicks"); !ok || got != want {
			t.Errorf("%s = %v (%v), want %v", name, got, ok, want)
		}
	}
	if _, ok := value(fams, "firehose_DataReadFromKinesisStream_Records", "delivery_stream", "clicks"); ok {
		t.Error("DataReadFromKinesisStream exported for a delivery stream that reads no Kinesis stream")
	}
	d.ReadFromKinesis(3, 30)
	fams = scrape(t, r)
	if got, _ := value(fams, "firehose_DataReadFromKinesisStream_Bytes", "delivery_stream", "clicks"); got != 30 {
		t.Errorf("DataReadFromKinesisStream.Bytes = %v, want 30", got)
	}
	d.SetFreshness(nil)
	if got, _ := value(scrape(t, r), "firehose_DeliveryToS3_DataFreshness", "delivery_stream", "clicks"); got != 0 {
		t.Errorf("freshness without a worker = %v, want 0", got)
	}

	// Deleted (not in the live set), or created again under a new id: the
	// old series go.
	r.DeliveryStream("other", "1")
	r.ForgetDeliveryStream("other", "2") // another creation: kept
	if _, ok := value(scrape(t, r), "firehose_IncomingRecords", "delivery_stream", "other"); !ok {
		t.Error("forgetting another creation removed the series")
	}
	r.ForgetDeliveryStream("other", "1")
	if _, ok := value(scrape(t, r), "firehose_IncomingRecords", "delivery_stream", "other"); ok {
		t.Error("a deleted delivery stream's series remain")
	}
	if d2 := r.DeliveryStream("clicks", "2"); d2 == d {
		t.Error("a new creation shares the old counters")
	}
	if got, _ := value(scrape(t, r), "firehose_IncomingRecords", "delivery_stream", "clicks"); got != 0 {
		t.Errorf("a new creation starts at %v, want 0", got)
	}
}

func TestDeliverySeriesCap(t *testing.T) {
	r := newRegistry(t, func(o *Options) { o.MaxSeries = streamSeries + deliverySeries })
	r.Stream("s", "1")
	r.DeliveryStream("a", "1")
	r.DeliveryStream("b", "1")
	fams := scrape(t, r)
	if _, ok := value(fams, "firehose_IncomingRecords", "delivery_stream", "a"); !ok {
		t.Error("delivery stream a left out although it fits")
	}
	if _, ok := value(fams, "firehose_IncomingRecords", "delivery_stream", "b"); ok {
		t.Error("delivery stream b exported beyond the cap")
	}
	if dropped, _ := value(fams, "runnel_metrics_series_dropped"); dropped != float64(deliverySeries) {
		t.Errorf("series dropped %v, want %d", dropped, deliverySeries)
	}
}

func TestDeliveryRates(t *testing.T) {
	r := newRegistry(t, nil)
	d := r.DeliveryStream("clicks", "1")
	d.SetFreshness(func() int64 { return 1200 })
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.sampleAll(t0)
	d.Put(true, 50, 500, 0)
	d.Delivered(20, 200, 1)
	r.sampleAll(t0.Add(5 * time.Second))
	got := r.DeliveryRates("clicks")
	if len(got) != 1 || got[0].IncomingRecords != 10 || got[0].DeliveredRecords != 4 || got[0].FreshnessMillis != 1200 {
		t.Fatalf("rates %+v, want one sample of 10 in/s, 4 delivered/s, 1200 ms", got)
	}
	if r.DeliveryRates("nope") != nil {
		t.Error("rates of an unknown delivery stream")
	}
}

func TestDeliveryHotPathAllocations(t *testing.T) {
	r := newRegistry(t, nil)
	d := r.DeliveryStream("clicks", "1")
	allocs := testing.AllocsPerRun(1000, func() {
		d.Put(true, 500, 500000, 0)
		d.ObserveLatency(OpFirehosePutRecordBatch, time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per PutRecordBatch, want 0", allocs)
	}
}
