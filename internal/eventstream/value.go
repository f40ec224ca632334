package eventstream

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"
)

// Type is the wire type byte of a header value.
type Type uint8

// The header value types, numbered as on the wire.
const (
	TypeBoolTrue  Type = 0
	TypeBoolFalse Type = 1
	TypeByte      Type = 2
	TypeInt16     Type = 3
	TypeInt32     Type = 4
	TypeInt64     Type = 5
	TypeBytes     Type = 6
	TypeString    Type = 7
	TypeTimestamp Type = 8
	TypeUUID      Type = 9

	// TypeInvalid is what the zero Value reports; it cannot be encoded.
	TypeInvalid Type = 0xff
)

var typeNames = [...]string{
	TypeBoolTrue:  "bool",
	TypeBoolFalse: "bool",
	TypeByte:      "byte",
	TypeInt16:     "int16",
	TypeInt32:     "int32",
	TypeInt64:     "int64",
	TypeBytes:     "bytes",
	TypeString:    "string",
	TypeTimestamp: "timestamp",
	TypeUUID:      "uuid",
}

// String names the type for messages and debugging.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// fixedLen is the value length of the fixed-size types; -1 for the
// length-prefixed ones and for unknown types.
func (t Type) fixedLen() int {
	switch t {
	case TypeBoolTrue, TypeBoolFalse:
		return 0
	case TypeByte:
		return 1
	case TypeInt16:
		return 2
	case TypeInt32:
		return 4
	case TypeInt64, TypeTimestamp:
		return 8
	case TypeUUID:
		return 16
	}
	return -1
}

// Value is one typed header value. Build it with Bool, Byte, Int16, Int32,
// Int64, Bytes, String, Timestamp, TimestampMillis or UUID; the zero Value is
// invalid and fails to encode. A Value is small and copied by value; a bytes
// Value shares its slice with whoever built it.
type Value struct {
	t uint8  // wire type + 1, so that the zero Value is invalid
	n int64  // byte, int16, int32, int64, timestamp (ms); uuid bytes 0..7
	u uint64 // uuid bytes 8..15
	b []byte // bytes
	s string // string
}

// Bool returns a bool header value (wire type 0 or 1).
func Bool(v bool) Value {
	if v {
		return Value{t: uint8(TypeBoolTrue) + 1}
	}
	return Value{t: uint8(TypeBoolFalse) + 1}
}

// Byte returns a byte header value (wire type 2).
func Byte(v int8) Value { return Value{t: uint8(TypeByte) + 1, n: int64(v)} }

// Int16 returns an int16 header value (wire type 3).
func Int16(v int16) Value { return Value{t: uint8(TypeInt16) + 1, n: int64(v)} }

// Int32 returns an int32 header value (wire type 4).
func Int32(v int32) Value { return Value{t: uint8(TypeInt32) + 1, n: int64(v)} }

// Int64 returns an int64 header value (wire type 5).
func Int64(v int64) Value { return Value{t: uint8(TypeInt64) + 1, n: v} }

// Bytes returns a bytes header value (wire type 6). The Value keeps b, not a
// copy; it must stay unchanged until the Value has been encoded.
func Bytes(b []byte) Value { return Value{t: uint8(TypeBytes) + 1, b: b} }

// String returns a string header value (wire type 7).
func String(s string) Value { return Value{t: uint8(TypeString) + 1, s: s} }

// Timestamp returns a timestamp header value (wire type 8). The wire carries
// milliseconds, so anything finer than a millisecond is dropped.
func Timestamp(t time.Time) Value { return TimestampMillis(t.UnixMilli()) }

// TimestampMillis returns a timestamp header value (wire type 8) from
// milliseconds since the Unix epoch.
func TimestampMillis(ms int64) Value { return Value{t: uint8(TypeTimestamp) + 1, n: ms} }

// UUID returns a uuid header value (wire type 9).
func UUID(id [16]byte) Value {
	return Value{
		t: uint8(TypeUUID) + 1,
		n: int64(binary.BigEndian.Uint64(id[0:8])),
		u: binary.BigEndian.Uint64(id[8:16]),
	}
}

// Type reports the wire type of v, or TypeInvalid for the zero Value.
func (v Value) Type() Type {
	if v.t == 0 {
		return TypeInvalid
	}
	return Type(v.t - 1)
}

// AsBool returns the value of a bool header; ok is false for other types.
func (v Value) AsBool() (b, ok bool) {
	switch v.Type() {
	case TypeBoolTrue:
		return true, true
	case TypeBoolFalse:
		return false, true
	}
	return false, false
}

// AsInt returns the value of a byte, int16, int32 or int64 header; ok is
// false for other types (timestamps included: use AsTime).
func (v Value) AsInt() (n int64, ok bool) {
	switch v.Type() {
	case TypeByte, TypeInt16, TypeInt32, TypeInt64:
		return v.n, true
	}
	return 0, false
}

// AsBytes returns the value of a bytes header; ok is false for other types.
// The slice is shared, not copied.
func (v Value) AsBytes() (b []byte, ok bool) {
	if v.Type() != TypeBytes {
		return nil, false
	}
	return v.b, true
}

// AsString returns the value of a string header; ok is false for other
// types.
func (v Value) AsString() (s string, ok bool) {
	if v.Type() != TypeString {
		return "", false
	}
	return v.s, true
}

// AsMillis returns a timestamp header as milliseconds since the Unix epoch;
// ok is false for other types.
func (v Value) AsMillis() (ms int64, ok bool) {
	if v.Type() != TypeTimestamp {
		return 0, false
	}
	return v.n, true
}

// AsTime returns a timestamp header as a UTC time; ok is false for other
// types.
func (v Value) AsTime() (t time.Time, ok bool) {
	if v.Type() != TypeTimestamp {
		return time.Time{}, false
	}
	return time.UnixMilli(v.n).UTC(), true
}

// AsUUID returns the value of a uuid header; ok is false for other types.
func (v Value) AsUUID() (id [16]byte, ok bool) {
	if v.Type() != TypeUUID {
		return id, false
	}
	binary.BigEndian.PutUint64(id[0:8], uint64(v.n))
	binary.BigEndian.PutUint64(id[8:16], v.u)
	return id, true
}

// Equal reports whether v and o have the same type and value.
func (v Value) Equal(o Value) bool {
	if v.t != o.t || v.n != o.n || v.u != o.u || v.s != o.s {
		return false
	}
	return bytes.Equal(v.b, o.b)
}

// String formats v for logs and test failures: strings as they are, bytes
// in base64, timestamps in RFC 3339, uuids in the canonical 8-4-4-4-12 form.
func (v Value) String() string {
	switch v.Type() {
	case TypeBoolTrue:
		return "true"
	case TypeBoolFalse:
		return "false"
	case TypeByte, TypeInt16, TypeInt32, TypeInt64:
		return strconv.FormatInt(v.n, 10)
	case TypeBytes:
		return base64.StdEncoding.EncodeToString(v.b)
	case TypeString:
		return v.s
	case TypeTimestamp:
		t, _ := v.AsTime()
		return t.Format(time.RFC3339Nano)
	case TypeUUID:
		id, _ := v.AsUUID()
		var s [36]byte
		hex.Encode(s[0:8], id[0:4])
		s[8] = '-'
		hex.Encode(s[9:13], id[4:6])
		s[13] = '-'
		hex.Encode(s[14:18], id[6:8])
		s[18] = '-'
		hex.Encode(s[19:23], id[8:10])
		s[23] = '-'
		hex.Encode(s[24:36], id[10:16])
		return string(s[:])
	}
	return "<invalid>"
}

// encodedLen is the number of bytes the value occupies after its type byte,
// or -1 if it cannot be encoded.
func (v Value) encodedLen() int {
	t := v.Type()
	if n := t.fixedLen(); n >= 0 {
		return n
	}
	switch t {
	case TypeBytes:
		if len(v.b) > MaxHeaderValueLen {
			return -1
		}
		return 2 + len(v.b)
	case TypeString:
		if len(v.s) > MaxHeaderValueLen {
			return -1
		}
		return 2 + len(v.s)
	}
	return -1
}

// appendValue appends the type byte and the value. The caller has checked
// encodedLen.
func (v Value) appendValue(dst []byte) []byte {
	t := v.Type()
	dst = append(dst, byte(t))
	switch t {
	case TypeByte:
		dst = append(dst, byte(v.n))
	case TypeInt16:
		dst = binary.BigEndian.AppendUint16(dst, uint16(v.n))
	case TypeInt32:
		dst = binary.BigEndian.AppendUint32(dst, uint32(v.n))
	case TypeInt64, TypeTimestamp:
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.n))
	case TypeBytes:
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(v.b)))
		dst = append(dst, v.b...)
	case TypeString:
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(v.s)))
		dst = append(dst, v.s...)
	case TypeUUID:
		dst = binary.BigEndian.AppendUint64(dst, uint64(v.n))
		dst = binary.BigEndian.AppendUint64(dst, v.u)
	}
	return dst
}
