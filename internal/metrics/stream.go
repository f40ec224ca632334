package metrics

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Op names an operation whose latency is a histogram.
type Op int

// The operations with a Latency metric.
const (
	OpPutRecord Op = iota
	OpPutRecords
	OpGetRecords
	numOps
)

// opNames are the operations' names as in the metric names.
var opNames = [numOps]string{"PutRecord", "PutRecords", "GetRecords"}

// ShardMetric is one of the shard-level metrics EnableEnhancedMonitoring
// turns on, as a bit of a set.
type ShardMetric uint32

// The shard-level metrics, Kinesis' ShardLevelMetrics names.
const (
	ShardIncomingBytes ShardMetric = 1 << iota
	ShardIncomingRecords
	ShardOutgoingBytes
	ShardOutgoingRecords
	ShardWriteProvisionedThroughputExceeded
	ShardReadProvisionedThroughputExceeded
	ShardIteratorAgeMilliseconds
)

// shardMetricNames maps ShardLevelMetrics names to their bit.
var shardMetricNames = map[string]ShardMetric{
	"IncomingBytes":                      ShardIncomingBytes,
	"IncomingRecords":                    ShardIncomingRecords,
	"OutgoingBytes":                      ShardOutgoingBytes,
	"OutgoingRecords":                    ShardOutgoingRecords,
	"WriteProvisionedThroughputExceeded": ShardWriteProvisionedThroughputExceeded,
	"ReadProvisionedThroughputExceeded":  ShardReadProvisionedThroughputExceeded,
	"IteratorAgeMilliseconds":            ShardIteratorAgeMilliseconds,
}

// ageWindow is how long a shard's last iterator age (or MillisBehindLatest)
// counts towards its stream's: CloudWatch's one-minute period. A shard no
// one has read for longer has no age.
const ageWindow = time.Minute

// closedShardLinger is how long after its last read a shard closed by
// resharding keeps its shard-level series (its consumers drain it first).
const closedShardLinger = 5 * time.Minute

// Stream holds the counters of one stream (one creation of it: a stream
// deleted and created again gets a new Stream). The service resolves it once
// per cached stream description and counts on it without any lookup; every
// method is safe for concurrent use and does nothing on a nil *Stream, so a
// service without metrics passes nil.
type Stream struct {
	name, id string
	reg      *Registry

	incomingBytes, incomingRecords atomic.Uint64

	putRecordBytes, putRecordSuccess atomic.Uint64

	putRecordsBytes, putRecordsSuccess, putRecordsTotal         atomic.Uint64
	putRecordsSuccessful, putRecordsFailed, putRecordsThrottled atomic.Uint64

	getRecordsBytes, getRecordsRecords, getRecordsSuccess atomic.Uint64

	writeExceeded, readExceeded atomic.Uint64

	subscribeSuccess, subscribeRateExceeded atomic.Uint64

	eventBytes, eventRecords, eventSuccess atomic.Uint64

	latency [numOps]prometheus.Histogram

	// shardSet is the ShardMetric set enhanced monitoring turned on.
	shardSet atomic.Uint32

	mu struct {
		sync.Mutex
		shards []*Shard // by shard index
		rates  rateRing
	}
}

// Shard holds one shard's counters, kept for every shard; they are exported
// only for the shard-level metrics enhanced monitoring turned on. Methods do
// nothing on a nil *Shard.
type Shard struct {
	id string

	incomingBytes, incomingRecords atomic.Uint64
	outgoingBytes, outgoingRecords atomic.Uint64
	writeExceeded, readExceeded    atomic.Uint64

	// The last iterator age (GetRecords) and MillisBehindLatest
	// (SubscribeToShard) seen, each with when, in Unix ms.
	age, ageAt       atomic.Int64
	behind, behindAt atomic.Int64

	open       atomic.Bool
	lastActive atomic.Int64 // Unix ms of the last read or write

	// The rate over the last sample interval and the totals it was taken
	// at, guarded by the stream's mu (rates.go).
	rate     ShardRate
	rateLast totals
}

func newStream(r *Registry, name, id string) *Stream {
	s := &Stream{name: name, id: id, reg: r}
	for op := range numOps {
		s.latency[op] = prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "kinesis_" + opNames[op] + "_Latency",
			Help:        "Time to answer a " + opNames[op] + " request, in milliseconds, from its arrival to the last byte of the answer.",
			Buckets:     latencyBuckets,
			ConstLabels: prometheus.Labels{"stream": name},
		})
	}
	s.mu.rates = newRateRing(r.ringLen())
	return s
}

// latencyBuckets are the upper bounds of the latency histograms, in
// milliseconds: from a fast in-memory answer to a slow fsync under load.
var latencyBuckets = []float64{0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// Name is the stream's name.
func (s *Stream) Name() string { return s.name }

// Shard returns the counters of shard index (its id "shardId-..."), creating
// them on first use; the caller caches the result with its own shard state.
// open says whether the shard takes writes (not closed by resharding).
func (s *Stream) Shard(index int, id string, open bool) *Shard {
	if s == nil || index < 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.mu.shards) <= index {
		s.mu.shards = append(s.mu.shards, nil)
	}
	sh := s.mu.shards[index]
	if sh == nil {
		sh = &Shard{id: id}
		s.mu.shards[index] = sh
	}
	sh.open.Store(open)
	return sh
}

// SetShardLevelMetrics sets the shard-level metrics exported, by their
// ShardLevelMetrics names (as stored by EnableEnhancedMonitoring; unknown
// names are ignored, ALL stands for every one). Series of metrics no longer
// in the set disappear from the next scrape.
func (s *Stream) SetShardLevelMetrics(names []string) {
	if s == nil {
		return
	}
	var set ShardMetric
	for _, n := range names {
		if n == "ALL" {
			for _, b := range shardMetricNames {
				set |= b
			}
			continue
		}
		set |= shardMetricNames[n]
	}
	s.shardSet.Store(uint32(set))
}

// ShardLevelMetrics returns the set of shard-level metrics exported.
func (s *Stream) ShardLevelMetrics() ShardMetric {
	if s == nil {
		return 0
	}
	return ShardMetric(s.shardSet.Load())
}

func (sh *Shard) in(records, bytes int, now int64) {
	if sh == nil {
		return
	}
	sh.incomingRecords.Add(uint64(records))
	sh.incomingBytes.Add(uint64(bytes))
	sh.lastActive.Store(now)
}

func (sh *Shard) out(records, bytes int, now int64) {
	if sh == nil {
		return
	}
	sh.outgoingRecords.Add(uint64(records))
	sh.outgoingBytes.Add(uint64(bytes))
	sh.lastActive.Store(now)
}

// PutRecord counts one successful PutRecord of bytes (data plus partition
// key) into shard sh.
func (s *Stream) PutRecord(sh *Shard, bytes int) {
	if s == nil {
		return
	}
	s.incomingRecords.Add(1)
	s.incomingBytes.Add(uint64(bytes))
	s.putRecordBytes.Add(uint64(bytes))
	s.putRecordSuccess.Add(1)
	sh.in(1, bytes, nowMs())
}

// PutRecordsShard counts records records of bytes written to shard sh by a
// PutRecords request; PutRecords then counts the request.
func (s *Stream) PutRecordsShard(sh *Shard, records, bytes int) {
	if s == nil {
		return
	}
	s.incomingRecords.Add(uint64(records))
	s.incomingBytes.Add(uint64(bytes))
	s.putRecordsBytes.Add(uint64(bytes))
	sh.in(records, bytes, nowMs())
}

// PutRecords counts one PutRecords request that reached the shards: total
// records in it, of which failed failed (internal errors) and throttled were
// refused for throughput. Its successful records were counted with
// PutRecordsShard.
func (s *Stream) PutRecords(total, failed, throttled int) {
	if s == nil {
		return
	}
	ok := total - failed - throttled
	s.putRecordsTotal.Add(uint64(total))
	s.putRecordsSuccessful.Add(uint64(ok))
	s.putRecordsFailed.Add(uint64(failed))
	s.putRecordsThrottled.Add(uint64(throttled))
	if ok > 0 {
		s.putRecordsSuccess.Add(1)
	}
}

// WriteThrottled counts records refused by shard sh's write limits.
func (s *Stream) WriteThrottled(sh *Shard, records int) {
	if s == nil {
		return
	}
	s.writeExceeded.Add(uint64(records))
	if sh != nil {
		sh.writeExceeded.Add(uint64(records))
	}
}

// ReadThrottled counts a GetRecords call refused by shard sh's read limits.
func (s *Stream) ReadThrottled(sh *Shard) {
	if s == nil {
		return
	}
	s.readExceeded.Add(1)
	if sh != nil {
		sh.readExceeded.Add(1)
	}
}

// GetRecords counts one successful GetRecords call on shard sh that returned
// records records of bytes; ageMs is the iterator age: how long ago the last
// record returned arrived, 0 when none was.
func (s *Stream) GetRecords(sh *Shard, records, bytes int, ageMs int64) {
	if s == nil {
		return
	}
	s.getRecordsSuccess.Add(1)
	s.getRecordsRecords.Add(uint64(records))
	s.getRecordsBytes.Add(uint64(bytes))
	if sh != nil {
		now := nowMs()
		sh.out(records, bytes, now)
		sh.age.Store(ageMs)
		sh.ageAt.Store(now)
	}
}

// Subscribed counts a SubscribeToShard call that started a subscription.
func (s *Stream) Subscribed() {
	if s == nil {
		return
	}
	s.subscribeSuccess.Add(1)
}

// SubscribeRateExceeded counts a SubscribeToShard call refused because the
// consumer's previous subscription to the shard was too recent.
func (s *Stream) SubscribeRateExceeded() {
	if s == nil {
		return
	}
	s.subscribeRateExceeded.Add(1)
}

// Event counts one SubscribeToShardEvent sent from shard sh with records
// records of bytes and its MillisBehindLatest.
func (s *Stream) Event(sh *Shard, records, bytes int, behindMs int64) {
	if s == nil {
		return
	}
	s.eventSuccess.Add(1)
	s.eventRecords.Add(uint64(records))
	s.eventBytes.Add(uint64(bytes))
	if sh != nil {
		now := nowMs()
		sh.out(records, bytes, now)
		sh.behind.Store(behindMs)
		sh.behindAt.Store(now)
	}
}

// ObserveLatency records the time one request of op took.
func (s *Stream) ObserveLatency(op Op, d time.Duration) {
	if s == nil || op < 0 || op >= numOps {
		return
	}
	s.latency[op].Observe(float64(d.Nanoseconds()) / 1e6)
}

// shards returns a copy of the shard list.
func (s *Stream) shardList() []*Shard {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Shard(nil), s.mu.shards...)
}

// ages returns the stream's iterator age and SubscribeToShard
// MillisBehindLatest: the largest of its shards' recent values.
func (s *Stream) ages(now int64) (age, behind int64) {
	for _, sh := range s.shardList() {
		if sh == nil {
			continue
		}
		if a, at := sh.age.Load(), sh.ageAt.Load(); at != 0 && now-at <= ageWindow.Milliseconds() && a > age {
			age = a
		}
		if b, at := sh.behind.Load(), sh.behindAt.Load(); at != 0 && now-at <= ageWindow.Milliseconds() && b > behind {
			behind = b
		}
	}
	return age, behind
}

// shardAge is a shard's recent iterator age, 0 when it was not read lately.
func (sh *Shard) shardAge(now int64) int64 {
	if at := sh.ageAt.Load(); at != 0 && now-at <= ageWindow.Milliseconds() {
		return sh.age.Load()
	}
	return 0
}

// exported reports whether the shard's series are exported: it is open, or
// closed but read lately.
func (sh *Shard) exported(now int64) bool {
	return sh.open.Load() || now-sh.lastActive.Load() <= closedShardLinger.Milliseconds()
}

// nowMs is the wall clock in Unix milliseconds.
func nowMs() int64 { return time.Now().UnixMilli() }

// Call links one request to the stream it acts on, so that the wire layer,
// which measures the request, can record its latency under a stream it does
// not know (GetRecords names its stream only inside the shard iterator). The
// wire layer keeps a Call in its per-request state, so using one allocates
// nothing; the service finds it with CallFrom and sets the stream once it
// has resolved it.
//
// A Call is a context.Context: the request's context with the Call added.
type Call struct {
	context.Context
	stream *Stream
}

type callKey struct{}

// Reset readies c for a request whose context is parent.
func (c *Call) Reset(parent context.Context) {
	c.Context, c.stream = parent, nil
}

// Value implements context.Context.
func (c *Call) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// CallFrom returns the Call in ctx, or nil.
func CallFrom(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

// SetStream records the stream the request acts on. A nil c is ignored.
func (c *Call) SetStream(s *Stream) {
	if c != nil {
		c.stream = s
	}
}

// Stream is the stream the request acts on, nil when the service did not
// resolve one (an invalid request, or metrics off).
func (c *Call) Stream() *Stream { return c.stream }
