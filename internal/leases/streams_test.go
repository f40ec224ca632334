package leases

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/streams"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestOnStreams runs the lease service on the real streams service: tables
// follow a split, and go with a deleted stream.
func TestOnStreams(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	eo := mem.DefaultOptions()
	eo.Now = clk.Now
	eng := mem.New(eo)
	defer eng.Close()
	so := streams.DefaultOptions()
	so.Now = clk.Now
	so.TransitionDelay = 0
	so.IteratorKey = []byte("k")
	svc, err := streams.New(ctx, eng, so)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	name, count := "clicks", int32(2)
	if err := svc.CreateStream(ctx, &streams.CreateStreamInput{StreamName: &name, ShardCount: &count}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)

	ls := New(eng.Meta(), OnStreams(svc), Options{Now: clk.Now})
	ref := TableRef{App: "app", Stream: name}
	tbl, err := ls.CreateTable(ctx, ref, Position{})
	if err != nil {
		t.Fatal(err)
	}
	if tbl.LeaseCount != 2 || tbl.StreamARN == "" {
		t.Fatalf("table = %+v", tbl)
	}
	_, err = ls.CreateTable(ctx, TableRef{App: "app", Stream: "missing"}, Position{})
	wantCode(t, err, CodeResourceNotFound)

	shard, at := "shardId-000000000000", "85070591730234615865843651857942052864"
	if err := svc.SplitShard(ctx, &streams.SplitShardInput{StreamName: &name, ShardToSplit: &shard, NewStartingHashKey: &at}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	leases, err := ls.ListLeases(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 4 {
		t.Fatalf("%d leases after a split, want 4: %+v", len(leases), leases)
	}
	if got := leases[0]; got.LeaseKey != shard || len(got.ChildShardIds) != 2 {
		t.Fatalf("parent lease = %+v", got)
	}
	for _, l := range leases[2:] {
		if len(l.ParentShardIds) != 1 || l.ParentShardIds[0] != shard || l.Checkpoint != TrimHorizon {
			t.Fatalf("child lease = %+v", l)
		}
	}

	if err := svc.DeleteStream(ctx, &streams.DeleteStreamInput{StreamName: &name}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	_, err = ls.ListLeases(ctx, ref)
	wantCode(t, err, CodeResourceNotFound)
	if err := ls.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := eng.Meta().List(ctx, keyPrefix); len(left) != 0 {
		t.Fatalf("%d lease keys left after the stream went", len(left))
	}
}
