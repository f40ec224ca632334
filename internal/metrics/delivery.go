package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DeliveryOp names a Firehose operation whose latency is a histogram.
type DeliveryOp int

// The Firehose operations with a Latency metric.
const (
	OpFirehosePutRecord DeliveryOp = iota
	OpFirehosePutRecordBatch
	numDeliveryOps
)

var deliveryOpNames = [numDeliveryOps]string{"PutRecord", "PutRecordBatch"}

// DeliveryStream holds the counters of one delivery stream (one creation
// of it: a delivery stream deleted and created again gets a new one). The
// delivery service resolves it once per delivery stream and counts on it
// without any lookup; every method is safe for concurrent use and does
// nothing on a nil *DeliveryStream.
type DeliveryStream struct {
	name, id string

	incomingRecords, incomingBytes, incomingPutRequests atomic.Uint64
	putRecordRequests, putRecordBytes                   atomic.Uint64
	putRecordBatchRequests, putRecordBatchRecords       atomic.Uint64
	putRecordBatchBytes, throttledRecords               atomic.Uint64

	readRecords, readBytes atomic.Uint64 // DataReadFromKinesisStream
	kinesisSource          atomic.Bool

	deliveredRecords, deliveredBytes atomic.Uint64 // DeliveryToS3.Records/Bytes
	objectsWritten, objectsFailed    atomic.Uint64 // DeliveryToS3.Success and failed puts
	objectsDelivered                 atomic.Uint64 // DeliveryToS3.ObjectCount

	// freshness returns the age in milliseconds of the oldest record not
	// yet delivered, set by the service while it delivers the stream.
	freshness atomic.Pointer[func() int64]

	latency [numDeliveryOps]prometheus.Histogram

	rates struct {
		sync.Mutex
		samples        []DeliverySample // ring
		next           int
		full           bool
		lastIn, lastDs uint64
		lastAt         time.Time
	}
}

// DeliverySample is one point of a delivery stream's recent activity, for
// charts.
type DeliverySample struct {
	Time time.Time
	// IncomingRecords and DeliveredRecords are records accepted and
	// delivered per second since the previous sample.
	IncomingRecords, DeliveredRecords float64
	// FreshnessMillis is the age of the oldest record not yet delivered
	// at Time.
	FreshnessMillis int64
}

func newDeliveryStream(name, id string, ring int) *DeliveryStream {
	d := &DeliveryStream{name: name, id: id}
	d.rates.samples = make([]DeliverySample, ring)
	for op := range numDeliveryOps {
		d.latency[op] = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "firehose_" + deliveryOpNames[op] + "_Latency",
			Help:        "Time to answer a Firehose " + deliveryOpNames[op] + " request, in milliseconds.",
			Buckets:     latencyBuckets,
			ConstLabels: prometheus.Labels{"delivery_stream": name},
		})
	}
	return d
}

// Name is the delivery stream's name.
func (d *DeliveryStream) Name() string { return d.name }

// DeliveryStream returns the counters of delivery stream name in its
// creation id, creating them on first use; a new id starts new counters.
// A nil Registry returns nil.
func (r *Registry) DeliveryStream(name, id string) *DeliveryStream {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.mu.deliveries[name]; d != nil && d.id == id {
		return d
	}
	d := newDeliveryStream(name, id, r.ringLen())
	r.mu.deliveries[name] = d
	return d
}

// ForgetDeliveryStream drops the counters of delivery stream name of
// creation id (any when id is empty): it is being deleted. Its series
// disappear from the next scrape. A nil Registry ignores it.
func (r *Registry) ForgetDeliveryStream(name, id string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.mu.deliveries[name]; d != nil && (id == "" || d.id == id) {
		delete(r.mu.deliveries, name)
	}
}

// deliveryList returns the counters of the delivery streams known,
// sorted by name.
func (r *Registry) deliveryList() []*DeliveryStream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return byName(r.mu.deliveries)
}

// Put counts one successful PutRecord (batch false) or PutRecordBatch
// request: records of bytes accepted, throttled refused.
func (d *DeliveryStream) Put(batch bool, records, bytes, throttled int) {
	if d == nil {
		return
	}
	d.incomingRecords.Add(uint64(records))
	d.incomingBytes.Add(uint64(bytes))
	d.incomingPutRequests.Add(1)
	d.throttledRecords.Add(uint64(throttled))
	if batch {
		d.putRecordBatchRequests.Add(1)
		d.putRecordBatchRecords.Add(uint64(records))
		d.putRecordBatchBytes.Add(uint64(bytes))
	} else {
		d.putRecordRequests.Add(1)
		d.putRecordBytes.Add(uint64(bytes))
	}
}

// Throttled counts records of a request refused as a whole for throughput.
func (d *DeliveryStream) Throttled(records int) {
	if d == nil {
		return
	}
	d.throttledRecords.Add(uint64(records))
}

// ObserveLatency records the time one request of op took.
func (d *DeliveryStream) ObserveLatency(op DeliveryOp, t time.Duration) {
	if d == nil || op < 0 || op >= numDeliveryOps {
		return
	}
	d.latency[op].Observe(float64(t.Nanoseconds()) / 1e6)
}

// ReadFromKinesis counts records of bytes read from the source stream of a
// KinesisStreamAsSource delivery stream.
func (d *DeliveryStream) ReadFromKinesis(records, bytes int) {
	if d == nil {
		return
	}
	d.kinesisSource.Store(true)
	d.readRecords.Add(uint64(records))
	d.readBytes.Add(uint64(bytes))
}

// SetKinesisSource says that the delivery stream reads a Kinesis stream,
// so that its DataReadFromKinesisStream series are exported.
func (d *DeliveryStream) SetKinesisSource() {
	if d != nil {
		d.kinesisSource.Store(true)
	}
}

// ObjectWritten counts one object put to the destination (ok) or one
// failed attempt to put it.
func (d *DeliveryStream) ObjectWritten(ok bool) {
	if d == nil {
		return
	}
	if ok {
		d.objectsWritten.Add(1)
	} else {
		d.objectsFailed.Add(1)
	}
}

// Delivered counts a batch whose objects are all written and whose
// progress is stored: records of bytes in objects objects.
func (d *DeliveryStream) Delivered(records, bytes, objects int) {
	if d == nil {
		return
	}
	d.deliveredRecords.Add(uint64(records))
	d.deliveredBytes.Add(uint64(bytes))
	d.objectsDelivered.Add(uint64(objects))
}

// SetFreshness sets the function that returns the age in milliseconds of
// the oldest record not yet delivered (0 when all are); nil removes it,
// and DataFreshness reads 0.
func (d *DeliveryStream) SetFreshness(f func() int64) {
	if d == nil {
		return
	}
	if f == nil {
		d.freshness.Store(nil)
		return
	}
	d.freshness.Store(&f)
}

// FreshnessMillis is the age of the oldest record not yet delivered.
func (d *DeliveryStream) FreshnessMillis() int64 {
	if d == nil {
		return 0
	}
	if f := d.freshness.Load(); f != nil {
		return (*f)()
	}
	return 0
}

// DeliveryCounts is a snapshot of a delivery stream's counters.
type DeliveryCounts struct {
	IncomingRecords, IncomingBytes, IncomingPutRequests uint64
	ThrottledRecords                                    uint64
	DeliveredRecords, DeliveredBytes, ObjectsDelivered  uint64
	FailedPuts                                          uint64
	FreshnessMillis                                     int64
}

// DeliveryCounts returns a snapshot of the counters of delivery stream name, and
// whether it is known.
func (r *Registry) DeliveryCounts(name string) (DeliveryCounts, bool) {
	if r == nil {
		return DeliveryCounts{}, false
	}
	r.mu.Lock()
	d := r.mu.deliveries[name]
	r.mu.Unlock()
	if d == nil {
		return DeliveryCounts{}, false
	}
	return DeliveryCounts{
		IncomingRecords: d.incomingRecords.Load(), IncomingBytes: d.incomingBytes.Load(),
		IncomingPutRequests: d.incomingPutRequests.Load(), ThrottledRecords: d.throttledRecords.Load(),
		DeliveredRecords: d.deliveredRecords.Load(), DeliveredBytes: d.deliveredBytes.Load(),
		ObjectsDelivered: d.objectsDelivered.Load(), FailedPuts: d.objectsFailed.Load(),
		FreshnessMillis: d.FreshnessMillis(),
	}, true
}

func deliveryDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("firehose_"+name, help, []string{"delivery_stream"}, nil)
}

type deliveryCounterDef struct {
	desc *prometheus.Desc
	get  func(*DeliveryStream) uint64
}

// deliveryCounters are the delivery-stream counters, Firehose's
// CloudWatch names with dots as underscores.
var deliveryCounters = []deliveryCounterDef{
	{deliveryDesc("IncomingRecords", "Records accepted by PutRecord and PutRecordBatch."), func(d *DeliveryStream) uint64 { return d.incomingRecords.Load() }},
	{deliveryDesc("IncomingBytes", "Bytes of the records accepted by PutRecord and PutRecordBatch."), func(d *DeliveryStream) uint64 { return d.incomingBytes.Load() }},
	{deliveryDesc("IncomingPutRequests", "PutRecord and PutRecordBatch requests that reached the delivery stream and were not refused as a whole."), func(d *DeliveryStream) uint64 { return d.incomingPutRequests.Load() }},
	{deliveryDesc("PutRecord_Requests", "PutRecord requests that reached the delivery stream and were not refused as a whole."), func(d *DeliveryStream) uint64 { return d.putRecordRequests.Load() }},
	{deliveryDesc("PutRecord_Bytes", "Bytes accepted by PutRecord."), func(d *DeliveryStream) uint64 { return d.putRecordBytes.Load() }},
	{deliveryDesc("PutRecordBatch_Requests", "PutRecordBatch requests that reached the delivery stream and were not refused as a whole."), func(d *DeliveryStream) uint64 { return d.putRecordBatchRequests.Load() }},
	{deliveryDesc("PutRecordBatch_Records", "Records accepted by PutRecordBatch."), func(d *DeliveryStream) uint64 { return d.putRecordBatchRecords.Load() }},
	{deliveryDesc("PutRecordBatch_Bytes", "Bytes accepted by PutRecordBatch."), func(d *DeliveryStream) uint64 { return d.putRecordBatchBytes.Load() }},
	{deliveryDesc("ThrottledRecords", "Records refused for throughput (ServiceUnavailableException)."), func(d *DeliveryStream) uint64 { return d.throttledRecords.Load() }},
	{deliveryDesc("DeliveryToS3_Records", "Records delivered to the destination bucket (objects written and progress stored)."), func(d *DeliveryStream) uint64 { return d.deliveredRecords.Load() }},
	{deliveryDesc("DeliveryToS3_Bytes", "Bytes of the records delivered to the destination bucket, before compression."), func(d *DeliveryStream) uint64 { return d.deliveredBytes.Load() }},
	{deliveryDesc("DeliveryToS3_Success", "Successful puts of objects to the destination bucket; runnel_delivery_failed_puts counts the failed ones."), func(d *DeliveryStream) uint64 { return d.objectsWritten.Load() }},
	{deliveryDesc("DeliveryToS3_ObjectCount", "Objects delivered to the destination bucket."), func(d *DeliveryStream) uint64 { return d.objectsDelivered.Load() }},
	{prometheus.NewDesc("runnel_delivery_failed_puts", "Failed attempts to put an object to the destination bucket of the delivery stream (each is retried).", []string{"delivery_stream"}, nil), func(d *DeliveryStream) uint64 { return d.objectsFailed.Load() }},
}

var (
	descDataFreshness = deliveryDesc("DeliveryToS3_DataFreshness",
		"Age in seconds of the oldest record not yet delivered to the destination bucket; 0 when every record is delivered.")
	descReadRecords = deliveryDesc("DataReadFromKinesisStream_Records", "Records read from the source Kinesis stream.")
	descReadBytes   = deliveryDesc("DataReadFromKinesisStream_Bytes", "Bytes read from the source Kinesis stream.")
	deliverySeries  = len(deliveryCounters) + 1 + int(numDeliveryOps)*histogramSeries
)

// collectDeliveries exports the delivery streams' series within budget
// and returns the budget left and the series left out.
func (r *Registry) collectDeliveries(ch chan<- prometheus.Metric, budget int) (left, dropped int) {
	for _, d := range r.deliveryList() {
		n := deliverySeries
		kinesis := d.kinesisSource.Load()
		if kinesis {
			n += 2
		}
		if budget < n {
			dropped += n
			continue
		}
		budget -= n
		for _, c := range deliveryCounters {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(c.get(d)), d.name)
		}
		ch <- prometheus.MustNewConstMetric(descDataFreshness, prometheus.GaugeValue, float64(d.FreshnessMillis())/1000, d.name)
		if kinesis {
			ch <- prometheus.MustNewConstMetric(descReadRecords, prometheus.CounterValue, float64(d.readRecords.Load()), d.name)
			ch <- prometheus.MustNewConstMetric(descReadBytes, prometheus.CounterValue, float64(d.readBytes.Load()), d.name)
		}
		for op := range numDeliveryOps {
			d.latency[op].Collect(ch)
		}
	}
	return budget, dropped
}

// sample adds a sample taken at now; the first only records the totals.
func (d *DeliveryStream) sample(now time.Time) {
	in, ds, fresh := d.incomingRecords.Load(), d.deliveredRecords.Load(), d.FreshnessMillis()
	d.rates.Lock()
	defer d.rates.Unlock()
	rg := &d.rates
	if secs := now.Sub(rg.lastAt).Seconds(); !rg.lastAt.IsZero() && secs > 0 {
		rg.samples[rg.next] = DeliverySample{Time: now, IncomingRecords: float64(in-rg.lastIn) / secs,
			DeliveredRecords: float64(ds-rg.lastDs) / secs, FreshnessMillis: fresh}
		rg.next++
		if rg.next == len(rg.samples) {
			rg.next, rg.full = 0, true
		}
	}
	rg.lastIn, rg.lastDs, rg.lastAt = in, ds, now
}

// DeliveryRates returns the recent activity of delivery stream name,
// oldest sample first, over the last Options.History; empty for a
// delivery stream not known or not yet sampled twice.
func (r *Registry) DeliveryRates(name string) []DeliverySample {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	d := r.mu.deliveries[name]
	r.mu.Unlock()
	if d == nil {
		return nil
	}
	d.rates.Lock()
	defer d.rates.Unlock()
	var out []DeliverySample
	if d.rates.full {
		out = append(out, d.rates.samples[d.rates.next:]...)
	}
	return append(out, d.rates.samples[:d.rates.next]...)
}
