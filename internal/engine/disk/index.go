package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Sparse index files (see doc.go for the byte layout).
const (
	indexMagic      = "RNLINDX1"
	indexHeaderSize = 16
	indexEntrySize  = 32

	kindEntry  = 1
	kindFooter = 2
)

// indexEntry maps the first offset of a batch to its byte position in the
// segment and its arrival time.
type indexEntry struct {
	Offset uint64
	Pos    int64
	Time   int64
}

// indexFooter closes the index of a segment that will not grow any more.
type indexFooter struct {
	Next     uint64 // one past the segment's last offset
	Size     int64  // segment file size
	LastTime int64  // arrival time of the segment's last batch
}

func encodeIndexHeader(base uint64) []byte {
	b := make([]byte, indexHeaderSize)
	copy(b, indexMagic)
	binary.LittleEndian.PutUint64(b[8:], base)
	return b
}

func putIndexRecord(b []byte, kind uint32, a, p uint64, c int64) {
	binary.LittleEndian.PutUint64(b[0:], a)
	binary.LittleEndian.PutUint64(b[8:], p)
	binary.LittleEndian.PutUint64(b[16:], uint64(c))
	binary.LittleEndian.PutUint32(b[24:], kind)
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], crcTable))
}

func appendIndexEntry(dst []byte, e indexEntry) []byte {
	var b [indexEntrySize]byte
	putIndexRecord(b[:], kindEntry, e.Offset, uint64(e.Pos), e.Time)
	return append(dst, b[:]...)
}

func appendIndexFooter(dst []byte, f indexFooter) []byte {
	var b [indexEntrySize]byte
	putIndexRecord(b[:], kindFooter, f.Next, uint64(f.Size), f.LastTime)
	return append(dst, b[:]...)
}

var errIndexHeader = errors.New("disk: bad index header")

// decodeIndex parses an index file of the segment starting at base. It
// returns the longest valid prefix of entries (offsets, positions and times
// strictly or weakly increasing as they must be), the footer if the file ends
// with a valid one, and an error describing the first invalid bytes, if any.
// A caller that gets an error may still use the entries.
func decodeIndex(b []byte, base uint64) ([]indexEntry, *indexFooter, error) {
	if len(b) < indexHeaderSize || string(b[:8]) != indexMagic {
		return nil, nil, errIndexHeader
	}
	if got := binary.LittleEndian.Uint64(b[8:]); got != base {
		return nil, nil, fmt.Errorf("%w: base %d, want %d", errIndexHeader, got, base)
	}
	b = b[indexHeaderSize:]
	entries := make([]indexEntry, 0, len(b)/indexEntrySize)
	for len(b) > 0 {
		if len(b) < indexEntrySize {
			return entries, nil, fmt.Errorf("partial index entry of %d bytes", len(b))
		}
		if crc32.Checksum(b[:28], crcTable) != binary.LittleEndian.Uint32(b[28:]) {
			return entries, nil, errors.New("index entry checksum mismatch")
		}
		a := binary.LittleEndian.Uint64(b[0:])
		p := binary.LittleEndian.Uint64(b[8:])
		c := int64(binary.LittleEndian.Uint64(b[16:]))
		switch binary.LittleEndian.Uint32(b[24:]) {
		case kindEntry:
			e := indexEntry{Offset: a, Pos: int64(p), Time: c}
			if p > 1<<62 || e.Pos < segmentHeaderSize || a < base {
				return entries, nil, fmt.Errorf("index entry out of range: %+v", e)
			}
			if n := len(entries); n > 0 {
				if prev := entries[n-1]; e.Offset <= prev.Offset || e.Pos <= prev.Pos || e.Time < prev.Time {
					return entries, nil, fmt.Errorf("index entry %+v does not follow %+v", e, prev)
				}
			}
			entries = append(entries, e)
		case kindFooter:
			f := &indexFooter{Next: a, Size: int64(p), LastTime: c}
			if len(b) != indexEntrySize {
				return entries, nil, errors.New("bytes after index footer")
			}
			if p > 1<<62 || f.Next < base || f.Size < segmentHeaderSize {
				return entries, nil, fmt.Errorf("index footer out of range: %+v", *f)
			}
			if n := len(entries); n > 0 {
				if last := entries[n-1]; f.Next <= last.Offset || f.Size <= last.Pos || f.LastTime < last.Time {
					return entries, nil, fmt.Errorf("index footer %+v does not follow %+v", *f, last)
				}
			}
			return entries, f, nil
		default:
			return entries, nil, errors.New("unknown index record kind")
		}
		b = b[indexEntrySize:]
	}
	return entries, nil, nil
}

// seekEntry returns the last entry at or before offset, or false.
func seekEntry(entries []indexEntry, offset uint64) (indexEntry, bool) {
	lo, hi := 0, len(entries) // find first entry with Offset > offset
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if entries[m].Offset <= offset {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return indexEntry{}, false
	}
	return entries[lo-1], true
}

// seekTime returns the last entry whose time is before t, or false.
func seekTime(entries []indexEntry, t int64) (indexEntry, bool) {
	lo, hi := 0, len(entries)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if entries[m].Time < t {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return indexEntry{}, false
	}
	return entries[lo-1], true
}
