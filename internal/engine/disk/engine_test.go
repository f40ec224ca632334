package disk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/runnel/runnel/internal/engine"
)

func openTest(t *testing.T, dir string, opts Options) *Engine {
	t.Helper()
	e, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func mustLog(t *testing.T, e *Engine, name string) engine.Log {
	t.Helper()
	ctx := context.Background()
	if err := e.CreateLog(ctx, name, engine.LogOptions{}); err != nil && !errorsIs(err, engine.ErrLogExists) {
		t.Fatal(err)
	}
	l, err := e.Log(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// val is the value of record i in the tests' logs.
func val(i uint64) []byte { return []byte(fmt.Sprintf("value-%08d", i)) }

// appendN appends n records of batch size per batch, values val(offset).
func appendN(t *testing.T, l engine.Log, n, per int) {
	t.Helper()
	ctx := context.Background()
	info, _ := l.Info(ctx)
	next := info.Next
	for n > 0 {
		b := min(per, n)
		recs := make([]engine.Record, b)
		for i := range recs {
			recs[i] = engine.Record{Key: []byte("k"), Value: val(next + uint64(i))}
		}
		res, err := l.Append(ctx, recs)
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if res.FirstOffset != next {
			t.Fatalf("FirstOffset %d, want %d", res.FirstOffset, next)
		}
		next += uint64(b)
		n -= b
	}
}

// checkLog reads the whole log and checks it holds offsets [first, next)
// with the values appendN writes.
func checkLog(t *testing.T, l engine.Log, first, next uint64) {
	t.Helper()
	ctx := context.Background()
	info, err := l.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.First != first || info.Next != next {
		t.Fatalf("bounds [%d, %d), want [%d, %d)", info.First, info.Next, first, next)
	}
	from := first
	for from < next {
		recs, err := l.Read(ctx, from, 1000, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(recs) == 0 {
			t.Fatalf("Read(%d) returned nothing, next %d", from, next)
		}
		for _, r := range recs {
			if r.Offset != from || !bytes.Equal(r.Value, val(from)) {
				t.Fatalf("record %d: offset %d value %q", from, r.Offset, r.Value)
			}
			from++
		}
	}
}

func TestAppendReadAcrossSegments(t *testing.T) {
	for _, d := range []Durability{SyncAlways, SyncInterval} {
		t.Run(d.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			opts.Durability = d
			e := openTest(t, dir, opts)
			l := mustLog(t, e, "s.0")
			appendN(t, l, 3000, 7)
			checkLog(t, l, 0, 3000)
			if n := len(l.(*log).segs); n < 10 {
				t.Fatalf("%d segments, want many", n)
			}
			// No record limit: one Read crosses every segment.
			all, err := l.Read(context.Background(), 0, 0, 1<<30)
			if err != nil || len(all) != 3000 || all[2999].Offset != 2999 {
				t.Fatalf("Read(0, no limit): %d records, %v", len(all), err)
			}
			e.Close()
			e = openTest(t, dir, opts)
			l = mustLog(t, e, "s.0")
			checkLog(t, l, 0, 3000)
			appendN(t, l, 500, 50)
			checkLog(t, l, 0, 3500)
		})
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// TestOpenLocked: a second Engine on one directory is refused with ErrLocked,
// and the directory opens again once the first is closed.
func TestOpenLocked(t *testing.T) {
	dir := t.TempDir()
	e, err := Open(dir, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, DefaultOptions()); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	openTest(t, dir, DefaultOptions())
}
