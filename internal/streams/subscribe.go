package streams

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/metrics"
)

// SubscribeToShard (enhanced fan-out), without HTTP.
//
// A Subscription is one consumer reading one shard. It is a pull iterator
// over the shard log driven by the caller (the wire layer loops Next, encode,
// write, flush), so the log itself is the only buffer: a slow consumer makes
// only its own Next calls late, never blocks producers or other consumers,
// and costs at most one event's worth of memory. Next blocks in the engine's
// Log.Wait until a record past its position is durable, so records are
// pushed as soon as PutRecord(s) acknowledges them, without polling.
//
// Each event carries at most maxEventRecords records and, beyond the first
// record, maxEventBytes of data. When no record arrives for
// Options.SubscriptionHeartbeat (5 s), Next returns an event without records
// that repeats the current ContinuationSequenceNumber, as Kinesis does. At
// the end of a closed shard the last event carries ChildShards and no
// ContinuationSequenceNumber, and the subscription ends; a subscription that
// starts at or past the end of a closed shard gets that event at once. It also ends (Next returns io.EOF) after
// Options.SubscriptionLifetime (5 minutes), when a newer subscription of the
// same consumer to the same shard takes over, when the consumer is
// deregistered and when the service closes.

// Limits of one SubscribeToShard event.
const (
	maxEventRecords = 10000
	maxEventBytes   = 1 << 20
)

// Defaults of the subscription timings (Kinesis' values).
const (
	defaultSubscriptionLifetime  = 5 * time.Minute
	defaultSubscriptionHeartbeat = 5 * time.Second
	// takeoverAfter is how old a subscription must be before another one
	// for the same consumer and shard replaces it; younger ones make the
	// newcomer fail with ResourceInUseException.
	takeoverAfter = 5 * time.Second
)

// subKey names the slot a subscription holds: one consumer (by ARN) on one
// shard.
type subKey struct {
	consumer string
	shard    int
}

// subscriptions is the registry of live subscriptions, owned by the Service.
type subscriptions struct {
	mu sync.Mutex
	m  map[subKey]*Subscription
}

// Subscription is a live SubscribeToShard subscription. Next and Close may
// be called from different goroutines; Next must not be called concurrently
// with itself.
type Subscription struct {
	s        *Service
	key      subKey
	stream   string
	streamID string
	consumer string // name
	created  string // consumer creation seconds
	idx      int
	sh       *shard
	log      engine.Log
	metrics  *metrics.Stream // nil without metrics

	started  int64 // service clock, Unix ms
	deadline int64 // service clock, Unix ms

	// ctx is cancelled when the subscription is ended from outside (Close,
	// takeover, deregistration, service close).
	ctx    context.Context
	cancel context.CancelFunc

	// State of the Next loop, touched only by the goroutine calling Next.
	next      uint64 // next offset to deliver
	cont      string // ContinuationSequenceNumber: last delivered, or just before next
	lastEvent time.Time
	sentFirst bool
	done      bool
	out       bucket // per-subscription 2 MiB/s, when throughput is enforced
}

// ShardID is the shard the subscription reads.
func (sub *Subscription) ShardID() string { return sub.sh.id }

// SubscribeToShard starts a subscription of an ACTIVE consumer to a shard at
// a starting position. Errors are those Kinesis answers before the event
// stream starts (the wire layer sends them as ordinary HTTP errors).
func (s *Service) SubscribeToShard(ctx context.Context, in *SubscribeToShardInput) (*Subscription, error) {
	if in == nil {
		in = &SubscribeToShardInput{}
	}
	if in.ConsumerARN == nil {
		return nil, errNull("consumerARN")
	}
	if in.ShardId == nil {
		return nil, errNull("shardId")
	}
	if in.StartingPosition == nil {
		return nil, errNull("startingPosition")
	}
	pos := in.StartingPosition
	if pos.Type == nil {
		return nil, errNull("startingPosition.type")
	}
	typ := *pos.Type
	switch typ {
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP":
	default:
		return nil, errorf(CodeValidation, "1 validation error detected: Value '%s' at 'startingPosition.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]", typ)
	}
	ref, err := s.parseConsumerARN(*in.ConsumerARN)
	if err != nil {
		return nil, err
	}
	name := ref.stream
	st, status, err := s.live(ctx, name)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == CodeResourceNotFound {
			return nil, s.errConsumerNotFound(ref.arn)
		}
		return nil, err
	}
	now := s.nowMs()
	c, err := s.lookup(st.meta, ref, now)
	if err != nil {
		return nil, err
	}
	if c.settled(now) != statusActive {
		return nil, s.errConsumerNotActive(c, name)
	}
	if err := s.writable(name, status); err != nil {
		return nil, err
	}
	idx, ok := parseShardIndex(*in.ShardId)
	if !ok {
		return nil, errorf(CodeResourceNotFound, "Could not find shard %s in stream %s under account %s.", *in.ShardId, name, s.opts.AccountID)
	}
	sid := shardID(idx)
	if idx >= len(st.shards) || !st.meta.shardVisible(idx, now) {
		return nil, s.errShardNotFound(sid, name)
	}
	sh := st.shards[idx]
	l, err := sh.handle(ctx, s.eng)
	if err != nil {
		return nil, s.mapLogErr(err, sid, name)
	}

	// The starting offset.
	var seq string
	var ts int64
	switch typ {
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if pos.SequenceNumber == nil {
			return nil, errorf(CodeInvalidArgument, "StartingPosition.SequenceNumber is required for StartingPosition.Type %s.", typ)
		}
		seq = *pos.SequenceNumber
	case "AT_TIMESTAMP":
		if pos.Timestamp == nil {
			return nil, errorf(CodeInvalidArgument, "StartingPosition.Timestamp is required for StartingPosition.Type AT_TIMESTAMP.")
		}
		ts = pos.Timestamp.Millis()
	}
	start, err := s.positionOffset(ctx, "SubscribeToShard", name, st, idx, typ, seq, ts, now)
	if err != nil {
		return nil, err
	}
	// A position below the trim horizon starts at the oldest kept record.
	info, err := l.Info(ctx)
	if err != nil {
		return nil, s.mapLogErr(err, sid, name)
	}
	if start < info.First {
		start = info.First
	}

	sub := &Subscription{
		s:         s,
		key:       subKey{consumer: s.consumerARN(name, c), shard: idx},
		stream:    name,
		streamID:  st.meta.ID,
		consumer:  c.Name,
		created:   c.createdSec(),
		idx:       idx,
		sh:        sh,
		log:       l,
		metrics:   st.metrics,
		started:   now,
		deadline:  now + s.subscriptionLifetime().Milliseconds(),
		next:      start,
		lastEvent: time.Now(),
		out:       newBucket(readBytesPerSec),
	}
	sub.cont = sub.before(start)

	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	if old := s.subs.m[sub.key]; old != nil && old.ctx.Err() == nil {
		if now-old.started < takeoverAfter.Milliseconds() {
			st.metrics.SubscribeRateExceeded()
			return nil, errorf(CodeResourceInUse, "Another active subscription exists for this consumer: %s:%s:%s:%s", s.opts.AccountID, name, sid, c.Name)
		}
		old.cancel()
	}
	sub.ctx, sub.cancel = context.WithCancel(s.ctx)
	s.subs.m[sub.key] = sub
	st.metrics.Subscribed()
	return sub, nil
}

func (s *Service) subscriptionLifetime() time.Duration {
	if s.opts.SubscriptionLifetime > 0 {
		return s.opts.SubscriptionLifetime
	}
	return defaultSubscriptionLifetime
}

func (s *Service) subscriptionHeartbeat() time.Duration {
	if s.opts.SubscriptionHeartbeat > 0 {
		return s.opts.SubscriptionHeartbeat
	}
	return defaultSubscriptionHeartbeat
}

// before returns the ContinuationSequenceNumber for a subscription whose next
// record is at offset next: the position just before that record (a number
// of kind 0, see seqNum), from which AFTER_SEQUENCE_NUMBER resumes exactly
// at next.
func (sub *Subscription) before(next uint64) string {
	return seqNum{created: sub.sh.created, shard: uint32(sub.idx), offset: next}.String()
}

// Close ends the subscription and frees its slot. It is idempotent and safe
// to call concurrently with Next.
func (sub *Subscription) Close() {
	sub.cancel()
	s := sub.s
	s.subs.mu.Lock()
	if s.subs.m[sub.key] == sub {
		delete(s.subs.m, sub.key)
	}
	s.subs.mu.Unlock()
}

// EndSubscriptions ends every live subscription: their Next returns io.EOF,
// so the wire layer finishes their responses. A server calls it before a
// graceful shutdown, which would otherwise wait for subscriptions to expire.
func (s *Service) EndSubscriptions() {
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	for _, sub := range s.subs.m {
		sub.cancel()
	}
}

// endConsumerSubscriptions ends the subscriptions of the consumer with the
// given ARN.
func (s *Service) endConsumerSubscriptions(consumerARN string) {
	if consumerARN == "" {
		return
	}
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	for k, sub := range s.subs.m {
		if k.consumer == consumerARN {
			sub.cancel()
		}
	}
}

// Next returns the subscription's next event, blocking until a record
// arrives, a heartbeat is due or ctx ends. It returns io.EOF once the
// subscription has ended normally (after the event with ChildShards, after
// its lifetime, or when ended by Close, a takeover, deregistration or the
// service closing); a *Error when it must end with a Kinesis error (the
// stream or consumer is gone); ctx's error when ctx ends.
func (sub *Subscription) Next(ctx context.Context) (*SubscribeToShardEvent, error) {
	if sub.done {
		return nil, io.EOF
	}
	s := sub.s
	heartbeat := s.subscriptionHeartbeat()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if sub.ctx.Err() != nil || s.nowMs() >= sub.deadline {
			sub.done = true
			return nil, io.EOF
		}
		st, err := sub.check(ctx)
		if err != nil {
			sub.done = true
			return nil, err
		}
		sm := &st.meta.Shards[sub.idx]
		if err := sub.throttle(ctx); err != nil {
			return nil, err
		}
		var end uint64 // of a closed shard, known before reading its last records
		if sm.Closed != 0 {
			if end, err = s.sealedEnd(ctx, st, sub.idx); err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				sub.done = true
				return nil, s.mapLogErr(err, sub.sh.id, sub.stream)
			}
		}
		recs, release, err := engine.ReadLent(ctx, sub.log, sub.next, maxEventRecords, maxEventBytes)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			sub.done = true
			return nil, s.mapLogErr(err, sub.sh.id, sub.stream)
		}
		after := sub.next
		if n := len(recs); n > 0 {
			after = recs[n-1].Offset + 1
		}
		// Nothing readable before the end of a closed shard: the rest was
		// lost to damage on disk, and the shard is drained (see GetRecords).
		closedEnd := sm.Closed != 0 && (after >= end || len(recs) == 0)
		if len(recs) > 0 || closedEnd || !sub.sentFirst || time.Since(sub.lastEvent) >= heartbeat {
			ev, err := sub.event(ctx, st, recs, closedEnd)
			if err != nil {
				release()
				return nil, err
			}
			ev.release = release
			return ev, nil
		}
		release()

		// Nothing to send yet: wait for a record, the heartbeat, the end of
		// the lifetime, or the subscription being ended.
		wait := heartbeat - time.Since(sub.lastEvent)
		if left := time.Duration(sub.deadline-s.nowMs()) * time.Millisecond; left < wait {
			wait = left
		}
		wctx, cancel := context.WithTimeout(ctx, max(wait, time.Millisecond))
		stop := context.AfterFunc(sub.ctx, cancel)
		n, err := sub.log.Wait(wctx, sub.next)
		stop()
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			sub.done = true
			return nil, s.mapLogErr(err, sub.sh.id, sub.stream)
		}
		if err == nil && n <= sub.next {
			// Woken without data: the log was sealed by resharding. Read the
			// metadata from the engine to learn the shard's end, and do not
			// spin while the resharding finishes writing it.
			if st, ferr := s.fetch(ctx, sub.stream); ferr == nil && st != nil && sub.idx < len(st.meta.Shards) && st.meta.Shards[sub.idx].Closed == 0 {
				t := time.NewTimer(20 * time.Millisecond)
				select {
				case <-t.C:
				case <-ctx.Done():
				case <-sub.ctx.Done():
				}
				t.Stop()
			}
		}
	}
}

// check confirms that the stream (the same creation of it) and the consumer
// still exist, from the cache.
func (sub *Subscription) check(ctx context.Context) (*stream, error) {
	s := sub.s
	st, status, err := s.live(ctx, sub.stream)
	if err == nil && st.meta.ID != sub.streamID {
		err = s.errStreamNotFound(sub.stream)
	}
	if err == nil {
		err = s.writable(sub.stream, status)
	}
	if err != nil {
		return nil, err
	}
	c := st.meta.findConsumer(sub.consumer, s.nowMs())
	if c == nil || c.createdSec() != sub.created || c.settled(s.nowMs()) != statusActive {
		return nil, s.errConsumerNotFound(sub.key.consumer)
	}
	return st, nil
}

// throttle waits while the subscription is over its 2 MiB/s (only with
// Options.EnforceThroughput). It uses the real clock: it paces real sends.
func (sub *Subscription) throttle(ctx context.Context) error {
	if !sub.s.opts.EnforceThroughput {
		return nil
	}
	sub.out.refill(time.Now().UnixMilli())
	if sub.out.tokens > 0 {
		return nil
	}
	d := time.Duration(-sub.out.tokens/sub.out.rate*1000+1) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		sub.out.refill(time.Now().UnixMilli())
		return nil
	case <-sub.ctx.Done():
		return nil // Next notices the end
	case <-ctx.Done():
		return ctx.Err()
	}
}

// event builds the event for recs and advances the subscription.
func (sub *Subscription) event(ctx context.Context, st *stream, recs []engine.StoredRecord, closedEnd bool) (*SubscribeToShardEvent, error) {
	s := sub.s
	ev := &SubscribeToShardEvent{}
	var bytes int
	ev.Records, bytes = toRecords(sub.sh, recs)
	if n := len(recs); n > 0 {
		sub.next = recs[n-1].Offset + 1
		sub.cont = ev.Records[n-1].SequenceNumber
		tail, err := engine.Next(ctx, sub.log)
		if err != nil {
			sub.done = true
			return nil, s.mapLogErr(err, sub.sh.id, sub.stream)
		}
		if sub.next < tail {
			ev.MillisBehindLatest = max(0, s.nowMs()-recs[n-1].Time)
		}
	}
	if closedEnd {
		// The end of the shard: ChildShards and no continuation, which is
		// how consumers tell the end from a pause. Records may come with it.
		ev.ChildShards = s.childShards(st, sub.idx)
		sub.done = true
	} else {
		cont := sub.cont
		ev.ContinuationSequenceNumber = &cont
	}
	if s.opts.EnforceThroughput {
		sub.out.tokens -= float64(bytes)
	}
	sub.metrics.Event(sub.sh.metrics, len(recs), max(0, bytes-len(recs)), ev.MillisBehindLatest) // without the keys' flag bytes
	sub.sentFirst = true
	sub.lastEvent = time.Now()
	return ev, nil
}
