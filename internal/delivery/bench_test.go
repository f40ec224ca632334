package delivery_test

import (
	"context"
	"testing"

	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/delivery/file"
	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/metrics"
	"github.com/runnel/runnel/internal/streams"
)

// BenchmarkPutRecordBatch measures PutRecordBatch of 500 records of 128
// bytes on the memory engine (which keeps every record: run it with a
// fixed -benchtime such as 1000x), with and without the delivery streams' metrics,
// to show what counting costs the call.
func BenchmarkPutRecordBatch(b *testing.B) {
	for _, counted := range []bool{false, true} {
		name := "metrics=off"
		if counted {
			name = "metrics=on"
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			eng := mem.New(mem.DefaultOptions())
			defer eng.Close()
			sopts := streams.DefaultOptions()
			sopts.TransitionDelay = 0
			st, err := streams.New(ctx, eng, sopts)
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			opts := delivery.DefaultOptions()
			opts.TransitionDelay = 0
			opts.Resolver = file.NewBuckets(b.TempDir())
			if counted {
				reg, err := metrics.New(metrics.DefaultOptions())
				if err != nil {
					b.Fatal(err)
				}
				defer reg.Close()
				opts.Metrics = reg
			}
			svc, err := delivery.New(eng.Meta(), st, leases.New(eng.Meta(), leases.OnStreams(st), leases.Options{}), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close()
			_, err = svc.CreateDeliveryStream(ctx, &delivery.CreateDeliveryStreamInput{
				DeliveryStreamName: ptr("bench"),
				ExtendedS3DestinationConfiguration: &delivery.ExtendedS3DestinationConfiguration{
					RoleARN: ptr("arn:aws:iam::000000000000:role/r"), BucketARN: ptr("arn:aws:s3:::bucket"),
					// Delivery waits the longest interval: the benchmark
					// measures the call, not the delivery.
					BufferingHints: &delivery.BufferingHints{IntervalInSeconds: ptr(int32(900)), SizeInMBs: ptr(int32(128))},
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			in := &delivery.PutRecordBatchInput{DeliveryStreamName: ptr("bench"), Records: make([]delivery.Record, 500)}
			for i := range in.Records {
				in.Records[i].Data = make([]byte, 128)
			}
			b.ReportAllocs()
			b.SetBytes(500 * 128)
			b.ResetTimer()
			for b.Loop() {
				if _, err := svc.PutRecordBatch(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
