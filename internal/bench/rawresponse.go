package bench

import (
	"bytes"
	"unicode/utf8"
)

// scanPutRecords reads the per-record results of a PutRecords response
// the way servers write it: an object with the members FailedRecordCount,
// Records (objects of string or null members) and EncryptionType, strings
// without escapes. It appends the results to results and reports false for
// anything else, which the caller then decodes with encoding/json. Shard
// ids are interned in shards, so that a response costs no allocation per
// record.
func scanPutRecords(b []byte, results []putResult, shards map[string]string) ([]putResult, bool) {
	s := scanner{b: b}
	ok := s.object(func(key []byte) bool {
		switch string(key) {
		case "FailedRecordCount":
			return s.digits()
		case "EncryptionType":
			_, ok := s.strOrNull()
			return ok
		case "Records":
			var ok bool
			results, ok = s.results(results, shards)
			return ok
		}
		return false
	})
	return results, ok && s.end()
}

// maxInterned bounds the strings (shard ids, partition keys) a client
// keeps interned.
const maxInterned = 4096

// intern returns b as a string, the same one for the same bytes while m
// has room; m may be nil.
func intern(m map[string]string, b []byte) string {
	if v, ok := m[string(b)]; ok {
		return v
	}
	v := string(b)
	if m != nil && len(m) < maxInterned {
		m[v] = v
	}
	return v
}

// scanner is a cursor over a JSON text for scanPutRecords.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// consume skips white space and then c, if c is next.
func (s *scanner) consume(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// str reads a string without escapes and returns its bytes (in b).
func (s *scanner) str() ([]byte, bool) {
	if !s.consume('"') {
		return nil, false
	}
	n := bytes.IndexByte(s.b[s.i:], '"')
	if n < 0 {
		return nil, false
	}
	v := s.b[s.i : s.i+n]
	if bytes.IndexByte(v, '\\') >= 0 {
		return nil, false
	}
	for _, c := range v {
		if c < 0x20 {
			return nil, false
		}
	}
	if !utf8.Valid(v) {
		return nil, false
	}
	s.i += n + 1
	return v, true
}

// strOrNull reads a string or null (nil, true).
func (s *scanner) strOrNull() ([]byte, bool) {
	if s.null() {
		return nil, true
	}
	return s.str()
}

// null skips white space and then null, if null is next.
func (s *scanner) null() bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// digits reads a non-negative integer of at most 18 digits, without
// leading zeros.
func (s *scanner) digits() bool {
	s.ws()
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n := s.i - start
	return n > 0 && n <= 18 && (n == 1 || s.b[start] != '0')
}

// results reads the Records array of a PutRecords answer.
func (s *scanner) results(results []putResult, shards map[string]string) ([]putResult, bool) {
	ok := s.array(func() bool {
		var r putResult
		ok := s.object(func(key []byte) bool {
			v, ok := s.strOrNull()
			if !ok {
				return false
			}
			switch string(key) {
			case "SequenceNumber":
			case "ShardId":
				r.ShardID = intern(shards, v)
			case "ErrorCode":
				r.ErrorCode = string(v)
			case "ErrorMessage":
				r.ErrorMessage = string(v)
			default:
				return false
			}
			return true
		})
		results = append(results, r)
		return ok
	})
	return results, ok
}

// object reads an object, handing each member's name to member, which
// reads the value and reports whether it could.
func (s *scanner) object(member func(key []byte) bool) bool {
	if !s.consume('{') {
		return false
	}
	if s.consume('}') {
		return true
	}
	for {
		key, ok := s.str()
		if !ok || !s.consume(':') || !member(key) {
			return false
		}
		if !s.consume(',') {
			return s.consume('}')
		}
	}
}

// array reads an array, calling elem to read each element.
func (s *scanner) array(elem func() bool) bool {
	if !s.consume('[') {
		return false
	}
	if s.consume(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if !s.consume(',') {
			return s.consume(']')
		}
	}
}

// maxDepth bounds the nesting skip follows.
const maxDepth = 32

// skip passes over one JSON value of any kind (strings without escapes),
// at nesting depth.
func (s *scanner) skip(depth int) bool {
	s.ws()
	if s.i >= len(s.b) || depth > maxDepth {
		return false
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '{':
		return s.object(func([]byte) bool { return s.skip(depth + 1) })
	case c == '[':
		return s.array(func() bool { return s.skip(depth + 1) })
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	}
	for _, lit := range []string{"null", "true", "false"} {
		if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
			s.i += len(lit)
			return true
		}
	}
	return false
}

// number passes over a JSON number.
func (s *scanner) number() bool {
	b, i := s.b, s.i
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
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	s.i = i
	return true
}
