package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/goleak"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/runneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a processor that remembers every record it was given and
// checkpoints after each batch.
type recorder struct {
	mu       sync.Mutex
	seen     map[string]int // data -> deliveries
	inits    map[string]string
	panicOn  string // panic once on the record with this data
	panicked bool
	lost     []string
}

func newRecorder() *recorder {
	return &recorder{seen: map[string]int{}, inits: map[string]string{}}
}

func (p *recorder) Initialize(ctx context.Context, in consumer.InitInput) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inits[in.ShardID] = in.Checkpoint
	return nil
}

func (p *recorder) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	p.mu.Lock()
	// A batch that panics counts none of its records, wherever in the
	// batch the bad record is.
	for _, r := range in.Records {
		if string(r.Data) == p.panicOn && !p.panicked {
			p.panicked = true
			p.mu.Unlock()
			panic("processor bug")
		}
	}
	for _, r := range in.Records {
		p.seen[string(r.Data)]++
	}
	p.mu.Unlock()
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *recorder) ShardEnded(ctx context.Context, cp *consumer.Checkpointer) error { return nil }

func (p *recorder) LeaseLost(ctx context.Context, shardID string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lost = append(p.lost, shardID)
	return nil
}

func (p *recorder) count() (distinct, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, n := range p.seen {
		total += n
	}
	return len(p.seen), total
}

func createStream(t *testing.T, c *kinesis.Client, name string, shards int32) {
	t.Helper()
	if _, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
}

func put(t *testing.T, c *kinesis.Client, stream string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String(stream),
			PartitionKey: aws.String(fmt.Sprint("key-", i)), Data: []byte(fmt.Sprint("record-", i))}); err != nil {
			t.Fatal(err)
		}
	}
}

// worker runs a consumer until the returned stop is called.
func worker(t *testing.T, c *consumer.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return nil
}

func options(t *testing.T, id string, extra ...consumer.Option) []consumer.Option {
	opts := []consumer.Option{consumer.WorkerID(id), consumer.LeaseDuration(600 * time.Millisecond), consumer.IdleTime(20 * time.Millisecond)}
	if l := testLogger(t); l != nil {
		opts = append(opts, consumer.Logger(l))
	}
	return append(opts, extra...)
}

// TestResumeAfterCheckpoint: a worker processes everything, stops, and the
// next worker starts after its checkpoints, delivering only new records.
func TestResumeAfterCheckpoint(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	createStream(t, kc, "s", 2)
	put(t, kc, "s", 0, 50)

	p1 := newRecorder()
	c1, err := consumer.New(kc, "s", "app", p1, options(t, "w1")...)
	if err != nil {
		t.Fatal(err)
	}
	stop := worker(t, c1)
	eventually(t, 10*time.Second, "50 records processed", func() bool { d, _ := p1.count(); return d == 50 })
	stop()

	put(t, kc, "s", 50, 60)
	p2 := newRecorder()
	c2, err := consumer.New(kc, "s", "app", p2, options(t, "w2")...)
	if err != nil {
		t.Fatal(err)
	}
	stop = worker(t, c2)
	eventually(t, 10*time.Second, "10 new records processed", func() bool { d, _ := p2.count(); return d == 10 })
	time.Sleep(100 * time.Millisecond)
	stop()
	for i := range 60 {
		want := 0
		if i >= 50 {
			want = 1
		}
		if n := p2.seen[fmt.Sprint("record-", i)]; n != want {
			t.Fatalf("record-%d delivered %d times to the second worker, want %d", i, n, want)
		}
	}
	if _, total := p1.count(); total != 50 {
		t.Fatalf("first worker got %d deliveries of 50 records", total)
	}
}

// TestFastStart: three workers on a 64-shard stream hold all shards evenly
// within two lease periods.
func TestFastStart(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	createStream(t, kc, "wide", 64)
	const lease = 2 * time.Second
	var cs []*consumer.Consumer
	for i := range 3 {
		c, err := consumer.New(srv.NewClient(), "wide", "app", newRecorder(), options(t, fmt.Sprint("w", i), consumer.LeaseDuration(lease), consumer.IdleTime(time.Second))...)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	start := time.Now()
	for _, c := range cs {
		worker(t, c)
	}
	even := func() bool {
		owners := map[string]bool{}
		for _, c := range cs {
			ids := c.Shards()
			if len(ids) < 21 || len(ids) > 22 {
				return false
			}
			for _, id := range ids {
				owners[id] = true
			}
		}
		return len(owners) == 64
	}
	counts := func() string {
		return fmt.Sprint(len(cs[0].Shards()), " ", len(cs[1].Shards()), " ", len(cs[2].Shards()))
	}
	// The target is 2 lease periods (docs/BENCHMARKS.md has the figures);
	// the test allows 4, so a loaded machine under the race detector does
	// not fail it, and logs how long it took.
	eventually(t, 4*lease, "64 shards spread 21-22 over 3 workers", func() bool {
		if even() {
			return true
		}
		if time.Since(start) > 4*lease-20*time.Millisecond {
			t.Logf("held: %s", counts())
		}
		return false
	})
	took := time.Since(start)
	t.Logf("balanced after %v (target: within %v)", took.Round(time.Millisecond), 2*lease)
	// And it stays so: nobody steals once balanced.
	time.Sleep(lease)
	if !even() {
		t.Fatalf("balance did not hold: %v %v %v", len(cs[0].Shards()), len(cs[1].Shards()), len(cs[2].Shards()))
	}
	for i, c := range cs {
		t.Logf("w%d: %+v", i, c.Stats())
	}
}

// TestProcessorPanic: a panic restarts the shard from its last checkpoint;
// the worker goes on and nothing is skipped.
func TestProcessorPanic(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	createStream(t, kc, "p", 1)
	put(t, kc, "p", 0, 10)
	p := newRecorder()
	p.panicOn = "record-15"
	c, err := consumer.New(kc, "p", "app", p, options(t, "w1", consumer.MaxRecords(5))...)
	if err != nil {
		t.Fatal(err)
	}
	worker(t, c)
	eventually(t, 5*time.Second, "first 10 processed", func() bool { d, _ := p.count(); return d == 10 })
	put(t, kc, "p", 10, 20)
	eventually(t, 10*time.Second, "all 20 processed", func() bool { d, _ := p.count(); return d == 20 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.panicked {
		t.Fatal("the processor never panicked")
	}
	for i := range 20 {
		if n := p.seen[fmt.Sprint("record-", i)]; n != 1 {
			t.Errorf("record-%d delivered %d times, want once (the panicking batch was never counted)", i, n)
		}
	}
}

// fenced is a lease store whose checkpoints start failing as another
// worker's would after its lease was taken: it takes the lease itself, with
// a second worker id, before passing the checkpoint on.
type stealingStore struct {
	consumer.LeaseStore
	once sync.Once
	err  error
}

func (s *stealingStore) Checkpoint(ctx context.Context, key, owner string, counter uint64, seq string, sub uint64) (consumer.Lease, error) {
	s.once.Do(func() {
		_, s.err = s.LeaseStore.Take(ctx, key, "thief", counter)
	})
	if s.err != nil {
		return consumer.Lease{}, s.err
	}
	return s.LeaseStore.Checkpoint(ctx, key, owner, counter, seq, sub)
}

// TestCheckpointAfterLostLease: a checkpoint under a lease another worker
// took is refused, the shard stops and the processor hears LeaseLost.
func TestCheckpointAfterLostLease(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	createStream(t, kc, "l", 1)
	put(t, kc, "l", 0, 3)
	base, err := consumer.NewRunnelStore(kc.Options(), "l", "app")
	if err != nil {
		t.Fatal(err)
	}
	p := newRecorder()
	c, err := consumer.New(kc, "l", "app", p, options(t, "w1", consumer.Leases(&stealingStore{LeaseStore: base}), consumer.LeaseDuration(time.Hour))...)
	if err != nil {
		t.Fatal(err)
	}
	worker(t, c)
	eventually(t, 5*time.Second, "lease lost", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return len(p.lost) == 1 })
	st := c.Stats()
	if st.CheckpointConflicts != 1 || st.Held != 0 {
		t.Fatalf("stats after the refused checkpoint: %+v", st)
	}
	ls, err := base.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ls[0].Owner != "thief" || ls[0].Checkpoint != "TRIM_HORIZON" {
		t.Fatalf("lease after the refused checkpoint: %+v", ls[0])
	}
	var conflict *consumer.APIError
	if _, err := base.Checkpoint(context.Background(), ls[0].Key, "w1", ls[0].Counter, "1", 0); !errors.As(err, &conflict) || !errors.Is(err, consumer.ErrLeaseConflict) {
		t.Fatalf("checkpoint by a worker that is not the owner: %v", err)
	}
}

// halfway checkpoints one record in the middle of its first batch, then
// stops checkpointing.
type halfway struct {
	recorder
	once sync.Once
}

func (p *halfway) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	var err error
	p.once.Do(func() {
		p.mu.Lock()
		for _, r := range in.Records {
			p.seen[string(r.Data)]++
		}
		p.mu.Unlock()
		mid := in.Records[len(in.Records)/2]
		err = in.Checkpointer.CheckpointAt(ctx, mid.SequenceNumber, mid.SubSequenceNumber)
	})
	return err
}

// TestCheckpointOneRecord: a checkpoint at one record of a batch makes the
// next worker start right after that record.
func TestCheckpointOneRecord(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	createStream(t, kc, "one", 1)
	put(t, kc, "one", 0, 10)
	p1 := &halfway{recorder: *newRecorder()}
	c1, err := consumer.New(kc, "one", "app", p1, options(t, "w1")...)
	if err != nil {
		t.Fatal(err)
	}
	stop := worker(t, c1)
	eventually(t, 5*time.Second, "first batch", func() bool { d, _ := p1.count(); return d == 10 })
	stop()
	p2 := newRecorder()
	c2, err := consumer.New(kc, "one", "app", p2, options(t, "w2")...)
	if err != nil {
		t.Fatal(err)
	}
	worker(t, c2)
	eventually(t, 5*time.Second, "records after the checkpoint", func() bool { d, _ := p2.count(); return d == 4 })
	time.Sleep(100 * time.Millisecond)
	p2.mu.Lock()
	defer p2.mu.Unlock()
	for i := range 10 {
		if want := i > 5; (p2.seen[fmt.Sprint("record-", i)] == 1) != want || len(p2.seen) != 4 {
			t.Fatalf("second worker got %v; want records 6-9 once", p2.seen)
		}
	}
	if p2.inits["shardId-000000000000"] == "TRIM_HORIZON" {
		t.Fatal("second worker started at TRIM_HORIZON")
	}
}

// countingTransport counts the GetRecords requests that pass it, by
// whether the SDK sent them.
type countingTransport struct {
	mu       sync.Mutex
	sdk, own int
}

func (c *countingTransport) Do(r *http.Request) (*http.Response, error) {
	if r.Header.Get("X-Amz-Target") == "Kinesis_20131202.GetRecords" {
		c.mu.Lock()
		if strings.Contains(r.Header.Get("User-Agent"), "aws-sdk-go-v2") {
			c.sdk++
		} else {
			c.own++
		}
		c.mu.Unlock()
	}
	return http.DefaultClient.Do(r)
}

// TestRetrievalPaths: a worker on a *kinesis.Client sends GetRecords
// itself unless SDKRetrieval is given, and reads the same records either
// way.
func TestRetrievalPaths(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	createStream(t, kc, "s", 2)
	put(t, kc, "s", 0, 40)
	for _, sdk := range []bool{false, true} {
		t.Run(fmt.Sprint("sdk=", sdk), func(t *testing.T) {
			counter := &countingTransport{}
			opts := kc.Options()
			opts.HTTPClient = counter
			client := kinesis.New(opts)
			p := newRecorder()
			extra := []consumer.Option{}
			if sdk {
				extra = append(extra, consumer.SDKRetrieval())
			}
			c, err := consumer.New(client, "s", fmt.Sprint("app-", sdk), p, options(t, "w", extra...)...)
			if err != nil {
				t.Fatal(err)
			}
			stop := worker(t, c)
			eventually(t, 10*time.Second, "40 records processed", func() bool { d, _ := p.count(); return d == 40 })
			stop()
			if _, total := p.count(); total != 40 {
				t.Fatalf("%d deliveries of 40 records", total)
			}
			counter.mu.Lock()
			defer counter.mu.Unlock()
			if sdk && (counter.sdk == 0 || counter.own != 0) || !sdk && (counter.own == 0 || counter.sdk != 0) {
				t.Fatalf("GetRecords requests: %d by the SDK, %d by the worker", counter.sdk, counter.own)
			}
		})
	}
}
