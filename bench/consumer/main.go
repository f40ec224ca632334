// Command consumer measures the consumer library: how many records per
// second one worker with a no-op processor (checkpointing after each batch)
// takes from an existing stream, from TRIM_HORIZON, under a new application
// name. Fill the stream first, for example with
// `runnel bench --keep --read-after --stream NAME`, which also reports what
// the load tool's own consumers read from the same stream. --fan-out reads
// by enhanced fan-out instead of polling, --sdk polls with GetRecords through
// the SDK instead of the worker's own requests.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/consumer"
)

// noop counts records and checkpoints each batch.
type noop struct{ n *atomic.Int64 }

func (noop) Initialize(context.Context, consumer.InitInput) error { return nil }

func (p noop) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	p.n.Add(int64(len(in.Records)))
	return in.Checkpointer.Checkpoint(ctx)
}

func (noop) ShardEnded(context.Context, *consumer.Checkpointer) error { return nil }

func (noop) LeaseLost(context.Context, string) error { return nil }

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:4567", "runnel's `URL`")
	stream := flag.String("stream", "", "stream `name` to read")
	records := flag.Int64("records", 0, "records the stream holds: the run ends when the worker has processed them")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	fanOut := flag.String("fan-out", "", "read by enhanced fan-out (SubscribeToShard) as the stream consumer `name` instead of polling; a name used before skips the registration's CREATING time")
	sdk := flag.Bool("sdk", false, "send GetRecords through the SDK (consumer.SDKRetrieval) instead of the worker's own requests")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the run to `file`")
	flag.Parse()
	if *stream == "" || *records <= 0 {
		fmt.Fprintln(os.Stderr, "usage: consumer --stream NAME --records N [--endpoint URL]")
		os.Exit(2)
	}
	client := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(*endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("runnelbench", "runnelbench", "")})
	var n atomic.Int64
	app := fmt.Sprint("bench-", time.Now().UnixNano())
	var opts []consumer.Option
	mode := "polling"
	switch {
	case *fanOut != "":
		opts, mode = append(opts, consumer.FanOut(*fanOut)), "fan-out"
	case *sdk:
		opts, mode = append(opts, consumer.SDKRetrieval()), "polling through the SDK"
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	c, err := consumer.New(client, *stream, app, noop{&n}, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.Run(ctx) }()
	for n.Load() < *records && time.Since(start) < *timeout {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("one worker, %s, no-op processor, checkpoint per batch: %d records in %v = %.0f records/s (from Run to the last record, lease table and takes included)\n",
		mode, n.Load(), elapsed.Round(time.Millisecond), float64(n.Load())/elapsed.Seconds())
	if n.Load() < *records {
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}
