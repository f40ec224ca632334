// Package jsonscan is a cursor over a JSON text for the hot paths that read
// AWS answers without encoding/json (the consumer library's GetRecords, the
// load tool's PutRecords and GetRecords). It understands objects, arrays,
// strings without escapes, numbers, true, false and null; anything else
// makes a method report false, and the caller falls back to encoding/json.
package jsonscan

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// Scanner reads the JSON text B from offset I. The byte slices it returns
// point into B.
type Scanner struct {
	B []byte
	I int
}

// WS skips white space.
func (s *Scanner) WS() {
	for s.I < len(s.B) {
		switch s.B[s.I] {
		case ' ', '\t', '\n', '\r':
			s.I++
		default:
			return
		}
	}
}

// Consume skips white space and then c, if c is next.
func (s *Scanner) Consume(c byte) bool {
	s.WS()
	if s.I < len(s.B) && s.B[s.I] == c {
		s.I++
		return true
	}
	return false
}

// End reports whether only white space is left.
func (s *Scanner) End() bool {
	s.WS()
	return s.I == len(s.B)
}

// Str reads a string whose content means itself (see Plain) and returns
// its bytes.
func (s *Scanner) Str() ([]byte, bool) {
	v, ok := s.RawStr()
	if !ok || !Plain(v) {
		return nil, false
	}
	return v, true
}

// RawStr reads a string up to the next quote without looking at what it
// holds: for base64, whose decoder rejects escapes and control characters
// itself.
func (s *Scanner) RawStr() ([]byte, bool) {
	if !s.Consume('"') {
		return nil, false
	}
	n := bytes.IndexByte(s.B[s.I:], '"')
	if n < 0 {
		return nil, false
	}
	v := s.B[s.I : s.I+n : s.I+n]
	s.I += n + 1
	return v, true
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// Plain reports whether v is valid UTF-8 without control characters or
// backslashes: a JSON string's content that means itself. It checks 8 bytes
// at a time while they are ASCII.
func Plain(v []byte) bool {
	for len(v) >= 8 {
		x := binary.LittleEndian.Uint64(v)
		// A byte below 0x20, a backslash, or one with its high bit set.
		bs := x ^ (ones * '\\')
		if ((x-ones*0x20)&^x|(bs-ones)&^bs|x)&highs != 0 {
			break
		}
		v = v[8:]
	}
	ascii := true
	for _, c := range v {
		if c < 0x20 || c == '\\' {
			return false
		}
		ascii = ascii && c < utf8.RuneSelf
	}
	return ascii || utf8.Valid(v)
}

// StrOrNull reads a string or null (nil, true). An empty string is not nil.
func (s *Scanner) StrOrNull() ([]byte, bool) {
	if s.Null() {
		return nil, true
	}
	v, ok := s.Str()
	if ok && v == nil {
		v = []byte{}
	}
	return v, ok
}

// Null skips white space and then null, if null is next.
func (s *Scanner) Null() bool {
	return s.literal("null")
}

func (s *Scanner) literal(lit string) bool {
	s.WS()
	if bytes.HasPrefix(s.B[s.I:], []byte(lit)) {
		s.I += len(lit)
		return true
	}
	return false
}

// Number reads a JSON number and returns its text.
func (s *Scanner) Number() ([]byte, bool) {
	s.WS()
	b, i := s.B, s.I
	digits := func() int {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i - start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return nil, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return nil, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	v := b[s.I:i]
	s.I = i
	return v, true
}

// Digits reads a non-negative integer of at most 18 digits (so it fits an
// int64), without leading zeros.
func (s *Scanner) Digits() bool {
	s.WS()
	start := s.I
	for s.I < len(s.B) && s.B[s.I] >= '0' && s.B[s.I] <= '9' {
		s.I++
	}
	n := s.I - start
	return n > 0 && n <= 18 && (n == 1 || s.B[start] != '0')
}

// Object reads an object, handing each member's name to member, which reads
// the value and reports whether it could.
func (s *Scanner) Object(member func(key []byte) bool) bool {
	if !s.Consume('{') {
		return false
	}
	if s.Consume('}') {
		return true
	}
	for {
		key, ok := s.Str()
		if !ok || !s.Consume(':') || !member(key) {
			return false
		}
		if !s.Consume(',') {
			return s.Consume('}')
		}
	}
}

// Array reads an array, calling elem to read each element.
func (s *Scanner) Array(elem func() bool) bool {
	if !s.Consume('[') {
		return false
	}
	if s.Consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !s.Consume(',') {
			return s.Consume(']')
		}
	}
}

// MaxDepth bounds the nesting Skip follows.
const MaxDepth = 32

// Skip passes over one JSON value of any kind at nesting depth (0 for a
// top-level value).
func (s *Scanner) Skip(depth int) bool {
	s.WS()
	if s.I >= len(s.B) || depth > MaxDepth {
		return false
	}
	switch c := s.B[s.I]; {
	case c == '"':
		_, ok := s.Str()
		return ok
	case c == '{':
		return s.Object(func([]byte) bool { return s.Skip(depth + 1) })
	case c == '[':
		return s.Array(func() bool { return s.Skip(depth + 1) })
	case c == '-' || c >= '0' && c <= '9':
		_, ok := s.Number()
		return ok
	}
	return s.literal("null") || s.literal("true") || s.literal("false")
}
