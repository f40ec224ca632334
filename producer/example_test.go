package producer_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/producer"
	"github.com/runnel/runnel/runneltest"
)

func Example() {
	srv, err := runneltest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	client := srv.NewClient()
	ctx := context.Background()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(2)}); err != nil {
		log.Fatal(err)
	}

	// Against runnel the per-shard pacing is off: runnel enforces no
	// throughput limits unless asked to.
	p, err := producer.New(client, "events", producer.RateLimit(false), producer.Linger(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	// Put returns at once; Wait gives the record's place in the stream.
	f := p.Put(ctx, "device-42", []byte(`{"temperature":21.5}`))
	// The callback form suits a steady flow of records.
	for i := range 3 {
		err := p.PutAsync(ctx, "device-42", fmt.Appendf(nil, `{"reading":%d}`, i), func(r producer.Result) {
			if r.Err != nil {
				log.Printf("record lost: %v", r.Err)
			}
		})
		if err != nil {
			log.Fatal(err)
		}
	}
	// Flush sends the buffered records now rather than after the linger
	// time, and waits for them.
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
	res, err := f.Wait(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored on", res.ShardID)
	// Close sends what is buffered and waits for the answers.
	if err := p.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("records put:", p.Metrics().RecordsPut)
	// Output:
	// stored on shardId-000000000001
	// records put: 4
}
