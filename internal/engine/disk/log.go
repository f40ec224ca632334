package disk

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

const osCreateTrunc = os.O_RDWR | os.O_CREATE | os.O_TRUNC

// log is one shard log: a directory of segments, the last one active.
type log struct {
	e    *Engine
	name string
	dir  string

	// gate is held shared by each Append from submission to acknowledgement
	// and exclusively by Seal, DeleteLog and a Trim that replaces the active
	// segment: holding it exclusively means no append of this log is in the
	// committer.
	gate sync.RWMutex

	mu        sync.RWMutex
	segs      []*segment // by base offset; the last is active
	next      uint64     // one past the last acknowledged record
	lastTime  int64      // arrival time of the newest record; 0 when empty
	sealed    bool
	deleted   bool
	retention time.Duration
	failed    error
	holes     map[uint64][]hole // by segment base: damage found, sorted by position
	notify    chan struct{}     // closed and replaced when next grows, on seal and on delete
	hints     [8]readHint
	avgRecord atomic.Int64 // encoded size of a record, seen by the last Read   // where recent reads stopped, for sequential readers
	hintNext  int
	tail      tailCache
	// end is the active segment's size after the last round: where the
	// next frame most likely goes (appendOp.inPlace).
	end atomic.Int64

	// keys are the log's encryption keys (engine.Keys in a keysBox), nil
	// when it has none.
	keys atomic.Pointer[keysBox]

	// q is the log's queue of appends waiting for the committer.
	q struct {
		sync.Mutex
		ops        []*appendOp
		committing bool // a commit loop runs for this log
	}

	// w is the write state, owned by the log's commit loop (or by whoever
	// holds gate exclusively).
	w writeState
}

var _ engine.Log = (*log)(nil)

type keysBox struct{ k engine.Keys }

// SetKeys implements engine.Log.
func (l *log) SetKeys(k engine.Keys) {
	if k == nil {
		l.keys.Store(nil)
		return
	}
	l.keys.Store(&keysBox{k})
}

// sealKey returns the key a new batch is encrypted with, nil for none.
func (l *log) sealKey(ctx context.Context) (uint32, cipher.AEAD, error) {
	b := l.keys.Load()
	if b == nil {
		return 0, nil, nil
	}
	id, aead, err := b.k.SealKey(ctx)
	switch {
	case err != nil:
		return 0, nil, fmt.Errorf("disk: append to %s: %w", l.name, err)
	case aead == nil:
		return 0, nil, nil
	case id == 0:
		return 0, nil, fmt.Errorf("disk: append to %s: keys returned key id 0", l.name)
	case aead.NonceSize() != nonceSize || aead.Overhead() != tagSize:
		return 0, nil, fmt.Errorf("disk: append to %s: key has a %d-byte nonce and a %d-byte tag, want %d and %d",
			l.name, aead.NonceSize(), aead.Overhead(), nonceSize, tagSize)
	}
	return id, aead, nil
}

// opener returns the function that finds the key of an encrypted frame,
// remembering the last one.
func (l *log) opener(ctx context.Context) func(id uint32) (cipher.AEAD, error) {
	var lastID uint32
	var last cipher.AEAD
	return func(id uint32) (cipher.AEAD, error) {
		if last != nil && id == lastID {
			return last, nil
		}
		b := l.keys.Load()
		if b == nil {
			return nil, engine.ErrNoKeys
		}
		aead, err := b.k.OpenKey(ctx, id)
		if err != nil {
			return nil, err
		}
		lastID, last = id, aead
		return aead, nil
	}
}

// newSalt draws the random prefix of the nonces of a log's encrypted
// frames (the rest is the frame's first offset). A new one is drawn
// whenever offsets may be given again to other records: when the log is
// opened (after a crash cut its tail) and after a failed append.
func newSalt() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}

// readHint remembers the batch holding offset next in segment seg.
type readHint struct {
	seg      *segment
	next     uint64
	batchOff uint64
	batchPos int64
}

func emptySegment(dir string, h segmentHeader) *segment {
	s := newSegment(dir, h.Base)
	s.size = segmentHeaderSize
	s.known = true
	return s
}

func (e *Engine) newLog(name string, rec logRecord, segs []*segment) *log {
	l := &log{
		e:         e,
		name:      name,
		dir:       filepath.Join(e.logsDir(), name),
		segs:      segs,
		sealed:    rec.Sealed,
		retention: rec.Retention,
		notify:    make(chan struct{}),
	}
	act := segs[len(segs)-1]
	l.next = act.next
	l.lastTime = act.lastTime
	l.w = writeState{
		salt:    newSalt(),
		seg:     act,
		size:    act.size,
		next:    act.next,
		entries: act.entries,
		idxSize: indexHeaderSize + int64(len(act.entries))*indexEntrySize,
	}
	if len(act.entries) > 0 {
		l.w.lastIndexPos = act.entries[len(act.entries)-1].Pos
		l.w.firstTime = act.firstTime
		l.w.lastTime = act.lastTime
	}
	return l
}

func (l *log) checkLocked() error {
	if l.deleted {
		return fmt.Errorf("%w: %s", engine.ErrLogNotFound, l.name)
	}
	return nil
}

// Append implements engine.Log.
func (l *log) Append(ctx context.Context, recs []engine.Record) (engine.AppendResult, error) {
	if len(recs) == 0 {
		return engine.AppendResult{}, errors.New("disk: empty batch")
	}
	if len(recs) > engine.MaxBatchRecords {
		return engine.AppendResult{}, fmt.Errorf("%w: %d records", engine.ErrTooLarge, len(recs))
	}
	n := 0
	for _, r := range recs {
		n += len(r.Key) + len(r.Value)
	}
	if n > engine.MaxBatchBytes {
		return engine.AppendResult{}, fmt.Errorf("%w: %d bytes", engine.ErrTooLarge, n)
	}
	if !l.e.enter() {
		return engine.AppendResult{}, engine.ErrClosed
	}
	defer l.e.leave()
	if err := ctx.Err(); err != nil {
		return engine.AppendResult{}, err
	}
	l.gate.RLock()
	defer l.gate.RUnlock()
	l.mu.RLock()
	err := l.checkLocked()
	switch {
	case err != nil:
	case l.sealed:
		err = fmt.Errorf("%w: %s", engine.ErrSealed, l.name)
	case l.failed != nil:
		err = fmt.Errorf("%w: %s: %w", ErrFailed, l.name, l.failed)
	}
	l.mu.RUnlock()
	if err != nil {
		return engine.AppendResult{}, err
	}
	keyID, aead, err := l.sealKey(ctx)
	if err != nil {
		return engine.AppendResult{}, err
	}
	var start time.Time
	if l.e.opts.Observer != nil {
		start = time.Now()
	}
	op := newAppendOp(l, recs, keyID, aead)
	l.e.com.submit(op)
	<-op.done
	res, err := op.res, op.err
	op.free()
	if l.e.opts.Observer != nil {
		l.e.opts.Observer.Append(time.Since(start))
	}
	return res, err
}

// Info implements engine.Log.
func (l *log) Info(ctx context.Context) (engine.LogInfo, error) {
	if !l.e.enter() {
		return engine.LogInfo{}, engine.ErrClosed
	}
	defer l.e.leave()
	if err := l.firstSegmentKnown(); err != nil {
		return engine.LogInfo{}, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.checkLocked(); err != nil {
		return engine.LogInfo{}, err
	}
	info := engine.LogInfo{
		Name:      l.name,
		First:     l.segs[0].base,
		Next:      l.next,
		Sealed:    l.sealed,
		Retention: l.retention,
	}
	if info.First < info.Next {
		info.LastTime = l.lastTime
		info.FirstTime = l.segs[0].firstTime
	}
	return info, nil
}

// firstSegmentKnown makes sure the first segment's times are known.
func (l *log) firstSegmentKnown() error {
	l.mu.RLock()
	s := l.segs[0]
	known := s.known
	l.mu.RUnlock()
	if !known {
		if _, err := l.closedIndex(s); err != nil {
			return err
		}
	}
	return nil
}

// Seal implements engine.Log.
func (l *log) Seal(ctx context.Context) error {
	if !l.e.enter() {
		return engine.ErrClosed
	}
	defer l.e.leave()
	l.gate.Lock()
	defer l.gate.Unlock()
	l.mu.RLock()
	err := l.checkLocked()
	sealed, ret := l.sealed, l.retention
	l.mu.RUnlock()
	if err != nil || sealed {
		return err
	}
	if err := putLogRecord(l.e.db, l.name, logRecord{Retention: ret, Sealed: true}, false); err != nil {
		return fmt.Errorf("disk: seal %s: %w", l.name, err)
	}
	l.mu.Lock()
	l.sealed = true
	l.tail.reset() // a sealed log is read to its end once, then idles: free its share
	l.wakeLocked()
	l.mu.Unlock()
	return nil
}

// SetRetention implements engine.Log.
func (l *log) SetRetention(ctx context.Context, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("disk: negative retention %v", d)
	}
	if !l.e.enter() {
		return engine.ErrClosed
	}
	defer l.e.leave()
	l.gate.Lock() // serializes registry writes with Seal
	defer l.gate.Unlock()
	l.mu.RLock()
	err := l.checkLocked()
	sealed := l.sealed
	l.mu.RUnlock()
	if err != nil {
		return err
	}
	if err := putLogRecord(l.e.db, l.name, logRecord{Retention: d, Sealed: sealed}, false); err != nil {
		return fmt.Errorf("disk: set retention of %s: %w", l.name, err)
	}
	l.mu.Lock()
	l.retention = d
	l.mu.Unlock()
	return nil
}

// Trim implements engine.Log.
func (l *log) Trim(ctx context.Context, before int64) error {
	if !l.e.enter() {
		return engine.ErrClosed
	}
	defer l.e.leave()
	return l.trim(before)
}

func (l *log) wakeLocked() {
	close(l.notify)
	l.notify = make(chan struct{})
}

// Wait implements engine.Log.
func (l *log) Wait(ctx context.Context, next uint64) (uint64, error) {
	for {
		l.mu.RLock()
		if l.deleted || l.e.closed.Load() {
			l.mu.RUnlock()
			return 0, engine.ErrClosed
		}
		n, sealed, ch := l.next, l.sealed, l.notify
		want := l.afterHoleLocked(next)
		l.mu.RUnlock()
		if n > want || sealed {
			return n, nil
		}
		select {
		case <-ch:
		case <-l.e.closing:
			return 0, engine.ErrClosed
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
}

// afterHoleLocked returns the first offset at or after next that is not in a
// known hole, so that Wait does not wake a reader for records that were lost.
func (l *log) afterHoleLocked(next uint64) uint64 {
	for moved := len(l.holes) > 0; moved; {
		moved = false
		for _, hs := range l.holes {
			for _, h := range hs {
				if h.from <= next && next < h.to {
					next, moved = h.to, true
				}
			}
		}
	}
	return next
}

// OffsetAt implements engine.Log.
func (l *log) OffsetAt(ctx context.Context, t int64) (uint64, error) {
	if !l.e.enter() {
		return 0, engine.ErrClosed
	}
	defer l.e.leave()
	for attempt := 0; ; attempt++ {
		off, err := l.offsetAt(t)
		if err != nil && isNotExist(err) && attempt < 3 {
			continue // a segment was trimmed under us
		}
		return off, err
	}
}

func (l *log) offsetAt(t int64) (uint64, error) {
	l.mu.RLock()
	if err := l.checkLocked(); err != nil {
		l.mu.RUnlock()
		return 0, err
	}
	next, last := l.next, l.lastTime
	segs := append([]*segment(nil), l.segs...)
	l.mu.RUnlock()
	if segs[0].base == next || last < t {
		return next, nil
	}
	// The first segment whose last batch is at or after t holds the answer.
	var ferr error
	i := sort.Search(len(segs), func(i int) bool {
		lt, err := l.segLastTime(segs[i])
		if err != nil && ferr == nil {
			ferr = err
		}
		return lt >= t
	})
	if ferr != nil {
		return 0, ferr
	}
	if i == len(segs) {
		return next, nil
	}
	s := segs[i]
	entries, end, limit, err := l.segIndex(s)
	if err != nil {
		return 0, err
	}
	pos, expect := int64(segmentHeaderSize), s.base
	if e, ok := seekTime(entries, t); ok {
		pos, expect = e.Pos, e.Offset
	}
	h, err := l.e.files.acquire(s.path, false)
	if err != nil {
		return 0, err
	}
	defer l.e.files.release(h)
	it := &frameIter{l: l, s: s, expect: expect, limit: limit,
		sc: scanner{f: h.f, path: s.path, pos: pos, end: end, chunk: 256 << 10}}
	for {
		_, bh, _, hl, err := it.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if limit < next {
					// Lost records at the segment's end: the answer is
					// in the next segment, whose first record is newer.
					return limit, nil
				}
				return next, nil
			}
			return 0, err
		}
		if hl == nil && bh.Time >= t {
			return bh.FirstOffset, nil
		}
	}
}

// segLastTime returns the arrival time of a segment's last batch.
func (l *log) segLastTime(s *segment) (int64, error) {
	l.mu.RLock()
	known, lt, empty := s.known, s.lastTime, s.next == s.base
	l.mu.RUnlock()
	if known || empty {
		return lt, nil
	}
	if _, err := l.closedIndex(s); err != nil {
		return 0, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return s.lastTime, nil
}

// segIndex returns a segment's sparse index, its committed end and the
// offset after its last committed record.
func (l *log) segIndex(s *segment) ([]indexEntry, int64, uint64, error) {
	l.mu.RLock()
	if !s.closed {
		entries, size, next := s.entries, s.size, s.next
		l.mu.RUnlock()
		return entries, size, next, nil
	}
	l.mu.RUnlock()
	ci, err := l.closedIndex(s)
	if err != nil {
		return nil, 0, 0, err
	}
	return ci.entries, ci.footer.Size, ci.footer.Next, nil
}

// Read implements engine.Log. It is ReadLent with the records never
// released: buffers of the tail cache they come from are not pooled again,
// and the garbage collector frees them once the caller drops the records.
func (l *log) Read(ctx context.Context, from uint64, maxRecords, maxBytes int) ([]engine.StoredRecord, error) {
	recs, _, err := l.ReadLent(ctx, from, maxRecords, maxBytes)
	return recs, err
}

// ReadLent implements engine.Lender. The records' references to the tail
// cache's frames are given back by the release function.
func (l *log) ReadLent(ctx context.Context, from uint64, maxRecords, maxBytes int) ([]engine.StoredRecord, func(), error) {
	if !l.e.enter() {
		return nil, nil, engine.ErrClosed
	}
	defer l.e.leave()
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if maxRecords <= 0 { // no record limit, as the contract's other engines
		maxRecords = math.MaxInt
	}
	maxBytes = max(maxBytes, 0)
	open := l.opener(ctx)
	for attempt := 0; ; attempt++ {
		recs, frames, err := l.read(from, maxRecords, maxBytes, open)
		if err != nil && isNotExist(err) && attempt < 3 {
			continue // a segment was trimmed under us: start again at the new first
		}
		if err != nil {
			return nil, nil, err
		}
		return recs, func() {
			for _, f := range frames {
				f.buf.unref()
			}
			if frames != nil {
				putStoredRecs(recs)
			}
			frames, recs = nil, nil
		}, nil
	}
}

// read reads as Read does, and returns the cached frames the records come
// from, whose references the caller now holds.
func (l *log) read(from uint64, maxRecords, maxBytes int, open func(uint32) (cipher.AEAD, error)) ([]engine.StoredRecord, []tailFrame, error) {
	c := &collector{from: from, maxRecords: maxRecords, maxBytes: maxBytes}
	for {
		l.mu.RLock()
		if err := l.checkLocked(); err != nil {
			l.mu.RUnlock()
			return nil, nil, err
		}
		next := l.next
		if first := l.segs[0].base; c.from < first {
			c.from = first
		}
		if c.from >= next {
			l.mu.RUnlock()
			return c.out, nil, nil
		}
		if l.tail.covers(c.from) {
			frames := l.tail.pick(nil, c.from, maxRecords-len(c.out), maxBytes-c.bytes)
			l.mu.RUnlock()
			c.addFrames(frames)
			l.e.tailReads.hits.Add(1)
			return c.out, frames, nil
		}
		l.e.tailReads.misses.Add(1)
		i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > c.from }) - 1
		s := l.segs[i]
		segNext, closed, size := s.next, s.closed, s.size
		hint, hasHint := l.hintLocked(s, c.from)
		l.mu.RUnlock()

		var pos int64 = segmentHeaderSize
		var end int64
		expect, limit := s.base, segNext
		if hasHint && size >= 0 {
			pos, end, expect = hint.batchPos, size, hint.batchOff
		} else {
			entries, e, n, err := l.segIndex(s)
			if err != nil {
				return nil, nil, err
			}
			end, limit = e, n
			if ie, ok := seekEntry(entries, c.from); ok {
				pos, expect = ie.Pos, ie.Offset
			}
		}
		h, err := l.e.files.acquire(s.path, false)
		if err != nil {
			return nil, nil, err
		}
		want := min(maxBytes-c.bytes, 16<<20) + min(maxBytes, 16<<20)/8 + l.e.opts.IndexInterval + 4096
		want = min(max(want, 64<<10), 16<<20)
		// Start with what the record limit allows at the log's recent
		// average record size, and grow if that was too little.
		first := want
		if avg := l.avgRecord.Load(); avg > 0 {
			recs := min(maxRecords-len(c.out), want/int(avg)+1)
			first = min(want, max(64<<10, recs*int(avg)*9/8+l.e.opts.IndexInterval))
		} else {
			first = min(want, 1<<20)
		}
		it := &frameIter{l: l, s: s, expect: expect, limit: limit,
			sc: scanner{f: h.f, path: s.path, pos: pos, end: end, chunk: first, maxChunk: want, fresh: true}}
		var lastPos int64
		var lastOff uint64
		for !c.full {
			fpos, bh, frame, hl, err := it.next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				l.e.files.release(h)
				return nil, nil, err
			}
			if hl != nil {
				// Damaged records: step over them, as over expired ones.
				if c.from < hl.to {
					c.from = hl.to
				}
				continue
			}
			if bh.FirstOffset+uint64(bh.Count) <= c.from {
				continue
			}
			lastPos, lastOff = fpos, bh.FirstOffset
			if c.out == nil {
				// Size the result once, from the records left and the
				// first batch's average record size.
				avg := max(1, (len(frame)-batchHeaderSize-int(bh.overhead()))/int(bh.Count))
				l.avgRecord.Store(int64(avg))
				n := min(uint64(maxRecords), next-min(c.from, next), uint64(maxBytes/avg+2), 1<<16)
				c.out = make([]engine.StoredRecord, 0, n)
			}
			body, kerr := recordsSection(frame, bh, open)
			if kerr != nil {
				l.e.files.release(h)
				if errors.Is(kerr, engine.ErrDecrypt) {
					return nil, nil, fmt.Errorf("disk: %s at byte %d: %w", s.path, fpos, kerr)
				}
				return nil, nil, fmt.Errorf("disk: read %s at offset %d: %w", l.name, bh.FirstOffset, kerr)
			}
			if werr := c.add(body, int(bh.Count), bh.FirstOffset, bh.Time, frameKeyID(frame, bh)); werr != nil {
				l.e.files.release(h)
				return nil, nil, &CorruptionError{Path: s.path, Pos: fpos, Reason: werr.Error()}
			}
		}
		l.e.files.release(h)
		if lastPos > 0 {
			l.mu.Lock()
			l.addHintLocked(readHint{seg: s, next: c.from, batchOff: lastOff, batchPos: lastPos})
			l.mu.Unlock()
		}
		if c.full || c.from >= next || c.from < segNext && !closed {
			if c.out == nil {
				c.out = []engine.StoredRecord{}
			}
			return c.out, nil, nil
		}
		if c.from < segNext {
			return nil, nil, &CorruptionError{Path: s.path, Pos: end, Reason: fmt.Sprintf("segment ends before offset %d", segNext)}
		}
	}
}

func (l *log) hintLocked(s *segment, from uint64) (readHint, bool) {
	for _, h := range l.hints {
		if h.seg == s && h.next == from {
			return h, true
		}
	}
	return readHint{}, false
}

func (l *log) addHintLocked(h readHint) {
	l.hints[l.hintNext] = h
	l.hintNext = (l.hintNext + 1) % len(l.hints)
}

const (
	osRDWR   = os.O_RDWR
	osRDONLY = os.O_RDONLY
)
