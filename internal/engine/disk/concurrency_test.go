package disk

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// TestConcurrentAppendTailTrim runs appenders, tailing readers woken by Wait
// and trims at once on one log with small segments. Readers must see dense,
// ordered offsets from the trim horizon on, and Wait must end with ErrClosed
// when the engine closes.
func TestConcurrentAppendTailTrim(t *testing.T) {
	ctx := context.Background()
	opts := testOptions()
	e, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	l := mustLog(t, e, "c")
	const appenders, batches, per = 4, 60, 5
	total := uint64(appenders * batches * per)
	var wg sync.WaitGroup
	for range appenders {
		wg.Go(func() {
			for range batches {
				recs := make([]engine.Record, per)
				for i := range recs {
					recs[i] = engine.Record{Value: []byte("0123456789abcdef")}
				}
				if _, err := l.Append(ctx, recs); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() {
			var next uint64
			for next < total {
				if _, err := l.Wait(ctx, next); err != nil {
					t.Error(err)
					return
				}
				recs, err := l.Read(ctx, next, 37, 1<<20)
				if err != nil {
					t.Error(err)
					return
				}
				for i, r := range recs {
					if r.Offset < next || (i > 0 && r.Offset != recs[i-1].Offset+1) {
						t.Errorf("offset %d after %d", r.Offset, next)
						return
					}
				}
				if len(recs) > 0 {
					next = recs[len(recs)-1].Offset + 1
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			time.Sleep(2 * time.Millisecond)
			if err := l.Trim(ctx, time.Now().Add(-5*time.Millisecond).UnixMilli()); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	readers.Wait()
	info, _ := l.Info(ctx)
	if info.Next != total {
		t.Fatalf("Next = %d, want %d", info.Next, total)
	}
	waited := make(chan error)
	go func() { _, err := l.Wait(ctx, total); waited <- err }()
	time.Sleep(10 * time.Millisecond)
	e.Close()
	select {
	case err := <-waited:
		if !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Wait at Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait not woken by Close")
	}
}
