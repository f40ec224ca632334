package leases

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/internal/engine/mem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStreams is a stream registry the tests reshape at will.
type fakeStreams struct {
	mu      sync.Mutex
	streams map[string]StreamInfo
}

func (f *fakeStreams) Stream(_ context.Context, name string) (StreamInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.streams[name]
	if !ok {
		return StreamInfo{}, ErrStreamNotFound
	}
	st.Shards = append([]ShardInfo(nil), st.Shards...)
	return st, nil
}

func (f *fakeStreams) StreamIDs(context.Context) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := map[string]bool{}
	for _, st := range f.streams {
		ids[st.ID] = true
	}
	return ids, nil
}

func (f *fakeStreams) set(st StreamInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams == nil {
		f.streams = map[string]StreamInfo{}
	}
	f.streams[st.Name] = st
}

func (f *fakeStreams) drop(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.streams, name)
}

func shardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

func stream(name, id string, n int) StreamInfo {
	st := StreamInfo{Name: name, ID: id, ARN: "arn:aws:kinesis:us-east-1:000000000000:stream/" + name}
	for i := range n {
		st.Shards = append(st.Shards, ShardInfo{ID: shardID(i)})
	}
	return st
}

func newService(t *testing.T) (*Service, *fakeStreams) {
	t.Helper()
	eng := mem.New(mem.Options{})
	t.Cleanup(func() { eng.Close() })
	fs := &fakeStreams{}
	return New(eng.Meta(), fs, Options{}), fs
}

func wantCode(t *testing.T, err error, code Code) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("error = %v, want %s", err, code)
	}
	return e
}

func TestCreateTable(t *testing.T) {
	ctx := context.Background()
	s, fs := newService(t)
	fs.set(stream("orders", "id1", 3))
	ref := TableRef{App: "billing", Stream: "orders"}

	tbl, err := s.CreateTable(ctx, ref, Position{Type: Latest})
	if err != nil {
		t.Fatal(err)
	}
	if tbl.LeaseCount != 3 || tbl.InitialPosition.Type != Latest || tbl.StreamARN == "" {
		t.Fatalf("table = %+v", tbl)
	}
	ls, err := s.ListLeases(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range ls {
		if l.LeaseKey != shardID(i) || l.Checkpoint != Latest || l.Owner != "" || l.Counter != 0 {
			t.Fatalf("lease %d = %+v", i, l)
		}
	}

	_, err = s.CreateTable(ctx, ref, Position{})
	wantCode(t, err, CodeResourceInUse)
	_, err = s.CreateTable(ctx, TableRef{App: "billing", Stream: "nope"}, Position{})
	wantCode(t, err, CodeResourceNotFound)
	_, err = s.CreateTable(ctx, TableRef{App: "bad/name", Stream: "orders"}, Position{})
	wantCode(t, err, CodeInvalidArgument)
	_, err = s.CreateTable(ctx, TableRef{App: "other", Stream: "orders"}, Position{Type: AtTimestamp})
	wantCode(t, err, CodeInvalidArgument)
	_, err = s.CreateTable(ctx, TableRef{App: "other", Stream: "orders"}, Position{Type: "EARLIEST"})
	wantCode(t, err, CodeInvalidArgument)

	ts := time.UnixMilli(1_700_000_000_000).UTC()
	tbl, err = s.CreateTable(ctx, TableRef{App: "other", Stream: "orders"}, Position{Type: AtTimestamp, Timestamp: &ts})
	if err != nil || tbl.InitialPosition.Timestamp == nil || !tbl.InitialPosition.Timestamp.Equal(ts) {
		t.Fatalf("AT_TIMESTAMP table = %+v, %v", tbl, err)
	}

	tables, err := s.ListTables(ctx, "orders")
	if err != nil || len(tables) != 2 || tables[0].ApplicationName != "billing" || tables[0].LeaseCount != 3 || tables[1].LeaseCount != 3 {
		t.Fatalf("ListTables = %+v, %v", tables, err)
	}
	if err := s.DeleteTable(ctx, ref); err != nil {
		t.Fatal(err)
	}
	_, err = s.ListLeases(ctx, ref)
	wantCode(t, err, CodeResourceNotFound)
	wantCode(t, s.DeleteTable(ctx, ref), CodeResourceNotFound)
	if tables, _ := s.ListTables(ctx, "orders"); len(tables) != 1 {
		t.Fatalf("after delete: %+v", tables)
	}
}

func TestFencing(t *testing.T) {
	ctx := context.Background()
	s, fs := newService(t)
	fs.set(stream("orders", "id1", 2))
	ref := TableRef{App: "app", Stream: "orders"}
	if _, err := s.CreateTable(ctx, ref, Position{}); err != nil {
		t.Fatal(err)
	}
	key := shardID(0)

	a, err := s.Take(ctx, ref, key, "worker-a", 0)
	if err != nil || a.Owner != "worker-a" || a.Counter != 1 || a.OwnerSwitchesSinceCheckpoint != 1 {
		t.Fatalf("take = %+v, %v", a, err)
	}
	a, err = s.Checkpoint(ctx, ref, key, "worker-a", a.Counter, "49590338271490256608559692538361571095921575989136588898", 3)
	if err != nil || a.Counter != 2 || a.SubSequenceNumber != 3 || a.OwnerSwitchesSinceCheckpoint != 0 {
		t.Fatalf("checkpoint = %+v, %v", a, err)
	}

	// worker-b saw counter 2 stand still and takes the lease.
	b, err := s.Take(ctx, ref, key, "worker-b", 2)
	if err != nil || b.Owner != "worker-b" || b.Counter != 3 {
		t.Fatalf("steal = %+v, %v", b, err)
	}
	// worker-a wakes up: every write it tries is refused.
	e := wantCode(t, func() error {
		_, err := s.Checkpoint(ctx, ref, key, "worker-a", 2, "49590338271490256608559692538361571095921575989136588999", 0)
		return err
	}(), CodeLeaseConflict)
	if e.Lease == nil || e.Lease.Owner != "worker-b" || e.Lease.Counter != 3 {
		t.Fatalf("conflict lease = %+v", e.Lease)
	}
	_, err = s.Release(ctx, ref, key, "worker-a", 2)
	wantCode(t, err, CodeLeaseConflict)
	_, err = s.HandOff(ctx, ref, key, "worker-a", 2, "worker-c")
	wantCode(t, err, CodeLeaseConflict)
	// The right counter in the wrong hands is refused too.
	_, err = s.Checkpoint(ctx, ref, key, "worker-a", 3, "1", 0)
	wantCode(t, err, CodeLeaseConflict)
	// A take naming an old counter loses.
	_, err = s.Take(ctx, ref, key, "worker-a", 2)
	wantCode(t, err, CodeLeaseConflict)

	ls, err := s.ListLeases(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got := ls[0]; got.Checkpoint != "49590338271490256608559692538361571095921575989136588898" || got.Owner != "worker-b" {
		t.Fatalf("lease after fenced writes = %+v", got)
	}

	h, err := s.HandOff(ctx, ref, key, "worker-b", 3, "worker-c")
	if err != nil || h.Owner != "worker-c" || h.Counter != 4 || h.OwnerSwitchesSinceCheckpoint != 2 {
		t.Fatalf("handoff = %+v, %v", h, err)
	}
	r, err := s.Release(ctx, ref, key, "worker-c", 4)
	if err != nil || r.Owner != "" || r.Counter != 5 {
		t.Fatalf("release = %+v, %v", r, err)
	}
}

func TestCheckpointArguments(t *testing.T) {
	ctx := context.Background()
	s, fs := newService(t)
	st := stream("s", "id1", 1)
	fs.set(st)
	ref := TableRef{App: "app", Stream: "s"}
	if _, err := s.CreateTable(ctx, ref, Position{}); err != nil {
		t.Fatal(err)
	}
	l, err := s.Take(ctx, ref, shardID(0), "w", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		seq  string
		sub  uint64
		code Code
	}{
		{"not a number", "12ab", 0, CodeInvalidArgument},
		{"empty", "", 0, CodeInvalidArgument},
		{"shard end of open shard", ShardEnd, 0, CodeInvalidArgument},
		{"shard end with sub", ShardEnd, 1, CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Checkpoint(ctx, ref, shardID(0), "w", l.Counter, tc.seq, tc.sub)
			wantCode(t, err, tc.code)
		})
	}
	_, err = s.Take(ctx, ref, "shardId-1", "w", 0)
	wantCode(t, err, CodeInvalidArgument)
	_, err = s.Take(ctx, ref, shardID(7), "w", 0)
	wantCode(t, err, CodeResourceNotFound)
	_, err = s.Take(ctx, ref, shardID(0), "", 0)
	wantCode(t, err, CodeInvalidArgument)

	st.Shards[0].Closed = true
	fs.set(st)
	l, err = s.Checkpoint(ctx, ref, shardID(0), "w", l.Counter, ShardEnd, 0)
	if err != nil || l.Checkpoint != ShardEnd {
		t.Fatalf("SHARD_END on closed shard = %+v, %v", l, err)
	}
}

func TestConcurrentTakeOneWinner(t *testing.T) {
	ctx := context.Background()
	s, fs := newService(t)
	fs.set(stream("s", "id1", 1))
	ref := TableRef{App: "app", Stream: "s"}
	if _, err := s.CreateTable(ctx, ref, Position{}); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		ls, err := s.ListLeases(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		counter := ls[0].Counter
		var wins, conflicts atomic.Int32
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				_, err := s.Take(ctx, ref, shardID(0), fmt.Sprintf("w%d", w), counter)
				var e *Error
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &e) && e.Code == CodeLeaseConflict:
					conflicts.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || conflicts.Load() != 7 {
			t.Fatalf("round %d: %d wins, %d conflicts", round, wins.Load(), conflicts.Load())
		}
	}
}

func TestRenewIsOneCallPerWorker(t *testing.T) {
	ctx := context.Background()
	s, fs := newService(t)
	fs.set(stream("s", "id1", 4))
	ref := TableRef{App: "app", Stream: "s"}
	if _, err := s.CreateTable(ctx, ref, Position{}); err != nil {
		t.Fatal(err)
	}
	var mine []Renewal
	for i := range 4 {
		l, err := s.Take(ctx, ref, shardID(i), "a", 0)
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, Renewal{LeaseKey: l.LeaseKey, Counter: l.Counter})
	}
	// b steals shard 2 between a's renewals.
	if _, err := s.Take(ctx, ref, shardID(2), "b", 1); err != nil {
		t.Fatal(err)
	}
	renewed, lost, err := s.Renew(ctx, ref, "a", mine)
	if err != nil {
		t.Fatal(err)
	}
	if len(renewed) != 3 || len(lost) != 1 || lost[0].LeaseKey != shardID(2) || lost[0].Owner != "b" {
		t.Fatalf("renewed %+v lost %+v", renewed, lost)
	}
	for _, l := range renewed {
		if l.Counter != 2 || l.Owner != "a" {
			t.Fatalf("renewed lease %+v", l)
		}
	}
	// Renewing with the counters just returned works again; a repeat of
	// the old ones loses everything.
	_, lost, err = s.Renew(ctx, ref, "a", mine)
	if err != nil || len(lost) != 4 {
		t.Fatalf("stale renew: lost %d, %v", len(lost), err)
	}
	_, _, err = s.Renew(ctx, ref, "a", make([]Renewal, MaxRenewals+1))
	wantCode(t, err, CodeInvalidArgument)
}

func TestLeasesFollowResharding(t *testing.T) {
	ctx := context.Background()
	s, fs := newService(t)
	st := stream("s", "id1", 2)
	fs.set(st)
	ref := TableRef{App: "app", Stream: "s"}
	if _, err := s.CreateTable(ctx, ref, Position{Type: Latest}); err != nil {
		t.Fatal(err)
	}
	l0, err := s.Take(ctx, ref, shardID(0), "w", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Split shard 0 into 2 and 3, then merge 3 and 1 into 4.
	st.Shards[0].Closed = true
	st.Shards = append(st.Shards,
		ShardInfo{ID: shardID(2), Parents: []string{shardID(0)}},
		ShardInfo{ID: shardID(3), Parents: []string{shardID(0)}})
	st.Shards[1].Closed, st.Shards[3].Closed = true, true
	st.Shards = append(st.Shards, ShardInfo{ID: shardID(4), Parents: []string{shardID(3), shardID(1)}})
	fs.set(st)

	ls, err := s.ListLeases(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 5 {
		t.Fatalf("%d leases, want 5: %+v", len(ls), ls)
	}
	want := map[string]struct {
		checkpoint string
		parents    int
		children   int
	}{
		shardID(0): {Latest, 0, 2},
		shardID(1): {Latest, 0, 1},
		shardID(2): {TrimHorizon, 1, 0},
		shardID(3): {TrimHorizon, 1, 1},
		shardID(4): {TrimHorizon, 2, 0},
	}
	for _, l := range ls {
		w := want[l.LeaseKey]
		if l.Checkpoint != w.checkpoint || len(l.ParentShardIds) != w.parents || len(l.ChildShardIds) != w.children {
			t.Errorf("lease %+v, want %+v", l, w)
		}
	}
	// Adding the children kept the owner's counter: it can still renew.
	if _, lost, err := s.Renew(ctx, ref, "w", []Renewal{{shardID(0), l0.Counter}}); err != nil || len(lost) != 0 {
		t.Fatalf("renew after reshard: lost %+v, %v", lost, err)
	}
}

func TestDeletedStreamTakesItsTables(t *testing.T) {
	ctx := context.Background()
	s, fs := newService(t)
	fs.set(stream("s", "id1", 2))
	ref := TableRef{App: "app", Stream: "s"}
	if _, err := s.CreateTable(ctx, ref, Position{}); err != nil {
		t.Fatal(err)
	}
	fs.drop("s")
	_, err := s.ListLeases(ctx, ref)
	wantCode(t, err, CodeResourceNotFound)
	// Created again, the stream has a new id and no leases.
	fs.set(stream("s", "id2", 1))
	_, err = s.ListLeases(ctx, ref)
	wantCode(t, err, CodeResourceNotFound)
	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if left, _ := s.meta.List(ctx, keyPrefix); len(left) != 0 {
		t.Fatalf("sweep left %d keys", len(left))
	}
	if _, err := s.CreateTable(ctx, ref, Position{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if ls, err := s.ListLeases(ctx, ref); err != nil || len(ls) != 1 {
		t.Fatalf("after sweep: %d leases, %v", len(ls), err)
	}
}
