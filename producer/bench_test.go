package producer_test

import (
	"context"
	"sync"
	"testing"

	"github.com/runnel/runnel/producer"
)

// BenchmarkPut measures the producer's own cost per record: 100-byte
// records from 16 goroutines over 1024 keys into 4 shards of a client that
// acknowledges every record at once.
func BenchmarkPut(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts []producer.Option
	}{
		{"aggregated", nil},
		{"plain", []producer.Option{producer.Aggregation(false)}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			f := newFake(4)
			p, err := producer.New(f, "s", append([]producer.Option{producer.RateLimit(false)}, bc.opts...)...)
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 1024)
			for i := range keys {
				keys[i] = "key-" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
			}
			ctx := context.Background()
			b.SetBytes(100)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/16 + 1
			for w := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					data := make([]byte, 100)
					for i := range per {
						if err := p.PutAsync(ctx, keys[(w+i*16)%len(keys)], data, func(producer.Result) {}); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := p.Close(ctx); err != nil {
				b.Fatal(err)
			}
		})
	}
}
