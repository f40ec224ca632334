package kinesisapi

import (
	"errors"
	"io"
	"math/bits"
	"os"
	"sync"
	"sync/atomic"
)

// Request bodies are read into buffers that grow as bytes arrive, never to a
// length the client merely declares: a client that announces 16 MiB and
// sends one byte costs one small buffer. Buffers come in size classes
// (minBodyBuffer doubled up to 16 MiB), each with its own pool, so the
// steady state of a busy server allocates nothing. All buffers in use
// are charged to one bodyBudget shared by every connection and stream; a
// request that would take the budget past its limit is refused with a
// retryable error instead of pushing the process towards the OOM killer.

const (
	minBodyBuffer = 4 << 10
	bodyClasses   = 13 // 4 KiB << 12 = 16 MiB
)

// growFactor is how much a body buffer grows at a time. A large factor
// keeps the copies few (a 700 KB PutRecords is copied 4 KiB and 64 KiB on
// its way to its final buffer), while a buffer still holds at most
// growFactor times what has arrived.
const growFactor = 16

var bodyPools [bodyClasses]sync.Pool

// bodyClass returns the smallest class holding n bytes, or bodyClasses when
// n is larger than the largest pooled class.
func bodyClass(n int) int {
	if n <= minBodyBuffer {
		return 0
	}
	c := bits.Len(uint(n-1)) - bits.Len(uint(minBodyBuffer-1))
	if c >= bodyClasses {
		return bodyClasses
	}
	return c
}

// getBody returns an empty buffer with capacity of at least n bytes (exactly
// its class size when pooled).
func getBody(n int) *[]byte {
	c := bodyClass(n)
	if c == bodyClasses {
		b := make([]byte, 0, n)
		return &b
	}
	if p, ok := bodyPools[c].Get().(*[]byte); ok {
		*p = (*p)[:0]
		return p
	}
	b := make([]byte, 0, minBodyBuffer<<c)
	return &b
}

// putBody returns p to its pool. Buffers of other sizes (the unpooled ones
// of an over-large limit) are left to the garbage collector.
func putBody(p *[]byte) {
	c := bodyClass(cap(*p))
	if c == bodyClasses || cap(*p) != minBodyBuffer<<c {
		return
	}
	bodyPools[c].Put(p)
}

// bodyBudget is a semaphore counted in bytes: the memory held by the request
// bodies being read or served. It never blocks; a request that does not fit
// is refused.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
}

// tryAcquire takes n bytes and reports whether they fit.
func (b *bodyBudget) tryAcquire(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *bodyBudget) release(n int64) { b.used.Add(-n) }

// Errors of readBody, mapped to the wire by the handler.
var (
	errBodyTooLarge = errors.New("kinesisapi: request body too large")
	errBodyBudget   = errors.New("kinesisapi: request body memory exhausted")
	errBodyTimeout  = errors.New("kinesisapi: request body read timed out")
	errBodyBroken   = errors.New("kinesisapi: request body broken")
)

// body is a request body held in a pooled buffer charged to a budget.
// Release returns both; b must not be used afterwards.
type body struct {
	b      []byte
	p      *[]byte // the pooled slice b is in
	budget *bodyBudget
	held   int64
}

func (bd *body) release() {
	if bd.p != nil {
		putBody(bd.p)
		bd.p, bd.b = nil, nil
	}
	if bd.held != 0 {
		bd.budget.release(bd.held)
		bd.held = 0
	}
}

// grow makes room for at least one more byte, moving the content to a
// buffer growFactor times larger (or of max bytes at most) and charging the
// difference to the budget.
func (bd *body) grow(max int64, declared int64) error {
	want := growFactor * cap(bd.b)
	if want < minBodyBuffer {
		want = minBodyBuffer
	}
	if declared >= 0 && int64(want) > declared {
		// net/http delivers no more than the declared length.
		want = int(declared)
	}
	if int64(want) > max {
		want = int(max)
	}
	np := getBody(want)
	extra := int64(cap(*np)) - bd.held
	if extra > 0 && !bd.budget.tryAcquire(extra) {
		putBody(np)
		return errBodyBudget
	}
	bd.held += extra
	nb := append(*np, bd.b...)
	if bd.p != nil {
		putBody(bd.p)
	}
	bd.b, bd.p = nb, np
	return nil
}

// readBody reads r whole into a pooled buffer, growing it only as bytes
// arrive (to at most growFactor times what arrived, and never past the
// declared length). declared is the Content-Length, or -1 when unknown. A
// body longer than max yields errBodyTooLarge; a read that hits its
// deadline yields errBodyTimeout; any other read error errBodyBroken. The
// caller releases the body, also after an error.
func readBody(r io.Reader, declared, max int64, budget *bodyBudget) (body, error) {
	bd := body{budget: budget}
	for {
		if declared >= 0 && int64(len(bd.b)) == declared {
			// net/http ends a body at its Content-Length; there is nothing
			// more to read, and no reason to grow past it.
			return bd, nil
		}
		if int64(len(bd.b)) == max {
			// Full: one more byte means too large.
			var probe [1]byte
			n, err := io.ReadFull(r, probe[:])
			switch {
			case n > 0:
				return bd, errBodyTooLarge
			case err == io.EOF:
				return bd, nil
			case errors.Is(err, os.ErrDeadlineExceeded):
				return bd, errBodyTimeout
			default:
				return bd, errBodyBroken
			}
		}
		if len(bd.b) == cap(bd.b) {
			if err := bd.grow(max, declared); err != nil {
				return bd, err
			}
		}
		n, err := r.Read(bd.b[len(bd.b):min(int64(cap(bd.b)), max)])
		bd.b = bd.b[:len(bd.b)+n]
		switch {
		case err == io.EOF:
			return bd, nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return bd, errBodyTimeout
		case err != nil:
			return bd, errBodyBroken
		}
	}
}
