package console

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/runnel/runnel/internal/streams"
)

// Sample is a stream's (or a shard's) activity over the interval that ends
// at Time.
type Sample struct {
	Time time.Time
	// IncomingRecords and IncomingBytes are write rates per second, bytes
	// counting partition keys and data as Kinesis' IncomingBytes does.
	IncomingRecords float64
	IncomingBytes   float64
	// IteratorAgeMillis is, for a stream, the largest lag of its consumer
	// applications at Time: the age of the oldest record one of them has
	// not processed yet (0 when all are caught up or there are none).
	IteratorAgeMillis int64
}

// Rates gives the console the numbers its charts and tables show.
type Rates interface {
	// StreamRates returns a stream's recent samples, oldest first, or
	// none when it has not been sampled yet.
	StreamRates(stream string) []Sample
	// ShardRates returns the latest sample of each of a stream's shards,
	// by shard id.
	ShardRates(stream string) map[string]Sample
}

// Sampler samples every stream's write counters and its consumers' lag at
// a fixed interval and keeps the last samples in memory. It implements
// Rates. Run drives it; Sample takes one sample now.
type Sampler struct {
	svc  *streams.Service
	lag  Lag
	keep int
	now  func() time.Time

	mu struct {
		sync.Mutex
		streams map[string]*history
	}
}

var _ Rates = (*Sampler)(nil)

// history is what the sampler knows of one stream.
type history struct {
	samples []Sample
	shards  map[string]Sample
	// last holds each shard's counters at the previous sample.
	last     map[string]counters
	lastTime time.Time
	// apps is the consumer applications' lag at the last sample.
	apps []AppLag
}

type counters struct{ records, bytes int64 }

// NewSampler returns a sampler of svc's streams keeping keep samples per
// stream; lag, when not nil, gives the iterator age. now nil means
// time.Now.
func NewSampler(svc *streams.Service, lag Lag, keep int, now func() time.Time) *Sampler {
	if now == nil {
		now = time.Now
	}
	if keep < 2 {
		keep = 2
	}
	s := &Sampler{svc: svc, lag: lag, keep: keep, now: now}
	s.mu.streams = make(map[string]*history)
	return s
}

// Run samples every interval until ctx ends. A failed sample is logged and
// the next one tried.
func (s *Sampler) Run(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := s.Sample(ctx); err != nil && ctx.Err() == nil && log != nil {
			log.Warn("console: sampling rates failed", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample takes one sample of every stream. The first sample of a stream
// only records its counters: rates need two.
func (s *Sampler) Sample(ctx context.Context) error {
	names, err := listStreams(ctx, s.svc)
	if err != nil {
		return err
	}
	type shot struct {
		stats []streams.ShardStats
		apps  []AppLag
		age   int64
	}
	shots := make(map[string]shot, len(names))
	var errs []error
	for _, name := range names {
		stats, err := s.svc.ShardStats(ctx, name)
		if err != nil {
			if isNotFound(err) {
				continue // deleted meanwhile
			}
			errs = append(errs, err)
			continue
		}
		var age int64
		var apps []AppLag
		if s.lag != nil {
			apps, err = s.lag.ConsumerLag(ctx, name)
			if err != nil && !isNotFound(err) {
				errs = append(errs, err)
			}
			for _, a := range apps {
				age = max(age, a.MaxMillis)
			}
		}
		shots[name] = shot{stats, apps, age}
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range s.mu.streams {
		if _, ok := shots[name]; !ok {
			delete(s.mu.streams, name)
		}
	}
	for name, sh := range shots {
		h := s.mu.streams[name]
		if h == nil {
			h = &history{}
			s.mu.streams[name] = h
		}
		cur := make(map[string]counters, len(sh.stats))
		for _, st := range sh.stats {
			cur[st.ShardId] = counters{st.WrittenRecords, st.WrittenBytes}
		}
		if h.last != nil {
			secs := now.Sub(h.lastTime).Seconds()
			if secs > 0 {
				total := Sample{Time: now, IteratorAgeMillis: sh.age}
				h.shards = make(map[string]Sample, len(cur))
				for id, c := range cur {
					p := h.last[id]
					// Counters restart when a stream is created again
					// under its name: count from zero then.
					if c.records < p.records || c.bytes < p.bytes {
						p = counters{}
					}
					r := Sample{Time: now,
						IncomingRecords: float64(c.records-p.records) / secs,
						IncomingBytes:   float64(c.bytes-p.bytes) / secs}
					h.shards[id] = r
					total.IncomingRecords += r.IncomingRecords
					total.IncomingBytes += r.IncomingBytes
				}
				h.samples = append(h.samples, total)
				if len(h.samples) > s.keep {
					h.samples = append(h.samples[:0], h.samples[len(h.samples)-s.keep:]...)
				}
			}
		}
		h.last, h.lastTime, h.apps = cur, now, sh.apps
	}
	return errors.Join(errs...)
}

// StreamRates implements Rates.
func (s *Sampler) StreamRates(stream string) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.mu.streams[stream]
	if h == nil {
		return nil
	}
	return append([]Sample(nil), h.samples...)
}

// ShardRates implements Rates.
func (s *Sampler) ShardRates(stream string) map[string]Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.mu.streams[stream]
	if h == nil {
		return nil
	}
	out := make(map[string]Sample, len(h.shards))
	for k, v := range h.shards {
		out[k] = v
	}
	return out
}

// LastLag returns the consumer applications' lag on a stream at the last
// sample, and whether the stream has been sampled.
func (s *Sampler) LastLag(stream string) ([]AppLag, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.mu.streams[stream]
	if h == nil {
		return nil, false
	}
	return append([]AppLag(nil), h.apps...), true
}

// listStreams returns every stream's name, sorted.
func listStreams(ctx context.Context, svc *streams.Service) ([]string, error) {
	var names []string
	in := &streams.ListStreamsInput{}
	for {
		out, err := svc.ListStreams(ctx, in)
		if err != nil {
			return nil, err
		}
		names = append(names, out.StreamNames...)
		if !out.HasMoreStreams || out.NextToken == nil {
			break
		}
		in = &streams.ListStreamsInput{NextToken: out.NextToken}
	}
	sort.Strings(names)
	return names, nil
}

// isNotFound reports a ResourceNotFoundException from the service.
func isNotFound(err error) bool {
	var e *streams.Error
	return errors.As(err, &e) && e.Code == streams.CodeResourceNotFound
}
