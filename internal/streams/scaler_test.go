package streams

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestScalerOptions(t *testing.T) {
	d := DefaultScalerOptions()
	if d.SplitBytesPerSec != 512<<10 || d.SplitRecordsPerSec != 500 || d.MinShards != 4 {
		t.Fatalf("defaults %+v", d)
	}
	if got := (ScalerOptions{}).withDefaults(); got != d {
		t.Fatalf("zero options take %+v, want the defaults", got)
	}
	for name, o := range map[string]ScalerOptions{
		"min above max":           {MinShards: 8, MaxShards: 4},
		"merge above split bytes": {SplitBytesPerSec: 10, MergeBytesPerSec: 20},
		"merge above split count": {SplitRecordsPerSec: 10, MergeRecordsPerSec: 20},
	} {
		opts := DefaultOptions()
		opts.Scaler = o
		if opts.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestScalerSplitsHotAndMergesCold(t *testing.T) {
	ctx := context.Background()
	var logs syncBuffer
	e := newEnv(t, func(o *Options) {
		o.Scaler = ScalerOptions{
			Window: time.Hour, Cooldown: 5 * time.Minute,
			SplitRecordsPerSec: 10, MergeRecordsPerSec: 5,
			SplitBytesPerSec: 1 << 30, MergeBytesPerSec: 1 << 29,
			MinShards: 4, MaxShards: 6,
		}
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	if err := e.svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("od"), StreamModeDetails: &StreamModeDetails{StreamMode: sp("ON_DEMAND")}}); err != nil {
		t.Fatal(err)
	}
	e.create("prov", 1)
	tick := func() {
		t.Helper()
		if err := e.svc.scaleTick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	open := func(name string) int { return e.meta(name).openShards() }
	write := func(name string, hash string, n int) {
		t.Helper()
		for range n {
			if _, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp(name), PartitionKey: sp("k"), ExplicitHashKey: sp(hash), Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	tick() // start a window
	// 1,200 records in a minute into shard 0 (20/s) and the provisioned stream.
	write("od", "5", 1200)
	write("prov", "5", 1200)
	e.clock.Advance(time.Minute)
	tick()
	if n := open("od"); n != 5 {
		t.Fatalf("after a hot window: %d open shards, want 5", n)
	}
	if n := open("prov"); n != 1 {
		t.Fatal("a provisioned stream was scaled")
	}
	// Still hot, and again: the second split of shard 0's children is
	// bounded by MaxShards.
	write("od", "5", 1200)
	write("od", "9", 1200)
	write("od", mustAdd(half, 5), 1200)
	e.clock.Advance(time.Minute)
	tick()
	if n := open("od"); n != 6 {
		t.Fatalf("after a second hot window: %d open shards, want 6 (MaxShards)", n)
	}
	// Cold now, but within the cool-down: no merge.
	e.clock.Advance(time.Minute)
	tick()
	if n := open("od"); n != 6 {
		t.Fatalf("merged within the cool-down: %d open", n)
	}
	// After the cool-down, cold neighbours merge, down to MinShards.
	e.clock.Advance(5 * time.Minute)
	tick()
	if n := open("od"); n != 4 {
		t.Fatalf("after the cool-down: %d open shards, want 4", n)
	}
	e.clock.Advance(10 * time.Minute)
	tick()
	if n := open("od"); n != 4 {
		t.Fatalf("merged below MinShards: %d open", n)
	}
	checkLineage(t, e.meta("od"))
	got := readLineage(t, e, "od")
	if len(got["k"]) != 4800 {
		t.Fatalf("read %d records, wrote 4800", len(got["k"]))
	}
	l := logs.String()
	if !strings.Contains(l, "on-demand scaling: split hot shards") || !strings.Contains(l, "on-demand scaling: merge cold shards") {
		t.Fatalf("decisions not logged:\n%s", l)
	}
}

// TestScalerReshardsAtEndOfUpdating: the on-demand scaler's splits follow
// the rule of SplitShard: UPDATING first, the new shards when it ends.
func TestScalerReshardsAtEndOfUpdating(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) {
		o.TransitionDelay = time.Second
		o.Scaler = ScalerOptions{
			Window: time.Hour, Cooldown: time.Hour,
			SplitRecordsPerSec: 10, MergeRecordsPerSec: 5,
			SplitBytesPerSec: 1 << 30, MergeBytesPerSec: 1 << 29,
			MinShards: 4, MaxShards: 8,
		}
	})
	if err := e.svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("od"), StreamModeDetails: &StreamModeDetails{StreamMode: sp("ON_DEMAND")}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	summary := func() (string, int32) {
		t.Helper()
		out, err := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("od")})
		if err != nil {
			t.Fatal(err)
		}
		return out.StreamDescriptionSummary.StreamStatus, out.StreamDescriptionSummary.OpenShardCount
	}
	if err := e.svc.scaleTick(ctx); err != nil {
		t.Fatal(err)
	}
	for range 1200 {
		if _, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("od"), PartitionKey: sp("k"), ExplicitHashKey: sp("5"), Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(time.Minute)
	if err := e.svc.scaleTick(ctx); err != nil {
		t.Fatal(err)
	}
	if status, open := summary(); status != statusUpdating || open != 4 {
		t.Fatalf("after the scaler's decision: %s with %d open shards, want UPDATING with 4", status, open)
	}
	putHot := func() string {
		t.Helper()
		out, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("od"), PartitionKey: sp("k"), ExplicitHashKey: sp("5"), Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		return out.ShardId
	}
	if id := putHot(); id != "shardId-000000000000" {
		t.Fatalf("write while UPDATING went to %s, want the hot shard", id)
	}
	e.clock.Advance(time.Second)
	if status, open := summary(); status != statusActive || open != 5 {
		t.Fatalf("after UPDATING: %s with %d open shards, want ACTIVE with 5", status, open)
	}
	if id := putHot(); id != "shardId-000000000004" {
		t.Fatalf("write after UPDATING went to %s, want the hot shard's lower child", id)
	}
	checkLineage(t, e.meta("od"))
}
