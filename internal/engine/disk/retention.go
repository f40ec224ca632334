package disk

import "fmt"

// trim removes the segments whose records are all older than before (Unix
// ms). Closed segments go first to last; the active segment goes only when
// every record of the log is older, and is then replaced by an empty segment
// starting at the log's next offset, so that offsets never restart.
func (l *log) trim(before int64) error {
	for {
		l.mu.Lock()
		if l.deleted {
			l.mu.Unlock()
			return l.checkLocked()
		}
		s := l.segs[0]
		if !s.closed {
			l.mu.Unlock()
			break
		}
		if !s.known {
			l.mu.Unlock()
			if _, err := l.closedIndex(s); err != nil {
				return err
			}
			continue
		}
		if s.lastTime >= before {
			l.mu.Unlock()
			return nil
		}
		l.segs = l.segs[1:]
		l.tail.dropBelow(l.segs[0].base)
		l.mu.Unlock()
		if err := l.removeSegment(s); err != nil {
			return err
		}
	}
	l.mu.RLock()
	act := l.segs[0]
	old := len(l.segs) == 1 && act.next > act.base && act.lastTime < before
	l.mu.RUnlock()
	if !old {
		return nil
	}
	l.gate.Lock() // no append of this log is in the committer now
	defer l.gate.Unlock()
	l.mu.RLock()
	old = !l.deleted && len(l.segs) == 1 && l.segs[0] == act && act.lastTime < before
	l.mu.RUnlock()
	if !old {
		return nil
	}
	w := &l.w
	hdr := segmentHeader{Base: w.next, Floor: w.maxTime}
	if err := l.e.createSegmentFiles(l.dir, hdr); err != nil {
		return fmt.Errorf("disk: trim %s: %w", l.name, err)
	}
	s := emptySegment(l.dir, hdr)
	s.next = w.next
	l.mu.Lock()
	l.segs = []*segment{s}
	l.tail.reset()
	l.lastTime = 0
	l.mu.Unlock()
	*w = writeState{seg: s, size: segmentHeaderSize, next: w.next, maxTime: w.maxTime, idxSize: indexHeaderSize}
	return l.removeSegment(act)
}

// removeSegment deletes a segment's files, durably.
func (l *log) removeSegment(s *segment) error {
	fs := l.e.fs
	l.mu.Lock()
	delete(l.holes, s.base)
	l.mu.Unlock()
	l.e.files.forget(s.path, false)
	l.e.files.forget(s.idxPath, false)
	if err := fs.Remove(s.path); err != nil && !isNotExist(err) {
		return fmt.Errorf("disk: trim %s: %w", l.name, err)
	}
	if err := fs.Remove(s.idxPath); err != nil && !isNotExist(err) {
		return fmt.Errorf("disk: trim %s: %w", l.name, err)
	}
	if err := fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("disk: trim %s: %w", l.name, err)
	}
	return nil
}
