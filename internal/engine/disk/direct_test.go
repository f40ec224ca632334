package disk

import (
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// segFiles returns the segment files of log dir, oldest first.
func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments of %s: %v, %v", dir, segs, err)
	}
	sort.Strings(segs)
	return segs
}

// allocated returns the bytes of disk a file holds.
func allocated(t *testing.T, path string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// copyTree copies the files of a data directory, as a crash would leave
// them (the engine still running, nothing in flight).
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		defer src.Close()
		out, err := os.Create(dst)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, src); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDirectWrites checks the segments written around the page cache: the
// frames land where they belong although every write is rounded to whole
// blocks, sealed segments end where their frames end, the zeros after the
// active segment's end are cut at Close, and after a crash recovery cuts
// them without reporting a torn tail.
func TestDirectWrites(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentSize = 16 << 10
	opts.TailCache = 0 // every read comes from the segments
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "d")
	appendN(t, l, 3000, 7) // batches of odd sizes: no write ends on a boundary
	logDir := filepath.Join(dir, "logs", "d")
	segs := segFiles(t, logDir)
	if len(segs) < 3 {
		t.Fatalf("%d segments, want several", len(segs))
	}
	for _, p := range segs[:len(segs)-1] {
		if got, want := fileSize(t, p), framesEnd(segFrames(t, p)); got != want {
			t.Errorf("sealed segment %s: %d bytes, its frames end at %d", p, got, want)
		}
	}
	active := segs[len(segs)-1]
	size, end := fileSize(t, active), framesEnd(segFrames(t, active))
	if want := max(alignUp(end), alignUp(opts.SegmentSize)); size != want {
		t.Fatalf("active segment while running: %d bytes, frames end at %d; want zeros up to %d (the segment size, rounded to a block)", size, end, want)
	}
	checkLog(t, l, 0, 3000)

	// A crash: the files as they are now, padding included.
	crashed, e2 := openCrashCopy(t, dir, opts)
	l2 := mustLog(t, e2, "d")
	checkLog(t, l2, 0, 3000)
	if got := fileSize(t, filepath.Join(crashed, "logs", "d", filepath.Base(active))); got != end {
		t.Fatalf("after recovery the active segment has %d bytes, want %d", got, end)
	}
	// Appends after recovery start from the block on disk, not from memory.
	appendN(t, l2, 500, 3)
	checkLog(t, l2, 0, 3500)
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}

	// Close cuts the zeros off.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, active); got != end {
		t.Fatalf("after Close the active segment has %d bytes, want %d", got, end)
	}
	for _, p := range segFiles(t, logDir) {
		if got, size := allocated(t, p), fileSize(t, p); got > (size+directAlign-1)&^(directAlign-1) {
			t.Errorf("after Close %s has %d bytes allocated for %d", p, got, size)
		}
	}
	e3 := openTest(t, dir, opts)
	checkLog(t, mustLog(t, e3, "d"), 0, 3000)
}

// openCrashCopy opens a copy of the data directory dir taken while its
// engine runs (a crash), and checks that recovery reported no torn tail:
// the zeros after the active segments' frames are not one.
func openCrashCopy(t *testing.T, dir string, opts Options) (string, *Engine) {
	t.Helper()
	crashed := t.TempDir()
	copyTree(t, dir, crashed)
	logs := captureLog(&opts)
	e := openTest(t, crashed, opts)
	if strings.Contains(logs.String(), "torn") || e.Damage().TornBytes != 0 {
		t.Fatalf("recovery reported the zeros after the frames as torn: %+v\n%s", e.Damage(), logs)
	}
	return crashed, e
}

func alignUp(n int64) int64 { return (n + directAlign - 1) &^ (directAlign - 1) }

// TestZeroAhead checks that a round growing the active segment writes
// zeros after its frames, more of them while the log grows fast, that the
// rounds after it write in place until they pass them, and that recovery
// cuts the zeros silently.
func TestZeroAhead(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentSize = 64 << 20
	opts.TailCache = 0
	start := time.Now()
	opts.Clock = func() time.Time { return start } // every growth comes fast
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "z")
	ctx := context.Background()
	value := make([]byte, 16<<10)
	put := func(n int) {
		t.Helper()
		for range n {
			if _, err := l.Append(ctx, []engine.Record{{Key: []byte("k"), Value: value}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	active := segFiles(t, filepath.Join(dir, "logs", "z"))[0]
	put(1)
	end := framesEnd(segFrames(t, active))
	first := alignUp(end) + minZero
	if got := fileSize(t, active); got != first {
		t.Fatalf("after the first round: %d bytes, frames end at %d; want %d", got, end, first)
	}
	if got := allocated(t, active); got < first {
		t.Fatalf("after the first round: %d bytes allocated; want the zeros' blocks too", got)
	}
	if b, err := os.ReadFile(active); err != nil || !isZero(b[end:]) {
		t.Fatalf("after the first round the file after its frames is not all zeros (%v)", err)
	}
	put(2) // within the zeros: in place
	if got := fileSize(t, active); got != first {
		t.Fatalf("rounds within the zeros grew the file: %d bytes, want %d", got, first)
	}
	put(600) // about 10 MiB at once: the zeros grow to zeroChunk
	end = framesEnd(segFrames(t, active))
	if got := l.(*log).w.dio.zeroSize; got != zeroChunk {
		t.Errorf("zeros after 10 MiB written at once: %d, want %d", got, zeroChunk)
	}
	if got := fileSize(t, active); got%directAlign != 0 || got < end || got > alignUp(end)+zeroChunk {
		t.Fatalf("after 10 MiB: %d bytes, frames end at %d", got, end)
	}

	crashed, e2 := openCrashCopy(t, dir, opts)
	if got := fileSize(t, filepath.Join(crashed, "logs", "z", filepath.Base(active))); got != end {
		t.Fatalf("after recovery: %d bytes, want %d", got, end)
	}
	l2 := mustLog(t, e2, "z")
	if info, _ := l2.Info(ctx); info.Next != 603 {
		t.Fatalf("after recovery the log ends at %d, want 603", info.Next)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, active); got != end {
		t.Fatalf("after Close: %d bytes, want %d", got, end)
	}
}

// zeroRecorder is a directWriter that records the zeros written.
type zeroRecorder struct{ zeros [][2]int64 }

func (z *zeroRecorder) WriteDirect([]byte, int64, bool) error { return nil }
func (z *zeroRecorder) ZeroDirect(off, n int64) error {
	z.zeros = append(z.zeros, [2]int64{off, n})
	return nil
}

// TestZeroAheadSizes checks how many zeros a growth writes: minZero first,
// doubling while the log uses them up fast, halving when it is slow, never
// beyond the segment's limit, and none while the writes stay within them.
func TestZeroAheadSizes(t *testing.T) {
	var tail directTail
	var z zeroRecorder
	seg, seg2 := &segment{}, &segment{}
	const limit = 64 << 20
	grow := func(s *segment, end, now, want int64) {
		t.Helper()
		z.zeros = nil
		tail.zeroAhead(&z, s, end, limit, now)
		var got int64
		if len(z.zeros) == 1 && z.zeros[0][0] == end {
			got = z.zeros[0][1]
		} else if len(z.zeros) > 0 {
			t.Fatalf("at %d: zeros %v", end, z.zeros)
		}
		if got != want {
			t.Fatalf("write ending at %d (t=%d): %d zeros, want %d", end, now, got, want)
		}
	}
	grow(seg, 8192, 1000, minZero)
	grow(seg, 8192+minZero, 1000, 0) // within the zeros
	grow(seg, 8192+minZero+4096, 1100, 2*minZero)
	grow(seg, 1<<20, 1200, 4*minZero)
	for now := int64(1300); now < 1370; now += 10 { // up to zeroChunk, and on
		grow(seg, tail.zeroEnd+4096, now, min(tail.zeroSize*2, zeroChunk))
	}
	grow(seg, tail.zeroEnd+4096, 5000, zeroChunk/2) // slow: halves
	grow(seg, tail.zeroEnd+4096, 5500, zeroChunk/2) // neither: stays
	grow(seg2, 8192, 6200, zeroChunk/2)             // a new segment keeps the size
	grow(seg2, limit-8192, 6900, 8192)              // not beyond the limit
	grow(seg2, limit+4096, 7600, 0)
}

// TestBufferedWrites checks Options.BufferedWrites: segments are written
// through the page cache, exactly as long as their frames.
func TestBufferedWrites(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.BufferedWrites = true
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "d")
	appendN(t, l, 500, 7)
	for _, p := range segFiles(t, filepath.Join(dir, "logs", "d")) {
		if got, want := fileSize(t, p), framesEnd(segFrames(t, p)); got != want {
			t.Errorf("segment %s: %d bytes, its frames end at %d", p, got, want)
		}
	}
	checkLog(t, l, 0, 500)
}

// refusingFS is the OS filesystem with files that refuse direct writes, as
// filesystems without O_DIRECT do.
type refusingFS struct{ OSFS }

func (refusingFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := OSFS{}.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return refusingFile{f}, nil
}

type refusingFile struct{ File }

func (refusingFile) WriteDirect([]byte, int64, bool) error { return errDirectUnsupported }
func (refusingFile) ZeroDirect(int64, int64) error         { return errDirectUnsupported }

// TestDirectRefused checks that a filesystem refusing direct writes gets
// buffered ones, with one warning, and loses nothing.
func TestDirectRefused(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.FS = refusingFS{}
	logs := captureLog(&opts)
	e := openTest(t, dir, opts)
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		l := mustLog(t, e, name)
		appendN(t, l, 300, 7)
		checkLog(t, l, 0, 300)
	}
	if n := strings.Count(logs.String(), "refused direct writes"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e = openTest(t, dir, opts)
	for _, name := range []string{"a", "b"} {
		l, err := e.Log(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		checkLog(t, l, 0, 300)
	}
}

// TestDirectWritesWithoutDSync checks the path for kernels without
// RWF_DSYNC: each round's direct write is followed by an fdatasync.
func TestDirectWritesWithoutDSync(t *testing.T) {
	noDSync.Store(true)
	defer noDSync.Store(false)
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentSize = 16 << 10
	opts.TailCache = 0
	obs := &countingObserver{}
	opts.Observer = obs
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "d")
	appendN(t, l, 700, 7)
	if n := obs.syncs.Load(); n != 100 {
		t.Errorf("%d syncs observed, want one per append", n)
	}
	checkLog(t, l, 0, 700)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	checkLog(t, mustLog(t, openTest(t, dir, opts), "d"), 0, 700)
}

// dirtyFrameBufs leaves frame buffers of the classes a frame of n bytes may
// get in their pools, filled with junk, as buffers of old frames would be.
func dirtyFrameBufs(n int) {
	var tbs []*frameBuf
	for _, size := range []int{n, n + 2*directAlign} {
		for range 4 {
			tb := getFrameBuf(size)
			b := tb.b[:cap(tb.b)]
			for i := range b {
				b[i] = 0x5a
			}
			tbs = append(tbs, tb)
		}
	}
	for _, tb := range tbs {
		putFrameBuf(tb)
	}
}

// TestInPlaceWrites checks that a round whose only frame is large is
// written from the frame's own buffer (no staging copy), with the block's
// earlier bytes before it and zeros after it, that a frame placed for
// another position is staged as before, and that both read back from the
// segments, after a crash and after Close.
func TestInPlaceWrites(t *testing.T) {
	ctx := context.Background()
	const big = 5000 // records of a large batch: a frame over inPlaceMin
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentSize = 1 << 20 // a roll every dozen large frames
	opts.TailCache = 0         // every read comes from the segments
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "p")
	frame, _ := frameSize(make([]engine.Record, big), false)
	dirtyFrameBufs(frame + big*len(val(0)))

	n := 0
	for i := range 40 {
		appendN(t, l, big, big)
		n += big
		if i%3 == 0 {
			appendN(t, l, 7, 7) // a small frame: the next large one starts mid-block
			n += 7
		}
	}
	inPlace := e.com.inPlaceWrites.Load()
	if inPlace < 30 {
		t.Fatalf("%d of 40 large frames written in place, want all but those that rolled a segment", inPlace)
	}
	// A frame built for another position is staged.
	dl := l.(*log)
	dl.end.Add(100)
	appendN(t, l, big, big)
	n += big
	if got := e.com.inPlaceWrites.Load(); got != inPlace {
		t.Fatalf("a frame placed for another position was written in place (%d → %d)", inPlace, got)
	}
	appendN(t, l, big, big) // the position is known again
	n += big
	if got := e.com.inPlaceWrites.Load(); got != inPlace+1 {
		t.Fatalf("in-place writes %d → %d, want one more", inPlace, got)
	}
	checkLog(t, l, 0, uint64(n))

	_, e2 := openCrashCopy(t, dir, opts)
	checkLog(t, mustLog(t, e2, "p"), 0, uint64(n))
	e2.Close()

	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e3 := openTest(t, dir, opts)
	l3 := mustLog(t, e3, "p")
	checkLog(t, l3, 0, uint64(n))
	if _, err := l3.Append(ctx, []engine.Record{{Value: val(uint64(n))}}); err != nil {
		t.Fatal(err)
	}
	checkLog(t, l3, 0, uint64(n+1))
}
