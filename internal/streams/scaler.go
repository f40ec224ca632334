package streams

import (
	"context"
	"errors"
	"log/slog"
	"math/bits"
	"sort"
	"sync"
	"time"
)

// On-demand capacity.
//
// The scaler is a background goroutine owned by the Service (started by New,
// stopped by Close). Every ScalerOptions.Window it reads and resets each
// open shard's write counters (bytes and records appended, kept with atomic
// adds on the append path) of every ACTIVE ON_DEMAND stream and
//
//   - splits, at the middle of its hash range, every shard whose write rate
//     over the window was above SplitBytesPerSec or SplitRecordsPerSec, up to
//     MaxShards open shards;
//   - otherwise, when the stream has not been rescaled for Cooldown, merges
//     pairs of adjacent shards whose combined rate is below MergeBytesPerSec
//     and MergeRecordsPerSec, down to MinShards open shards.
//
// A stream with a warm throughput (UpdateStreamWarmThroughput) keeps at
// least one open shard per MiB/s of it (a shard takes 1 MiB/s of writes):
// below that, the scaler first splits its widest shards, whatever the
// rates, and it never merges below it.
//
// A stream is judged only on windows measured entirely after its last
// rescaling. Each decision is one reshard (reshard.go) and is logged. The
// counters are per process: with several services on one engine, each
// publishes its counts every window and the one holding the leader's lease,
// the only one that rescales, adds them up (cluster.go).

// ScalerOptions configure how ON_DEMAND streams scale. A zero field takes
// its default.
type ScalerOptions struct {
	// Window is how often the scaler samples the write rates, and the period
	// a rate is averaged over. Default 1 minute.
	Window time.Duration
	// Cooldown is how long after a stream's last rescaling the scaler waits
	// before merging its cold shards. Default 15 minutes.
	Cooldown time.Duration
	// SplitBytesPerSec and SplitRecordsPerSec: a shard writing faster than
	// either is split. Defaults: half a shard's capacity, 512 KiB/s and 500
	// records/s.
	SplitBytesPerSec   int64
	SplitRecordsPerSec int64
	// MergeBytesPerSec and MergeRecordsPerSec: two adjacent shards writing
	// together slower than both are merged. Defaults: a quarter of a shard's
	// capacity, 256 KiB/s and 250 records/s.
	MergeBytesPerSec   int64
	MergeRecordsPerSec int64
	// MinShards is the fewest open shards an ON_DEMAND stream is merged
	// down to. Default 4, as Kinesis.
	MinShards int
	// MaxShards is the most open shards an ON_DEMAND stream is split up
	// to. Default 1024.
	MaxShards int
}

// DefaultScalerOptions returns the defaults described on each field.
func DefaultScalerOptions() ScalerOptions {
	return ScalerOptions{
		Window:             time.Minute,
		Cooldown:           15 * time.Minute,
		SplitBytesPerSec:   writeBytesPerSec / 2,
		SplitRecordsPerSec: writeRecordsPerSec / 2,
		MergeBytesPerSec:   writeBytesPerSec / 4,
		MergeRecordsPerSec: writeRecordsPerSec / 4,
		MinShards:          onDemandShards,
		MaxShards:          1024,
	}
}

// withDefaults fills zero fields with their defaults.
func (o ScalerOptions) withDefaults() ScalerOptions {
	d := DefaultScalerOptions()
	if o.Window <= 0 {
		o.Window = d.Window
	}
	if o.Cooldown <= 0 {
		o.Cooldown = d.Cooldown
	}
	if o.SplitBytesPerSec <= 0 {
		o.SplitBytesPerSec = d.SplitBytesPerSec
	}
	if o.SplitRecordsPerSec <= 0 {
		o.SplitRecordsPerSec = d.SplitRecordsPerSec
	}
	if o.MergeBytesPerSec <= 0 {
		o.MergeBytesPerSec = d.MergeBytesPerSec
	}
	if o.MergeRecordsPerSec <= 0 {
		o.MergeRecordsPerSec = d.MergeRecordsPerSec
	}
	if o.MinShards <= 0 {
		o.MinShards = d.MinShards
	}
	if o.MaxShards <= 0 {
		o.MaxShards = d.MaxShards
	}
	return o
}

// validate reports whether the options (defaults filled in) make sense.
func (o ScalerOptions) validate() error {
	if o.MinShards > o.MaxShards {
		return errors.New("streams: scaler MinShards above MaxShards")
	}
	if o.MergeBytesPerSec > o.SplitBytesPerSec || o.MergeRecordsPerSec > o.SplitRecordsPerSec {
		return errors.New("streams: scaler merge thresholds above split thresholds")
	}
	return nil
}

// scalerState is what the scaler remembers between windows.
type scalerState struct {
	mu       sync.Mutex
	started  time.Time            // when the scaler started
	lastTick time.Time            // start of the current window
	rescaled map[string]time.Time // by stream id: the last rescaling
}

// logger returns the service's logger.
func (s *Service) logger() *slog.Logger {
	if s.opts.Logger != nil {
		return s.opts.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// scaler runs the on-demand controller until Close. It first seals the logs
// of closed shards a crash left unsealed.
func (s *Service) scaler() {
	defer s.wg.Done()
	ctx := s.ctx
	if err := s.resealAll(ctx); err != nil && ctx.Err() == nil {
		s.logger().Warn("sealing closed shards failed", "error", err)
	}
	s.scale.mu.Lock()
	s.scale.started = s.now()
	s.scale.lastTick = s.scale.started
	s.scale.mu.Unlock()
	t := time.NewTicker(s.opts.Scaler.Window)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.scaleTick(ctx); err != nil && ctx.Err() == nil {
				s.logger().Warn("on-demand scaling failed", "error", err)
			}
		}
	}
}

// shardRate is one open shard's write rate over the last window.
type shardRate struct {
	r            openRange
	bytes, count float64 // per second
}

// scaleTick ends a sampling window: it reads and resets the write counters
// and rescales the ON_DEMAND streams that need it.
func (s *Service) scaleTick(ctx context.Context) error {
	s.scale.mu.Lock()
	defer s.scale.mu.Unlock()
	now := s.now()
	start := s.scale.lastTick
	s.scale.lastTick = now
	secs := now.Sub(start).Seconds()
	if secs <= 0 {
		return nil
	}
	all, err := s.listMeta(ctx)
	if err != nil {
		return err
	}
	// Reset every shard's counters, whatever the stream's mode, and add
	// the other services' counts when the engine is shared.
	counts := make(map[string]map[int][2]int64, len(all))
	for _, st := range all {
		c := make(map[int][2]int64)
		for i, sh := range st.shards {
			b, n := sh.inBytes.Swap(0), sh.inRecords.Swap(0)
			if b != 0 || n != 0 {
				c[i] = [2]int64{b, n}
			}
		}
		counts[st.meta.ID] = c
	}
	if s.cluster.shared {
		if err := s.publishRates(ctx, windowRates{End: now.UnixMilli(), Secs: secs, Streams: counts}); err != nil {
			return err
		}
		if !s.isLeader() {
			return nil
		}
		others, err := s.othersRates(ctx, now.Add(-2*s.opts.Scaler.Window).UnixMilli())
		if err != nil {
			return err
		}
		for id, shards := range others {
			c := counts[id]
			if c == nil {
				continue // a stream this service has not seen yet
			}
			for i, o := range shards {
				c[i] = [2]int64{c[i][0] + o[0], c[i][1] + o[1]}
			}
		}
	}
	var errs []error
	for _, st := range all {
		m := st.meta
		rates := make(map[int]*shardRate)
		for i := range st.shards {
			if m.Shards[i].Closed == 0 {
				c := counts[m.ID][i]
				rates[i] = &shardRate{bytes: float64(c[0]) / secs, count: float64(c[1]) / secs}
			}
		}
		if m.Mode != modeOnDemand || m.settled(now.UnixMilli()) != statusActive {
			continue
		}
		if last, ok := s.scale.rescaled[m.ID]; ok && last.After(start) {
			continue // the window began before the last rescaling
		}
		if err := s.scaleStream(ctx, st, rates, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// scaleStream decides and applies one rescaling of an ON_DEMAND stream.
func (s *Service) scaleStream(ctx context.Context, st *stream, rates map[int]*shardRate, now time.Time) error {
	o := s.opts.Scaler
	m := st.meta
	open := openRanges(m)
	list := make([]*shardRate, len(open))
	for i, r := range open {
		list[i] = rates[r.idx]
		if list[i] == nil {
			list[i] = &shardRate{}
		}
		list[i].r = r
	}

	// Warm throughput: split the widest shards until there are enough.
	floor := min(max(o.MinShards, m.warmShards()), o.MaxShards)
	if need := floor - len(open); need > 0 {
		wide := append([]*shardRate(nil), list...)
		sort.SliceStable(wide, func(i, j int) bool {
			return width(wide[i].r).cmp(width(wide[j].r)) > 0
		})
		wide = wide[:min(need, len(wide))]
		return s.autoReshard(ctx, st, now, "split to the warm throughput", wide, func(p *planner) {
			for _, x := range wide {
				for i, r := range p.open {
					if r.idx == x.r.idx {
						if at, ok := splitPoint(x.r.start, x.r.end); ok {
							p.split(i, at)
						}
						break
					}
				}
			}
		})
	}

	// Hot shards split.
	var hot []*shardRate
	for _, x := range list {
		if x.bytes > float64(o.SplitBytesPerSec) || x.count > float64(o.SplitRecordsPerSec) {
			hot = append(hot, x)
		}
	}
	if room := o.MaxShards - len(open); len(hot) > room {
		hot = hot[:max(room, 0)]
	}
	if len(hot) > 0 {
		return s.autoReshard(ctx, st, now, "split hot shards", hot, func(p *planner) {
			for _, x := range hot {
				for i, r := range p.open {
					if r.idx == x.r.idx {
						if at, ok := splitPoint(x.r.start, x.r.end); ok {
							p.split(i, at)
						}
						break
					}
				}
			}
		})
	}

	// Cold neighbours merge, after the cool-down.
	last, rescaled := s.scale.rescaled[m.ID]
	if !rescaled {
		last = s.scale.started // a new service waits one cool-down
	}
	if now.Sub(last) < o.Cooldown {
		return nil
	}
	var pairs [][2]*shardRate
	n := len(open)
	for i := 0; i+1 < len(list) && n > floor; i++ {
		a, b := list[i], list[i+1]
		if a.bytes+b.bytes < float64(o.MergeBytesPerSec) && a.count+b.count < float64(o.MergeRecordsPerSec) {
			pairs = append(pairs, [2]*shardRate{a, b})
			n--
			i++
		}
	}
	if len(pairs) == 0 {
		return nil
	}
	return s.autoReshard(ctx, st, now, "merge cold shards", flatten(pairs), func(p *planner) {
		for _, pr := range pairs {
			for i := 0; i+1 < len(p.open); i++ {
				if p.open[i].idx == pr[0].r.idx && p.open[i+1].idx == pr[1].r.idx {
					p.merge(i, true)
					break
				}
			}
		}
	})
}

// width is the size of a shard's hash-key range, less one.
func width(r openRange) hashKey {
	lo, b := bits.Sub64(r.end.lo, r.start.lo, 0)
	return hashKey{r.end.hi - r.start.hi - b, lo}
}

func flatten(pairs [][2]*shardRate) []*shardRate {
	var out []*shardRate
	for _, p := range pairs {
		out = append(out, p[0], p[1])
	}
	return out
}

// autoReshard applies a scaler decision and logs it.
func (s *Service) autoReshard(ctx context.Context, st *stream, now time.Time, what string, shards []*shardRate, plan func(p *planner)) error {
	m := st.meta
	var before, after int
	_, err := s.reshard(ctx, m.Name, func(cur *streamMeta, _ int64) ([]newShard, error) {
		if cur.ID != m.ID || cur.Mode != modeOnDemand || cur.Status != statusActive {
			return nil, nil // changed meanwhile: judge again next window
		}
		for _, x := range shards {
			if x.r.idx >= len(cur.Shards) || cur.Shards[x.r.idx].Closed != 0 {
				return nil, nil
			}
		}
		p := newPlanner(cur)
		before = len(p.open)
		plan(p)
		after = len(p.open)
		return p.ops, nil
	})
	if err != nil {
		return err
	}
	if before == after {
		return nil
	}
	s.scale.rescaled[m.ID] = now
	attrs := []any{"stream", m.Name, "open_shards_before", before, "open_shards_after", after}
	for _, x := range shards {
		attrs = append(attrs, slog.Group(shardID(x.r.idx), "bytes_per_sec", int64(x.bytes), "records_per_sec", int64(x.count)))
	}
	s.logger().Info("on-demand scaling: "+what, attrs...)
	return nil
}

// countWrite adds an appended batch to a shard's write counters.
func (sh *shard) countWrite(records, bytes int) {
	sh.inRecords.Add(int64(records))
	sh.inBytes.Add(int64(bytes))
	sh.totalRecords.Add(int64(records))
	sh.totalBytes.Add(int64(bytes))
}
