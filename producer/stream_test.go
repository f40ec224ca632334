package producer_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/runnel/runnel/kpl"
	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// createStream creates an ACTIVE stream of n shards.
func createStream(t testing.TB, c *kinesis.Client, name string, n int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(n)}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	w := kinesis.NewStreamExistsWaiter(c)
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("wait for stream: %v", err)
	}
}

// stored is one user record read back.
type stored struct {
	shard  string
	seq    string
	subSeq uint64
	agg    bool
	key    string
	data   []byte
}

// readAll reads every shard of the stream from TRIM_HORIZON to its end
// (to the tip for open shards), de-aggregating, shards in id order
// (parents before children).
func readAll(t testing.TB, c *kinesis.Client, stream string) []stored {
	t.Helper()
	ctx := context.Background()
	var shards []types.Shard
	var token *string
	for {
		in := &kinesis.ListShardsInput{NextToken: token}
		if token == nil {
			in.StreamName = aws.String(stream)
		}
		out, err := c.ListShards(ctx, in)
		if err != nil {
			t.Fatalf("list shards: %v", err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		token = out.NextToken
	}
	sort.Slice(shards, func(i, j int) bool { return *shards[i].ShardId < *shards[j].ShardId })
	var all []stored
	for _, sh := range shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("get shard iterator: %v", err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			var throttled *types.ProvisionedThroughputExceededException
			if errors.As(err, &throttled) {
				time.Sleep(200 * time.Millisecond) // a server enforcing read limits
				continue
			}
			if err != nil {
				t.Fatalf("get records: %v", err)
			}
			for _, r := range out.Records {
				subs, agg := kpl.Deaggregate(kpl.Record{PartitionKey: *r.PartitionKey, Data: r.Data})
				for _, u := range subs {
					all = append(all, stored{shard: *sh.ShardId, seq: *r.SequenceNumber, subSeq: u.SubSequenceNumber,
						agg: agg, key: u.PartitionKey, data: u.Data})
				}
			}
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return all
}

// payload is a record's data: its writer's key index and its sequence
// within that key, padded to size bytes.
func payload(buf []byte, key, seq uint32, size int) []byte {
	buf = buf[:0]
	buf = binary.BigEndian.AppendUint32(buf, key)
	buf = binary.BigEndian.AppendUint32(buf, seq)
	for len(buf) < size {
		buf = append(buf, byte(len(buf)))
	}
	return buf
}

// ack is what a writer learned of one record.
type ack struct {
	res producer.Result
	err error
}

// produce puts records from writers goroutines, each writing its own keys
// (keysPerWriter of them) in turn, perKey records for each, and returns the
// results by key and sequence. Every record must be acknowledged.
func produce(t testing.TB, p *producer.Producer, writers, keysPerWriter, perKey, size int) map[string][]ack {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	acks := map[string][]ack{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := make([]string, keysPerWriter)
			res := make([][]ack, keysPerWriter)
			for k := range keys {
				keys[k] = fmt.Sprintf("w%02d-key%04d", w, k)
				res[k] = make([]ack, perKey)
			}
			var rmu sync.Mutex
			buf := make([]byte, 0, size)
			for s := range perKey {
				for k := range keys {
					kk, ss := k, s
					err := p.PutAsync(ctx, keys[k], payload(buf, uint32(w*keysPerWriter+k), uint32(s), size), func(r producer.Result) {
						rmu.Lock()
						res[kk][ss] = ack{res: r, err: r.Err}
						rmu.Unlock()
					})
					if err != nil {
						t.Errorf("put: %v", err)
						return
					}
				}
			}
			// The callbacks have all run once Flush returns.
			if err := p.Flush(ctx); err != nil {
				t.Errorf("flush: %v", err)
			}
			mu.Lock()
			rmu.Lock()
			for k := range keys {
				acks[keys[k]] = res[k]
			}
			rmu.Unlock()
			mu.Unlock()
		}()
	}
	wg.Wait()
	return acks
}

// checkStream checks that every acknowledged record is in the stream
// exactly once, where its acknowledgement said, and that each key's
// records are in the order they were put.
func checkStream(t testing.TB, got []stored, acks map[string][]ack, wantAll, ordered bool, dupsOK ...bool) {
	t.Helper()
	type pos struct {
		shard, seq string
		sub        uint64
	}
	seen := map[string]int{} // key -> next sequence expected
	count := map[[2]uint32]int{}
	where := map[[2]uint32][]pos{}
	for _, r := range got {
		k := binary.BigEndian.Uint32(r.data)
		s := binary.BigEndian.Uint32(r.data[4:])
		id := [2]uint32{k, s}
		count[id]++
		where[id] = append(where[id], pos{r.shard, r.seq, r.subSeq})
		next := seen[r.key]
		if ordered && int(s) < next && count[id] == 1 {
			t.Fatalf("key %s: record %d read after record %d", r.key, s, next-1)
		}
		if int(s) >= next {
			seen[r.key] = int(s) + 1
		}
	}
	dups, lost, acked := 0, 0, 0
	for id, n := range count {
		if n > 1 {
			dups++
			if dups < 5 && (len(dupsOK) == 0 || !dupsOK[0]) {
				t.Errorf("record %v read %d times", id, n)
			}
		}
	}
	keyIndex := map[string]uint32{}
	for _, r := range got {
		keyIndex[r.key] = binary.BigEndian.Uint32(r.data)
	}
	for key, as := range acks {
		for s, a := range as {
			if a.err != nil {
				if wantAll {
					t.Fatalf("key %s record %d: %v", key, s, a.err)
				}
				continue
			}
			acked++
			ki, ok := keyIndex[key]
			if !ok {
				lost++
				continue
			}
			ps, ok := where[[2]uint32{ki, uint32(s)}]
			if !ok {
				lost++
				if lost < 5 {
					t.Errorf("key %s record %d acknowledged (%s %s) but not in the stream", key, s, a.res.ShardID, a.res.SequenceNumber)
				}
				continue
			}
			found := false
			for _, p := range ps {
				found = found || (p.shard == a.res.ShardID && p.seq == a.res.SequenceNumber && (!a.res.Aggregated || p.sub == a.res.SubSequenceNumber))
			}
			if !found {
				t.Fatalf("key %s record %d acknowledged as %s/%s/%d, read at %v", key, s,
					a.res.ShardID, a.res.SequenceNumber, a.res.SubSequenceNumber, ps)
			}
		}
	}
	if len(dupsOK) > 0 && dupsOK[0] {
		t.Logf("%d records read more than once", dups)
		dups = 0
	}
	if dups > 0 || lost > 0 {
		t.Fatalf("%d records read more than once, %d acknowledged records lost (of %d acknowledged)", dups, lost, acked)
	}
}

func TestPutReadBack(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    []producer.Option
		ordered bool
	}{
		{"aggregated", nil, true},
		{"plain", []producer.Option{producer.Aggregation(false)}, true},
		{"unordered", []producer.Option{producer.Unordered(4)}, false},
		{"unordered plain", []producer.Option{producer.Unordered(4), producer.Aggregation(false)}, false},
		{"sdk", []producer.Option{producer.SDKCalls()}, true},
		{"sdk plain", []producer.Option{producer.SDKCalls(), producer.Aggregation(false)}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := runneltest.NewServer(t)
			c := srv.Client(t)
			createStream(t, c, "s", 4)
			p, err := producer.New(c, "s", append([]producer.Option{producer.RateLimit(false), producer.Linger(5 * time.Millisecond)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Now()
			acks := produce(t, p, 4, 8, 200, 100)
			t.Logf("produce %v", time.Since(t0))
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			t.Logf("close %v", time.Since(t0))
			m := p.Metrics()
			if m.RecordsPut != 4*8*200 || m.BufferedBytes != 0 || m.BufferedRecords != 0 {
				t.Fatalf("metrics: %+v", m)
			}
			got := readAll(t, c, "s")
			t.Logf("read %v", time.Since(t0))
			checkStream(t, got, acks, true, tc.ordered)
			t.Logf("%+v", m)
		})
	}
}

func TestThrottledServer(t *testing.T) {
	for _, tc := range []struct {
		name          string
		opts          []producer.Option
		shards        int32
		maxRecord     int
		keys, perKey  int
		wantThrottled bool
	}{
		// Without the producer's own pacing the server throttles and the
		// producer retries: aggregates of 128 KiB exceed a shard's
		// 1 MiB/s after the first second's worth.
		{"aggregated", []producer.Option{producer.RateLimit(false)}, 1, 128 << 10, 8, 1000, true},
		{"plain", []producer.Option{producer.RateLimit(false), producer.Aggregation(false)}, 2, 32 << 10, 64, 25, true},
		// With it, the records get through all the same.
		{"paced", []producer.Option{producer.Aggregation(false)}, 2, 32 << 10, 64, 25, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := runneltest.NewServer(t, runneltest.WithThroughputLimits())
			c := srv.Client(t)
			createStream(t, c, "s", tc.shards)
			bound := int64(3 * tc.maxRecord)
			opts := append([]producer.Option{
				producer.MaxRecordSize(tc.maxRecord), producer.MaxBufferedBytes(bound),
				producer.Backoff(20*time.Millisecond, 500*time.Millisecond),
				producer.Linger(10 * time.Millisecond), producer.RecordTTL(5 * time.Minute),
			}, tc.opts...)
			p, err := producer.New(c, "s", opts...)
			if err != nil {
				t.Fatal(err)
			}
			acks := produce(t, p, 4, tc.keys, tc.perKey, 100)
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			m := p.Metrics()
			t.Logf("%+v", m)
			if m.PeakBufferedBytes > bound {
				t.Fatalf("buffered %d bytes, bound %d", m.PeakBufferedBytes, bound)
			}
			if m.PeakBufferedBytes < bound/2 {
				t.Fatalf("buffered at most %d bytes: the test did not fill the buffer", m.PeakBufferedBytes)
			}
			if tc.wantThrottled && (m.Throttled == 0 || m.RecordsRetried == 0) {
				t.Fatalf("no throttled or retried records: the test proves nothing")
			}
			if !tc.wantThrottled && m.Throttled > 0 {
				t.Fatalf("%d records throttled although paced", m.Throttled)
			}
			checkStream(t, readAll(t, c, "s"), acks, true, true)
		})
	}
}

func TestReshardFollowed(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reshard  func(c *kinesis.Client) error
		children []string
		dupsOK   bool
	}{
		{"split", func(c *kinesis.Client) error {
			// The middle of shard 0's range [0, 2^127).
			_, err := c.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String("s"),
				ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("85070591730234615865843651857942052864")})
			return err
		}, []string{"shardId-000000000002", "shardId-000000000003"}, true},
		{"merge", func(c *kinesis.Client) error {
			_, err := c.MergeShards(context.Background(), &kinesis.MergeShardsInput{StreamName: aws.String("s"),
				ShardToMerge: aws.String("shardId-000000000000"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
			return err
		}, []string{"shardId-000000000002"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := runneltest.NewServer(t)
			c := srv.Client(t)
			createStream(t, c, "s", 2)
			p, err := producer.New(c, "s", producer.RateLimit(false), producer.Linger(2*time.Millisecond),
				producer.AggregationMaxSize(8<<10))
			if err != nil {
				t.Fatal(err)
			}
			const writers, keys, perKey = 4, 16, 300
			done := make(chan error, 1)
			go func() {
				for p.Metrics().RecordsPut < writers*keys*perKey/3 {
					time.Sleep(time.Millisecond)
				}
				done <- tc.reshard(c)
			}()
			acks := produce(t, p, writers, keys, perKey, 100)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if err := p.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			// Records put after the producer learned of the reshard: at
			// least these go to the new shards, however fast the rest went.
			after := map[string]*producer.Future{}
			for k := range keys {
				key := fmt.Sprintf("w00-key%04d", k)
				after[key] = p.Put(context.Background(), key, payload(nil, uint32(k), perKey, 100))
			}
			if err := p.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			for key, f := range after {
				res, err := f.Wait(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				acks[key] = append(acks[key], ack{res: res})
			}
			m := p.Metrics()
			t.Logf("%+v", m)
			if m.ShardMapRefreshes == 0 {
				t.Fatal("the shard map was never refreshed")
			}
			onChildren := 0
			for _, as := range acks {
				for _, a := range as {
					if slices.Contains(tc.children, a.res.ShardID) {
						onChildren++
					}
				}
			}
			if onChildren == 0 {
				t.Fatal("no record went to the new shards")
			}
			got := readAll(t, c, "s")
			// After a split, an aggregate sent to the closed parent is
			// stored on one child and, as some of its records belong to
			// the other, sent again: those may be read twice. Order is
			// checked on first copies; the acknowledged copy must be one
			// of them. After a merge the child holds them all: no copies.
			checkStream(t, got, acks, true, true, tc.dupsOK)
			t.Logf("%d records on the new shards, %d read", onChildren, len(got))
		})
	}
}

// TestMillion puts a million 100-byte records from 16 goroutines into a
// server enforcing Kinesis' throughput limits, so that records are
// throttled and retried, and reads them back: each acknowledged once, in
// order per key, with the buffer under its bound. A hundred thousand with
// -short or under the race detector, which makes a million take over a
// minute on two cores.
func TestMillion(t *testing.T) {
	const writers, keys = 16, 25
	perKey, shards := 2500, int32(8)
	if testing.Short() || raceEnabled {
		// A tenth of the records on a quarter of the shards: still more
		// than the shards take per second, so they throttle.
		perKey, shards = 250, 2
	}
	// The server enforces Kinesis' per-shard limits and the producer does
	// not pace itself, so shards throttle and records are retried.
	srv := runneltest.NewServer(t, runneltest.WithThroughputLimits())
	c := srv.Client(t)
	createStream(t, c, "s", shards)
	const bound = 16 << 20
	p, err := producer.New(c, "s", producer.RateLimit(false), producer.MaxBufferedBytes(bound))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	acks := produce(t, p, writers, keys, perKey, 100)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	el := time.Since(t0)
	m := p.Metrics()
	t.Logf("%d records in %v (%.0f/s): %+v", m.RecordsPut, el, float64(m.RecordsPut)/el.Seconds(), m)
	if m.RecordsPut != writers*keys*int64(perKey) {
		t.Fatalf("%d records put, want %d", m.RecordsPut, writers*keys*perKey)
	}
	if m.Throttled == 0 || m.RecordsRetried == 0 {
		t.Fatalf("no throttling to retry (%d throttled, %d retried): the test proves less than it says", m.Throttled, m.RecordsRetried)
	}
	if m.PeakBufferedBytes > bound {
		t.Fatalf("buffered %d bytes, bound %d", m.PeakBufferedBytes, bound)
	}
	checkStream(t, readAll(t, c, "s"), acks, true, true)
	t.Logf("read back and checked after %v", time.Since(t0))
}

// TestStreamGone deletes the stream under a producer: its records fail
// with the service's error once their TTL runs out, on either path.
func TestStreamGone(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []producer.Option
	}{{"own calls", nil}, {"sdk", []producer.Option{producer.SDKCalls()}}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := runneltest.NewServer(t)
			c := srv.Client(t)
			createStream(t, c, "s", 1)
			p, err := producer.New(c, "s", append([]producer.Option{producer.RateLimit(false), producer.Linger(0),
				producer.RecordTTL(time.Second), producer.Backoff(10*time.Millisecond, 100*time.Millisecond)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close(context.Background())
			if _, err := c.DeleteStream(context.Background(), &kinesis.DeleteStreamInput{StreamName: aws.String("s")}); err != nil {
				t.Fatal(err)
			}
			res, _ := p.Put(context.Background(), "k", []byte("x")).Wait(context.Background())
			var api smithy.APIError
			if !errors.Is(res.Err, producer.ErrRecordExpired) || !errors.As(res.Err, &api) || api.ErrorCode() != "ResourceNotFoundException" {
				t.Fatalf("err = %v, want an expiry after ResourceNotFoundException", res.Err)
			}
			if res.Attempts < 2 {
				t.Fatalf("%d attempts", res.Attempts)
			}
		})
	}
	if _, err := producer.New(runneltest.NewServer(t).Client(t), "none"); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("New on a missing stream: %v", err)
	}
}
