package metrics

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/runnel/runnel/internal/metrics/metricstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newRegistry(t *testing.T, mod func(*Options)) *Registry {
	t.Helper()
	opts := DefaultOptions()
	if mod != nil {
		mod(&opts)
	}
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

// value is the value of a scraped series (metricstest.Value).
var value = metricstest.Value

// scrape serves /metrics once and parses it with Prometheus' own parser.
func scrape(t *testing.T, r *Registry) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d %s", rec.Code, rec.Body)
	}
	fams, err := metricstest.Parse(rec.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

func TestStreamCounters(t *testing.T) {
	r := newRegistry(t, nil)
	s := r.Stream("orders", "id1")
	if again := r.Stream("orders", "id1"); again != s {
		t.Fatal("Stream returned new counters for the same creation")
	}
	sh0 := s.Shard(0, "shardId-000000000000", true)
	sh1 := s.Shard(1, "shardId-000000000001", true)

	s.PutRecord(sh0, 100)
	s.PutRecordsShard(sh0, 3, 30)
	s.PutRecordsShard(sh1, 2, 20)
	s.PutRecords(7, 1, 1) // 5 written above, 1 internal failure, 1 throttled
	s.PutRecords(2, 2, 0) // nothing written: not a success
	s.WriteThrottled(sh1, 1)
	s.GetRecords(sh0, 4, 40, 1500)
	s.GetRecords(sh1, 0, 0, 0)
	s.ReadThrottled(sh0)
	s.Subscribed()
	s.SubscribeRateExceeded()
	s.Event(sh1, 2, 20, 700)
	s.ObserveLatency(OpPutRecord, 3*time.Millisecond)
	s.ObserveLatency(OpGetRecords, time.Millisecond)
	s.ObserveLatency(OpGetRecords, time.Millisecond)

	fams := scrape(t, r)
	want := map[string]float64{
		"kinesis_IncomingRecords":                          6,
		"kinesis_IncomingBytes":                            150,
		"kinesis_PutRecord_Bytes":                          100,
		"kinesis_PutRecord_Success":                        1,
		"kinesis_PutRecord_Latency":                        1,
		"kinesis_PutRecords_Bytes":                         50,
		"kinesis_PutRecords_Records":                       5,
		"kinesis_PutRecords_SuccessfulRecords":             5,
		"kinesis_PutRecords_TotalRecords":                  9,
		"kinesis_PutRecords_FailedRecords":                 3,
		"kinesis_PutRecords_ThrottledRecords":              1,
		"kinesis_PutRecords_Success":                       1,
		"kinesis_PutRecords_Latency":                       0,
		"kinesis_GetRecords_Records":                       4,
		"kinesis_GetRecords_Bytes":                         40,
		"kinesis_GetRecords_Success":                       2,
		"kinesis_GetRecords_Latency":                       2,
		"kinesis_GetRecords_IteratorAgeMilliseconds":       1500,
		"kinesis_WriteProvisionedThroughputExceeded":       1,
		"kinesis_ReadProvisionedThroughputExceeded":        1,
		"kinesis_SubscribeToShard_Success":                 1,
		"kinesis_SubscribeToShard_RateExceeded":            1,
		"kinesis_SubscribeToShardEvent_Records":            2,
		"kinesis_SubscribeToShardEvent_Bytes":              20,
		"kinesis_SubscribeToShardEvent_Success":            1,
		"kinesis_SubscribeToShardEvent_MillisBehindLatest": 700,
	}
	for name, w := range want {
		got, ok := value(fams, name, "stream", "orders")
		if !ok {
			t.Errorf("%s{stream=orders} missing", name)
			continue
		}
		if got != w {
			t.Errorf("%s = %v, want %v", name, got, w)
		}
	}
	// Latency is in milliseconds: 3 ms lands in the (2.5, 5] bucket.
	h := fams["kinesis_PutRecord_Latency"].Metric[0].Histogram
	if h.GetSampleSum() != 3 {
		t.Errorf("PutRecord latency sum %v ms, want 3", h.GetSampleSum())
	}
	// Without enhanced monitoring, no shard series.
	for name := range fams {
		if strings.HasPrefix(name, "kinesis_shard_") {
			t.Errorf("%s exported without enhanced monitoring", name)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "runnel_engine_append_seconds", "runnel_engine_sync_seconds"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
}

func TestShardLevelMetrics(t *testing.T) {
	r := newRegistry(t, nil)
	s := r.Stream("s", "id")
	sh := s.Shard(0, "shardId-000000000000", true)
	s.PutRecord(sh, 10)
	s.GetRecords(sh, 1, 10, 250)

	tests := []struct {
		name    string
		enabled []string
		want    []string
	}{
		{"none", nil, nil},
		{"two", []string{"IncomingBytes", "IteratorAgeMilliseconds"}, []string{"kinesis_shard_IncomingBytes", "kinesis_shard_IteratorAgeMilliseconds"}},
		{"all", []string{"ALL"}, []string{"kinesis_shard_IncomingBytes", "kinesis_shard_IncomingRecords", "kinesis_shard_OutgoingBytes",
			"kinesis_shard_OutgoingRecords", "kinesis_shard_WriteProvisionedThroughputExceeded",
			"kinesis_shard_ReadProvisionedThroughputExceeded", "kinesis_shard_IteratorAgeMilliseconds"}},
		{"disabled again", []string{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetShardLevelMetrics(tt.enabled)
			fams := scrape(t, r)
			var got []string
			for name := range fams {
				if strings.HasPrefix(name, "kinesis_shard_") {
					got = append(got, name)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("shard families %v, want %v", got, tt.want)
			}
			for _, name := range tt.want {
				if _, ok := value(fams, name, "stream", "s", "shard", "shardId-000000000000"); !ok {
					t.Errorf("%s{shard=shardId-000000000000} missing", name)
				}
			}
		})
	}
	s.SetShardLevelMetrics([]string{"ALL"})
	fams := scrape(t, r)
	if v, _ := value(fams, "kinesis_shard_IncomingBytes", "shard", "shardId-000000000000"); v != 10 {
		t.Errorf("shard IncomingBytes %v, want 10", v)
	}
	if v, _ := value(fams, "kinesis_shard_IteratorAgeMilliseconds", "shard", "shardId-000000000000"); v != 250 {
		t.Errorf("shard IteratorAgeMilliseconds %v, want 250", v)
	}
	// A shard closed by resharding and not read for long goes.
	s.Shard(0, "shardId-000000000000", false)
	sh.lastActive.Store(nowMs() - (closedShardLinger + time.Minute).Milliseconds())
	fams = scrape(t, r)
	if _, ok := value(fams, "kinesis_shard_IncomingBytes", "shard", "shardId-000000000000"); ok {
		t.Error("closed idle shard still exported")
	}
}

func TestForgetAndRecreate(t *testing.T) {
	r := newRegistry(t, nil)
	s := r.Stream("s", "id1")
	s.PutRecord(nil, 5)
	r.Forget("s", "other") // another creation: nothing happens
	if _, ok := value(scrape(t, r), "kinesis_IncomingRecords", "stream", "s"); !ok {
		t.Fatal("Forget of another creation removed the stream")
	}
	r.Forget("s", "id1")
	if _, ok := value(scrape(t, r), "kinesis_IncomingRecords", "stream", "s"); ok {
		t.Fatal("forgotten stream still exported")
	}
	s2 := r.Stream("s", "id2")
	if s2 == s {
		t.Fatal("new creation got the old counters")
	}
	if v, _ := value(scrape(t, r), "kinesis_IncomingRecords", "stream", "s"); v != 0 {
		t.Errorf("recreated stream starts at %v records, want 0", v)
	}
	var nilReg *Registry
	if nilReg.Stream("x", "y") != nil {
		t.Error("nil registry returned a stream")
	}
	nilReg.Forget("x", "")
}

func TestSeriesCap(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	r := newRegistry(t, func(o *Options) { o.MaxSeries = streamSeries + 3; o.Logger = log })
	a := r.Stream("a", "1")
	a.SetShardLevelMetrics([]string{"ALL"})
	for i := range 2 {
		a.Shard(i, "shardId-00000000000"+string(rune('0'+i)), true)
	}
	r.Stream("b", "1")

	fams := scrape(t, r)
	if _, ok := value(fams, "kinesis_IncomingRecords", "stream", "a"); !ok {
		t.Error("stream a left out although it fits")
	}
	if _, ok := value(fams, "kinesis_IncomingRecords", "stream", "b"); ok {
		t.Error("stream b exported beyond the cap")
	}
	dropped, _ := value(fams, "runnel_metrics_series_dropped")
	if want := float64(streamSeries + 2*len(shardDefs) - 3); dropped != want {
		t.Errorf("series dropped %v, want %v", dropped, want)
	}
	scrape(t, r)
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if n := strings.Count(out, "series cap reached"); n != 1 {
		t.Errorf("cap warning logged %d times, want once:\n%s", n, out)
	}
	if !strings.Contains(out, "--metrics-max-series") {
		t.Errorf("cap warning does not say what to do:\n%s", out)
	}
	r.Forget("b", "")
	a.SetShardLevelMetrics(nil)
	scrape(t, r)
	mu.Lock()
	out = logs.String()
	mu.Unlock()
	if !strings.Contains(out, "back under the series cap") {
		t.Errorf("no notice when back under the cap:\n%s", out)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestEngineStats(t *testing.T) {
	r := newRegistry(t, nil)
	r.Stream("s", "abc")
	r.SetEngineStats(func() EngineStats {
		return EngineStats{OpenFiles: 3, TailCacheBytes: 4096, ReadsFromCache: 7, ReadsFromSegments: 2, Logs: []LogStats{
			{Name: "abc.0", Segments: 2, Bytes: 1000},
			{Name: "abc.1", Segments: 1, Bytes: 500},
			{Name: "gone.0", Segments: 1, Bytes: 7},
		}}
	})
	obs := r.EngineObserver()
	obs.Append(2 * time.Millisecond)
	obs.Sync(time.Millisecond)
	fams := scrape(t, r)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"runnel_engine_bytes", nil, 1507},
		{"runnel_engine_segments", nil, 4},
		{"runnel_engine_open_files", nil, 3},
		{"runnel_engine_tail_cache_bytes", nil, 4096},
		{"runnel_engine_reads_total", []string{"source", "tail_cache"}, 7},
		{"runnel_engine_reads_total", []string{"source", "segment"}, 2},
		{"runnel_engine_stream_bytes", []string{"stream", "s"}, 1500},
		{"runnel_engine_stream_segments", []string{"stream", "s"}, 3},
		{"runnel_engine_append_seconds", nil, 1},
		{"runnel_engine_sync_seconds", nil, 1},
	} {
		if got, ok := value(fams, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
}

func TestStreamRates(t *testing.T) {
	r := newRegistry(t, func(o *Options) { o.SampleInterval = time.Hour; o.History = 3 * time.Hour })
	s := r.Stream("s", "1")
	sh := s.Shard(0, "shardId-000000000000", true)
	if got := r.StreamRates("s"); len(got) != 0 {
		t.Fatalf("rates before any sample: %v", got)
	}
	t0 := time.Unix(1000, 0)
	r.sampleAll(t0)
	for i := range 5 {
		s.PutRecordsShard(sh, 10, 1000)
		r.sampleAll(t0.Add(time.Duration(i+1) * 10 * time.Second))
	}
	got := r.StreamRates("s")
	if len(got) != 3 { // the ring holds History/SampleInterval samples
		t.Fatalf("%d samples, want 3", len(got))
	}
	for i, smp := range got {
		if smp.IncomingRecords != 1 || smp.IncomingBytes != 100 {
			t.Errorf("sample %d: %v records/s, %v bytes/s; want 1 and 100", i, smp.IncomingRecords, smp.IncomingBytes)
		}
		if i > 0 && !smp.Time.After(got[i-1].Time) {
			t.Errorf("samples out of order: %v then %v", got[i-1].Time, smp.Time)
		}
	}
	if r.StreamRates("unknown") != nil {
		t.Error("rates of an unknown stream")
	}
	s.GetRecords(sh, 20, 2000, 300)
	s.Shard(1, "shardId-000000000001", false)
	r.sampleAll(t0.Add(60 * time.Second))
	shards := r.ShardRates("s")
	if len(shards) != 2 {
		t.Fatalf("shard rates %+v, want 2 shards", shards)
	}
	want := ShardRate{Shard: "shardId-000000000000", Open: true, OutgoingRecords: 2, OutgoingBytes: 200, IteratorAgeMilliseconds: 300}
	if shards[0] != want {
		t.Errorf("shard 0: %+v, want %+v", shards[0], want)
	}
	if shards[1].Shard != "shardId-000000000001" || shards[1].Open || shards[1].IncomingRecords != 0 {
		t.Errorf("shard 1: %+v", shards[1])
	}
	if r.ShardRates("unknown") != nil {
		t.Error("shard rates of an unknown stream")
	}
}

func TestCall(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	if CallFrom(parent) != nil {
		t.Fatal("a Call in a context without one")
	}
	var c Call
	c.Reset(parent)
	ctx, cancel := context.WithCancel(&c) // the service may wrap it
	defer cancel()
	got := CallFrom(ctx)
	if got != &c {
		t.Fatal("CallFrom did not find the Call")
	}
	if ctx.Value(key{}) != "v" {
		t.Error("the parent's values are lost")
	}
	s := &Stream{}
	got.SetStream(s)
	if c.Stream() != s {
		t.Error("SetStream lost")
	}
	c.Reset(parent)
	if c.Stream() != nil {
		t.Error("Reset kept the stream")
	}
	var nilCall *Call
	nilCall.SetStream(s) // no panic
}

// TestHotPathAllocations: counting a request allocates nothing.
func TestHotPathAllocations(t *testing.T) {
	r := newRegistry(t, nil)
	s := r.Stream("s", "1")
	sh := s.Shard(0, "shardId-000000000000", true)
	var c Call
	c.Reset(context.Background())
	allocs := testing.AllocsPerRun(1000, func() {
		CallFrom(&c).SetStream(s)
		s.PutRecordsShard(sh, 500, 50000)
		s.PutRecords(500, 0, 0)
		s.PutRecord(sh, 100)
		s.GetRecords(sh, 10, 100, 5)
		s.ObserveLatency(OpPutRecords, time.Millisecond)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per request, want 0", allocs)
	}
}

func BenchmarkPutRecordsCounting(b *testing.B) {
	r, err := New(DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	s := r.Stream("s", "1")
	sh := s.Shard(0, "shardId-000000000000", true)
	var c Call
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c := c
			c.Reset(context.Background())
			CallFrom(&c).SetStream(s)
			s.PutRecordsShard(sh, 500, 50000)
			s.PutRecords(500, 0, 0)
			s.ObserveLatency(OpPutRecords, time.Millisecond)
		}
	})
}

func TestConsumerLag(t *testing.T) {
	r := newRegistry(t, nil)
	r.SetConsumerLag(func(ctx context.Context) []ConsumerLag {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("lag asked for without a deadline")
		}
		return []ConsumerLag{
			{Stream: "s", Application: "app", Shard: "shardId-000000000000", Records: 12, Millis: 3400},
			{Stream: "s", Application: "app", Shard: "shardId-000000000001"},
		}
	})
	fams := scrape(t, r)
	for _, c := range []struct {
		name  string
		shard string
		want  float64
	}{
		{"runnel_lease_records_behind", "shardId-000000000000", 12},
		{"runnel_lease_millis_behind", "shardId-000000000000", 3400},
		{"runnel_lease_records_behind", "shardId-000000000001", 0},
	} {
		if v, ok := value(fams, c.name, "stream", "s", "application", "app", "shard", c.shard); !ok || v != c.want {
			t.Errorf("%s{shard=%s} = %v (present %v), want %v", c.name, c.shard, v, ok, c.want)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got := r.ConsumerLag(ctx); len(got) != 2 || got[0].Records != 12 {
		t.Errorf("ConsumerLag: %+v", got)
	}
	// The cap applies to them too.
	r.opts.MaxSeries = 3
	fams = scrape(t, r)
	if v, _ := value(fams, "runnel_metrics_series_dropped"); v != 2 {
		t.Errorf("dropped %v with a cap of 3, want the second shard's 2", v)
	}
}
