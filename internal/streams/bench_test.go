package streams

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/metrics"
)

// BenchmarkPutRecords measures the service's PutRecords path on the memory
// engine: 500 records of 1 KiB per request.
func BenchmarkPutRecords(b *testing.B) {
	for _, shards := range []int32{1, 4, 16} {
		b.Run(fmt.Sprint("shards=", shards), func(b *testing.B) {
			ctx := context.Background()
			eng := mem.New(mem.DefaultOptions())
			defer eng.Close()
			opts := DefaultOptions()
			opts.TransitionDelay = 0
			svc, err := New(ctx, eng, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close()
			if err := svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("bench"), ShardCount: &shards}); err != nil {
				b.Fatal(err)
			}
			in := &PutRecordsInput{StreamName: sp("bench")}
			data := make([]byte, 1024)
			for i := range 500 {
				in.Records = append(in.Records, PutRecordsRequestEntry{PartitionKey: sp(fmt.Sprint("pk-", i)), Data: data})
			}
			b.SetBytes(500 * 1024)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				out, err := svc.PutRecords(ctx, in)
				if err != nil || out.FailedRecordCount != 0 {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkPutRecordsMetrics measures what counting the metrics costs the
// service's PutRecords path: 500 records of 1 KiB to 4 shards, without a
// metrics registry and with one (and the wire layer's per-request Call in
// the context, as the handler passes it).
func BenchmarkPutRecordsMetrics(b *testing.B) {
	for _, on := range []bool{false, true} {
		b.Run(map[bool]string{false: "metrics=off", true: "metrics=on"}[on], func(b *testing.B) {
			ctx := context.Background()
			eng := mem.New(mem.DefaultOptions())
			defer eng.Close()
			opts := DefaultOptions()
			opts.TransitionDelay = 0
			if on {
				reg, err := metrics.New(metrics.DefaultOptions())
				if err != nil {
					b.Fatal(err)
				}
				defer reg.Close()
				opts.Metrics = reg
			}
			svc, err := New(ctx, eng, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer svc.Close()
			shards := int32(4)
			if err := svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("bench"), ShardCount: &shards}); err != nil {
				b.Fatal(err)
			}
			in := &PutRecordsInput{StreamName: sp("bench")}
			data := make([]byte, 1024)
			for i := range 500 {
				in.Records = append(in.Records, PutRecordsRequestEntry{PartitionKey: sp(fmt.Sprint("pk-", i)), Data: data})
			}
			var call metrics.Call
			b.SetBytes(500 * 1024)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				call.Reset(ctx)
				out, err := svc.PutRecords(&call, in)
				if err != nil || out.FailedRecordCount != 0 {
					b.Fatal(err)
				}
				call.Stream().ObserveLatency(metrics.OpPutRecords, time.Millisecond)
			}
			b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func BenchmarkGetRecords(b *testing.B) {
	ctx := context.Background()
	eng := mem.New(mem.DefaultOptions())
	defer eng.Close()
	opts := DefaultOptions()
	opts.TransitionDelay = 0
	svc, err := New(ctx, eng, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	if err := svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("bench"), ShardCount: ip(1)}); err != nil {
		b.Fatal(err)
	}
	in := &PutRecordsInput{StreamName: sp("bench")}
	for i := range 500 {
		in.Records = append(in.Records, PutRecordsRequestEntry{PartitionKey: sp(fmt.Sprint("pk-", i)), Data: make([]byte, 1024)})
	}
	for range 20 {
		if _, err := svc.PutRecords(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	it, err := svc.GetShardIterator(ctx, &GetShardIteratorInput{StreamName: sp("bench"), ShardId: sp("0"), ShardIteratorType: sp("TRIM_HORIZON")})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(10000 * 1024)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		out, err := svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil || len(out.Records) != 10000 {
			b.Fatal(err)
		}
	}
}
