package consumer

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// registry is a fake of the consumer registration calls.
type registry struct {
	mu sync.Mutex
	// describes answers DescribeStreamConsumer in turn; the last repeats.
	describes []func() (*kinesis.DescribeStreamConsumerOutput, error)
	register  func() (*kinesis.RegisterStreamConsumerOutput, error)
	calls     []string
}

func (g *registry) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, "DescribeStreamSummary")
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{StreamARN: aws.String("arn:stream/" + aws.ToString(in.StreamName))}}, nil
}

func (g *registry) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, "RegisterStreamConsumer")
	return g.register()
}

func (g *registry) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, "DescribeStreamConsumer")
	f := g.describes[0]
	if len(g.describes) > 1 {
		g.describes = g.describes[1:]
	}
	return f()
}

func (g *registry) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, _ ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	return nil, errors.New("not used: the test subscribes through its script")
}

func described(status types.ConsumerStatus) func() (*kinesis.DescribeStreamConsumerOutput, error) {
	return func() (*kinesis.DescribeStreamConsumerOutput, error) {
		return &kinesis.DescribeStreamConsumerOutput{ConsumerDescription: &types.ConsumerDescription{ConsumerARN: aws.String("arn:consumer"), ConsumerStatus: status}}, nil
	}
}

func describeFails(err error) func() (*kinesis.DescribeStreamConsumerOutput, error) {
	return func() (*kinesis.DescribeStreamConsumerOutput, error) { return nil, err }
}

func newTestRetriever(g *registry) *fanOutRetriever {
	r := newFanOutRetriever(func() FanOutClient { return g }, "s", "app", slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.poll = time.Millisecond
	return r
}

// TestFanOutRegistration: an existing ACTIVE consumer is reused without
// RegisterStreamConsumer; a missing one is registered and waited for until
// ACTIVE; a registration that loses a race to another worker's is followed
// by a describe; throttling is waited out. Concurrent shards register once.
func TestFanOutRegistration(t *testing.T) {
	notFound := &types.ResourceNotFoundException{Message: aws.String("no consumer")}
	registered := func(status types.ConsumerStatus) func() (*kinesis.RegisterStreamConsumerOutput, error) {
		return func() (*kinesis.RegisterStreamConsumerOutput, error) {
			return &kinesis.RegisterStreamConsumerOutput{Consumer: &types.Consumer{ConsumerARN: aws.String("arn:consumer"), ConsumerStatus: status}}, nil
		}
	}
	tests := []struct {
		name      string
		describes []func() (*kinesis.DescribeStreamConsumerOutput, error)
		register  func() (*kinesis.RegisterStreamConsumerOutput, error)
		want      []string
	}{
		{"existing ACTIVE reused",
			[]func() (*kinesis.DescribeStreamConsumerOutput, error){described(types.ConsumerStatusActive)}, nil,
			[]string{"DescribeStreamSummary", "DescribeStreamConsumer"}},
		{"registered, then CREATING until ACTIVE",
			[]func() (*kinesis.DescribeStreamConsumerOutput, error){describeFails(notFound), described(types.ConsumerStatusCreating), described(types.ConsumerStatusActive)},
			registered(types.ConsumerStatusCreating),
			[]string{"DescribeStreamSummary", "DescribeStreamConsumer", "RegisterStreamConsumer", "DescribeStreamConsumer", "DescribeStreamConsumer"}},
		{"another worker registered first",
			[]func() (*kinesis.DescribeStreamConsumerOutput, error){describeFails(notFound), described(types.ConsumerStatusActive)},
			func() (*kinesis.RegisterStreamConsumerOutput, error) {
				return nil, &types.ResourceInUseException{Message: aws.String("exists")}
			},
			[]string{"DescribeStreamSummary", "DescribeStreamConsumer", "RegisterStreamConsumer", "DescribeStreamConsumer"}},
		{"DELETING, then gone and registered anew",
			[]func() (*kinesis.DescribeStreamConsumerOutput, error){described(types.ConsumerStatusDeleting), describeFails(notFound), described(types.ConsumerStatusActive)},
			registered(types.ConsumerStatusActive),
			[]string{"DescribeStreamSummary", "DescribeStreamConsumer", "DescribeStreamConsumer", "RegisterStreamConsumer"}},
		{"throttled describe",
			[]func() (*kinesis.DescribeStreamConsumerOutput, error){describeFails(&types.LimitExceededException{Message: aws.String("slow down")}), described(types.ConsumerStatusActive)}, nil,
			[]string{"DescribeStreamSummary", "DescribeStreamConsumer", "DescribeStreamConsumer"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &registry{describes: tc.describes, register: tc.register}
			r := newTestRetriever(g)
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					arn, err := r.consumerARN(context.Background())
					if err != nil || arn != "arn:consumer" {
						t.Errorf("consumerARN = %q, %v", arn, err)
					}
				}()
			}
			wg.Wait()
			g.mu.Lock()
			defer g.mu.Unlock()
			if len(g.calls) != len(tc.want) {
				t.Fatalf("calls %v, want %v", g.calls, tc.want)
			}
			for i := range tc.want {
				if g.calls[i] != tc.want[i] {
					t.Fatalf("calls %v, want %v", g.calls, tc.want)
				}
			}
		})
	}
}

// TestFanOutRegistrationRefused: an error that is not throttling ends the
// registration, and the next attempt starts over.
func TestFanOutRegistrationRefused(t *testing.T) {
	g := &registry{describes: []func() (*kinesis.DescribeStreamConsumerOutput, error){
		describeFails(&types.AccessDeniedException{Message: aws.String("no")}), described(types.ConsumerStatusActive)}}
	r := newTestRetriever(g)
	var denied *types.AccessDeniedException
	if _, err := r.consumerARN(context.Background()); !errors.As(err, &denied) {
		t.Fatalf("first registration: %v", err)
	}
	if arn, err := r.consumerARN(context.Background()); err != nil || arn != "arn:consumer" {
		t.Fatalf("second registration: %q, %v", arn, err)
	}
}

// eventStream is a fake subscription: events sent on ch, then err.
type eventStream struct {
	ch     chan types.SubscribeToShardEventStream
	err    error
	closed chan struct{}
	once   sync.Once
}

func (e *eventStream) Events() <-chan types.SubscribeToShardEventStream { return e.ch }
func (e *eventStream) Err() error                                       { return e.err }
func (e *eventStream) Close() error {
	e.once.Do(func() { close(e.closed) })
	return nil
}

// event is one SubscribeToShardEvent with records of the given sequence
// numbers; cont "" leaves ContinuationSequenceNumber nil.
func event(cont string, children bool, seqs ...string) types.SubscribeToShardEventStream {
	e := types.SubscribeToShardEvent{MillisBehindLatest: aws.Int64(3)}
	if cont != "" {
		e.ContinuationSequenceNumber = aws.String(cont)
	}
	if children {
		e.ChildShards = []types.ChildShard{{ShardId: aws.String("shardId-000000000002"), ParentShards: []string{"shardId-000000000000"}}}
	}
	for _, s := range seqs {
		e.Records = append(e.Records, types.Record{SequenceNumber: aws.String(s), PartitionKey: aws.String("k"), Data: []byte(s)})
	}
	return &types.SubscribeToShardEventStreamMemberSubscribeToShardEvent{Value: e}
}

// subscriptionScript answers SubscribeToShard calls in turn: an error, or a
// stream that sends its events and ends with err (or stays open when
// open).
type subscriptionScript struct {
	mu      sync.Mutex
	answers []answer
	calls   []*kinesis.SubscribeToShardInput
	ctxs    []context.Context
	streams []*eventStream
}

type answer struct {
	err    error
	events []types.SubscribeToShardEventStream
	end    error
	open   bool
}

func (s *subscriptionScript) subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (kinesis.SubscribeToShardEventStreamReader, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, in)
	s.ctxs = append(s.ctxs, ctx)
	if len(s.answers) == 0 {
		return nil, errors.New("script ended")
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	if a.err != nil {
		return nil, a.err
	}
	es := &eventStream{ch: make(chan types.SubscribeToShardEventStream), err: a.end, closed: make(chan struct{})}
	s.streams = append(s.streams, es)
	go func() {
		for _, ev := range a.events {
			select {
			case es.ch <- ev:
			case <-es.closed:
				return
			}
		}
		if !a.open {
			close(es.ch)
		}
	}()
	return es, nil
}

func positionOf(in *kinesis.SubscribeToShardInput) string {
	p := in.StartingPosition
	return string(p.Type) + " " + aws.ToString(p.SequenceNumber)
}

// TestFanOutReader: a refused subscription (ResourceInUse, LimitExceeded,
// an unreachable endpoint) is retried; events without records produce no batch; a subscription
// that ends, cleanly or with a broken connection, is replaced by one after
// the last ContinuationSequenceNumber; the event with child shards and no
// continuation ends the shard and its subscription.
func TestFanOutReader(t *testing.T) {
	sc := &subscriptionScript{answers: []answer{
		{err: &types.ResourceInUseException{Message: aws.String("still subscribed")}},
		{err: &types.LimitExceededException{Message: aws.String("1 a second")}},
		{err: errors.New("dial tcp 127.0.0.1:1: connect: connection refused")},
		{events: []types.SubscribeToShardEventStream{event("5", false), event("12", false, "10", "12"), event("14", false)},
			end: errors.New("read tcp: use of closed network connection")},
		{events: []types.SubscribeToShardEventStream{event("20", false, "20")}},
		{events: []types.SubscribeToShardEventStream{event("22", false), event("", true, "30")}, open: true},
	}}
	r := newTestRetriever(&registry{describes: []func() (*kinesis.DescribeStreamConsumerOutput, error){described(types.ConsumerStatusActive)}})
	r.subscribe = sc.subscribe
	ctx := context.Background()
	rd, err := r.Open(ctx, "shardId-000000000000", Start{AfterSequenceNumber: "3"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		b, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) == 0 && !b.End {
			t.Fatal("an empty batch that does not end the shard")
		}
		for _, rec := range b.Records {
			got = append(got, aws.ToString(rec.SequenceNumber))
		}
		if b.MillisBehindLatest != 3 {
			t.Errorf("MillisBehindLatest %d", b.MillisBehindLatest)
		}
		if b.End {
			break
		}
	}
	if b, err := rd.Next(ctx); err != nil || !b.End {
		t.Fatalf("Next after the end: %+v, %v", b, err)
	}
	if want := "10 12 20 30"; join(got) != want {
		t.Fatalf("records %s, want %s", join(got), want)
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	var pos []string
	for _, in := range sc.calls {
		if aws.ToString(in.ConsumerARN) != "arn:consumer" || aws.ToString(in.ShardId) != "shardId-000000000000" {
			t.Fatalf("subscribed %+v", in)
		}
		pos = append(pos, positionOf(in))
	}
	want := []string{"AFTER_SEQUENCE_NUMBER 3", "AFTER_SEQUENCE_NUMBER 3", "AFTER_SEQUENCE_NUMBER 3", "AFTER_SEQUENCE_NUMBER 3", "AFTER_SEQUENCE_NUMBER 14", "AFTER_SEQUENCE_NUMBER 20"}
	if join(pos) != join(want) {
		t.Fatalf("subscriptions at %q, want %q", pos, want)
	}
	// The last subscription, still open on the server's side, was closed.
	select {
	case <-sc.streams[len(sc.streams)-1].closed:
	default:
		t.Fatal("the subscription that ended the shard was not closed")
	}
	if sc.ctxs[len(sc.ctxs)-1].Err() == nil {
		t.Fatal("the context of the subscription that ended the shard is alive")
	}
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

// TestFanOutStartPositions: the first subscription starts where Start
// says.
func TestFanOutStartPositions(t *testing.T) {
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name  string
		start Start
		want  string
	}{
		{"after a checkpoint", Start{AfterSequenceNumber: "42"}, "AFTER_SEQUENCE_NUMBER 42"},
		{"at a checkpoint inside an aggregate", Start{AtSequenceNumber: "42"}, "AT_SEQUENCE_NUMBER 42"},
		{"trim horizon", Start{Initial: TrimHorizon}, "TRIM_HORIZON "},
		{"latest", Start{Initial: Latest}, "LATEST "},
		{"at a timestamp", Start{Initial: AtTimestamp(at)}, "AT_TIMESTAMP "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := &subscriptionScript{answers: []answer{{open: true}}}
			r := newTestRetriever(&registry{describes: []func() (*kinesis.DescribeStreamConsumerOutput, error){described(types.ConsumerStatusActive)}})
			r.subscribe = sc.subscribe
			rd, err := r.Open(context.Background(), "shardId-000000000001", tc.start)
			if err != nil {
				t.Fatal(err)
			}
			defer rd.(io.Closer).Close()
			if got := positionOf(sc.calls[0]); got != tc.want {
				t.Fatalf("position %q, want %q", got, tc.want)
			}
			if tc.start.Initial.Type == "AT_TIMESTAMP" && !aws.ToTime(sc.calls[0].StartingPosition.Timestamp).Equal(at) {
				t.Fatalf("timestamp %v", sc.calls[0].StartingPosition.Timestamp)
			}
		})
	}
}

// TestFanOutReaderStops: the end of the reading context closes the
// subscription; an error the service sent that is not transient ends the
// reader, and an unknown consumer is registered again by the next Open.
func TestFanOutReaderStops(t *testing.T) {
	t.Run("context ends", func(t *testing.T) {
		sc := &subscriptionScript{answers: []answer{{open: true}}}
		r := newTestRetriever(&registry{describes: []func() (*kinesis.DescribeStreamConsumerOutput, error){described(types.ConsumerStatusActive)}})
		r.subscribe = sc.subscribe
		ctx, cancel := context.WithCancel(context.Background())
		rd, err := r.Open(ctx, "shardId-000000000000", Start{Initial: TrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(20*time.Millisecond, cancel)
		if _, err := rd.Next(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next after cancel: %v", err)
		}
		<-sc.streams[0].closed
		if sc.ctxs[0].Err() == nil {
			t.Fatal("subscription context alive after cancel")
		}
	})
	t.Run("service error mid-stream", func(t *testing.T) {
		sc := &subscriptionScript{answers: []answer{{events: []types.SubscribeToShardEventStream{event("7", false, "7")},
			end: &types.ResourceNotFoundException{Message: aws.String("shard gone")}}}}
		r := newTestRetriever(&registry{describes: []func() (*kinesis.DescribeStreamConsumerOutput, error){described(types.ConsumerStatusActive)}})
		r.subscribe = sc.subscribe
		rd, err := r.Open(context.Background(), "shardId-000000000000", Start{Initial: TrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		if b, err := rd.Next(context.Background()); err != nil || len(b.Records) != 1 {
			t.Fatalf("first batch %+v, %v", b, err)
		}
		var notFound *types.ResourceNotFoundException
		if _, err := rd.Next(context.Background()); !errors.As(err, &notFound) {
			t.Fatalf("Next after the stream's error: %v", err)
		}
	})
	t.Run("consumer deregistered", func(t *testing.T) {
		sc := &subscriptionScript{answers: []answer{{err: &types.ResourceNotFoundException{Message: aws.String("no consumer")}}, {open: true}}}
		g := &registry{describes: []func() (*kinesis.DescribeStreamConsumerOutput, error){described(types.ConsumerStatusActive)}}
		r := newTestRetriever(g)
		r.subscribe = sc.subscribe
		if _, err := r.Open(context.Background(), "shardId-000000000000", Start{Initial: TrimHorizon}); err == nil {
			t.Fatal("Open succeeded on an unknown consumer")
		}
		rd, err := r.Open(context.Background(), "shardId-000000000000", Start{Initial: TrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		rd.(io.Closer).Close()
		g.mu.Lock()
		defer g.mu.Unlock()
		if n := len(g.calls); n != 4 { // summary + describe, twice
			t.Fatalf("registration calls %v: the consumer was not looked up again", g.calls)
		}
	})
}

// TestFanOutEmptySubscriptionBacksOff: subscriptions that end before
// their first event are replaced after a back-off, not in a busy loop.
func TestFanOutEmptySubscriptionBacksOff(t *testing.T) {
	sc := &subscriptionScript{answers: []answer{{}, {}, {}, {events: []types.SubscribeToShardEventStream{event("9", false, "9")}, open: true}}}
	r := newTestRetriever(&registry{describes: []func() (*kinesis.DescribeStreamConsumerOutput, error){described(types.ConsumerStatusActive)}})
	r.subscribe = sc.subscribe
	rd, err := r.Open(context.Background(), "shardId-000000000000", Start{Initial: TrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.(io.Closer).Close()
	start := time.Now()
	b, err := rd.Next(context.Background())
	if err != nil || len(b.Records) != 1 {
		t.Fatalf("Next: %+v, %v", b, err)
	}
	// Three back-offs of at least 50, 100 and 200 ms.
	if d := time.Since(start); d < 350*time.Millisecond {
		t.Fatalf("three empty subscriptions replaced within %v", d)
	}
}
