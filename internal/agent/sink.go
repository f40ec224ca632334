package agent

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"golang.org/x/sync/semaphore"
)

// Sink is where a flow's records go: one per destination stream. Put takes
// ownership of data and calls done exactly once: with nil only after the
// record was acknowledged by the stream, with an error when the sink gave
// up on it (its Close deadline passed). Put may block while the sink's
// buffer is full; it returns early, calling done with ctx's error, when
// ctx ends. done must not block. Flush returns when every record put
// before it was acknowledged or given up; Close flushes and stops the sink.
type Sink interface {
	Put(ctx context.Context, key string, data []byte, done func(error))
	Flush(ctx context.Context) error
	Close(ctx context.Context) error
}

// KinesisAPI is the part of the Kinesis client a StreamSink uses.
type KinesisAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// SinkOptions tunes a StreamSink's batching and retries.
type SinkOptions struct {
	// MaxRecords and MaxBytes close a batch (at most 500 records and 5 MiB,
	// PutRecords' limits as the Kinesis Agent counts them).
	MaxRecords, MaxBytes int
	// MaxAge sends a batch whose oldest record has waited this long.
	MaxAge time.Duration
	// RetryInitial and RetryMax bound the exponential back-off between
	// attempts after a failed call or failed records.
	RetryInitial, RetryMax time.Duration
	// MaxBuffered bounds the bytes of records put and not yet answered
	// (default 64 MiB): Put blocks beyond it, so memory stays bounded
	// whatever the records' sizes.
	MaxBuffered int64
	// Logger receives retry warnings; nil for none.
	Logger *slog.Logger
}

// ErrSinkClosed is given to done for records put after Close.
var ErrSinkClosed = errors.New("agent: sink closed")

// StreamSink is a Sink that sends to one Kinesis stream with PutRecords.
// It reads the stream's shard map once (ListShards) and gives each open
// shard a lane: records are routed by their partition key's hash, and each
// lane makes one call at a time, so that records reach each shard in the
// order they were put while the shards are written in parallel. Failed
// records are retried, ahead of newer ones, until acknowledged. Without
// the shard map (ListShards not allowed, or failing) there is one lane.
type StreamSink struct {
	api    KinesisAPI
	stream string
	opts   SinkOptions
	ranges []hashRange // sorted; lanes[i] serves ranges[i]
	lanes  []*lane
	room   *semaphore.Weighted // bytes of records put and not yet answered
	mu     struct {
		sync.Mutex
		closed bool
		abort  context.Context // Close's ctx: when it ends, the sink gives up
	}
}

var _ Sink = (*StreamSink)(nil)

// hashRange is a shard's range of partition-key hashes, big-endian.
type hashRange struct{ start, end [16]byte }

// lane batches and sends the records of one shard (or of the whole
// stream), one call at a time.
type lane struct {
	s    *StreamSink
	in   chan sinkItem
	done chan struct{} // closed when run returns
}

type sinkItem struct {
	key   string
	data  []byte
	done  func(error)
	flush chan struct{} // a flush marker instead of a record
}

// NewStreamSink starts a sink for stream; ctx bounds the ListShards call
// that reads its shard map. Close stops it.
func NewStreamSink(ctx context.Context, api KinesisAPI, stream string, opts SinkOptions) *StreamSink {
	if opts.MaxRecords <= 0 || opts.MaxRecords > maxBatchRecords {
		opts.MaxRecords = maxBatchRecords
	}
	if opts.MaxBytes <= 0 || opts.MaxBytes > maxBatchBytes {
		opts.MaxBytes = maxBatchBytes
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = defaultBufferAge
	}
	if opts.RetryInitial <= 0 {
		opts.RetryInitial = 100 * time.Millisecond
	}
	opts.RetryMax = max(opts.RetryMax, opts.RetryInitial)
	if opts.MaxBuffered <= 0 {
		opts.MaxBuffered = 64 << 20
	}
	opts.MaxBuffered = max(opts.MaxBuffered, 2*MaxRecordBytes)
	s := &StreamSink{api: api, stream: stream, opts: opts, room: semaphore.NewWeighted(opts.MaxBuffered)}
	s.mu.abort = context.Background()
	ranges, err := openShards(ctx, api, stream)
	if err != nil && opts.Logger != nil {
		opts.Logger.Warn("cannot read the stream's shards; sending one batch at a time", "stream", stream, "error", err)
	}
	s.ranges = ranges
	n := max(len(ranges), 1)
	for range n {
		l := &lane{s: s, in: make(chan sinkItem, 2*opts.MaxRecords), done: make(chan struct{})}
		s.lanes = append(s.lanes, l)
		go l.run()
	}
	return s
}

// openShards lists the stream's open shards' hash ranges, sorted.
func openShards(ctx context.Context, api KinesisAPI, stream string) ([]hashRange, error) {
	var out []hashRange
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		page, err := api.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, sh := range page.Shards {
			if sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed
			}
			if sh.HashKeyRange == nil {
				continue
			}
			lo, ok1 := hashKey(aws.ToString(sh.HashKeyRange.StartingHashKey))
			hi, ok2 := hashKey(aws.ToString(sh.HashKeyRange.EndingHashKey))
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("shard %s has a bad hash key range", aws.ToString(sh.ShardId))
			}
			out = append(out, hashRange{lo, hi})
		}
		if page.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
	slices.SortFunc(out, func(a, b hashRange) int { return bytes.Compare(a.start[:], b.start[:]) })
	return out, nil
}

// hashKey parses a decimal hash key (0 to 2^128-1) into 16 big-endian bytes.
func hashKey(s string) ([16]byte, bool) {
	var out [16]byte
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Sign() < 0 || n.BitLen() > 128 {
		return out, false
	}
	n.FillBytes(out[:])
	return out, true
}

// lane returns the lane of a partition key: the shard whose range holds
// the key's MD5, as Kinesis routes it.
func (s *StreamSink) lane(key string) *lane {
	if len(s.lanes) == 1 {
		return s.lanes[0]
	}
	h := md5.Sum([]byte(key))
	i, _ := slices.BinarySearchFunc(s.ranges, h, func(r hashRange, h [16]byte) int {
		switch {
		case bytes.Compare(r.end[:], h[:]) < 0:
			return -1
		case bytes.Compare(r.start[:], h[:]) > 0:
			return 1
		}
		return 0
	})
	return s.lanes[min(i, len(s.lanes)-1)]
}

// Put queues a record for the next batch.
func (s *StreamSink) Put(ctx context.Context, key string, data []byte, done func(error)) {
	s.mu.Lock()
	closed := s.mu.closed
	s.mu.Unlock()
	if closed {
		done(ErrSinkClosed)
		return
	}
	size := int64(min(len(data)+len(key), 2*MaxRecordBytes))
	if err := s.room.Acquire(ctx, size); err != nil {
		done(err)
		return
	}
	answered := func(err error) {
		s.room.Release(size)
		done(err)
	}
	select {
	case s.lane(key).in <- sinkItem{key: key, data: data, done: answered}:
	case <-ctx.Done():
		answered(ctx.Err())
	}
}

// Flush sends what is buffered and waits for its acknowledgement.
func (s *StreamSink) Flush(ctx context.Context) error {
	chs := make([]chan struct{}, len(s.lanes))
	for i, l := range s.lanes {
		chs[i] = make(chan struct{})
		select {
		case l.in <- sinkItem{flush: chs[i]}:
		case <-ctx.Done():
			return ctx.Err()
		case <-l.done:
			return ErrSinkClosed
		}
	}
	for _, ch := range chs {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Close flushes and stops the sink; records not acknowledged when ctx ends
// get ctx's error.
func (s *StreamSink) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		for _, l := range s.lanes {
			<-l.done
		}
		return nil
	}
	s.mu.closed = true
	s.mu.abort = ctx
	s.mu.Unlock()
	for _, l := range s.lanes {
		close(l.in)
	}
	for _, l := range s.lanes {
		<-l.done
	}
	return ctx.Err()
}

func (s *StreamSink) abortCtx() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.abort
}

// run owns the lane's batch: it collects records until the batch is full,
// old enough or flushed, sends it, and starts the next with what failed.
func (l *lane) run() {
	defer close(l.done)
	s := l.s
	var (
		batch   []sinkItem
		nbytes  int
		flushes []chan struct{}
		timer   = time.NewTimer(time.Hour)
		open    = true
	)
	timer.Stop()
	for open || len(batch) > 0 {
		send := false
		if len(batch) == 0 && len(flushes) > 0 {
			for _, f := range flushes {
				close(f)
			}
			flushes = nil
		}
		if !open {
			send = true
		} else {
			var it sinkItem
			var ok bool
			select {
			case it, ok = <-l.in:
			case <-timer.C:
				send = true
			}
			switch {
			case send:
			case !ok:
				open = false
				send = len(batch) > 0
			case it.flush != nil:
				flushes = append(flushes, it.flush)
				send = len(batch) > 0
			default:
				size := len(it.data) + len(it.key)
				if len(batch) > 0 && (len(batch) >= s.opts.MaxRecords || nbytes+size > s.opts.MaxBytes) {
					batch, nbytes = s.send(batch)
					if len(batch) == 0 {
						timer.Stop()
					} else {
						timer.Reset(0)
					}
				}
				if len(batch) == 0 {
					timer.Reset(s.opts.MaxAge)
				}
				batch = append(batch, it)
				nbytes += size
				send = len(batch) >= s.opts.MaxRecords || nbytes >= s.opts.MaxBytes
			}
		}
		if send && len(batch) > 0 {
			batch, nbytes = s.send(batch)
			if len(batch) == 0 {
				timer.Stop()
			} else {
				timer.Reset(0) // failed records go again at once, after the back-off in send
			}
		}
		if !open && len(batch) == 0 {
			break
		}
	}
	for _, f := range flushes {
		close(f)
	}
	// Records still queued after the loop only exist if Put raced Close.
	for it := range l.in {
		if it.flush != nil {
			close(it.flush)
		} else {
			it.done(ErrSinkClosed)
		}
	}
}

// send makes one PutRecords call for batch (retrying the call itself with
// back-off on errors) and returns the records that failed, to go first in
// the next batch.
func (s *StreamSink) send(batch []sinkItem) ([]sinkItem, int) {
	in := &kinesis.PutRecordsInput{StreamName: aws.String(s.stream), Records: make([]types.PutRecordsRequestEntry, len(batch))}
	for i, it := range batch {
		in.Records[i] = types.PutRecordsRequestEntry{Data: it.data, PartitionKey: aws.String(it.key)}
	}
	backoff := s.opts.RetryInitial
	for attempt := 1; ; attempt++ {
		ctx := s.abortCtx()
		if err := ctx.Err(); err != nil {
			for _, it := range batch {
				it.done(fmt.Errorf("agent: gave up sending to %s: %w", s.stream, err))
			}
			return nil, 0
		}
		out, err := s.api.PutRecords(ctx, in)
		if err == nil {
			var failed []sinkItem
			var fbytes int
			var firstErr string
			for i, r := range out.Records {
				if r.ErrorCode != nil {
					failed = append(failed, batch[i])
					fbytes += len(batch[i].data) + len(batch[i].key)
					if firstErr == "" {
						firstErr = aws.ToString(r.ErrorCode) + ": " + aws.ToString(r.ErrorMessage)
					}
					continue
				}
				batch[i].done(nil)
			}
			if len(failed) > 0 {
				s.logf("retrying failed records", "records", len(failed), "error", firstErr)
				s.sleep(ctx, jitter(s.opts.RetryInitial))
			}
			return failed, fbytes
		}
		if ctx.Err() != nil {
			continue
		}
		s.logf("PutRecords failed; retrying", "attempt", attempt, "records", len(batch), "backoff", backoff, "error", err)
		s.sleep(ctx, jitter(backoff))
		backoff = min(2*backoff, s.opts.RetryMax)
	}
}

func (s *StreamSink) logf(msg string, args ...any) {
	if s.opts.Logger != nil {
		s.opts.Logger.Warn(msg, append([]any{"stream", s.stream}, args...)...)
	}
}

func (s *StreamSink) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// jitter spreads retries: a duration in [d/2, d).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}
