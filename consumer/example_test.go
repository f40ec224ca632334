package consumer_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/signal"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/consumer"
)

// printer prints each record and checkpoints after each batch.
type printer struct{}

func (printer) Initialize(ctx context.Context, in consumer.InitInput) error {
	fmt.Printf("%s: starting after %s\n", in.ShardID, in.Checkpoint)
	return nil
}

func (printer) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	for _, r := range in.Records {
		fmt.Printf("%s %s %s: %s\n", in.ShardID, r.SequenceNumber, r.PartitionKey, r.Data)
	}
	return in.Checkpointer.Checkpoint(ctx)
}

func (printer) ShardEnded(ctx context.Context, cp *consumer.Checkpointer) error {
	return cp.Checkpoint(ctx) // SHARD_END: the children may start
}

func (printer) LeaseLost(ctx context.Context, shardID string) error { return nil }

// Example runs one worker of the application "printer" on the stream
// "events" of a runnel server on localhost until interrupted. Start more
// such processes and they share the shards.
func Example() {
	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:4567"),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
	})
	c, err := consumer.New(client, "events", "printer", printer{},
		consumer.LeaseDuration(10*time.Second),
		consumer.InitialPosition(consumer.TrimHorizon),
	)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// ExampleFanOut reads by enhanced fan-out: the worker registers the stream
// consumer "printer" unless it exists, and each of its shards is pushed to
// it by SubscribeToShard instead of polled.
func ExampleFanOut() {
	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:4567"),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
	})
	c, err := consumer.New(client, "events", "printer", printer{}, consumer.FanOut("printer"))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// ExampleNewDynamoDBStore runs a worker of the application "printer" on
// Amazon Kinesis with its leases in the DynamoDB table "printer", in the
// KCL's schema: the table a Java KCL application of that name keeps, which
// this worker continues from (the KCL names the table after the
// application). The store creates the table if it does not exist.
func ExampleNewDynamoDBStore() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	kc := kinesis.NewFromConfig(cfg)
	leases, err := consumer.NewDynamoDBStore(dynamodb.NewFromConfig(cfg), "printer", kc, "events")
	if err != nil {
		log.Fatal(err)
	}
	c, err := consumer.New(kc, "events", "printer", printer{}, consumer.Leases(leases))
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
