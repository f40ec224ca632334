package disk

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// TestOpenTime builds a store of 1,000 logs and measures how long Open
// takes. Open reads only the tail of each log's last segment (after its last
// index entry), so the time depends on the number of logs, not on the bytes
// stored. By default each log holds 256 KiB (250 MiB in all); set
// RUNNEL_DISK_OPEN_MIB to the MiB per log to build a bigger store (10 for the
// 10 GiB figure in docs/BENCHMARKS.md), and RUNNEL_DISK_DROP_CACHES=1 to
// drop the page cache before reopening (root only).
func TestOpenTime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large store")
	}
	perLog := 256 << 10
	if s := os.Getenv("RUNNEL_DISK_OPEN_MIB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		perLog = n << 20
	}
	logs := 1000
	if raceEnabled && os.Getenv("RUNNEL_DISK_OPEN_MIB") == "" {
		logs = 200 // the race detector makes building the store slow
	}
	dir := t.TempDir()
	opts := DefaultOptions()
	opts.Durability = SyncInterval
	e, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	batch := make([]engine.Record, 16)
	for i := range batch {
		// Odd-sized values, so the tail after the last index entry is a
		// typical one rather than empty.
		batch[i] = engine.Record{Key: []byte("k"), Value: make([]byte, 16<<10+i)}
	}
	batchBytes := 0
	for _, r := range batch {
		batchBytes += len(r.Value) + 1
	}
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(logs) {
					return
				}
				name := fmt.Sprintf("stream.%04d", i)
				if err := e.CreateLog(ctx, name, engine.LogOptions{}); err != nil {
					t.Error(err)
					return
				}
				l, _ := e.Log(ctx, name)
				for n := 0; n < perLog; n += batchBytes {
					if _, err := l.Append(ctx, batch); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	if os.Getenv("RUNNEL_DISK_DROP_CACHES") != "" {
		// Measure a cold open: needs root; best effort.
		syscall.Sync()
		if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
			t.Logf("cannot drop caches: %v", err)
		}
	}

	start = time.Now()
	e, err = Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	defer e.Close()
	names, _ := e.ListLogs(ctx, "")
	t.Logf("built %d logs x %d KiB in %v; Open took %v", len(names), perLog>>10, built.Round(time.Millisecond), took.Round(time.Millisecond))
	if len(names) != logs {
		t.Fatalf("%d logs after reopen", len(names))
	}
	if took > 2*time.Second*time.Duration(logs)/1000 && !raceEnabled {
		t.Errorf("Open took %v, want under 2s", took)
	}
}
