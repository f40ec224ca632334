package kinesisapi

import (
	"encoding/base64"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/runnel/runnel/internal/b64"
	"github.com/runnel/runnel/internal/streams"
)

// This file is a fast path for the hottest request: PutRecords in JSON. It
// decodes the plain, common form of the body (the members StreamName,
// StreamARN and Records; records with Data, PartitionKey and ExplicitHashKey;
// strings without escapes) in one pass, decoding every Data member into one
// shared allocation. Anything else (an escape, an unknown or repeated member,
// a wrong type, bad base64, invalid UTF-8, a syntax error) makes it give up,
// and the complete decoder (typecheck.go) decodes the body instead, with
// Kinesis' error reporting. The result is exactly what the complete decoder
// would produce; FuzzFastPutRecords checks that.

// fastPutRecords decodes body into in and reports whether it could.
func fastPutRecords(body []byte, in *streams.PutRecordsInput) bool {
	return fastPutRecordsWith(body, in, nil)
}

// fastPutRecordsWith is fastPutRecords with the Records slice and the
// decoded Data taken from sc when sc is not nil: in then aliases sc's memory
// until sc is released.
func fastPutRecordsWith(body []byte, in *streams.PutRecordsInput, sc *putScratch) bool {
	d := fastDecoder{b: body, sc: sc}
	if !d.putRecords(in) {
		*in = streams.PutRecordsInput{}
		return false
	}
	return true
}

// putScratch is memory a PutRecords request borrows for its decoded input:
// the Records slice and one buffer holding every record's Data. Reusing it
// spares each request two allocations proportional to its size (the Data
// buffer is half a MiB for 500 records of 1 KiB, and Go zeroes every new
// one). The Backend does not keep an input's slices after it returns
// (Backend's contract), so the handler releases the scratch once the
// response is written.
type putScratch struct {
	data []byte
	recs []streams.PutRecordsRequestEntry
}

// maxPooledScratch bounds the Data buffer a released scratch keeps.
const maxPooledScratch = 4 << 20

var putScratchPool = sync.Pool{New: func() any { return new(putScratch) }}

// scratchFor returns a scratch for a request of op in p, or nil when the
// request does not use one. release accepts nil.
func scratchFor(op *operation, p protocol) *putScratch {
	if p != protoJSON || op.name != "PutRecords" {
		return nil
	}
	return putScratchPool.Get().(*putScratch)
}

// release returns sc to the pool; nothing decoded with it may be used after.
func (sc *putScratch) release() {
	if sc == nil {
		return
	}
	clear(sc.recs[:cap(sc.recs)]) // drop the pointers to this request's strings
	if cap(sc.data) > maxPooledScratch {
		sc.data = nil
	}
	sc.data = sc.data[:0]
	putScratchPool.Put(sc)
}

type fastDecoder struct {
	b   []byte
	i   int
	buf []byte // where Data members are decoded to
	sc  *putScratch

	// Decoded strings are carved from arena, a block that is never written
	// again once a string points into it (so the strings stay immutable
	// whatever becomes of the request), and their headers from strs, a block
	// that is never grown, so the *string pointers handed out stay put.
	arena []byte
	strs  []string
}

// newString returns a pointer to a string holding a copy of b.
func (d *fastDecoder) newString(b []byte) *string {
	if len(d.strs) == cap(d.strs) {
		d.strs = make([]string, 0, 64)
	}
	var s string
	if len(b) > 0 {
		if cap(d.arena)-len(d.arena) < len(b) {
			d.arena = make([]byte, 0, max(4096, len(b)))
		}
		k := len(d.arena)
		d.arena = append(d.arena, b...)
		s = unsafe.String(&d.arena[k], len(b))
	}
	d.strs = append(d.strs, s)
	return &d.strs[len(d.strs)-1]
}

func (d *fastDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\r', '\n':
			d.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, reporting whether c was there.
func (d *fastDecoder) consume(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// peek skips whitespace and returns the next byte (0 at the end).
func (d *fastDecoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// null consumes the literal null.
func (d *fastDecoder) null() bool {
	d.ws()
	if len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// rawString returns the bytes of a string without escapes, or ok=false.
func (d *fastDecoder) rawString() ([]byte, bool) {
	if !d.consume('"') {
		return nil, false
	}
	start := d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return nil, false
}

// optString decodes a string or null into *dst.
func (d *fastDecoder) optString(dst **string) bool {
	if d.peek() == 'n' {
		if !d.null() {
			return false
		}
		*dst = nil
		return true
	}
	s, ok := d.rawString()
	if !ok {
		return false
	}
	*dst = d.newString(s)
	return true
}

func (d *fastDecoder) putRecords(in *streams.PutRecordsInput) bool {
	ok := d.object(func(k []byte) (uint8, bool) {
		switch string(k) {
		case "StreamName":
			return 1, d.optString(&in.StreamName)
		case "StreamARN":
			return 2, d.optString(&in.StreamARN)
		case "Records":
			return 4, d.records(in)
		}
		return 0, false
	})
	if !ok {
		return false
	}
	d.ws()
	return d.i == len(d.b)
}

func (d *fastDecoder) records(in *streams.PutRecordsInput) bool {
	if d.peek() == 'n' {
		in.Records = nil
		return d.null()
	}
	if !d.consume('[') {
		return false
	}
	// Size the shared Data buffer from the rest of the body: decoded base64
	// is at most 3/4 of it.
	need := base64.StdEncoding.DecodedLen(len(d.b) - d.i)
	var recs []streams.PutRecordsRequestEntry
	if sc := d.sc; sc != nil {
		if cap(sc.data) < need {
			sc.data = make([]byte, 0, need)
		}
		if sc.recs == nil {
			sc.recs = make([]streams.PutRecordsRequestEntry, 0, 64)
		}
		d.buf = sc.data[:0]
		recs = sc.recs[:0]
	} else {
		d.buf = make([]byte, 0, need)
		recs = make([]streams.PutRecordsRequestEntry, 0, 16)
	}
	if d.peek() != ']' {
		for {
			var e streams.PutRecordsRequestEntry
			if !d.entry(&e) {
				return false
			}
			recs = append(recs, e)
			if d.consume(',') {
				continue
			}
			break
		}
	}
	if d.sc != nil {
		d.sc.recs = recs
	}
	if !d.consume(']') {
		return false
	}
	in.Records = recs
	return true
}

func (d *fastDecoder) entry(e *streams.PutRecordsRequestEntry) bool {
	return d.object(func(k []byte) (uint8, bool) {
		switch string(k) {
		case "Data":
			return 1, d.data(e)
		case "PartitionKey":
			return 2, d.optString(&e.PartitionKey)
		case "ExplicitHashKey":
			return 4, d.optString(&e.ExplicitHashKey)
		}
		return 0, false
	})
}

// object reads an object whose members member decodes: it returns the
// member's bit (distinct per known name) and whether its value decoded,
// and false for a name it does not know. A member seen twice, like any
// other surprise, makes object report false (the caller then falls back to
// the complete decoder).
func (d *fastDecoder) object(member func(name []byte) (bit uint8, ok bool)) bool {
	if !d.consume('{') {
		return false
	}
	var seen uint8
	if d.peek() != '}' {
		for {
			k, ok := d.rawString()
			if !ok || !d.consume(':') {
				return false
			}
			bit, ok := member(k)
			if !ok || seen&bit != 0 {
				return false
			}
			seen |= bit
			if !d.consume(',') {
				break
			}
		}
	}
	return d.consume('}')
}

// data decodes a base64 Data member into the shared buffer: canonical
// standard base64 with padding, as the complete decoder accepts; an empty
// string is an empty (not nil) slice, null is nil.
func (d *fastDecoder) data(e *streams.PutRecordsRequestEntry) bool {
	if d.peek() == 'n' {
		e.Data = nil
		return d.null()
	}
	// One pass finds the closing quote and decodes up to it, refusing every
	// byte outside the base64 alphabet and its padding: escapes and control
	// characters, CR and LF included, which the standard decoder would skip
	// but JSON does not allow raw in a string.
	if !d.consume('"') {
		return false
	}
	// The spare room of the buffer covers the whole body, so DecodeQuoted
	// never refuses for want of room.
	dst := d.buf[len(d.buf):cap(d.buf)]
	m, end, ok := b64.DecodeQuoted(dst, d.b[d.i:])
	if !ok {
		return false
	}
	d.i += end + 1
	// Three-index slice: an append by the owner cannot run into the next
	// record's bytes.
	e.Data = dst[:m:m]
	d.buf = d.buf[:len(d.buf)+m]
	return true
}
