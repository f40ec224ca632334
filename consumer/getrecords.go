package consumer

import (
	"github.com/runnel/runnel/internal/jsonscan"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	smithytime "github.com/aws/smithy-go/time"
	"github.com/segmentio/asm/base64"
)

// recordsDecoder decodes GetRecords answers into what the SDK would have
// returned. It reads the members of GetRecordsOutput in one pass over the
// text and keeps its scratch space from answer to answer; an answer it
// does not expect (an unknown member, a string with escapes, a number of
// another form) it hands to encoding/json instead. One decoder serves one
// goroutine.
//
// The output owns its memory: the records' data share one slab and their
// partition keys and sequence numbers one string, all allocated per
// answer, so nothing the caller keeps refers to the answer's text.
type recordsDecoder struct {
	s       jsonScanner
	recs    []scratchRecord
	strs    []byte // partition keys and sequence numbers, back to back
	lastTS  []byte // the last ApproximateArrivalTimestamp text and its value
	lastT   time.Time
	hasLast bool
}

// span is a string's place in recordsDecoder.strs; off < 0 means null or absent.
type span struct{ off, end int }

var noSpan = span{-1, -1}

// scratchRecord is one record while the answer is read.
type scratchRecord struct {
	data    []byte // in the answer's slab; nil when absent or null
	key     span
	seq     span
	ts      time.Time
	hasTS   bool
	enc     types.EncryptionType
	encNull bool
}

// decode returns the GetRecordsOutput of an answer's body.
func (d *recordsDecoder) decode(b []byte) (*kinesis.GetRecordsOutput, error) {
	if out, ok := d.scan(b); ok {
		return out, nil
	}
	return decodeGetRecordsJSON(b)
}

// scan reads b the fast way, reporting false for anything it does not
// expect.
func (d *recordsDecoder) scan(b []byte) (*kinesis.GetRecordsOutput, bool) {
	d.s = jsonScanner{jsonscan.Scanner{B: b}}
	d.recs, d.strs = d.recs[:0], d.strs[:0]
	out := &kinesis.GetRecordsOutput{}
	var slab []byte // decoded data; base64 never decodes to more than 3/4 of its text
	// A member named twice goes to encoding/json, whose way of merging
	// the two arrays is its own.
	var seenRecords, sawRecords, seenChildren bool
	ok := d.s.Object(func(key []byte) bool {
		switch string(key) {
		case "Records":
			if seenRecords {
				return false
			}
			seenRecords = true
			if d.s.Null() {
				return true
			}
			slab = make([]byte, 0, len(b)*3/4)
			sawRecords = true
			var ok bool
			slab, ok = d.records(slab)
			return ok
		case "NextShardIterator":
			v, ok := d.s.StrOrNull()
			if !ok {
				return false
			}
			out.NextShardIterator = nil
			if v != nil {
				it := string(v)
				out.NextShardIterator = &it
			}
			return true
		case "MillisBehindLatest":
			if d.s.Null() {
				out.MillisBehindLatest = nil
				return true
			}
			v, ok := d.s.Number()
			if !ok || bytes.ContainsAny(v, ".eE") {
				return false
			}
			n, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return false
			}
			out.MillisBehindLatest = &n
			return true
		case "ChildShards":
			if seenChildren {
				return false
			}
			seenChildren = true
			cs, ok := d.childShards()
			out.ChildShards = cs
			return ok
		}
		return false
	})
	if !ok || !d.s.End() {
		return nil, false
	}
	if sawRecords {
		out.Records = d.build()
	}
	return out, true
}

// records reads the Records array into d.recs, decoding data into slab.
func (d *recordsDecoder) records(slab []byte) ([]byte, bool) {
	s := &d.s
	ok := s.Array(func() bool {
		r := scratchRecord{key: noSpan, seq: noSpan}
		ok := s.Object(func(key []byte) bool {
			switch string(key) {
			case "Data":
				if s.Null() {
					r.data = nil
					return true
				}
				v, ok := s.RawStr()
				if !ok {
					return false
				}
				start := len(slab)
				if cap(slab)-start < base64.StdEncoding.DecodedLen(len(v)) {
					return false
				}
				n, err := base64.StdEncoding.Decode(slab[start:cap(slab)], v)
				if err != nil {
					return false
				}
				slab = slab[:start+n]
				r.data = slab[start : start+n : start+n]
				return true
			case "PartitionKey":
				return d.str(&r.key)
			case "SequenceNumber":
				return d.str(&r.seq)
			case "ApproximateArrivalTimestamp":
				if s.Null() {
					r.hasTS = false
					return true
				}
				v, ok := s.Number()
				if !ok {
					return false
				}
				t, ok := d.timestamp(v)
				r.ts, r.hasTS = t, ok
				return ok
			case "EncryptionType":
				v, ok := s.StrOrNull()
				if !ok {
					return false
				}
				r.enc, r.encNull = encryptionType(v), v == nil
				return true
			}
			return false
		})
		d.recs = append(d.recs, r)
		return ok
	})
	return slab, ok
}

// str reads a string or null into d.strs.
func (d *recordsDecoder) str(sp *span) bool {
	v, ok := d.s.StrOrNull()
	if !ok {
		return false
	}
	if v == nil {
		*sp = noSpan
		return true
	}
	sp.off = len(d.strs)
	d.strs = append(d.strs, v...)
	sp.end = len(d.strs)
	return true
}

// timestamp converts epoch seconds as the SDK does; records of one answer
// mostly share their arrival time, so the last one is remembered.
func (d *recordsDecoder) timestamp(v []byte) (time.Time, bool) {
	if d.hasLast && bytes.Equal(v, d.lastTS) {
		return d.lastT, true
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil {
		return time.Time{}, false
	}
	d.lastT, d.hasLast = smithytime.ParseEpochSeconds(f), true
	d.lastTS = append(d.lastTS[:0], v...)
	return d.lastT, true
}

// encryptionType returns the type named v without allocating for the two
// Kinesis knows.
func encryptionType(v []byte) types.EncryptionType {
	switch string(v) {
	case "":
		return ""
	case "NONE":
		return types.EncryptionTypeNone
	case "KMS":
		return types.EncryptionTypeKms
	}
	return types.EncryptionType(v)
}

// build turns d.recs into records: one string holds all partition keys and
// sequence numbers, one slice the pointers to them, one the times.
func (d *recordsDecoder) build() []types.Record {
	all := string(d.strs)
	recs := make([]types.Record, len(d.recs))
	strs := make([]string, 0, 2*len(d.recs))
	var times []time.Time
	ref := func(sp span) *string {
		if sp.off < 0 {
			return nil
		}
		strs = append(strs, all[sp.off:sp.end])
		return &strs[len(strs)-1]
	}
	for i, r := range d.recs {
		recs[i] = types.Record{Data: r.data, PartitionKey: ref(r.key), SequenceNumber: ref(r.seq)}
		if !r.encNull {
			recs[i].EncryptionType = r.enc
		}
		if r.hasTS {
			if times == nil {
				times = make([]time.Time, 0, len(d.recs)-i)
			}
			times = append(times, r.ts)
			recs[i].ApproximateArrivalTimestamp = &times[len(times)-1]
		}
	}
	return recs
}

// childShards reads the ChildShards array (short and rare: plainly).
func (d *recordsDecoder) childShards() ([]types.ChildShard, bool) {
	s := &d.s
	if s.Null() {
		return nil, true
	}
	cs := []types.ChildShard{}
	ok := s.Array(func() bool {
		var c types.ChildShard
		ok := s.Object(func(key []byte) bool {
			switch string(key) {
			case "ShardId":
				return s.stringPtr(&c.ShardId)
			case "ParentShards":
				if s.Null() {
					c.ParentShards = nil
					return true
				}
				c.ParentShards = []string{}
				return s.Array(func() bool {
					v, ok := s.Str()
					c.ParentShards = append(c.ParentShards, string(v))
					return ok
				})
			case "HashKeyRange":
				if s.Null() {
					c.HashKeyRange = nil
					return true
				}
				h := &types.HashKeyRange{}
				c.HashKeyRange = h
				return s.Object(func(key []byte) bool {
					switch string(key) {
					case "StartingHashKey":
						return s.stringPtr(&h.StartingHashKey)
					case "EndingHashKey":
						return s.stringPtr(&h.EndingHashKey)
					}
					return false
				})
			}
			return false
		})
		cs = append(cs, c)
		return ok
	})
	return cs, ok
}

// decodeGetRecordsJSON decodes an answer with encoding/json, for answers
// the fast path does not take. Like the SDK, and unlike encoding/json's
// own matching of struct fields, it reads members by their exact names
// and skips others; an empty body is an empty answer, null none.
func decodeGetRecordsJSON(b []byte) (*kinesis.GetRecordsOutput, error) {
	if len(b) == 0 {
		return &kinesis.GetRecordsOutput{}, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, err
	}
	if top == nil {
		return nil, errors.New("answer is null")
	}
	out := &kinesis.GetRecordsOutput{}
	var recs []map[string]json.RawMessage
	var children []map[string]json.RawMessage
	if err := members(top, map[string]any{
		"Records": &recs, "NextShardIterator": &out.NextShardIterator,
		"MillisBehindLatest": &out.MillisBehindLatest, "ChildShards": &children,
	}); err != nil {
		return nil, err
	}
	if recs != nil {
		out.Records = make([]types.Record, len(recs))
	}
	for i, m := range recs {
		r := &out.Records[i]
		var ts *float64
		var enc *string
		if err := members(m, map[string]any{
			"Data": &r.Data, "PartitionKey": &r.PartitionKey, "SequenceNumber": &r.SequenceNumber,
			"ApproximateArrivalTimestamp": &ts, "EncryptionType": &enc,
		}); err != nil {
			return nil, err
		}
		if enc != nil {
			r.EncryptionType = types.EncryptionType(*enc)
		}
		if ts != nil {
			t := smithytime.ParseEpochSeconds(*ts)
			r.ApproximateArrivalTimestamp = &t
		}
	}
	if children != nil {
		out.ChildShards = make([]types.ChildShard, len(children))
	}
	for i, m := range children {
		c := &out.ChildShards[i]
		var hkr map[string]json.RawMessage
		if err := members(m, map[string]any{"ShardId": &c.ShardId, "ParentShards": &c.ParentShards, "HashKeyRange": &hkr}); err != nil {
			return nil, err
		}
		if hkr != nil {
			c.HashKeyRange = &types.HashKeyRange{}
			if err := members(hkr, map[string]any{"StartingHashKey": &c.HashKeyRange.StartingHashKey, "EndingHashKey": &c.HashKeyRange.EndingHashKey}); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// members decodes the members of m named in dst into the values dst points
// to.
func members(m map[string]json.RawMessage, dst map[string]any) error {
	for name, v := range dst {
		if raw, ok := m[name]; ok {
			if err := json.Unmarshal(raw, v); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	return nil
}

// jsonScanner is the shared JSON cursor with what only GetRecords answers
// need.
type jsonScanner struct{ jsonscan.Scanner }

// stringPtr reads a string or null into *p.
func (s *jsonScanner) stringPtr(p **string) bool {
	v, ok := s.StrOrNull()
	if !ok {
		return false
	}
	*p = nil
	if v != nil {
		str := string(v)
		*p = &str
	}
	return true
}
