package streams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/mem"
)

// metaWith returns stream metadata with n even open shards created at t0.
func metaWith(n int, t0 int64) *streamMeta {
	m := &streamMeta{Name: "s", ID: "x", Created: t0}
	for _, r := range evenRanges(n) {
		m.Shards = append(m.Shards, shardMeta{Start: r[0].String(), End: r[1].String(), Created: t0})
	}
	return m
}

// checkLineage verifies the invariants of a stream's shard list: children
// cover exactly their parents' ranges, are created when their parents close
// and at least a second after them, and at every instant the shards open then
// tile the hash space once.
func checkLineage(t *testing.T, m *streamMeta) {
	t.Helper()
	children := map[int][]int{}
	for i, sm := range m.Shards {
		if len(sm.Parents) > 2 {
			t.Fatalf("shard %d has %d parents", i, len(sm.Parents))
		}
		for _, p := range sm.Parents {
			if p >= i {
				t.Fatalf("shard %d has parent %d created after it", i, p)
			}
			children[p] = append(children[p], i)
			ps := m.Shards[p]
			if ps.Closed == 0 || ps.Closed != sm.Created {
				t.Fatalf("parent %d closed at %d, child %d created at %d", p, ps.Closed, i, sm.Created)
			}
			if sm.Created/1000 <= ps.Created/1000 {
				t.Fatalf("child %d created in second %d, parent %d in %d", i, sm.Created/1000, p, ps.Created/1000)
			}
		}
	}
	for i, sm := range m.Shards {
		if (sm.Closed != 0) != (len(children[i]) > 0) {
			t.Fatalf("shard %d closed=%d with children %v", i, sm.Closed, children[i])
		}
	}
	// Tiling at every event time, and just before each.
	times := map[int64]bool{}
	for _, sm := range m.Shards {
		times[sm.Created] = true
		times[sm.Created-1] = true
		if sm.Closed != 0 {
			times[sm.Closed] = true
		}
	}
	for at := range times {
		var open [][2]hashKey
		for _, sm := range m.Shards {
			if sm.Created <= at && (sm.Closed == 0 || sm.Closed > at) {
				s, _ := parseHashKey(sm.Start)
				e, _ := parseHashKey(sm.End)
				open = append(open, [2]hashKey{s, e})
			}
		}
		if len(open) == 0 && at < m.Shards[0].Created {
			continue
		}
		checkTiles(t, open, fmt.Sprintf("at %d", at))
	}
}

// checkTiles verifies that ranges cover [0, 2^128-1] exactly once.
func checkTiles(t *testing.T, ranges [][2]hashKey, what string) {
	t.Helper()
	sort.Slice(ranges, func(a, b int) bool { return ranges[a][0].cmp(ranges[b][0]) < 0 })
	next := hashKey{}
	for i, r := range ranges {
		if r[0] != next || r[1].cmp(r[0]) < 0 {
			t.Fatalf("%s: range %d starts at %s, want %s", what, i, r[0], next)
		}
		if r[1] == maxHashKey {
			if i != len(ranges)-1 {
				t.Fatalf("%s: ranges after the end", what)
			}
			return
		}
		next = r[1].add(1)
	}
	t.Fatalf("%s: space not covered to the end (next %s)", what, next)
}

func TestUniformPlan(t *testing.T) {
	const t0 = 1_700_000_000_000
	check := func(t *testing.T, m *streamMeta, target int) {
		t.Helper()
		ops := uniformPlan(m, target)
		applyPlan(m, ops, t0+5000, nil)
		var got [][2]string
		for _, r := range openRanges(m) {
			got = append(got, [2]string{r.start.String(), r.end.String()})
		}
		want := evenRanges(target)
		if len(got) != len(want) {
			t.Fatalf("%d open shards, want %d", len(got), target)
		}
		for i := range want {
			if got[i][0] != want[i][0].String() || got[i][1] != want[i][1].String() {
				t.Fatalf("open shard %d is %v, want %v..%v", i, got[i], want[i][0], want[i][1])
			}
		}
		checkLineage(t, m)
	}
	for n := 1; n <= 24; n++ {
		for target := (n + 1) / 2; target <= 2*n; target++ {
			t.Run(fmt.Sprintf("%d-to-%d", n, target), func(t *testing.T) {
				check(t, metaWith(n, t0), target)
			})
		}
	}
	for _, tc := range [][2]int{{100, 50}, {100, 200}, {100, 137}, {500, 999}, {333, 167}} {
		t.Run(fmt.Sprintf("%d-to-%d", tc[0], tc[1]), func(t *testing.T) {
			check(t, metaWith(tc[0], t0), tc[1])
		})
	}
	// From uneven shards (after manual splits and merges) too.
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 30 {
		m := metaWith(1+rng.IntN(6), t0)
		for range rng.IntN(8) {
			p := newPlanner(m)
			i := rng.IntN(len(p.open))
			if rng.IntN(2) == 0 && i+1 < len(p.open) {
				p.merge(i, true)
			} else if at, ok := splitPoint(p.open[i].start, p.open[i].end); ok {
				p.split(i, at)
			}
			applyPlan(m, p.ops, t0, nil)
		}
		n := m.openShards()
		target := (n+1)/2 + rng.IntN(2*n-(n+1)/2+1)
		t.Run(fmt.Sprintf("uneven-%d-%d-to-%d", trial, n, target), func(t *testing.T) { check(t, m, target) })
	}
	// Already even at the target: nothing to do.
	if ops := uniformPlan(metaWith(7, t0), 7); len(ops) != 0 {
		t.Fatalf("7 to 7: %d ops", len(ops))
	}
}

func TestSplitPoint(t *testing.T) {
	for _, tc := range []struct{ start, end, want string }{
		{"0", "1", "1"},
		{"0", "2", "2"},
		{"0", "3", "2"},
		{"10", "20", "16"},
		{"0", "340282366920938463463374607431768211455", "170141183460469231731687303715884105728"},
	} {
		s, _ := parseHashKey(tc.start)
		e, _ := parseHashKey(tc.end)
		at, ok := splitPoint(s, e)
		if !ok || at.String() != tc.want {
			t.Errorf("splitPoint(%s, %s) = %s, want %s", tc.start, tc.end, at, tc.want)
		}
	}
	if _, ok := splitPoint(hashKey{0, 5}, hashKey{0, 5}); ok {
		t.Error("split of a single key")
	}
}

func (e *env) splitShard(name, shard, at string) error {
	return e.svc.SplitShard(context.Background(), &SplitShardInput{StreamName: &name, ShardToSplit: &shard, NewStartingHashKey: &at})
}

func (e *env) mergeShards(name, a, b string) error {
	return e.svc.MergeShards(context.Background(), &MergeShardsInput{StreamName: &name, ShardToMerge: &a, AdjacentShardToMerge: &b})
}

func (e *env) scaleTo(name string, n int32) error {
	_, err := e.svc.UpdateShardCount(context.Background(), &UpdateShardCountInput{StreamName: &name, TargetShardCount: &n, ScalingType: sp("UNIFORM_SCALING")})
	return err
}

func (e *env) meta(name string) *streamMeta {
	e.t.Helper()
	st, err := e.svc.fetch(context.Background(), name)
	if err != nil || st == nil {
		e.t.Fatalf("fetch %s: %v", name, err)
	}
	return st.meta
}

const half = "170141183460469231731687303715884105728" // 2^127

func TestSplitAndMerge(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	before := e.put("s", "k", "one")
	if err := e.splitShard("s", "shardId-000000000000", half); err != nil {
		t.Fatal(err)
	}
	ls, _ := e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s")})
	if got := shardIDs(ls.Shards); got != "0,1,2" {
		t.Fatalf("shards %s", got)
	}
	if ls.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil || *ls.Shards[1].ParentShardId != "shardId-000000000000" ||
		ls.Shards[1].HashKeyRange.EndingHashKey != "170141183460469231731687303715884105727" || ls.Shards[2].HashKeyRange.StartingHashKey != half {
		t.Fatalf("after split %+v", ls.Shards)
	}
	after := e.put("s", "k", "two")
	if after.ShardId == "shardId-000000000000" || after.SequenceNumber <= before.SequenceNumber {
		t.Fatalf("put after split %+v (before %+v)", after, before)
	}
	out := e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 0)
	if len(out.Records) != 1 || out.NextShardIterator != nil || len(out.ChildShards) != 2 {
		t.Fatalf("parent drain %+v", out)
	}
	// Naming the upper shard first is refused, as on Kinesis.
	wantErr(t, e.mergeShards("s", "shardId-000000000002", "shardId-1"), CodeInvalidArgument,
		"Shards shardId-000000000002 and shardId-000000000001 in stream s under account 000000000000 are not an adjacent pair of shards eligible for merging")
	if err := e.mergeShards("s", "shardId-1", "shardId-000000000002"); err != nil {
		t.Fatal(err)
	}
	ls, _ = e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s"), ShardFilter: &ShardFilter{Type: sp("AT_LATEST")}})
	if len(ls.Shards) != 1 || ls.Shards[0].ShardId != "shardId-000000000003" || *ls.Shards[0].ParentShardId != "shardId-000000000001" ||
		*ls.Shards[0].AdjacentParentShardId != "shardId-000000000002" || ls.Shards[0].HashKeyRange.StartingHashKey != "0" {
		t.Fatalf("after merge %+v", ls.Shards)
	}
	last := e.put("s", "k", "three")
	if last.ShardId != "shardId-000000000003" || last.SequenceNumber <= after.SequenceNumber {
		t.Fatalf("put after merge %+v", last)
	}
	checkLineage(t, e.meta("s"))
	// The closed logs are sealed.
	for _, i := range []int{0, 1, 2} {
		l, err := e.eng.Log(ctx, logName(e.meta("s").ID, i))
		if err != nil {
			t.Fatal(err)
		}
		if info, _ := l.Info(ctx); !info.Sealed {
			t.Fatalf("shard %d not sealed", i)
		}
	}
}

func TestReshardErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.ShardLimit = 20; o.ScalingsPerDay = 4 })
	e.create("s", 4) // shards 0-3
	if err := e.splitShard("s", "shardId-000000000000", "1000"); err != nil {
		t.Fatal(err)
	} // 4, 5
	if err := e.svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("od"), StreamModeDetails: &StreamModeDetails{StreamMode: sp("ON_DEMAND")}}); err != nil {
		t.Fatal(err)
	}
	r1 := e.meta("s").Shards[1]
	acct := "000000000000"
	for _, tc := range []struct {
		name string
		call func() error
		code Code
		msg  string
	}{
		{"split missing stream", func() error { return e.splitShard("nope", "0", "5") }, CodeResourceNotFound, "Stream nope under account " + acct + " not found."},
		{"split missing shard", func() error { return e.splitShard("s", "shardId-000000000042", "5") }, CodeResourceNotFound, "Could not find shard shardId-000000000042 in stream s under account " + acct + "."},
		{"split bad shard id", func() error { return e.splitShard("s", "shard-x", "5") }, CodeResourceNotFound, "Could not find shard shard-x in stream s under account " + acct + "."},
		{"split closed shard", func() error { return e.splitShard("s", "shardId-000000000000", "5") }, CodeInvalidArgument, "Shard shardId-000000000000 in stream s under account " + acct + " has already been merged or split, and thus is not eligible for merging or splitting."},
		{"split at start+1", func() error { k, _ := parseHashKey(r1.Start); return e.splitShard("s", "1", k.add(1).String()) }, CodeInvalidArgument,
			"NewStartingHashKey " + mustAdd(r1.Start, 1) + " used in SplitShard() on shard shardId-000000000001 in stream s under account " + acct + " is not both greater than one plus the shard's StartingHashKey " + r1.Start + " and less than the shard's EndingHashKey " + r1.End + "."},
		{"split at end", func() error { return e.splitShard("s", "1", r1.End) }, CodeInvalidArgument, ""},
		{"split outside", func() error { return e.splitShard("s", "1", "7") }, CodeInvalidArgument, ""},
		{"split on-demand", func() error { return e.splitShard("od", "0", "7") }, CodeValidation, "Request is invalid. Stream od under account " + acct + " is in On-Demand mode."},
		{"merge not adjacent", func() error { return e.mergeShards("s", "shardId-000000000001", "shardId-000000000003") }, CodeInvalidArgument,
			"Shards shardId-000000000001 and shardId-000000000003 in stream s under account " + acct + " are not an adjacent pair of shards eligible for merging"},
		{"merge itself", func() error { return e.mergeShards("s", "1", "1") }, CodeInvalidArgument, ""},
		{"merge closed", func() error { return e.mergeShards("s", "0", "1") }, CodeInvalidArgument, "Shard shardId-000000000000 in stream s under account " + acct + " has already been merged or split, and thus is not eligible for merging or splitting."},
		{"merge missing", func() error { return e.mergeShards("s", "1", "99") }, CodeResourceNotFound, "Could not find shard shardId-000000000099 in stream s under account " + acct + "."},
		{"merge on-demand", func() error { return e.mergeShards("od", "0", "1") }, CodeValidation, ""},
		{"scale up over double", func() error { return e.scaleTo("s", 11) }, CodeLimitExceeded, "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: 5, Target shard count: 11"},
		{"scale down below half", func() error { return e.scaleTo("s", 2) }, CodeLimitExceeded, "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: 5, Target shard count: 2"},
		{"scale over limit", func() error { return e.scaleTo("s", 21) }, CodeLimitExceeded, "Target shard count or number of open shards cannot be greater than 20. Current open shard count: 5, Target shard count: 21"},
		{"scale on-demand", func() error { return e.scaleTo("od", 5) }, CodeValidation, "Request is invalid. Stream od under account " + acct + " is in On-Demand mode."},
		{"scale bad type", func() error {
			_, err := e.svc.UpdateShardCount(ctx, &UpdateShardCountInput{StreamName: sp("s"), TargetShardCount: ip(5), ScalingType: sp("X")})
			return err
		}, CodeValidation, ""},
		{"scale no target", func() error {
			_, err := e.svc.UpdateShardCount(ctx, &UpdateShardCountInput{StreamName: sp("s"), ScalingType: sp("UNIFORM_SCALING")})
			return err
		}, CodeValidation, "1 validation error detected: Value null at 'targetShardCount' failed to satisfy constraint: Member must not be null"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), tc.code, tc.msg) })
	}

	// The account's shard limit: 4 open in od, 16 in s.
	for _, n := range []int32{10, 16} {
		if err := e.scaleTo("s", n); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, e.splitShard("s", shardID(openRanges(e.meta("s"))[0].idx), "500"), CodeLimitExceeded, "This request would exceed the shard limit for the account "+acct+" in us-east-1. Current shard count for the account: 20. Limit: 20. Number of additional shards that would have resulted from this request: 1. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.")
	wantErr(t, e.scaleTo("s", 17), CodeLimitExceeded, "Target shard count or number of open shards cannot be greater than 20. Current open shard count: 16, Target shard count: 17")

	// Scalings per rolling 24 hours.
	for _, n := range []int32{8, 9} {
		if err := e.scaleTo("s", n); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, e.scaleTo("s", 5), CodeLimitExceeded, "Stream s under account "+acct+" has been scaled 4 times in the last 24 hours; the limit is 4 per rolling 24-hour period.")
	e.clock.Advance(24*time.Hour + time.Second)
	if err := e.scaleTo("s", 5); err != nil {
		t.Fatal(err)
	}
	checkLineage(t, e.meta("s"))
}

func mustAdd(dec string, n uint64) string {
	k, _ := parseHashKey(dec)
	return k.add(n).String()
}

func TestReshardWhileUpdating(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TransitionDelay = time.Second })
	e.create("s", 2)
	e.clock.Advance(2 * time.Second)
	if err := e.splitShard("s", "0", "1000"); err != nil {
		t.Fatal(err)
	}
	inUse := "Stream s under account 000000000000 not ACTIVE, instead in state UPDATING"
	wantErr(t, e.splitShard("s", "1", mustAdd(half, 1000)), CodeResourceInUse, inUse)
	wantErr(t, e.mergeShards("s", "0", "1"), CodeResourceInUse, inUse)
	wantErr(t, e.scaleTo("s", 4), CodeResourceInUse, inUse)
	// The split's children do not exist until it takes effect.
	wantErr(t, e.mergeShards("s", "2", "3"), CodeResourceNotFound, "Could not find shard shardId-000000000002 in stream s under account 000000000000.")
	// Writes and reads go on while UPDATING.
	e.put("s", "k", "v")
	e.clock.Advance(time.Second)
	if err := e.mergeShards("s", "2", "3"); err != nil {
		t.Fatal(err)
	}
}

// TestReshardAtEndOfUpdating checks that a reshard takes effect when the
// stream leaves UPDATING, as on Kinesis: until then the old shards are
// listed and take the writes.
func TestReshardAtEndOfUpdating(t *testing.T) {
	ctx := context.Background()
	for _, op := range []string{"split", "merge", "scale"} {
		t.Run(op, func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.TransitionDelay = time.Second })
			e.create("s", 2)
			e.clock.Advance(2 * time.Second)
			var err error
			var want string
			switch op {
			case "split":
				err, want = e.splitShard("s", "0", "1000"), "0,1,2,3"
			case "merge":
				err, want = e.mergeShards("s", "0", "1"), "0,1,2"
			case "scale":
				err, want = e.scaleTo("s", 3), "0,1,2,3,4,5,6"
			}
			if err != nil {
				t.Fatal(err)
			}
			sum, err := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")})
			if err != nil || sum.StreamDescriptionSummary.StreamStatus != statusUpdating || sum.StreamDescriptionSummary.OpenShardCount != 2 {
				t.Fatalf("summary while updating: %+v %v", sum, err)
			}
			ds, _ := e.svc.DescribeStream(ctx, &DescribeStreamInput{StreamName: sp("s")})
			ls, _ := e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s")})
			if got := shardIDs(ds.StreamDescription.Shards) + "|" + shardIDs(ls.Shards); got != "0,1|0,1" {
				t.Fatalf("shards while updating: %s", got)
			}
			// Writes and reads go on against the old shards.
			var during []*PutRecordOutput
			for i := range 8 {
				out := e.put("s", fmt.Sprintf("k%d", i), "during")
				if out.ShardId != "shardId-000000000000" && out.ShardId != "shardId-000000000001" {
					t.Fatalf("write while updating went to %s", out.ShardId)
				}
				during = append(during, out)
			}
			e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 0)

			// Just before the deadline nothing has changed; the first write
			// after it sees the new shards.
			e.clock.Advance(time.Second - time.Millisecond)
			if got := e.meta("s"); got.Status != statusUpdating || len(got.Shards) != 2 {
				t.Fatalf("before the deadline: %s, %d shards", got.Status, len(got.Shards))
			}
			e.clock.Advance(time.Millisecond)
			for i := range 8 {
				out := e.put("s", fmt.Sprintf("k%d", i), "after")
				if idx, _ := parseShardIndex(out.ShardId); e.meta("s").Shards[idx].Closed != 0 {
					t.Fatalf("write after the switch went to closed parent %s", out.ShardId)
				}
				if out.SequenceNumber <= during[i].SequenceNumber {
					t.Fatalf("child number %s below parent's %s", out.SequenceNumber, during[i].SequenceNumber)
				}
			}
			sum, _ = e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")})
			ls, _ = e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s")})
			if sum.StreamDescriptionSummary.StreamStatus != statusActive || shardIDs(ls.Shards) != want {
				t.Fatalf("after the deadline: %s, shards %s, want %s", sum.StreamDescriptionSummary.StreamStatus, shardIDs(ls.Shards), want)
			}
			checkLineage(t, e.meta("s"))
			waitSealed(t, e, "s")
			got := readLineage(t, e, "s")
			for i := range 8 {
				if d := fmt.Sprint(got[fmt.Sprintf("k%d", i)]); d != "[during after]" {
					t.Fatalf("key k%d: %s", i, d)
				}
			}
		})
	}
}

// TestPendingReshardAppliedInBackground checks that the switch happens at
// the deadline without any client call, and that a pending plan survives a
// restart.
func TestPendingReshardAppliedInBackground(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TransitionDelay = 50 * time.Millisecond })
	e.create("s", 2)
	e.clock.Advance(time.Second)
	if err := e.splitShard("s", "1", mustAdd(half, 1000)); err != nil {
		t.Fatal(err)
	}
	e.restart()
	if m := e.meta("s"); m.Pending == nil || len(m.Shards) != 2 {
		t.Fatalf("pending plan lost in restart: %+v", m)
	}
	e.clock.Advance(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := e.meta("s")
		if m.Pending == nil {
			if m.Status != statusActive || len(m.Shards) != 4 || m.Shards[1].Closed == 0 {
				t.Fatalf("applied: %+v", m)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pending plan not applied by the background loop")
		}
		time.Sleep(5 * time.Millisecond)
	}
	waitSealed(t, e, "s")
}

func TestUpdateStreamMode(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.OnDemandStreamLimit = 1 })
	e.create("a", 3)
	e.create("b", 1)
	arn := func(n string) *string { return sp("arn:aws:kinesis:us-east-1:000000000000:stream/" + n) }
	mode := func(m string) *StreamModeDetails { return &StreamModeDetails{StreamMode: &m} }
	if err := e.svc.UpdateStreamMode(ctx, &UpdateStreamModeInput{StreamARN: arn("a"), StreamModeDetails: mode("ON_DEMAND")}); err != nil {
		t.Fatal(err)
	}
	sum, _ := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("a")})
	if *sum.StreamDescriptionSummary.StreamModeDetails.StreamMode != "ON_DEMAND" || sum.StreamDescriptionSummary.OpenShardCount != 3 {
		t.Fatalf("summary %+v", sum.StreamDescriptionSummary)
	}
	err := e.svc.UpdateStreamMode(ctx, &UpdateStreamModeInput{StreamARN: arn("b"), StreamModeDetails: mode("ON_DEMAND")})
	wantErr(t, err, CodeLimitExceeded, "This request would exceed the on-demand stream count limit for the account 000000000000 in us-east-1. Current on-demand stream count for the account: 1. Limit: 1.")
	wantErr(t, e.scaleTo("a", 4), CodeValidation, "")
	err = e.svc.UpdateStreamMode(ctx, &UpdateStreamModeInput{StreamARN: arn("nope"), StreamModeDetails: mode("ON_DEMAND")})
	wantErr(t, err, CodeResourceNotFound, "Stream nope under account 000000000000 not found.")
	err = e.svc.UpdateStreamMode(ctx, &UpdateStreamModeInput{StreamARN: arn("a"), StreamModeDetails: mode("FAST")})
	wantErr(t, err, CodeValidation, "")
	if err := e.svc.UpdateStreamMode(ctx, &UpdateStreamModeInput{StreamARN: arn("a"), StreamModeDetails: mode("PROVISIONED")}); err != nil {
		t.Fatal(err)
	}
	if err := e.scaleTo("a", 4); err != nil {
		t.Fatal(err)
	}
}

// readLineage reads every shard of a stream, parents before children, and
// returns the data of each partition key in read order.
func readLineage(t *testing.T, e *env, name string) map[string][]string {
	t.Helper()
	m := e.meta(name)
	done := map[int]bool{}
	out := map[string][]string{}
	for len(done) < len(m.Shards) {
		progress := false
		for i, sm := range m.Shards {
			ready := !done[i]
			for _, p := range sm.Parents {
				ready = ready && done[p]
			}
			if !ready {
				continue
			}
			it := e.iter(name, shardID(i), "TRIM_HORIZON", nil)
			for {
				r := e.get(it, 1000)
				for _, rec := range r.Records {
					out[rec.PartitionKey] = append(out[rec.PartitionKey], string(rec.Data))
				}
				if r.NextShardIterator == nil || (sm.Closed == 0 && len(r.Records) == 0) {
					break
				}
				it = *r.NextShardIterator
			}
			done[i] = true
			progress = true
		}
		if !progress {
			t.Fatal("lineage has a cycle or a missing parent")
		}
	}
	return out
}

func TestReshardUnderLoad(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 2)
	var (
		wg   sync.WaitGroup
		stop = make(chan struct{})
		mu   sync.Mutex
		sent = map[string]int{}
	)
	const producers = 4
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				var recs []PutRecordsRequestEntry
				for k := range 8 {
					pk := fmt.Sprintf("p%d-k%d", p, k)
					recs = append(recs, PutRecordsRequestEntry{PartitionKey: sp(pk), Data: fmt.Appendf(nil, "%d", n)})
				}
				if p == 0 { // one producer uses PutRecord
					for _, r := range recs {
						if _, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: r.PartitionKey, Data: r.Data}); err != nil {
							t.Error(err)
							return
						}
					}
				} else {
					out, err := e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("s"), Records: recs})
					if err != nil || out.FailedRecordCount != 0 {
						t.Errorf("put records: %v %+v", err, out)
						return
					}
				}
				mu.Lock()
				for _, r := range recs {
					sent[*r.PartitionKey] = n + 1
				}
				mu.Unlock()
				n++
			}
		}()
	}
	steps := []func() error{
		func() error { return e.splitShard("s", "0", "1000000") },
		func() error { return e.scaleTo("s", 5) },
		func() error {
			open := openRanges(e.meta("s"))
			return e.mergeShards("s", shardID(open[1].idx), shardID(open[2].idx))
		},
		func() error { return e.scaleTo("s", 8) },
		func() error { return e.scaleTo("s", 4) },
		func() error { return e.scaleTo("s", 3) },
	}
	for _, step := range steps {
		time.Sleep(20 * time.Millisecond)
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	checkLineage(t, e.meta("s"))
	got := readLineage(t, e, "s")
	for pk, n := range sent {
		recs := got[pk]
		if len(recs) != n {
			t.Fatalf("key %s: read %d records, sent %d", pk, len(recs), n)
		}
		for i, d := range recs {
			if d != fmt.Sprint(i) {
				t.Fatalf("key %s: record %d is %s", pk, i, d)
			}
		}
	}
}

// TestPendingAppliedUnderLoad: with writers racing each other (and the
// reaper) to make the switch at the end of UPDATING, every acknowledged
// record is read back once, in order, and none lands in a closed parent.
func TestPendingAppliedUnderLoad(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.TransitionDelay = time.Second; o.ScalingsPerDay = 0 })
	e.create("s", 2)
	e.clock.Advance(time.Second)
	var (
		wg   sync.WaitGroup
		stop = make(chan struct{})
		mu   sync.Mutex
		sent = map[string]int{}
	)
	for p := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var recs []PutRecordsRequestEntry
				for k := range 6 {
					recs = append(recs, PutRecordsRequestEntry{PartitionKey: sp(fmt.Sprintf("p%d-k%d", p, k)), Data: fmt.Appendf(nil, "%d", n)})
				}
				out, err := e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("s"), Records: recs})
				if err != nil || out.FailedRecordCount != 0 {
					t.Errorf("put records: %v %+v", err, out)
					return
				}
				m := e.meta("s")
				for _, r := range out.Records {
					if idx, _ := parseShardIndex(*r.ShardId); m.Shards[idx].Closed != 0 && r.SequenceNumber != nil {
						if sn, ok := parseSeqNum(*r.SequenceNumber); ok && sn.offset >= m.Shards[idx].EndOffset {
							t.Errorf("record %s in closed shard %s past its end %d", *r.SequenceNumber, *r.ShardId, m.Shards[idx].EndOffset)
						}
					}
				}
				mu.Lock()
				for _, r := range recs {
					sent[*r.PartitionKey] = n + 1
				}
				mu.Unlock()
			}
		}()
	}
	steps := []func() error{
		func() error { return e.splitShard("s", "0", "1000000") },
		func() error { return e.scaleTo("s", 5) },
		func() error { return e.scaleTo("s", 3) },
		func() error {
			open := openRanges(e.meta("s"))
			return e.mergeShards("s", shardID(open[0].idx), shardID(open[1].idx))
		},
	}
	// fail stops the writers first, so none reports after the test ends.
	fail := func(format string, args ...any) {
		t.Helper()
		close(stop)
		wg.Wait()
		t.Fatalf(format, args...)
	}
	for _, step := range steps {
		if err := step(); err != nil {
			fail("%v", err)
		}
		time.Sleep(20 * time.Millisecond) // writes while UPDATING
		e.clock.Advance(time.Second)      // due: the writers race to switch
		// The switch is made by the next write or the reaper's next tick;
		// a loaded machine may take a while to schedule either.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			m := e.meta("s")
			if m.Pending == nil && m.Status == statusActive {
				break
			}
			if time.Now().After(deadline) {
				fail("still %s with a pending change 10 s after the deadline", m.Status)
			}
		}
	}
	close(stop)
	wg.Wait()
	checkLineage(t, e.meta("s"))
	waitSealed(t, e, "s")
	got := readLineage(t, e, "s")
	for pk, n := range sent {
		recs := got[pk]
		if len(recs) != n {
			t.Fatalf("key %s: read %d records, sent %d", pk, len(recs), n)
		}
		for i, d := range recs {
			if d != fmt.Sprint(i) {
				t.Fatalf("key %s: record %d is %s", pk, i, d)
			}
		}
	}
}

// crashed is the panic a test crash point raises.
type crashed string

// goroutineID returns the calling goroutine's number, from its stack header.
func goroutineID() string {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	return string(bytes.Fields(b)[1])
}

func TestReshardCrash(t *testing.T) {
	ctx := context.Background()
	for _, point := range []string{CrashReshardBeforeCAS, CrashReshardPending, CrashReshardAfterCAS} {
		for _, op := range []string{"split", "merge", "scale"} {
			t.Run(point+"/"+op, func(t *testing.T) {
				// The crash point stops the test's goroutine with a panic the
				// test recovers. The reaper may apply a due plan too, and so
				// reach the point after the compare-and-set first: that
				// goroutine then just ends there, as it would in a killed
				// process, and the test waits for it.
				var armed, inBackground atomic.Bool
				armed.Store(true)
				testGoroutine := goroutineID()
				e := newEnv(t, func(o *Options) {
					o.CrashPoint = func(p string) {
						if p != point || !armed.CompareAndSwap(true, false) {
							return
						}
						if goroutineID() == testGoroutine {
							panic(crashed(p))
						}
						inBackground.Store(true)
						runtime.Goexit()
					}
				})
				e.create("s", 2)
				for i := range 20 {
					e.put("s", fmt.Sprintf("k%d", i), "before")
				}
				before := e.meta("s")
				func() {
					defer func() {
						r := recover()
						if r == nil {
							for deadline := time.Now().Add(5 * time.Second); !inBackground.Load(); time.Sleep(time.Millisecond) {
								if time.Now().After(deadline) {
									t.Fatal("no crash")
								}
							}
						} else if _, ok := r.(crashed); !ok {
							panic(r)
						}
					}()
					switch op {
					case "split":
						_ = e.splitShard("s", "0", "1000")
					case "merge":
						_ = e.mergeShards("s", "0", "1")
					case "scale":
						_ = e.scaleTo("s", 3)
					}
				}()
				after := e.meta("s")
				changed := len(after.Shards) != len(before.Shards)
				if changed != (point == CrashReshardAfterCAS) {
					t.Fatalf("changed %v after a crash at %s", changed, point)
				}
				// Even before the restart seals them, closed shards take no writes.
				// (A stored plan is applied by the first of these writes.)
				for i := range 20 {
					out := e.put("s", fmt.Sprintf("k%d", i), "between")
					if idx, _ := parseShardIndex(out.ShardId); e.meta("s").Shards[idx].Closed != 0 {
						t.Fatalf("record routed to closed shard %s", out.ShardId)
					}
				}
				e.restart()
				waitSealed(t, e, "s")
				checkLineage(t, e.meta("s"))
				var open [][2]hashKey
				for _, r := range openRanges(e.meta("s")) {
					open = append(open, [2]hashKey{r.start, r.end})
				}
				checkTiles(t, open, "open shards")
				// The next reshard works (reusing leftover logs).
				if err := e.scaleTo("s", int32(e.meta("s").openShards()+1)); err != nil {
					t.Fatal(err)
				}
				for i := range 20 {
					e.put("s", fmt.Sprintf("k%d", i), "after")
				}
				got := readLineage(t, e, "s")
				for i := range 20 {
					if d := fmt.Sprint(got[fmt.Sprintf("k%d", i)]); d != "[before between after]" {
						t.Fatalf("key k%d: %s", i, d)
					}
				}
				_ = ctx
			})
		}
	}
}

// waitSealed waits until every closed shard's log is sealed.
func waitSealed(t *testing.T, e *env, name string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m := e.meta(name)
		all := true
		for i, sm := range m.Shards {
			if sm.Closed == 0 {
				continue
			}
			l, err := e.eng.Log(ctx, logName(m.ID, i))
			if err != nil {
				t.Fatal(err)
			}
			info, _ := l.Info(ctx)
			all = all && info.Sealed && info.Next == sm.EndOffset
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("closed shards not sealed after restart")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAppendToClosedShardRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	st, _ := e.svc.fetch(ctx, "s")
	parent := st.shards[0]
	if err := e.splitShard("s", "0", half); err != nil {
		t.Fatal(err)
	}
	// A record routed with the old description reaches the closed parent.
	_, _, err := e.svc.appendLog(ctx, parent, nil)
	if !errors.Is(err, errShardClosed) {
		t.Fatalf("append to closed parent: %v", err)
	}
}

// slowCreates is an engine whose CreateLog takes a while, as a JetStream
// stream's creation does when the node chosen to lead it first is down, and
// fails once for the log named failOnce.
type slowCreates struct {
	engine.Engine
	delay    time.Duration
	failOnce string

	mu      sync.Mutex
	running int
	most    int // the most CreateLog calls running at once
	failed  bool
}

var errCreate = errors.New("test: create log failed")

func (e *slowCreates) CreateLog(ctx context.Context, name string, opts engine.LogOptions) error {
	e.mu.Lock()
	e.running++
	e.most = max(e.most, e.running)
	fail := name == e.failOnce && !e.failed
	e.failed = e.failed || fail
	e.mu.Unlock()
	time.Sleep(e.delay)
	e.mu.Lock()
	e.running--
	e.mu.Unlock()
	if fail {
		return errCreate
	}
	return e.Engine.CreateLog(ctx, name, opts)
}

// TestReshardCreatesLogsAtOnce checks that a reshard creates its new
// shards' logs concurrently, and that when one creation fails the stream
// keeps its shards and a second attempt reuses the logs created by the
// first.
func TestReshardCreatesLogsAtOnce(t *testing.T) {
	c := newClock()
	eo := mem.DefaultOptions()
	eo.Now = c.Now
	base := mem.New(eo)
	eng := &slowCreates{Engine: base, delay: 200 * time.Millisecond}
	opts := DefaultOptions()
	opts.Now = c.Now
	opts.TransitionDelay = 0
	opts.IteratorKey = []byte("test-key")
	svc, err := New(context.Background(), eng, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		base.Close()
	})
	e := &env{t: t, svc: svc, clock: c, opts: opts}
	e.create("s", 2)
	id := e.meta("s").ID

	// 2 -> 4 makes four new shards, 2 to 5; the log of shard 4 fails once.
	eng.mu.Lock()
	eng.most, eng.failOnce = 0, logName(id, 4)
	eng.mu.Unlock()
	if err := e.scaleTo("s", 4); !errors.Is(err, errCreate) {
		t.Fatalf("UpdateShardCount with a failing log creation: %v", err)
	}
	if m := e.meta("s"); len(m.Shards) != 2 || m.Pending != nil {
		t.Fatalf("after a failed reshard: %d shards, pending %v", len(m.Shards), m.Pending)
	}
	for _, i := range []int{2, 3, 5} {
		if _, err := base.Log(context.Background(), logName(id, i)); err != nil {
			t.Errorf("log of shard %d not created by the failed attempt: %v", i, err)
		}
	}
	if err := e.scaleTo("s", 4); err != nil {
		t.Fatal(err)
	}
	eng.mu.Lock()
	most := eng.most
	eng.mu.Unlock()
	if most < 4 {
		t.Errorf("at most %d logs created at once, want the 4 new shards' at least", most)
	}
	if open := openRanges(e.meta("s")); len(open) != 4 {
		t.Fatalf("%d open shards after UpdateShardCount to 4", len(open))
	}
	e.put("s", "k", "after")
}
