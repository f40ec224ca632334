package consumer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Kinesis is the part of *kinesis.Client the worker uses. Options gives the
// endpoint, region, credentials and HTTP client the default lease store
// reuses.
type Kinesis interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
	Options() kinesis.Options
}

var _ Kinesis = (*kinesis.Client)(nil)

// Retriever reads shards: by polling with GetRecords (NewPollingRetriever,
// the default) or by enhanced fan-out with SubscribeToShard
// (NewFanOutRetriever, the FanOut option).
type Retriever interface {
	// Open starts reading a shard at start.
	Open(ctx context.Context, shardID string, start Start) (ShardReader, error)
}

// Start is where a ShardReader begins: at a sequence number when the
// shard has a checkpoint, else at the table's initial position.
type Start struct {
	// AfterSequenceNumber starts after a sequence number.
	AfterSequenceNumber string
	// AtSequenceNumber, if set instead, starts at a sequence number. The
	// worker starts at its checkpoint, because the rest of a KPL
	// aggregate checkpointed at one of its user records must be read
	// again; it drops the user records the checkpoint covers.
	AtSequenceNumber string
	// Initial is used when neither sequence number is set.
	Initial Position
}

// Batch is what one read of a shard returned.
type Batch struct {
	// Records are as Kinesis stores them (KPL aggregates not yet expanded).
	Records            []types.Record
	MillisBehindLatest int64
	// End reports that the shard is closed and was read to its end.
	End bool
}

// ShardReader reads one shard in order. It is used by one goroutine. A
// reader that holds resources between calls, as a subscription does, also
// implements io.Closer: the worker closes it when it stops reading the
// shard.
type ShardReader interface {
	// Next blocks until records arrive or the shard ends.
	Next(ctx context.Context) (Batch, error)
}

// pollingRetriever reads shards with GetShardIterator and GetRecords.
type pollingRetriever struct {
	client     Kinesis
	fast       *fastGetter // nil: GetRecords through the SDK
	stream     string
	maxRecords int32
	idle       time.Duration
}

// NewPollingRetriever returns a Retriever that polls with GetRecords for up
// to maxRecords records a call, waiting idle after an empty answer. When
// client is a *kinesis.Client, GetRecords bypasses the SDK's request
// pipeline (see SDKRetrieval): the retriever writes and signs the request
// from the client's options and decodes the answer itself, several times
// faster; results and errors are those the SDK would return.
func NewPollingRetriever(client Kinesis, stream string, maxRecords int, idle time.Duration) Retriever {
	return newPollingRetriever(client, stream, maxRecords, idle, false)
}

// NewSDKPollingRetriever is NewPollingRetriever with every GetRecords call
// made through client.
func NewSDKPollingRetriever(client Kinesis, stream string, maxRecords int, idle time.Duration) Retriever {
	return newPollingRetriever(client, stream, maxRecords, idle, true)
}

func newPollingRetriever(client Kinesis, stream string, maxRecords int, idle time.Duration, sdk bool) *pollingRetriever {
	r := &pollingRetriever{client: client, stream: stream, maxRecords: int32(maxRecords), idle: idle}
	if c, ok := client.(*kinesis.Client); ok && !sdk {
		r.fast = newFastGetter(c.Options())
	}
	return r
}

func (r *pollingRetriever) Open(ctx context.Context, shardID string, start Start) (ShardReader, error) {
	p := &poller{r: r, shard: shardID, start: start}
	if r.fast != nil {
		p.fast = &fastReader{g: r.fast}
	}
	if err := p.renew(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// poller is the ShardReader of one shard.
type poller struct {
	r        *pollingRetriever
	shard    string
	start    Start
	iterator *string
	lastSeq  string // the last sequence number Next returned
	backoff  time.Duration
	fast     *fastReader // nil: GetRecords through the SDK
}

// getRecords calls GetRecords on the fast path or through the SDK.
func (p *poller) getRecords(ctx context.Context, in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	if p.fast != nil {
		return p.fast.getRecords(ctx, in)
	}
	return p.r.client.GetRecords(ctx, in)
}

// renew gets an iterator after the last record returned, or at the start.
func (p *poller) renew(ctx context.Context) error {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(p.r.stream), ShardId: aws.String(p.shard)}
	switch {
	case p.lastSeq != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(p.lastSeq)
	case p.start.AtSequenceNumber != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAtSequenceNumber, aws.String(p.start.AtSequenceNumber)
	case p.start.AfterSequenceNumber != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(p.start.AfterSequenceNumber)
	default:
		in.ShardIteratorType = types.ShardIteratorType(p.start.Initial.Type)
		if p.start.Initial.Type == "AT_TIMESTAMP" {
			in.Timestamp = aws.Time(p.start.Initial.Timestamp)
		}
	}
	for {
		out, err := p.r.client.GetShardIterator(ctx, in)
		if err == nil {
			p.iterator = out.ShardIterator
			return nil
		}
		if !throttled(err) {
			return fmt.Errorf("get shard iterator of %s: %w", p.shard, err)
		}
		if err := p.wait(ctx); err != nil {
			return err
		}
	}
}

// throttled reports whether err asks the caller to slow down.
func throttled(err error) bool {
	var pt *types.ProvisionedThroughputExceededException
	var le *types.LimitExceededException
	var kt *types.KMSThrottlingException
	return errors.As(err, &pt) || errors.As(err, &le) || errors.As(err, &kt)
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// wait sleeps for the next back-off step, with jitter.
func (p *poller) wait(ctx context.Context) error {
	p.backoff = min(max(2*p.backoff, minBackoff), maxBackoff)
	return sleep(ctx, p.backoff/2+rand.N(p.backoff/2+1))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (p *poller) Next(ctx context.Context) (Batch, error) {
	for {
		if p.iterator == nil {
			return Batch{End: true}, nil
		}
		out, err := p.getRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: p.iterator, Limit: aws.Int32(p.r.maxRecords)})
		var expired *types.ExpiredIteratorException
		switch {
		case errors.As(err, &expired):
			if err := p.renew(ctx); err != nil {
				return Batch{}, err
			}
			continue
		case err != nil && throttled(err):
			if err := p.wait(ctx); err != nil {
				return Batch{}, err
			}
			continue
		case err != nil:
			return Batch{}, fmt.Errorf("get records of %s: %w", p.shard, err)
		}
		p.backoff = 0
		p.iterator = out.NextShardIterator
		b := Batch{Records: out.Records, End: out.NextShardIterator == nil}
		if out.MillisBehindLatest != nil {
			b.MillisBehindLatest = *out.MillisBehindLatest
		}
		if n := len(out.Records); n > 0 {
			p.lastSeq = aws.ToString(out.Records[n-1].SequenceNumber)
		}
		if len(b.Records) > 0 || b.End {
			return b, nil
		}
		if err := sleep(ctx, p.r.idle); err != nil {
			return Batch{}, err
		}
	}
}
