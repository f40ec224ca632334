package disk

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// frameInfo is one frame of a segment file as written.
type frameInfo struct {
	pos, len     int64
	first, count uint64
}

// segFrames lists the intact frames of a segment file.
func segFrames(t *testing.T, path string) []frameInfo {
	t.Helper()
	f, err := OSFS{}.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, _ := f.Size()
	sc := &scanner{f: f, path: path, pos: segmentHeaderSize, end: size, chunk: 1 << 16}
	var out []frameInfo
	for {
		p, h, _, err := sc.next()
		if err != nil {
			if !isDamage(err) {
				return out
			}
			fp, _, ok, _ := resync(f, path, p, size, 0, 0)
			if !ok {
				return out
			}
			sc.seek(fp)
			continue
		}
		out = append(out, frameInfo{p, int64(h.Length), h.FirstOffset, uint64(h.Count)})
	}
}

// syncBuffer is a log destination safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func captureLog(opts *Options) *syncBuffer {
	buf := &syncBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(buf, nil))
	return buf
}

// readAll reads a log from offset 0 to its end in reads of at most per
// records and returns the offsets read, checking each value.
func readAll(t *testing.T, l engine.Log, per int) []uint64 {
	t.Helper()
	ctx := context.Background()
	info, err := l.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	from := uint64(0)
	for reads := 0; from < info.Next; reads++ {
		if reads > 100000 {
			t.Fatalf("reading does not progress at offset %d", from)
		}
		recs, err := l.Read(ctx, from, per, 1<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Offset < from || !bytes.Equal(r.Value, val(r.Offset)) {
				t.Fatalf("Read(%d): record %d holds %q", from, r.Offset, r.Value)
			}
			got = append(got, r.Offset)
			from = r.Offset + 1
		}
	}
	return got
}

// framesEnd returns where the last of frames ends: the size of the data of
// a segment, without the zeros a direct write leaves after it while the
// engine runs.
func framesEnd(frames []frameInfo) int64 {
	if len(frames) == 0 {
		return segmentHeaderSize
	}
	f := frames[len(frames)-1]
	return f.pos + f.len
}

// TestDamage damages one segment, sealed or active, while the engine runs or
// while it is closed, and checks that exactly the records of the damaged
// frames are lost: readers get every other record, step over the hole, and
// the loss is logged and counted.
func TestDamage(t *testing.T) {
	const total = 3000
	type target struct {
		seg, idx string
		size     int64
		frames   []frameInfo
	}
	// A damage returns the byte ranges it destroyed in the segment.
	tests := []struct {
		name   string
		damage func(t *testing.T, d target) [][2]int64
	}{
		{"truncated tail", func(t *testing.T, d target) [][2]int64 {
			truncateFile(t, d.seg, d.size-1000)
			return [][2]int64{{d.size - 1000, d.size}}
		}},
		{"flipped byte mid-segment", func(t *testing.T, d target) [][2]int64 {
			p := d.size / 2
			b := make([]byte, 1)
			f, _ := os.Open(d.seg)
			f.ReadAt(b, p)
			f.Close()
			patchFile(t, d.seg, p, []byte{b[0] ^ 0x10})
			return [][2]int64{{p, p + 1}}
		}},
		{"zeroed page mid-segment", func(t *testing.T, d target) [][2]int64 {
			p := d.size / 2 &^ 4095
			patchFile(t, d.seg, p, make([]byte, 4096))
			return [][2]int64{{p, p + 4096}}
		}},
		{"missing index", func(t *testing.T, d target) [][2]int64 {
			os.Remove(d.idx)
			return nil
		}},
		{"damaged index", func(t *testing.T, d target) [][2]int64 {
			patchFile(t, d.idx, indexHeaderSize+indexEntrySize+5, []byte{0xee})
			return nil
		}},
	}
	for _, tt := range tests {
		for _, which := range []string{"sealed", "active"} {
			for _, when := range []string{"running", "after restart"} {
				t.Run(fmt.Sprintf("%s/%s/%s", tt.name, which, when), func(t *testing.T) {
					ctx := context.Background()
					dir := t.TempDir()
					opts := testOptions()
					opts.SegmentSize = 16 << 10
					opts.IndexInterval = 1024
					logs := captureLog(&opts)
					e := openTest(t, dir, opts)
					l := mustLog(t, e, "d")
					appendN(t, l, total, 5)
					ldir := filepath.Join(dir, "logs", "d")
					segs, _ := filepath.Glob(filepath.Join(ldir, "*"+segmentExt))
					if len(segs) < 4 {
						t.Fatalf("%d segments, want at least 4", len(segs))
					}
					p := segs[1]
					if which == "active" {
						p = segs[len(segs)-1]
					}
					d := target{seg: p, idx: strings.TrimSuffix(p, segmentExt) + indexExt, frames: segFrames(t, p)}
					d.size = framesEnd(d.frames)
					if which == "active" && len(d.frames) < 40 {
						// Fill the active segment well past the damage.
						appendN(t, l, 300, 5)
						d.frames = segFrames(t, p)
						d.size = framesEnd(d.frames)
					}
					info, _ := l.Info(ctx)
					next := info.Next
					if when == "after restart" {
						e.Close()
					}
					ranges := tt.damage(t, d)
					if when == "running" {
						dropTailCache(e, "d")
					}
					var lost []uint64
					for _, f := range d.frames {
						for _, r := range ranges {
							if f.pos < r[1] && r[0] < f.pos+f.len {
								for o := f.first; o < f.first+f.count; o++ {
									lost = append(lost, o)
								}
								break
							}
						}
					}
					if len(ranges) > 0 && len(lost) == 0 {
						t.Fatal("the damage hit no frame")
					}
					// A damaged tail of the active segment found at Open is
					// a torn tail: it is cut, and the log's end moves back.
					torn := which == "active" && when == "after restart" && tt.name == "truncated tail"
					if torn {
						next = lost[0]
						lost = nil
					}
					if when == "after restart" {
						e = openTest(t, dir, opts)
						l = mustLog(t, e, "d")
					}
					var want []uint64
					for o := uint64(0); o < next; o++ {
						if _, ok := slices.BinarySearch(lost, o); !ok {
							want = append(want, o)
						}
					}
					for _, per := range []int{10000, 7, 1} {
						got := readAll(t, l, per)
						if !slices.Equal(got, want) {
							t.Fatalf("reads of %d: %d records survive, want %d (lost %d..%d)", per, len(got), len(want), lost[0], lost[len(lost)-1])
						}
					}
					if len(lost) > 0 {
						// An iterator inside the hole continues after it.
						recs, err := l.Read(ctx, lost[len(lost)/2], 3, 1<<20)
						if lost[len(lost)-1]+1 == next {
							// Nothing intact after the hole yet: as at the end.
							if err != nil || len(recs) != 0 {
								t.Fatalf("Read inside a hole at the end: %v, %v", recs, err)
							}
						} else if err != nil || len(recs) == 0 || recs[0].Offset != lost[len(lost)-1]+1 {
							t.Fatalf("Read inside the hole: %v, %v; want offset %d first", recs, err, lost[len(lost)-1]+1)
						}
						line := fmt.Sprintf("first_offset=%d last_offset=%d", lost[0], lost[len(lost)-1])
						if !strings.Contains(logs.String(), line) {
							t.Fatalf("log lacks %q:\n%s", line, logs.String())
						}
						if st := e.Damage(); st.LostRecords != int64(len(lost)) {
							t.Fatalf("Damage() = %+v, want %d lost records", st, len(lost))
						}
						if n := strings.Count(logs.String(), "damaged records skipped"); n != 1 {
							t.Fatalf("the hole was reported %d times:\n%s", n, logs.String())
						}
					}
					if torn && !strings.Contains(logs.String(), fmt.Sprintf("cut torn tail of segment\" file=%s", d.seg)) {
						t.Fatalf("torn tail not reported:\n%s", logs.String())
					}
					// The log takes appends after the damage, and reads on.
					appendN(t, l, 10, 5)
					for o := next; o < next+10; o++ {
						want = append(want, o)
					}
					if got := readAll(t, l, 100); !slices.Equal(got, want) {
						t.Fatalf("after appending: %d records, want %d", len(got), len(want))
					}
					if off, err := l.OffsetAt(ctx, 0); err != nil || off != want[0] {
						t.Fatalf("OffsetAt(0) = %d, %v", off, err)
					}
				})
			}
		}
	}
}

// TestTornTailReported cuts the tail of the active segment by hand and checks
// the line Open logs: file, bytes, the records cut and whether they can have
// been acknowledged under the durability policy.
func TestTornTailReported(t *testing.T) {
	for _, tt := range []struct {
		d   Durability
		ack string
	}{
		{SyncAlways, `acknowledged="no: `},
		{SyncInterval, `acknowledged="possibly: `},
	} {
		t.Run(tt.d.String(), func(t *testing.T) {
			dir := t.TempDir()
			opts := testOptions()
			opts.SegmentSize = 1 << 20
			opts.Durability = tt.d
			logs := captureLog(&opts)
			e := openTest(t, dir, opts)
			appendN(t, mustLog(t, e, "d"), 100, 5)
			e.Close()
			seg := filepath.Join(dir, "logs", "d", segmentName(0)+segmentExt)
			frames := segFrames(t, seg)
			// A torn write of the last six batches: the first of them whole
			// but for its last byte, the rest never written.
			cut := frames[14].pos + frames[14].len - 1
			truncateFile(t, seg, cut)
			size := fileSize(t, seg)
			e = openTest(t, dir, opts)
			checkLog(t, mustLog(t, e, "d"), 0, 70)
			line := fmt.Sprintf(`msg="disk: cut torn tail of segment" file=%s from_byte=%d to_byte=%d records=5 durability=%s `, seg, frames[14].pos, size, tt.d)
			if !strings.Contains(logs.String(), line) || !strings.Contains(logs.String(), tt.ack) ||
				!strings.Contains(logs.String(), "first_offset=70 last_offset=74") {
				t.Fatalf("log lacks %q:\n%s", line, logs.String())
			}
			if st := e.Damage(); st.TornRecords != 5 || st.TornBytes != size-frames[14].pos {
				t.Fatalf("Damage() = %+v", st)
			}
		})
	}
}

// TestFileModes checks that the engine creates its directories 0700 and
// its files 0600: the records are readable by the server's user only.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	opts := testOptions()
	e := openTest(t, dir, opts)
	appendN(t, mustLog(t, e, "d"), 500, 5) // several segments
	e.Close()
	n := 0
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		n++
		return nil
	})
	if err != nil || n < 8 {
		t.Fatalf("walked %d files: %v", n, err)
	}
}

// TestWaitSkipsHole checks that Wait does not wake a reader for records lost
// at the end of the active segment, and wakes it for the next append.
func TestWaitSkipsHole(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := testOptions()
	opts.SegmentSize = 1 << 20
	e := openTest(t, dir, opts)
	l := mustLog(t, e, "d")
	appendN(t, l, 100, 5)
	seg := filepath.Join(dir, "logs", "d", segmentName(0)+segmentExt)
	frames := segFrames(t, seg)
	truncateFile(t, seg, frames[18].pos+3) // records 90..99 lost
	dropTailCache(e, "d")
	recs, err := l.Read(ctx, 85, 100, 1<<20)
	if err != nil || len(recs) != 5 || recs[4].Offset != 89 {
		t.Fatalf("Read: %v, %v", recs, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if n, err := l.Wait(wctx, 90); err == nil {
		t.Fatalf("Wait inside a hole at the end returned %d at once", n)
	}
	appendN(t, l, 1, 1)
	if n, err := l.Wait(ctx, 90); err != nil || n != 101 {
		t.Fatalf("Wait after an append: %d, %v", n, err)
	}
	recs, err = l.Read(ctx, 90, 100, 1<<20)
	if err != nil || len(recs) != 1 || recs[0].Offset != 100 {
		t.Fatalf("Read after the hole: %v, %v", recs, err)
	}
}

// FuzzReadDamagedSegment overwrites part of a segment with arbitrary bytes
// and reads the log after reopening: nothing may panic, and every record
// served is one that was written (or a frame the junk forged whole), in
// increasing order.
func FuzzReadDamagedSegment(f *testing.F) {
	f.Add(uint16(100), []byte{0xff})
	f.Add(uint16(0), make([]byte, 64))
	f.Add(uint16(2000), make([]byte, 4096))
	f.Add(uint16(500), []byte("RNLSEGM1 not a frame"))
	f.Add(uint16(33), frameOf(0, 1, engine.Record{Value: []byte("forged")}))
	f.Fuzz(func(t *testing.T, at uint16, junk []byte) {
		dir := t.TempDir()
		opts := testOptions()
		opts.SegmentSize = 1 << 20
		e, err := Open(dir, opts)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		e.CreateLog(ctx, "d", engine.LogOptions{})
		l, _ := e.Log(ctx, "d")
		appendN(t, l, 60, 3)
		e.Close()
		seg := filepath.Join(dir, "logs", "d", segmentName(0)+segmentExt)
		patchFile(t, seg, int64(at)%fileSize(t, seg), junk)
		e, err = Open(dir, opts)
		if err != nil {
			return // refusing a damaged store is allowed; crashing is not
		}
		defer e.Close()
		l, err = e.Log(ctx, "d")
		if err != nil {
			t.Fatal(err)
		}
		from := uint64(0)
		for range 200 {
			recs, err := l.Read(ctx, from, 7, 1<<20)
			if err != nil || len(recs) == 0 {
				break
			}
			for _, r := range recs {
				// A frame forged in the junk (valid checksum) is data like
				// any other; everything else must be what was written.
				if r.Offset < from || !bytes.Equal(r.Value, val(r.Offset)) && !bytes.Contains(junk, r.Value) {
					t.Fatalf("served record %d = %q (reading from %d)", r.Offset, r.Value, from)
				}
				from = r.Offset + 1
			}
		}
		l.OffsetAt(ctx, 0)
		l.Info(ctx)
	})
}

// TestResyncOverZeros checks that the search for an intact frame after
// damage steps over long runs of zeros (as direct writes leave them, or as
// a zeroed page is) without missing a frame that starts anywhere after them.
func TestResyncOverZeros(t *testing.T) {
	frame := func(first uint64) []byte {
		recs := []engine.Record{{Key: []byte("k"), Value: []byte("a record after the zeros")}}
		b, crc := encodeBody(nil, recs, false)
		sealFrame(b, crc, first, 1)
		return b
	}
	sizes := []int{1, 4095, 4096 + 17, 3*4096 - 5, 1<<20 + 999, 2<<20 + 4096}
	for n := 2*4096 - 2*batchHeaderSize; n <= 2*4096+8; n++ {
		sizes = append(sizes, n) // the frame at every phase near a block's end
	}
	for _, zeros := range sizes {
		for _, lead := range []int{0, 1, 33, 4000} {
			b := append([]byte(nil), frame(0)...)
			b = append(b, make([]byte, lead)...)
			for i := len(b) - lead; i < len(b); i++ {
				b[i] = 0xa5 // damage that is not zeros
			}
			b = append(b, make([]byte, zeros)...)
			want := int64(len(b))
			b = append(b, frame(1)...)
			p := filepath.Join(t.TempDir(), "seg")
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := OSFS{}.OpenFile(p, os.O_RDONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fp, h, ok, err := resync(f, p, 0, int64(len(b)), 1, 0)
			f.Close()
			if err != nil || !ok || fp != want || h.FirstOffset != 1 {
				t.Errorf("%d bytes of damage, %d zeros: resync = %d, %+v, %v, %v; want the frame at %d", lead, zeros, fp, h, ok, err, want)
			}
		}
	}
}
