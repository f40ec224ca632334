package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// engineMetrics are the storage engine's latency histograms.
type engineMetrics struct {
	append, sync prometheus.Histogram
}

// engineBuckets are the upper bounds of the engine's histograms, in
// seconds: from a write to the page cache to an fsync stuck behind a busy
// disk.
var engineBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

func newEngineMetrics() *engineMetrics {
	return &engineMetrics{
		append: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "runnel_engine_append_seconds",
			Help:    "Time one append to a shard log took, from submission to acknowledgement (as durable as the engine promises: after the fsync by default).",
			Buckets: engineBuckets,
		}),
		sync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "runnel_engine_sync_seconds",
			Help:    "Time one sync of a segment file took (an fdatasync, or a direct write that syncs as it writes).",
			Buckets: engineBuckets,
		}),
	}
}

// EngineObserver receives the storage engine's timings; the disk engine
// calls it on its write path (disk.Options.Observer). Its methods are safe
// for concurrent use and allocate nothing.
type EngineObserver struct{ m *engineMetrics }

// EngineObserver returns the observer to give the storage engine.
func (r *Registry) EngineObserver() EngineObserver { return EngineObserver{r.engine} }

// Append records the duration of one append.
func (o EngineObserver) Append(d time.Duration) { o.m.append.Observe(d.Seconds()) }

// Sync records the duration of one segment sync.
func (o EngineObserver) Sync(d time.Duration) { o.m.sync.Observe(d.Seconds()) }
