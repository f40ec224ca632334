package disk

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// countingObserver counts the timings the engine reports.
type countingObserver struct{ appends, syncs atomic.Int64 }

func (o *countingObserver) Append(time.Duration) { o.appends.Add(1) }
func (o *countingObserver) Sync(time.Duration)   { o.syncs.Add(1) }

func TestObserverAndStats(t *testing.T) {
	tests := []struct {
		name       string
		durability Durability
		buffered   bool
	}{
		{"sync always", SyncAlways, false}, // each round's last write syncs
		{"sync always, buffered writes", SyncAlways, true},
		{"sync interval", SyncInterval, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obs := &countingObserver{}
			opts := DefaultOptions()
			opts.Durability = tt.durability
			opts.SyncInterval = 10 * time.Millisecond
			opts.SegmentSize = 4096
			opts.Observer = obs
			opts.BufferedWrites = tt.buffered
			e := openTest(t, t.TempDir(), opts)
			if st := e.Stats(); len(st.Logs) != 0 {
				t.Fatalf("stats of an empty engine: %+v", st)
			}
			a := mustLog(t, e, "a.0")
			mustLog(t, e, "b.0")
			appendN(t, a, 1000, 50) // 20 appends, several 4 KiB segments
			if n := obs.appends.Load(); n != 20 {
				t.Errorf("%d appends observed, want 20", n)
			}
			if n := obs.syncs.Load(); tt.durability == SyncAlways && n != 20 {
				t.Errorf("%d syncs observed, want one per append", n)
			}
			// Under SyncInterval the syncs come from the background syncer.
			for deadline := time.Now().Add(10 * time.Second); obs.syncs.Load() == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no sync observed")
				}
			}
			st := e.Stats()
			if len(st.Logs) != 2 || st.Logs[0].Name != "a.0" || st.Logs[1].Name != "b.0" {
				t.Fatalf("logs %+v, want a.0 and b.0", st.Logs)
			}
			if la := st.Logs[0]; la.Segments < 2 || la.Bytes < 1000*int64(len(val(0))) {
				t.Errorf("a.0: %d segments, %d bytes; want several segments holding 1000 records", la.Segments, la.Bytes)
			}
			if lb := st.Logs[1]; lb.Segments != 1 || lb.Bytes <= 0 {
				t.Errorf("empty log b.0: %+v, want one segment with its header", lb)
			}
			if st.OpenFiles < 1 {
				t.Errorf("open files %d, want at least the active segment", st.OpenFiles)
			}
			if err := e.DeleteLog(context.Background(), "b.0"); err != nil {
				t.Fatal(err)
			}
			if st := e.Stats(); len(st.Logs) != 1 {
				t.Errorf("stats after DeleteLog: %+v", st.Logs)
			}
		})
	}
}
