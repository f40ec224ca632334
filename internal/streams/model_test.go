package streams

import (
	"context"
	"testing"
	"time"
)

// TestCreatingStreamHasNoShards: a CREATING stream lists no shards and the
// data plane answers for it as for a stream that does not exist.
func TestCreatingStreamHasNoShards(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.TransitionDelay = time.Second })
	e.create("s", 2)
	const acct = "000000000000"

	ds, err := e.svc.DescribeStream(ctx, &DescribeStreamInput{StreamName: sp("s")})
	if err != nil || ds.StreamDescription.StreamStatus != statusCreating || ds.StreamDescription.Shards == nil ||
		len(ds.StreamDescription.Shards) != 0 || ds.StreamDescription.HasMoreShards {
		t.Fatalf("describe while creating: %+v %v", ds, err)
	}
	ls, err := e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s")})
	if err != nil || ls.Shards == nil || len(ls.Shards) != 0 || ls.NextToken != nil {
		t.Fatalf("list shards while creating: %+v %v", ls, err)
	}
	sum, err := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")})
	if err != nil || sum.StreamDescriptionSummary.OpenShardCount != 0 {
		t.Fatalf("summary while creating: %+v %v", sum, err)
	}
	notFound := "Stream s under account " + acct + " not found."
	_, err = e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("k"), Data: []byte("x")})
	wantErr(t, err, CodeResourceNotFound, notFound)
	_, err = e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{{PartitionKey: sp("k"), Data: []byte("x")}}})
	wantErr(t, err, CodeResourceNotFound, notFound)
	_, err = e.svc.GetShardIterator(ctx, &GetShardIteratorInput{StreamName: sp("s"), ShardId: sp("shardId-0"), ShardIteratorType: sp("TRIM_HORIZON")})
	wantErr(t, err, CodeResourceNotFound, "Shard shardId-000000000000 in stream s under account "+acct+" does not exist")
	notActive := "Stream s under account " + acct + " not ACTIVE, instead in state CREATING"
	wantErr(t, e.mergeShards("s", "shardId-0", "shardId-1"), CodeResourceInUse, notActive)
	wantErr(t, e.splitShard("s", "shardId-0", "2"), CodeResourceInUse, notActive)

	e.clock.Advance(time.Second)
	ls, _ = e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s")})
	sum, _ = e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")})
	if shardIDs(ls.Shards) != "0,1" || sum.StreamDescriptionSummary.OpenShardCount != 2 {
		t.Fatalf("active: shards %s, open %d", shardIDs(ls.Shards), sum.StreamDescriptionSummary.OpenShardCount)
	}
	e.put("s", "k", "x")
}

func TestParseShardIndex(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want int // -1: not a shard id
	}{
		{"shardId-000000000005", 5},
		{"shardId-5", 5},
		{"5", 5},
		{"anything-7", 7},
		{"-00002147483647", 2147483647},
		{"a-00002147483647", 2147483647},
		{"2147483647", 2147483647},
		{"2147483648", -1},
		{"shardId-002147483648", -1},
		{"ABKLFD8", -1},
		{"2.14E4", -1},
		{"shardId-", -1},
		{"", -1},
		{"a-b-5", -1},
	} {
		got, ok := parseShardIndex(tc.id)
		if !ok {
			got = -1
		}
		if got != tc.want {
			t.Errorf("parseShardIndex(%q) = %d, want %d", tc.id, got, tc.want)
		}
	}
}

// TestShardIDsAsKinesisReadsThem: short shard ids name the same shards and
// messages print them in full; an unknown stream is reported before a shard
// id that could name a shard, and before tag keys.
func TestShardIDsAsKinesisReadsThem(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 3)
	const acct = "000000000000"
	noStream := "Stream nope under account " + acct + " not found."
	for _, tc := range []struct {
		name string
		call func() error
		code Code
		msg  string
	}{
		{"split unknown stream", func() error { return e.splitShard("nope", "shardId-5", "1000") }, CodeResourceNotFound, noStream},
		{"split unknown stream, long number", func() error { return e.splitShard("nope", "a-00002147483647", "1000") }, CodeResourceNotFound, noStream},
		{"split unknown stream, not a number", func() error { return e.splitShard("nope", "ABKLFD8", "1000") }, CodeResourceNotFound,
			"Could not find shard ABKLFD8 in stream nope under account " + acct + "."},
		{"merge unknown stream", func() error { return e.mergeShards("nope", "x-0", "shardId-1") }, CodeResourceNotFound, noStream},
		{"merge unknown stream, too big", func() error { return e.mergeShards("nope", "2147483648", "1") }, CodeResourceNotFound,
			"Could not find shard 2147483648 in stream nope under account " + acct + "."},
		{"split missing shard, short id", func() error { return e.splitShard("s", "shardId-5", "1000") }, CodeResourceNotFound,
			"Could not find shard shardId-000000000005 in stream s under account " + acct + "."},
		{"merge missing adjacent, short id", func() error { return e.mergeShards("s", "shardId-0", "shardId-5") }, CodeResourceNotFound,
			"Could not find shard shardId-000000000005 in stream s under account " + acct + "."},
		{"merge reversed", func() error { return e.mergeShards("s", "shardId-1", "shardId-0") }, CodeInvalidArgument,
			"Shards shardId-000000000001 and shardId-000000000000 in stream s under account " + acct + " are not an adjacent pair of shards eligible for merging"},
		{"iterator unknown stream", func() error {
			_, err := e.svc.GetShardIterator(ctx, &GetShardIteratorInput{StreamName: sp("nope"), ShardId: sp("shardId-5"), ShardIteratorType: sp("LATEST")})
			return err
		}, CodeResourceNotFound, "Shard shardId-000000000005 in stream nope under account " + acct + " does not exist"},
		{"remove tags unknown stream", func() error {
			return e.svc.RemoveTagsFromStream(ctx, &RemoveTagsFromStreamInput{StreamName: sp("nope"), TagKeys: []string{"bad%key"}})
		}, CodeResourceNotFound, noStream},
		{"remove tags bad key", func() error {
			return e.svc.RemoveTagsFromStream(ctx, &RemoveTagsFromStreamInput{StreamName: sp("s"), TagKeys: []string{"bad%key"}})
		}, CodeInvalidArgument, "Failed to remove tags from stream s under account " + acct + " because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'."},
	} {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), tc.code, tc.msg) })
	}

	// Short ids in lookups.
	out, err := e.svc.GetShardIterator(ctx, &GetShardIteratorInput{StreamName: sp("s"), ShardId: sp("shardId-2"), ShardIteratorType: sp("LATEST")})
	if err != nil || out.ShardIterator == nil {
		t.Fatalf("iterator by short id: %v", err)
	}
	ls, err := e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s"), ExclusiveStartShardId: sp("shardId-0")})
	if err != nil || shardIDs(ls.Shards) != "1,2" {
		t.Fatalf("list after shardId-0: %v %s", err, shardIDs(ls.Shards))
	}
	ls, err = e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s"), ShardFilter: &ShardFilter{Type: sp("AFTER_SHARD_ID"), ShardId: sp("1")}})
	if err != nil || shardIDs(ls.Shards) != "2" {
		t.Fatalf("list AFTER_SHARD_ID 1: %v %s", err, shardIDs(ls.Shards))
	}
	ds, err := e.svc.DescribeStream(ctx, &DescribeStreamInput{StreamName: sp("s"), ExclusiveStartShardId: sp("shardId-1")})
	if err != nil || shardIDs(ds.StreamDescription.Shards) != "2" {
		t.Fatalf("describe after shardId-1: %v %s", err, shardIDs(ds.StreamDescription.Shards))
	}
	if err := e.splitShard("s", "shardId-2", mustAdd(e.meta("s").Shards[2].Start, 1000)); err != nil {
		t.Fatalf("split by short id: %v", err)
	}
	if err := e.mergeShards("s", "0", "shardId-1"); err != nil {
		t.Fatalf("merge by short ids: %v", err)
	}
}

// FuzzParseShardIndex: any accepted id names a shard index whose canonical id
// names it again; the index never exceeds Kinesis' 2147483647.
func FuzzParseShardIndex(f *testing.F) {
	for _, s := range []string{"shardId-000000000005", "shardId-5", "5", "a-00002147483647", "2147483648", "2.14E4", "", "-", "a-b-1", "shardId-99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseShardIndex(s)
		if !ok {
			if normalShardID(s) != s {
				t.Fatalf("%q is no shard id but normalises to %q", s, normalShardID(s))
			}
			return
		}
		if n < 0 || n > 1<<31-1 {
			t.Fatalf("%q parses to %d", s, n)
		}
		id := normalShardID(s)
		if m, ok := parseShardIndex(id); !ok || m != n || id != shardID(n) {
			t.Fatalf("%q -> %d -> %q -> %d, %v", s, n, id, m, ok)
		}
	})
}
