package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/metrics"
	"github.com/runnel/runnel/internal/streams"
)

// run is the service's loop: it starts and stops the workers of delivery
// streams as they become ACTIVE or go, finishes deletions, and removes
// hidden streams no delivery stream names.
func (s *Service) run() {
	defer s.wg.Done()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	defer s.stopWorkers()
	for {
		if err := s.reconcile(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Warn("delivery streams: reconcile failed", slog.Any("error", err))
		}
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

func (s *Service) stopWorkers() {
	s.mu.Lock()
	ws := s.mu.workers
	s.mu.workers = map[string]*worker{}
	s.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
}

func (s *Service) reconcile(ctx context.Context) error {
	es, err := s.meta.List(ctx, metaPrefix)
	if err != nil {
		return err
	}
	now := s.now().UnixMilli()
	active := map[string]*streamMeta{}
	known := map[string]bool{} // hidden stream names still needed
	for _, e := range es {
		var m streamMeta
		if err := json.Unmarshal(e.Value, &m); err != nil {
			return fmt.Errorf("delivery: decode %s: %w", e.Key, err)
		}
		switch m.settled(now) {
		case StatusActive:
			active[m.ID] = &m
			known[hiddenStream(m.Name, m.ID)] = true
			if dm := s.counted(m.Name, m.ID); m.Type == TypeKinesis {
				dm.SetKinesisSource()
			}
		case StatusCreating:
			known[hiddenStream(m.Name, m.ID)] = true
			s.counted(m.Name, m.ID)
		case "":
			s.stopWorker(m.ID)
			s.forgetCounted(m.Name, m.ID)
			if err := s.finishDelete(ctx, &m, e.Version); err != nil {
				return err
			}
		default: // DELETING
			s.stopWorker(m.ID)
			s.forgetCounted(m.Name, m.ID)
		}
	}
	s.mu.Lock()
	for id, m := range active {
		w := s.mu.workers[id]
		if w == nil {
			w = s.startWorkerLocked(m)
		}
		w.meta.Store(m)
	}
	s.mu.Unlock()
	// Hidden streams that no delivery stream names: left by a crash
	// between the creation of the stream and of the delivery stream. A
	// young one may belong to a creation in progress. Listing every
	// stream is not free: once a minute.
	if time.Since(s.lastSweep) < time.Minute {
		return nil
	}
	s.lastSweep = time.Now()
	names, err := s.streams.ReservedStreams(ctx)
	if err != nil {
		return err
	}
	for _, n := range names {
		rest, ok := strings.CutPrefix(n, streams.ReservedPrefix+"firehose.")
		if !ok || known[n] {
			continue
		}
		dot := strings.LastIndexByte(rest, '.')
		if created, err := parseID(rest[dot+1:]); err == nil && now-created < time.Minute.Milliseconds() {
			continue
		}
		if err := s.deleteHidden(ctx, n); err != nil {
			return err
		}
	}
	return nil
}

func parseID(id string) (int64, error) {
	var v int64
	for _, c := range id {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case c >= 'a' && c <= 'z':
			d = int64(c-'a') + 10
		default:
			return 0, fmt.Errorf("delivery: bad id %q", id)
		}
		v = v*36 + d
	}
	return v, nil
}

func (s *Service) deleteHidden(ctx context.Context, name string) error {
	err := s.streams.DeleteStream(ctx, &streams.DeleteStreamInput{StreamName: &name, EnforceConsumerDeletion: ptr(true)})
	var se *streams.Error
	if errors.As(err, &se) && (se.Code == streams.CodeResourceNotFound || se.Code == streams.CodeResourceInUse) {
		return nil
	}
	return err
}

// finishDelete removes what a deleted delivery stream leaves: its hidden
// stream, lease table, plans, and last its metadata key.
func (s *Service) finishDelete(ctx context.Context, m *streamMeta, version uint64) error {
	if m.Type == TypeDirectPut {
		if err := s.deleteHidden(ctx, hiddenStream(m.Name, m.ID)); err != nil {
			return err
		}
	} else {
		err := s.leases.DeleteTable(ctx, leases.TableRef{App: leaseApp(m.Name, m.ID), Stream: m.sourceStream()})
		var le *leases.Error
		if err != nil && !(errors.As(err, &le) && le.Code == leases.CodeResourceNotFound) {
			return err
		}
	}
	plans, err := s.meta.List(ctx, planPrefix(m.ID))
	if err != nil {
		return err
	}
	for _, p := range plans {
		if err := s.meta.Delete(ctx, p.Key, p.Version); err != nil && !errors.Is(err, engine.ErrKeyNotFound) && !errors.Is(err, engine.ErrVersionMismatch) {
			return err
		}
	}
	err = s.meta.Delete(ctx, metaKey(m.Name), version)
	if err == nil {
		s.log.Info("delivery stream deleted", slog.String("delivery_stream", m.Name))
	}
	if errors.Is(err, engine.ErrKeyNotFound) || errors.Is(err, engine.ErrVersionMismatch) {
		return nil // a new creation or another server got there first
	}
	return err
}

func (s *Service) stopWorker(id string) {
	s.mu.Lock()
	w := s.mu.workers[id]
	delete(s.mu.workers, id)
	s.mu.Unlock()
	if w != nil {
		w.stop()
	}
}

// stats returns the delivery counters of a delivery stream this server
// delivers, or nil.
func (s *Service) stats(id string) *DeliveryStats {
	s.mu.Lock()
	w := s.mu.workers[id]
	s.mu.Unlock()
	if w == nil {
		return nil
	}
	return w.snapshot(s.now())
}

// worker delivers one delivery stream: it holds the leases of the source's
// shards and runs one shardRunner per leased shard.
type worker struct {
	s      *Service
	name   string
	id     string
	meta   atomic.Pointer[streamMeta] // the latest configuration
	cancel context.CancelFunc
	done   chan struct{}

	records, bytes, objects atomic.Int64
	counted                 *metrics.DeliveryStream // nil without metrics

	mu struct {
		sync.Mutex
		pending map[string]int64 // shard -> arrival (Unix ms) of its oldest undelivered record
		behind  map[string]int64 // shard -> MillisBehindLatest of its last read
	}
}

func (s *Service) startWorkerLocked(m *streamMeta) *worker {
	ctx, cancel := context.WithCancel(s.ctx)
	w := &worker{s: s, name: m.Name, id: m.ID, cancel: cancel, done: make(chan struct{}), counted: s.counted(m.Name, m.ID)}
	w.meta.Store(m)
	w.mu.pending = map[string]int64{}
	w.mu.behind = map[string]int64{}
	w.counted.SetFreshness(func() int64 { return w.snapshot(s.now()).FreshnessMillis })
	s.mu.workers[m.ID] = w
	go func() {
		defer close(w.done)
		w.run(ctx)
	}()
	return w
}

func (w *worker) stop() {
	w.cancel()
	<-w.done
	w.counted.SetFreshness(nil)
}

func (w *worker) snapshot(now time.Time) *DeliveryStats {
	st := &DeliveryStats{RecordsDelivered: w.records.Load(), BytesDelivered: w.bytes.Load(), ObjectsDelivered: w.objects.Load()}
	w.mu.Lock()
	defer w.mu.Unlock()
	for shard, at := range w.mu.pending {
		if age := now.UnixMilli() - at; at != 0 && age > st.FreshnessMillis {
			st.FreshnessMillis = age
		}
		if b := w.mu.behind[shard]; b > st.FreshnessMillis {
			st.FreshnessMillis = b
		}
	}
	return st
}

func (w *worker) setPending(shard string, at, behind int64) {
	w.mu.Lock()
	w.mu.pending[shard] = at
	w.mu.behind[shard] = behind
	w.mu.Unlock()
}

// heldLease is a lease this worker holds. Its counter changes with every
// renewal and checkpoint, so both happen under mu.
type heldLease struct {
	mu      sync.Mutex
	key     string
	counter uint64
	cancel  context.CancelFunc
	done    chan struct{}
}

func (w *worker) ref() leases.TableRef {
	m := w.meta.Load()
	return leases.TableRef{App: leaseApp(m.Name, m.ID), Stream: m.sourceStream()}
}

// run holds leases and runs shards until ctx ends.
func (w *worker) run(ctx context.Context) {
	s := w.s
	ref := w.ref()
	held := map[string]*heldLease{}
	defer func() {
		for _, h := range held {
			h.cancel()
			<-h.done
		}
	}()
	seen := map[string]struct {
		counter uint64
		at      time.Time
	}{}
	tableReady := false
	tick := time.NewTicker(max(s.opts.LeaseDuration/3, 10*time.Millisecond))
	defer tick.Stop()
	for {
		if !tableReady {
			tableReady = w.ensureTable(ctx, ref)
		}
		if tableReady {
			if err := w.balance(ctx, ref, held, seen); err != nil && ctx.Err() == nil {
				s.log.Warn("delivery: lease round failed", slog.String("delivery_stream", w.name), slog.Any("error", err))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *worker) ensureTable(ctx context.Context, ref leases.TableRef) bool {
	m := w.meta.Load()
	pos := leases.Position{Type: leases.TrimHorizon}
	if m.Type == TypeKinesis {
		at := time.UnixMilli(m.Created).UTC()
		pos = leases.Position{Type: leases.AtTimestamp, Timestamp: &at}
	}
	_, err := w.s.leases.CreateTable(ctx, ref, pos)
	var le *leases.Error
	if err == nil || errors.As(err, &le) && le.Code == leases.CodeResourceInUse {
		return true
	}
	if ctx.Err() == nil {
		w.s.log.Debug("delivery: lease table not ready", slog.String("delivery_stream", w.name), slog.Any("error", err))
	}
	return false
}

// balance takes the leases this worker may take, renews the ones it
// holds, and starts the shards that are ready (their parents delivered).
func (w *worker) balance(ctx context.Context, ref leases.TableRef, held map[string]*heldLease, seen map[string]struct {
	counter uint64
	at      time.Time
}) error {
	s := w.s
	ls, err := s.leases.ListLeases(ctx, ref)
	if err != nil {
		return err
	}
	byKey := map[string]leases.Lease{}
	for _, l := range ls {
		byKey[l.LeaseKey] = l
	}
	// Forget shards that ended or whose leases were lost.
	for key, h := range held {
		select {
		case <-h.done:
			delete(held, key)
		default:
		}
	}
	now := time.Now()
	for _, l := range ls {
		if _, ok := held[l.LeaseKey]; ok || l.Checkpoint == leases.ShardEnd {
			continue
		}
		free := l.Owner == "" || l.Owner == s.opts.WorkerID
		if !free {
			sn, ok := seen[l.LeaseKey]
			if !ok || sn.counter != l.Counter {
				seen[l.LeaseKey] = struct {
					counter uint64
					at      time.Time
				}{l.Counter, now}
				continue
			}
			free = now.Sub(sn.at) >= s.opts.LeaseDuration
		}
		if !free || !parentsDone(l, byKey) {
			continue
		}
		taken, err := s.leases.Take(ctx, ref, l.LeaseKey, s.opts.WorkerID, l.Counter)
		if err != nil {
			continue // another worker was faster
		}
		rctx, cancel := context.WithCancel(ctx)
		h := &heldLease{key: l.LeaseKey, counter: taken.Counter, cancel: cancel, done: make(chan struct{})}
		held[l.LeaseKey] = h
		go func() {
			defer close(h.done)
			defer cancel()
			w.runShard(rctx, ref, h, *taken)
		}()
	}
	for _, h := range held {
		h.mu.Lock()
		renewed, lost, err := s.leases.Renew(ctx, ref, s.opts.WorkerID, []leases.Renewal{{LeaseKey: h.key, Counter: h.counter}})
		if err == nil && len(renewed) == 1 {
			h.counter = renewed[0].Counter
		}
		h.mu.Unlock()
		if err == nil && len(lost) == 1 {
			s.log.Warn("delivery: lease lost", slog.String("delivery_stream", w.name), slog.String("shard", h.key))
			h.cancel()
		}
	}
	return nil
}

// parentsDone reports whether every parent of l is delivered to its end
// (or expired, with no lease left).
func parentsDone(l leases.Lease, byKey map[string]leases.Lease) bool {
	for _, p := range l.ParentShardIds {
		if pl, ok := byKey[p]; ok && pl.Checkpoint != leases.ShardEnd {
			return false
		}
	}
	return true
}

// plan is a batch chosen and not yet checkpointed: enough to build the
// same objects again after a crash.
type plan struct {
	First   string                             `json:"first"`
	Last    string                             `json:"last"`
	Count   int                                `json:"count"`
	Version int64                              `json:"version"`
	Dest    ExtendedS3DestinationConfiguration `json:"dest"`
}

func planPrefix(id string) string                  { return "delivery/plans/" + id + "/" }
func planKey(id, shard string) string              { return planPrefix(id) + shard }
func seqLess(a, b string) bool                     { return len(a) < len(b) || len(a) == len(b) && a < b }
func isSeq(s string) bool                          { return s != "" && s[0] >= '0' && s[0] <= '9' }
func (w *worker) srcName() string                  { return w.meta.Load().sourceStream() }
func backoff(d, limit time.Duration) time.Duration { return min(2*d, limit) }

// record is one source record in a buffer.
type record struct {
	seq     string
	arrival int64 // Unix ms
	data    []byte
}

// shardRunner reads one shard, buffers and delivers it.
type shardRunner struct {
	w     *worker
	ref   leases.TableRef
	h     *heldLease
	shard string
	srcID string
	iter  string
	last  string // sequence number of the last record read
	buf   []record
	bytes int
	ended bool
	// since is when the buffer last went from empty to holding records:
	// the interval runs from there, so a reader that is behind fills
	// whole buffers instead of cutting one per read.
	since time.Time
}

func (w *worker) runShard(ctx context.Context, ref leases.TableRef, h *heldLease, l leases.Lease) {
	s := w.s
	r := &shardRunner{w: w, ref: ref, h: h, shard: l.LeaseKey}
	defer w.setPending(r.shard, 0, 0)
	wait := s.opts.RetryMin
	for ctx.Err() == nil {
		err := r.start(ctx, l)
		if err == nil {
			break
		}
		s.log.Warn("delivery: cannot start shard", slog.String("delivery_stream", w.name), slog.String("shard", r.shard), slog.Any("error", err))
		if !sleep(ctx, wait) {
			return
		}
		wait = backoff(wait, s.opts.RetryMax)
	}
	if err := r.loop(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("delivery: shard stopped", slog.String("delivery_stream", w.name), slog.String("shard", r.shard), slog.Any("error", err))
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// start finishes a plan a crash left and positions the reader after the
// shard's checkpoint.
func (r *shardRunner) start(ctx context.Context, l leases.Lease) error {
	s := r.w.s
	lin, err := s.streams.Lineage(ctx, r.w.srcName())
	if err != nil {
		return err
	}
	r.srcID = lin.ID
	checkpoint := l.Checkpoint
	b, ver, err := s.meta.Get(ctx, planKey(r.w.id, r.shard))
	switch {
	case errors.Is(err, engine.ErrKeyNotFound):
	case err != nil:
		return err
	default:
		var p plan
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("decode plan: %w", err)
		}
		if isSeq(checkpoint) && !seqLess(checkpoint, p.Last) {
			// Checkpointed before the crash: only the plan's key is left.
			if err := s.meta.Delete(ctx, planKey(r.w.id, r.shard), ver); err != nil && !errors.Is(err, engine.ErrKeyNotFound) {
				return err
			}
		} else {
			recs, err := r.readRange(ctx, p.First, p.Last)
			if err != nil {
				return err
			}
			s.log.Info("delivery: writing again a batch planned before a restart", slog.String("delivery_stream", r.w.name),
				slog.String("shard", r.shard), slog.String("first", p.First), slog.String("last", p.Last), slog.Int("records", len(recs)))
			if err := r.deliverPlan(ctx, p, recs, ver); err != nil {
				return err
			}
			checkpoint = p.Last
		}
	}
	return r.position(ctx, checkpoint)
}

// position gets an iterator just after checkpoint (a sequence number) or
// at the table's initial position.
func (r *shardRunner) position(ctx context.Context, checkpoint string) error {
	src := r.w.srcName()
	in := &streams.GetShardIteratorInput{StreamName: &src, ShardId: &r.shard}
	switch {
	case isSeq(checkpoint):
		in.ShardIteratorType, in.StartingSequenceNumber = ptr("AFTER_SEQUENCE_NUMBER"), &checkpoint
		r.last = checkpoint
	case checkpoint == leases.AtTimestamp:
		in.ShardIteratorType = ptr("AT_TIMESTAMP")
		in.Timestamp = ptr(streams.TimestampMillis(r.w.meta.Load().Created))
	case checkpoint == leases.Latest:
		in.ShardIteratorType = ptr("LATEST")
	default:
		in.ShardIteratorType = ptr("TRIM_HORIZON")
	}
	out, err := r.w.s.streams.GetShardIterator(ctx, in)
	if err != nil {
		return err
	}
	r.iter = *out.ShardIterator
	return nil
}

// readRange reads the records from first to last, inclusive.
func (r *shardRunner) readRange(ctx context.Context, first, last string) ([]record, error) {
	src := r.w.srcName()
	it, err := r.w.s.streams.GetShardIterator(ctx, &streams.GetShardIteratorInput{StreamName: &src, ShardId: &r.shard,
		ShardIteratorType: ptr("AT_SEQUENCE_NUMBER"), StartingSequenceNumber: &first})
	if err != nil {
		return nil, err
	}
	iter := it.ShardIterator
	var recs []record
	for iter != nil {
		out, err := r.w.s.streams.GetRecords(ctx, &streams.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return nil, err
		}
		for _, rec := range out.Records {
			if seqLess(last, rec.SequenceNumber) {
				return recs, nil
			}
			recs = append(recs, record{seq: rec.SequenceNumber, arrival: rec.ApproximateArrivalTimestamp.Millis(), data: rec.Data})
			if rec.SequenceNumber == last {
				return recs, nil
			}
		}
		if len(out.Records) == 0 {
			return recs, nil // the rest is gone (retention) or not there
		}
		iter = out.NextShardIterator
	}
	return recs, nil
}

// loop reads, buffers and delivers until the shard ends or ctx ends.
func (r *shardRunner) loop(ctx context.Context) error {
	s := r.w.s
	wait := s.opts.RetryMin
	for ctx.Err() == nil {
		var behind int64
		got := 0
		if !r.ended {
			out, err := s.streams.GetRecords(ctx, &streams.GetRecordsInput{ShardIterator: &r.iter, Limit: ptr(int32(10000))})
			if err != nil {
				var se *streams.Error
				if errors.As(err, &se) && se.Code == streams.CodeExpiredIterator {
					if err := r.position(ctx, r.lastOr()); err != nil {
						return err
					}
					continue
				}
				s.log.Warn("delivery: read failed", slog.String("delivery_stream", r.w.name), slog.String("shard", r.shard), slog.Any("error", err))
				if !sleep(ctx, wait) {
					return nil
				}
				wait = backoff(wait, s.opts.RetryMax)
				continue
			}
			wait = s.opts.RetryMin
			got = len(out.Records)
			behind = out.MillisBehindLatest
			if len(r.buf) == 0 && len(out.Records) > 0 {
				r.since = s.now()
			}
			read := 0
			for _, rec := range out.Records {
				r.buf = append(r.buf, record{seq: rec.SequenceNumber, arrival: rec.ApproximateArrivalTimestamp.Millis(), data: rec.Data})
				read += len(rec.Data)
				r.last = rec.SequenceNumber
			}
			r.bytes += read
			if got > 0 && r.w.counted != nil && r.w.meta.Load().Type == TypeKinesis {
				r.w.counted.ReadFromKinesis(got, read)
			}
			if out.NextShardIterator == nil {
				r.ended = true
			} else {
				r.iter = *out.NextShardIterator
			}
		}
		var oldest int64
		if len(r.buf) > 0 {
			oldest = r.buf[0].arrival
		}
		r.w.setPending(r.shard, oldest, behind)
		if err := r.flushDue(ctx); err != nil {
			return err
		}
		if r.ended && len(r.buf) == 0 {
			return r.checkpoint(ctx, leases.ShardEnd)
		}
		if got == 0 {
			d := s.opts.PollInterval
			if len(r.buf) > 0 {
				due := r.since.Add(r.interval()).Sub(s.now())
				d = max(min(d, due), time.Millisecond)
			}
			if !sleep(ctx, d) {
				return nil
			}
		}
	}
	return nil
}

func (r *shardRunner) lastOr() string {
	if r.last != "" {
		return r.last
	}
	return leases.TrimHorizon
}

func (r *shardRunner) interval() time.Duration {
	return time.Duration(*r.w.meta.Load().Dest.BufferingHints.IntervalInSeconds) * time.Second
}

// flushDue delivers what the buffering hints say is due: full buffers
// of SizeInMBs, and everything once the buffer has been filling for
// IntervalInSeconds (or the shard has ended).
func (r *shardRunner) flushDue(ctx context.Context) error {
	limit := int(*r.w.meta.Load().Dest.BufferingHints.SizeInMBs) << 20
	for r.bytes >= limit {
		n, size := 0, 0
		for n < len(r.buf) && (n == 0 || size+len(r.buf[n].data) <= limit) {
			size += len(r.buf[n].data)
			n++
		}
		if err := r.flush(ctx, n, size); err != nil {
			return err
		}
	}
	if len(r.buf) > 0 && (r.ended || !r.w.s.now().Before(r.since.Add(r.interval()))) {
		return r.flush(ctx, len(r.buf), r.bytes)
	}
	return nil
}

// flush delivers the first n records of the buffer (size bytes).
func (r *shardRunner) flush(ctx context.Context, n, size int) error {
	recs := r.buf[:n]
	m := r.w.meta.Load()
	p := plan{First: recs[0].seq, Last: recs[n-1].seq, Count: n, Version: m.Version, Dest: m.Dest}
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	key := planKey(r.w.id, r.shard)
	var expect uint64
	if _, v, err := r.w.s.meta.Get(ctx, key); err == nil {
		expect = v
	} else if !errors.Is(err, engine.ErrKeyNotFound) {
		return err
	}
	ver, err := r.w.s.meta.Put(ctx, key, b, expect)
	if err != nil {
		return fmt.Errorf("store plan: %w", err)
	}
	r.w.s.crash(CrashAfterPlan)
	if err := r.deliverPlan(ctx, p, recs, ver); err != nil {
		return err
	}
	r.buf = append(r.buf[:0:0], r.buf[n:]...)
	r.bytes -= size
	r.since = r.w.s.now() // what is left starts a new buffer
	return nil
}

// deliverPlan writes the objects of a stored plan (version ver of its
// key), checkpoints its last record and drops the plan.
func (r *shardRunner) deliverPlan(ctx context.Context, p plan, recs []record, ver uint64) error {
	s := r.w.s
	objs, err := buildObjects(r.w.name, r.srcID, r.shard, p, recs, r.w.meta.Load().Type == TypeKinesis)
	if err != nil {
		return err
	}
	// The lease must still be ours before anything is written.
	r.h.mu.Lock()
	renewed, _, err := s.leases.Renew(ctx, r.ref, s.opts.WorkerID, []leases.Renewal{{LeaseKey: r.shard, Counter: r.h.counter}})
	if err == nil && len(renewed) == 1 {
		r.h.counter = renewed[0].Counter
	}
	r.h.mu.Unlock()
	if err != nil {
		return err
	}
	if len(renewed) != 1 {
		return fmt.Errorf("lease of %s lost", r.shard)
	}
	// The objects of a batch are independent of each other: they are
	// written concurrently, and all of them before the checkpoint.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxConcurrentObjects)
	var first sync.Once
	for _, obj := range objs {
		g.Go(func() error {
			if err := r.deliver(gctx, p, obj); err != nil {
				return err
			}
			first.Do(func() { s.crash(CrashAfterObject) })
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := r.checkpoint(ctx, p.Last); err != nil {
		return err
	}
	s.crash(CrashAfterCheckpoint)
	if err := s.meta.Delete(ctx, planKey(r.w.id, r.shard), ver); err != nil && !errors.Is(err, engine.ErrKeyNotFound) {
		return err
	}
	size := 0
	for _, rec := range recs {
		size += len(rec.data)
	}
	r.w.records.Add(int64(len(recs)))
	r.w.bytes.Add(int64(size))
	r.w.objects.Add(int64(len(objs)))
	if r.w.counted != nil {
		// Records as the objects hold them: user records after
		// de-aggregation, and error documents.
		inObjects := 0
		for _, o := range objs {
			inObjects += o.Records
		}
		r.w.counted.Delivered(inObjects, size, len(objs))
	}
	return nil
}

// deliver writes one object, retrying with back-off until it is stored
// or ctx ends. Later records wait: nothing is skipped.
func (r *shardRunner) deliver(ctx context.Context, p plan, obj Object) error {
	s := r.w.s
	wait := s.opts.RetryMin
	failed := false
	for attempt := 1; ; attempt++ {
		dest, err := s.opts.Resolver.Resolve(ctx, *p.Dest.BucketARN)
		if err == nil {
			err = dest.Deliver(ctx, obj)
		}
		if err == nil || ctx.Err() == nil {
			r.w.counted.ObjectWritten(err == nil)
		}
		if err == nil {
			if failed {
				r.w.setFailure(ctx, nil)
				s.log.Info("delivery: destination recovered", slog.String("delivery_stream", r.w.name), slog.Int("attempts", attempt))
			}
			freshness := int64(0)
			if len(obj.Key) > 0 {
				freshness = r.w.snapshot(s.now()).FreshnessMillis
			}
			s.log.Info("delivery: object delivered", slog.String("delivery_stream", r.w.name), slog.String("key", obj.Key),
				slog.Int("records", obj.Records), slog.Int("bytes", len(obj.Body)), slog.Int64("freshness_ms", freshness))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.log.Warn("delivery: object not delivered; retrying", slog.String("delivery_stream", r.w.name), slog.String("key", obj.Key),
			slog.Int("attempt", attempt), slog.Duration("retry_in", wait), slog.Bool("permanent", IsPermanent(err)), slog.Any("error", err))
		if !failed {
			failed = true
			r.w.setFailure(ctx, &FailureDescription{Type: "UNKNOWN_ERROR", Details: fmt.Sprintf("Delivery to %s failed: %v", *p.Dest.BucketARN, err)})
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = backoff(wait, s.opts.RetryMax)
	}
}

// checkpoint stores the shard's progress, fenced by the lease.
func (r *shardRunner) checkpoint(ctx context.Context, seq string) error {
	r.h.mu.Lock()
	defer r.h.mu.Unlock()
	l, err := r.w.s.leases.Checkpoint(ctx, r.ref, r.shard, r.w.s.opts.WorkerID, r.h.counter, seq, 0)
	if err != nil {
		return fmt.Errorf("checkpoint %s at %s: %w", r.shard, seq, err)
	}
	r.h.counter = l.Counter
	return nil
}

// setFailure records (or, with nil, clears) the delivery stream's
// FailureDescription.
func (w *worker) setFailure(ctx context.Context, f *FailureDescription) {
	_, err := w.s.update(ctx, w.name, func(m *streamMeta) error {
		if m.ID != w.id {
			return errors.New("delivery stream replaced")
		}
		m.Failure = f
		return nil
	})
	if err != nil && ctx.Err() == nil {
		w.s.log.Debug("delivery: failure not recorded", slog.String("delivery_stream", w.name), slog.Any("error", err))
	}
}

// buildObjects turns a plan's records into objects: one per partition
// (one in all without dynamic partitioning), cut at SizeInMBs, and one of
// error documents for the records that could not be processed. The same
// plan and records always give the same keys and bytes. kplAgg expands
// KPL aggregates (a Kinesis stream source).
func buildObjects(name, srcID, shard string, p plan, recs []record, kplAgg bool) ([]Object, error) {
	if len(recs) == 0 {
		return nil, nil
	}
	dynamic := isDynamic(&p.Dest)
	pc, err := processing(p.Dest.ProcessingConfiguration, dynamic)
	if err != nil {
		return nil, err
	}
	pre, err := compilePrefixes(p.Dest.Prefix, p.Dest.ErrorOutputPrefix, dynamic)
	if err != nil {
		return nil, err
	}
	loc := time.UTC
	if tz := p.Dest.CustomTimeZone; tz != nil && *tz != "" {
		if l, err := time.LoadLocation(*tz); err == nil {
			loc = l
		}
	}
	var users []userRecord
	var failed []failedRecord
	for _, r := range recs {
		users, failed = pc.deaggregateRecord(r, kplAgg, users, failed)
	}

	// Partitions in order of first appearance.
	type partition struct {
		id   string
		keys map[string]string
		recs []userRecord
	}
	var parts []*partition
	byID := map[string]*partition{}
	for _, u := range users {
		var keys map[string]string
		if pc.query != nil {
			k, err := pc.partitionKeys(u.data)
			if err != nil {
				failed = append(failed, failedRecord{data: u.data, arrival: u.arrival, code: errMetadataExtraction, message: err.Error()})
				continue
			}
			keys = k
		}
		id := partitionID(keys)
		pt := byID[id]
		if pt == nil {
			if len(parts) == maxActivePartitions {
				failed = append(failed, failedRecord{data: u.data, arrival: u.arrival, code: errPartitionLimit,
					message: fmt.Sprintf("The number of active partitions exceeds the limit of %d.", maxActivePartitions)})
				continue
			}
			pt = &partition{id: id, keys: keys}
			byID[id] = pt
			parts = append(parts, pt)
		}
		pt.recs = append(pt.recs, u)
	}

	format := *p.Dest.CompressionFormat
	ext := compressionExt[format]
	if e := p.Dest.FileExtension; e != nil && *e != "" {
		ext = *e
	}
	limit := int(*p.Dest.BufferingHints.SizeInMBs) << 20
	var (
		objs  []Object
		names []string    // each object's name, for a ZIP entry
		times []time.Time // each object's instant
	)
	emit := func(tmpl *prefixTemplate, partKey string, keys map[string]string, errType string, bodies [][]byte, arrivals []int64) error {
		// Cut at SizeInMBs: one object per chunk.
		for chunk, start := 0, 0; start < len(bodies); chunk++ {
			end, size := start, 0
			for end < len(bodies) && (end == start || size+len(bodies[end]) <= limit) {
				size += len(bodies[end])
				end++
			}
			oldest := arrivals[start]
			for _, a := range arrivals[start:end] {
				oldest = min(oldest, a)
			}
			at := time.UnixMilli(oldest).In(loc)
			unique := uniqueID(srcID, shard, p.First, p.Last, partKey+"\x00"+strconv.Itoa(chunk))
			prefix, err := tmpl.eval(prefixValues{At: at, Random: func(n int) string { return randomString(unique, n) }, ErrorType: errType, Keys: keys})
			if err != nil {
				return err
			}
			body := make([]byte, 0, size)
			for _, b := range bodies[start:end] {
				body = append(body, b...)
			}
			base := objectName(name, p.Version, at, unique, "")
			objs = append(objs, Object{Key: prefix + base + ext, Body: body, Records: end - start})
			names = append(names, base)
			times = append(times, at)
			start = end
		}
		return nil
	}
	for _, pt := range parts {
		bodies := make([][]byte, len(pt.recs))
		arrivals := make([]int64, len(pt.recs))
		for i, u := range pt.recs {
			b := u.data
			if pc.appendNewline {
				b = append(b[:len(b):len(b)], '\n')
			}
			bodies[i], arrivals[i] = b, u.arrival
		}
		if err := emit(pre.prefix, "p\x00"+pt.id, pt.keys, "", bodies, arrivals); err != nil {
			// The prefix cannot be evaluated for these records (too long,
			// a key missing): they are errors.
			for _, u := range pt.recs {
				failed = append(failed, failedRecord{data: u.data, arrival: u.arrival, code: errPrefixEvaluation, message: err.Error()})
			}
		}
	}
	if len(failed) > 0 {
		bodies := make([][]byte, len(failed))
		arrivals := make([]int64, len(failed))
		for i, f := range failed {
			doc, err := json.Marshal(errorDocument{AttemptsMade: 1, ArrivalTimestamp: f.arrival, ErrorCode: f.code, ErrorMessage: f.message, RawData: f.data})
			if err != nil {
				return nil, err
			}
			bodies[i], arrivals[i] = append(doc, '\n'), f.arrival
		}
		if err := emit(pre.errorPrefix, "e", nil, errorOutputType, bodies, arrivals); err != nil {
			return nil, fmt.Errorf("error prefix: %w", err)
		}
	}
	// Compress the objects concurrently: they are independent.
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range objs {
		g.Go(func() error {
			enc, err := compress(format, objs[i].Body, names[i], times[i])
			objs[i].Body = enc
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return objs, nil
}

// maxConcurrentObjects bounds the objects of one batch written at once.
const maxConcurrentObjects = 8
