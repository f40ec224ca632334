package streams

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/jetstream"
)

// sharedServices starts n services, each on an engine of its own over one
// embedded NATS node: gateways sharing a cluster.
func sharedServices(t *testing.T, n int, tune func(*Options)) []*Service {
	t.Helper()
	node, err := jetstream.StartNode(jetstream.NodeOptions{Name: "shared", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { node.Shutdown(); node.WaitForShutdown() })
	var out []*Service
	for range n {
		nc, err := nats.Connect(node.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		eo := jetstream.DefaultOptions()
		eo.Replicas = 1
		eng, err := jetstream.Open(context.Background(), nc, eo)
		if err != nil {
			t.Fatal(err)
		}
		opts := DefaultOptions()
		opts.TransitionDelay = 0
		if tune != nil {
			tune(&opts)
		}
		svc, err := New(context.Background(), eng, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close(); eng.Close(); nc.Close() })
		out = append(out, svc)
	}
	return out
}

func TestSharedEngineCachesFollow(t *testing.T) {
	// With caches trusted for an hour, only the watch can tell b of a's
	// change.
	old := cacheTTL
	cacheTTL = time.Hour
	t.Cleanup(func() { cacheTTL = old })
	svcs := sharedServices(t, 2, nil)
	a, b := svcs[0], svcs[1]
	ctx := context.Background()
	name := "followed"
	if err := a.CreateStream(ctx, &CreateStreamInput{StreamName: &name, ShardCount: ptr(int32(1))}); err != nil {
		t.Fatal(err)
	}
	retention := func(s *Service) int32 {
		out, err := s.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: &name})
		if err != nil {
			t.Fatal(err)
		}
		return out.StreamDescriptionSummary.RetentionPeriodHours
	}
	if got := retention(b); got != 24 {
		t.Fatalf("b sees retention %d, want 24", got)
	}
	if err := a.IncreaseStreamRetentionPeriod(ctx, &IncreaseStreamRetentionPeriodInput{StreamName: &name, RetentionPeriodHours: ptr(int32(48))}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for retention(b) != 48 {
		if time.Now().After(deadline) {
			t.Fatal("b still sees the old retention 20 s after a changed it")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSharedEngineOneLeader(t *testing.T) {
	svcs := sharedServices(t, 3, nil)
	leaders := func() (n int, who *Service) {
		for _, s := range svcs {
			if s.isLeader() {
				n++
				who = s
			}
		}
		return n, who
	}
	deadline := time.Now().Add(30 * time.Second)
	var first *Service
	for {
		n, who := leaders()
		if n > 1 {
			t.Fatalf("%d leaders at once", n)
		}
		if n == 1 {
			first = who
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader elected within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The leader closes: another takes over, without waiting for the
	// lease to expire.
	first.Close()
	rest := svcs[:0:0]
	for _, s := range svcs {
		if s != first {
			rest = append(rest, s)
		}
	}
	svcs = rest
	deadline = time.Now().Add(30 * time.Second)
	for {
		n, _ := leaders()
		if n > 1 {
			t.Fatalf("%d leaders at once", n)
		}
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no new leader within 30 s of the old one closing")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSharedEngineRatesAddUp(t *testing.T) {
	svcs := sharedServices(t, 2, nil)
	a, b := svcs[0], svcs[1]
	ctx := context.Background()
	name := "counted"
	if err := a.CreateStream(ctx, &CreateStreamInput{StreamName: &name, ShardCount: ptr(int32(1))}); err != nil {
		t.Fatal(err)
	}
	put := func(s *Service, n int) {
		for range n {
			if _, err := s.PutRecord(ctx, &PutRecordInput{StreamName: &name, PartitionKey: ptr("k"), Data: []byte("0123456789")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(a, 3)
	put(b, 5)
	// b publishes its window; a (whatever its role) adds b's counts to
	// its own.
	st, err := b.cached(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]map[int][2]int64{st.meta.ID: {0: {st.shards[0].inBytes.Load(), st.shards[0].inRecords.Load()}}}
	if err := b.publishRates(ctx, windowRates{End: time.Now().UnixMilli(), Secs: 1, Streams: counts}); err != nil {
		t.Fatal(err)
	}
	others, err := a.othersRates(ctx, time.Now().Add(-time.Minute).UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	if got := others[st.meta.ID][0][1]; got != 5 {
		t.Fatalf("a sees %d records written through b, want 5", got)
	}
}

// A deletion asked of a service that is not the leader is finished by the
// leader's reaper, the only one that reaps.
func TestSharedEngineLeaderReaps(t *testing.T) {
	svcs := sharedServices(t, 2, nil)
	ctx := context.Background()
	var leader, other *Service
	deadline := time.Now().Add(30 * time.Second)
	for leader == nil {
		for i, s := range svcs {
			if s.isLeader() {
				leader, other = s, svcs[1-i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no leader elected within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	name := "reaped"
	if err := other.CreateStream(ctx, &CreateStreamInput{StreamName: &name, ShardCount: ptr(int32(2))}); err != nil {
		t.Fatal(err)
	}
	if err := other.DeleteStream(ctx, &DeleteStreamInput{StreamName: &name}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		logs, err := other.eng.ListLogs(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = leader.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: &name})
		if len(logs) == 0 && err != nil {
			return // gone, logs and all
		}
		if time.Now().After(deadline) {
			t.Fatalf("20 s after DeleteStream: logs %v, describe error %v", logs, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSharedEngineLateAppendNotSkipped: a gateway that has not yet seen a
// shard close may append to it after the closing compare-and-set read its
// end, until the log is sealed. A reader on another gateway that reaches
// the end in between must not be told the shard ended before such records.
// heldReshard returns two services sharing one engine and a one-shard
// stream name created through a; hold(f) makes the next reshard run f
// after its switch is stored and before the parent's log is sealed.
func heldReshard(t *testing.T, name string) (a, b *Service, hold func(f func())) {
	t.Helper()
	var (
		during func()
		armed  atomic.Bool
	)
	svcs := sharedServices(t, 2, func(o *Options) {
		o.CrashPoint = func(p string) {
			if p == CrashReshardAfterCAS && armed.CompareAndSwap(true, false) {
				during()
			}
		}
	})
	a, b = svcs[0], svcs[1]
	if err := a.CreateStream(context.Background(), &CreateStreamInput{StreamName: &name, ShardCount: ptr(int32(1))}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, name, statusActive)
	waitStatus(t, b, name, statusActive)
	return a, b, func(f func()) { during = f; armed.Store(true) }
}

// closedParent waits until s sees shard 0 of stream name closed and
// returns its log; nil (with the test failed) if it does not within 20 s.
func closedParent(t *testing.T, s *Service, name string) engine.Log {
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, _, err := s.live(ctx, name)
		if err == nil && st.meta.Shards[0].Closed != 0 {
			l, err := s.eng.Log(ctx, st.shards[0].logName)
			if err != nil {
				t.Error(err)
			}
			return l
		}
		if time.Now().After(deadline) {
			t.Error("the shard was not seen closed within 20 s")
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSharedEngineLateAppendNotSkipped(t *testing.T) {
	name := "late"
	a, b, hold := heldReshard(t, name)
	ctx := context.Background()
	for i := range 5 {
		if _, err := b.PutRecord(ctx, &PutRecordInput{StreamName: &name, PartitionKey: ptr(fmt.Sprint(i)), Data: []byte("before")}); err != nil {
			t.Fatal(err)
		}
	}
	sid := shardID(0)
	it, err := b.GetShardIterator(ctx, &GetShardIteratorInput{StreamName: &name, ShardId: &sid, ShardIteratorType: ptr("TRIM_HORIZON")})
	if err != nil {
		t.Fatal(err)
	}
	iter := it.ShardIterator
	var got []string
	var ended []ChildShard
	read := func() { // until the records run out or the shard ends
		t.Helper()
		for iter != nil {
			out, err := b.GetRecords(ctx, &GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				got = append(got, string(r.Data))
			}
			iter = out.NextShardIterator
			if iter == nil {
				ended = out.ChildShards
			}
			if len(out.Records) == 0 {
				return
			}
		}
	}
	read()
	if len(got) != 5 {
		t.Fatalf("read %d records before the split, want 5", len(got))
	}
	var parent engine.Log
	hold(func() {
		// The shard is closed in the metadata, its log not yet sealed. b
		// learns of it and its reader reaches the end; then a gateway with
		// an older view appends (here, straight to the log).
		if parent = closedParent(t, b, name); parent == nil {
			return
		}
		read()
		_, err := parent.Append(ctx, []engine.Record{{Key: []byte("k"), Value: []byte("late")}})
		if err != nil && !errors.Is(err, engine.ErrSealed) {
			t.Error(err)
		}
	})
	if _, err := a.UpdateShardCount(ctx, &UpdateShardCountInput{StreamName: &name, TargetShardCount: ptr(int32(2)), ScalingType: ptr("UNIFORM_SCALING")}); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, a, name, statusActive)
	for deadline := time.Now().Add(20 * time.Second); iter != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the reader did not reach the closed shard's end within 20 s")
		}
		read()
	}
	stored, err := parent.Read(ctx, 0, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(stored) {
		t.Fatalf("the reader was told the shard ended after %d records %q; it holds %d", len(got), got, len(stored))
	}
	if len(ended) != 2 {
		t.Fatalf("the shard ended with children %v, want 2", ended)
	}
	// Every gateway's metadata ends the shard after its last record.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st, _, err := b.live(ctx, name)
		if err == nil && st.meta.Shards[0].EndOffset == uint64(len(stored)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b's metadata ends the closed shard at %d, want %d", st.meta.Shards[0].EndOffset, len(stored))
		}
	}
}

// TestSharedEngineChildAfterParentSealed: a gateway that writes to a
// child shard first seals its parent's log, so that a gateway with an older
// view of the shards can no longer store a record in the parent after one
// stored in a child: a writer whose calls go to both would otherwise see a
// later record of a key read (parent first) before an earlier one.
func TestSharedEngineChildAfterParentSealed(t *testing.T) {
	name := "order"
	a, b, hold := heldReshard(t, name)
	ctx := context.Background()
	if _, err := b.PutRecord(ctx, &PutRecordInput{StreamName: &name, PartitionKey: ptr("k"), Data: []byte("first")}); err != nil {
		t.Fatal(err)
	}
	var lateErr error
	var childShard string
	hold(func() {
		// The shards are switched in the metadata; the resharding gateway
		// has not sealed the parent yet. b, which sees the switch, writes
		// to a child; then a gateway with the older view writes to the
		// parent (here, straight to its log).
		parent := closedParent(t, b, name)
		if parent == nil {
			return
		}
		out, err := b.PutRecord(ctx, &PutRecordInput{StreamName: &name, PartitionKey: ptr("k"), Data: []byte("second")})
		if err != nil {
			t.Error(err)
			return
		}
		childShard = out.ShardId
		_, lateErr = parent.Append(ctx, []engine.Record{{Key: []byte("\x00k"), Value: []byte("third")}})
	})
	if _, err := a.UpdateShardCount(ctx, &UpdateShardCountInput{StreamName: &name, TargetShardCount: ptr(int32(2)), ScalingType: ptr("UNIFORM_SCALING")}); err != nil {
		t.Fatal(err)
	}
	if childShard == "" || childShard == shardID(0) {
		t.Fatalf("the write after the switch went to %q, want a child", childShard)
	}
	if !errors.Is(lateErr, engine.ErrSealed) {
		t.Fatalf("a write to the parent after a child's was answered %v, want the log sealed", lateErr)
	}
}

// waitStatus waits until s describes stream name with status.
func waitStatus(t *testing.T, s *Service, name, status string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := s.DescribeStreamSummary(context.Background(), &DescribeStreamSummaryInput{StreamName: &name})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s not %s within 20 s (%v)", name, status, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
