package disk

import (
	"cmp"
	"context"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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

// slowSyncFS is the OS filesystem with every file sync taking at least
// delay, counting the syncs of segment files.
type slowSyncFS struct {
	OSFS
	delay time.Duration
	syncs atomic.Int64
}

func (f *slowSyncFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &slowSyncFile{File: file, fs: f, seg: strings.HasSuffix(name, segmentExt)}, nil
}

type slowSyncFile struct {
	File
	fs  *slowSyncFS
	seg bool
}

func (f *slowSyncFile) Sync() error {
	time.Sleep(f.fs.delay)
	if f.seg {
		f.fs.syncs.Add(1)
	}
	return f.File.Sync()
}

// TestGroupCommitShared has many appenders on one log whose syncs are slow,
// so that appends queue behind the round in progress and commit in groups.
// Every append must return, with its own offsets, the offsets must be
// dense, and the appends must have shared syncs.
func TestGroupCommitShared(t *testing.T) {
	ctx := context.Background()
	fsys := &slowSyncFS{delay: 3 * time.Millisecond}
	opts := DefaultOptions()
	opts.FS = fsys
	e, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	l := mustLog(t, e, "g")
	const appenders, batches = 16, 20
	type got struct{ first, n uint64 }
	var mu sync.Mutex
	var results []got
	var wg sync.WaitGroup
	before := fsys.syncs.Load()
	for a := range appenders {
		wg.Go(func() {
			for b := range batches {
				n := 1 + (a+b)%5
				recs := make([]engine.Record, n)
				for i := range recs {
					recs[i] = engine.Record{Value: []byte("value")}
				}
				res, err := l.Append(ctx, recs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				results = append(results, got{res.FirstOffset, uint64(n)})
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		// Not closing the engine: Close would wait for the stuck appends.
		t.Fatal("appends did not all return")
	}
	defer e.Close()
	if t.Failed() {
		return
	}
	slices.SortFunc(results, func(a, b got) int { return cmp.Compare(a.first, b.first) })
	var next uint64
	for _, r := range results {
		if r.first != next {
			t.Fatalf("an append got offset %d, want %d", r.first, next)
		}
		next += r.n
	}
	info, err := l.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Next != next {
		t.Fatalf("Next = %d, want %d", info.Next, next)
	}
	syncs := fsys.syncs.Load() - before
	if syncs >= appenders*batches {
		t.Fatalf("%d syncs for %d appends: no group shared a sync", syncs, appenders*batches)
	}
	t.Logf("%d appends, %d syncs", appenders*batches, syncs)
}
