package integration

import (
	"context"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// hashSpace is 2^128, one past the last hash key.
var hashSpace = new(big.Int).Lsh(big.NewInt(1), 128)

func bigKey(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("bad hash key " + s)
	}
	return n
}

// listAll pages through ListShards with an optional filter.
func listAll(t *testing.T, c *kinesis.Client, stream string, f *types.ShardFilter) []types.Shard {
	t.Helper()
	ctx := context.Background()
	out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream), ShardFilter: f})
	if err != nil {
		t.Fatal(err)
	}
	shards := out.Shards
	for out.NextToken != nil {
		if out, err = c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: out.NextToken}); err != nil {
			t.Fatal(err)
		}
		shards = append(shards, out.Shards...)
	}
	return shards
}

func ids(shards []types.Shard) string {
	var s []string
	for _, sh := range shards {
		s = append(s, strings.TrimLeft(strings.TrimPrefix(*sh.ShardId, "shardId-"), "0"))
	}
	return strings.Join(s, ",")
}

// checkOpenTiles asserts that the open shards' hash ranges cover the hash
// space exactly once, and with even ranges of n shards when n > 0.
func checkOpenTiles(t *testing.T, c *kinesis.Client, stream string, even int) []types.Shard {
	t.Helper()
	open := listAll(t, c, stream, &types.ShardFilter{Type: types.ShardFilterTypeAtLatest})
	sort.Slice(open, func(a, b int) bool {
		return bigKey(*open[a].HashKeyRange.StartingHashKey).Cmp(bigKey(*open[b].HashKeyRange.StartingHashKey)) < 0
	})
	next := big.NewInt(0)
	step := new(big.Int)
	if even > 0 {
		step.Div(hashSpace, big.NewInt(int64(even)))
		if len(open) != even {
			t.Fatalf("%d open shards, want %d", len(open), even)
		}
	}
	for i, sh := range open {
		if sh.SequenceNumberRange.EndingSequenceNumber != nil {
			t.Fatalf("open shard %s has an ending sequence number", *sh.ShardId)
		}
		start, end := bigKey(*sh.HashKeyRange.StartingHashKey), bigKey(*sh.HashKeyRange.EndingHashKey)
		if start.Cmp(next) != 0 {
			t.Fatalf("open shard %s starts at %s, want %s (gap or overlap)", *sh.ShardId, start, next)
		}
		if even > 0 && start.Cmp(new(big.Int).Mul(step, big.NewInt(int64(i)))) != 0 {
			t.Fatalf("open shard %d starts at %s, not at an even boundary", i, start)
		}
		next = new(big.Int).Add(end, big.NewInt(1))
	}
	if next.Cmp(hashSpace) != 0 {
		t.Fatalf("open shards end at %s, want 2^128", next)
	}
	return open
}

// readLineage reads every shard of a stream, each parent to its end before
// its children, and returns the records of each partition key in read order.
// It checks that a closed shard ends with ChildShards and no next iterator,
// and that every child's sequence numbers are above its parents'.
func readLineage(t *testing.T, c *kinesis.Client, stream string) map[string][]types.Record {
	t.Helper()
	ctx := context.Background()
	shards := listAll(t, c, stream, nil)
	byID := map[string]types.Shard{}
	for _, sh := range shards {
		byID[*sh.ShardId] = sh
	}
	done := map[string]bool{}
	maxSeq := map[string]*big.Int{} // highest sequence number read per shard
	out := map[string][]types.Record{}
	for len(done) < len(shards) {
		progress := false
		for _, sh := range shards {
			id := *sh.ShardId
			parents := []string{}
			for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
				if p != nil {
					if _, listed := byID[*p]; listed {
						parents = append(parents, *p)
					}
				}
			}
			ready := !done[id]
			for _, p := range parents {
				ready = ready && done[p]
			}
			if !ready {
				continue
			}
			floor := big.NewInt(0)
			for _, p := range parents {
				if maxSeq[p] != nil && maxSeq[p].Cmp(floor) > 0 {
					floor = maxSeq[p]
				}
			}
			closed := sh.SequenceNumberRange.EndingSequenceNumber != nil
			it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				t.Fatal(err)
			}
			iter := it.ShardIterator
			for iter != nil {
				res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range res.Records {
					n := bigKey(*r.SequenceNumber)
					if n.Cmp(floor) <= 0 {
						t.Fatalf("shard %s: sequence number %s not above its parents' %s", id, n, floor)
					}
					maxSeq[id] = n
					out[*r.PartitionKey] = append(out[*r.PartitionKey], r)
				}
				if res.NextShardIterator == nil {
					if !closed || len(res.ChildShards) == 0 {
						t.Fatalf("shard %s ended (closed=%v) with children %v", id, closed, res.ChildShards)
					}
					break
				}
				if !closed && len(res.Records) == 0 && aws.ToInt64(res.MillisBehindLatest) == 0 {
					break
				}
				iter = res.NextShardIterator
			}
			if maxSeq[id] == nil {
				maxSeq[id] = floor
			}
			done[id] = true
			progress = true
		}
		if !progress {
			t.Fatal("shard lineage has a missing parent or a cycle")
		}
	}
	return out
}

// checkKeyed asserts that each key's records read back are exactly the data
// acknowledged for it, in order.
func checkKeyed(t *testing.T, got map[string][]types.Record, acked map[string][]string) {
	t.Helper()
	total := 0
	for pk, want := range acked {
		recs := got[pk]
		if len(recs) != len(want) {
			t.Fatalf("key %s: read %d records, %d acknowledged", pk, len(recs), len(want))
		}
		for i, r := range recs {
			if string(r.Data) != want[i] {
				t.Fatalf("key %s: record %d is %q, want %q", pk, i, r.Data, want[i])
			}
		}
		total += len(want)
	}
	for pk := range got {
		if _, ok := acked[pk]; !ok {
			t.Fatalf("read records of unknown key %s", pk)
		}
	}
	t.Logf("%d records of %d keys read back exactly once, in order", total, len(acked))
}

// putKeyed puts n records for each of keys and records what was acknowledged.
func putKeyed(t *testing.T, c *kinesis.Client, stream string, keys []string, tag string, acked map[string][]string) {
	t.Helper()
	var entries []types.PutRecordsRequestEntry
	for _, k := range keys {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(k), Data: []byte(tag + "-" + k)})
	}
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range out.Records {
		if r.ErrorCode != nil {
			t.Fatalf("record %d failed: %s %s", i, *r.ErrorCode, *r.ErrorMessage)
		}
		acked[keys[i]] = append(acked[keys[i]], string(entries[i].Data))
	}
}

func TestReshardOperations(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--transition-delay", "2s", "--shard-limit", "12", "--scalings-per-day", "3")
	c := srv.client()
	ctx := context.Background()
	const s = "elastic"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, s)
	arn := "arn:aws:kinesis:us-east-1:000000000000:stream/" + s
	created := time.Now()
	keys := make([]string, 40)
	for i := range keys {
		keys[i] = fmt.Sprintf("key-%d", i)
	}
	acked := map[string][]string{}
	putKeyed(t, c, s, keys, "a", acked)

	quarter := new(big.Int).Rsh(hashSpace, 2).String()
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(quarter)}); err != nil {
		t.Fatal(err)
	}
	// One update at a time.
	const inUse = "Stream elastic under account 000000000000 not ACTIVE, instead in state UPDATING"
	_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String("shardId-000000000001"), NewStartingHashKey: aws.String("340282366920938463463374607431768211000")})
	expectAPIError(t, err, "ResourceInUseException", inUse)
	_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(s), ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
	expectAPIError(t, err, "ResourceInUseException", inUse)
	// The split's children do not exist before it takes effect.
	_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(s), ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000003")})
	expectAPIError(t, err, "ResourceNotFoundException", "Could not find shard shardId-000000000002 in stream elastic under account 000000000000.")
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(s), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	expectAPIError(t, err, "ResourceInUseException", inUse)
	// Data flows while UPDATING, to the old shards: the split takes effect
	// when the stream is ACTIVE again, as on Kinesis. (A status read after
	// the listing shows the listing was made while UPDATING: the stream
	// does not go back to it.)
	putKeyed(t, c, s, keys, "b", acked)
	during := ids(listAll(t, c, s, nil))
	upd, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s)})
	if err != nil {
		t.Fatal(err)
	}
	if upd.StreamDescriptionSummary.StreamStatus != types.StreamStatusUpdating {
		t.Fatalf("the stream left UPDATING within the transition delay of the split (slow machine?): %s", upd.StreamDescriptionSummary.StreamStatus)
	}
	if during != ",1" {
		t.Fatalf("shards while UPDATING: %q", during)
	}
	waitActive(t, c, s)

	// Errors, each with Kinesis' type and message.
	for _, tc := range []struct {
		name       string
		call       func() error
		code, text string
	}{
		{"split closed", func() error {
			_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")})
			return err
		}, "InvalidArgumentException", "Shard shardId-000000000000 in stream elastic under account 000000000000 has already been merged or split, and thus is not eligible for merging or splitting."},
		{"split outside range", func() error {
			_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String("shardId-000000000002"), NewStartingHashKey: aws.String("1")})
			return err
		}, "InvalidArgumentException", "NewStartingHashKey 1 used in SplitShard() on shard shardId-000000000002 in stream elastic under account 000000000000 is not both greater than one plus the shard's StartingHashKey 0 and less than the shard's EndingHashKey"},
		{"split missing shard", func() error {
			_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String("shardId-000000000099"), NewStartingHashKey: aws.String("1000")})
			return err
		}, "ResourceNotFoundException", "Could not find shard shardId-000000000099 in stream elastic under account 000000000000."},
		{"split missing stream", func() error {
			_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("nope"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")})
			return err
		}, "ResourceNotFoundException", "Stream nope under account 000000000000 not found."},
		{"merge not adjacent", func() error {
			_, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(s), ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
			return err
		}, "InvalidArgumentException", "Shards shardId-000000000002 and shardId-000000000001 in stream elastic under account 000000000000 are not an adjacent pair of shards eligible for merging"},
		{"merge closed", func() error {
			_, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(s), ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
			return err
		}, "InvalidArgumentException", "has already been merged or split, and thus is not eligible for merging or splitting."},
		{"scale over double", func() error {
			_, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(s), TargetShardCount: aws.Int32(7), ScalingType: types.ScalingTypeUniformScaling})
			return err
		}, "LimitExceededException", "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: 3, Target shard count: 7"},
		{"scale below half", func() error {
			_, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(s), TargetShardCount: aws.Int32(1), ScalingType: types.ScalingTypeUniformScaling})
			return err
		}, "LimitExceededException", "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: 3, Target shard count: 1"},
		{"scale over limit", func() error {
			_, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(s), TargetShardCount: aws.Int32(13), ScalingType: types.ScalingTypeUniformScaling})
			return err
		}, "LimitExceededException", "Target shard count or number of open shards cannot be greater than 12. Current open shard count: 3, Target shard count: 13"},
	} {
		t.Run(tc.name, func(t *testing.T) { expectAPIError(t, tc.call(), tc.code, tc.text) })
	}

	// Lineage in ListShards and DescribeStream.
	all := listAll(t, c, s, nil)
	if ids(all) != ",1,2,3" || all[0].SequenceNumberRange.EndingSequenceNumber == nil || aws.ToString(all[2].ParentShardId) != "shardId-000000000000" ||
		aws.ToString(all[3].ParentShardId) != "shardId-000000000000" || *all[2].HashKeyRange.EndingHashKey != new(big.Int).Sub(bigKey(quarter), big.NewInt(1)).String() {
		t.Fatalf("after split: %s %+v", ids(all), all)
	}
	desc, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(s)})
	if err != nil || len(desc.StreamDescription.Shards) != 4 || aws.ToString(desc.StreamDescription.Shards[3].ParentShardId) != "shardId-000000000000" {
		t.Fatalf("describe: %v %+v", err, desc)
	}
	// A drained parent answers ChildShards and no next iterator.
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(s), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	gr, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || gr.NextShardIterator != nil || len(gr.ChildShards) != 2 || gr.ChildShards[0].ParentShards[0] != "shardId-000000000000" {
		t.Fatalf("drained parent: %v %+v", err, gr)
	}

	// Merge the two children: naming the upper one first is refused, as on
	// Kinesis; short shard ids are accepted.
	_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamARN: aws.String(arn), ShardToMerge: aws.String("shardId-000000000003"), AdjacentShardToMerge: aws.String("shardId-2")})
	expectAPIError(t, err, "InvalidArgumentException", "Shards shardId-000000000003 and shardId-000000000002 in stream elastic under account 000000000000 are not an adjacent pair of shards eligible for merging")
	if _, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamARN: aws.String(arn), ShardToMerge: aws.String("shardId-2"), AdjacentShardToMerge: aws.String("shardId-000000000003")}); err != nil {
		t.Fatal(err)
	}
	putKeyed(t, c, s, keys, "c", acked)
	waitActive(t, c, s)
	open := checkOpenTiles(t, c, s, 0)
	if ids(open) != "4,1" || aws.ToString(open[0].ParentShardId) != "shardId-000000000002" || aws.ToString(open[0].AdjacentParentShardId) != "shardId-000000000003" {
		t.Fatalf("after merge: %s %+v", ids(open), open)
	}

	// Uniform scaling: 2 -> 3 -> 4, even ranges each time.
	for _, n := range []int32{3, 4} {
		us, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(s), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(us.TargetShardCount) != n || aws.ToInt32(us.CurrentShardCount) != n-1 || aws.ToString(us.StreamName) != s {
			t.Fatalf("UpdateShardCount output %+v", us)
		}
		putKeyed(t, c, s, keys, fmt.Sprint("d", n), acked)
		waitActive(t, c, s)
		checkOpenTiles(t, c, s, int(n))
	}
	// Every ShardFilter over the lineage.
	latest := ids(checkOpenTiles(t, c, s, 4))
	later := aws.Time(time.Now().Add(time.Minute))
	for _, tc := range []struct {
		name string
		f    *types.ShardFilter
		want string
	}{
		{"at latest", &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, ""},
		// The stream is younger than its retention period: every shard.
		{"at trim horizon", &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, ids(listAll(t, c, s, nil))},
		{"from trim horizon", &types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, ids(listAll(t, c, s, nil))},
		{"at creation", &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(created)}, ",1"},
		{"at a later time", &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: later}, "sorted:" + latest},
		{"from a later time", &types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: later}, "sorted:" + latest},
		{"after shard id", &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000004")}, after4(ids(listAll(t, c, s, nil)))},
	} {
		got := ids(listAll(t, c, s, tc.f))
		want := tc.want
		if tc.name == "at latest" {
			want = got // already checked by checkOpenTiles
		}
		if strings.HasPrefix(want, "sorted:") {
			want = sortIDs(strings.TrimPrefix(want, "sorted:"))
		}
		if got != want {
			t.Errorf("%s: shards %q, want %q", tc.name, got, want)
		}
	}

	// Only two scalings per day are left... and the third is refused.
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(s), TargetShardCount: aws.Int32(3), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, s)
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(s), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	expectAPIError(t, err, "LimitExceededException", "has been scaled 3 times in the last 24 hours")

	// ON_DEMAND: shards kept; provisioned-only operations refused.
	if _, err := c.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}})
	expectAPIError(t, err, "ResourceInUseException", inUse)
	waitActive(t, c, s)
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s)})
	if err != nil || sum.StreamDescriptionSummary.StreamModeDetails.StreamMode != types.StreamModeOnDemand || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 3 {
		t.Fatalf("on-demand summary: %v %+v", err, sum)
	}
	_, err = c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String(*checkOpenTiles(t, c, s, 3)[0].ShardId), NewStartingHashKey: aws.String("1000")})
	expectAPIError(t, err, "ValidationException", "Request is invalid. Stream elastic under account 000000000000 is in On-Demand mode.")
	_, err = c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(s), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	expectAPIError(t, err, "ValidationException", "is in On-Demand mode.")
	if _, err := c.UpdateStreamMode(ctx, &kinesis.UpdateStreamModeInput{StreamARN: aws.String(arn), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeProvisioned}}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, s)

	// Records only ever went to open shards, and all of them read back.
	putKeyed(t, c, s, keys, "e", acked)
	checkKeyed(t, readLineage(t, c, s), acked)
}

// after4 keeps the ids above 4 of a comma-separated list.
func after4(list string) string {
	var out []string
	for _, id := range strings.Split(list, ",") {
		if n, _ := strconv.Atoi(id); n > 4 {
			out = append(out, id)
		}
	}
	return strings.Join(out, ",")
}

func sortIDs(list string) string {
	parts := strings.Split(list, ",")
	sort.Slice(parts, func(a, b int) bool {
		x, _ := strconv.Atoi(parts[a])
		y, _ := strconv.Atoi(parts[b])
		return x < y
	})
	return strings.Join(parts, ",")
}

// TestReshardUnderLoad writes keyed records continuously while the stream
// is split, merged and rescaled several times, then reads the whole lineage
// parent before child: every acknowledged record is there exactly once and
// in order per partition key.
func TestReshardUnderLoad(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--transition-delay", "100ms", "--scalings-per-day", "0")
	c := srv.client()
	ctx := context.Background()
	const s = "busy"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, s)

	var (
		mu    sync.Mutex
		acked = map[string][]string{}
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	finish := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer finish()
	const producers = 4
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := srv.client()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				var entries []types.PutRecordsRequestEntry
				for k := range 16 {
					entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("p%d-k%d", p, k)), Data: fmt.Appendf(nil, "%d", n)})
				}
				var sent []types.PutRecordsRequestEntry
				if p == 0 { // one producer uses PutRecord
					for _, e := range entries {
						if _, err := pc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(s), PartitionKey: e.PartitionKey, Data: e.Data}); err != nil {
							t.Errorf("PutRecord: %v", err)
							return
						}
						sent = append(sent, e)
					}
				} else {
					out, err := pc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(s), Records: entries})
					if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
						t.Errorf("PutRecords: %v %+v", err, out)
						return
					}
					sent = entries
				}
				mu.Lock()
				for _, e := range sent {
					acked[*e.PartitionKey] = append(acked[*e.PartitionKey], string(e.Data))
				}
				mu.Unlock()
			}
		}()
	}

	openIDs := func() []string {
		var out []string
		for _, sh := range checkOpenTiles(t, c, s, 0) {
			out = append(out, *sh.ShardId)
		}
		return out
	}
	steps := []struct {
		name string
		do   func() error
	}{
		{"split", func() error {
			_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String(openIDs()[0]), NewStartingHashKey: aws.String("12345678901234567890")})
			return err
		}},
		{"merge", func() error {
			o := openIDs()
			_, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(s), ShardToMerge: aws.String(o[0]), AdjacentShardToMerge: aws.String(o[1])})
			return err
		}},
		{"scale to 4", func() error { return scale(ctx, c, s, 4) }},
		{"scale to 7", func() error { return scale(ctx, c, s, 7) }},
		{"scale to 4", func() error { return scale(ctx, c, s, 4) }},
		{"split again", func() error {
			_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String(openIDs()[2]), NewStartingHashKey: aws.String(new(big.Int).Add(new(big.Int).Rsh(hashSpace, 1), big.NewInt(99)).String())})
			return err
		}},
		{"scale to 3", func() error { return scale(ctx, c, s, 3) }},
	}
	for _, st := range steps {
		time.Sleep(150 * time.Millisecond)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		waitActive(t, c, s)
	}
	time.Sleep(150 * time.Millisecond)
	finish()
	if t.Failed() {
		return
	}
	checkOpenTiles(t, c, s, 3)
	checkKeyed(t, readLineage(t, c, s), acked)
}

func scale(ctx context.Context, c *kinesis.Client, s string, n int32) error {
	_, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(s), TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling})
	return err
}

// TestOnDemandScaling drives an ON_DEMAND stream with a rising then falling
// load: the service splits its hot shards, then merges them back after the
// cool-down, and the decisions show in DescribeStreamSummary and ListShards.
func TestOnDemandScaling(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--transition-delay", "0s",
		"--scale-window", "500ms", "--scale-cooldown", "2s",
		"--scale-split-records", "200", "--scale-merge-records", "50",
		"--scale-split-bytes", "100000000", "--scale-merge-bytes", "50000000",
		"--scale-min-shards", "4", "--scale-max-shards", "8")
	c := srv.client()
	ctx := context.Background()
	const s = "auto"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, s)
	openCount := func() int32 {
		sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount)
	}
	if n := openCount(); n != 4 {
		t.Fatalf("new on-demand stream has %d shards", n)
	}

	// Rising load: about 2,000 records/s over 4 shards, well above 200/s each.
	var (
		acked = map[string][]string{}
		mu    sync.Mutex
		wg    sync.WaitGroup
		stop  = make(chan struct{})
	)
	finish := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer finish()
	for p := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := srv.client()
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				var entries []types.PutRecordsRequestEntry
				for k := range 50 {
					entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("p%d-%d", p, k)), Data: fmt.Appendf(nil, "%d", n)})
				}
				out, err := pc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(s), Records: entries})
				if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
					t.Errorf("PutRecords: %v", err)
					return
				}
				mu.Lock()
				for _, e := range entries {
					acked[*e.PartitionKey] = append(acked[*e.PartitionKey], string(e.Data))
				}
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	grew := int32(4)
	for grew <= 4 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		grew = openCount()
	}
	finish()
	if grew <= 4 {
		t.Fatalf("the stream did not grow under load (still %d shards)", grew) // the cleanup prints the log
	}
	t.Logf("grew to %d open shards", grew)
	if closed := len(listAll(t, c, s, nil)) - len(listAll(t, c, s, &types.ShardFilter{Type: types.ShardFilterTypeAtLatest})); closed == 0 {
		t.Fatal("no closed parent shards listed after growing")
	}

	// Falling load: nothing. After the cool-down the stream shrinks to 4.
	deadline = time.Now().Add(20 * time.Second)
	n := openCount()
	for n > 4 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		n = openCount()
	}
	if n != 4 {
		t.Fatalf("the idle stream did not shrink to 4 shards (%d)", n)
	}
	checkOpenTiles(t, c, s, 0)
	checkKeyed(t, readLineage(t, c, s), acked)
	srv.stop(t) // the log is complete once the process has exited
	if l := srv.log.String(); !strings.Contains(l, "on-demand scaling: split hot shards") || !strings.Contains(l, "on-demand scaling: merge cold shards") {
		t.Fatalf("scaling decisions not logged:\n%s", l)
	}
}

// launchEnv starts `runnel serve` with extra environment variables; the
// caller waits for it or kills it.
func launchEnv(t *testing.T, dataDir string, env []string, args ...string) *server {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	// The admin listener on a free port of its own: servers run side by side.
	full := append([]string{"serve", "--listen", addr, "--data-dir", dataDir, "--admin-listen", "127.0.0.1:0"}, args...)
	cmd := exec.Command(runnelBin, full...)
	cmd.Env = append(os.Environ(), env...)
	var log logBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, addr: addr, dataDir: dataDir, log: &log}
	t.Cleanup(s.kill)
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("runnel serve did not listen on %s; log:\n%s", addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReshardCrash kills the server (SIGKILL, from inside, via the
// RUNNEL_CRASHPOINT hook) in the middle of a split, a merge and a rescaling,
// before and after the metadata change, restarts it and checks that the
// stream is consistent: the change happened entirely or not at all, the open
// shards tile the hash space exactly once, and every acknowledged record is
// readable, with the stream usable and reshardable again.
func TestReshardCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts server processes")
	}
	ops := map[string]func(ctx context.Context, c *kinesis.Client, s string) error{
		"split": func(ctx context.Context, c *kinesis.Client, s string) error {
			_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000000")})
			return err
		},
		"merge": func(ctx context.Context, c *kinesis.Client, s string) error {
			_, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(s), ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
			return err
		},
		"scale": func(ctx context.Context, c *kinesis.Client, s string) error { return scale(ctx, c, s, 3) },
	}
	// reshard-pending dies with the plan stored, before the switch: the
	// restarted server makes the switch (its deadline has passed) on the
	// first read, so the reshard is seen done.
	for _, point := range []string{"reshard-before-cas", "reshard-pending", "reshard-after-cas"} {
		for _, op := range []string{"split", "merge", "scale"} {
			t.Run(point+"/"+op, func(t *testing.T) {
				dir := t.TempDir()
				srv := launchEnv(t, dir, []string{"RUNNEL_CRASHPOINT=" + point}, "--transition-delay", "0s")
				c := srv.client()
				ctx := context.Background()
				const s = "crashy"
				if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s), ShardCount: aws.Int32(2)}); err != nil {
					t.Fatal(err)
				}
				waitActive(t, c, s)
				keys := make([]string, 30)
				for i := range keys {
					keys[i] = fmt.Sprintf("k%d", i)
				}
				acked := map[string][]string{}
				putKeyed(t, c, s, keys, "before", acked)
				before := len(listAll(t, c, s, nil))

				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				err := ops[op](cctx, c, s)
				cancel()
				if err == nil {
					t.Fatalf("%s succeeded; the server should have died at %s", op, point)
				}
				if err := srv.cmd.Wait(); err == nil {
					t.Fatal("the server exited cleanly")
				}
				if !strings.Contains(srv.log.String(), "crash point reached") {
					t.Fatalf("server died elsewhere; log:\n%s", srv.log.String())
				}

				srv2 := launchEnv(t, dir, nil, "--transition-delay", "0s")
				c2 := srv2.client()
				after := len(listAll(t, c2, s, nil))
				if changed := after != before; changed != (point != "reshard-before-cas") {
					t.Fatalf("%d shards before, %d after a crash at %s", before, after, point)
				}
				checkOpenTiles(t, c2, s, 0)
				putKeyed(t, c2, s, keys, "restarted", acked)
				// Reshardable again, and still consistent.
				open := checkOpenTiles(t, c2, s, 0)
				if err := scale(ctx, c2, s, int32(len(open)+1)); err != nil {
					t.Fatal(err)
				}
				waitActive(t, c2, s)
				checkOpenTiles(t, c2, s, len(open)+1)
				putKeyed(t, c2, s, keys, "rescaled", acked)
				checkKeyed(t, readLineage(t, c2, s), acked)
			})
		}
	}
}
