package disk

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// faultFS is the OS filesystem with failures injected on demand: a write or
// sync of a file whose path contains the fault's substring fails.
type faultFS struct {
	OSFS
	mu     sync.Mutex
	faults map[string]fault // by operation: "write", "sync", "syncdir"
}

type fault struct {
	path string // substring of the path
	err  error
}

func (f *faultFS) set(op, path string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.faults == nil {
		f.faults = map[string]fault{}
	}
	if err == nil {
		delete(f.faults, op)
		return
	}
	f.faults[op] = fault{path, err}
}

func (f *faultFS) check(op, path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ft, ok := f.faults[op]; ok && strings.Contains(path, ft.path) {
		return ft.err
	}
	return nil
}

func (f *faultFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f, path: name}, nil
}

func (f *faultFS) SyncDir(name string) error {
	if err := f.check("syncdir", name); err != nil {
		return err
	}
	return f.OSFS.SyncDir(name)
}

type faultFile struct {
	File
	fs   *faultFS
	path string
}

func (f *faultFile) WriteAt(b []byte, off int64) (int, error) {
	if err := f.fs.check("write", f.path); err != nil {
		// A failing write may still have written part of the data.
		n, _ := f.File.WriteAt(b[:len(b)/2], off)
		return n, err
	}
	return f.File.WriteAt(b, off)
}

// WriteDirect fails as WriteAt does, half the blocks written, so that the
// faults reach direct writes too (the engine's default under SyncAlways).
// A write that syncs fails as Sync does once it has written.
func (f *faultFile) WriteDirect(b []byte, off int64, sync bool) error {
	dw, ok := f.File.(directWriter)
	if !ok {
		return errDirectUnsupported
	}
	if err := f.fs.check("write", f.path); err != nil {
		if half := len(b) / 2 &^ (directAlign - 1); half > 0 {
			dw.WriteDirect(b[:half], off, false)
		}
		return err
	}
	if err := dw.WriteDirect(b, off, false); err != nil || !sync {
		return err
	}
	return f.Sync()
}

func (f *faultFile) ZeroDirect(off, n int64) error {
	dw, ok := f.File.(directWriter)
	if !ok {
		return errDirectUnsupported
	}
	if err := f.fs.check("write", f.path); err != nil {
		return err
	}
	return dw.ZeroDirect(off, n)
}

func (f *faultFile) Sync() error {
	if err := f.fs.check("sync", f.path); err != nil {
		return err
	}
	return f.File.Sync()
}

func TestFaults(t *testing.T) {
	eio := syscall.EIO
	tests := []struct {
		name       string
		durability Durability
		op, path   string
		err        error
		// failed: the log refuses appends until reopened (else it takes
		// appends again once the fault is gone, without a reopen).
		failed bool
	}{
		{"write error on segment", SyncAlways, "write", ".seg", eio, false},
		{"disk full on segment", SyncAlways, "write", ".seg", syscall.ENOSPC, false},
		{"disk full on index", SyncAlways, "write", ".idx", syscall.ENOSPC, false},
		{"fsync error", SyncAlways, "sync", ".seg", eio, false},
		{"fsync error, interval durability", SyncInterval, "sync", ".seg", eio, true},
		{"disk full, interval durability", SyncInterval, "write", ".seg", syscall.ENOSPC, false},
		// With small segments the fault hits while a segment is rolled:
		// the roll is undone (the new segment removed) and retried.
		{"disk full on roll", SyncAlways, "write", ".seg", syscall.ENOSPC, false},
		{"fsync error on roll", SyncAlways, "sync", ".seg", eio, false},
		{"directory fsync error on roll", SyncAlways, "syncdir", "logs/f", eio, false},
		{"disk full on roll, interval durability", SyncInterval, "write", ".seg", syscall.ENOSPC, false},
		{"fsync error on roll, interval durability", SyncInterval, "sync", ".seg", eio, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			ffs := &faultFS{}
			opts := testOptions()
			opts.FS = ffs
			opts.Durability = tt.durability
			opts.SyncInterval = 5 * time.Millisecond
			if !strings.Contains(tt.name, "roll") {
				opts.SegmentSize = 1 << 20
			}
			e := openTest(t, dir, opts)
			l := mustLog(t, e, "f")
			other := mustLog(t, e, "other")
			appendN(t, l, 200, 10)

			ffs.set(tt.op, tt.path, tt.err)
			var err error
			for i := 0; i < 1000 && err == nil; i++ { // until the fault is hit (a roll, a tick, the index written)
				_, err = l.Append(ctx, []engine.Record{{Value: make([]byte, 300)}})
				if tt.durability == SyncInterval && tt.op == "sync" {
					time.Sleep(2 * time.Millisecond)
				}
			}
			if err == nil || (!errors.Is(err, tt.err) && !errors.Is(err, ErrFailed)) {
				t.Fatalf("Append under fault: %v, want %v", err, tt.err)
			}
			ffs.set(tt.op, "", nil)
			info, _ := l.Info(ctx)
			acked := info.Next // everything before this was acknowledged

			_, err = l.Append(ctx, []engine.Record{{Value: val(acked)}})
			if tt.failed {
				if !errors.Is(err, ErrFailed) {
					t.Fatalf("Append after a failed interval sync: %v, want ErrFailed", err)
				}
			} else if err != nil {
				t.Fatalf("Append after the fault is gone: %v", err)
			} else {
				acked++
			}
			// Reads still work; other logs are not affected.
			if recs, err := l.Read(ctx, 0, 10, 1<<20); err != nil || len(recs) != 10 {
				t.Fatalf("Read after fault: %d records, %v", len(recs), err)
			}
			appendN(t, other, 5, 5)

			e.Close()
			e = openTest(t, dir, opts)
			l = mustLog(t, e, "f")
			info, _ = l.Info(ctx)
			if info.Next < acked {
				t.Fatalf("after reopen Next = %d, %d records were acknowledged", info.Next, acked)
			}
			checkPrefix(t, l, 200)
			if _, err := l.Append(ctx, []engine.Record{{Value: []byte("x")}}); err != nil {
				t.Fatalf("Append after reopen: %v", err)
			}
		})
	}
}

// checkPrefix checks the first n records hold appendN's values and the
// whole log reads back densely.
func checkPrefix(t *testing.T, l engine.Log, n uint64) {
	t.Helper()
	ctx := context.Background()
	info, _ := l.Info(ctx)
	from := uint64(0)
	for from < info.Next {
		recs, err := l.Read(ctx, from, 1000, 1<<20)
		if err != nil || len(recs) == 0 {
			t.Fatalf("Read(%d): %d records, %v", from, len(recs), err)
		}
		for _, r := range recs {
			if r.Offset != from {
				t.Fatalf("offset %d, want %d", r.Offset, from)
			}
			if from < n && string(r.Value) != string(val(from)) {
				t.Fatalf("record %d = %q", from, r.Value)
			}
			from++
		}
	}
}

// TestDiskFullRecovers fills the disk in the middle of a segment and at a
// roll: appends fail with ENOSPC while it lasts, nothing half-written becomes
// visible, the episode is logged once, and appends succeed again once space
// is back, without reopening the engine.
func TestDiskFullRecovers(t *testing.T) {
	for _, tt := range []struct {
		name   string
		before int // 1000-byte records appended before the disk fills
	}{
		{"mid-segment", 1},
		{"at a roll", 3}, // the fourth does not fit in a 4 KiB segment
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			ffs := &faultFS{}
			opts := testOptions()
			opts.FS = ffs
			logs := captureLog(&opts)
			e := openTest(t, dir, opts)
			l := mustLog(t, e, "f")
			rec := func(i uint64) []engine.Record {
				v := make([]byte, 1000)
				copy(v, val(i))
				return []engine.Record{{Value: v}}
			}
			for i := range uint64(tt.before) {
				if _, err := l.Append(ctx, rec(i)); err != nil {
					t.Fatal(err)
				}
			}
			files := func() []string {
				ents, _ := os.ReadDir(filepath.Join(dir, "logs", "f"))
				var n []string
				for _, d := range ents {
					n = append(n, d.Name())
				}
				return n
			}
			filesBefore := files()

			ffs.set("write", "logs/f", syscall.ENOSPC)
			for range 50 {
				_, err := l.Append(ctx, rec(uint64(tt.before)))
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("Append on a full disk: %v, want ENOSPC", err)
				}
			}
			if info, _ := l.Info(ctx); info.Next != uint64(tt.before) {
				t.Fatalf("Next = %d after failed appends, want %d", info.Next, tt.before)
			}
			if got := files(); !slices.Equal(got, filesBefore) {
				t.Fatalf("files %v after failed appends, want %v", got, filesBefore)
			}
			if n := strings.Count(logs.String(), "the disk is full"); n != 1 {
				t.Fatalf("%d lines about the full disk, want 1:\n%s", n, logs.String())
			}

			ffs.set("write", "", nil) // space is back
			for i := uint64(tt.before); i < uint64(tt.before)+5; i++ {
				res, err := l.Append(ctx, rec(i))
				if err != nil || res.FirstOffset != i {
					t.Fatalf("Append once space is back: %+v, %v, want offset %d", res, err, i)
				}
			}
			if !strings.Contains(logs.String(), "disk: appends succeed again") || !strings.Contains(logs.String(), "failed_appends=50") {
				t.Fatalf("recovery not logged:\n%s", logs.String())
			}
			check := func(l engine.Log) {
				t.Helper()
				recs, err := l.Read(ctx, 0, 100, 1<<20)
				if err != nil || len(recs) != tt.before+5 {
					t.Fatalf("Read: %d records, %v", len(recs), err)
				}
				for i, r := range recs {
					if r.Offset != uint64(i) || !strings.HasPrefix(string(r.Value), string(val(uint64(i)))) {
						t.Fatalf("record %d: offset %d value %.20q", i, r.Offset, r.Value)
					}
				}
			}
			check(l)
			e.Close()
			e = openTest(t, dir, opts)
			check(mustLog(t, e, "f"))
		})
	}
}

// TestFailedUndoIsRetried fails a roll and then the undo of it (the
// directory cannot be synced): appends keep failing while that lasts, and
// the next append after it undoes the roll and succeeds.
func TestFailedUndoIsRetried(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ffs := &faultFS{}
	opts := testOptions()
	opts.FS = ffs
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "f")
	big := []engine.Record{{Value: make([]byte, 1000)}}
	for range 3 {
		if _, err := l.Append(ctx, big); err != nil {
			t.Fatal(err)
		}
	}
	ffs.set("syncdir", "logs/f", syscall.EIO)
	for range 5 {
		if _, err := l.Append(ctx, big); !errors.Is(err, syscall.EIO) {
			t.Fatalf("Append: %v, want EIO", err)
		}
	}
	ffs.set("syncdir", "", nil)
	for i := range uint64(5) {
		if res, err := l.Append(ctx, big); err != nil || res.FirstOffset != 3+i {
			t.Fatalf("Append after the fault: %+v, %v", res, err)
		}
	}
	e.Close()
	e = openTest(t, dir, opts)
	if info, _ := mustLog(t, e, "f").Info(ctx); info.Next != 8 {
		t.Fatalf("Next = %d after reopening, want 8", info.Next)
	}
}
