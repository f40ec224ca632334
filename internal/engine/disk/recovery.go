package disk

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// openLog recovers one log from its directory. Closed segments are taken as
// they are (their indexes are checked when first used); the active (last)
// segment's tail after its last valid index entry is scanned, and a torn or
// corrupt tail is cut.
func (e *Engine) openLog(name string, rec logRecord) (*log, error) {
	dir := filepath.Join(e.logsDir(), name)
	ents, err := e.fs.ReadDir(dir)
	if err != nil && !isNotExist(err) {
		return nil, err
	}
	var bases []uint64
	idx := make(map[uint64]bool)
	for _, d := range ents {
		n := d.Name()
		if b, ok := parseSegmentName(n, segmentExt); ok {
			bases = append(bases, b)
		} else if b, ok := parseSegmentName(n, indexExt); ok {
			idx[b] = true
		} else if strings.HasSuffix(n, ".tmp") {
			e.fs.Remove(filepath.Join(dir, n))
		}
	}
	slices.Sort(bases)
	for b := range idx { // an index without its segment is left from a trim
		if _, ok := slices.BinarySearch(bases, b); !ok {
			e.fs.Remove(filepath.Join(dir, segmentName(b)+indexExt))
		}
	}
	if len(bases) == 0 {
		// Created, then lost its files: start it again, empty.
		if err := e.fs.MkdirAll(dir, dirPerm); err != nil {
			return nil, err
		}
		if err := e.createSegmentFiles(dir, segmentHeader{}); err != nil {
			return nil, err
		}
		bases = []uint64{0}
	}
	segs := make([]*segment, len(bases))
	for i, b := range bases {
		segs[i] = newSegment(dir, b)
		if i+1 < len(bases) {
			segs[i].closed = true
			segs[i].next = bases[i+1]
		}
	}
	var prev *segment
	if len(segs) > 1 {
		prev = segs[len(segs)-2]
	}
	floor, holes, err := e.recoverActive(segs[len(segs)-1], prev)
	if err != nil {
		return nil, err
	}
	l := e.newLog(name, rec, segs)
	for _, h := range holes {
		l.noteHole(segs[len(segs)-1], h)
	}
	l.w.maxTime = max(floor, l.w.lastTime)
	if act := segs[len(segs)-1]; act.next == act.base && prev != nil {
		// The log ends with an empty segment (a crash right after a roll):
		// its newest record is in the previous segment.
		if _, err := l.closedIndex(prev); err == nil {
			l.lastTime = prev.lastTime
			l.w.maxTime = max(l.w.maxTime, prev.lastTime)
		}
	}
	if s := segs[0]; s.closed {
		l.closedIndex(s) // for FirstTime; errors resurface when it is read
	}
	return l, nil
}

// recoverActive scans the tail of the last segment of a log, cuts what is
// torn or corrupt, and rebuilds the segment's index if it is stale. It
// returns the segment header's time floor.
func (e *Engine) recoverActive(s *segment, prev *segment) (int64, []hole, error) {
	f, err := e.fs.OpenFile(s.path, osRDWR, 0)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, nil, err
	}
	var hb [segmentHeaderSize]byte
	n, _ := f.ReadAt(hb[:], 0)
	hdr, herr := decodeSegmentHeader(hb[:n])
	if herr == nil && hdr.Base != s.base {
		herr = fmt.Errorf("%w: base %d in file named %d", errSegmentHeader, hdr.Base, s.base)
	}
	if herr != nil {
		// A torn header (a crash while the segment was created) or a damaged
		// one. Frames carry their own offsets and checksums, so the header is
		// rewritten and the frames after it are checked as usual.
		hdr = segmentHeader{Base: s.base}
		if size < segmentHeaderSize {
			size = segmentHeaderSize
			if err := f.Truncate(0); err != nil {
				return 0, nil, err
			}
		}
		if _, err := f.WriteAt(encodeSegmentHeader(hdr), 0); err != nil {
			return 0, nil, err
		}
	}

	entries, rewrite := e.readIndex(s, size)
	if len(entries) > 0 && entries[0].Pos != segmentHeaderSize {
		// The first intact frame is always indexed; an index that starts
		// later either lost it or follows damage at the first frame. Either
		// way, scan the segment whole.
		entries, rewrite = nil, true
	}
	// Find the last index entry that points at a valid frame; scan from it.
	start, expect := int64(segmentHeaderSize), s.base
	fromEntry := false
	for len(entries) > 0 {
		ie := entries[len(entries)-1]
		if validFrameAt(f, s.path, ie, size) {
			start, expect, fromEntry = ie.Pos, ie.Offset, true
			entries = entries[:len(entries)-1] // the scan adds it back
			break
		}
		entries = entries[:len(entries)-1]
		rewrite = true
	}
	sc := &scanner{f: f, path: s.path, pos: start, end: size, chunk: 1 << 20}
	lastIndexPos := int64(0)
	if len(entries) > 0 {
		lastIndexPos = entries[len(entries)-1].Pos
	}
	var lastTime int64
	var holes []hole
	afterHole := false
	cut := size
	for {
		pos, h, _, err := sc.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !isDamage(err) {
			return 0, nil, err
		}
		if err == nil && h.FirstOffset > expect {
			// An intact frame, but records are missing before it.
			holes = append(holes, hole{pos: pos, end: pos, from: expect, to: h.FirstOffset})
			expect, afterHole = h.FirstOffset, true
		}
		if err != nil || h.FirstOffset != expect {
			// Damage. If an intact frame follows, the damage is a hole in
			// the middle of the segment and only its records are lost;
			// otherwise it is a torn tail, never served: cut it.
			fp, fh, ok, rerr := resync(f, s.path, pos, size, expect, 0)
			if rerr != nil {
				return 0, nil, rerr
			}
			if !ok {
				cut = pos
				break
			}
			holes = append(holes, hole{pos: pos, end: fp, from: expect, to: fh.FirstOffset})
			expect, afterHole = fh.FirstOffset, true
			sc.seek(fp)
			continue
		}
		if len(entries) == 0 || afterHole || pos == start && fromEntry || pos-lastIndexPos >= int64(e.opts.IndexInterval) {
			if len(entries) > 0 && entries[len(entries)-1].Offset >= h.FirstOffset {
				entries = entries[:0] // inconsistent index: rebuild it whole
				rewrite = true
			}
			entries = append(entries, indexEntry{Offset: h.FirstOffset, Pos: pos, Time: h.Time})
			lastIndexPos = pos
			if pos != start {
				rewrite = true
			}
		}
		afterHole = false
		expect = h.FirstOffset + uint64(h.Count)
		lastTime = h.Time
	}
	if cut < size {
		// The zeros after a direct write are not torn records: cut them
		// without a report.
		if !zeroPadding(f, cut, size) {
			e.reportCut(cutReport{path: s.path, from: cut, to: size, first: expect,
				records: tornRecords(f, cut, size, expect), durability: e.opts.Durability})
			rewrite = true
		}
		if err := f.Truncate(cut); err != nil {
			return 0, nil, fmt.Errorf("cut torn tail of %s: %w", s.path, err)
		}
	}
	if herr != nil || cut < size {
		if err := f.Sync(); err != nil {
			return 0, nil, err
		}
	}
	if rewrite {
		if err := e.writeIndexFile(s, entries, nil); err != nil {
			return 0, nil, err
		}
	}
	s.size = cut
	s.next = expect
	s.known = true
	s.entries = entries
	if len(entries) > 0 {
		s.firstTime = entries[0].Time
		s.lastTime = lastTime
		if lastTime == 0 { // the scan started at the last entry and found only it
			s.lastTime = entries[len(entries)-1].Time
		}
	}
	return hdr.Floor, holes, nil
}

func isCorruption(err error) bool {
	var ce *CorruptionError
	return errors.As(err, &ce)
}

// readIndex loads the valid entries of a segment's index file that point
// inside size bytes. rewrite reports that the file needs rewriting.
func (e *Engine) readIndex(s *segment, size int64) (entries []indexEntry, rewrite bool) {
	b, err := readFile(e.fs, s.idxPath)
	if err != nil {
		return nil, true
	}
	entries, footer, derr := decodeIndex(b, s.base)
	rewrite = derr != nil || footer != nil
	for len(entries) > 0 && entries[len(entries)-1].Pos >= size {
		entries = entries[:len(entries)-1]
		rewrite = true
	}
	return entries, rewrite
}

// validFrameAt reports whether the frame an index entry points at is whole
// and matches the entry.
func validFrameAt(f File, path string, ie indexEntry, size int64) bool {
	if ie.Pos+batchHeaderSize > size {
		return false
	}
	sc := &scanner{f: f, path: path, pos: ie.Pos, end: size, chunk: 64 << 10}
	_, h, _, err := sc.next()
	return err == nil && h.FirstOffset == ie.Offset && h.Time == ie.Time
}

// writeIndexFile replaces a segment's index file (write, rename). It is not
// synced: an index lost in a crash is rebuilt.
func (e *Engine) writeIndexFile(s *segment, entries []indexEntry, footer *indexFooter) error {
	b := encodeIndexHeader(s.base)
	for _, ie := range entries {
		b = appendIndexEntry(b, ie)
	}
	if footer != nil {
		b = appendIndexFooter(b, *footer)
	}
	tmp := s.idxPath + ".tmp"
	f, err := e.fs.OpenFile(tmp, osCreateTrunc, filePerm)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		e.files.forget(s.idxPath, false)
		err = e.fs.Rename(tmp, s.idxPath)
	}
	if err != nil {
		e.fs.Remove(tmp)
		return fmt.Errorf("write index %s: %w", s.idxPath, err)
	}
	return nil
}

func readFile(fsys FS, path string) ([]byte, error) {
	f, err := fsys.OpenFile(path, osRDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	n, err := f.ReadAt(b, 0)
	if n == len(b) {
		err = nil
	}
	return b[:n], err
}

// closedIndex is a closed segment's index, loaded from its file.
type closedIndexData struct {
	entries []indexEntry
	footer  indexFooter
}

// closedIndex loads the index of a closed segment, checking it against the
// segment (size and offsets) and rebuilding it by a scan if it is missing or
// stale. It also fills in the segment's size and times.
func (l *log) closedIndex(s *segment) (*closedIndexData, error) {
	e := l.e
	h, err := e.files.acquire(s.path, false)
	if err != nil {
		return nil, err
	}
	defer e.files.release(h)
	size, err := h.f.Size()
	if err != nil {
		return nil, err
	}
	l.mu.RLock()
	next := s.next
	l.mu.RUnlock()
	var ci *closedIndexData
	if b, err := readFile(e.fs, s.idxPath); err == nil {
		entries, footer, derr := decodeIndex(b, s.base)
		// An index rebuilt over damage may lack the first frame (it is
		// lost) or hold no entry at all (every frame is lost).
		if derr == nil && footer != nil && footer.Size == size && footer.Next == next &&
			(len(entries) == 0 || entries[0].Pos >= segmentHeaderSize) {
			ci = &closedIndexData{entries: entries, footer: *footer}
		}
	}
	if ci == nil {
		entries, last, err := l.scanClosed(s, h.f, size, next)
		if err != nil {
			return nil, err
		}
		ci = &closedIndexData{entries: entries, footer: indexFooter{Next: next, Size: size, LastTime: last}}
		e.writeIndexFile(s, entries, &ci.footer) // best effort: it is only a cache
	}
	first := ci.footer.LastTime
	if len(ci.entries) > 0 {
		first = ci.entries[0].Time
	}
	l.mu.Lock()
	s.size, s.firstTime, s.lastTime, s.known = ci.footer.Size, first, ci.footer.LastTime, true
	l.mu.Unlock()
	return ci, nil
}

// scanClosed builds the index of a closed segment holding offsets up to
// next by reading it whole. Damaged frames are stepped over (and reported);
// an index entry marks the first intact frame and the first after each hole,
// so that seeks never need to cross damage.
func (l *log) scanClosed(s *segment, f File, size int64, next uint64) (entries []indexEntry, last int64, err error) {
	it := &frameIter{l: l, s: s, expect: s.base, limit: next,
		sc: scanner{f: f, path: s.path, pos: segmentHeaderSize, end: size, chunk: 1 << 20}}
	lastIndexPos := int64(0)
	afterHole := false
	for {
		pos, h, _, hl, err := it.next()
		if errors.Is(err, io.EOF) {
			return entries, last, nil
		}
		if err != nil {
			return nil, 0, err
		}
		if hl != nil {
			afterHole = true
			continue
		}
		if len(entries) == 0 || afterHole || pos-lastIndexPos >= int64(l.e.opts.IndexInterval) {
			entries = append(entries, indexEntry{Offset: h.FirstOffset, Pos: pos, Time: h.Time})
			lastIndexPos = pos
		}
		afterHole = false
		last = h.Time
	}
}
