package agent

import (
	"context"
	"errors"
	"fmt"
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

// TestProducerSinkUnderThrottling sends more than a shard takes per
// second to a server enforcing Kinesis' limits, without pacing:
// PutRecords answers with ProvisionedThroughputExceeded for some records,
// which the sink retries until every record is in the stream exactly once,
// each acknowledged once, the shard's records in the order they were put.
func TestProducerSinkUnderThrottling(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithThroughputLimits(), runneltest.WithTransitionDelay(0))
	client := srv.Client(t)
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitStream(t, client, "s")
	const n = 2500
	sink, err := NewProducerSink(client, "s", SinkOptions{MaxAge: 50 * time.Millisecond, RetryInitial: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
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
