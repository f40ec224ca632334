package disk

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// testClock is a settable clock.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{now: time.UnixMilli(1_700_000_000_000)}
	opts := testOptions()
	opts.Clock = clock.Now
	opts.SegmentMaxAge = time.Hour
	opts.SegmentSize = 1 << 20
	dir := t.TempDir()
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "r")
	// Three segments by age: hours 0, 2 and 4.
	appendN(t, l, 100, 10)
	clock.Add(2 * time.Hour)
	appendN(t, l, 100, 10)
	clock.Add(2 * time.Hour)
	appendN(t, l, 100, 10)
	if n := len(l.(*log).segs); n != 3 {
		t.Fatalf("%d segments, want 3 (rolled by age)", n)
	}
	if err := l.SetRetention(ctx, 3*time.Hour); err != nil {
		t.Fatal(err)
	}
	// Now hour 4: the first segment (hour 0) is past a 3h retention; the janitor removes it.
	waitFor(t, func() bool { i, _ := l.Info(ctx); return i.First == 100 })
	checkLog(t, l, 100, 300)
	recs, err := l.Read(ctx, 0, 5, 1<<20)
	if err != nil || len(recs) != 5 || recs[0].Offset != 100 {
		t.Fatalf("Read(0) below the horizon: %v, %v", recs, err)
	}
	if off, _ := l.OffsetAt(ctx, 0); off != 100 {
		t.Fatalf("OffsetAt(0) = %d, want 100", off)
	}

	// Everything expires: the log is empty but keeps its offsets and its
	// time floor, across a reopen too.
	last, _ := l.Info(ctx)
	clock.Add(10 * time.Hour)
	waitFor(t, func() bool { i, _ := l.Info(ctx); return i.First == 300 })
	i, _ := l.Info(ctx)
	if i.Next != 300 || i.FirstTime != 0 || i.LastTime != 0 {
		t.Fatalf("emptied log: %+v", i)
	}
	e.Close()
	clock.Add(-20 * time.Hour) // a clock that went back
	e = openTest(t, dir, opts)
	l = mustLog(t, e, "r")
	i, _ = l.Info(ctx)
	if i.First != 300 || i.Next != 300 || i.Retention != 3*time.Hour {
		t.Fatalf("reopened emptied log: %+v", i)
	}
	res, err := l.Append(ctx, []engine.Record{{Value: []byte("after")}})
	if err != nil || res.FirstOffset != 300 || res.Time < last.LastTime {
		t.Fatalf("append to emptied log: %+v, %v (last time %d)", res, err, last.LastTime)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestMaxOpenFiles appends to and reads from more logs than file handles.
func TestMaxOpenFiles(t *testing.T) {
	opts := testOptions()
	opts.MaxOpenFiles = 8
	opts.Durability = SyncInterval
	e := openTest(t, t.TempDir(), opts)
	var ls []engine.Log
	for i := range 40 {
		ls = append(ls, mustLog(t, e, "m."+string(rune('a'+i%26))+string(rune('a'+i/26))))
	}
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() { appendN(t, l, 300, 7) })
	}
	wg.Wait()
	for _, l := range ls {
		checkLog(t, l, 0, 300)
	}
	// Files written but not yet synced are in use until the next sync.
	waitFor(t, func() bool {
		e.files.mu.Lock()
		defer e.files.mu.Unlock()
		return len(e.files.mu.open) <= opts.MaxOpenFiles
	})
}
