package consumer_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/consumer/storetest"
	"github.com/runnel/runnel/runneltest"
)

// TestRunnelStoreConformance runs the LeaseStore suite on runnel's lease
// tables.
func TestRunnelStoreConformance(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T, shards int) consumer.LeaseStore {
		name := fmt.Sprint("conformance-", n.Add(1))
		if _, err := kc.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))}); err != nil {
			t.Fatal(err)
		}
		s, err := consumer.NewRunnelStore(kc.Options(), name, "app")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
