package streams

import (
	"context"
	"fmt"
	"testing"

	"github.com/runnel/runnel/internal/engine/mem"
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
