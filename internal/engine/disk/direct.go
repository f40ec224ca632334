package disk

import (
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
//
// The zeros after a segment's end (fewer than directAlign) are not frames:
// a roll and Close cut them off, and recovery cuts them silently after a
// crash (see zeroPadding).

// directTail is the in-memory copy of the active segment's last partial
// block, for direct writes.
type directTail struct {
	seg *segment // the segment the tail belongs to; nil when unknown
	end int64    // the position the tail ends at (the segment's size)
	b   [directAlign]byte
	// allocSeg's blocks are allocated up to allocEnd (Allocate).
	allocSeg *segment
	allocEnd int64
}

// allocChunk is how far ahead of a direct write a segment's blocks are
// allocated at once.
const allocChunk = 8 << 20

// stage starts a direct write at position at of the active segment: it
// returns an aligned buffer holding the bytes of at's block before at,
// reading them from f if the tail is not the segment's.
func (t *directTail) stage(f File, seg *segment, at int64) (*[]byte, int, error) {
	pre := int(at % directAlign)
	bp := getAligned(0)
	*bp = (*bp)[:pre]
	b := *bp
	if pre > 0 {
		if t.seg == seg && t.end == at {
			copy(b, t.b[:pre])
		} else if n, err := f.ReadAt(b, at-int64(pre)); err != nil {
			if !errors.Is(err, io.EOF) {
				putAligned(bp)
				return nil, 0, err
			}
			// The file was cut short under the engine (damage): what is
			// missing reads as zeros, as it would through the page cache.
			clear(b[n:])
		}
	}
	return bp, pre, nil
}

// write pads b (the staged prefix and the frames after it) with zeros to a
// block boundary, writes it at the block of at, and keeps the new tail.
// pre is the prefix's length; at is where the frames go.
func (t *directTail) write(dw directWriter, seg *segment, b []byte, pre int, at int64) error {
	n := len(b)
	padded := (n + directAlign - 1) &^ (directAlign - 1)
	b = b[:padded] // capacity is a multiple of directAlign
	clear(b[n:])
	t.seg = nil // unknown until the write succeeds
	blk := at - int64(pre)
	if t.allocSeg != seg {
		t.allocSeg, t.allocEnd = seg, 0
	}
	if end := blk + int64(padded); end > t.allocEnd {
		// Allocate the blocks this write and the next ones fill, so that
		// the syncs after them have no allocation to write. If that fails
		// (no space, or no fallocate), the writes allocate them as they
		// go: not again for this segment.
		from := max(t.allocEnd, blk)
		t.allocEnd = math.MaxInt64
		if dw.Allocate(from, end-from+allocChunk) == nil {
			t.allocEnd = end + allocChunk
		}
	}
	if err := dw.WriteDirect(b, blk); err != nil {
		return err
	}
	end := at + int64(n-pre)
	k := int(end % directAlign)
	copy(t.b[:k], b[n-k:n])
	t.seg, t.end = seg, end
	return nil
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
	size := max(minAligned, (2*n+directAlign-1)&^(directAlign-1))
	raw := make([]byte, size+directAlign)
	off := int(-uintptr(unsafe.Pointer(unsafe.SliceData(raw))) & (directAlign - 1))
	b := raw[off : off : off+size]
	return &b
}

func putAligned(bp *[]byte) {
	*bp = (*bp)[:0]
	alignedBufs.Put(bp)
}

// zeroPadding reports whether the bytes of f from pos to size are the zeros
// a direct write leaves after a segment's end: fewer than directAlign, all
// zero, ending on a boundary.
func zeroPadding(f File, pos, size int64) bool {
	if size-pos <= 0 || size-pos >= directAlign || size%directAlign != 0 {
		return false
	}
	var b [directAlign]byte
	n, _ := f.ReadAt(b[:size-pos], pos)
	if int64(n) != size-pos {
		return false
	}
	for _, c := range b[:n] {
		if c != 0 {
			return false
		}
	}
	return true
}

// cutPadding cuts the zeros after the active segment's last direct write,
// so that a cleanly closed segment ends where its frames end (Close; no
// commit is running). Best effort: recovery cuts them too.
func (w *writeState) cutPadding(files *fileCache) {
	if w.dio.seg != w.seg && w.dio.allocSeg != w.seg || w.seg == nil || w.broken != nil {
		return
	}
	w.dio.seg, w.dio.allocSeg = nil, nil
	h, err := files.acquire(w.seg.path, false)
	if err != nil {
		return
	}
	if h.f.Truncate(w.size) == nil {
		h.f.Sync()
	}
	files.release(h)
}
