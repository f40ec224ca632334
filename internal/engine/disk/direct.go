package disk

import (
	"bytes"
	"errors"
	"io"
	"math"
	"sync"
	"unsafe"
)

// Direct writes (see directWriter) must start and end on directAlign
// boundaries, and a segment's end rarely is one. So each round writes whole
// blocks: the bytes of the segment's last, partial block that are already
// on disk (kept in memory, in directTail), then the round's frames, then
// zeros up to the next boundary. The next round writes that block again,
// its zeros replaced by frames. Rewriting a block with the same bytes where
// it held acknowledged ones is what the page cache's write-back does too.
// The frames are copied into an aligned staging buffer after those bytes,
// except a round's only large frame, built where a direct write can take
// it from (appendOp.inPlace).
//
// A round whose write ends past what the segment's file holds grows the
// file, and growing it is metadata (blocks allocated, the size) that the
// round's sync must write as well: most of a small round's sync. So such a
// round also writes zeros after its frames (zeroAhead), and the rounds after
// it overwrite those zeros in place: their syncs have only the data to make
// durable, and the device's cache to flush. How many zeros follows how fast
// the log grows: about what it writes in zeroSpan, between minZero and
// zeroChunk. A busy log grows its file a few times a second; an idle one
// keeps few zeros on disk, and recovery after a crash has few to read.
//
// The zeros after a segment's end are not frames: a roll and Close cut them
// off, and recovery cuts them silently after a crash (see zeroPadding).

// directTail is the in-memory copy of the active segment's last partial
// block, for direct writes.
type directTail struct {
	seg *segment // the segment the tail belongs to; nil when unknown
	end int64    // the position the tail ends at (the segment's size)
	b   [directAlign]byte
	// zeroSeg's file holds zeros (or frames) up to zeroEnd.
	zeroSeg *segment
	zeroEnd int64
	// zeroSize is how many zeros the next growth writes; zeroAt is when the
	// last one was (Unix ms). They carry over to the log's next segments.
	zeroSize, zeroAt int64
}

// The zeros a round writes after its frames when it grows the file
// (zeroAhead): about what the log writes in zeroSpan, at least minZero and
// at most zeroChunk.
const (
	minZero   = 64 << 10
	zeroChunk = 8 << 20
	zeroSpan  = 500 // ms
)

// stage starts a direct write at position at of the active segment: it
// returns an aligned buffer holding the bytes of at's block before at,
// reading them from f if the tail is not the segment's.
func (t *directTail) stage(f File, seg *segment, at int64) (*[]byte, int, error) {
	pre := int(at % directAlign)
	bp := getAligned(0)
	*bp = (*bp)[:pre]
	if err := t.prefix(*bp, f, seg, at); err != nil {
		putAligned(bp)
		return nil, 0, err
	}
	return bp, pre, nil
}

// prefix fills b with the bytes of the active segment before position at,
// from at's block (len(b) is at % directAlign): from the tail, or read from
// f if the tail is not the segment's.
func (t *directTail) prefix(b []byte, f File, seg *segment, at int64) error {
	if len(b) == 0 {
		return nil
	}
	if t.seg == seg && t.end == at {
		copy(b, t.b[:len(b)])
	} else if n, err := f.ReadAt(b, at-int64(len(b))); err != nil {
		if !errors.Is(err, io.EOF) {
			return err
		}
		// The file was cut short under the engine (damage): what is
		// missing reads as zeros, as it would through the page cache.
		clear(b[n:])
	}
	return nil
}

// write pads b (the staged prefix and the frames after it) with zeros to a
// block boundary, writes it at the block of at, and keeps the new tail.
// pre is the prefix's length; at is where the frames go. limit is the size
// the segment rolls at, and now the round's time (zeroAhead). With sync the
// write is the round's sync too (directWriter).
func (t *directTail) write(dw directWriter, seg *segment, b []byte, pre int, at, limit, now int64, sync bool) error {
	n := len(b)
	padded := (n + directAlign - 1) &^ (directAlign - 1)
	b = b[:padded] // capacity is a multiple of directAlign
	clear(b[n:])
	t.seg = nil // unknown until the write succeeds
	blk := at - int64(pre)
	if err := dw.WriteDirect(b, blk, sync); err != nil {
		return err
	}
	end := at + int64(n-pre)
	k := int(end % directAlign)
	copy(t.b[:k], b[n-k:n])
	t.seg, t.end = seg, end
	t.zeroAhead(dw, seg, blk+int64(padded), limit, now)
	return nil
}

// zeroAhead writes zeros after a write that ended at end if that write grew
// the file, not beyond limit (rounded up to a block). The amount doubles
// when the zeros written last time were used up within half of zeroSpan,
// and halves when that took more than twice as long. If the write fails (no
// space), the rounds grow the file as they go: not again for this segment.
// The zeros need no sync: a crash that loses them loses no frame, and the
// next round's sync makes them durable with its own frames.
func (t *directTail) zeroAhead(dw directWriter, seg *segment, end, limit, now int64) {
	if t.zeroSeg != seg {
		t.zeroSeg, t.zeroEnd = seg, 0
	}
	if end <= t.zeroEnd {
		return
	}
	switch d := now - t.zeroAt; {
	case t.zeroSize == 0:
		t.zeroSize = minZero
	case d < zeroSpan/2:
		t.zeroSize = min(2*t.zeroSize, zeroChunk)
	case d > 2*zeroSpan:
		t.zeroSize = max(t.zeroSize/2, minZero)
	}
	t.zeroAt = now
	to := min(end+t.zeroSize, (limit+directAlign-1)&^(directAlign-1))
	t.zeroEnd = math.MaxInt64
	if to <= end {
		t.zeroEnd = end
	} else if dw.ZeroDirect(end, to-end) == nil {
		t.zeroEnd = to
	}
}

// appendAligned appends frame to the staged buffer *bp, moving it to a
// larger aligned buffer when it is full (append would lose the alignment).
func appendAligned(bp *[]byte, frame []byte) *[]byte {
	b := *bp
	if len(b)+len(frame) > cap(b) {
		nbp := getAligned(len(b) + len(frame))
		nb := append((*nbp)[:0], b...)
		putAligned(bp)
		bp, b = nbp, nb
	}
	*bp = append(b, frame...)
	return bp
}

// Aligned staging buffers, pooled: a round's buffer goes back when its write
// is done, so their number follows the logs committing at once, not the
// logs open.
var alignedBufs sync.Pool

// minAligned is the size of a new staging buffer: room for most rounds.
const minAligned = 1 << 20

// getAligned returns an empty buffer of capacity at least n, a multiple of
// directAlign, starting at a directAlign boundary.
func getAligned(n int) *[]byte {
	if bp, ok := alignedBufs.Get().(*[]byte); ok {
		if cap(*bp) >= n {
			*bp = (*bp)[:0]
			return bp
		}
		alignedBufs.Put(bp)
	}
	b := newAligned(max(minAligned, (2*n+directAlign-1)&^(directAlign-1)))[:0]
	return &b
}

// newAligned allocates size bytes (a multiple of directAlign), zeroed,
// starting at a directAlign boundary.
func newAligned(size int) []byte {
	raw := make([]byte, size+directAlign)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(raw))) & (directAlign - 1))
	return raw[off : off+size : off+size]
}

func putAligned(bp *[]byte) {
	*bp = (*bp)[:0]
	alignedBufs.Put(bp)
}

// zeroPadding reports whether the bytes of f from pos to size are the zeros
// direct writes leave after a segment's end: all zero, ending on a block
// boundary.
func zeroPadding(f File, pos, size int64) bool {
	if size-pos <= 0 || size%directAlign != 0 {
		return false
	}
	b := make([]byte, min(size-pos, 1<<20))
	for pos < size {
		chunk := b[:min(int64(len(b)), size-pos)]
		if n, _ := f.ReadAt(chunk, pos); n != len(chunk) || !isZero(chunk) {
			return false
		}
		pos += int64(len(chunk))
	}
	return true
}

// cutPadding cuts the zeros after the active segment's last direct write,
// so that a cleanly closed segment ends where its frames end (Close; no
// commit is running). Best effort: recovery cuts them too.
func (w *writeState) cutPadding(files *fileCache) {
	if !w.dio.padded(w.seg) || w.seg == nil || w.broken != nil {
		return
	}
	w.dio.forget()
	h, err := files.acquire(w.seg.path, false)
	if err != nil {
		return
	}
	if h.f.Truncate(w.size) == nil {
		h.f.Sync()
	}
	files.release(h)
}

// padded reports whether direct writes may have left zeros after seg's end.
func (t *directTail) padded(seg *segment) bool {
	return t.seg == seg || t.zeroSeg == seg
}

// forget drops what the tail knows of the file: it was cut, or damaged.
func (t *directTail) forget() {
	t.seg, t.zeroSeg = nil, nil
}

var zeroBlock [directAlign]byte

// isZero reports whether b holds only zeros.
func isZero(b []byte) bool {
	for len(b) > 0 {
		k := min(len(b), len(zeroBlock))
		if !bytes.Equal(b[:k], zeroBlock[:k]) {
			return false
		}
		b = b[k:]
	}
	return true
}
