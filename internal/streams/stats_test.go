package streams

import (
	"context"
	"errors"
	"testing"
)

func TestShardStats(t *testing.T) {
	e := newEnv(t)
	e.create("s", 2)
	var last *PutRecordOutput
	for _, pk := range []string{"a", "b", "c", "d", "e"} {
		last = e.put("s", pk, "data")
	}
	stats, err := e.svc.ShardStats(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 2 {
		t.Fatalf("%d shards, want 2", len(stats))
	}
	var records, bytes int64
	var next uint64
	for _, st := range stats {
		if st.Closed || st.First != 0 {
			t.Errorf("%s: closed %v first %d", st.ShardId, st.Closed, st.First)
		}
		if uint64(st.WrittenRecords) != st.Next {
			t.Errorf("%s: written %d, next %d", st.ShardId, st.WrittenRecords, st.Next)
		}
		if st.Next > 0 && st.LastArrival.IsZero() {
			t.Errorf("%s: no last arrival", st.ShardId)
		}
		records += st.WrittenRecords
		bytes += st.WrittenBytes
		if st.ShardId == last.ShardId {
			next = st.Next
		}
	}
	if records != 5 || bytes != 5*(1+4) {
		t.Errorf("written %d records, %d bytes; want 5, 25", records, bytes)
	}
	off, ok := SequenceOffset(last.SequenceNumber)
	if !ok || off != next-1 {
		t.Errorf("SequenceOffset(last) = %d, %v; want %d", off, ok, next-1)
	}
	if _, ok := SequenceOffset("12"); ok {
		t.Error("SequenceOffset accepted a short string")
	}

	if err := e.splitShard("s", "shardId-000000000000", "1000"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(1)
	stats, err = e.svc.ShardStats(context.Background(), "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(stats) != 4 || !stats[0].Closed || stats[2].ParentShardId == nil || *stats[2].ParentShardId != stats[0].ShardId {
		t.Errorf("after a split: %+v", stats)
	}

	var kerr *Error
	if _, err := e.svc.ShardStats(context.Background(), "nope"); !errors.As(err, &kerr) || kerr.Code != CodeResourceNotFound {
		t.Errorf("missing stream: %v", err)
	}
}
