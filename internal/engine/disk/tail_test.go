package disk

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/enginetest"
)

// readCountFS counts the reads of segment files.
type readCountFS struct {
	OSFS
	reads atomic.Int64
}

func (f *readCountFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	file, err := f.OSFS.OpenFile(name, flag, perm)
	if err != nil || !strings.HasSuffix(name, segmentExt) {
		return file, err
	}
	return &readCountFile{File: file, fs: f}, nil
}

type readCountFile struct {
	File
	fs *readCountFS
}

func (f *readCountFile) ReadAt(b []byte, off int64) (int, error) {
	f.fs.reads.Add(1)
	return f.File.ReadAt(b, off)
}

func TestBufClass(t *testing.T) {
	prev := 0
	for c := range bufClasses {
		var size int
		// The smallest n of class c is one more than the previous size.
		got, s := bufClass(prev + 1)
		if got != c {
			t.Fatalf("bufClass(%d) = class %d, want %d", prev+1, got, c)
		}
		size = s
		if g, s2 := bufClass(size); g != c || s2 != size {
			t.Fatalf("bufClass(%d) = %d, %d; want class %d of that size", size, g, s2, c)
		}
		if c > 0 && float64(size) > float64(prev+1)*1.25+1 {
			t.Fatalf("class %d: size %d for %d bytes wastes more than a fifth", c, size, prev+1)
		}
		prev = size
	}
	if c, n := bufClass(prev + 1); c != -1 || n != prev+1 {
		t.Fatalf("bufClass(%d) = %d, %d; want -1 beyond the largest class", prev+1, c, n)
	}
	if c, n := bufClass(0); c != 0 || n != 1<<minBufShift {
		t.Fatalf("bufClass(0) = %d, %d", c, n)
	}
}

func tailOptions(cache int64) (Options, *readCountFS) {
	opts := testOptions()
	opts.SegmentSize = 1 << 20
	opts.TailCache = cache
	fsys := &readCountFS{}
	opts.FS = fsys
	return opts, fsys
}

func valueOf(off uint64, size int) []byte {
	v := bytes.Repeat([]byte{byte(off)}, size)
	copy(v, fmt.Sprintf("value-%08d", off))
	return v
}

// appendSized appends n records of size bytes, per to a batch.
func appendSized(t *testing.T, l engine.Log, n, per, size int) {
	t.Helper()
	ctx := context.Background()
	info, _ := l.Info(ctx)
	next := info.Next
	for n > 0 {
		recs := make([]engine.Record, min(per, n))
		for i := range recs {
			recs[i] = engine.Record{Key: []byte("k"), Value: valueOf(next+uint64(i), size)}
		}
		if _, err := l.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
		next += uint64(len(recs))
		n -= len(recs)
	}
}

func checkValues(t *testing.T, recs []engine.StoredRecord, from uint64, size int) {
	t.Helper()
	for i, r := range recs {
		if r.Offset != from+uint64(i) || !bytes.Equal(r.Value, valueOf(r.Offset, size)) || string(r.Key) != "k" {
			t.Fatalf("record %d: offset %d (want %d), value %.20q", i, r.Offset, from+uint64(i), r.Value)
		}
	}
}

// readCounted reads up to max records of l from offset from, checks that
// they are the want records appended there, of size bytes each, and
// returns how many times the read read a segment.
func readCounted(t *testing.T, l engine.Log, fsys *readCountFS, from uint64, max, want, size int) int64 {
	t.Helper()
	before := fsys.reads.Load()
	recs, err := l.Read(context.Background(), from, max, 1<<20)
	if err != nil || len(recs) != want {
		t.Fatalf("Read(%d, %d): %d records, want %d; %v", from, max, len(recs), want, err)
	}
	checkValues(t, recs, from, size)
	return fsys.reads.Load() - before
}

// tailState returns what l's tail cache holds: frames and bytes.
func tailState(l engine.Log) (int, int64) {
	lf := l.(*log)
	lf.mu.RLock()
	defer lf.mu.RUnlock()
	return len(lf.tail.frames), lf.tail.bytes
}

// TestTailCacheServesNewest checks that the newest records are read from
// memory, older ones from the segments, and that both read the same.
func TestTailCacheServesNewest(t *testing.T) {
	ctx := context.Background()
	opts, fsys := tailOptions(64 << 10) // one log: a 64 KiB share
	e := openTest(t, t.TempDir(), opts)
	l := mustLog(t, e, "a")
	appendSized(t, l, 1000, 10, 1000) // ~10 MB in frames of ~10 KB

	if n := readCounted(t, l, fsys, 995, 100, 5, 1000); n != 0 {
		t.Fatalf("reading the newest records read the segment %d times, want 0", n)
	}
	if st := e.Stats(); st.ReadsFromCache != 1 || st.ReadsFromSegments != 0 {
		t.Fatalf("stats after a read of the newest: %d from the cache, %d segments; want 1, 0", st.ReadsFromCache, st.ReadsFromSegments)
	}
	if readCounted(t, l, fsys, 0, 100, 100, 1000) == 0 {
		t.Fatal("the oldest records did not come from the segment")
	}
	if st := e.Stats(); st.ReadsFromCache != 1 || st.ReadsFromSegments != 1 {
		t.Fatalf("stats after a read of the oldest: %d from the cache, %d segments; want 1, 1", st.ReadsFromCache, st.ReadsFromSegments)
	}
	if _, b := tailState(l); e.Stats().TailCacheBytes != b || b == 0 {
		t.Fatalf("stats: tail cache %d bytes, want %d (not 0)", e.Stats().TailCacheBytes, b)
	}

	// Across the cache's first frame, and with every limit.
	l.(*log).mu.RLock()
	first := l.(*log).tail.frames[0].first
	l.(*log).mu.RUnlock()
	if _, cached := tailState(l); cached > 64<<10 {
		t.Fatalf("the cache holds %d bytes, more than its share", cached)
	}
	for _, from := range []uint64{first - 7, first, first + 3} {
		for _, lim := range []struct{ recs, bytes int }{{1, 0}, {3, 0}, {100, 2500}, {1000, 1 << 20}, {0, 1 << 20}} {
			recs, err := l.Read(ctx, from, lim.recs, lim.bytes)
			if err != nil {
				t.Fatal(err)
			}
			want := min(1000-int(from), max(1, lim.bytes/1001))
			if lim.recs > 0 {
				want = min(want, lim.recs)
			}
			if len(recs) != want {
				t.Fatalf("Read(%d, %d, %d): %d records, want %d", from, lim.recs, lim.bytes, len(recs), want)
			}
			checkValues(t, recs, from, 1000)
		}
	}
}

// lenderLog returns a new log of an engine whose tail cache is cache
// bytes, and the log as an engine.Lender.
func lenderLog(t *testing.T, cache int64) (engine.Log, engine.Lender) {
	opts, _ := tailOptions(cache)
	l := mustLog(t, openTest(t, t.TempDir(), opts), "a")
	return l, l.(engine.Lender)
}

// TestTailCacheLentRecords checks that records lent by ReadLent stay intact
// until released, however much is appended and evicted meanwhile, and that
// Read's records stay intact for good.
func TestTailCacheLentRecords(t *testing.T) {
	ctx := context.Background()
	l, ln := lenderLog(t, 256<<10)
	appendSized(t, l, 20, 10, 1000)
	lent, release, err := ln.ReadLent(ctx, 0, 20, 1<<20)
	if err != nil || len(lent) != 20 {
		t.Fatalf("ReadLent: %d records, %v", len(lent), err)
	}
	kept, err := l.Read(ctx, 10, 10, 1<<20)
	if err != nil || len(kept) != 10 {
		t.Fatalf("Read: %d records, %v", len(kept), err)
	}
	lf := l.(*log)
	lf.mu.RLock()
	held := lf.tail.frames[0].buf
	lf.mu.RUnlock()
	// Evict those frames many times over: their buffers must not be reused
	// while the records are out.
	appendSized(t, l, 2000, 10, 1000)
	checkValues(t, lent, 0, 1000)
	checkValues(t, kept, 10, 1000)
	if n := held.refs.Load(); n != 1 {
		t.Fatalf("an evicted frame read once by ReadLent has %d references, want 1", n)
	}
	release()
	if n := held.refs.Load(); n != 0 {
		t.Fatalf("after release the frame has %d references, want 0", n)
	}
	appendSized(t, l, 2000, 10, 1000)
	checkValues(t, kept, 10, 1000) // Read's records are never reused

	// Released lent reads of cached frames leave the references as they were.
	lf.mu.RLock()
	f := lf.tail.frames[len(lf.tail.frames)-1]
	lf.mu.RUnlock()
	before := f.buf.refs.Load()
	_, release, err = ln.ReadLent(ctx, f.first, 10, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.buf.refs.Load(); n != before+1 {
		t.Fatalf("a lent frame has %d references, want %d", n, before+1)
	}
	release()
	if n := f.buf.refs.Load(); n != before {
		t.Fatalf("a released frame has %d references, want %d", n, before)
	}
}

// TestTailCacheLentConcurrent reads and releases while appends evict, and
// checks every record read (run it with -race).
func TestTailCacheLentConcurrent(t *testing.T) {
	ctx := context.Background()
	l, ln := lenderLog(t, 128<<10)
	const total = 3000
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for from := uint64(0); from < total; {
			recs, release, err := ln.ReadLent(ctx, from, 37, 1<<20)
			if err != nil {
				done <- err
				return
			}
			for i, r := range recs {
				if r.Offset != from+uint64(i) || !bytes.Equal(r.Value, valueOf(r.Offset, 700)) {
					done <- fmt.Errorf("offset %d: read %d, value %.20q", from+uint64(i), r.Offset, r.Value)
					return
				}
			}
			release()
			from += uint64(len(recs))
			if len(recs) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	appendSized(t, l, total, 7, 700)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestTailCacheEncryptedAndTrimmed checks that an encrypted log reads from
// its segments, and that trimmed records, and those of a sealed log, leave
// the cache.
func TestTailCacheEncryptedAndTrimmed(t *testing.T) {
	ctx := context.Background()
	opts, fsys := tailOptions(1 << 20)
	var now atomic.Int64 // Unix ns; the janitor reads the clock too
	now.Store(time.Now().UnixNano())
	opts.Clock = func() time.Time { return time.Unix(0, now.Load()) }
	e := openTest(t, t.TempDir(), opts)

	l := mustLog(t, e, "plain")
	appendSized(t, l, 50, 10, 100)
	later := now.Add(int64(time.Hour))
	if err := l.Trim(ctx, later/int64(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, b := tailState(l); n != 0 || b != 0 {
		t.Fatalf("after trimming everything the cache holds %d frames, %d bytes", n, b)
	}
	readCounted(t, l, fsys, 0, 10, 0, 100)
	appendSized(t, l, 10, 10, 100)
	readCounted(t, l, fsys, 50, 10, 10, 100)
	if err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if n, b := tailState(l); n != 0 || b != 0 {
		t.Fatalf("a sealed log's cache holds %d frames, %d bytes", n, b)
	}
	if readCounted(t, l, fsys, 55, 10, 5, 100) == 0 {
		t.Fatal("the sealed log's records did not come from its segment")
	}

	el := mustLog(t, e, "secret")
	keys := enginetest.NewTestKeys(1)
	keys.Use(1)
	el.SetKeys(keys)
	appendSized(t, el, 30, 10, 100)
	if n, _ := tailState(el); n != 0 {
		t.Fatalf("an encrypted log caches %d frames", n)
	}
	if readCounted(t, el, fsys, 0, 100, 30, 100) == 0 {
		t.Fatal("the encrypted log's records did not come from its segment")
	}
}
