package kinesisapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/runnel/runnel/internal/streams"
)

// This file decodes request bodies the way Kinesis' Coral framework does:
// each member the operation's model declares (ops.go) is converted to its
// model type, with Coral's SerializationException messages when a value has
// the wrong type (as kinesalite recorded them from Kinesis):
//
//	String    <- number      class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String
//	Integer   <- string      class java.lang.String can not be converted to an Integer
//	Timestamp <- string      class java.lang.String can not be converted to milliseconds since epoch
//	Blob      <- "+/+="      '+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected
//	List      <- object      Start of structure or map found where not expected.
//
// Numbers are converted as Coral's TruncatingBigNumber does: an Integer
// takes the floor of a fraction and saturates at the int32 bounds (Kinesis
// answered CreateStream's ShardCount 100000000000 with "Value '2147483647'
// at 'shardCount' failed to satisfy constraint"), a Long at the int64
// bounds. Members the model does not declare are ignored, and names match
// exactly.
//
// A JSON body is parsed into a tree of plain values (encoding/json, numbers
// kept as literals) which convert then walks; a CBOR body is walked in one
// pass (cbordec.go). The PutRecords fast path (fastjson.go) is tried first
// for JSON PutRecords; whatever it refuses comes here.

// cborTree checks CBOR bodies to be well formed, within the package's
// limits, before cbordec.go walks them.
var cborTree = mustDecMode(cbor.DecOptions{
	DupMapKey:        cbor.DupMapKeyQuiet,
	IndefLength:      cbor.IndefLengthAllowed,
	TagsMd:           cbor.TagsAllowed,
	MaxNestedLevels:  32,
	MaxArrayElements: 1 << 17,
	MaxMapPairs:      1 << 17,
})

var bytesType = reflect.TypeFor[[]byte]()

// jsonNumber is a JSON number literal, or a CBOR integer written in
// decimal; CBOR floating-point numbers are float64.
type jsonNumber = json.Number

// inputShapes maps each input type to its model shape, so decode needs only
// the Go value. It is built on first use, after every init function has
// completed the dispatch table.
var inputShapes = sync.OnceValue(func() map[reflect.Type]*shape {
	m := make(map[reflect.Type]*shape, len(operations))
	for _, op := range operations {
		m[reflect.TypeOf(op.newInput())] = &op.input
	}
	return m
})

// decodeTyped decodes body in protocol p into v (a pointer to an input
// struct), converting each member to its model type as Kinesis does. An
// input type no operation declares is decoded generically (generic.go).
func decodeTyped(p protocol, body []byte, v any) *apiError {
	s, ok := inputShapes()[reflect.TypeOf(v)]
	if !ok {
		return decodeGeneric(p, body, v) // generic.go: not a Kinesis input
	}
	if p == protoCBOR {
		return decodeCBOR(s, body, reflect.ValueOf(v).Elem()) // cbordec.go
	}
	tree, aerr := parseJSON(body)
	if aerr != nil {
		return aerr
	}
	return convert(s, reflect.ValueOf(v).Elem(), tree)
}

// parseJSON parses body into a tree of plain values (numbers as
// json.Number). A body that is not well formed is a bare
// SerializationException.
func parseJSON(body []byte) (any, *apiError) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, bareError(ErrSerialization)
	}
	for _, c := range body[d.InputOffset():] {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return nil, bareError(ErrSerialization)
		}
	}
	return v, nil
}

// convert converts x, a value of the JSON tree, to s's model type and
// stores it in v (the Go field, possibly a pointer). A null leaves v at its
// zero value. Members are converted in the model's order, so of several
// wrongly typed members the first declared is reported.
func convert(s *shape, v reflect.Value, x any) *apiError {
	if x == nil {
		return nil
	}
	if v.Kind() == reflect.Pointer {
		p := reflect.New(v.Type().Elem())
		if aerr := convert(s, p.Elem(), x); aerr != nil {
			return aerr
		}
		v.Set(p)
		return nil
	}
	switch s.kind {
	case kindStruct:
		m, ok := x.(map[string]any)
		if !ok {
			return mismatch("Structure", x)
		}
		for i := range s.members {
			mb := &s.members[i]
			if aerr := convert(&mb.shape, v.Field(mb.index), m[mb.name]); aerr != nil {
				return aerr
			}
		}
	case kindList:
		items, ok := x.([]any)
		if !ok {
			return mismatch("List", x)
		}
		out := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, it := range items {
			if aerr := convert(s.elem, out.Index(i), it); aerr != nil {
				return aerr
			}
		}
		v.Set(out)
	case kindMap:
		m, ok := x.(map[string]any)
		if !ok {
			return mismatch("Map", x)
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for k, it := range m {
			ev := reflect.New(v.Type().Elem()).Elem()
			if aerr := convert(s.elem, ev, it); aerr != nil {
				return aerr
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), ev)
		}
		v.Set(out)
	case kindString:
		str, ok := x.(string)
		if !ok {
			return mismatch("String", x)
		}
		v.SetString(str)
	case kindBool:
		b, ok := x.(bool)
		if !ok {
			return mismatch("Boolean", x)
		}
		v.SetBool(b)
	case kindInt, kindLong:
		lo, hi, javaName := int64(math.MinInt32), int64(math.MaxInt32), "Integer"
		if s.kind == kindLong && v.Kind() == reflect.Int64 {
			lo, hi, javaName = math.MinInt64, math.MaxInt64, "Long"
		}
		n, ok := truncate(x, lo, hi)
		if !ok {
			return mismatch(javaName, x)
		}
		v.SetInt(n)
	case kindBlob:
		str, ok := x.(string)
		if !ok {
			return mismatch("Blob", x)
		}
		data, aerr := decodeBlob(str)
		if aerr != nil {
			return aerr
		}
		v.SetBytes(data)
	case kindTimestamp:
		// Epoch seconds with a fraction.
		n, ok := x.(jsonNumber)
		if !ok {
			return mismatch("Timestamp", x)
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil && !isRangeErr(err) {
			return mismatch("Timestamp", x)
		}
		v.Set(reflect.ValueOf(streams.TimestampMillis(secondsToMillis(f))))
	}
	return nil
}

// secondsToMillis converts epoch seconds to milliseconds, rounding to the
// nearest millisecond and saturating at the int64 bounds.
func secondsToMillis(f float64) int64 {
	ms := math.Round(f * 1000)
	if ms >= math.MaxInt64 {
		return math.MaxInt64
	}
	if ms <= math.MinInt64 {
		return math.MinInt64
	}
	return int64(ms)
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// truncate converts a number to an integer as TruncatingBigNumber does: the
// floor of a fraction, saturated at lo and hi. ok is false when x is not a
// number.
func truncate(x any, lo, hi int64) (n int64, ok bool) {
	var f float64
	switch v := x.(type) {
	case jsonNumber:
		s := string(v)
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return min(max(i, lo), hi), true
		}
		var err error
		f, err = strconv.ParseFloat(s, 64)
		if err != nil && !isRangeErr(err) {
			return 0, false
		}
	case float64:
		f = v
		if math.IsNaN(f) {
			return 0, false
		}
	default:
		return 0, false
	}
	f = math.Floor(f)
	switch {
	case f >= float64(hi):
		return hi, true
	case f <= float64(lo):
		return lo, true
	}
	return int64(f), true
}

// mismatch is the SerializationException for a value of the wrong type
// where the model expects the Java type t.
func mismatch(t string, x any) *apiError {
	kind := "number"
	lit := ""
	switch v := x.(type) {
	case nil:
		return nil
	case bool:
		kind = "bool"
	case string:
		kind, lit = "string", v
	case []any:
		kind = "array"
	case map[string]any:
		kind = "object"
	}
	return serializationError(coralTypeMessage(t, kind, lit))
}

// decodeBlob decodes a JSON blob member: canonical, padded standard base64,
// refused with the messages Kinesis answers.
func decodeBlob(s string) ([]byte, *apiError) {
	fail := func(why string) *apiError {
		return serializationError("'" + s + "' can not be converted to a Blob: " + why)
	}
	if n := javaLength(s); n%4 != 0 {
		return nil, fail("Base64 encoded length is expected a multiple of 4 bytes but found: " + strconv.FormatInt(n, 10))
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		valid := r < utf8.RuneSelf && base64Char[r]
		if r == '=' {
			valid = i+1 == len(s) || s[i+1] == '='
		}
		if !valid {
			return nil, fail("Invalid Base64 character: '" + string(r) + "'")
		}
		i += size
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fail("Invalid last non-pad Base64 character dectected")
	}
	return b, nil
}

// base64Char marks the characters of the standard alphabet and '='.
var base64Char = func() (t [utf8.RuneSelf]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=" {
		t[c] = true
	}
	return t
}()

// coralTypeMessage builds Coral's message for a value of JSON kind ("string",
// "number", "bool", "array", "object") found where the model expects the Java
// type t. lit is the offending string, when kind is "string".
func coralTypeMessage(t, kind, lit string) string {
	const bigNumber = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber"
	switch t {
	case "List":
		if kind == "object" {
			return "Start of structure or map found where not expected."
		}
		return "Expected list or null"
	case "Map":
		if kind == "array" {
			return "Start of list found where not expected"
		}
		return "Expected map or null"
	case "Structure":
		if kind == "array" {
			return "Start of list found where not expected"
		}
		return "Expected null"
	}
	target := "an " + t
	switch t {
	case "Blob":
		target = "a Blob"
	case "Timestamp":
		target = "milliseconds since epoch"
	}
	switch kind {
	case "array":
		return "Start of list found where not expected"
	case "object":
		return "Start of structure or map found where not expected."
	case "bool":
		return "class java.lang.Boolean can not be converted to " + target
	case "string":
		if t == "Boolean" {
			return "'" + lit + "' can not be converted to an Boolean"
		}
		return "class java.lang.String can not be converted to " + target
	}
	return bigNumber + " can not be converted to " + target
}
