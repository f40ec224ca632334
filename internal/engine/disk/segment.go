package disk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"
	"strconv"
	"strings"
)

// Segment files (see doc.go for the byte layout).
const (
	segmentMagic      = "RNLSEGM1"
	segmentHeaderSize = 32
	segmentExt        = ".seg"
	indexExt          = ".idx"
)

// segmentHeader opens every segment file.
type segmentHeader struct {
	Base uint64 // offset of the segment's first record
	// Floor is a lower bound for the arrival times in this segment: the
	// log's newest time when the segment was created, so that times never
	// decrease even after retention removed every earlier segment.
	Floor int64
}

func encodeSegmentHeader(h segmentHeader) []byte {
	b := make([]byte, segmentHeaderSize)
	copy(b, segmentMagic)
	binary.LittleEndian.PutUint64(b[8:], h.Base)
	binary.LittleEndian.PutUint64(b[16:], uint64(h.Floor))
	binary.LittleEndian.PutUint32(b[28:], crc32.Checksum(b[:28], crcTable))
	return b
}

var errSegmentHeader = errors.New("disk: bad segment header")

func decodeSegmentHeader(b []byte) (segmentHeader, error) {
	if len(b) < segmentHeaderSize {
		return segmentHeader{}, fmt.Errorf("%w: %d bytes", errSegmentHeader, len(b))
	}
	if string(b[:8]) != segmentMagic || binary.LittleEndian.Uint32(b[24:]) != 0 ||
		crc32.Checksum(b[:28], crcTable) != binary.LittleEndian.Uint32(b[28:]) {
		return segmentHeader{}, errSegmentHeader
	}
	return segmentHeader{
		Base:  binary.LittleEndian.Uint64(b[8:]),
		Floor: int64(binary.LittleEndian.Uint64(b[16:])),
	}, nil
}

func segmentName(base uint64) string { return fmt.Sprintf("%020d", base) }

// parseSegmentName returns the base offset of a segment or index file name.
func parseSegmentName(name, ext string) (uint64, bool) {
	s, ok := strings.CutSuffix(name, ext)
	if !ok || len(s) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// segment is one file of a log. Fields after path are guarded by the
// owning log's mu.
type segment struct {
	base    uint64
	path    string // the .seg file
	idxPath string // the .idx file

	closed bool   // no more appends go to this segment
	next   uint64 // one past the last committed record
	size   int64  // committed bytes; -1 while unknown (closed, not yet looked at)
	// firstTime and lastTime are the arrival times of the first and last
	// batch (0 when empty); valid when known is true.
	firstTime, lastTime int64
	known               bool
	// entries is the sparse index of the active segment. Closed segments
	// load theirs from disk when needed and do not keep it.
	entries []indexEntry
}

func newSegment(dir string, base uint64) *segment {
	n := segmentName(base)
	return &segment{
		base:    base,
		path:    filepath.Join(dir, n+segmentExt),
		idxPath: filepath.Join(dir, n+indexExt),
		next:    base,
		size:    -1,
	}
}

// scanner reads consecutive frames of a segment file from a start position up
// to an end position, with few large reads.
type scanner struct {
	f     File
	path  string
	pos   int64 // file position of buf[r]
	end   int64 // file position where the data ends
	buf   []byte
	r, w  int
	chunk int
	// maxChunk, if larger than chunk, lets each refill read twice as much
	// as the previous one, up to maxChunk: small reads stay small.
	maxChunk int
	// fresh makes every refill allocate a new buffer, so that record slices
	// handed out earlier stay valid (Read gives them to its caller).
	fresh bool
}

// fill makes at least need bytes available at buf[r:], reading more from
// the file. It returns errShortFrame if the data ends first.
func (s *scanner) fill(need int) error {
	if s.w-s.r >= need {
		return nil
	}
	if s.pos+int64(need) > s.end {
		return errShortFrame
	}
	size := max(need, s.chunk)
	if s.chunk < s.maxChunk {
		s.chunk = min(2*s.chunk, s.maxChunk)
	}
	if rest := s.end - s.pos; int64(size) > rest {
		size = int(rest)
	}
	have := s.w - s.r
	var nb []byte
	if !s.fresh && cap(s.buf) >= size {
		nb = s.buf[:size]
		copy(nb, s.buf[s.r:s.w])
	} else {
		nb = make([]byte, size)
		copy(nb, s.buf[s.r:s.w])
	}
	n, err := s.f.ReadAt(nb[have:], s.pos+int64(have))
	s.buf, s.r, s.w = nb, 0, have+n
	if n < size-have {
		if err == nil || errors.Is(err, io.EOF) {
			// The file is shorter than expected: a torn tail.
			s.end = s.pos + int64(s.w)
			if s.w < need {
				return errShortFrame
			}
			return nil
		}
		return fmt.Errorf("read %s: %w", s.path, err)
	}
	return nil
}

// seek moves the scanner to file position pos, dropping what it buffered.
func (s *scanner) seek(pos int64) {
	s.pos = pos
	s.r, s.w = 0, 0
}

// next returns the next frame and its file position. It returns io.EOF at
// the end of the data, errShortFrame if the data ends inside a frame, a
// *CorruptionError if a frame fails its checks. frame aliases the scanner's
// buffer.
func (s *scanner) next() (int64, batchHeader, []byte, error) {
	pos := s.pos
	if pos >= s.end {
		return pos, batchHeader{}, nil, io.EOF
	}
	if err := s.fill(batchHeaderSize); err != nil {
		return pos, batchHeader{}, nil, err
	}
	h, err := parseHeader(s.buf[s.r:])
	if err != nil {
		return pos, h, nil, &CorruptionError{Path: s.path, Pos: pos, Reason: err.Error()}
	}
	if err := s.fill(int(h.Length)); err != nil {
		return pos, h, nil, err
	}
	frame := s.buf[s.r : s.r+int(h.Length) : s.r+int(h.Length)]
	if err := checkFrame(frame, h); err != nil {
		return pos, h, nil, &CorruptionError{Path: s.path, Pos: pos, Reason: err.Error()}
	}
	s.r += int(h.Length)
	s.pos += int64(h.Length)
	return pos, h, frame, nil
}
