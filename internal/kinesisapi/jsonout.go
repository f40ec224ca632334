package kinesisapi

import (
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/runnel/runnel/internal/b64"
	"github.com/runnel/runnel/internal/jsonstr"
	"github.com/runnel/runnel/internal/streams"
)

// This file is a fast path for the largest responses: GetRecords and
// SubscribeToShard events in JSON. It writes the same bytes as encoding/json
// (with SetEscapeHTML(false), as writeOutput uses it) for these shapes, without
// reflection and without building the whole body in memory: the handler first
// counts the body's length (base64 and string lengths are computed, not
// encoded), sends it as Content-Length, and then encodes the body through one
// pooled chunk buffer that is written to the connection whenever it fills.
// A 10 MiB GetRecords answer thus costs no allocation proportional to its
// size. TestGetRecordsJSONMatchesEncodingJSON and FuzzGetRecordsJSON check the
// output against encoding/json byte for byte.

// jsonChunk is the size at which a streaming jsonWriter hands its buffer to
// the connection. Base64 is encoded in pieces of at most 3/4 of it.
const jsonChunk = 128 << 10

// chunkPool holds the chunk buffers of streaming jsonWriters.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 2*jsonChunk)
	return &b
}}

// An answer of jsonBigAnswer bytes or more is written in chunks of
// jsonBigChunk: a quarter of the socket writes, whose cost in the kernel is
// largely per write, for a buffer that stays small next to the answer (and
// to the records read for it). Measured in docs/BENCHMARKS.md.
const (
	jsonBigChunk  = 512 << 10
	jsonBigAnswer = 1 << 20
)

// bigChunkPool holds the chunk buffers of large answers.
var bigChunkPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 2*jsonBigChunk)
	return &b
}}

// jsonWriter writes JSON text in one of three modes: counting (count set:
// only n is kept), streaming (w set: buf is written to w whenever it holds
// chunk bytes or more) or buffering (neither: everything stays in buf).
type jsonWriter struct {
	buf   []byte
	w     io.Writer
	chunk int
	count bool
	n     int   // bytes counted, or written to w
	err   error // the first error from w
	// escaped is set by a counting writer that met a string needing
	// escapes. A writer told (plain) that a counting pass over the same
	// answer met none writes its strings without looking at them again.
	escaped, plain bool
	// ts is the text of the last timestamp written, tsMs its time: the
	// records of a batch share theirs, and a body is walked twice.
	ts    [24]byte
	tsLen int // 0: none yet
	tsMs  int64
}

// raw writes s, which is already JSON text.
func (j *jsonWriter) raw(s string) {
	if j.count {
		j.n += len(s)
		return
	}
	j.buf = append(j.buf, s...)
}

// settle counts what a counting writer appended to buf, or flushes a full
// chunk of a streaming one.
func (j *jsonWriter) settle() {
	if j.count {
		j.n += len(j.buf)
		j.buf = j.buf[:0]
		return
	}
	if j.w != nil && len(j.buf) >= j.chunk {
		j.flush()
	}
}

// flush writes what buf holds to w.
func (j *jsonWriter) flush() {
	if j.w == nil || len(j.buf) == 0 {
		return
	}
	if j.err == nil {
		_, j.err = j.w.Write(j.buf)
	}
	j.n += len(j.buf)
	j.buf = j.buf[:0]
}

func (j *jsonWriter) int(v int64) {
	j.buf = strconv.AppendInt(j.buf, v, 10)
	j.settle()
}

// str writes s as a JSON string.
func (j *jsonWriter) str(s string) {
	switch {
	case j.count && jsonstr.Plain(s):
		j.n += len(s) + 2
		return
	case j.plain:
		j.buf = append(j.buf, '"')
		j.buf = append(j.buf, s...)
		j.buf = append(j.buf, '"')
	default:
		j.escaped = j.escaped || j.count
		j.buf = jsonstr.Append(j.buf, s)
	}
	j.settle()
}

// strPtr writes *s, or null.
func (j *jsonWriter) strPtr(s *string) {
	if s == nil {
		j.raw("null")
		return
	}
	j.str(*s)
}

// blob writes b in base64 as encoding/json does for a []byte: null for nil.
func (j *jsonWriter) blob(b []byte) {
	if b == nil {
		j.raw("null")
		return
	}
	if j.count {
		j.n += base64.StdEncoding.EncodedLen(len(b)) + 2
		return
	}
	j.buf = append(j.buf, '"')
	piece := len(b)
	if j.w != nil {
		piece = max(3, j.chunk/4*3)
	}
	for len(b) > 0 {
		k := min(len(b), piece)
		j.buf = b64.AppendEncode(j.buf, b[:k])
		b = b[k:]
		j.settle()
	}
	j.buf = append(j.buf, '"')
}

// timestamp writes t as streams.Timestamp.MarshalJSON does: epoch seconds,
// the shortest decimal that reads back as float64(ms)/1000. For the times a
// service produces (0 to 10^12 seconds) that is the seconds, then a point and
// the milliseconds without trailing zeros when there are any: float64's
// spacing there is below 0.0002, so no other decimal of at most three
// fraction digits reads back as the same float64.
func (j *jsonWriter) timestamp(t streams.Timestamp) {
	ms := t.UnixMilli()
	if j.tsLen == 0 || ms != j.tsMs {
		j.tsLen, j.tsMs = 0, ms
		if b := appendTimestamp(j.ts[:0], ms); len(b) <= len(j.ts) {
			j.tsLen = len(b)
		} else { // longer than any time it is given in practice
			j.buf = append(j.buf, b...)
			j.settle()
			return
		}
	}
	if j.count {
		j.n += j.tsLen
		return
	}
	j.buf = append(j.buf, j.ts[:j.tsLen]...)
	j.settle()
}

// appendTimestamp appends the text of a timestamp of ms Unix milliseconds
// (jsonWriter.timestamp).
func appendTimestamp(b []byte, ms int64) []byte {
	if ms < 0 || ms >= 1e15 {
		return strconv.AppendFloat(b, float64(ms)/1000, 'f', -1, 64)
	}
	b = strconv.AppendUint(b, uint64(ms/1000), 10)
	if f := ms % 1000; f != 0 {
		d := [4]byte{'.', byte('0' + f/100), byte('0' + f/10%10), byte('0' + f%10)}
		n := 4
		for d[n-1] == '0' {
			n--
		}
		b = append(b, d[:n]...)
	}
	return b
}

func (j *jsonWriter) records(recs []streams.Record) {
	if recs == nil {
		j.raw("null")
		return
	}
	j.raw("[")
	for i := range recs {
		r := &recs[i]
		if i > 0 {
			j.raw(",")
		}
		j.raw(`{"SequenceNumber":`)
		j.str(r.SequenceNumber)
		j.raw(`,"ApproximateArrivalTimestamp":`)
		j.timestamp(r.ApproximateArrivalTimestamp)
		j.raw(`,"Data":`)
		j.blob(r.Data)
		j.raw(`,"PartitionKey":`)
		j.str(r.PartitionKey)
		if r.EncryptionType != nil {
			j.raw(`,"EncryptionType":`)
			j.str(*r.EncryptionType)
		}
		j.raw("}")
	}
	j.raw("]")
}

// childShards writes a non-empty ChildShards member (it is omitempty).
func (j *jsonWriter) childShards(cs []streams.ChildShard) {
	if len(cs) == 0 {
		return
	}
	j.raw(`,"ChildShards":[`)
	for i := range cs {
		c := &cs[i]
		if i > 0 {
			j.raw(",")
		}
		j.raw(`{"ShardId":`)
		j.str(c.ShardId)
		j.raw(`,"ParentShards":`)
		if c.ParentShards == nil {
			j.raw("null")
		} else {
			j.raw("[")
			for k, p := range c.ParentShards {
				if k > 0 {
					j.raw(",")
				}
				j.str(p)
			}
			j.raw("]")
		}
		j.raw(`,"HashKeyRange":{"StartingHashKey":`)
		j.str(c.HashKeyRange.StartingHashKey)
		j.raw(`,"EndingHashKey":`)
		j.str(c.HashKeyRange.EndingHashKey)
		j.raw("}}")
	}
	j.raw("]")
}

// getRecords writes a GetRecords output.
func (j *jsonWriter) getRecords(out *streams.GetRecordsOutput) {
	j.raw(`{"Records":`)
	j.records(out.Records)
	if out.NextShardIterator != nil {
		j.raw(`,"NextShardIterator":`)
		j.str(*out.NextShardIterator)
	}
	j.raw(`,"MillisBehindLatest":`)
	j.int(out.MillisBehindLatest)
	j.childShards(out.ChildShards)
	j.raw("}")
}

// subscribeEvent writes a SubscribeToShardEvent.
func (j *jsonWriter) subscribeEvent(ev *streams.SubscribeToShardEvent) {
	j.raw(`{"Records":`)
	j.records(ev.Records)
	if ev.ContinuationSequenceNumber != nil {
		j.raw(`,"ContinuationSequenceNumber":`)
		j.str(*ev.ContinuationSequenceNumber)
	}
	j.raw(`,"MillisBehindLatest":`)
	j.int(ev.MillisBehindLatest)
	j.childShards(ev.ChildShards)
	j.raw("}")
}

// appendGetRecordsJSON appends out's JSON encoding to dst.
func appendGetRecordsJSON(dst []byte, out *streams.GetRecordsOutput) []byte {
	j := jsonWriter{buf: dst}
	j.getRecords(out)
	return j.buf
}

// appendSubscribeEventJSON appends ev's JSON encoding to dst.
func appendSubscribeEventJSON(dst []byte, ev *streams.SubscribeToShardEvent) []byte {
	j := jsonWriter{buf: dst}
	j.subscribeEvent(ev)
	return j.buf
}

// getRecordsJSONLen returns the length of out's JSON encoding, and whether
// its strings need no escapes (jsonWriter.plain).
func getRecordsJSONLen(out *streams.GetRecordsOutput) (int, bool) {
	j := jsonWriter{count: true, buf: make([]byte, 0, 64)}
	j.getRecords(out)
	return j.n, !j.escaped
}

// writeGetRecordsJSON answers with out in JSON, streamed through a pooled
// chunk buffer after a Content-Length computed beforehand.
func (x *exchange) writeGetRecordsJSON(out *streams.GetRecordsOutput) {
	n, plain := getRecordsJSONLen(out)
	hdr := x.w.Header()
	hdr.Set("Content-Type", x.proto.contentType())
	hdr.Set("Content-Length", strconv.Itoa(n))
	x.status = http.StatusOK
	x.w.WriteHeader(http.StatusOK)
	pool, chunk := &chunkPool, jsonChunk
	if n >= jsonBigAnswer {
		pool, chunk = &bigChunkPool, jsonBigChunk
	}
	bp := pool.Get().(*[]byte)
	j := jsonWriter{buf: (*bp)[:0], w: x.w, chunk: chunk, plain: plain}
	j.getRecords(out)
	j.flush()
	// A write error means the client went away; nothing more can be sent.
	if cap(j.buf) <= 4*chunk {
		*bp = j.buf[:0]
		pool.Put(bp)
	}
}

// putRecords writes a PutRecords answer as encoding/json does.
func (j *jsonWriter) putRecords(out *streams.PutRecordsOutput) {
	j.raw(`{"FailedRecordCount":`)
	j.int(int64(out.FailedRecordCount))
	j.raw(`,"Records":`)
	if out.Records == nil {
		j.raw("null")
	} else {
		j.raw("[")
		for i := range out.Records {
			r := &out.Records[i]
			if i > 0 {
				j.raw(",")
			}
			sep := "{"
			member := func(name string, v *string) {
				if v != nil {
					j.raw(sep)
					j.raw(name)
					j.str(*v)
					sep = ","
				}
			}
			member(`"SequenceNumber":`, r.SequenceNumber)
			member(`"ShardId":`, r.ShardId)
			member(`"ErrorCode":`, r.ErrorCode)
			member(`"ErrorMessage":`, r.ErrorMessage)
			if sep == "{" {
				j.raw("{")
			}
			j.raw("}")
		}
		j.raw("]")
	}
	if out.EncryptionType != nil {
		j.raw(`,"EncryptionType":`)
		j.str(*out.EncryptionType)
	}
	j.raw("}")
}

// appendPutRecordsJSON appends the JSON of a PutRecords answer to b.
func appendPutRecordsJSON(b []byte, out *streams.PutRecordsOutput) []byte {
	j := jsonWriter{buf: b}
	j.putRecords(out)
	return j.buf
}

// writePutRecordsJSON answers PutRecords in JSON without reflection: the
// answer of a 500-record call is some 50 KB of sequence numbers and shard
// ids.
func (x *exchange) writePutRecordsJSON(out *streams.PutRecordsOutput) {
	bp := chunkPool.Get().(*[]byte)
	b := appendPutRecordsJSON((*bp)[:0], out)
	x.writeRaw(http.StatusOK, x.proto.contentType(), b)
	if cap(b) <= 4*jsonChunk {
		*bp = b[:0]
		chunkPool.Put(bp)
	}
}
