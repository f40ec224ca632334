package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/kpl"
)

// Consumer is one worker of a consumer application: it holds a share of the
// stream's shard leases, reads those shards and hands their records to the
// Processor. Workers of one application share the shards among themselves
// through the lease table; see docs/CONSUMER.md.
type Consumer struct {
	client Kinesis
	stream string
	app    string
	proc   Processor
	o      options
	id     string
	log    *slog.Logger

	// now is the worker's monotonic clock; tests move it.
	now func() time.Time
	// initial is the table's initial position, known once Run started.
	initial Position
	// seen is when the worker first saw each lease's counter and owner,
	// on its monotonic clock; the coordinator goroutine owns it.
	seen map[string]sighting
	// wake asks the coordinator for a scan of the lease table now.
	wake chan struct{}
	// shards counts the shard goroutines.
	shards  sync.WaitGroup
	running atomic.Bool

	// mu serializes every change of the worker's leases, so a renewal and
	// a checkpoint never race each other's counter.
	mu struct {
		sync.Mutex
		held map[string]*shard
	}

	taken, stolen, lost, takeConflicts, checkpointConflicts atomic.Uint64
}

// sighting is a lease's counter and owner and when they were first seen.
type sighting struct {
	counter uint64
	owner   string
	since   time.Time
}

// New returns a worker of application app on stream. The client's calls are
// used for reading shards and, unless the Leases option says otherwise, its
// endpoint for runnel's lease tables.
func New(client Kinesis, stream, app string, processor Processor, opts ...Option) (*Consumer, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(&o)
	}
	if client == nil || processor == nil {
		return nil, errors.New("consumer: New needs a client and a processor")
	}
	if stream == "" || app == "" {
		return nil, errors.New("consumer: New needs a stream and an application name")
	}
	if o.workerID == "" {
		o.workerID = defaultWorkerID()
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.store == nil {
		s, err := NewRunnelStore(client.Options(), stream, app)
		if err != nil {
			return nil, err
		}
		o.store = s
	}
	log := o.logger.With(slog.String("app", app), slog.String("stream", stream), slog.String("worker", o.workerID))
	switch {
	case o.retriever != nil:
	case o.fanOut != "":
		// One SDK client per subscription (see NewFanOutRetriever), all
		// on the caller's HTTP client.
		opts := client.Options()
		o.retriever = newFanOutRetriever(func() FanOutClient { return kinesis.New(opts) }, stream, o.fanOut, log)
	default:
		o.retriever = newPollingRetriever(client, stream, o.maxRecords, o.idle, o.sdkRetrieval)
	}
	c := &Consumer{
		client: client, stream: stream, app: app, proc: processor, o: o, id: o.workerID,
		log:  log,
		seen: map[string]sighting{},
		wake: make(chan struct{}, 1),
		now:  time.Now,
	}
	c.mu.held = map[string]*shard{}
	return c, nil
}

// WorkerID returns the name the worker holds leases under.
func (c *Consumer) WorkerID() string { return c.id }

// Stats counts what a worker did with its leases.
type Stats struct {
	// Held is the number of leases held now.
	Held int
	// Taken counts leases taken, Stolen those of them taken from a live
	// worker to balance the load.
	Taken, Stolen uint64
	// Lost counts leases found taken by another worker at renewal or
	// checkpoint.
	Lost uint64
	// TakeConflicts counts takes another worker won.
	TakeConflicts uint64
	// CheckpointConflicts counts checkpoints the store refused because the
	// lease had moved on: none of them was written.
	CheckpointConflicts uint64
}

// Stats returns the worker's counters.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	held := len(c.mu.held)
	c.mu.Unlock()
	return Stats{Held: held, Taken: c.taken.Load(), Stolen: c.stolen.Load(), Lost: c.lost.Load(),
		TakeConflicts: c.takeConflicts.Load(), CheckpointConflicts: c.checkpointConflicts.Load()}
}

// Shards returns the ids of the shards the worker holds, sorted.
func (c *Consumer) Shards() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, 0, len(c.mu.held))
	for id := range c.mu.held {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// scanInterval is how often the worker lists the lease table: a third of
// the lease duration, and at least twice a second so that leases released
// by a worker that stopped are taken over at once.
func (c *Consumer) scanInterval() time.Duration {
	return min(c.o.leaseDuration/3, 500*time.Millisecond)
}

// Run works until ctx ends: it takes and renews leases and processes their
// shards. When ctx ends it stops reading, waits for the batches in progress,
// and releases its leases so other workers take them over at once; it
// writes no checkpoint of its own then. It returns an error only when the
// lease table cannot be prepared: it waits for an endpoint it cannot reach,
// but not for one that refuses (a stream that does not exist).
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("consumer: Run may be called once")
	}
	// An unreachable endpoint is waited for; an answer that refuses
	// (no such stream, bad arguments) ends Run.
	var initial Position
	for attempt := 0; ; attempt++ {
		var err error
		initial, err = c.o.store.Prepare(ctx, c.o.initial)
		var ne net.Error
		if err == nil {
			break
		}
		if !errors.As(err, &ne) || ctx.Err() != nil {
			return fmt.Errorf("consumer: prepare lease table: %w", err)
		}
		delay := min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
		c.log.Warn("lease table unreachable; retrying", slog.Any("error", err), slog.Duration("after", delay))
		if sleep(ctx, delay) != nil {
			return nil
		}
	}
	c.initial = initial
	c.log.Info("worker started", slog.Duration("lease_duration", c.o.leaseDuration))

	// Reads stop with ctx; processors see their context end only when the
	// lease is lost, so a batch in progress at shutdown can checkpoint.
	readCtx, stopReads := context.WithCancel(ctx)
	defer stopReads()
	procCtx := context.WithoutCancel(ctx)

	renew := time.NewTicker(c.o.leaseDuration / 3)
	defer renew.Stop()
	scan := time.NewTimer(0)
	defer scan.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-renew.C:
			c.renew(procCtx)
		case <-scan.C:
			scan.Reset(c.scan(readCtx, procCtx))
		case <-c.wake:
			scan.Reset(c.scan(readCtx, procCtx))
		}
	}
	stopReads()
	c.shards.Wait()
	c.releaseAll(procCtx)
	c.log.Info("worker stopped")
	return nil
}

// storeCall bounds one lease store call. The calls that change leases are
// never cut short by the end of Run: a take or renewal the store applied
// while the worker stopped listening would leave a counter the worker does
// not know, and a lease it cannot release.
func (c *Consumer) storeCall(procCtx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(procCtx, c.o.leaseDuration)
}

// releaseAll gives up every lease the worker holds.
func (c *Consumer) releaseAll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, c.o.leaseDuration)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, s := range c.mu.held {
		if _, err := c.o.store.Release(ctx, id, c.id, s.lease.Counter); err != nil {
			c.log.Warn("release lease failed; it expires instead", slog.String("shard", id), slog.Any("error", err))
		}
		delete(c.mu.held, id)
	}
}

// renew renews every held lease in one call. A lease the store reports lost,
// or one not renewed for a whole lease duration, is dropped at once.
func (c *Consumer) renew(procCtx context.Context) {
	ctx, cancel := c.storeCall(procCtx)
	defer cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.mu.held) == 0 {
		return
	}
	ls := make([]Lease, 0, len(c.mu.held))
	for _, s := range c.mu.held {
		ls = append(ls, s.lease)
	}
	renewed, lost, err := c.o.store.Renew(ctx, c.id, ls)
	now := c.now()
	for _, l := range renewed {
		if s := c.mu.held[l.Key]; s != nil {
			s.lease, s.renewed = l, now
		}
	}
	for _, l := range lost {
		if s := c.mu.held[l.Key]; s != nil {
			c.lost.Add(1)
			c.loseLocked(s, "renewal refused", slog.String("owner", l.Owner), slog.Uint64("counter", l.Counter))
		}
	}
	if err != nil {
		c.log.Warn("renew leases failed", slog.Any("error", err))
		for _, s := range c.mu.held {
			if now.Sub(s.renewed) >= c.o.leaseDuration {
				c.lost.Add(1)
				c.loseLocked(s, "not renewed for a lease duration")
			}
		}
	}
}

// loseLocked drops a lease: its shard stops before any further checkpoint.
func (c *Consumer) loseLocked(s *shard, why string, attrs ...any) {
	if s.lost {
		return
	}
	s.lost = true
	delete(c.mu.held, s.id)
	s.stop()
	c.log.Warn("lease lost: "+why, append([]any{slog.String("shard", s.id)}, attrs...)...)
}

// scan lists the lease table, notes which leases changed, and takes what
// the balancing rules give this worker. It returns when to scan next: after
// the scan interval, or as soon as another worker's lease expires.
func (c *Consumer) scan(readCtx, procCtx context.Context) (next time.Duration) {
	next = c.scanInterval()
	ctx, cancel := c.storeCall(procCtx)
	ls, err := c.o.store.List(ctx)
	cancel()
	if err != nil {
		c.log.Warn("list leases failed", slog.Any("error", err))
		return next
	}
	now := c.now()
	byKey := make(map[string]*Lease, len(ls))
	for i := range ls {
		l := &ls[i]
		byKey[l.Key] = l
		if o, ok := c.seen[l.Key]; !ok || o.counter != l.Counter || o.owner != l.Owner {
			c.seen[l.Key] = sighting{counter: l.Counter, owner: l.Owner, since: now}
		}
	}
	for k := range c.seen {
		if byKey[k] == nil {
			delete(c.seen, k)
		}
	}
	finished := func(key string) bool {
		l := byKey[key]
		return l == nil || l.Checkpoint == ShardEnd // gone: trimmed past retention
	}

	c.mu.Lock()
	slots := make([]slot, 0, len(ls))
	for _, l := range ls {
		s := c.mu.held[l.Key]
		if s != nil && l.Owner != c.id && l.Counter > s.lease.Counter {
			c.lost.Add(1)
			c.loseLocked(s, "taken by another worker", slog.String("owner", l.Owner))
			s = nil
		}
		if l.Checkpoint == ShardEnd || !allFinished(l.Parents, finished) {
			continue // done, or a child whose parents are not
		}
		owner := l.Owner
		switch {
		case s != nil:
			owner = c.id
		case owner == c.id:
			owner = "" // this worker's own, from before a restart
		case owner != "":
			left := c.o.leaseDuration - now.Sub(c.seen[l.Key].since)
			if left <= 0 {
				owner = "" // expired
			} else {
				next = min(next, left+time.Millisecond)
			}
		}
		slots = append(slots, slot{Key: l.Key, Owner: owner, Counter: l.Counter})
	}
	c.mu.Unlock()

	// In random order, so that workers starting together take different
	// leases rather than race for the same ones.
	rand.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	// Takes run a few at a time, so a worker starting on many shards
	// holds its share within one scan.
	var wg sync.WaitGroup
	sem := make(chan struct{}, takeParallelism)
	for _, s := range plan(c.id, slots) {
		if readCtx.Err() != nil {
			break // stopping
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.take(readCtx, procCtx, s)
		}()
	}
	wg.Wait()
	return next
}

// takeParallelism is how many TakeLease calls a worker has in flight.
const takeParallelism = 8

// allFinished reports whether every shard in ids is finished.
func allFinished(ids []string, finished func(string) bool) bool {
	for _, id := range ids {
		if !finished(id) {
			return false
		}
	}
	return true
}

// take takes one lease and starts its shard. The store call is made
// outside c.mu: a lease not yet held has no counter of this worker's to
// race with.
func (c *Consumer) take(readCtx, procCtx context.Context, s slot) {
	ctx, cancel := c.storeCall(procCtx)
	l, err := c.o.store.Take(ctx, s.Key, c.id, s.Counter)
	cancel()
	if errors.Is(err, ErrLeaseConflict) {
		c.takeConflicts.Add(1)
		c.log.Debug("take lease lost a race", slog.String("shard", s.Key), slog.Any("error", err))
		return
	}
	if err != nil {
		c.log.Warn("take lease failed", slog.String("shard", s.Key), slog.Any("error", err))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.taken.Add(1)
	if s.Owner != "" {
		c.stolen.Add(1)
	}
	sh := &shard{c: c, id: s.Key, lease: l, renewed: c.now()}
	sh.readCtx, sh.stopRead = context.WithCancel(readCtx)
	sh.procCtx, sh.stopProc = context.WithCancel(procCtx)
	c.mu.held[s.Key] = sh
	c.log.Info("took lease", slog.String("shard", s.Key), slog.String("from", s.Owner), slog.String("checkpoint", l.Checkpoint))
	c.shards.Add(1)
	go sh.run()
}

// shard is the processing of one held shard.
type shard struct {
	c  *Consumer
	id string
	// readCtx ends when the lease is lost or the worker stops; procCtx,
	// handed to the processor, only when the lease is lost.
	readCtx, procCtx   context.Context
	stopRead, stopProc context.CancelFunc

	// Guarded by c.mu.
	lease   Lease
	renewed time.Time
	lost    bool
	// delivered is the last record handed to the processor: no checkpoint
	// may pass it.
	delivered Record
}

func (s *shard) stop() {
	s.stopRead()
	s.stopProc()
}

func (s *shard) isLost() bool {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.lost
}

// run processes the shard until it ends, the lease is lost or the worker
// stops, restarting from the last checkpoint after a failure.
func (s *shard) run() {
	c := s.c
	defer c.shards.Done()
	defer s.stop()
	for attempt := 0; ; attempt++ {
		err := s.session()
		if s.isLost() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(s.procCtx), c.o.leaseDuration)
			if err := s.guard(func() error { return c.proc.LeaseLost(ctx, s.id) }); err != nil {
				c.log.Error("processor failed on lease lost", slog.String("shard", s.id), slog.Any("error", err))
			}
			cancel()
			return
		}
		if err == nil || s.readCtx.Err() != nil {
			return
		}
		delay := min(100*time.Millisecond<<min(attempt, 6), 5*time.Second)
		c.log.Error("shard processing failed; restarting from the last checkpoint",
			slog.String("shard", s.id), slog.Any("error", err), slog.Duration("after", delay))
		_ = sleep(s.readCtx, delay)
	}
}

// guard runs a processor call, turning a panic into an error.
func (s *shard) guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("processor panic: %v\n%s", r, debug.Stack())
		}
	}()
	return f()
}

// session is one pass over the shard from its checkpoint.
func (s *shard) session() error {
	c := s.c
	c.mu.Lock()
	l, lost := s.lease, s.lost
	c.mu.Unlock()
	if lost {
		return ErrLeaseLost
	}
	if l.Checkpoint == ShardEnd {
		s.finish()
		return nil
	}
	if err := s.guard(func() error {
		return c.proc.Initialize(s.procCtx, InitInput{ShardID: s.id, Checkpoint: l.Checkpoint, SubSequenceNumber: l.SubSequenceNumber})
	}); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	start := Start{Initial: c.initial}
	switch l.Checkpoint {
	case "TRIM_HORIZON", "LATEST":
		start.Initial = Position{Type: l.Checkpoint}
	case "AT_TIMESTAMP":
	case "":
	default:
		// At, not after, the checkpoint, as the KCL does: sub-sequence
		// number 0 is a plain record or the first user record of an
		// aggregate whose rest is still to be processed. userRecords
		// drops what the checkpoint covers.
		start.AtSequenceNumber = l.Checkpoint
	}
	r, err := c.o.retriever.Open(s.readCtx, s.id, start)
	if err != nil {
		return err
	}
	if cl, ok := r.(io.Closer); ok {
		defer cl.Close() // a subscription ends with its session
	}
	for {
		b, err := r.Next(s.readCtx)
		if err != nil {
			return err
		}
		recs := userRecords(b.Records, l.Checkpoint, l.SubSequenceNumber)
		if len(recs) > 0 {
			c.mu.Lock()
			lost := s.lost
			s.delivered = recs[len(recs)-1]
			c.mu.Unlock()
			if lost {
				return ErrLeaseLost
			}
			in := ProcessInput{ShardID: s.id, Records: recs, MillisBehindLatest: b.MillisBehindLatest,
				Checkpointer: &Checkpointer{s: s, last: recs[len(recs)-1]}}
			if err := s.guard(func() error { return c.proc.ProcessRecords(s.procCtx, in) }); err != nil {
				return fmt.Errorf("process records: %w", err)
			}
		}
		if b.End {
			return s.end()
		}
	}
}

// end finishes a closed shard read to its end: the processor's ShardEnded,
// then SHARD_END if it did not checkpoint it, then the lease goes.
func (s *shard) end() error {
	c := s.c
	if err := s.guard(func() error { return c.proc.ShardEnded(s.procCtx, &Checkpointer{s: s, end: true}) }); err != nil {
		return fmt.Errorf("shard ended: %w", err)
	}
	c.mu.Lock()
	ended := s.lease.Checkpoint == ShardEnd
	c.mu.Unlock()
	if !ended {
		if err := s.checkpoint(s.procCtx, ShardEnd, 0); err != nil {
			return err
		}
	}
	s.finish()
	return nil
}

// finish releases the lease of a shard checkpointed at SHARD_END, and asks
// for a scan so that its children are taken at once.
func (s *shard) finish() {
	c := s.c
	ctx, cancel := c.storeCall(s.procCtx)
	defer cancel()
	c.mu.Lock()
	if !s.lost {
		if _, err := c.o.store.Release(ctx, s.id, c.id, s.lease.Counter); err != nil {
			c.log.Warn("release finished shard failed", slog.String("shard", s.id), slog.Any("error", err))
		}
		delete(c.mu.held, s.id)
	}
	c.mu.Unlock()
	c.log.Info("shard finished", slog.String("shard", s.id))
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// checkpoint writes the shard's checkpoint under the current lease.
func (s *shard) checkpoint(ctx context.Context, seq string, sub uint64) error {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.lost {
		return ErrLeaseLost
	}
	if seq != ShardEnd {
		if err := checkpointBounds(seq, sub, s.lease, s.delivered); err != nil {
			return err
		}
	}
	l, err := c.o.store.Checkpoint(ctx, s.id, c.id, s.lease.Counter, seq, sub)
	if errors.Is(err, ErrLeaseConflict) {
		c.checkpointConflicts.Add(1)
		c.lost.Add(1)
		c.loseLocked(s, "checkpoint refused", slog.String("sequence_number", seq), slog.Any("error", err))
		return fmt.Errorf("%w: %w", ErrLeaseLost, err)
	}
	if err != nil {
		return fmt.Errorf("consumer: checkpoint %s at %s: %w", s.id, seq, err)
	}
	s.lease = l
	return nil
}

// checkpointBounds refuses a checkpoint before the current one (it would
// deliver processed records again) or past the last delivered record (it
// would skip records never processed), as the KCL does.
func checkpointBounds(seq string, sub uint64, cur Lease, delivered Record) error {
	n, ok := new(big.Int).SetString(seq, 10)
	if !ok {
		return fmt.Errorf("consumer: checkpoint %q is not a sequence number", seq)
	}
	if last, ok := new(big.Int).SetString(delivered.SequenceNumber, 10); !ok || n.Cmp(last) > 0 || n.Cmp(last) == 0 && sub > delivered.SubSequenceNumber {
		return fmt.Errorf("consumer: checkpoint %s/%d is past the last record delivered (%s/%d)", seq, sub, delivered.SequenceNumber, delivered.SubSequenceNumber)
	}
	if c, ok := new(big.Int).SetString(cur.Checkpoint, 10); ok && (n.Cmp(c) < 0 || n.Cmp(c) == 0 && sub < cur.SubSequenceNumber) {
		return fmt.Errorf("consumer: checkpoint %s/%d is before the current checkpoint %s/%d", seq, sub, cur.Checkpoint, cur.SubSequenceNumber)
	}
	return nil
}

// userRecords turns the records Kinesis returned into the records the
// processor sees: a KPL aggregate becomes its user records, each with the
// aggregate's sequence number and its index as SubSequenceNumber; any other
// record (including one that only looks like an aggregate: a bad digest, a
// protobuf that does not parse) is one user record with SubSequenceNumber 0.
// Reading starts at the checkpoint's record: its user records up to sub
// are dropped.
func userRecords(rs []types.Record, checkpoint string, sub uint64) []Record {
	out := make([]Record, 0, len(rs))
	for _, r := range rs {
		seq := aws.ToString(r.SequenceNumber)
		var at time.Time
		if r.ApproximateArrivalTimestamp != nil {
			at = *r.ApproximateArrivalTimestamp
		}
		whole := kpl.Record{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data}
		subs := []kpl.Record{whole}
		if kpl.IsAggregated(r.Data) { // else spare Deaggregate's allocation
			subs, _ = kpl.Deaggregate(whole)
		}
		for _, u := range subs {
			if seq == checkpoint && u.SubSequenceNumber <= sub {
				continue
			}
			out = append(out, Record{Data: u.Data, PartitionKey: u.PartitionKey, ExplicitHashKey: u.ExplicitHashKey,
				SequenceNumber: seq, SubSequenceNumber: u.SubSequenceNumber, ApproximateArrivalTimestamp: at})
		}
	}
	return out
}
