package disk

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
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
// records survive: a torn tail is cut (a prefix survives), a damaged batch
// followed by intact ones is a hole (only its records are lost), and no
// record that fails its checksum is ever served.
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
		survive uint64    // the log's end after recovery
		lost    [2]uint64 // a hole: offsets [lost[0], lost[1]) are gone
	}{
		{"none", func(t *testing.T, d damage) {}, 100, [2]uint64{}},
		{"torn write inside the last batch", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, d.pos[last(d)]+d.len[last(d)]-3)
		}, 95, [2]uint64{}},
		{"torn write inside the last batch header", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, d.pos[last(d)]+10)
		}, 95, [2]uint64{}},
		{"torn write of three batches", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, d.pos[17]+5)
		}, 85, [2]uint64{}},
		{"bad checksum in the last batch", func(t *testing.T, d damage) {
			patchFile(t, d.seg, d.pos[last(d)]+d.len[last(d)]-1, []byte{0xff})
		}, 95, [2]uint64{}},
		{"bad checksum in batch 12, index missing", func(t *testing.T, d damage) {
			patchFile(t, d.seg, d.pos[12]+40, []byte{0xff, 0xfe})
			os.Remove(d.idx)
		}, 100, [2]uint64{60, 65}},
		{"bad length in the last batch", func(t *testing.T, d damage) {
			patchFile(t, d.seg, d.pos[last(d)], []byte{0xff, 0xff, 0xff, 0x7f})
		}, 95, [2]uint64{}},
		{"zero length in batch 15, index missing", func(t *testing.T, d damage) {
			patchFile(t, d.seg, d.pos[15], []byte{0, 0, 0, 0})
			os.Remove(d.idx)
		}, 100, [2]uint64{75, 80}},
		{"zeroed preallocated tail", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, fileSize(t, d.seg)+8192)
		}, 100, [2]uint64{}},
		{"garbage after the last batch", func(t *testing.T, d damage) {
			patchFile(t, d.seg, fileSize(t, d.seg), []byte("this is not a frame at all, not even close......"))
		}, 100, [2]uint64{}},
		{"missing index", func(t *testing.T, d damage) { os.Remove(d.idx) }, 100, [2]uint64{}},
		{"truncated index (partial entry)", func(t *testing.T, d damage) {
			truncateFile(t, d.idx, fileSize(t, d.idx)-7)
		}, 100, [2]uint64{}},
		{"index truncated to its header", func(t *testing.T, d damage) {
			truncateFile(t, d.idx, indexHeaderSize-3)
		}, 100, [2]uint64{}},
		{"corrupt index entry", func(t *testing.T, d damage) {
			patchFile(t, d.idx, indexHeaderSize+indexEntrySize+3, []byte{0x55})
		}, 100, [2]uint64{}},
		{"stale index past a torn tail", func(t *testing.T, d damage) {
			truncateFile(t, d.seg, d.pos[10]+1)
		}, 50, [2]uint64{}},
		{"garbage index", func(t *testing.T, d damage) {
			os.WriteFile(d.idx, []byte("RNLINDX1garbagegarbagegarbagegarbagegarbage"), 0o644)
		}, 100, [2]uint64{}},
		{"partial segment header of a new segment", func(t *testing.T, d damage) {
			// A crash while rolling: the next segment exists with a torn header.
			p := filepath.Join(filepath.Dir(d.seg), segmentName(100)+segmentExt)
			os.WriteFile(p, encodeSegmentHeader(segmentHeader{Base: 100})[:11], 0o644)
		}, 100, [2]uint64{}},
		{"empty new segment without index", func(t *testing.T, d damage) {
			p := filepath.Join(filepath.Dir(d.seg), segmentName(100)+segmentExt)
			os.WriteFile(p, nil, 0o644)
		}, 100, [2]uint64{}},
		{"bad segment header, frames intact", func(t *testing.T, d damage) {
			patchFile(t, d.seg, 2, []byte("XX"))
		}, 100, [2]uint64{}},
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
			var want []uint64
			for o := range tt.survive + 23 {
				if o < tt.lost[0] || o >= tt.lost[1] {
					want = append(want, o)
				}
			}
			if got := readAll(t, l, 1000); !slices.Equal(got, want[:len(want)-23]) {
				t.Fatalf("%d records survive, want %d", len(got), len(want)-23)
			}
			// The log goes on from where recovery left it, and reopens clean.
			appendN(t, l, 23, 4)
			if got := readAll(t, l, 1000); !slices.Equal(got, want) {
				t.Fatalf("%d records after appending, want %d", len(got), len(want))
			}
			e.Close()
			e = openTest(t, dir, opts)
			if got := readAll(t, mustLog(t, e, "d"), 1000); !slices.Equal(got, want) {
				t.Fatalf("%d records after reopening, want %d", len(got), len(want))
			}
		})
	}
}

// TestCorruptionInsideIsSkipped damages a batch that recovery does not scan
// (before the last index entry): it is never served, reads step over it,
// and it is reported once.
func TestCorruptionInsideIsSkipped(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentSize = 1 << 20
	logs := captureLog(&opts)
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "d")
	appendN(t, l, 100, 5)
	e.Close()
	seg := filepath.Join(dir, "logs", "d", segmentName(0)+segmentExt)
	pos, _ := framesOf(t, seg)
	patchFile(t, seg, pos[2]+40, []byte{0xff})
	e = openTest(t, dir, opts)
	l = mustLog(t, e, "d")
	// Records before the damaged batch come back; the read stops at
	// nothing and goes on after it.
	recs, err := l.Read(ctx, 5, 10, 1<<20)
	if err != nil || len(recs) != 10 || recs[0].Offset != 5 || recs[4].Offset != 9 || recs[5].Offset != 15 {
		t.Fatalf("Read over a corrupt batch: %v, %v", recs, err)
	}
	// An iterator inside the damaged batch goes on after it.
	recs, err = l.Read(ctx, 12, 1, 1<<20)
	if err != nil || len(recs) != 1 || recs[0].Offset != 15 {
		t.Fatalf("Read inside a corrupt batch: %v, %v", recs, err)
	}
	if n := strings.Count(logs.String(), "first_offset=10 last_offset=14"); n != 1 {
		t.Fatalf("damage reported %d times:\n%s", n, logs.String())
	}
	if st := e.Damage(); st.Holes != 1 || st.LostRecords != 5 {
		t.Fatalf("Damage() = %+v", st)
	}
	if _, err := l.Append(ctx, []engine.Record{{Value: []byte("x")}}); err != nil {
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

// TestIndexWrittenInBatches checks that the active segment's index entries
// reach its file indexWriteAt bytes at a time, that a crash before then
// loses no record (Open rebuilds the entries), that a failed round keeps
// the entries of the rounds before it, and that Close writes the rest: the
// file then holds what recovery would rebuild from the segment.
func TestIndexWrittenInBatches(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ffs := &faultFS{}
	opts := testOptions()
	opts.FS = ffs
	opts.SegmentSize = 64 << 20 // one segment
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "x")
	idxFiles, _ := filepath.Glob(filepath.Join(dir, "logs", "x", "*"+indexExt))
	if len(idxFiles) != 1 {
		t.Fatalf("index files %v", idxFiles)
	}
	idx := idxFiles[0]
	const per = 40 // records a round: a frame over IndexInterval, an entry each
	perEntries := int64(indexWriteAt / indexEntrySize)
	appendN(t, l, per*int(perEntries-10), per)
	if n := fileSize(t, idx); n != indexHeaderSize {
		t.Fatalf("index is %d bytes after %d rounds, want only its header", n, perEntries-10)
	}
	appendN(t, l, per*20, per)
	if n := fileSize(t, idx); n != indexHeaderSize+indexWriteAt {
		t.Fatalf("index is %d bytes after %d rounds, want %d", n, perEntries+10, indexHeaderSize+indexWriteAt)
	}
	total := uint64(per * (perEntries + 10))

	_, crashed := openCrashCopy(t, dir, opts)
	checkLog(t, mustLog(t, crashed, "x"), 0, total)
	crashed.Close()

	ffs.set("write", ".seg", syscall.EIO)
	if _, err := l.Append(ctx, []engine.Record{{Value: val(total)}}); err == nil {
		t.Fatal("Append under a write fault succeeded")
	}
	ffs.set("write", "", nil)
	appendN(t, l, per*10, per)
	total += per * 10
	checkLog(t, l, 0, total)
	e.Close()

	b, err := os.ReadFile(idx)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := decodeIndex(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := t.TempDir()
	copyTree(t, dir, rebuilt)
	os.Remove(filepath.Join(rebuilt, "logs", "x", filepath.Base(idx)))
	e = openTest(t, rebuilt, testOptions())
	checkLog(t, mustLog(t, e, "x"), 0, total)
	e.Close()
	b, err = os.ReadFile(filepath.Join(rebuilt, "logs", "x", filepath.Base(idx)))
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := decodeIndex(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || int64(len(got)) < perEntries+20 {
		t.Fatalf("index holds %d entries, recovery rebuilds %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("entry %d is %+v, recovery rebuilds %+v", i, got[i], want[i])
		}
	}
}
