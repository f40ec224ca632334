package runneltest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/runneltest"
)

// Example starts a server, creates a stream, puts a record and reads it back
// with the AWS SDK for Go v2. In a test, use runneltest.NewServer(t) and
// srv.Client(t) instead of Start and NewClient.
func Example() {
	srv, err := runneltest.Start()
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	client := srv.NewClient()

	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{
		StreamName: aws.String("events"),
		ShardCount: aws.Int32(1),
	}); err != nil {
		log.Fatal(err)
	}
	put, err := client.PutRecord(ctx, &kinesis.PutRecordInput{
		StreamName:   aws.String("events"),
		PartitionKey: aws.String("user-42"),
		Data:         []byte("hello, stream"),
	})
	if err != nil {
		log.Fatal(err)
	}
	it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName:        aws.String("events"),
		ShardId:           put.ShardId,
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err != nil {
		log.Fatal(err)
	}
	got, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range got.Records {
		fmt.Printf("%s: %s\n", *r.PartitionKey, r.Data)
	}
	// Output: user-42: hello, stream
}
