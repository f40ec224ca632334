package producer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/kpl"
)

// arenaChunk is the size of the chunks a pipeline copies records' data
// into: one allocation per chunk rather than per record. A chunk is freed
// when the last record in it is done.
const arenaChunk = 256 << 10

// perRecordOverhead estimates what a user record adds to an aggregate
// beyond its data and keys (field tags, lengths, indexes).
const perRecordOverhead = 12

// enqueueStatus is what enqueue did with a record.
type enqueueStatus int

const (
	enqueued enqueueStatus = iota
	retiredShard
	stopped
)

// pipeline puts the records bound for one shard, from one goroutine. With
// per-key order (the default) it has one PutRecords call in flight, and
// each call carries at most one Kinesis record per partition key (one
// aggregate, or records of distinct keys); the records a call failed are
// retried before anything after them. When its shard closes it is
// retired: it finishes its call, hands its records to the shards that
// replaced it, and ends; those start sending only then.
type pipeline struct {
	p       *Producer
	shard   string
	lo, hi  hashKey
	parents []*pipeline
	wake    chan struct{} // a token: something changed
	done    chan struct{} // closed when run has ended

	mu struct {
		sync.Mutex
		// The records waiting, oldest first: q[head:], then in. Put
		// appends to in; when q is used up the two swap, so neither
		// grows by copying once both have their size.
		q        []userRecord
		head     int
		in       []userRecord
		keyed    *keyQueues // instead of q and in, when a call carries a record per key
		astray   []astray   // aggregates stored on a shard the map did not predict
		bytes    int        // of the records waiting
		arena    []byte
		retired  bool
		stopped  bool
		fullSaid bool // a full request's worth was signalled
		requeued bool // the queue starts with records a call failed
	}

	// owned by run
	agg *kpl.Aggregator
	lim *limiter // under bmu

	// awaitList, when not 0, holds sending until listing number
	// awaitList has completed: an aggregate landed on a shard the map did
	// not predict (see settle). foreign is set when a listing did not
	// retire the pipeline all the same: the service routes otherwise than
	// the map, and records it stores elsewhere are taken as delivered.
	awaitList atomic.Int64
	foreign   atomic.Bool

	bmu      sync.Mutex // lim, rng and failures: calls in flight at once, unordered
	rng      *rand.Rand
	failures int // consecutive calls with records to retry
	timer    *time.Timer
	inflight chan struct{} // slots of calls in flight, unordered
	fullAt   int           // queued bytes that make a full request
}

func newPipeline(p *Producer, s shardRange, parents []*pipeline) *pipeline {
	pl := &pipeline{
		p: p, shard: s.id, lo: s.lo, hi: s.hi, parents: parents,
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		lim:      newLimiter(time.Now()),
		rng:      rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		inflight: make(chan struct{}, p.cfg.maxInFlight),
	}
	pl.fullAt = pl.requestBytes()
	if p.cfg.ordered && !p.cfg.aggregate {
		pl.mu.keyed = newKeyQueues()
	}
	if p.cfg.aggregate {
		pl.agg = kpl.NewAggregator(kpl.MaxSize(min(p.cfg.aggregateMax, pl.fullAt)))
	}
	return pl
}

// requestBytes is the most a request of this pipeline carries.
func (pl *pipeline) requestBytes() int {
	c := &pl.p.cfg
	n := c.maxRequestBytes
	if c.rateLimit {
		n = min(n, shardBytesPerSecond)
	}
	if c.aggregate && c.ordered {
		n = min(n, c.aggregateMax)
	}
	return n
}

// signal wakes the pipeline's goroutine.
func (pl *pipeline) signal() {
	select {
	case pl.wake <- struct{}{}:
	default:
	}
}

// enqueue appends a record, copying data into the pipeline's arena.
func (pl *pipeline) enqueue(r *userRecord, data []byte) enqueueStatus {
	pl.mu.Lock()
	if pl.mu.stopped {
		pl.mu.Unlock()
		return stopped
	}
	if pl.mu.retired {
		pl.mu.Unlock()
		return retiredShard
	}
	a := pl.mu.arena
	if cap(a)-len(a) < len(data) {
		a = make([]byte, 0, max(arenaChunk, len(data)))
	}
	off := len(a)
	a = append(a, data...)
	pl.mu.arena = a
	r.data = a[off:len(a):len(a)]
	wasEmpty := pl.lenLocked() == 0
	if pl.mu.keyed != nil {
		pl.mu.keyed.push(r)
	} else if len(pl.mu.in) == cap(pl.mu.in) {
		// Doubling, where append grows large slices by a quarter: a
		// queue that fills to hundreds of thousands of records is
		// copied a few times rather than dozens.
		in := make([]userRecord, len(pl.mu.in), max(2*cap(pl.mu.in), 256))
		copy(in, pl.mu.in)
		pl.mu.in = append(in, *r)
	} else {
		pl.mu.in = append(pl.mu.in, *r)
	}
	pl.mu.bytes += r.size()
	wake := wasEmpty
	if !pl.mu.fullSaid && pl.fullLocked() {
		pl.mu.fullSaid, wake = true, true
	}
	pl.mu.Unlock()
	if wake {
		pl.signal()
	}
	return enqueued
}

// fullLocked reports whether the queue holds a full call's worth.
func (pl *pipeline) fullLocked() bool {
	return pl.mu.bytes >= pl.fullAt || (pl.agg == nil && pl.lenLocked() >= maxRequestRecords)
}

// lenLocked is the number of records waiting.
func (pl *pipeline) lenLocked() int {
	if pl.mu.keyed != nil {
		return pl.mu.keyed.len()
	}
	return len(pl.mu.q) - pl.mu.head + len(pl.mu.in)
}

// oldestLocked is the first waiting record; there must be one.
func (pl *pipeline) oldestLocked() *userRecord {
	if pl.mu.keyed != nil {
		return pl.mu.keyed.oldest()
	}
	if pl.mu.head < len(pl.mu.q) {
		return &pl.mu.q[pl.mu.head]
	}
	return &pl.mu.in[0]
}

// swapLocked makes in the queue's front once q is used up.
func (pl *pipeline) swapLocked() {
	old := pl.mu.q
	clear(old)
	pl.mu.q, pl.mu.head, pl.mu.in = pl.mu.in, 0, old[:0]
}

// prepend puts records back at the front, in their order: records a call
// failed, or records handed on by a retired pipeline.
func (pl *pipeline) prepend(recs []userRecord) enqueueStatus {
	pl.mu.Lock()
	if pl.mu.stopped {
		pl.mu.Unlock()
		return stopped
	}
	if pl.mu.retired {
		pl.mu.Unlock()
		return retiredShard
	}
	pl.prependLocked(recs)
	pl.mu.Unlock()
	pl.signal()
	return enqueued
}

func (pl *pipeline) prependLocked(recs []userRecord) {
	for i := range recs {
		pl.mu.bytes += recs[i].size()
	}
	if pl.mu.keyed != nil {
		pl.mu.keyed.pushFront(recs)
		return
	}
	if h := pl.mu.head; h >= len(recs) {
		copy(pl.mu.q[h-len(recs):h], recs)
		pl.mu.head = h - len(recs)
		return
	}
	q := make([]userRecord, 0, len(recs)+len(pl.mu.q)-pl.mu.head+64)
	q = append(q, recs...)
	q = append(q, pl.mu.q[pl.mu.head:]...)
	pl.mu.q, pl.mu.head = q, 0
}

// requeue puts the records of a failed call back at the front.
func (pl *pipeline) requeue(recs []userRecord) {
	pl.mu.Lock()
	pl.prependLocked(recs)
	pl.mu.requeued = true
	pl.mu.Unlock()
	pl.signal()
}

// retire marks the pipeline's shard closed.
func (pl *pipeline) retire() {
	pl.mu.Lock()
	pl.mu.retired = true
	pl.mu.Unlock()
	pl.signal()
}

// run is the pipeline's goroutine.
func (pl *pipeline) run() {
	p := pl.p
	defer p.wg.Done()
	defer close(pl.done)
	for _, par := range pl.parents {
		select {
		case <-par.done:
		case <-p.stop:
		}
	}
	pl.parents = nil
	pl.timer = time.NewTimer(time.Hour)
	defer pl.timer.Stop()
	for {
		b, ok := pl.next()
		if !ok {
			break
		}
		c, ok := pl.prepare(b)
		if !ok {
			continue
		}
		if p.cfg.ordered {
			pl.call(c)
			continue
		}
		select {
		case pl.inflight <- struct{}{}:
		case <-p.stop:
			pl.failAll(c.recs, fmt.Errorf("%w before the record was sent", ErrClosed))
			continue
		}
		go func() {
			defer func() { <-pl.inflight }()
			pl.call(c)
		}()
	}
	for range cap(pl.inflight) {
		pl.inflight <- struct{}{}
	}
	pl.mu.Lock()
	a := pl.mu.astray
	pl.mu.astray = nil
	pl.mu.Unlock()
	pl.settle(a, stopping(p))
	pl.mu.Lock()
	recs := append(pl.mu.q[pl.mu.head:], pl.mu.in...)
	if pl.mu.keyed != nil {
		recs = pl.mu.keyed.drain()
	}
	pl.mu.q, pl.mu.head, pl.mu.in, pl.mu.bytes = nil, 0, nil, 0
	isStopped := stopping(p)
	if isStopped {
		pl.mu.stopped = true
	}
	pl.mu.Unlock()
	if isStopped {
		pl.failAll(recs, fmt.Errorf("%w before the record was sent", ErrClosed))
		return
	}
	pl.handOn(recs)
}

func stopping(p *Producer) bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}

// handOn routes a retired pipeline's records to the current map's
// pipelines, in order, ahead of what those already hold (which was put
// later).
func (pl *pipeline) handOn(recs []userRecord) {
	p := pl.p
	for len(recs) > 0 {
		m := p.shards.Load()
		groups := map[*pipeline][]userRecord{}
		var order []*pipeline
		for _, r := range recs {
			i := m.lookup(r.hash)
			if i < 0 {
				i = 0
			}
			t := m.shards[i].pl
			if _, ok := groups[t]; !ok {
				order = append(order, t)
			}
			groups[t] = append(groups[t], r)
		}
		recs = recs[:0:0]
		for _, t := range order {
			switch t.prepend(groups[t]) {
			case stopped:
				pl.failAll(groups[t], fmt.Errorf("%w before the record was sent", ErrClosed))
			case retiredShard:
				recs = append(recs, groups[t]...)
			}
		}
		if len(recs) > 0 {
			// A newer map retired the target too; it is published.
			time.Sleep(time.Millisecond)
		}
	}
}

// batch is one PutRecords call's records.
type batch struct {
	recs    []userRecord
	expired []userRecord
}

// next waits until a call is due and takes its records. It returns false
// when the pipeline is stopped or retired.
func (pl *pipeline) next() (batch, bool) {
	p := pl.p
	for {
		if stopping(p) {
			return batch{}, false
		}
		pl.mu.Lock()
		if pl.mu.retired {
			pl.mu.Unlock()
			return batch{}, false
		}
		wait := time.Duration(-1)
		held := false
		if w := pl.awaitList.Load(); w != 0 {
			if p.listDone.Load() >= w {
				pl.awaitList.Store(0)
				a := pl.mu.astray
				pl.mu.astray = nil
				pl.mu.Unlock()
				pl.settle(a, false)
				continue
			}
			held = true
		}
		if n := pl.lenLocked(); n > 0 && !held {
			now := p.now()
			age := now - pl.oldestLocked().enq
			if pl.fullLocked() || age >= p.cfg.linger ||
				pl.mu.requeued || p.flushing.Load() > 0 || p.closed.Load() {
				b := pl.takeLocked(now)
				pl.mu.Unlock()
				if len(b.expired) > 0 {
					pl.expire(b.expired)
				}
				if len(b.recs) > 0 {
					return b, true
				}
				continue
			}
			wait = p.cfg.linger - age
		}
		pl.mu.Unlock()
		var tc <-chan time.Time
		if wait >= 0 {
			pl.timer.Reset(wait)
			tc = pl.timer.C
		}
		select {
		case <-pl.wake:
		case <-tc:
		case <-p.stop:
		}
		if tc != nil && !pl.timer.Stop() {
			select {
			case <-pl.timer.C:
			default:
			}
		}
	}
}

// takeLocked takes the records of the next call from the front of the
// queue, and the expired records it meets.
func (pl *pipeline) takeLocked(now time.Duration) batch {
	p := pl.p
	var b batch
	if pl.mu.keyed == nil {
		if pl.mu.head == len(pl.mu.q) {
			pl.swapLocked()
		}
		q := pl.mu.q
		head := pl.mu.head
		est := 0
		taken := 0
		// A run of records from the front, copied at once, q then in.
		for {
			i := head
			for ; i < len(q); i++ {
				r := &q[i]
				sz := r.size()
				if p.cfg.aggregate {
					sz = aggregateCost(r)
				}
				if now-r.enq >= p.cfg.ttl {
					b.expired = append(b.expired, *r)
					taken += r.size()
					continue
				}
				if len(b.recs) > 0 && (est+sz > pl.fullAt || (pl.agg == nil && len(b.recs) >= maxRequestRecords)) {
					break
				}
				est += sz
				taken += r.size()
				if b.recs == nil {
					// Sized for a call of records like the first.
					b.recs = make([]userRecord, 0, min(len(q)-head+len(pl.mu.in), pl.fullAt/sz+1))
				}
				b.recs = append(b.recs, *r)
			}
			clear(q[head:i])
			pl.mu.head = i
			if i < len(q) || len(pl.mu.in) == 0 {
				break
			}
			pl.swapLocked()
			q, head = pl.mu.q, 0
		}
		pl.mu.bytes -= taken
		pl.mu.requeued = false
		pl.mu.fullSaid = pl.fullLocked()
		return b
	}
	// Without aggregation, in order: the first record of each key.
	pl.mu.bytes -= pl.mu.keyed.take(&b, now, p.cfg.ttl, pl.fullAt)
	pl.mu.requeued = false
	pl.mu.fullSaid = pl.fullLocked()
	return b
}

// aggregateCost bounds what a user record adds to an aggregate: its data,
// its keys in the tables and in the aggregate's own partition key, and the
// protobuf tags, lengths and indexes.
func aggregateCost(r *userRecord) int {
	return len(r.data) + 2*len(r.key) + 2*len(r.ehk) + 24
}

// noRetry turns the SDK's own retries off: the pipeline retries records,
// with their deadline and order.
func noRetry(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} }

// span is the records of one entry of a call.
type span struct{ from, to int }

// prepared is a call ready to make.
type prepared struct {
	recs    []userRecord
	entries []types.PutRecordsRequestEntry
	spans   []span
}

// prepare builds the call for b, requeues what did not fit and waits for
// the shard's rate limit. It reports false when there is nothing to send.
func (pl *pipeline) prepare(b batch) (prepared, bool) {
	p := pl.p
	entries, spans, leftover := pl.build(b.recs)
	if len(leftover) > 0 {
		pl.requeue(leftover)
	}
	if len(entries) == 0 {
		return prepared{}, false
	}
	recs := b.recs[:spans[len(spans)-1].to]
	if p.cfg.rateLimit {
		bytes := 0
		for _, e := range entries {
			bytes += len(e.Data) + len(aws.ToString(e.PartitionKey))
		}
		pl.bmu.Lock()
		d := pl.lim.wait(time.Now(), len(entries), bytes)
		pl.bmu.Unlock()
		if d > 0 && !pl.sleep(d) {
			pl.failAll(recs, fmt.Errorf("%w before the record was sent", ErrClosed))
			return prepared{}, false
		}
		pl.bmu.Lock()
		pl.lim.take(time.Now(), len(entries), bytes)
		pl.bmu.Unlock()
	}
	for i := range recs {
		recs[i].attempts++
	}
	return prepared{recs: recs, entries: entries, spans: spans}, true
}

// call makes one PutRecords call and hands out the results.
func (pl *pipeline) call(c prepared) {
	p := pl.p
	recs, entries, spans := c.recs, c.entries, c.spans
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.requestTimeout)
	var (
		out *kinesis.PutRecordsOutput
		err error
	)
	if p.raw != nil {
		out, err = p.raw.putRecords(ctx, p.stream, entries)
	} else {
		out, err = p.client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: entries}, noRetry)
	}
	cancel()
	if p.cfg.rateLimit {
		pl.bmu.Lock()
		pl.lim.landed(time.Now())
		pl.bmu.Unlock()
	}
	p.m.requests.Add(1)
	if err == nil && len(out.Records) != len(entries) {
		err = fmt.Errorf("PutRecords answered %d results for %d records", len(out.Records), len(entries))
	}
	if err != nil {
		if p.ctx.Err() != nil {
			pl.failAll(recs, fmt.Errorf("%w while the record was in flight: %w", ErrClosed, ErrUnknownOutcome))
			return
		}
		oc := classifyCall(err)
		if oc.refresh {
			p.requestRefresh()
		}
		if oc.ambiguous {
			err = fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
		}
		if !oc.retry {
			pl.failAll(recs, err)
			return
		}
		var api interface{ ErrorCode() string }
		if errors.As(err, &api) && api.ErrorCode() == "ProvisionedThroughputExceededException" {
			p.m.throttled.Add(int64(len(entries)))
		}
		for i := range recs {
			recs[i].lastErr = err
		}
		pl.retry(recs)
		return
	}
	var retry []userRecord
	refresh := false
	for j, rr := range out.Records {
		s := spans[j]
		part := recs[s.from:s.to]
		if rr.ErrorCode == nil && rr.SequenceNumber != nil {
			shard := aws.ToString(rr.ShardId)
			if shard != pl.shard {
				refresh = true
				if len(part) > 1 && !pl.foreign.Load() {
					// A reshard the map has not caught up with; settled
					// once the map is fresh.
					pl.mu.Lock()
					pl.mu.astray = append(pl.mu.astray, astray{recs: part, shard: shard, seq: *rr.SequenceNumber})
					pl.mu.Unlock()
					pl.awaitList.CompareAndSwap(0, p.listStarted.Load()+1)
					continue
				}
			}
			pl.succeed(part, shard, *rr.SequenceNumber)
			continue
		}
		code, msg := aws.ToString(rr.ErrorCode), aws.ToString(rr.ErrorMessage)
		rerr := &RecordError{Code: code, Message: msg}
		if code == "ProvisionedThroughputExceededException" {
			p.m.throttled.Add(1)
		}
		if !retryableCode(code) {
			pl.failAll(part, rerr)
			continue
		}
		for i := range part {
			part[i].lastErr = rerr
		}
		retry = append(retry, part...)
	}
	if refresh {
		p.requestRefresh()
	}
	if len(retry) > 0 {
		pl.retry(retry)
	} else {
		pl.bmu.Lock()
		pl.failures = 0
		pl.bmu.Unlock()
	}
}

// astray is an aggregate stored on another shard than the map predicted.
type astray struct {
	recs       []userRecord
	shard, seq string
}

// settle decides, once the shard map has been listed again, about
// aggregates stored on an unpredicted shard (a reshard the map had not
// caught up with). When that shard's hash key range holds all of an
// aggregate's records (a merge, or a split that left them together), they
// are delivered there. Otherwise some belong to another shard, where
// readers that filter an aggregate's records by hash key range (the KCL)
// would miss them: as the KPL does, they are sent again, and the copy
// stored is a duplicate. When the fresh map still has this pipeline's
// shard open, the service routes otherwise than the map says: the records
// are taken as delivered, and so are later ones (foreign). When the
// listing failed, the map is not fresh: they are sent again. When the
// producer is stopping, they are delivered: the stream stored them.
func (pl *pipeline) settle(groups []astray, stopping bool) {
	if len(groups) == 0 {
		return
	}
	p := pl.p
	m := p.shards.Load()
	fresh := p.listOK.Load()
	pl.mu.Lock()
	own := fresh && !pl.mu.retired && m.byID(pl.shard) != nil
	pl.mu.Unlock()
	var again []userRecord
	for _, g := range groups {
		sr := m.byID(g.shard)
		covered := fresh && sr != nil
		for i := 0; covered && i < len(g.recs); i++ {
			h := g.recs[i].hash
			covered = !h.less(sr.lo) && !sr.hi.less(h)
		}
		if covered || own || stopping {
			if !covered && own {
				pl.foreign.Store(true)
			}
			pl.succeed(g.recs, g.shard, g.seq)
			continue
		}
		for i := range g.recs {
			g.recs[i].lastErr = fmt.Errorf("producer: aggregate stored on %s, outside the hash key range of some of its records", g.shard)
		}
		again = append(again, g.recs...)
	}
	if len(again) > 0 {
		p.m.recordsRetried.Add(int64(len(again)))
		pl.requeue(again)
	}
}

// retry requeues records a call failed and backs off.
func (pl *pipeline) retry(recs []userRecord) {
	p := pl.p
	p.m.recordsRetried.Add(int64(len(recs)))
	pl.requeue(recs)
	pl.bmu.Lock()
	pl.failures++
	d := backoff(pl.rng, pl.failures, p.cfg.backoffBase, p.cfg.backoffMax)
	pl.bmu.Unlock()
	pl.sleep(d)
}

// sleep waits d, or less if the producer stops; it reports whether it
// waited all of d.
func (pl *pipeline) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-pl.p.stop:
		return false
	}
}

// build turns records into the entries of one call: aggregates (a single
// record goes on its own, as the KPL sends it; so does one too large for
// an aggregate) or plain records. It returns the records that did not
// fit, to go back to the queue.
func (pl *pipeline) build(recs []userRecord) (entries []types.PutRecordsRequestEntry, spans []span, leftover []userRecord) {
	c := &pl.p.cfg
	limit := pl.fullAt
	bytes := 0
	if pl.agg == nil {
		for i := range recs {
			r := &recs[i]
			sz := len(r.data) + len(r.key)
			if len(entries) == maxRequestRecords || (len(entries) > 0 && bytes+sz > limit) {
				return entries, spans, recs[i:]
			}
			entries = append(entries, pl.entry(r))
			spans = append(spans, span{i, i + 1})
			bytes += sz
		}
		return entries, spans, nil
	}
	from := 0
	flush := func(to int) {
		if to == from {
			return
		}
		ag := pl.agg.Drain()
		if to-from == 1 {
			entries = append(entries, pl.entry(&recs[from]))
			bytes += len(recs[from].data) + len(recs[from].key)
		} else {
			e := types.PutRecordsRequestEntry{Data: ag.Data, PartitionKey: aws.String(ag.PartitionKey)}
			if ag.ExplicitHashKey != "" {
				e.ExplicitHashKey = aws.String(ag.ExplicitHashKey)
			}
			entries = append(entries, e)
			bytes += len(ag.Data) + len(ag.PartitionKey)
		}
		spans = append(spans, span{from, to})
		from = to
	}
	for i := range recs {
		r := &recs[i]
		if len(entries) > 0 && bytes+pl.agg.Size()+aggregateCost(r) > limit {
			flush(i)
			return entries, spans, recs[i:]
		}
		err := pl.agg.Add(r.key, r.ehk, r.data)
		if errors.Is(err, kpl.ErrFull) {
			if c.ordered || len(entries)+1 >= maxRequestRecords {
				// This aggregate ends the call.
				flush(i)
				return entries, spans, recs[i:]
			}
			flush(i)
			if bytes+aggregateCost(r) > limit {
				return entries, spans, recs[i:]
			}
			err = pl.agg.Add(r.key, r.ehk, r.data)
		}
		if err != nil {
			// Too large for an aggregate (or refused by the aggregator):
			// the record goes on its own; Kinesis judges it.
			flush(i)
			if len(entries) > 0 && (c.ordered || len(entries) == maxRequestRecords || bytes+len(r.data)+len(r.key) > limit) {
				return entries, spans, recs[i:]
			}
			entries = append(entries, pl.entry(r))
			bytes += len(r.data) + len(r.key)
			spans = append(spans, span{i, i + 1})
			from = i + 1
			if c.ordered {
				return entries, spans, recs[i+1:]
			}
		}
	}
	flush(len(recs))
	return entries, spans, nil
}

func (pl *pipeline) entry(r *userRecord) types.PutRecordsRequestEntry {
	e := types.PutRecordsRequestEntry{Data: r.data, PartitionKey: &r.key}
	if r.ehk != "" {
		e.ExplicitHashKey = &r.ehk
	}
	return e
}

// succeed completes the records of one acknowledged Kinesis record.
func (pl *pipeline) succeed(recs []userRecord, shard, seq string) {
	p := pl.p
	agg := len(recs) > 1
	bytes := 0
	for i := range recs {
		bytes += len(recs[i].data)
	}
	p.m.recordsPut.Add(int64(len(recs)))
	p.m.bytesPut.Add(int64(bytes))
	p.m.kinesisRecordsPut.Add(1)
	pl.releaseBuffer(recs)
	for i := range recs {
		r := &recs[i]
		res := Result{ShardID: shard, SequenceNumber: seq, Aggregated: agg, Attempts: int(r.attempts)}
		if agg {
			res.SubSequenceNumber = uint64(i)
		}
		pl.deliver(r, res)
	}
	releaseEpochs(recs)
}

// failAll completes records with err.
func (pl *pipeline) failAll(recs []userRecord, err error) {
	pl.p.m.recordsFailed.Add(int64(len(recs)))
	pl.releaseBuffer(recs)
	for i := range recs {
		pl.deliver(&recs[i], Result{Attempts: int(recs[i].attempts), Err: err})
	}
	releaseEpochs(recs)
}

// expire fails records whose TTL ran out.
func (pl *pipeline) expire(recs []userRecord) {
	pl.p.m.recordsFailed.Add(int64(len(recs)))
	pl.releaseBuffer(recs)
	for i := range recs {
		r := &recs[i]
		var err error
		if r.lastErr != nil {
			err = fmt.Errorf("%w after %d attempts: %w", ErrRecordExpired, r.attempts, r.lastErr)
		} else {
			err = fmt.Errorf("%w before the record could be sent", ErrRecordExpired)
		}
		pl.deliver(r, Result{Attempts: int(r.attempts), Err: err})
	}
	releaseEpochs(recs)
}

func (pl *pipeline) deliver(r *userRecord, res Result) {
	if r.fut != nil {
		r.fut.complete(res)
	} else if r.cb != nil {
		r.cb(res)
	}
}

// releaseBuffer returns the records' buffer bytes, before their results
// are delivered, so that a caller who has a result sees its room.
func (pl *pipeline) releaseBuffer(recs []userRecord) {
	bytes := 0
	for i := range recs {
		bytes += recs[i].size()
	}
	pl.p.m.bufferedRecords.Add(-int64(len(recs)))
	pl.p.buf.release(int64(bytes))
}

// releaseEpochs counts the records out of their flush epochs, after their
// results are delivered: Flush returns once the callbacks have run.
func releaseEpochs(recs []userRecord) {
	var (
		ep *epoch
		n  int64
	)
	for i := range recs {
		if r := &recs[i]; r.ep != ep {
			if ep != nil {
				ep.release(n)
			}
			ep, n = r.ep, 0
		}
		n++
	}
	if ep != nil {
		ep.release(n)
	}
}
