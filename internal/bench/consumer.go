package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// subscribeTimeout bounds the wait for a SubscribeToShard call to answer
// with its initial response. The Go SDK waits for that event before it
// returns; an endpoint that never sends it would hang the run.
const subscribeTimeout = 10 * time.Second

// maxConsecutiveFailures stops a consumer that keeps failing on one shard.
const maxConsecutiveFailures = 20

// shardReader is the read position of one shard. It is owned by the one
// goroutine that reads the shard.
type shardReader struct {
	id      string
	log     *shardLog
	iter    *string
	lastSeq string // sequence number of the last record read
	closed  bool   // the shard ended (resharded) and was read to its end
	fails   int    // consecutive failed calls
}

// deliver hands the records of one response to the shard log.
func (r *runner) deliver(s *shardReader, recs []types.Record) {
	deliver(r, s, recs, func(rec *types.Record) ([]byte, string, string) {
		return rec.Data, aws.ToString(rec.PartitionKey), aws.ToString(rec.SequenceNumber)
	})
}

// deliverRaw hands the records of one raw client's response to the shard
// log.
func (r *runner) deliverRaw(s *shardReader, recs []rawRecord) {
	deliver(r, s, recs, func(rec *rawRecord) ([]byte, string, string) {
		return rec.Data, rec.PartitionKey, rec.SequenceNumber
	})
}

// deliver hands records to the shard log; fields gives a record's data,
// partition key and sequence number.
func deliver[R any](r *runner, s *shardReader, recs []R, fields func(*R) ([]byte, string, string)) {
	if len(recs) == 0 {
		return
	}
	recv := r.now()
	var n, b int64
	for i := range recs {
		data, key, seq := fields(&recs[i])
		if s.log.observe(data, key, seq, recv) {
			n++
			b += int64(len(data))
		}
	}
	_, _, s.lastSeq = fields(&recs[len(recs)-1])
	if n > 0 {
		r.stats.getRecords.Add(n)
		r.stats.getBytes.Add(b)
		r.stats.lastRead.Store(int64(time.Since(r.start)))
	}
}

// startPosition is where consumers start: the beginning of a stream the run
// created, or the tip of an existing one. Consumers that start after records
// were produced (with --read-after, or again after an iterator expired
// before anything was read) start on an existing stream at the time its
// tip was taken instead, which is then returned too.
func (r *runner) startPosition(late bool) (types.ShardIteratorType, *time.Time) {
	switch {
	case r.stream.created:
		return types.ShardIteratorTypeTrimHorizon, nil
	case late:
		at := r.readFrom
		return types.ShardIteratorTypeAtTimestamp, &at
	}
	return types.ShardIteratorTypeLatest, nil
}

// iterator gets a shard iterator for s: at its start position, or after the
// last record read when an iterator expired.
func (r *runner) iterator(ctx context.Context, s *shardReader) error {
	typ, at := r.startPosition(s.iter != nil)
	in := &kinesis.GetShardIteratorInput{
		StreamName:        aws.String(r.stream.name),
		ShardId:           aws.String(s.id),
		ShardIteratorType: typ,
		Timestamp:         at,
	}
	if s.lastSeq != "" {
		in.ShardIteratorType = types.ShardIteratorTypeAfterSequenceNumber
		in.StartingSequenceNumber = aws.String(s.lastSeq)
		in.Timestamp = nil
	}
	out, err := r.c.control.GetShardIterator(ctx, in)
	if err != nil {
		return fmt.Errorf("get shard iterator for %s: %w", s.id, err)
	}
	s.iter = out.ShardIterator
	return nil
}

// pollConsumer reads its shards with GetRecords, one call at a time, in
// turn.
type pollConsumer struct {
	r      *runner
	shards []*shardReader
	rng    *rand.Rand
	// idx is the consumer's number, which picks its endpoint.
	idx int
	// raw sends the GetRecords calls with --consumer-client raw; nil
	// means the SDK.
	raw *rawGetter
}

// run reads until ctx ends. ready is called once every shard has an
// iterator, so that producers start only when nothing can be missed; with
// --read-after, reading then waits for the end of the producing phase.
func (c *pollConsumer) run(ctx context.Context, ready func()) error {
	for _, s := range c.shards {
		if err := c.r.iterator(ctx, s); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	ready()
	if !c.r.awaitReading(ctx) {
		return nil
	}
	st := &c.r.stats
	for ctx.Err() == nil {
		got, open := false, 0
		for _, s := range c.shards {
			if s.closed {
				continue
			}
			open++
			cctx, cancel := context.WithTimeout(ctx, c.r.o.RequestTimeout)
			st.getInFlight.Add(1)
			n, next, err := c.get(cctx, s)
			st.getInFlight.Add(-1)
			cancel()
			st.getCalls.Add(1)
			if err != nil {
				if err := c.failed(ctx, s, err); err != nil {
					return err
				}
				continue
			}
			s.fails = 0
			got = got || n > 0
			s.iter = next
			if s.iter == nil {
				s.closed = true
			}
		}
		if open == 0 {
			<-ctx.Done()
			return nil
		}
		if !got {
			sleep(ctx, c.r.o.PollInterval)
		}
	}
	return nil
}

// get reads the next records of s with one GetRecords call, delivers them
// and returns their number and the next iterator.
func (c *pollConsumer) get(ctx context.Context, s *shardReader) (int, *string, error) {
	if c.raw != nil {
		recs, next, err := c.raw.getRecords(ctx, aws.ToString(s.iter), c.r.o.GetLimit)
		if err != nil {
			return 0, nil, err
		}
		c.r.deliverRaw(s, recs)
		return len(recs), next, nil
	}
	out, err := c.r.c.dataFor(c.idx).GetRecords(ctx, &kinesis.GetRecordsInput{
		ShardIterator: s.iter,
		Limit:         aws.Int32(int32(c.r.o.GetLimit)),
	})
	if err != nil {
		return 0, nil, err
	}
	c.r.deliver(s, out.Records)
	return len(out.Records), out.NextShardIterator, nil
}

// failed handles a failed GetRecords call on s; it returns an error when
// the consumer must stop.
func (c *pollConsumer) failed(ctx context.Context, s *shardReader, err error) error {
	st := &c.r.stats
	var apiErr smithy.APIError
	switch cls := classify(ctx, err); {
	case cls == errStopped:
		return nil
	case errors.As(err, &apiErr) && apiErr.ErrorCode() == "ExpiredIteratorException":
		if err := c.r.iterator(ctx, s); err != nil && ctx.Err() == nil {
			return err
		}
		return nil
	case cls == errThrottled:
		st.getThrottles.Add(1)
	case cls == errRetryable:
		st.getError(err)
	default:
		st.getError(err)
		return fmt.Errorf("get records from %s: %w", s.id, err)
	}
	s.fails++
	if s.fails > maxConsecutiveFailures {
		return fmt.Errorf("get records from %s: %d failures in a row, last: %w", s.id, s.fails, err)
	}
	sleep(ctx, backoff(c.rng, s.fails))
	return nil
}

// subscriber reads one shard with SubscribeToShard (enhanced fan-out),
// subscribing again when a subscription ends (after 5 minutes on AWS).
type subscriber struct {
	r        *runner
	consumer string // consumer ARN
	s        *shardReader
	rng      *rand.Rand
}

// run reads until ctx ends; ready is called once the first subscription is
// established. With --read-after, ready is called at once and the first
// subscription waits for the end of the producing phase: a subscription
// pushes records as they arrive.
func (c *subscriber) run(ctx context.Context, ready func()) error {
	st := &c.r.stats
	// A client of its own: an SDK client decodes every event stream through
	// one shared codec that it does not lock (smithy-go's eventstream.Codec
	// writes its payloadBuf and lazily creates its decoder on every
	// message), so concurrent subscriptions on one client race.
	// kinesis.New gives the copy a protocol, and so a codec, of its own.
	client := kinesis.New(c.r.c.data.Options())
	typ, at := c.r.startPosition(c.r.o.ReadAfter)
	pos := &types.StartingPosition{Type: typ, Timestamp: at}
	if c.r.o.ReadAfter {
		ready()
		if !c.r.awaitReading(ctx) {
			return nil
		}
	}
	subscribed := false
	for ctx.Err() == nil && !c.s.closed {
		sctx, cancel := context.WithCancel(ctx)
		var timedOut atomic.Bool
		timer := time.AfterFunc(subscribeTimeout, func() {
			timedOut.Store(true)
			cancel()
		})
		out, err := client.SubscribeToShard(sctx, &kinesis.SubscribeToShardInput{
			ConsumerARN:      aws.String(c.consumer),
			ShardId:          aws.String(c.s.id),
			StartingPosition: pos,
		})
		timer.Stop()
		st.getCalls.Add(1)
		if err != nil {
			cancel()
			var inUse *types.ResourceInUseException
			switch {
			case ctx.Err() != nil:
				return nil
			case timedOut.Load():
				return fmt.Errorf("%w: SubscribeToShard on %s sent no initial response within %v", ErrEFOUnsupported, c.s.id, subscribeTimeout)
			case unsupported(err):
				return fmt.Errorf("%w: SubscribeToShard: %w", ErrEFOUnsupported, err)
			case errors.As(err, &inUse), classify(ctx, err) == errRetryable:
				st.getError(err)
			case classify(ctx, err) == errThrottled:
				st.getThrottles.Add(1)
			case !subscribed:
				// The first subscription failed for a reason retrying
				// will not fix: the endpoint does not speak the event
				// stream the SDK expects.
				return fmt.Errorf("%w: SubscribeToShard on %s: %w", ErrEFOUnsupported, c.s.id, err)
			default:
				return fmt.Errorf("subscribe to %s: %w", c.s.id, err)
			}
			c.s.fails++
			if c.s.fails > maxConsecutiveFailures {
				return fmt.Errorf("subscribe to %s: %d failures in a row, last: %w", c.s.id, c.s.fails, err)
			}
			sleep(ctx, time.Second+backoff(c.rng, c.s.fails))
			continue
		}
		if !subscribed {
			subscribed = true
			ready()
		}
		started := time.Now()
		stream := out.GetStream()
		for ev := range stream.Events() {
			e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
			if !ok {
				continue
			}
			c.s.fails = 0
			c.r.deliver(c.s, e.Value.Records)
			switch {
			case c.s.lastSeq != "":
				pos = &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(c.s.lastSeq)}
			case e.Value.ContinuationSequenceNumber != nil:
				pos = &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: e.Value.ContinuationSequenceNumber}
			}
			if len(e.Value.ChildShards) > 0 {
				c.s.closed = true
			}
		}
		err = stream.Err()
		stream.Close()
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			st.getError(fmt.Errorf("subscription to %s: %w", c.s.id, err))
			c.s.fails++
			if c.s.fails > maxConsecutiveFailures {
				return fmt.Errorf("subscribe to %s: %d failures in a row, last: %w", c.s.id, c.s.fails, err)
			}
		}
		// At most one SubscribeToShard per second per shard and consumer.
		sleep(ctx, time.Second-time.Since(started))
	}
	if c.s.closed {
		<-ctx.Done()
	}
	return nil
}
