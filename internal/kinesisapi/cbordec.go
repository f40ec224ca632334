package kinesisapi

import (
	"encoding/binary"
	"math"
	"math/big"
	"reflect"
	"unicode/utf8"

	"github.com/runnel/runnel/internal/streams"
)

// This file converts a CBOR 1.1 request body to an input struct in one pass
// over the bytes, led by the operation's shape: each map member the model
// declares is converted to its model type as it is met (with the messages
// of typecheck.go), every other item is skipped. It never builds an
// intermediate tree, so a PutRecords of 500 records costs about what a
// reflection-driven decoder costs. The body is checked to be well formed
// (fxamacker/cbor, with the package's limits) before the walk, so the walk
// never reads past the end.
//
// CBOR items (RFC 8949): a head byte holds the major type (top 3 bits) and
// additional information (low 5 bits): 0-23 is the argument itself, 24-27
// say it follows in 1, 2, 4 or 8 bytes, 31 starts an indefinite-length
// string, array or map that a 0xff "break" ends.

// decodeCBOR decodes body into v (a pointer to an input struct of shape s).
func decodeCBOR(s *shape, body []byte, v reflect.Value) *apiError {
	if cborTree.Wellformed(body) != nil {
		return bareError(ErrSerialization)
	}
	d := cborDecoder{b: body}
	return d.value(s, v)
}

// cborDecoder walks a well-formed CBOR item.
type cborDecoder struct {
	b []byte
	i int
	// slab holds decoded blobs: they are carved from it and never written
	// again, so one allocation serves every Data member of a request.
	slab []byte
}

const (
	cborUint   = 0
	cborNegInt = 1
	cborBytes  = 2
	cborText   = 3
	cborArray  = 4
	cborMap    = 5
	cborTag    = 6
	cborSimple = 7

	cborIndefinite = 31
	cborBreak      = 0xff
)

// head reads an item's head: its major type, additional information and
// argument (the length, count, value or tag number).
func (d *cborDecoder) head() (major, info byte, arg uint64) {
	c := d.b[d.i]
	d.i++
	major, info = c>>5, c&0x1f
	switch {
	case info < 24:
		arg = uint64(info)
	case info == 24:
		arg = uint64(d.b[d.i])
		d.i++
	case info == 25:
		arg = uint64(binary.BigEndian.Uint16(d.b[d.i:]))
		d.i += 2
	case info == 26:
		arg = uint64(binary.BigEndian.Uint32(d.b[d.i:]))
		d.i += 4
	case info == 27:
		arg = binary.BigEndian.Uint64(d.b[d.i:])
		d.i += 8
	}
	return major, info, arg
}

// peekMajor returns the major type and additional information of the next
// item without consuming it.
func (d *cborDecoder) peekMajor() (major, info byte) {
	c := d.b[d.i]
	return c >> 5, c & 0x1f
}

// isNull reports (and consumes) a null or undefined item.
func (d *cborDecoder) isNull() bool {
	if c := d.b[d.i]; c == 0xf6 || c == 0xf7 {
		d.i++
		return true
	}
	return false
}

// skip consumes one whole item.
func (d *cborDecoder) skip() {
	major, info, arg := d.head()
	switch major {
	case cborBytes, cborText:
		if info == cborIndefinite {
			for d.b[d.i] != cborBreak {
				d.skip()
			}
			d.i++
			return
		}
		d.i += int(arg)
	case cborArray, cborMap:
		n := arg
		if major == cborMap {
			n *= 2
		}
		if info == cborIndefinite {
			for d.b[d.i] != cborBreak {
				d.skip()
			}
			d.i++
			return
		}
		for ; n > 0; n-- {
			d.skip()
		}
	case cborTag:
		d.skip()
	}
}

// stringBytes reads a byte or text string's content. A definite-length
// string's bytes alias the body; an indefinite one's chunks are joined.
func (d *cborDecoder) stringBytes() []byte {
	_, info, arg := d.head()
	if info != cborIndefinite {
		b := d.b[d.i : d.i+int(arg)]
		d.i += int(arg)
		return b
	}
	var out []byte
	for d.b[d.i] != cborBreak {
		_, _, n := d.head()
		out = append(out, d.b[d.i:d.i+int(n)]...)
		d.i += int(n)
	}
	d.i++
	return out
}

// collection reads an array's or map's head: the count, or -1 for an
// indefinite length.
func (d *cborDecoder) collection() int {
	_, info, arg := d.head()
	if info == cborIndefinite {
		return -1
	}
	return int(arg) // bounded by the body's length: the body is well formed
}

// more reports whether a collection with n items left (or -1) has another.
func (d *cborDecoder) more(n *int) bool {
	if *n < 0 {
		if d.b[d.i] == cborBreak {
			d.i++
			return false
		}
		return true
	}
	if *n == 0 {
		return false
	}
	*n--
	return true
}

// value converts the next item to s's model type into v (the Go field,
// possibly a pointer). Null leaves v at its zero value.
func (d *cborDecoder) value(s *shape, v reflect.Value) *apiError {
	if d.isNull() {
		return nil
	}
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if aerr := d.value(s, p.Elem()); aerr != nil {
			return aerr
		}
		v.Set(p)
		return nil
	}
	major, _ := d.peekMajor()
	switch s.kind {
	case kindStruct:
		if major != cborMap {
			return d.mismatch("Structure")
		}
		for n := d.collection(); d.more(&n); {
			if m, _ := d.peekMajor(); m != cborText {
				return bareError(ErrSerialization)
			}
			name := d.stringBytes()
			mb := s.member(name)
			if mb == nil {
				d.skip()
				continue
			}
			if aerr := d.value(&mb.shape, v.Field(mb.index)); aerr != nil {
				return aerr
			}
		}
	case kindList:
		if major != cborArray {
			return d.mismatch("List")
		}
		n := d.collection()
		out := reflect.MakeSlice(v.Type(), 0, max(n, 0))
		for d.more(&n) {
			out = reflect.Append(out, reflect.Zero(v.Type().Elem()))
			if aerr := d.value(s.elem, out.Index(out.Len()-1)); aerr != nil {
				return aerr
			}
		}
		v.Set(out)
	case kindMap:
		if major != cborMap {
			return d.mismatch("Map")
		}
		n := d.collection()
		out := reflect.MakeMapWithSize(v.Type(), max(n, 0))
		for d.more(&n) {
			if m, _ := d.peekMajor(); m != cborText {
				return bareError(ErrSerialization)
			}
			k := d.stringBytes()
			if !utf8.Valid(k) {
				return bareError(ErrSerialization)
			}
			ev := reflect.New(v.Type().Elem()).Elem()
			if aerr := d.value(s.elem, ev); aerr != nil {
				return aerr
			}
			out.SetMapIndex(reflect.ValueOf(string(k)).Convert(v.Type().Key()), ev)
		}
		v.Set(out)
	case kindString:
		if major != cborText {
			return d.mismatch("String")
		}
		b := d.stringBytes()
		if !utf8.Valid(b) {
			return bareError(ErrSerialization)
		}
		v.SetString(string(b))
	case kindBool:
		c := d.b[d.i]
		if c != 0xf4 && c != 0xf5 {
			return d.mismatch("Boolean")
		}
		d.i++
		v.SetBool(c == 0xf5)
	case kindInt, kindLong:
		lo, hi, javaName := int64(math.MinInt32), int64(math.MaxInt32), "Integer"
		if s.kind == kindLong && v.Kind() == reflect.Int64 {
			lo, hi, javaName = math.MinInt64, math.MaxInt64, "Long"
		}
		x, ok := d.number()
		if !ok {
			return d.mismatch(javaName)
		}
		n, _ := truncate(x, lo, hi)
		v.SetInt(n)
	case kindBlob:
		if major != cborBytes {
			return d.mismatch("Blob")
		}
		b := d.stringBytes()
		if len(b) == 0 {
			v.SetBytes([]byte{}) // present, not null
			break
		}
		if cap(d.slab)-len(d.slab) < len(b) {
			d.slab = make([]byte, 0, max(len(b), len(d.b)-d.i))
		}
		k := len(d.slab)
		d.slab = append(d.slab, b...)
		v.SetBytes(d.slab[k:len(d.slab):len(d.slab)])
	case kindTimestamp:
		start := d.i
		if major == cborTag {
			// Tag 1 (epoch time), however its head is encoded; any other
			// tag is refused below.
			if _, _, num := d.head(); num != 1 {
				d.i = start
			} else if d.isNull() {
				d.i = start
				return d.mismatch("Timestamp")
			}
		}
		x, ok := d.number()
		if !ok {
			return d.mismatch("Timestamp") // names the tag's content
		}
		var ms int64
		switch n := x.(type) {
		case jsonNumber:
			ms, _ = truncate(n, math.MinInt64, math.MaxInt64)
		case float64:
			if math.IsNaN(n) {
				d.i = start
				return bareError(ErrSerialization)
			}
			ms = secondsToMillis(n)
		}
		v.Set(reflect.ValueOf(streams.TimestampMillis(ms)))
	}
	return nil
}

// number reads an integer, bignum or float item as a jsonNumber (integers)
// or float64, or reports false (consuming nothing) for any other item.
func (d *cborDecoder) number() (any, bool) {
	start := d.i
	major, info, arg := d.head()
	switch major {
	case cborUint:
		return jsonNumber(new(big.Int).SetUint64(arg).String()), true
	case cborNegInt:
		n := new(big.Int).SetUint64(arg)
		return jsonNumber(n.Neg(n.Add(n, big.NewInt(1))).String()), true
	case cborTag:
		if arg == 2 || arg == 3 {
			if m, _ := d.peekMajor(); m == cborBytes {
				n := new(big.Int).SetBytes(d.stringBytes())
				if arg == 3 {
					n.Neg(n.Add(n, big.NewInt(1)))
				}
				return jsonNumber(n.String()), true
			}
		}
	case cborSimple:
		switch info {
		case 25:
			return halfFloat(uint16(arg)), true
		case 26:
			return float64(math.Float32frombits(uint32(arg))), true
		case 27:
			return math.Float64frombits(arg), true
		}
	}
	d.i = start
	return nil, false
}

// halfFloat converts an IEEE 754 half-precision number.
func halfFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp, frac := int(h>>10&0x1f), float64(h&0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(frac, -24)
	case 31:
		if frac != 0 {
			return math.NaN()
		}
		return math.Inf(int(sign))
	}
	return sign * math.Ldexp(frac+1024, exp-25)
}

// mismatch consumes the next item and returns the SerializationException
// for finding it where the model expects the Java type t.
func (d *cborDecoder) mismatch(t string) *apiError {
	major, info := d.peekMajor()
	switch major {
	case cborUint, cborNegInt:
		d.skip()
		return mismatch(t, jsonNumber("0"))
	case cborText:
		b := d.stringBytes()
		if !utf8.Valid(b) {
			return bareError(ErrSerialization)
		}
		return mismatch(t, string(b))
	case cborArray:
		d.skip()
		return mismatch(t, []any{})
	case cborMap:
		d.skip()
		return mismatch(t, map[string]any{})
	case cborSimple:
		d.skip()
		switch {
		case info == 20 || info == 21:
			return mismatch(t, false)
		case info >= 25 && info <= 27:
			return mismatch(t, 0.0)
		}
	case cborTag:
		if _, ok := d.number(); ok { // a bignum
			return mismatch(t, jsonNumber("0"))
		}
		d.skip()
	default:
		d.skip()
	}
	return bareError(ErrSerialization)
}

// member returns the structure member with the given wire name, or nil.
func (s *shape) member(name []byte) *member {
	for i := range s.members {
		if s.members[i].name == string(name) {
			return &s.members[i]
		}
	}
	return nil
}
