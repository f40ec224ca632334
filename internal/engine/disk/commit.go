package disk

import (
	"crypto/cipher"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/runnel/runnel/internal/engine"
)

// Group commit. Appenders encode and checksum their batch on their own
// goroutine, then queue it on their log. While a log has batches queued, one
// goroutine commits for it: it takes everything queued, gives each batch its
// offsets and arrival time, writes them all with one write, fdatasyncs the
// segment once, and then acknowledges them all. While it syncs, the next group
// queues up, so a log's syncs per second stay near the disk's fsync rate
// however many appenders it has. An appender that finds its log idle commits
// its own group on its own goroutine; groups that queue behind it get a
// goroutine of their own. Different logs commit concurrently (up to
// maxCommitting at once): their writes use every core and their syncs overlap
// in the disk's queue and share the filesystem's journal commits.

// appendOp is one queued Append.
type appendOp struct {
	l     *log
	frame []byte
	crc   uint32
	count int
	// aead, when not nil, encrypts the frame at commit (keyID names it).
	aead  cipher.AEAD
	keyID uint32
	// buf holds frame until free, unless the tail cache takes it (and sets
	// buf to nil).
	buf *frameBuf

	res  engine.AppendResult
	err  error
	done chan struct{}
}

func newAppendOp(l *log, recs []engine.Record, keyID uint32, aead cipher.AEAD) *appendOp {
	op := &appendOp{l: l, count: len(recs), aead: aead, keyID: keyID, done: make(chan struct{})}
	_, total := frameSize(recs, aead != nil)
	if aead != nil || total < inPlaceMin || !l.e.directWanted() {
		op.buf = getFrameBuf(total)
		op.frame, op.crc = encodeBody(op.buf.b[:0], recs, aead != nil)
		return op
	}
	// Place the frame so that, if it lands where the log ends now, its
	// buffer can be written directly (inPlace): room for the block's bytes
	// before it, and for the zeros after it.
	op.buf = getFrameBuf(total + 2*directAlign)
	full := op.buf.b[:cap(op.buf.b)]
	off := int(uint64(l.end.Load()-int64(uintptr(unsafe.Pointer(unsafe.SliceData(full))))) % directAlign)
	op.frame, op.crc = encodeBody(full[off:off], recs, false)
	return op
}

// inPlaceMin is the smallest frame built for a direct write from its own
// buffer. Below it the copy into a staging buffer costs little, and the
// room around the frame (up to 8 KiB) would cost the tail cache more.
const inPlaceMin = 64 << 10

// inPlace returns the frame's buffer from pre = at % directAlign bytes
// before the frame to the end of its last block, for a direct write at
// position at without copying the frame: when the buffer holds those bytes
// before the frame and the zeros after it, and the write would start on a
// directAlign boundary in memory. The caller fills the pre bytes.
func (op *appendOp) inPlace(at int64) (b []byte, pre int, ok bool) {
	if op.buf == nil || op.aead != nil || len(op.frame) == 0 {
		return nil, 0, false
	}
	full := op.buf.b[:cap(op.buf.b)]
	base := uintptr(unsafe.Pointer(unsafe.SliceData(full)))
	fp := uintptr(unsafe.Pointer(unsafe.SliceData(op.frame)))
	if fp < base || fp >= base+uintptr(len(full)) {
		return nil, 0, false // the frame outgrew the buffer (not expected)
	}
	pre = int(at % directAlign)
	start := int(fp-base) - pre
	end := start + pre + len(op.frame)
	padded := start + (pre+len(op.frame)+directAlign-1)&^(directAlign-1)
	if start < 0 || padded > len(full) || (base+uintptr(start))%directAlign != 0 {
		return nil, 0, false
	}
	return full[start:end:padded], pre, true
}

// free pools the frame's buffer unless the tail cache took it.
func (op *appendOp) free() {
	if op.buf != nil {
		putFrameBuf(op.buf)
		op.buf, op.frame = nil, nil
	}
}

// writeState is a log's write position, owned by the committer.
type writeState struct {
	// salt prefixes the nonces of encrypted frames; drawn again whenever
	// offsets may be reused (newSalt).
	salt         uint32
	seg          *segment // active segment
	h            *handle  // its file, held during a commit round
	size         int64    // bytes written to seg
	next         uint64   // next offset to assign
	maxTime      int64    // newest arrival time ever assigned (or the segment floor)
	firstTime    int64    // of seg's first batch, 0 if none
	lastTime     int64    // of seg's last batch, 0 if none
	lastIndexPos int64    // position of seg's last index entry
	idxSize      int64    // bytes in seg's index file
	idxSyncedAt  int64    // seg's size when its index was last synced
	entries      []indexEntry
	idxBuf       []byte // index bytes not yet written
	// dio is seg's last partial block, for direct writes (direct.go).
	dio directTail

	rolled  []rolledSeg // segments closed during this round
	newSegs []*segment  // segments created (or being created) during this round

	// start is the state before the current round, to undo it if it fails.
	start roundStart
	// broken is the cause of a failed round that could not be undone yet:
	// the next round undoes it first, and fails while it cannot.
	broken error
	// failing is set after a failed round, until one succeeds.
	failing bool
	// synced is set when the round's last write synced the segment too.
	synced bool
}

// roundStart is what a round changes in writeState.
type roundStart struct {
	seg                                   *segment
	size, idxSize, idxSyncedAt            int64
	next                                  uint64
	maxTime, firstTime, lastTime, lastIdx int64
	entries                               []indexEntry
}

type rolledSeg struct {
	seg         *segment
	next        uint64
	size        int64
	first, last int64
}

// maxCommitting bounds the logs writing and syncing at once (each blocked
// sync holds an OS thread).
const maxCommitting = 64

type committer struct {
	e    *Engine
	sem  chan struct{} // a slot per log committing
	wg   sync.WaitGroup
	stop chan struct{} // stops the interval syncer
	done chan struct{}

	// inPlaceWrites counts the frames written from their own buffers
	// (appendOp.inPlace), for the tests.
	inPlaceWrites atomic.Int64

	mu struct {
		sync.Mutex
		dirty map[*handle]*log // SyncInterval: written, not yet synced
	}
}

func newCommitter(e *Engine) *committer {
	c := &committer{
		e:    e,
		sem:  make(chan struct{}, maxCommitting),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	c.mu.dirty = make(map[*handle]*log)
	if e.opts.Durability == SyncInterval {
		go c.syncer()
	} else {
		close(c.done)
	}
	return c
}

// submit queues op on its log. If no round is running for the log, the
// caller runs one itself: its op is alone in the queue, so that round
// commits it, and an Append that finds its log idle costs no goroutine and
// no wake-up. What queued meanwhile goes to a goroutine of its own (loop).
func (c *committer) submit(op *appendOp) {
	l := op.l
	l.q.Lock()
	l.q.ops = append(l.q.ops, op)
	start := !l.q.committing
	l.q.committing = true
	l.q.Unlock()
	if start {
		c.wg.Add(1)
		c.loop(l, true)
	}
}

// loop commits l's queue, group after group, until it is empty. With
// caller (see submit) it commits one group and hands the rest, if any, to
// a new loop.
func (c *committer) loop(l *log, caller bool) {
	defer c.wg.Done()
	var spare []*appendOp
	for i := 0; ; i++ {
		l.q.Lock()
		ops := l.q.ops
		if len(ops) == 0 {
			l.q.committing = false
			l.q.Unlock()
			return
		}
		if caller && i > 0 {
			l.q.Unlock()
			c.wg.Add(1)
			go c.loop(l, false)
			return
		}
		l.q.ops = spare[:0]
		l.q.Unlock()
		c.sem <- struct{}{}
		c.commit(l, ops)
		<-c.sem
		clear(ops)
		spare = ops
	}
}

// close waits for the commits in progress (Close calls it once no Append is
// in flight), then syncs what is dirty and stops the syncer.
func (c *committer) close() error {
	c.wg.Wait()
	if c.e.opts.Durability != SyncInterval {
		return nil
	}
	close(c.stop)
	<-c.done
	return c.syncDirty()
}

// sync fdatasyncs a segment file, timing it for Options.Observer.
func (c *committer) sync(f File) error {
	return c.timeSync(f.Sync)
}

// timeSync runs fn, a segment's sync (or a write that syncs), timing it
// for Options.Observer.
func (c *committer) timeSync(fn func() error) error {
	obs := c.e.opts.Observer
	if obs == nil {
		return fn()
	}
	start := time.Now()
	err := fn()
	obs.Sync(time.Since(start))
	return err
}

// syncer syncs dirty files every SyncInterval (SyncInterval durability).
func (c *committer) syncer() {
	defer close(c.done)
	t := time.NewTicker(c.e.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.syncDirty()
		}
	}
}

type group struct {
	l   *log
	ops []*appendOp
}

// commit writes, syncs (SyncAlways) and publishes one group of a log's
// appends, then acknowledges them.
func (c *committer) commit(l *log, ops []*appendOp) {
	err := c.write(&group{l: l, ops: ops}, c.e.opts.now())
	if err == nil {
		if c.e.opts.Durability == SyncAlways && !l.w.synced {
			if serr := c.sync(l.w.h.f); serr != nil {
				err = fmt.Errorf("disk: sync %s: %w", l.name, serr)
				c.abort(l, err)
			}
		} else {
			c.mu.Lock()
			if c.mu.dirty[l.w.h] == nil {
				c.e.files.ref(l.w.h)
				c.mu.dirty[l.w.h] = l
			}
			c.mu.Unlock()
		}
	}
	if err == nil {
		c.publish(l, ops)
		if l.w.failing {
			l.w.failing = false
			c.e.faults.recovered(c.e, l.name)
		}
	} else {
		l.w.failing = true
		c.e.faults.fail(c.e, l.name, err)
	}
	if l.w.h != nil {
		c.e.files.release(l.w.h)
		l.w.h = nil
	}
	for _, op := range ops {
		if err != nil {
			op.res, op.err = engine.AppendResult{}, err
		}
		close(op.done)
	}
}

// write writes a log's batches of this round (not synced). On error it
// undoes the round (see undo); what it cannot undo now, the next round does.
func (c *committer) write(g *group, now int64) (err error) {
	l, w := g.l, &g.l.w
	l.mu.RLock()
	failed := l.failed
	l.mu.RUnlock()
	if failed != nil {
		return fmt.Errorf("%w: %s: %w", ErrFailed, l.name, failed)
	}
	if w.broken != nil {
		// An earlier round failed and could not be undone: undo it now.
		if uerr := c.undo(l); uerr != nil {
			return fmt.Errorf("disk: append to %s: undoing a failed append: %w", l.name, uerr)
		}
		w.broken = nil
	}
	w.synced = false
	w.start = roundStart{seg: w.seg, size: w.size, idxSize: w.idxSize, idxSyncedAt: w.idxSyncedAt, next: w.next,
		maxTime: w.maxTime, firstTime: w.firstTime, lastTime: w.lastTime, lastIdx: w.lastIndexPos, entries: w.entries}
	defer func() {
		if err != nil {
			err = fmt.Errorf("disk: append to %s: %w", l.name, err)
			c.abort(l, err)
		}
	}()
	if w.h == nil {
		if w.h, err = c.e.files.acquire(w.seg.path, false); err != nil {
			return err
		}
	}
	opts := &c.e.opts
	dw := c.directWriter(w.h)
	var bp *[]byte // the frames staged for one write, from bufAt
	pre := 0       // bytes before bufAt in *bp (direct writes)
	var bufAt int64
	stage := func() error {
		bufAt = w.size
		if dw == nil {
			bp, pre = getAligned(0), 0
			return nil
		}
		var err error
		bp, pre, err = w.dio.stage(w.h.f, w.seg, w.size)
		return err
	}
	// put writes b, frames for position at after pre bytes of at's block
	// (direct writes). With last (the round's last write, under SyncAlways)
	// a direct write syncs the segment as well.
	put := func(b []byte, pre int, at int64, last bool) error {
		if len(b) == pre {
			return nil
		}
		if dw == nil {
			_, err := w.h.f.WriteAt(b[pre:], at)
			return err
		}
		write := func(sync bool) error {
			return w.dio.write(dw, w.seg, b, pre, at, opts.SegmentSize, now, sync)
		}
		var err error
		if last && opts.Durability == SyncAlways {
			err = c.timeSync(func() error { return write(true) })
			w.synced = err == nil
		} else {
			err = write(false)
		}
		if errors.Is(err, errDirectUnsupported) {
			c.noDirect(err)
			dw = nil
			_, err = w.h.f.WriteAt(b[pre:], at)
		}
		return err
	}
	// flush writes what is staged.
	flush := func(last bool) error {
		if bp == nil {
			return nil
		}
		err := put(*bp, pre, bufAt, last)
		putAligned(bp)
		bp = nil
		return err
	}
	defer func() {
		if bp != nil {
			putAligned(bp)
		}
	}()
	for i, op := range g.ops {
		t := max(now, w.maxTime)
		fl := int64(len(op.frame))
		if op.aead != nil {
			fl += tagSize
		}
		if w.next > w.seg.base && (w.size+fl > opts.SegmentSize || t-w.firstTime >= opts.SegmentMaxAge.Milliseconds()) {
			if err := flush(false); err != nil {
				return err
			}
			if err := c.roll(l); err != nil {
				return err
			}
			dw = c.directWriter(w.h)
		}
		if op.aead != nil {
			op.frame = sealEncryptedFrame(op.frame, op.aead, op.keyID, w.salt, w.next, t)
		} else {
			sealFrame(op.frame, op.crc, w.next, t)
		}
		if w.next == w.seg.base {
			w.firstTime = t
		}
		if w.next == w.seg.base || w.size-w.lastIndexPos >= int64(opts.IndexInterval) {
			e := indexEntry{Offset: w.next, Pos: w.size, Time: t}
			w.entries = append(w.entries, e)
			w.idxBuf = appendIndexEntry(w.idxBuf, e)
			w.lastIndexPos = w.size
		}
		if bp != nil && len(*bp) > pre && len(*bp)-pre+len(op.frame) > 4<<20 {
			if err := flush(false); err != nil {
				return err
			}
		}
		var inPlace []byte
		opre := 0
		if dw != nil && bp == nil && i == len(g.ops)-1 {
			inPlace, opre, _ = op.inPlace(w.size)
		}
		if inPlace != nil {
			// The round's last frame, nothing staged, and its buffer
			// has room around it: write it from there.
			if err := w.dio.prefix(inPlace[:opre], w.h.f, w.seg, w.size); err != nil {
				return err
			}
			if err := put(inPlace, opre, w.size, true); err != nil {
				return err
			}
			c.inPlaceWrites.Add(1)
		} else if dw == nil && bp == nil && (len(op.frame) >= 1<<20 || i == len(g.ops)-1) {
			// Alone or large: write it from where it is, without a copy.
			if _, err := w.h.f.WriteAt(op.frame, w.size); err != nil {
				return err
			}
		} else {
			if bp == nil {
				if err := stage(); err != nil {
					return err
				}
			}
			bp = appendAligned(bp, op.frame)
		}
		op.res = engine.AppendResult{FirstOffset: w.next, Time: t}
		w.next += uint64(op.count)
		w.size += fl
		w.maxTime, w.lastTime = t, t
	}
	if err := flush(true); err != nil {
		return err
	}
	l.end.Store(w.size)
	syncIdx := opts.Durability == SyncAlways && w.size-w.idxSyncedAt >= indexSyncEvery
	if syncIdx || len(w.idxBuf) >= indexWriteAt {
		if err := c.writeIndex(w); err != nil {
			return err
		}
	}
	if syncIdx {
		c.syncIndex(w)
	}
	return nil
}

// indexSyncEvery is how many segment bytes may separate two syncs of the
// active segment's index. The index is derived data, but an index that lost
// its recent entries in a machine crash makes Open scan the segment from the
// last surviving entry; syncing it now and then bounds that scan.
const indexSyncEvery = 8 << 20

// indexWriteAt is how many bytes of index entries the committer keeps
// before it writes them to the active segment's index file (a roll, a sync
// of the index and Close write them sooner). Readers use the entries in
// memory; the file is for the next Open, which scans the segment from the
// file's last entry, so entries not yet written cost only a longer scan
// after a crash (at the default IndexInterval, 128 entries cover 8 MiB).
// Writing them with every round cost a system call a round.
const indexWriteAt = 128 * indexEntrySize

// syncIndex syncs the active segment's index, best effort: a failure costs
// only a longer scan at the next Open.
func (c *committer) syncIndex(w *writeState) {
	h, err := c.e.files.acquire(w.seg.idxPath, false)
	if err != nil {
		return
	}
	if h.f.Sync() == nil {
		w.idxSyncedAt = w.size
	}
	c.e.files.release(h)
}

// writeIndex appends the pending index bytes of the active segment. The
// index is not synced: recovery rebuilds what it lacks.
func (c *committer) writeIndex(w *writeState) error {
	if len(w.idxBuf) == 0 {
		return nil
	}
	h, err := c.e.files.acquire(w.seg.idxPath, false)
	if err != nil {
		return err
	}
	defer c.e.files.release(h)
	if _, err := h.f.WriteAt(w.idxBuf, w.idxSize); err != nil {
		return err
	}
	w.idxSize += int64(len(w.idxBuf))
	w.idxBuf = w.idxBuf[:0]
	return nil
}

// pendingIndex sets idxBuf to the entries of w.entries that the index file
// (idxSize bytes) does not hold: the file holds the header and then the
// first entries, in order.
func (w *writeState) pendingIndex() {
	w.idxBuf = w.idxBuf[:0]
	k := max(0, min(int((w.idxSize-indexHeaderSize)/indexEntrySize), len(w.entries)))
	for _, e := range w.entries[k:] {
		w.idxBuf = appendIndexEntry(w.idxBuf, e)
	}
}

// abort undoes a failed round (see undo). If that fails too, the round is
// left for the next one to undo, and the log refuses appends until then.
func (c *committer) abort(l *log, cause error) {
	if err := c.undo(l); err != nil {
		l.w.broken = cause
	}
}

// undo takes the log's files and write state back to the start of the
// round: the segments the round created are removed (durably, so that a
// crash cannot bring them back next to records appended later), the active
// segment and its index are cut back to their sizes then, and the segment is
// synced. Cutting is what makes a failed fsync safe to recover from in
// place: the pages whose write-back failed all hold bytes of this round (the
// earlier ones were synced before their records were acknowledged), and the
// truncation drops them from the page cache and the file; the sync then
// makes the file's size durable. The records still in the segment are then
// read back and checked, so that a page cache that lost acknowledged bytes is
// not trusted: if they fail, the log is marked failed until reopened.
func (c *committer) undo(l *log) error {
	w, st := &l.w, &l.w.start
	if w.h != nil && w.h.path != st.seg.path {
		c.e.files.release(w.h)
		w.h = nil
	}
	removed := false
	for _, s := range w.newSegs {
		for _, p := range []string{s.path, s.idxPath} {
			c.e.files.forget(p, false)
			if err := c.e.fs.Remove(p); err != nil && !isNotExist(err) {
				return err
			}
			removed = true
		}
	}
	if removed {
		if err := c.e.fs.SyncDir(l.dir); err != nil {
			return err
		}
	}
	w.newSegs, w.rolled = nil, w.rolled[:0]
	h, err := c.e.files.acquire(st.seg.path, false)
	if err != nil {
		return err
	}
	defer c.e.files.release(h)
	if err := h.f.Truncate(st.size); err != nil {
		return err
	}
	ih, err := c.e.files.acquire(st.seg.idxPath, false)
	if err != nil {
		return err
	}
	err = ih.f.Truncate(st.idxSize)
	c.e.files.release(ih)
	if err != nil {
		return err
	}
	if err := h.f.Sync(); err != nil {
		c.failIfInterval(l, err)
		return err
	}
	w.seg, w.size, w.idxSize, w.idxSyncedAt, w.next = st.seg, st.size, st.idxSize, min(st.idxSyncedAt, st.size), st.next
	w.salt = newSalt() // the round's offsets go to other records next
	w.dio.forget()     // the truncation cut the zeros ahead
	w.maxTime, w.firstTime, w.lastTime, w.lastIndexPos = st.maxTime, st.firstTime, st.lastTime, st.lastIdx
	w.entries = st.entries
	w.pendingIndex()
	if err := c.checkTail(l, h.f); err != nil {
		c.fail(l, err)
	}
	return nil
}

// checkTail reads the active segment's records from its last index entry to
// its end and checks them.
func (c *committer) checkTail(l *log, f File) error {
	w := &l.w
	pos, expect := int64(segmentHeaderSize), w.seg.base
	if n := len(w.entries); n > 0 {
		pos, expect = w.entries[n-1].Pos, w.entries[n-1].Offset
	}
	sc := &scanner{f: f, path: w.seg.path, pos: pos, end: w.size, chunk: 256 << 10}
	for {
		p, h, _, err := sc.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil && h.FirstOffset != expect {
			err = &CorruptionError{Path: w.seg.path, Pos: p, Reason: fmt.Sprintf("offset %d, want %d", h.FirstOffset, expect)}
		}
		if err != nil {
			return fmt.Errorf("acknowledged records unreadable after a failed write: %w", err)
		}
		expect += uint64(h.Count)
	}
	if expect != w.next {
		return fmt.Errorf("acknowledged records unreadable after a failed write: segment %s ends at offset %d, want %d", w.seg.path, expect, w.next)
	}
	return nil
}

// failIfInterval marks the log failed after a failed sync under interval
// durability: the sync may have lost records acknowledged since the last
// one, which no undo can bring back. (Under SyncAlways every acknowledged
// record was synced before, so the pages a failed sync loses are the failed
// round's own, and undo drops them.)
func (c *committer) failIfInterval(l *log, err error) {
	if c.e.opts.Durability == SyncInterval {
		c.fail(l, err)
	}
}

func (c *committer) fail(l *log, err error) {
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
	}
	l.mu.Unlock()
}

// roll closes the active segment and starts a new one at w.next. The old
// segment is synced first, so that a segment is complete on disk before a
// newer one exists.
func (c *committer) roll(l *log) error {
	w := &l.w
	w.idxBuf = appendIndexFooter(w.idxBuf, indexFooter{Next: w.next, Size: w.size, LastTime: w.lastTime})
	if err := c.writeIndex(w); err != nil {
		return err
	}
	if w.dio.padded(w.seg) {
		// Cut the zeros after the last direct write: a segment that no
		// longer grows ends where its frames end.
		w.dio.forget()
		if err := w.h.f.Truncate(w.size); err != nil {
			return err
		}
	}
	if err := w.h.f.Sync(); err != nil {
		c.failIfInterval(l, err)
		return err
	}
	c.e.files.release(w.h)
	w.h = nil
	w.rolled = append(w.rolled, rolledSeg{seg: w.seg, next: w.next, size: w.size, first: w.firstTime, last: w.lastTime})
	s := newSegment(l.dir, w.next)
	w.newSegs = append(w.newSegs, s) // undo removes it if the roll fails
	h, err := c.e.files.acquire(s.path, true)
	if err != nil {
		return err
	}
	w.h = h
	if _, err := h.f.WriteAt(encodeSegmentHeader(segmentHeader{Base: w.next, Floor: w.maxTime}), 0); err != nil {
		return err
	}
	ih, err := c.e.files.acquire(s.idxPath, true)
	if err != nil {
		return err
	}
	_, err = ih.f.WriteAt(encodeIndexHeader(w.next), 0)
	c.e.files.release(ih)
	if err != nil {
		return err
	}
	if err := c.e.fs.SyncDir(l.dir); err != nil {
		return err
	}
	w.seg = s
	w.size, w.idxSize = segmentHeaderSize, indexHeaderSize
	w.entries = nil
	w.firstTime, w.lastTime, w.lastIndexPos, w.idxSyncedAt = 0, 0, 0, 0
	return nil
}

// directWriter returns the file of h as a directWriter if the engine writes
// segments around the page cache: under SyncAlways, unless
// Options.BufferedWrites is set or the filesystem refused.
func (c *committer) directWriter(h *handle) directWriter {
	if !c.e.directWanted() {
		return nil
	}
	dw, _ := h.f.(directWriter)
	return dw
}

// directWanted reports whether segments are written with direct writes
// (where the filesystem takes them).
func (e *Engine) directWanted() bool {
	return e.opts.Durability == SyncAlways && !e.opts.BufferedWrites && !e.noDirect.Load()
}

// noDirect turns direct writes off for good after the filesystem refused
// one.
func (c *committer) noDirect(err error) {
	if !c.e.noDirect.Swap(true) {
		c.e.opts.logger().Warn("disk: writing segments through the page cache: the filesystem refused direct writes", "error", err)
	}
}

// syncDirty syncs the files written since the last tick (SyncInterval).
func (c *committer) syncDirty() error {
	c.mu.Lock()
	dirty := c.mu.dirty
	c.mu.dirty = make(map[*handle]*log)
	c.mu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	hs := make([]*handle, 0, len(dirty))
	for h := range dirty {
		hs = append(hs, h)
	}
	errs := make([]error, len(hs))
	parallel(len(hs), func(i int) { errs[i] = c.sync(hs[i].f) })
	var first error
	for i, h := range hs {
		if errs[i] != nil {
			// Acknowledged records may be lost: refuse further appends.
			c.fail(dirty[h], errs[i])
			if first == nil {
				first = errs[i]
			}
		}
		c.e.files.release(h)
	}
	return first
}

// parallel runs fn(0..n-1) on up to 32 goroutines and waits for them.
func parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	workers := min(n, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	next := 0
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				fn(i)
			}
		})
	}
	wg.Wait()
}

// publish makes a round's records visible, caches their frames and wakes
// waiters.
func (c *committer) publish(l *log, ops []*appendOp) {
	w := &l.w
	l.mu.Lock()
	defer l.mu.Unlock()
	if limit := c.e.tailShare(); limit > 0 {
		l.tail.add(ops, limit)
	}
	for _, r := range w.rolled {
		s := r.seg
		s.closed, s.next, s.size, s.firstTime, s.lastTime, s.known = true, r.next, r.size, r.first, r.last, true
		s.entries = nil
	}
	l.segs = append(l.segs, w.newSegs...)
	a := w.seg
	a.next, a.size, a.firstTime, a.lastTime, a.known = w.next, w.size, w.firstTime, w.lastTime, true
	a.entries = w.entries
	l.next = w.next
	l.lastTime = w.lastTime
	l.wakeLocked()
	w.rolled, w.newSegs = w.rolled[:0], nil
}
