package metrics

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a Registry.
type Options struct {
	// MaxSeries bounds the time series of streams and shards exported (a
	// histogram counts one series per bucket plus two). Past it, shard-level
	// series go first, then whole streams in name order, with one warning in
	// the log. Default 100000.
	MaxSeries int
	// SampleInterval is how often the rates read by StreamRates are
	// sampled. Default 5s.
	SampleInterval time.Duration
	// History is how far back StreamRates reaches. Default 15m.
	History time.Duration
	// Logger receives the warning when MaxSeries is reached. Nil discards.
	Logger *slog.Logger
}

// DefaultOptions returns the defaults described on each Options field.
func DefaultOptions() Options {
	return Options{
		MaxSeries:      100000,
		SampleInterval: 5 * time.Second,
		History:        15 * time.Minute,
	}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.MaxSeries < 1 {
		return errors.New("metrics: MaxSeries must be positive")
	}
	if o.SampleInterval <= 0 || o.History < o.SampleInterval {
		return errors.New("metrics: SampleInterval must be positive and History at least SampleInterval")
	}
	return nil
}

// EngineStats is a snapshot of the storage engine's state.
type EngineStats struct {
	// OpenFiles is the number of segment files the engine holds open.
	OpenFiles int
	// TailCacheBytes is what the engine's tail cache of the newest records
	// holds now.
	TailCacheBytes int64
	// ReadsFromCache and ReadsFromSegments count reads served from the
	// tail cache and segments read (docs/METRICS.md).
	ReadsFromCache, ReadsFromSegments uint64
	// Logs lists the engine's logs.
	Logs []LogStats
}

// LogStats describes one log (one shard) on disk.
type LogStats struct {
	// Name is the log's name, "<stream id>.<shard index>".
	Name string
	// Segments is the number of segment files.
	Segments int
	// Bytes is the size of its files on disk.
	Bytes int64
}

// Registry is the server's set of metrics: the streams' counters, the
// engine's, the Go runtime's and the process's, served by Handler. It is
// safe for concurrent use.
type Registry struct {
	opts Options
	log  *slog.Logger
	reg  *prometheus.Registry

	mu struct {
		sync.Mutex
		streams    map[string]*Stream         // by name
		deliveries map[string]*DeliveryStream // by name
	}

	capped atomic.Bool // MaxSeries was reached at the last scrape

	engine      *engineMetrics
	engineStats atomic.Pointer[func() EngineStats]
	consumerLag atomic.Pointer[func(context.Context) []ConsumerLag]

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// New returns a Registry and starts its rate sampler; Close stops it.
func New(opts Options) (*Registry, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	r := &Registry{
		opts: opts,
		log:  opts.Logger,
		reg:  prometheus.NewRegistry(),
		stop: make(chan struct{}),
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.mu.streams = make(map[string]*Stream)
	r.mu.deliveries = make(map[string]*DeliveryStream)
	r.engine = newEngineMetrics()
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		r.engine.append, r.engine.sync,
		(*streamCollector)(r),
	} {
		if err := r.reg.Register(c); err != nil {
			return nil, err
		}
	}
	r.wg.Add(1)
	go r.sampler()
	return r, nil
}

// Close stops the rate sampler.
func (r *Registry) Close() {
	r.once.Do(func() { close(r.stop) })
	r.wg.Wait()
}

// Handler serves the metrics in Prometheus' text format.
func (r *Registry) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// SetEngineStats sets the function called at each scrape for the storage
// engine's gauges (bytes on disk, segments, open files); without one they
// are not exported. The engine is opened after the registry exists, as it
// reports its timings to EngineObserver.
func (r *Registry) SetEngineStats(f func() EngineStats) { r.engineStats.Store(&f) }

// Gatherer is the registry as Prometheus' client library sees it (for
// tests and for serving it another way).
func (r *Registry) Gatherer() prometheus.Gatherer { return r.reg }

// Register adds another collector to the registry.
func (r *Registry) Register(c prometheus.Collector) error { return r.reg.Register(c) }

// Stream returns the counters of stream name in its creation id, creating
// them on first use. A new id (the stream was deleted and created again)
// starts new counters, as CloudWatch does for a new stream. A nil Registry
// returns nil.
func (r *Registry) Stream(name, id string) *Stream {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.mu.streams[name]; s != nil && s.id == id {
		return s
	}
	s := newStream(r, name, id)
	r.mu.streams[name] = s
	return s
}

// Forget removes the counters of stream name (of creation id, or any when
// id is empty): the stream was deleted. Its series disappear from the next
// scrape. A nil Registry ignores it.
func (r *Registry) Forget(name, id string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.mu.streams[name]; s != nil && (id == "" || s.id == id) {
		delete(r.mu.streams, name)
	}
}

// streamList returns the streams known, sorted by name.
func (r *Registry) streamList() []*Stream {
	r.mu.Lock()
	defer r.mu.Unlock()
	return byName(r.mu.streams)
}

// byName returns the values of m, which is keyed by name, sorted by name.
func byName[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, name := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[name])
	}
	return out
}

// streamCollector exports the streams' counters and the engine's gauges
// at each scrape. It describes nothing in advance (an "unchecked"
// collector): its series come and go with streams and enhanced monitoring.
type streamCollector Registry

// Describe implements prometheus.Collector.
func (c *streamCollector) Describe(chan<- *prometheus.Desc) {}

// counterDef is one per-stream counter.
type counterDef struct {
	desc *prometheus.Desc
	get  func(*Stream) uint64
}

func streamDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("kinesis_"+name, help, []string{"stream"}, nil)
}

// streamCounters are the stream-level counters, CloudWatch's names with
// dots as underscores.
var streamCounters = []counterDef{
	{streamDesc("IncomingBytes", "Bytes (data plus partition keys) successfully put to the stream by PutRecord and PutRecords."), func(s *Stream) uint64 { return s.incomingBytes.Load() }},
	{streamDesc("IncomingRecords", "Records successfully put to the stream by PutRecord and PutRecords."), func(s *Stream) uint64 { return s.incomingRecords.Load() }},
	{streamDesc("PutRecord_Bytes", "Bytes put to the stream by successful PutRecord calls."), func(s *Stream) uint64 { return s.putRecordBytes.Load() }},
	{streamDesc("PutRecord_Success", "Successful PutRecord calls; kinesis_PutRecord_Latency_count counts them all."), func(s *Stream) uint64 { return s.putRecordSuccess.Load() }},
	{streamDesc("PutRecords_Bytes", "Bytes put to the stream by the successful records of PutRecords calls."), func(s *Stream) uint64 { return s.putRecordsBytes.Load() }},
	{streamDesc("PutRecords_Records", "Records written by PutRecords calls (the same as PutRecords_SuccessfulRecords; CloudWatch keeps the name for compatibility)."), func(s *Stream) uint64 { return s.putRecordsSuccessful.Load() }},
	{streamDesc("PutRecords_Success", "PutRecords calls in which at least one record was written."), func(s *Stream) uint64 { return s.putRecordsSuccess.Load() }},
	{streamDesc("PutRecords_TotalRecords", "Records sent in PutRecords calls that reached the shards."), func(s *Stream) uint64 { return s.putRecordsTotal.Load() }},
	{streamDesc("PutRecords_SuccessfulRecords", "Records written by PutRecords calls."), func(s *Stream) uint64 { return s.putRecordsSuccessful.Load() }},
	{streamDesc("PutRecords_FailedRecords", "Records of PutRecords calls that failed with InternalFailure."), func(s *Stream) uint64 { return s.putRecordsFailed.Load() }},
	{streamDesc("PutRecords_ThrottledRecords", "Records of PutRecords calls refused with ProvisionedThroughputExceededException."), func(s *Stream) uint64 { return s.putRecordsThrottled.Load() }},
	{streamDesc("GetRecords_Bytes", "Bytes (data plus partition keys) returned by GetRecords calls."), func(s *Stream) uint64 { return s.getRecordsBytes.Load() }},
	{streamDesc("GetRecords_Records", "Records returned by GetRecords calls."), func(s *Stream) uint64 { return s.getRecordsRecords.Load() }},
	{streamDesc("GetRecords_Success", "Successful GetRecords calls; kinesis_GetRecords_Latency_count counts them all."), func(s *Stream) uint64 { return s.getRecordsSuccess.Load() }},
	{streamDesc("WriteProvisionedThroughputExceeded", "Records refused by PutRecord and PutRecords for exceeding a shard's write limits."), func(s *Stream) uint64 { return s.writeExceeded.Load() }},
	{streamDesc("ReadProvisionedThroughputExceeded", "GetRecords calls refused for exceeding a shard's read limits."), func(s *Stream) uint64 { return s.readExceeded.Load() }},
	{streamDesc("SubscribeToShard_Success", "SubscribeToShard calls that started a subscription."), func(s *Stream) uint64 { return s.subscribeSuccess.Load() }},
	{streamDesc("SubscribeToShard_RateExceeded", "SubscribeToShard calls refused because the consumer subscribed to the shard less than 5 seconds before."), func(s *Stream) uint64 { return s.subscribeRateExceeded.Load() }},
	{streamDesc("SubscribeToShardEvent_Bytes", "Bytes (data plus partition keys) sent in SubscribeToShard events."), func(s *Stream) uint64 { return s.eventBytes.Load() }},
	{streamDesc("SubscribeToShardEvent_Records", "Records sent in SubscribeToShard events."), func(s *Stream) uint64 { return s.eventRecords.Load() }},
	{streamDesc("SubscribeToShardEvent_Success", "SubscribeToShard events sent."), func(s *Stream) uint64 { return s.eventSuccess.Load() }},
}

var (
	descIteratorAge = streamDesc("GetRecords_IteratorAgeMilliseconds",
		"Age in milliseconds of the last record returned by GetRecords: the largest over the stream's shards read in the last minute (0 for a shard read to its end).")
	descMillisBehind = streamDesc("SubscribeToShardEvent_MillisBehindLatest",
		"MillisBehindLatest of the last SubscribeToShard event: the largest over the stream's shards with an event in the last minute.")
)

// shardDef is one shard-level metric.
type shardDef struct {
	bit  ShardMetric
	desc *prometheus.Desc
	typ  prometheus.ValueType
	get  func(sh *Shard, now int64) float64
}

func shardDesc(name, help string) *prometheus.Desc {
	return prometheus.NewDesc("kinesis_shard_"+name, help+" Exported while EnableEnhancedMonitoring has turned "+name+" on for the stream.", []string{"stream", "shard"}, nil)
}

var shardDefs = []shardDef{
	{ShardIncomingBytes, shardDesc("IncomingBytes", "Bytes successfully put to the shard."), prometheus.CounterValue, func(sh *Shard, _ int64) float64 { return float64(sh.incomingBytes.Load()) }},
	{ShardIncomingRecords, shardDesc("IncomingRecords", "Records successfully put to the shard."), prometheus.CounterValue, func(sh *Shard, _ int64) float64 { return float64(sh.incomingRecords.Load()) }},
	{ShardOutgoingBytes, shardDesc("OutgoingBytes", "Bytes read from the shard by GetRecords and SubscribeToShard."), prometheus.CounterValue, func(sh *Shard, _ int64) float64 { return float64(sh.outgoingBytes.Load()) }},
	{ShardOutgoingRecords, shardDesc("OutgoingRecords", "Records read from the shard by GetRecords and SubscribeToShard."), prometheus.CounterValue, func(sh *Shard, _ int64) float64 { return float64(sh.outgoingRecords.Load()) }},
	{ShardWriteProvisionedThroughputExceeded, shardDesc("WriteProvisionedThroughputExceeded", "Records refused for exceeding the shard's write limits."), prometheus.CounterValue, func(sh *Shard, _ int64) float64 { return float64(sh.writeExceeded.Load()) }},
	{ShardReadProvisionedThroughputExceeded, shardDesc("ReadProvisionedThroughputExceeded", "GetRecords calls refused for exceeding the shard's read limits."), prometheus.CounterValue, func(sh *Shard, _ int64) float64 { return float64(sh.readExceeded.Load()) }},
	{ShardIteratorAgeMilliseconds, shardDesc("IteratorAgeMilliseconds", "Age in milliseconds of the last record GetRecords returned from the shard in the last minute."), prometheus.GaugeValue, func(sh *Shard, now int64) float64 { return float64(sh.shardAge(now)) }},
}

var (
	descEngineBytes        = prometheus.NewDesc("runnel_engine_bytes", "Bytes of segment and index files of all logs on disk.", nil, nil)
	descEngineSegments     = prometheus.NewDesc("runnel_engine_segments", "Segment files of all logs.", nil, nil)
	descEngineOpenFiles    = prometheus.NewDesc("runnel_engine_open_files", "Segment and index files the engine holds open.", nil, nil)
	descEngineTailBytes    = prometheus.NewDesc("runnel_engine_tail_cache_bytes", "Bytes of the shards' newest records the engine keeps in memory for readers (--tail-cache).", nil, nil)
	descEngineReads        = prometheus.NewDesc("runnel_engine_reads_total", "Reads of records by where they came from: source=tail_cache (memory) or segment (one per segment file a read visits).", []string{"source"}, nil)
	descEngineStreamBytes  = prometheus.NewDesc("runnel_engine_stream_bytes", "Bytes of segment and index files of the stream's shards on disk.", []string{"stream"}, nil)
	descEngineStreamSegs   = prometheus.NewDesc("runnel_engine_stream_segments", "Segment files of the stream's shards.", []string{"stream"}, nil)
	descSeriesDropped      = prometheus.NewDesc("runnel_metrics_series_dropped", "Series left out of this scrape because the series cap (--metrics-max-series) was reached.", nil, nil)
	histogramSeries        = len(latencyBuckets) + 3 // buckets, +Inf, sum, count
	streamSeries           = len(streamCounters) + 2 + int(numOps)*histogramSeries + 2
	engineStreamSeriesEach = 2
)

// Collect implements prometheus.Collector.
func (c *streamCollector) Collect(ch chan<- prometheus.Metric) {
	r := (*Registry)(c)
	now := nowMs()
	streams := r.streamList()
	budget, dropped := r.opts.MaxSeries, 0

	// Engine gauges by stream id, for the streams' series.
	var byID map[string]*LogStats
	if f := r.engineStats.Load(); f != nil && *f != nil {
		es := (*f)()
		var bytes int64
		segs := 0
		byID = make(map[string]*LogStats)
		for _, l := range es.Logs {
			bytes += l.Bytes
			segs += l.Segments
			id := l.Name
			if i := strings.LastIndexByte(id, '.'); i >= 0 {
				id = id[:i]
			}
			t := byID[id]
			if t == nil {
				t = &LogStats{Name: id}
				byID[id] = t
			}
			t.Bytes += l.Bytes
			t.Segments += l.Segments
		}
		ch <- prometheus.MustNewConstMetric(descEngineBytes, prometheus.GaugeValue, float64(bytes))
		ch <- prometheus.MustNewConstMetric(descEngineSegments, prometheus.GaugeValue, float64(segs))
		ch <- prometheus.MustNewConstMetric(descEngineOpenFiles, prometheus.GaugeValue, float64(es.OpenFiles))
		ch <- prometheus.MustNewConstMetric(descEngineTailBytes, prometheus.GaugeValue, float64(es.TailCacheBytes))
		ch <- prometheus.MustNewConstMetric(descEngineReads, prometheus.CounterValue, float64(es.ReadsFromCache), "tail_cache")
		ch <- prometheus.MustNewConstMetric(descEngineReads, prometheus.CounterValue, float64(es.ReadsFromSegments), "segment")
	}

	// Stream level first: every stream's before any shard's.
	for _, s := range streams {
		if budget < streamSeries {
			dropped += streamSeries
			continue
		}
		budget -= streamSeries
		for _, d := range streamCounters {
			ch <- prometheus.MustNewConstMetric(d.desc, prometheus.CounterValue, float64(d.get(s)), s.name)
		}
		age, behind := s.ages(now)
		ch <- prometheus.MustNewConstMetric(descIteratorAge, prometheus.GaugeValue, float64(age), s.name)
		ch <- prometheus.MustNewConstMetric(descMillisBehind, prometheus.GaugeValue, float64(behind), s.name)
		for op := range numOps {
			s.latency[op].Collect(ch)
		}
		var bytes, segs float64
		if t := byID[s.id]; t != nil {
			bytes, segs = float64(t.Bytes), float64(t.Segments)
		}
		if byID != nil {
			ch <- prometheus.MustNewConstMetric(descEngineStreamBytes, prometheus.GaugeValue, bytes, s.name)
			ch <- prometheus.MustNewConstMetric(descEngineStreamSegs, prometheus.GaugeValue, segs, s.name)
		}
	}

	// Delivery streams, then consumer applications' lag, before the
	// shard-level series.
	var deliveryDropped int
	budget, deliveryDropped = r.collectDeliveries(ch, budget)
	dropped += deliveryDropped
	var lagDropped int
	budget, lagDropped = r.collectLag(ch, budget)
	dropped += lagDropped

	// Shard level, for the streams with enhanced monitoring on.
	for _, s := range streams {
		set := s.ShardLevelMetrics()
		if set == 0 {
			continue
		}
		for _, sh := range s.shardList() {
			if sh == nil || !sh.exported(now) {
				continue
			}
			for _, d := range shardDefs {
				if set&d.bit == 0 {
					continue
				}
				if budget < 1 {
					dropped++
					continue
				}
				budget--
				ch <- prometheus.MustNewConstMetric(d.desc, d.typ, d.get(sh, now), s.name, sh.id)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(descSeriesDropped, prometheus.GaugeValue, float64(dropped))
	r.noteCap(dropped)
}

// noteCap logs when the series cap starts and stops leaving series out.
func (r *Registry) noteCap(dropped int) {
	if dropped > 0 && !r.capped.Swap(true) {
		r.log.Warn("metrics: series cap reached; some streams' or shards' series are left out of /metrics",
			slog.Int("max_series", r.opts.MaxSeries), slog.Int("left_out", dropped),
			slog.String("fix", "raise --metrics-max-series (RUNNEL_METRICS_MAX_SERIES) or disable enhanced monitoring on some streams"))
	} else if dropped == 0 && r.capped.Swap(false) {
		r.log.Info("metrics: back under the series cap; every series is exported", slog.Int("max_series", r.opts.MaxSeries))
	}
}
