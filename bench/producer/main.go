// Command producer measures the producer library: how many user records
// per second one process puts through producer.Producer into a stream, from
// --writers goroutines calling PutAsync with records of --size bytes over
// --keys partition keys, until --records are acknowledged. It creates the
// stream (--shards) unless --stream names an existing one, and deletes a
// stream it created unless --keep. --aggregation=false measures without
// KPL aggregation, --sdk sends PutRecords through the SDK rather than
// the producer's own requests. The server's per-shard limits are not paced
// (--rate-limit=false) unless asked, as against runnel.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/producer"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:4567", "runnel's `URL`")
	stream := flag.String("stream", "", "existing stream `name` to put into; empty creates one")
	shards := flag.Int("shards", 4, "shard count of a created stream")
	keep := flag.Bool("keep", false, "keep a created stream")
	records := flag.Int64("records", 1_000_000, "user records to put")
	size := flag.Int("size", 100, "record size in bytes")
	writers := flag.Int("writers", 16, "goroutines calling PutAsync")
	keys := flag.Int("keys", 1024, "distinct partition keys")
	aggregation := flag.Bool("aggregation", true, "KPL aggregation")
	rateLimit := flag.Bool("rate-limit", false, "pace each shard to Kinesis' 1 MiB/s and 1,000 records/s")
	linger := flag.Duration("linger", 100*time.Millisecond, "producer.Linger")
	unordered := flag.Int("unordered", 0, "calls in flight per shard, giving up per-key order (0: ordered)")
	sdk := flag.Bool("sdk", false, "send PutRecords through the SDK (producer.SDKCalls) instead of the producer's own requests")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to `file`")
	flag.Parse()
	if err := run(*endpoint, *stream, *shards, *keep, *records, *size, *writers, *keys, *aggregation, *rateLimit, *linger, *unordered, *sdk, *cpuProfile); err != nil {
		fmt.Fprintln(os.Stderr, "producer bench:", err)
		os.Exit(1)
	}
}

func run(endpoint, stream string, shards int, keep bool, records int64, size, writers, keys int,
	aggregation, rateLimit bool, linger time.Duration, unordered int, sdk bool, cpuProfile string) error {
	if size < 8 || writers < 1 || keys < 1 || records < 1 {
		return fmt.Errorf("--size must be at least 8, --writers, --keys and --records at least 1")
	}
	ctx := context.Background()
	client := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("runnelbench", "runnelbench", "")})
	if stream == "" {
		stream = fmt.Sprint("producer-bench-", time.Now().UnixNano())
		if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(int32(shards))}); err != nil {
			return fmt.Errorf("create stream (is runnel serving at %s?): %w", endpoint, err)
		}
		w := kinesis.NewStreamExistsWaiter(client)
		if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream)}, time.Minute); err != nil {
			return fmt.Errorf("wait for stream %s: %w", stream, err)
		}
		if !keep {
			defer client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)})
		}
	}
	opts := []producer.Option{producer.Aggregation(aggregation), producer.RateLimit(rateLimit), producer.Linger(linger)}
	if unordered > 0 {
		opts = append(opts, producer.Unordered(unordered))
	}
	if sdk {
		opts = append(opts, producer.SDKCalls())
	}
	p, err := producer.New(client, stream, opts...)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	keyNames := make([]string, keys)
	for i := range keyNames {
		keyNames[i] = fmt.Sprintf("key-%06d", i)
	}
	var (
		next, failed atomic.Int64
		firstErr     atomic.Value
		wg           sync.WaitGroup
	)
	done := func(r producer.Result) {
		if r.Err != nil {
			if failed.Add(1) == 1 {
				firstErr.Store(r.Err)
			}
		}
	}
	stop := make(chan struct{})
	go progress(p, records, stop)
	start := time.Now()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i * 7)
			}
			k := w
			for {
				n := next.Add(1)
				if n > records {
					return
				}
				binary.BigEndian.PutUint64(data, uint64(n))
				if err := p.PutAsync(ctx, keyNames[k%keys], data, done); err != nil {
					if failed.Add(1) == 1 {
						firstErr.Store(err)
					}
				}
				k += writers
			}
		}()
	}
	wg.Wait()
	if err := p.Close(ctx); err != nil {
		return err
	}
	el := time.Since(start)
	close(stop)
	m := p.Metrics()
	fmt.Printf("%d records of %d B in %.2f s: %.0f records/s, %.1f MB/s (aggregation %v, %d shards, %d writers, sdk %v)\n",
		m.RecordsPut, size, el.Seconds(), float64(m.RecordsPut)/el.Seconds(), float64(m.BytesPut)/el.Seconds()/1e6, aggregation, shards, writers, sdk)
	fmt.Printf("%d PutRecords calls, %.1f user records per call, %.1f per Kinesis record, %d retried, %d failed, peak buffer %.1f MiB\n",
		m.Requests, m.AverageBatchSize, m.AggregationRatio, m.RecordsRetried, m.RecordsFailed, float64(m.PeakBufferedBytes)/(1<<20))
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d records failed, the first with: %v", n, firstErr.Load())
	}
	return nil
}

// progress prints a status line to stderr every second.
func progress(p *producer.Producer, total int64, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			m := p.Metrics()
			fmt.Fprintf(os.Stderr, "%d/%d records acknowledged, %d buffered, %d retried\n", m.RecordsPut, total, m.BufferedRecords, m.RecordsRetried)
		}
	}
}
