package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"

	"github.com/runnel/runnel/runneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStreamSinkUnderThrottling sends more than a shard takes per second
// to a server enforcing Kinesis' limits: PutRecords answers with
// ProvisionedThroughputExceeded for some records, which the sink retries
// until every record is in the stream exactly once, each acknowledged once.
func TestStreamSinkUnderThrottling(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithThroughputLimits(), runneltest.WithTransitionDelay(0))
	client := srv.Client(t)
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitStream(t, client, "s")
	const n = 2500
	sink := NewStreamSink(ctx, client, "s", SinkOptions{MaxAge: 50 * time.Millisecond, RetryInitial: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	acks := make([]atomic.Int32, n)
	var failed atomic.Int32
	for i := range n {
		sink.Put(ctx, fmt.Sprint(i), fmt.Appendf(nil, "record %05d %0400d", i, 0), func(err error) {
			if err != nil {
				failed.Add(1)
			}
			acks[i].Add(1)
		})
	}
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := sink.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	for i := range acks {
		if c := acks[i].Load(); c != 1 {
			t.Fatalf("record %d acknowledged %d times", i, c)
		}
	}
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d records given up", f)
	}
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, client, "s", n)
	seen := map[string]int{}
	for _, r := range got {
		seen[r]++
	}
	for i := range n {
		if c := seen[fmt.Sprintf("record %05d %0400d", i, 0)]; c != 1 {
			t.Fatalf("record %d in the stream %d times", i, c)
		}
	}
}

func waitStream(t *testing.T, c *kinesis.Client, name string) {
	t.Helper()
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(context.Background(), &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
}

// readAll reads a one-shard stream from its start until it has n records.
func readAll(t *testing.T, c *kinesis.Client, stream string, n int) []string {
	t.Helper()
	ctx := context.Background()
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	iter := it.ShardIterator
	var out []string
	deadline := time.Now().Add(30 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		r, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			var pt *types.ProvisionedThroughputExceededException
			if errors.As(err, &pt) {
				time.Sleep(200 * time.Millisecond)
				continue
			}
			t.Fatal(err)
		}
		for _, rec := range r.Records {
			out = append(out, string(rec.Data))
		}
		iter = r.NextShardIterator
		if len(r.Records) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	return out
}

// fakeAPI answers PutRecords by a script: calls fail whole, or records
// fail by index.
type fakeAPI struct {
	mu    sync.Mutex
	calls [][]string
	// answer decides for call i (0-based): an error for the call, or the
	// indexes of records that fail.
	answer func(i int) ([]int, error)
}

func (f *fakeAPI) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return nil, errors.New("not allowed")
}

func (f *fakeAPI) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.mu.Lock()
	i := len(f.calls)
	var data []string
	for _, r := range in.Records {
		data = append(data, string(r.Data))
	}
	f.calls = append(f.calls, data)
	f.mu.Unlock()
	fail, err := f.answer(i)
	if err != nil {
		return nil, err
	}
	out := &kinesis.PutRecordsOutput{Records: make([]types.PutRecordsResultEntry, len(in.Records))}
	for j := range out.Records {
		if slices.Contains(fail, j) {
			out.Records[j] = types.PutRecordsResultEntry{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("try again")}
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
		} else {
			out.Records[j] = types.PutRecordsResultEntry{ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String("1")}
		}
	}
	return out, nil
}

// TestStreamSinkRetries checks the order of retries: a failed call is
// made again whole, failed records go first in the next call, and done
// comes only with the acknowledgement.
func TestStreamSinkRetries(t *testing.T) {
	api := &fakeAPI{answer: func(i int) ([]int, error) {
		switch i {
		case 0:
			return nil, errors.New("connection reset")
		case 1:
			return []int{1, 3}, nil
		}
		return nil, nil
	}}
	sink := NewStreamSink(context.Background(), api, "s", SinkOptions{MaxRecords: 4, MaxAge: time.Hour, RetryInitial: time.Millisecond})
	var mu sync.Mutex
	var acked []string
	put := func(s string) {
		sink.Put(context.Background(), "k", []byte(s), func(err error) {
			if err != nil {
				t.Errorf("%s: %v", s, err)
			}
			mu.Lock()
			acked = append(acked, s)
			mu.Unlock()
		})
	}
	for _, s := range []string{"a", "b", "c", "d", "e", "f"} {
		put(s)
	}
	if err := sink.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The failed call goes again whole; then the failed records go ahead
	// of the newer ones, in one call or two.
	var rest []string
	for _, c := range api.calls[min(2, len(api.calls)):] {
		rest = append(rest, c...)
	}
	abcd := []string{"a", "b", "c", "d"}
	if len(api.calls) < 3 || !slices.Equal(api.calls[0], abcd) || !slices.Equal(api.calls[1], abcd) || !slices.Equal(rest, []string{"b", "d", "e", "f"}) {
		t.Fatalf("calls %q, want [a b c d] twice, then b d e f", api.calls)
	}
	if want := []string{"a", "c", "b", "d", "e", "f"}; !slices.Equal(acked, want) {
		t.Fatalf("acknowledged %q, want %q", acked, want)
	}
}

// TestStreamSinkGivesUpAtClose: records that cannot be sent get an error
// when Close's context ends, and later Puts fail at once.
func TestStreamSinkGivesUpAtClose(t *testing.T) {
	api := &fakeAPI{answer: func(int) ([]int, error) { return nil, errors.New("no route to host") }}
	sink := NewStreamSink(context.Background(), api, "s", SinkOptions{MaxAge: time.Millisecond, RetryInitial: time.Millisecond, RetryMax: 10 * time.Millisecond})
	errs := make(chan error, 2)
	sink.Put(context.Background(), "k", []byte("x"), func(err error) { errs <- err })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := sink.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v", err)
	}
	if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("done: %v", err)
	}
	sink.Put(context.Background(), "k", []byte("y"), func(err error) { errs <- err })
	if err := <-errs; !errors.Is(err, ErrSinkClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
}

// TestStreamSinkBatchLimits: a batch closes at MaxRecords or MaxBytes, and
// the age timer sends a partial batch.
func TestStreamSinkBatchLimits(t *testing.T) {
	api := &fakeAPI{answer: func(int) ([]int, error) { return nil, nil }}
	sink := NewStreamSink(context.Background(), api, "s", SinkOptions{MaxRecords: 3, MaxBytes: 10, MaxAge: 50 * time.Millisecond})
	var wg sync.WaitGroup
	for _, s := range []string{"1", "2", "3", "4", "55555", "66666"} {
		wg.Add(1)
		sink.Put(context.Background(), "k", []byte(s), func(error) { wg.Done() })
	}
	wg.Wait() // the last one went by age
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"1", "2", "3"}, {"4", "55555"}, {"66666"}}
	if !slices.EqualFunc(api.calls, want, slices.Equal) {
		t.Fatalf("calls %q, want %q", api.calls, want)
	}
}

// TestStreamSinkShardLanes writes a four-shard stream through one lane
// per shard: every record arrives once, and each partition key's records
// in the order they were put.
func TestStreamSinkShardLanes(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
	client := srv.Client(t)
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s4"), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	waitStream(t, client, "s4")
	sink := NewStreamSink(ctx, client, "s4", SinkOptions{MaxRecords: 100, MaxAge: 20 * time.Millisecond})
	if len(sink.lanes) != 4 {
		t.Fatalf("%d lanes, want one per shard", len(sink.lanes))
	}
	const n, keys = 8000, 64
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sink.Put(ctx, fmt.Sprintf("key-%d", i%keys), fmt.Appendf(nil, "%d %d", i%keys, i), func(err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
	}
	wg.Wait()
	if err := sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	last := map[int]int{}
	total := 0
	for sh := range 4 {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s4"),
			ShardId: aws.String(fmt.Sprintf("shardId-%012d", sh)), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for {
			out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range out.Records {
				var k, i int
				fmt.Sscanf(string(r.Data), "%d %d", &k, &i)
				if prev, ok := last[k]; ok && i <= prev {
					t.Fatalf("key %d: record %d after %d", k, i, prev)
				}
				last[k] = i
				total++
			}
			if len(out.Records) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	if total != n {
		t.Fatalf("%d records in the stream, want %d", total, n)
	}
}

// TestStreamSinkBoundsMemory: Put blocks once MaxBuffered bytes wait for
// an answer, and gives up with ctx.
func TestStreamSinkBoundsMemory(t *testing.T) {
	release := make(chan struct{})
	api := &fakeAPI{answer: func(int) ([]int, error) { <-release; return nil, nil }}
	sink := NewStreamSink(context.Background(), api, "s", SinkOptions{MaxAge: time.Millisecond, MaxBuffered: 2 * MaxRecordBytes})
	big := make([]byte, MaxRecordBytes-10)
	var acked atomic.Int32
	for range 2 {
		sink.Put(context.Background(), "k", big, func(err error) {
			if err == nil {
				acked.Add(1)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	sink.Put(ctx, "k", big, func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third Put: %v, want it blocked until its deadline", err)
	}
	close(release)
	if err := sink.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if acked.Load() != 2 {
		t.Fatalf("%d acknowledged, want 2", acked.Load())
	}
}
