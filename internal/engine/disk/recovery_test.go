package disk

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel/runnel/internal/engine"
)

// framesOf returns the position and length of each frame of a segment file.
func framesOf(t *testing.T, path string) (pos []int64, length []int64) {
	t.Helper()
	f, err := OSFS{}.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := f.Size()
	sc := &scanner{f: f, path: path, pos: segmentHeaderSize, end: size, chunk: 1 << 16}
	for {
		p, h, _, err := sc.next()
		if err != nil {
			return pos, length
		}
		pos = append(pos, p)
		length = append(length, int64(h.Length))
	}
}

func truncateFile(t *testing.T, path string, size int64) {
	t.Helper()
	if err := os.Truncate(path, size); err != nil {
		t.Fatal(err)
	}
}

func patchFile(t *testing.T, path string, at int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, at); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestRecoveryDamage damages a closed store and checks, on reopening, which
// records survive: exactly a prefix up to the first damaged batch of the
// tail, never a record that fails its checksum.
func TestRecoveryDamage(t *testing.T) {
	const batches, per = 20, 5 // 100 records, frames of about 120 bytes
	type damage struct {
		seg, idx string // paths of the (last) segment and its index
		pos, len []int64
	}
	last := func(d damage) int { return len(d.pos) - 1 }
	tests := []struct {
		name    string
		damage  func(t *testing.T, d damage)
		survive uint64 // records kept
	}{
		{"none", func(t *testing.T, d damage) {}, 100},
		{"torn write inside the last batch", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, d.pos[last(d)]+d.len[last(d)]-3)
		}, 95},
		{"torn write inside the last batch header", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, d.pos[last(d)]+10)
		}, 95},
		{"torn write of three batches", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, d.pos[17]+5)
		}, 85},
		{"bad checksum in the last batch", func(t *testing.T, d damage) {
			patchFile(t, d.seg, d.pos[last(d)]+d.len[last(d)]-1, []byte{0xff})
		}, 95},
		{"bad checksum in batch 12, index missing", func(t *testing.T, d damage) {
			patchFile(t, d.seg, d.pos[12]+40, []byte{0xff, 0xfe})
			os.Remove(d.idx)
		}, 60},
		{"bad length in the last batch", func(t *testing.T, d damage) {
			patchFile(t, d.seg, d.pos[last(d)], []byte{0xff, 0xff, 0xff, 0x7f})
		}, 95},
		{"zero length in batch 15, index missing", func(t *testing.T, d damage) {
			patchFile(t, d.seg, d.pos[15], []byte{0, 0, 0, 0})
			os.Remove(d.idx)
		}, 75},
		{"zeroed preallocated tail", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, fileSize(t, d.seg)+8192)
		}, 100},
		{"garbage after the last batch", func(t *testing.T, d damage) {
			patchFile(t, d.seg, fileSize(t, d.seg), []byte("this is not a frame at all, not even close......"))
		}, 100},
		{"missing index", func(t *testing.T, d damage) { os.Remove(d.idx) }, 100},
		{"truncated index (partial entry)", func(t *testing.T, d damage) {
			truncateFile(t, d.idx, fileSize(t, d.idx)-7)
		}, 100},
		{"index truncated to its header", func(t *testing.T, d damage) {
			truncateFile(t, d.idx, indexHeaderSize-3)
		}, 100},
		{"corrupt index entry", func(t *testing.T, d damage) {
			patchFile(t, d.idx, indexHeaderSize+indexEntrySize+3, []byte{0x55})
		}, 100},
		{"stale index past a torn tail", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, d.pos[10]+1)
		}, 50},
		{"garbage index", func(t *testing.T, d damage) {
			os.WriteFile(d.idx, []byte("RNLINDX1garbagegarbagegarbagegarbagegarbage"), 0o644)
		}, 100},
		{"partial segment header of a new segment", func(t *testing.T, d damage) {
			// A crash while rolling: the next segment exists with a torn header.
			p := filepath.Join(filepath.Dir(d.seg), segmentName(100)+segmentExt)
			os.WriteFile(p, encodeSegmentHeader(segmentHeader{Base: 100})[:11], 0o644)
		}, 100},
		{"empty new segment without index", func(t *testing.T, d damage) {
			p := filepath.Join(filepath.Dir(d.seg), segmentName(100)+segmentExt)
			os.WriteFile(p, nil, 0o644)
		}, 100},
		{"bad segment header, frames intact", func(t *testing.T, d damage) {
			patchFile(t, d.seg, 2, []byte("XX"))
		}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			opts.SegmentSize = 1 << 20
			e := openTest(t, dir, opts)
			l := mustLog(t, e, "d")
			appendN(t, l, batches*per, per)
			e.Close()

			seg := filepath.Join(dir, "logs", "d", segmentName(0)+segmentExt)
			d := damage{seg: seg, idx: filepath.Join(dir, "logs", "d", segmentName(0)+indexExt)}
			d.pos, d.len = framesOf(t, seg)
			if len(d.pos) != batches {
				t.Fatalf("%d frames, want %d", len(d.pos), batches)
			}
			tt.damage(t, d)

			e = openTest(t, dir, opts)
			l = mustLog(t, e, "d")
			checkLog(t, l, 0, tt.survive)
			// The log goes on from where recovery left it, and reopens clean.
			appendN(t, l, 23, 4)
			checkLog(t, l, 0, tt.survive+23)
			e.Close()
			e = openTest(t, dir, opts)
			checkLog(t, mustLog(t, e, "d"), 0, tt.survive+23)
		})
	}
}

// TestCorruptionInsideIsReported damages a batch that recovery does not
// scan (before the last index entry): reading it fails, it is not served.
func TestCorruptionInsideIsReported(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentSize = 1 << 20
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "d")
	appendN(t, l, 100, 5)
	e.Close()
	seg := filepath.Join(dir, "logs", "d", segmentName(0)+segmentExt)
	pos, _ := framesOf(t, seg)
	patchFile(t, seg, pos[2]+40, []byte{0xff})
	e = openTest(t, dir, opts)
	l = mustLog(t, e, "d")
	_, err := l.Read(context.Background(), 10, 100, 1<<20)
	var ce *CorruptionError
	if !errorsAs(err, &ce) {
		t.Fatalf("Read over a corrupt batch: %v, want a *CorruptionError", err)
	}
	// Past the next index entry, reads do not touch the damaged batch.
	recs, err := l.Read(context.Background(), 50, 100, 1<<20)
	if err != nil || len(recs) != 50 {
		t.Fatalf("Read after the corrupt batch: %d records, %v", len(recs), err)
	}
	if _, err := l.Append(context.Background(), []engine.Record{{Value: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
}

// TestClosedSegmentIndexRebuilt removes and damages the indexes of closed
// segments: reads, OffsetAt and Info rebuild them.
func TestClosedSegmentIndexRebuilt(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "d")
	appendN(t, l, 2000, 10)
	e.Close()
	ents, _ := os.ReadDir(filepath.Join(dir, "logs", "d"))
	n := 0
	for i, de := range ents {
		if filepath.Ext(de.Name()) != indexExt {
			continue
		}
		p := filepath.Join(dir, "logs", "d", de.Name())
		switch i % 3 {
		case 0:
			os.Remove(p)
		case 1:
			truncateFile(t, p, fileSize(t, p)-indexEntrySize) // footer gone
		}
		n++
	}
	if n < 5 {
		t.Fatalf("only %d segments", n)
	}
	e = openTest(t, dir, opts)
	l = mustLog(t, e, "d")
	checkLog(t, l, 0, 2000)
	off, err := l.OffsetAt(context.Background(), 0)
	if err != nil || off != 0 {
		t.Fatalf("OffsetAt(0) = %d, %v", off, err)
	}
}
