package producer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/kpl"
	"github.com/runnel/runnel/producer"
)

// wait returns the Result of f, failing the test if it takes a minute.
func wait(t *testing.T, f *producer.Future) producer.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, _ := f.Wait(ctx)
	if ctx.Err() != nil {
		t.Fatal("the record was never completed")
	}
	return r
}

func newProducer(t *testing.T, c producer.Client, opts ...producer.Option) *producer.Producer {
	t.Helper()
	p, err := producer.New(c, "s", append([]producer.Option{producer.RateLimit(false)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func TestAggregatePacking(t *testing.T) {
	f := newFake(1)
	f.keep = true
	const max = 4 << 10
	p := newProducer(t, f, producer.AggregationMaxSize(max), producer.Linger(time.Hour))
	ctx := context.Background()
	var futs []*producer.Future
	for i := range 200 {
		futs = append(futs, p.Put(ctx, fmt.Sprintf("key-%d", i%7), []byte(fmt.Sprintf("record %03d", i))))
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, call := range f.calls {
		// Per-key order: one aggregate per call.
		if len(call.Records) != 1 {
			t.Fatalf("a call carries %d aggregates", len(call.Records))
		}
		e := call.Records[0]
		if n := len(e.Data) + len(*e.PartitionKey); n > max {
			t.Fatalf("aggregate of %d bytes, limit %d", n, max)
		}
		recs, err := kpl.Decode(e.Data)
		if err != nil {
			t.Fatalf("not an aggregate: %v", err)
		}
		if *e.PartitionKey != recs[0].PartitionKey {
			t.Fatalf("aggregate put with key %q, first record's is %q", *e.PartitionKey, recs[0].PartitionKey)
		}
		for j, r := range recs {
			if want := fmt.Sprintf("record %03d", i); string(r.Data) != want || r.PartitionKey != fmt.Sprintf("key-%d", i%7) {
				t.Fatalf("sub-record %d is %q/%q, want %q", j, r.PartitionKey, r.Data, want)
			}
			res := wait(t, futs[i])
			if res.Err != nil || !res.Aggregated || res.SubSequenceNumber != uint64(j) || res.ShardID != "shardId-000000000000" {
				t.Fatalf("record %d: %+v, want sub-sequence %d", i, res, j)
			}
			i++
		}
	}
	if i != 200 || len(f.calls) < 2 {
		t.Fatalf("%d records in %d calls", i, len(f.calls))
	}
	// A lone record goes as it is.
	f.calls = nil
	alone := p.Put(ctx, "alone", []byte("data"))
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res := wait(t, alone)
	if res.Aggregated || len(f.calls) != 1 || !bytes.Equal(f.calls[0].Records[0].Data, []byte("data")) {
		t.Fatalf("a single record: %+v, calls %d", res, len(f.calls))
	}
}

func TestCallLimits(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     []producer.Option
		size, n  int
		maxBytes int
	}{
		{"500 records", []producer.Option{producer.Aggregation(false), producer.Unordered(1)}, 10, 1200, 5 << 20},
		{"5 MiB", []producer.Option{producer.Aggregation(false), producer.Unordered(1)}, 300 << 10, 40, 5 << 20},
		{"5 MiB of aggregates", []producer.Option{producer.Unordered(1)}, 100 << 10, 120, 5 << 20},
		{"1 MiB when paced", []producer.Option{producer.Aggregation(false), producer.Unordered(1), producer.RateLimit(true)}, 300 << 10, 8, 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(1)
			f.keep = true
			p := newProducer(t, f, append([]producer.Option{producer.Linger(time.Hour)}, tc.opts...)...)
			ctx := context.Background()
			data := make([]byte, tc.size)
			for i := range tc.n {
				if err := p.PutAsync(ctx, fmt.Sprint("k", i), data, func(r producer.Result) {
					if r.Err != nil {
						t.Error(r.Err)
					}
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, c := range f.calls {
				n := 0
				for _, e := range c.Records {
					n += len(e.Data) + len(*e.PartitionKey)
				}
				if len(c.Records) > 500 || n > tc.maxBytes {
					t.Fatalf("a call of %d records, %d bytes", len(c.Records), n)
				}
				total += len(c.Records)
			}
			if m := p.Metrics(); m.RecordsPut != int64(tc.n) || len(f.calls) < 2 {
				t.Fatalf("%d records put in %d calls", m.RecordsPut, len(f.calls))
			}
		})
	}
}

func TestRecordTTL(t *testing.T) {
	f := newFake(1)
	f.put = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) { return f.ok(in, 0, 0), nil }
	p := newProducer(t, f, producer.RecordTTL(300*time.Millisecond), producer.Backoff(10*time.Millisecond, 50*time.Millisecond), producer.Linger(0))
	res := wait(t, p.Put(context.Background(), "k", []byte("x")))
	var re *producer.RecordError
	if !errors.Is(res.Err, producer.ErrRecordExpired) || !errors.As(res.Err, &re) || re.Code != "ProvisionedThroughputExceededException" {
		t.Fatalf("err = %v, want an expiry after throttles", res.Err)
	}
	if res.Attempts < 2 || p.Metrics().RecordsFailed != 1 || p.Metrics().BufferedBytes != 0 {
		t.Fatalf("attempts %d, metrics %+v", res.Attempts, p.Metrics())
	}
}

func TestRetries(t *testing.T) {
	t.Run("transport error", func(t *testing.T) {
		f := newFake(1)
		var n int
		f.put = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			if n++; n == 1 {
				return nil, errors.New("connection reset by peer")
			}
			return f.ok(in, 0, len(in.Records)), nil
		}
		p := newProducer(t, f, producer.Backoff(time.Millisecond, time.Millisecond), producer.Linger(0))
		res := wait(t, p.Put(context.Background(), "k", []byte("x")))
		if res.Err != nil || res.Attempts != 2 {
			t.Fatalf("%+v, want success at the second attempt", res)
		}
	})
	t.Run("refused record", func(t *testing.T) {
		f := newFake(1)
		f.put = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			return &kinesis.PutRecordsOutput{FailedRecordCount: aws.Int32(1), Records: []types.PutRecordsResultEntry{
				{ErrorCode: aws.String("KMSAccessDeniedException"), ErrorMessage: aws.String("denied")}}}, nil
		}
		p := newProducer(t, f, producer.Linger(0))
		res := wait(t, p.Put(context.Background(), "k", []byte("x")))
		var re *producer.RecordError
		if !errors.As(res.Err, &re) || re.Code != "KMSAccessDeniedException" || res.Attempts != 1 {
			t.Fatalf("%+v, want a refusal at the first attempt", res)
		}
	})
	t.Run("unknown outcome", func(t *testing.T) {
		f := newFake(1)
		f.put = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
			return nil, errors.New("connection reset by peer")
		}
		p := newProducer(t, f, producer.Backoff(time.Millisecond, 5*time.Millisecond), producer.Linger(0), producer.RecordTTL(100*time.Millisecond))
		res := wait(t, p.Put(context.Background(), "k", []byte("x")))
		if !errors.Is(res.Err, producer.ErrRecordExpired) || !errors.Is(res.Err, producer.ErrUnknownOutcome) {
			t.Fatalf("err = %v, want an expiry with an unknown outcome", res.Err)
		}
	})
}

// TestOrderAcrossFailures fails the first record of every call once and
// checks that each key's records are stored in the order they were put.
func TestOrderAcrossFailures(t *testing.T) {
	for _, agg := range []bool{false, true} {
		t.Run(fmt.Sprint("aggregation ", agg), func(t *testing.T) {
			f := newFake(2)
			var (
				mu     sync.Mutex
				stored []string // "key/n" in the order stored
				calls  int
			)
			f.put = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
				mu.Lock()
				defer mu.Unlock()
				calls++
				from := 0
				if calls%2 == 1 {
					from = 1
				}
				for _, e := range in.Records[from:] {
					if recs, err := kpl.Decode(e.Data); err == nil {
						for _, r := range recs {
							stored = append(stored, string(r.Data))
						}
					} else {
						stored = append(stored, string(e.Data))
					}
				}
				return f.ok(in, from, len(in.Records)), nil
			}
			p := newProducer(t, f, producer.Aggregation(agg), producer.AggregationMaxSize(2<<10),
				producer.Backoff(time.Millisecond, time.Millisecond), producer.Linger(time.Millisecond))
			ctx := context.Background()
			for i := range 3000 {
				k := fmt.Sprint("key-", i%5)
				if err := p.PutAsync(ctx, k, []byte(fmt.Sprintf("%s/%06d", k, i)), func(r producer.Result) {
					if r.Err != nil {
						t.Error(r.Err)
					}
				}); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			last := map[string]string{}
			for _, s := range stored {
				k := s[:strings.Index(s, "/")]
				if s <= last[k] {
					t.Fatalf("%s stored after %s", s, last[k])
				}
				last[k] = s
			}
			if m := p.Metrics(); m.RecordsRetried == 0 || m.RecordsPut != 3000 {
				t.Fatalf("metrics %+v", m)
			}
		})
	}
}

func TestClose(t *testing.T) {
	f := newFake(2)
	p, err := producer.New(f, "s", producer.Linger(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := p.Put(ctx, "k", []byte("x"))
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Close flushed the record put before it, linger or not.
	if !before.Done() {
		t.Fatal("Close returned before the buffered record completed")
	}
	if res := wait(t, before); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := wait(t, p.Put(ctx, "k", []byte("x"))); !errors.Is(res.Err, producer.ErrClosed) {
		t.Fatalf("Put after Close: %v", res.Err)
	}
	if err := p.PutAsync(ctx, "k", []byte("x"), func(producer.Result) { t.Error("callback after Close") }); !errors.Is(err, producer.ErrClosed) {
		t.Fatalf("PutAsync after Close: %v", err)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCloseGivesUp(t *testing.T) {
	f := newFake(1)
	f.hang = true
	p, err := producer.New(f, "s", producer.Linger(0), producer.RateLimit(false))
	if err != nil {
		t.Fatal(err)
	}
	fut := p.Put(context.Background(), "k", []byte("x"))
	for p.Metrics().Requests == 0 && f.callsStarted() == 0 {
		time.Sleep(time.Millisecond)
	}
	queued := p.Put(context.Background(), "k", []byte("y"))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error)
	go func() { done <- p.Close(ctx) }()
	if err := <-done; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the context's deadline", err)
	}
	if res := wait(t, fut); !errors.Is(res.Err, producer.ErrClosed) || !errors.Is(res.Err, producer.ErrUnknownOutcome) {
		t.Fatalf("in-flight record: %v", res.Err)
	}
	if res := wait(t, queued); !errors.Is(res.Err, producer.ErrClosed) || errors.Is(res.Err, producer.ErrUnknownOutcome) {
		t.Fatalf("queued record: %v", res.Err)
	}
}

func TestBufferBound(t *testing.T) {
	f := newFake(1)
	release := make(chan struct{})
	f.put = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		<-release
		return f.ok(in, 0, len(in.Records)), nil
	}
	const bound = 8 << 10
	p := newProducer(t, f, producer.MaxRecordSize(4<<10), producer.MaxBufferedBytes(bound), producer.FailWhenFull(), producer.Linger(0))
	ctx := context.Background()
	data := make([]byte, 999) // 1000 bytes with the key
	n := 0
	for ; n < 100; n++ {
		err := p.PutAsync(ctx, "k", data, func(producer.Result) {})
		if errors.Is(err, producer.ErrBufferFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != bound/1000 {
		t.Fatalf("%d records of 1000 bytes buffered under a bound of %d", n, bound)
	}
	if m := p.Metrics(); m.BufferedBytes != int64(n*1000) || m.BufferedRecords != int64(n) {
		t.Fatalf("metrics %+v", m)
	}
	close(release)
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if m := p.Metrics(); m.BufferedBytes != 0 || m.PeakBufferedBytes > bound {
		t.Fatalf("metrics %+v", m)
	}
}

func TestPutBlocks(t *testing.T) {
	f := newFake(1)
	release := make(chan struct{})
	f.put = func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error) {
		<-release
		return f.ok(in, 0, len(in.Records)), nil
	}
	p := newProducer(t, f, producer.MaxRecordSize(4<<10), producer.MaxBufferedBytes(4<<10), producer.Linger(0))
	first := p.Put(context.Background(), "k", make([]byte, 3000))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if res := wait(t, p.Put(ctx, "k", make([]byte, 3000))); !errors.Is(res.Err, context.DeadlineExceeded) {
		t.Fatalf("Put on a full buffer: %v, want the context's deadline", res.Err)
	}
	// Room made while Put waits lets it in.
	later := make(chan *producer.Future)
	go func() { later <- p.Put(context.Background(), "k", make([]byte, 3000)) }()
	close(release)
	if res := wait(t, <-later); res.Err != nil {
		t.Fatal(res.Err)
	}
	if res := wait(t, first); res.Err != nil {
		t.Fatal(res.Err)
	}
}

func TestInvalidRecords(t *testing.T) {
	p := newProducer(t, newFake(1))
	ctx := context.Background()
	for name, put := range map[string]func() *producer.Future{
		"empty key":     func() *producer.Future { return p.Put(ctx, "", []byte("x")) },
		"long key":      func() *producer.Future { return p.Put(ctx, strings.Repeat("é", 257), []byte("x")) },
		"invalid utf-8": func() *producer.Future { return p.Put(ctx, "\xff", []byte("x")) },
		"too large":     func() *producer.Future { return p.Put(ctx, "k", make([]byte, 1<<20)) },
		"bad hash key":  func() *producer.Future { return p.Put(ctx, "k", nil, producer.ExplicitHashKey("01")) },
		"hash key range": func() *producer.Future {
			return p.Put(ctx, "k", nil, producer.ExplicitHashKey("340282366920938463463374607431768211456"))
		},
	} {
		if res := wait(t, put()); !errors.Is(res.Err, producer.ErrInvalidRecord) {
			t.Errorf("%s: %v, want ErrInvalidRecord", name, res.Err)
		}
	}
	// 256 characters of two bytes each are fine.
	if res := wait(t, p.Put(ctx, strings.Repeat("é", 256), []byte("x"))); res.Err != nil {
		t.Fatal(res.Err)
	}
}

func TestExplicitHashKey(t *testing.T) {
	p := newProducer(t, newFake(4), producer.Linger(0))
	res := wait(t, p.Put(context.Background(), "k", []byte("x"), producer.ExplicitHashKey("340282366920938463463374607431768211455")))
	if res.Err != nil || res.ShardID != "shardId-000000000003" {
		t.Fatalf("%+v, want the last shard", res)
	}
}

func TestOptionsValidated(t *testing.T) {
	for name, o := range map[string]producer.Option{
		"linger":      producer.Linger(-1),
		"record size": producer.MaxRecordSize(100),
		"aggregate":   producer.AggregationMaxSize(2 << 20),
		"ttl":         producer.RecordTTL(0),
		"buffer":      producer.MaxBufferedBytes(1000),
		"unordered":   producer.Unordered(0),
		"backoff":     producer.Backoff(time.Second, time.Millisecond),
	} {
		if _, err := producer.New(newFake(1), "s", o); !errors.Is(err, producer.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
}

// TestAstrayAggregates reshards the stream behind the producer's back, so
// that its next aggregate lands on a shard its map does not know.
func TestAstrayAggregates(t *testing.T) {
	for _, tc := range []struct {
		name       string
		shards     int
		ranges     [][2]string
		wantResent bool
	}{
		// Split: the aggregate lands on one child; the records of the
		// other are sent again, to it.
		{"split", 1, evenBounds(2), true},
		// Merge: the new shard holds every record of the aggregate.
		{"merge", 2, evenBounds(1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(tc.shards)
			p := newProducer(t, f, producer.Linger(time.Hour))
			f.reshard(tc.ranges)
			ctx := context.Background()
			var futs []*producer.Future
			var keys []string
			for i := range 64 {
				keys = append(keys, fmt.Sprint("key-", i))
				futs = append(futs, p.Put(ctx, keys[i], []byte("x")))
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			for i, fut := range futs {
				res := wait(t, fut)
				want := f.shardOf(types.PutRecordsRequestEntry{PartitionKey: &keys[i]})
				if res.Err != nil || res.ShardID != want {
					t.Fatalf("record %d: %+v, want delivered on %s", i, res, want)
				}
			}
			m := p.Metrics()
			if (m.RecordsRetried > 0) != tc.wantResent || m.ShardMapRefreshes == 0 {
				t.Fatalf("metrics %+v", m)
			}
		})
	}
}
