package disk

import (
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/runnel/runnel/internal/engine"
)

// The tail cache. Readers of a stream mostly follow its writers closely:
// they ask for records appended milliseconds ago. The committer has those
// records in memory, in the frames it has just written, so a log keeps its
// newest frames (up to its share of Options.TailCache) and Read serves the
// offsets they cover from there: no system call, no copy and no checksum
// (the frame was checksummed from these very bytes). Older offsets are read
// from the segments as before.
//
// The cache holds plain frames only, in order and without gaps, and always
// ends at the log's next offset: a round with an encrypted frame, or with a
// frame larger than the log's share, empties it, and it starts again with
// the next round. Records read from it share their bytes with the cache and
// with other readers (engine.StoredRecord: the caller must not modify them).
//
// Frame buffers (every append's, cached or not) are counted references
// (frameBuf), pooled by size: the cache holds one reference, and
// every read that returns records from a frame takes one. ReadLent gives its
// references back when the caller releases the records; a buffer whose last
// reference is gone goes back to a pool for the next append. Read keeps its
// references for good: the garbage collector frees those buffers once the
// caller drops the records.

// maxTailPerLog bounds one log's share of the tail cache.
const maxTailPerLog = 16 << 20

// tailShare is what each log may cache now: Options.TailCache shared out
// equally between the open logs, at most maxTailPerLog; 0 when the cache is
// off.
func (e *Engine) tailShare() int64 {
	if e.opts.TailCache <= 0 {
		return 0
	}
	return min(e.opts.TailCache/max(1, e.nlogs.Load()), maxTailPerLog)
}

// frameBuf is a frame buffer with a count of the references to it.
type frameBuf struct {
	b    []byte
	refs atomic.Int32
}

// Buffer sizes come in classes, four to each power of two from 1 KiB on
// (1.25, 1.5, 1.75 and 2 times it), so a frame wastes at most a fifth of its
// buffer. Frames beyond the largest class (14 MiB) get a buffer of their own
// size, not pooled.
const (
	minBufShift = 10
	maxBufShift = 23
	bufClasses  = (maxBufShift - minBufShift + 1) * 4
)

var frameBufPools [bufClasses]sync.Pool

// bufClass returns the smallest class whose size is at least n, and that
// size; class -1 when n is beyond the largest class.
func bufClass(n int) (int, int) {
	if n <= 1<<minBufShift {
		return 0, 1 << minBufShift
	}
	shift := bits.Len(uint(n-1)) - 1 // 2^shift < n <= 2^(shift+1)
	if shift >= maxBufShift+1 {
		return -1, n
	}
	base := 1 << shift
	for q := 1; q <= 4; q++ { // base * (1 + q/4)
		if size := base + q*(base>>2); size >= n {
			c := (shift-minBufShift)*4 + q
			if c >= bufClasses {
				return -1, n
			}
			return c, size
		}
	}
	return -1, n // not reached
}

// getFrameBuf returns a buffer with capacity for n bytes, empty, and with
// no reference counted yet.
func getFrameBuf(n int) *frameBuf {
	c, size := bufClass(n)
	if c >= 0 {
		if tb, ok := frameBufPools[c].Get().(*frameBuf); ok {
			return tb
		}
	}
	return &frameBuf{b: make([]byte, 0, size)}
}

// putFrameBuf returns a buffer nobody references to its pool.
func putFrameBuf(tb *frameBuf) {
	c, size := bufClass(cap(tb.b))
	if c < 0 || size != cap(tb.b) {
		return
	}
	tb.b = tb.b[:0]
	tb.refs.Store(0)
	frameBufPools[c].Put(tb)
}

// unref drops a reference to tb, pooling it when that was the last.
func (tb *frameBuf) unref() {
	if tb.refs.Add(-1) == 0 {
		putFrameBuf(tb)
	}
}

// tailCache is a log's cache, guarded by log.mu.
type tailCache struct {
	frames []tailFrame // by offset, contiguous; the last ends at log.next
	bytes  int64       // of the frames' buffers
}

// tailFrame is one cached frame.
type tailFrame struct {
	first uint64 // offset of the frame's first record
	count int
	time  int64
	body  []byte // the records section
	buf   *frameBuf
}

func (f *tailFrame) end() uint64 { return f.first + uint64(f.count) }

// reset empties the cache.
func (c *tailCache) reset() {
	c.evict(0)
}

// add caches a published round's frames (ops in offset order) and evicts
// the oldest frames beyond limit bytes. It takes the ops' frame buffers.
func (c *tailCache) add(ops []*appendOp, limit int64) {
	for _, op := range ops {
		if op.aead != nil || int64(cap(op.buf.b)) > limit {
			c.reset()
			continue
		}
		if n := len(c.frames); n > 0 && c.frames[n-1].end() != op.res.FirstOffset {
			c.reset()
		}
		tb := op.buf
		op.buf = nil
		tb.refs.Store(1)
		c.frames = append(c.frames, tailFrame{
			first: op.res.FirstOffset,
			count: op.count,
			time:  op.res.Time,
			body:  op.frame[batchHeaderSize:len(op.frame):len(op.frame)],
			buf:   tb,
		})
		c.bytes += int64(cap(tb.b))
	}
	c.evict(limit)
}

// evict drops the oldest frames until the cache holds at most limit bytes.
func (c *tailCache) evict(limit int64) {
	k := 0
	for k < len(c.frames) && c.bytes > limit {
		f := &c.frames[k]
		c.bytes -= int64(cap(f.buf.b))
		f.buf.unref()
		k++
	}
	if k == 0 {
		return
	}
	n := copy(c.frames, c.frames[k:])
	clear(c.frames[n:])
	c.frames = c.frames[:n]
	if cap(c.frames) > 64 && n < cap(c.frames)/4 {
		c.frames = append([]tailFrame(nil), c.frames...)
	}
}

// dropBelow evicts the frames whose records all lie before offset off (they
// were trimmed).
func (c *tailCache) dropBelow(off uint64) {
	k, b := 0, c.bytes
	for k < len(c.frames) && c.frames[k].end() <= off {
		b -= int64(cap(c.frames[k].buf.b))
		k++
	}
	if k > 0 {
		c.evict(b)
	}
}

// covers reports whether the cache holds offset from.
func (c *tailCache) covers(from uint64) bool {
	return len(c.frames) > 0 && from >= c.frames[0].first && from < c.frames[len(c.frames)-1].end()
}

// pick appends to dst the frames a read from offset from needs, taking a
// reference to each: the one holding from, then the following ones until
// they hold maxRecords records or, beyond the first frame (a read's first
// record is returned whatever its size), more than maxBytes bytes.
func (c *tailCache) pick(dst []tailFrame, from uint64, maxRecords, maxBytes int) []tailFrame {
	i := sort.Search(len(c.frames), func(i int) bool { return c.frames[i].end() > from })
	records, bytes := 0, 0
	for ; i < len(c.frames) && records < maxRecords && bytes <= maxBytes; i++ {
		f := &c.frames[i]
		f.buf.refs.Add(1)
		if len(dst) > 0 {
			bytes += len(f.body)
		}
		dst = append(dst, *f)
		records += int(f.end() - max(from, f.first))
	}
	return dst
}

// addFrames adds the records of cached frames.
func (c *collector) addFrames(frames []tailFrame) {
	if c.out == nil {
		n := 0
		for i := range frames {
			n += frames[i].count
		}
		c.out = getStoredRecs(min(n, c.maxRecords))
	}
	for i := range frames {
		f := &frames[i]
		// The body was built by encodeBody in this process: it parses.
		c.add(f.body, f.count, f.first, f.time, 0)
		if c.full {
			return
		}
	}
}

// storedRecs pools the record slices of reads served from the tail cache,
// given back when the reader releases the records (ReadLent).
var storedRecs sync.Pool

func getStoredRecs(n int) []engine.StoredRecord {
	if p, ok := storedRecs.Get().(*[]engine.StoredRecord); ok && cap(*p) >= n {
		return (*p)[:0]
	}
	return make([]engine.StoredRecord, 0, n)
}

// putStoredRecs gives a slice back, dropping what its records point to.
func putStoredRecs(recs []engine.StoredRecord) {
	clear(recs)
	recs = recs[:0]
	storedRecs.Put(&recs)
}
