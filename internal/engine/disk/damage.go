package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Damage: bytes of a segment that fail their checks somewhere other than the
// torn tail Open cuts. The records in them are lost, but only they are: a
// reader steps over the damaged bytes to the next intact frame (found by its
// header and checksum) and goes on there, as Kinesis moves a reader past
// expired records. Each hole is reported once per process, with its file,
// byte range and the offsets lost, and counted in DamageStats.

// hole is a run of records lost to damage in one segment: the bytes
// [pos, end) hold no intact frame, and the offsets [from, to) are gone.
// pos == end for records missing between two intact frames.
type hole struct {
	pos, end int64
	from, to uint64
}

// DamageStats counts what the engine found damaged since Open, for metrics.
type DamageStats struct {
	// Holes is the number of damaged ranges found in segments and stepped
	// over by readers.
	Holes int64
	// LostRecords is the number of records in those ranges.
	LostRecords int64
	// TornRecords is the number of records cut from torn tails at Open
	// (frames whose header could still be recognized).
	TornRecords int64
	// TornBytes is the number of bytes cut from torn tails at Open.
	TornBytes int64
}

// damageCounters are the engine's DamageStats, updated atomically.
type damageCounters struct {
	holes, lost, tornRecords, tornBytes atomic.Int64
}

// Damage returns the damage found since Open.
func (e *Engine) Damage() DamageStats {
	return DamageStats{
		Holes:       e.damage.holes.Load(),
		LostRecords: e.damage.lost.Load(),
		TornRecords: e.damage.tornRecords.Load(),
		TornBytes:   e.damage.tornBytes.Load(),
	}
}

// isDamage reports whether a scanner error is about the bytes (as opposed
// to an error reading them).
func isDamage(err error) bool {
	return errors.Is(err, errShortFrame) || isCorruption(err)
}

// resync looks for the first intact frame after damaged bytes at pos: a
// position in (pos, end) where a frame header parses, its first offset is at
// least expect (and, when limit > 0, its records end at or before limit) and
// its checksum holds. Frames are not aligned, so every byte position is a
// candidate; cheap header checks reject almost all of them before a checksum
// is computed.
func resync(f File, path string, pos, end int64, expect, limit uint64) (int64, batchHeader, bool, error) {
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	for at := pos + 1; at+batchHeaderSize <= end; {
		n := int(min(int64(chunk), end-at))
		m, err := f.ReadAt(buf[:n], at)
		if m < n {
			if err != nil && !errors.Is(err, io.EOF) {
				return 0, batchHeader{}, false, fmt.Errorf("read %s: %w", path, err)
			}
			end = at + int64(m) // the file is shorter than thought
			n = m
		}
		b := buf[:n]
		for i := 0; i+batchHeaderSize <= len(b); i++ {
			if i%directAlign == 0 && i+directAlign <= len(b) && isZero(b[i:i+directAlign]) {
				// No header lies wholly in zeros (its count would be 0):
				// step over them, as over the zeros after a direct write.
				i += directAlign - batchHeaderSize
				continue
			}
			c := b[i:]
			// Flags are zero or flagEncrypted and the count is at most
			// 10000: reject most positions before decoding the header.
			if binary.LittleEndian.Uint32(c[20:])&^flagEncrypted != 0 || binary.LittleEndian.Uint32(c[16:])-1 >= engine.MaxBatchRecords {
				continue
			}
			h, err := parseHeader(c)
			if err != nil || h.FirstOffset < expect || h.FirstOffset > 1<<62 {
				continue
			}
			if limit > 0 && h.FirstOffset+uint64(h.Count) > limit {
				continue
			}
			fp := at + int64(i)
			if fp+int64(h.Length) > end {
				continue
			}
			var frame []byte
			if i+int(h.Length) <= len(b) {
				frame = c[:h.Length]
			} else {
				frame = make([]byte, h.Length)
				if k, _ := f.ReadAt(frame, fp); k < len(frame) {
					continue
				}
			}
			// An encrypted frame's records cannot be walked without its
			// key: its CRC and, later, its tag vouch for them.
			if checkFrame(frame, h) == nil && (h.Flags&flagEncrypted != 0 || walkRecords(frame[batchHeaderSize:], int(h.Count), nil) == nil) {
				return fp, h, true, nil
			}
		}
		if len(b) < batchHeaderSize {
			break
		}
		at += int64(len(b) - batchHeaderSize + 1) // headers across the boundary are seen in the next chunk
	}
	return 0, batchHeader{}, false, nil
}

// frameIter walks the frames of a segment from a frame boundary, stepping
// over damage: it returns either an intact frame whose first offset is the
// one expected or a hole (which it has recorded on the log).
type frameIter struct {
	l      *log
	s      *segment
	sc     scanner
	expect uint64 // first offset of the next frame
	// limit is one past the segment's last record, as far as the caller
	// knows it: a segment's data that ends before it ends in a hole.
	limit uint64
	// end is where the segment's committed data ends, set on first use:
	// the scanner's own end shrinks when the file turns out shorter.
	end int64
}

// next returns the next intact frame, or a hole (h != nil), or io.EOF at the
// end of the data, or an error reading the file.
func (it *frameIter) next() (pos int64, bh batchHeader, frame []byte, h *hole, err error) {
	if it.end == 0 {
		it.end = it.sc.end
	}
	pos, bh, frame, err = it.sc.next()
	switch {
	case errors.Is(err, io.EOF):
		if it.limit > it.expect {
			// The data ends early (a truncated file): the rest is a hole.
			hl := it.l.noteHole(it.s, hole{pos: pos, end: pos, from: it.expect, to: it.limit})
			it.expect = hl.to
			return pos, bh, nil, &hl, nil
		}
		return pos, bh, nil, nil, io.EOF
	case err != nil && !isDamage(err):
		return pos, bh, nil, nil, err
	case err == nil && bh.FirstOffset == it.expect:
		it.expect += uint64(bh.Count)
		return pos, bh, frame, nil, nil
	case err == nil && bh.FirstOffset > it.expect && (it.limit == 0 || bh.FirstOffset+uint64(bh.Count) <= it.limit):
		// An intact frame, but records are missing before it.
		hl := it.l.noteHole(it.s, hole{pos: pos, end: pos, from: it.expect, to: bh.FirstOffset})
		it.expect = hl.to
		it.sc.seek(pos)
		return pos, bh, nil, &hl, nil
	}
	hl, herr := it.l.findHole(it.s, it.sc.f, it.sc.path, pos, it.end, it.expect, it.limit)
	if herr != nil {
		return pos, bh, nil, nil, herr
	}
	it.expect = hl.to
	it.sc.seek(hl.end)
	return pos, bh, nil, &hl, nil
}

// findHole returns the hole that starts with the damaged bytes at pos,
// known or found now.
func (l *log) findHole(s *segment, f File, path string, pos, end int64, expect, limit uint64) (hole, error) {
	l.mu.RLock()
	for _, h := range l.holes[s.base] {
		if h.pos <= pos && pos < h.end {
			l.mu.RUnlock()
			return h, nil
		}
	}
	l.mu.RUnlock()
	fp, fh, ok, err := resync(f, path, pos, end, expect, limit)
	if err != nil {
		return hole{}, err
	}
	h := hole{pos: pos, end: end, from: expect, to: max(limit, expect)}
	if ok {
		h.end, h.to = fp, fh.FirstOffset
	}
	return l.noteHole(s, h), nil
}

// noteHole records a hole of segment s, reporting it if it is new, and
// returns it.
func (l *log) noteHole(s *segment, h hole) hole {
	l.mu.Lock()
	hs := l.holes[s.base]
	for _, o := range hs {
		if o == h {
			l.mu.Unlock()
			return h
		}
	}
	// Records already reported as lost in an overlapping hole are not
	// counted twice.
	lost := int64(h.to - h.from)
	kept := hs[:0:0]
	for _, o := range hs {
		if o.from < h.to && h.from < o.to {
			lost -= int64(min(o.to, h.to) - max(o.from, h.from))
			if o.from >= h.from && o.to <= h.to {
				continue // the new hole covers it
			}
		}
		kept = append(kept, o)
	}
	kept = append(kept, h)
	sort.Slice(kept, func(i, j int) bool { return kept[i].pos < kept[j].pos })
	if l.holes == nil {
		l.holes = make(map[uint64][]hole)
	}
	l.holes[s.base] = kept
	l.mu.Unlock()
	l.e.damage.holes.Add(1)
	l.e.damage.lost.Add(max(lost, 0))
	attrs := []any{
		slog.String("log", l.name), slog.String("file", s.path),
		slog.Int64("from_byte", h.pos), slog.Int64("to_byte", h.end),
		slog.Uint64("records", h.to-h.from),
	}
	if h.to > h.from {
		attrs = append(attrs, slog.Uint64("first_offset", h.from), slog.Uint64("last_offset", h.to-1))
	}
	l.e.log.Error("disk: damaged records skipped: readers continue after them", attrs...)
	return h
}

// cutReport describes a torn tail cut at Open.
type cutReport struct {
	path       string
	from, to   int64  // bytes cut
	first      uint64 // offset of the first record cut
	records    uint64 // records in recognizable frame headers
	durability Durability
}

// tornRecords counts the records of the frame headers that can still be
// recognized in a torn tail: frames chained from offset expect at pos.
func tornRecords(f File, pos, size int64, expect uint64) uint64 {
	var n uint64
	var hb [batchHeaderSize]byte
	for pos+batchHeaderSize <= size {
		if k, _ := f.ReadAt(hb[:], pos); k < batchHeaderSize {
			break
		}
		h, err := parseHeader(hb[:])
		if err != nil || h.FirstOffset != expect+n {
			break
		}
		n += uint64(h.Count)
		pos += int64(h.Length)
	}
	return n
}

// report logs a torn tail cut at Open, saying whether its records can have
// been acknowledged under the durability policy in force.
func (e *Engine) reportCut(c cutReport) {
	e.damage.tornBytes.Add(c.to - c.from)
	e.damage.tornRecords.Add(int64(c.records))
	ack := "no: appends are acknowledged only after the data is synced, and this tail was not"
	if c.durability == SyncInterval {
		ack = "possibly: under interval durability appends are acknowledged before they are synced"
	}
	attrs := []any{
		slog.String("file", c.path), slog.Int64("from_byte", c.from), slog.Int64("to_byte", c.to),
		slog.Uint64("records", c.records), slog.String("durability", c.durability.String()),
		slog.String("acknowledged", ack),
	}
	if c.records > 0 {
		attrs = append(attrs, slog.Uint64("first_offset", c.first), slog.Uint64("last_offset", c.first+c.records-1))
	} else {
		attrs = append(attrs, slog.Uint64("next_offset", c.first))
	}
	e.log.Warn("disk: cut torn tail of segment", attrs...)
}

// faultLog reports failing appends: at most one line per faultLogEvery for
// the whole engine (a full disk fails every log at once), with the number of
// appends that failed since the previous line, and one line when appends
// succeed again.
type faultLog struct {
	mu         sync.Mutex
	episode    bool      // appends have failed since the last success
	lastLine   time.Time // of the last failure line
	unreported int64     // failed appends not yet reported
	total      int64     // failed appends in this episode
}

// faultLogEvery is the least time between two lines about failing appends.
const faultLogEvery = 10 * time.Second

func (f *faultLog) fail(e *Engine, log string, err error) {
	f.mu.Lock()
	f.unreported++
	f.total++
	now := time.Now()
	if f.episode && now.Sub(f.lastLine) < faultLogEvery {
		f.mu.Unlock()
		return
	}
	n := f.unreported
	f.episode, f.lastLine, f.unreported = true, now, 0
	f.mu.Unlock()
	attrs := []any{slog.String("log", log), slog.Any("error", err), slog.Int64("failed_appends", n)}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		e.log.Error("disk: appends failing: the disk is full; they succeed again once space is freed", attrs...)
		return
	}
	e.log.Error("disk: appends failing", attrs...)
}

func (f *faultLog) recovered(e *Engine, log string) {
	f.mu.Lock()
	if !f.episode {
		f.mu.Unlock()
		return
	}
	n := f.total
	f.episode, f.unreported, f.total = false, 0, 0
	f.mu.Unlock()
	e.log.Info("disk: appends succeed again", slog.String("log", log), slog.Int64("failed_appends", n))
}
