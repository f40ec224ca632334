package disk

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/enginetest"
)

// testOptions are small enough that the suite crosses segment boundaries and
// sees the background retention act.
func testOptions() Options {
	o := DefaultOptions()
	o.SegmentSize = 4096
	o.IndexInterval = 512
	o.RetentionCheckInterval = 10 * time.Millisecond
	return o
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name      string
		d         Durability
		tailCache int64
		buffered  bool
	}{
		{"always", SyncAlways, DefaultOptions().TailCache, false},
		{"interval", SyncInterval, DefaultOptions().TailCache, false},
		{"always/no tail cache", SyncAlways, 0, false},
		{"always/buffered writes", SyncAlways, DefaultOptions().TailCache, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := testOptions()
			opts.Durability = tc.d
			opts.TailCache = tc.tailCache
			opts.BufferedWrites = tc.buffered
			dirs := map[engine.Engine]string{}
			enginetest.Run(t, enginetest.Harness{
				New: func(t *testing.T) engine.Engine {
					dir := t.TempDir()
					e, err := Open(dir, opts)
					if err != nil {
						t.Fatal(err)
					}
					dirs[e] = dir
					return e
				},
				Reopen: func(t *testing.T, e engine.Engine) engine.Engine {
					dir := dirs[e]
					if err := e.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
					e2, err := Open(dir, opts)
					if err != nil {
						t.Fatalf("reopen: %v", err)
					}
					dirs[e2] = dir
					return e2
				},
				Damage: func(t *testing.T, e engine.Engine, name string, from, to uint64) {
					damageRecords(t, filepath.Join(dirs[e], "logs", name), from, to)
					dropTailCache(e, name) // the damaged records are read from disk
				},
			})
		})
	}
}

// dropTailCache makes log name forget the newest bytes it keeps in memory
// (the tail cache, and the last partial block that direct writes write
// again), so that damage done to its files shows: its records are read from
// disk, and the next append writes the damaged block back as it is. Call it
// while no append is in flight.
func dropTailCache(e engine.Engine, name string) {
	d := e.(*Engine)
	d.mu.Lock()
	l := d.mu.logs[name]
	d.mu.Unlock()
	l.mu.Lock()
	l.tail.reset()
	l.mu.Unlock()
	l.w.dio.seg = nil
}

// damageRecords flips a byte in every frame of a log directory that holds
// an offset in [from, to).
func damageRecords(t *testing.T, dir string, from, to uint64) {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	n := 0
	for _, p := range segs {
		for _, f := range segFrames(t, p) {
			if f.first < to && from < f.first+f.count {
				patchFile(t, p, f.pos+f.len-1, []byte{0x5a ^ byte(f.first)})
				n++
			}
		}
	}
	if n == 0 {
		t.Fatalf("no frame holds offsets %d..%d", from, to-1)
	}
}
