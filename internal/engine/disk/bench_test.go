package disk

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Benchmarks of the engine beside the raw disk they run on. Run them with
//
//	go test -run '^$' -bench . -benchtime 3s ./internal/engine/disk/
//
// BenchmarkDisk measures the disk itself in the same run: the rate of
// write+fdatasync of a small block, and sequential write bandwidth.

// BenchmarkDisk measures the raw fsync rate and sequential write bandwidth.
func BenchmarkDisk(b *testing.B) {
	b.Run("write4KiB+fdatasync", func(b *testing.B) {
		f := rawFile(b)
		buf := make([]byte, 4096)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := f.WriteAt(buf, int64(i)*4096); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "syncs/s")
	})
	b.Run("seqwrite1MiB", func(b *testing.B) {
		f := rawFile(b)
		buf := make([]byte, 1<<20)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := f.WriteAt(buf, int64(i)<<20); err != nil {
				b.Fatal(err)
			}
			if i%64 == 63 {
				f.Sync()
				f.Truncate(0) // stay within the page cache's dirty limits
			}
		}
		f.Sync()
	})
}

func rawFile(b *testing.B) File {
	b.Helper()
	f, err := OSFS{}.OpenFile(filepath.Join(b.TempDir(), "raw"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

var recordSizes = []int{100, 1024, 64 << 10}

// batchFor is the batch size used for a record size: 100 records, or fewer
// so a batch stays near 1 MiB.
func batchFor(size int) int { return min(100, max(1, (1<<20)/size)) }

// BenchmarkAppend has appenders concurrent appenders append batches to their
// own log (or all to one log); one op is one batch.
func BenchmarkAppend(b *testing.B) {
	for _, d := range []Durability{SyncAlways, SyncInterval} {
		for _, size := range recordSizes {
			for _, c := range []struct{ appenders, logs int }{{16, 16}, {16, 1}, {1, 1}} {
				name := fmt.Sprintf("%s/%s/appenders=%d/logs=%d", d, sizeName(size), c.appenders, c.logs)
				b.Run(name, func(b *testing.B) { benchAppend(b, d, size, batchFor(size), c.appenders, c.logs) })
			}
		}
	}
}

func sizeName(n int) string {
	if n >= 1024 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

func benchAppend(b *testing.B, d Durability, size, per, appenders, logs int) {
	opts := DefaultOptions()
	opts.Durability = d
	e, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	ls := make([]engine.Log, logs)
	for i := range ls {
		name := fmt.Sprintf("b.%d", i)
		if err := e.CreateLog(ctx, name, engine.LogOptions{}); err != nil {
			b.Fatal(err)
		}
		ls[i], _ = e.Log(ctx, name)
	}
	batch := make([]engine.Record, per)
	for i := range batch {
		batch[i] = engine.Record{Key: []byte("partition-key"), Value: make([]byte, size)}
	}
	b.SetBytes(int64(per * size))
	b.ReportAllocs()
	b.ResetTimer()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Go(func() {
			l := ls[a%logs]
			for left.Add(-1) >= 0 {
				if _, err := l.Append(ctx, batch); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkRead reads recently written records sequentially, 8 MiB or 10,000
// records per call; one op is one Read.
func BenchmarkRead(b *testing.B) {
	for _, size := range recordSizes {
		b.Run(sizeName(size), func(b *testing.B) {
			opts := DefaultOptions()
			opts.Durability = SyncInterval
			ctx := context.Background()
			l := benchLog(b, opts)
			per := batchFor(size)
			batch := make([]engine.Record, per)
			for i := range batch {
				batch[i] = engine.Record{Key: []byte("partition-key"), Value: make([]byte, size)}
			}
			total := 0
			for total < 128<<20 {
				if _, err := l.Append(ctx, batch); err != nil {
					b.Fatal(err)
				}
				total += per * size
			}
			info, _ := l.Info(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			var bytes, recs int64
			from := uint64(0)
			for b.Loop() {
				rs, err := l.Read(ctx, from, 10000, 8<<20)
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range rs {
					bytes += int64(len(r.Key) + len(r.Value))
				}
				recs += int64(len(rs))
				from = rs[len(rs)-1].Offset + 1
				if from >= info.Next {
					from = 0
				}
			}
			b.SetBytes(bytes / int64(b.N))
			b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkReadNewest reads the newest 1,000 records of a log (1 KiB
// each, appended 125 to a batch), as a consumer that follows the writers
// does, with the tail cache and without it.
func BenchmarkReadNewest(b *testing.B) {
	for _, tc := range []struct {
		name  string
		cache int64
	}{{"tailcache", DefaultOptions().TailCache}, {"segment", 0}} {
		b.Run(tc.name, func(b *testing.B) {
			opts := DefaultOptions()
			opts.Durability = SyncInterval
			opts.TailCache = tc.cache
			ctx := context.Background()
			l := benchLog(b, opts)
			batch := make([]engine.Record, 125)
			for i := range batch {
				batch[i] = engine.Record{Key: []byte("partition-key"), Value: make([]byte, 1024)}
			}
			for range 64 { // 8 MiB
				if _, err := l.Append(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			info, _ := l.Info(ctx)
			from := info.Next - 1000
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				rs, release, err := engine.ReadLent(ctx, l, from, 1000, 10<<20)
				if err != nil || len(rs) != 1000 {
					b.Fatal(len(rs), err)
				}
				release()
			}
			b.SetBytes(1000 * (1024 + 13))
			b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// benchLog opens an engine with opts, closed when the benchmark ends,
// and returns a new log of it.
func benchLog(b *testing.B, opts Options) engine.Log {
	e, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	ctx := context.Background()
	if err := e.CreateLog(ctx, "r", engine.LogOptions{}); err != nil {
		b.Fatal(err)
	}
	l, err := e.Log(ctx, "r")
	if err != nil {
		b.Fatal(err)
	}
	return l
}

var _ = time.Second
