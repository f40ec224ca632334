package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// FanOutClient is the part of *kinesis.Client that enhanced fan-out uses.
type FanOutClient interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
	DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)
}

var _ FanOutClient = (*kinesis.Client)(nil)

// subscribeFunc starts one subscription. The events end when the returned
// reader is closed or ctx ends.
type subscribeFunc func(ctx context.Context, in *kinesis.SubscribeToShardInput) (kinesis.SubscribeToShardEventStreamReader, error)

// fanOutRetriever reads shards with SubscribeToShard as one registered
// stream consumer.
type fanOutRetriever struct {
	control   FanOutClient // registration calls
	subscribe subscribeFunc
	stream    string
	name      string
	log       *slog.Logger
	// poll is how often a consumer's status is asked while it settles.
	poll time.Duration

	// arn guards and caches the consumer's ARN: a channel of one so that
	// a shard waiting for another's registration still sees its context.
	arn chan string
}

// NewFanOutRetriever returns a Retriever that reads shards by enhanced
// fan-out as the stream consumer consumerName, which it registers unless it
// exists. newClient is called for each subscription: an SDK client decodes
// event streams through one buffer, so concurrent subscriptions must not
// share a client. Clients made with kinesis.New(opts) share opts'
// HTTPClient and so its connections.
func NewFanOutRetriever(newClient func() FanOutClient, stream, consumerName string) Retriever {
	return newFanOutRetriever(newClient, stream, consumerName, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func newFanOutRetriever(newClient func() FanOutClient, stream, consumerName string, log *slog.Logger) *fanOutRetriever {
	r := &fanOutRetriever{
		control: newClient(),
		subscribe: func(ctx context.Context, in *kinesis.SubscribeToShardInput) (kinesis.SubscribeToShardEventStreamReader, error) {
			out, err := newClient().SubscribeToShard(ctx, in)
			if err != nil {
				return nil, err
			}
			return out.GetStream(), nil
		},
		stream: stream, name: consumerName, log: log,
		poll: 250 * time.Millisecond,
		arn:  make(chan string, 1),
	}
	r.arn <- ""
	return r
}

// consumerARN returns the ARN of the registered, ACTIVE consumer,
// registering it the first time.
func (r *fanOutRetriever) consumerARN(ctx context.Context) (string, error) {
	var arn string
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case arn = <-r.arn:
	}
	if arn == "" {
		var err error
		if arn, err = r.register(ctx); err != nil {
			r.arn <- ""
			return "", err
		}
	}
	r.arn <- arn
	return arn, nil
}

// forget drops a cached ARN the service no longer knows, so that the next
// Open registers the consumer again.
func (r *fanOutRetriever) forget(arn string) {
	cur := <-r.arn
	if cur == arn {
		cur = ""
	}
	r.arn <- cur
}

// register finds the consumer by name or registers it, and waits until it
// is ACTIVE. It describes first, as the KCL does, so that workers sharing a
// consumer spend none of RegisterStreamConsumer's 5 calls a second; a
// registration that loses a race to another worker's (ResourceInUse) is
// followed by another describe.
func (r *fanOutRetriever) register(ctx context.Context) (string, error) {
	var b backoff
	var streamARN string
	for streamARN == "" {
		out, err := r.control.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(r.stream)})
		switch {
		case err == nil:
			streamARN = aws.ToString(out.StreamDescriptionSummary.StreamARN)
			if streamARN == "" {
				return "", fmt.Errorf("consumer: stream %s has no ARN", r.stream)
			}
		case throttled(err):
			if err := b.wait(ctx); err != nil {
				return "", err
			}
		default:
			return "", fmt.Errorf("describe stream %s: %w", r.stream, err)
		}
	}
	for {
		var c *types.ConsumerDescription
		d, err := r.control.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(r.name)})
		var notFound *types.ResourceNotFoundException
		var inUse *types.ResourceInUseException
		switch {
		case err == nil:
			c = d.ConsumerDescription
		case errors.As(err, &notFound):
			out, err := r.control.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(r.name)})
			switch {
			case err == nil:
				r.log.Info("registered stream consumer", slog.String("consumer", r.name))
				c = &types.ConsumerDescription{ConsumerARN: out.Consumer.ConsumerARN, ConsumerStatus: out.Consumer.ConsumerStatus}
			case errors.As(err, &inUse):
				// Another worker registered it first, or it is being deleted.
			case throttled(err):
				if err := b.wait(ctx); err != nil {
					return "", err
				}
				continue
			default:
				return "", fmt.Errorf("register stream consumer %s: %w", r.name, err)
			}
		case throttled(err):
			if err := b.wait(ctx); err != nil {
				return "", err
			}
			continue
		default:
			return "", fmt.Errorf("describe stream consumer %s: %w", r.name, err)
		}
		if c != nil && c.ConsumerStatus == types.ConsumerStatusActive {
			if arn := aws.ToString(c.ConsumerARN); arn != "" {
				return arn, nil
			}
			return "", fmt.Errorf("consumer: stream consumer %s has no ARN", r.name)
		}
		// CREATING, DELETING (then registered anew once gone) or just
		// registered by another worker.
		b.reset()
		if err := sleep(ctx, r.poll); err != nil {
			return "", err
		}
	}
}

// Open subscribes to the shard at start.
func (r *fanOutRetriever) Open(ctx context.Context, shardID string, start Start) (ShardReader, error) {
	arn, err := r.consumerARN(ctx)
	if err != nil {
		return nil, err
	}
	s := &subscription{r: r, arn: arn, shard: shardID, start: start}
	if err := s.subscribe(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// subscription is the ShardReader of one shard read by enhanced fan-out. It
// holds at most one live subscription and replaces it when it ends.
type subscription struct {
	r     *fanOutRetriever
	arn   string
	shard string
	start Start
	// cont is the last event's ContinuationSequenceNumber: a
	// resubscription starts after it.
	cont   string
	events kinesis.SubscribeToShardEventStreamReader
	cancel context.CancelFunc
	// fresh is true until the live subscription sent an event.
	fresh   bool
	ended   bool
	backoff backoff
}

var _ io.Closer = (*subscription)(nil)

// position is where the next subscription starts.
func (s *subscription) position() *types.StartingPosition {
	switch {
	case s.cont != "":
		return &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(s.cont)}
	case s.start.AtSequenceNumber != "":
		return &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(s.start.AtSequenceNumber)}
	case s.start.AfterSequenceNumber != "":
		return &types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(s.start.AfterSequenceNumber)}
	}
	p := &types.StartingPosition{Type: types.ShardIteratorType(s.start.Initial.Type)}
	if s.start.Initial.Type == "AT_TIMESTAMP" {
		p.Timestamp = aws.Time(s.start.Initial.Timestamp)
	}
	return p
}

// subscribe starts a subscription, waiting out a previous one still live
// (ResourceInUseException, for up to 5 s on Kinesis), the limit of one
// call a second per shard and consumer (LimitExceededException), and the
// other transient failures (an unreachable endpoint among them). The
// subscription lives until Close or the end of ctx.
func (s *subscription) subscribe(ctx context.Context) error {
	in := &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(s.arn), ShardId: aws.String(s.shard), StartingPosition: s.position()}
	for {
		subCtx, cancel := context.WithCancel(ctx)
		events, err := s.r.subscribe(subCtx, in)
		if err == nil {
			s.events, s.cancel, s.fresh = events, cancel, true
			return nil
		}
		cancel()
		var notFound *types.ResourceNotFoundException
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case transient(err):
			s.r.log.Debug("subscription refused; retrying", slog.String("shard", s.shard), slog.Any("error", err))
			if err := s.backoff.wait(ctx); err != nil {
				return err
			}
		case errors.As(err, &notFound):
			s.r.forget(s.arn) // the consumer may have been deregistered
			return fmt.Errorf("subscribe to %s: %w", s.shard, err)
		default:
			return fmt.Errorf("subscribe to %s: %w", s.shard, err)
		}
	}
}

// Next returns the records of the next event that has any, or the last
// event of a closed shard. Events without records (Kinesis sends one at
// least every 5 s) only move the continuation, as empty GetRecords answers
// do in polling. When a subscription ends (after 5 minutes on Kinesis, or
// on a dropped connection) Next subscribes again after the last event's
// ContinuationSequenceNumber.
func (s *subscription) Next(ctx context.Context) (Batch, error) {
	for {
		if s.ended {
			return Batch{End: true}, nil
		}
		if s.events == nil {
			if err := s.subscribe(ctx); err != nil {
				return Batch{}, err
			}
		}
		var ev types.SubscribeToShardEventStream
		var ok bool
		select {
		case <-ctx.Done():
			s.Close()
			return Batch{}, ctx.Err()
		case ev, ok = <-s.events.Events():
		}
		if !ok {
			err, fresh := s.events.Err(), s.fresh
			s.Close()
			if ctx.Err() != nil {
				return Batch{}, ctx.Err()
			}
			if err == nil && !fresh {
				continue // the subscription's time is up
			}
			if err != nil && !transient(err) {
				return Batch{}, fmt.Errorf("subscription to %s: %w", s.shard, err)
			}
			// A subscription that ended with an error, or before its
			// first event, is replaced after a back-off.
			s.r.log.Debug("subscription ended; resubscribing", slog.String("shard", s.shard), slog.Any("error", err))
			if err := s.backoff.wait(ctx); err != nil {
				return Batch{}, err
			}
			continue
		}
		m, isEvent := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEvent {
			continue // an event type added after this SDK
		}
		s.backoff.reset()
		s.fresh = false
		e := m.Value
		b := Batch{Records: e.Records, MillisBehindLatest: aws.ToInt64(e.MillisBehindLatest)}
		switch {
		case e.ContinuationSequenceNumber != nil:
			s.cont = *e.ContinuationSequenceNumber
		case len(e.ChildShards) > 0:
			// The end of a closed shard: children and no continuation.
			s.ended, b.End = true, true
			s.Close()
		case len(e.Records) > 0:
			// No continuation but records: resume after them.
			s.cont = aws.ToString(e.Records[len(e.Records)-1].SequenceNumber)
		}
		if len(b.Records) > 0 || b.End {
			return b, nil
		}
	}
}

// Close ends the live subscription, if any.
func (s *subscription) Close() error {
	if s.events == nil {
		return nil
	}
	err := s.events.Close()
	s.cancel()
	s.events, s.cancel = nil, nil
	return err
}

// transient reports whether a subscription that ended with err should be
// replaced by a new one: throttling, a server-side failure, another
// subscription taking the slot, or a broken connection. Other errors the
// service sent (an unknown shard or consumer, KMS refusals, access denied)
// end the reader.
func transient(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return true // transport: a dropped or reset connection
	}
	switch ae.ErrorCode() {
	case "ResourceInUseException", "LimitExceededException", "ProvisionedThroughputExceededException",
		"KMSThrottlingException", "InternalFailureException", "InternalFailure", "ServiceUnavailable",
		"ServiceUnavailableException":
		return true
	}
	return false
}

// backoff is an exponential back-off with jitter, from minBackoff to
// maxBackoff.
type backoff struct{ d time.Duration }

func (b *backoff) wait(ctx context.Context) error {
	b.d = min(max(2*b.d, minBackoff), maxBackoff)
	return sleep(ctx, b.d/2+rand.N(b.d/2+1))
}

func (b *backoff) reset() { b.d = 0 }
