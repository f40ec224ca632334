package consumer_test

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
)

// TestFanOutWorker: a worker reading by enhanced fan-out registers its
// stream consumer, processes every record, reads a split shard to its end
// (SHARD_END) before its children, and a second worker of the same name
// reuses the consumer and resumes after the checkpoints.
func TestFanOutWorker(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(50*time.Millisecond))
	kc := srv.Client(t)
	ctx := context.Background()
	createStream(t, kc, "f", 2)
	eventually(t, 5*time.Second, "stream ACTIVE", func() bool {
		d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("f")})
		return err == nil && d.StreamDescriptionSummary.StreamStatus == "ACTIVE"
	})
	put(t, kc, "f", 0, 50)

	p1 := newRecorder()
	c1, err := consumer.New(kc, "f", "app", p1, options(t, "w1", consumer.FanOut("app-efo"))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := worker(t, c1)
	eventually(t, 10*time.Second, "50 records processed", func() bool { d, _ := p1.count(); return d == 50 })

	// Split shard 0: its subscription ends with the child shards, the
	// worker checkpoints SHARD_END and goes on with the children.
	shards, err := kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("f")})
	if err != nil {
		t.Fatal(err)
	}
	r := shards.Shards[0].HashKeyRange
	lo, _ := new(big.Int).SetString(*r.StartingHashKey, 10)
	hi, _ := new(big.Int).SetString(*r.EndingHashKey, 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("f"), ShardToSplit: shards.Shards[0].ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "stream ACTIVE after the split", func() bool {
		d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("f")})
		return err == nil && d.StreamDescriptionSummary.StreamStatus == "ACTIVE"
	})
	put(t, kc, "f", 50, 100)
	eventually(t, 10*time.Second, "100 records processed", func() bool { d, _ := p1.count(); return d == 100 })
	table, err := consumer.NewRunnelStore(kc.Options(), "f", "app")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the split shard at SHARD_END", func() bool {
		ls, err := table.List(ctx)
		if err != nil {
			return false
		}
		for _, l := range ls {
			if l.Key == *shards.Shards[0].ShardId {
				return l.Checkpoint == consumer.ShardEnd
			}
		}
		return false
	})
	stop()
	if _, total := p1.count(); total != 100 {
		t.Errorf("first worker: %d deliveries of 100 records", total)
	}

	// A second worker with the same consumer name reuses it.
	put(t, kc, "f", 100, 120)
	p2 := newRecorder()
	c2, err := consumer.New(kc, "f", "app", p2, options(t, "w2", consumer.FanOut("app-efo"))...)
	if err != nil {
		t.Fatal(err)
	}
	stop = worker(t, c2)
	eventually(t, 10*time.Second, "20 new records processed", func() bool { d, _ := p2.count(); return d == 20 })
	time.Sleep(100 * time.Millisecond)
	stop()
	for i := range 120 {
		want := 0
		if i >= 100 {
			want = 1
		}
		if n := p2.seen[fmt.Sprint("record-", i)]; n != want {
			t.Fatalf("record-%d delivered %d times to the second worker, want %d", i, n, want)
		}
	}
	d, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("f")})
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kc.ListStreamConsumers(ctx, &kinesis.ListStreamConsumersInput{StreamARN: d.StreamDescriptionSummary.StreamARN})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Consumers) != 1 || aws.ToString(cs.Consumers[0].ConsumerName) != "app-efo" || cs.Consumers[0].ConsumerStatus != "ACTIVE" {
		t.Fatalf("stream consumers %+v", cs.Consumers)
	}
}

// watchedClient is an SDK client that keeps the context of every
// SubscribeToShard call.
type watchedClient struct {
	*kinesis.Client
	mu   *sync.Mutex
	ctxs *[]context.Context
}

func (c watchedClient) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	c.mu.Lock()
	*c.ctxs = append(*c.ctxs, ctx)
	c.mu.Unlock()
	return c.Client.SubscribeToShard(ctx, in, optFns...)
}

// TestFanOutLostLease: when a checkpoint finds the lease taken, the shard's
// subscription is cancelled and the processor hears LeaseLost.
func TestFanOutLostLease(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(10*time.Millisecond))
	kc := srv.Client(t)
	createStream(t, kc, "l", 1)
	eventually(t, 5*time.Second, "stream ACTIVE", func() bool {
		d, err := kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("l")})
		return err == nil && d.StreamDescriptionSummary.StreamStatus == "ACTIVE"
	})
	put(t, kc, "l", 0, 3)
	base, err := consumer.NewRunnelStore(kc.Options(), "l", "app")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var ctxs []context.Context
	r := consumer.NewFanOutRetriever(func() consumer.FanOutClient {
		return watchedClient{Client: srv.NewClient(), mu: &mu, ctxs: &ctxs}
	}, "l", "app-efo")
	p := newRecorder()
	c, err := consumer.New(kc, "l", "app", p, options(t, "w1", consumer.Leases(&stealingStore{LeaseStore: base}),
		consumer.LeaseDuration(time.Hour), consumer.WithRetriever(r))...)
	if err != nil {
		t.Fatal(err)
	}
	worker(t, c)
	eventually(t, 5*time.Second, "lease lost", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.lost) == 1 })
	mu.Lock()
	defer mu.Unlock()
	if len(ctxs) == 0 {
		t.Fatal("no subscription")
	}
	for i, ctx := range ctxs {
		if ctx.Err() == nil {
			t.Errorf("subscription %d still live after the lease was lost", i)
		}
	}
	if st := c.Stats(); st.CheckpointConflicts != 1 || st.Held != 0 {
		t.Fatalf("stats after the refused checkpoint: %+v", st)
	}
}

// emptyCounter is a recorder that counts calls with no records.
type emptyCounter struct {
	*recorder
	empty int
}

func (p *emptyCounter) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	if len(in.Records) == 0 {
		p.mu.Lock()
		p.empty++
		p.mu.Unlock()
	}
	return p.recorder.ProcessRecords(ctx, in)
}

// TestFanOutResubscribes: subscriptions that end every 300 ms while
// records arrive are replaced after their last continuation, so every
// record is processed exactly once; events without records (every 50 ms
// here) never reach the processor.
func TestFanOutResubscribes(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithSubscriptionTimings(300*time.Millisecond, 50*time.Millisecond))
	kc := srv.Client(t)
	createStream(t, kc, "r", 2)
	var mu sync.Mutex
	var ctxs []context.Context
	r := consumer.NewFanOutRetriever(func() consumer.FanOutClient {
		return watchedClient{Client: srv.NewClient(), mu: &mu, ctxs: &ctxs}
	}, "r", "app-efo")
	p := &emptyCounter{recorder: newRecorder()}
	c, err := consumer.New(kc, "r", "app", p, options(t, "w1", consumer.WithRetriever(r), consumer.LeaseDuration(time.Hour))...)
	if err != nil {
		t.Fatal(err)
	}
	stop := worker(t, c)
	const n = 120
	for i := range n {
		put(t, kc, "r", i, i+1)
		time.Sleep(15 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "every record processed", func() bool { d, _ := p.count(); return d == n })
	time.Sleep(300 * time.Millisecond) // heartbeats only
	stop()
	if d, total := p.count(); d != n || total != n {
		t.Fatalf("%d deliveries of %d distinct records, want %d once each", total, d, n)
	}
	mu.Lock()
	subs := len(ctxs)
	mu.Unlock()
	if subs < 2*4 {
		t.Fatalf("%d subscriptions over 2 shards in about 2 s of 300 ms subscriptions", subs)
	}
	if p.empty != 0 {
		t.Fatalf("%d processor calls without records", p.empty)
	}
	t.Logf("%d subscriptions", subs)
}
