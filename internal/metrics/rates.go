package metrics

import (
	"context"
	"time"
)

// RateSample is one point of a stream's recent activity, for charts.
type RateSample struct {
	// Time is when the sample was taken.
	Time time.Time
	// IncomingRecords and IncomingBytes are records and bytes put per
	// second since the previous sample.
	IncomingRecords float64
	IncomingBytes   float64
	// OutgoingRecords and OutgoingBytes are records and bytes read per
	// second (GetRecords and SubscribeToShard) since the previous sample.
	OutgoingRecords float64
	OutgoingBytes   float64
	// IteratorAgeMilliseconds is kinesis_GetRecords_IteratorAgeMilliseconds
	// at the sample, MillisBehindLatest the SubscribeToShard one.
	IteratorAgeMilliseconds int64
	MillisBehindLatest      int64
}

// ShardRate is one shard's activity over the last sample interval.
type ShardRate struct {
	// Shard is the shard's id.
	Shard string
	// Open is false for a shard closed by resharding.
	Open bool
	// IncomingRecords, IncomingBytes, OutgoingRecords and OutgoingBytes are
	// per second over the last Options.SampleInterval.
	IncomingRecords, IncomingBytes float64
	OutgoingRecords, OutgoingBytes float64
	// IteratorAgeMilliseconds is the shard's last GetRecords iterator age
	// (0 when not read in the last minute).
	IteratorAgeMilliseconds int64
}

// rateRing is a stream's recent samples and the totals of the last one.
type rateRing struct {
	samples []RateSample // ring
	next    int          // where the next sample goes
	full    bool
	last    totals
	lastAt  time.Time
}

// totals are the counters the rates are computed from.
type totals struct {
	inRecords, inBytes, outRecords, outBytes uint64
}

func newRateRing(n int) rateRing { return rateRing{samples: make([]RateSample, n)} }

func (r *Registry) ringLen() int {
	return max(1, int(r.opts.History/r.opts.SampleInterval))
}

func (s *Stream) totals() totals {
	return totals{
		inRecords:  s.incomingRecords.Load(),
		inBytes:    s.incomingBytes.Load(),
		outRecords: s.getRecordsRecords.Load() + s.eventRecords.Load(),
		outBytes:   s.getRecordsBytes.Load() + s.eventBytes.Load(),
	}
}

// sample adds a sample taken at now. The first sample of a stream only
// records the totals.
func (s *Stream) sample(now time.Time) {
	t := s.totals()
	age, behind := s.ages(now.UnixMilli())
	s.mu.Lock()
	defer s.mu.Unlock()
	ring := &s.mu.rates
	if !ring.lastAt.IsZero() {
		secs := now.Sub(ring.lastAt).Seconds()
		if secs > 0 {
			ring.samples[ring.next] = RateSample{
				Time:                    now,
				IncomingRecords:         float64(t.inRecords-ring.last.inRecords) / secs,
				IncomingBytes:           float64(t.inBytes-ring.last.inBytes) / secs,
				OutgoingRecords:         float64(t.outRecords-ring.last.outRecords) / secs,
				OutgoingBytes:           float64(t.outBytes-ring.last.outBytes) / secs,
				IteratorAgeMilliseconds: age,
				MillisBehindLatest:      behind,
			}
			ring.next++
			if ring.next == len(ring.samples) {
				ring.next, ring.full = 0, true
			}
		}
	}
	for _, sh := range s.mu.shards {
		if sh == nil {
			continue
		}
		st := totals{sh.incomingRecords.Load(), sh.incomingBytes.Load(), sh.outgoingRecords.Load(), sh.outgoingBytes.Load()}
		if secs := now.Sub(ring.lastAt).Seconds(); !ring.lastAt.IsZero() && secs > 0 {
			sh.rate = ShardRate{
				IncomingRecords: float64(st.inRecords-sh.rateLast.inRecords) / secs,
				IncomingBytes:   float64(st.inBytes-sh.rateLast.inBytes) / secs,
				OutgoingRecords: float64(st.outRecords-sh.rateLast.outRecords) / secs,
				OutgoingBytes:   float64(st.outBytes-sh.rateLast.outBytes) / secs,
			}
		}
		sh.rateLast = st
	}
	ring.last, ring.lastAt = t, now
}

// ShardRates returns the activity of every shard of stream name over the
// last sample interval, by shard index (closed shards included); rates are
// 0 until two samples were taken. It is empty for a stream not known.
func (r *Registry) ShardRates(name string) []ShardRate {
	r.mu.Lock()
	s := r.mu.streams[name]
	r.mu.Unlock()
	if s == nil {
		return nil
	}
	now := nowMs()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ShardRate, 0, len(s.mu.shards))
	for _, sh := range s.mu.shards {
		if sh == nil {
			continue
		}
		rate := sh.rate
		rate.Shard, rate.Open, rate.IteratorAgeMilliseconds = sh.id, sh.open.Load(), sh.shardAge(now)
		out = append(out, rate)
	}
	return out
}

// ConsumerLag returns the lag of lease-table applications per shard, as
// the last scrape would show it (the function set with SetConsumerLag,
// called now); nil when none is set.
func (r *Registry) ConsumerLag(ctx context.Context) []ConsumerLag {
	f := r.consumerLag.Load()
	if f == nil || *f == nil {
		return nil
	}
	return (*f)(ctx)
}

// StreamRates returns the recent activity of stream name, oldest sample
// first: one sample per Options.SampleInterval over the last
// Options.History (15 minutes by default). It is empty for a stream not
// known or not yet sampled twice.
func (r *Registry) StreamRates(name string) []RateSample {
	r.mu.Lock()
	s := r.mu.streams[name]
	r.mu.Unlock()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ring := &s.mu.rates
	var out []RateSample
	if ring.full {
		out = append(out, ring.samples[ring.next:]...)
	}
	return append(out, ring.samples[:ring.next]...)
}

// sampler samples every stream's rates each SampleInterval until Close.
func (r *Registry) sampler() {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.sampleAll(now)
		}
	}
}

// sampleAll takes one sample of every stream and delivery stream.
func (r *Registry) sampleAll(now time.Time) {
	for _, s := range r.streamList() {
		s.sample(now)
	}
	for _, d := range r.deliveryList() {
		d.sample(now)
	}
}
