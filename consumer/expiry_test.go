package consumer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/runneltest"
)

// nothing is a processor that ignores everything.
type nothing struct{}

func (nothing) Initialize(context.Context, InitInput) error        { return nil }
func (nothing) ProcessRecords(context.Context, ProcessInput) error { return nil }
func (nothing) ShardEnded(context.Context, *Checkpointer) error    { return nil }
func (nothing) LeaseLost(context.Context, string) error            { return nil }

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// TestExpiryByCounter: a lease held by another worker is taken only once its
// counter has stayed the same for a lease duration on the worker's clock,
// and a renewal in between starts the wait again.
func TestExpiryByCounter(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("e"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	store, err := NewRunnelStore(kc.Options(), "e", "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Prepare(ctx, TrimHorizon); err != nil {
		t.Fatal(err)
	}
	ls, _ := store.List(ctx)
	ghost, err := store.Take(ctx, ls[0].Key, "ghost", ls[0].Counter)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c, err := New(kc, "e", "app", nothing{}, LeaseDuration(time.Hour), WorkerID("w"), IdleTime(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c.now, c.initial = clock.now, TrimHorizon
	readCtx, stop := context.WithCancel(ctx)
	defer func() {
		stop()
		c.shards.Wait()
	}()
	scan := func() int {
		c.scan(readCtx, ctx)
		return len(c.Shards())
	}
	if scan() != 0 {
		t.Fatal("took a lease seen for the first time")
	}
	clock.advance(59 * time.Minute)
	if scan() != 0 {
		t.Fatal("took a lease before its counter was unchanged for a lease duration")
	}
	// The ghost renews: the wait starts again.
	if _, _, err := store.Renew(ctx, "ghost", []Lease{ghost}); err != nil {
		t.Fatal(err)
	}
	scan()
	clock.advance(time.Hour - 200*time.Millisecond)
	if got := c.scan(readCtx, ctx); len(c.Shards()) != 0 || got != 201*time.Millisecond {
		t.Fatalf("200ms before expiry: held %v, next scan in %v; want none, and a scan right at expiry", c.Shards(), got)
	}
	clock.advance(200 * time.Millisecond)
	if scan() != 1 {
		t.Fatal("did not take a lease unchanged for a lease duration")
	}
	if st := c.Stats(); st.Taken != 1 || st.Stolen != 0 {
		t.Fatalf("stats %+v: an expired lease is taken, not stolen", st)
	}
}
