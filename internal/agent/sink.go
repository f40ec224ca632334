package agent

import (
	"context"
	"time"

	"github.com/runnel/runnel/producer"
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

// SinkOptions tune a ProducerSink.
type SinkOptions struct {
	// MaxAge sends a batch whose oldest record has waited this long
	// (maxBufferAgeMillis).
	MaxAge time.Duration
	// MaxBufferedBytes bounds the records waiting to be sent; Put blocks
	// beyond it. Default 64 MiB.
	MaxBufferedBytes int64
	// RetryInitial and RetryMax bound the exponential back-off between
	// attempts of failed records (retryInitialBackoffMillis,
	// retryMaxBackoffMillis).
	RetryInitial, RetryMax time.Duration
	// RateLimit paces each shard to Kinesis' 1 MiB/s and 1,000 records/s
	// (for Amazon Kinesis; a runnel server needs none).
	RateLimit bool
}

// ProducerSink is a Sink that publishes a stream's records through package
// producer: batched by the flow's buffer age and PutRecords' limits, one
// Kinesis record per record (no KPL aggregation, so every consumer reads
// lines as the Kinesis Agent sends them), the records of a shard sent in
// order, failed records retried until they are acknowledged or the sink
// is closed.
type ProducerSink struct {
	p *producer.Producer
}

// retryForever is the producer's per-record deadline: in effect none, as
// the agent keeps a line until the stream took it (its checkpoint waits).
const retryForever = 100 * 365 * 24 * time.Hour

// NewProducerSink returns a sink publishing to stream through client.
func NewProducerSink(client producer.Client, stream string, o SinkOptions) (*ProducerSink, error) {
	opts := []producer.Option{
		producer.Aggregation(false),
		producer.RateLimit(o.RateLimit),
		producer.RecordTTL(retryForever),
	}
	if o.MaxAge > 0 {
		opts = append(opts, producer.Linger(o.MaxAge))
	}
	if o.MaxBufferedBytes > 0 {
		opts = append(opts, producer.MaxBufferedBytes(o.MaxBufferedBytes))
	}
	if o.RetryInitial > 0 && o.RetryMax >= o.RetryInitial {
		opts = append(opts, producer.Backoff(o.RetryInitial, o.RetryMax))
	}
	p, err := producer.New(client, stream, opts...)
	if err != nil {
		return nil, err
	}
	return &ProducerSink{p: p}, nil
}

// Put implements Sink.
func (s *ProducerSink) Put(ctx context.Context, key string, data []byte, done func(error)) {
	if err := s.p.PutAsync(ctx, key, data, func(r producer.Result) { done(r.Err) }); err != nil {
		done(err)
	}
}

// Flush implements Sink.
func (s *ProducerSink) Flush(ctx context.Context) error { return s.p.Flush(ctx) }

// Close implements Sink.
func (s *ProducerSink) Close(ctx context.Context) error { return s.p.Close(ctx) }
