package b64

import (
	"bytes"

	"github.com/segmentio/asm/base64"
)

// DecodeQuoted decodes the base64 content of a JSON string whose opening
// quote has been consumed: src starts just after it. It accepts exactly what
// encoding/base64's StdEncoding.Strict().Decode accepts (standard alphabet,
// padded, the unused bits of the last character zero, as Kinesis requires)
// except CR and LF, which the standard decoder skips but JSON does not allow
// raw in a string; the content ends at the first '"'. Anything else, an
// escape included, is refused: the caller then hands the body to a complete
// JSON decoder.
//
// It writes the decoded bytes to dst[:n] and returns n and end, the index of
// the closing quote in src. It may overwrite all of dst, and reports !ok if
// dst is too short; len(dst) >= base64.StdEncoding.DecodedLen(end) always
// suffices. On !ok, n, end and the contents of dst are meaningless.
func DecodeQuoted(dst, src []byte) (n, end int, ok bool) {
	end = bytes.IndexByte(src, '"')
	if end < 0 {
		return 0, 0, false
	}
	s := src[:end]
	// Without CR and LF, a decodable string is whole quanta of four
	// characters, and its length and padding give the decoded length
	// exactly; skipped newlines would make it shorter.
	if len(s)%4 != 0 {
		return 0, 0, false
	}
	want := len(s) / 4 * 3
	if want > len(dst) {
		return 0, 0, false
	}
	if len(s) == 0 || s[len(s)-1] != '=' {
		n, err := base64.StdEncoding.Decode(dst, s)
		if err != nil || n != want {
			return 0, 0, false
		}
		return n, end, true
	}
	// The last quantum is padded: decode it here, and the rest (whole
	// quanta) with the vector decoder, whose fallback takes a slow path for
	// padding; padding anywhere in the rest makes that decoder's count fall
	// short. Padding leaves bits of the last character unused: 2 after
	// "xxx=", 4 after "xx==". They must be zero (the strict decoding Kinesis
	// does).
	q := s[len(s)-4:]
	body := s[:len(s)-4]
	a, b, c := quantumMap[q[0]], quantumMap[q[1]], quantumMap[q[2]]
	var tail [2]byte
	tn := 2
	if q[2] == '=' {
		if (a|b)&0xc0 != 0 || b&0x0f != 0 {
			return 0, 0, false
		}
		tail[0], tn = a<<2|b>>4, 1
	} else {
		if (a|b|c)&0xc0 != 0 || c&0x03 != 0 {
			return 0, 0, false
		}
		tail[0], tail[1] = a<<2|b>>4, b<<4|c>>2
	}
	n = 0
	if len(body) > 0 {
		var err error
		if n, err = base64.StdEncoding.Decode(dst, body); err != nil || n != len(body)/4*3 {
			return 0, 0, false
		}
	}
	n += copy(dst[n:], tail[:tn])
	return n, end, true
}

// quantumMap maps a character of the standard alphabet to its 6-bit value,
// every other byte to invalid (whose bits 6 and 7 no value has).
var quantumMap = func() (m [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range m {
		m[i] = invalid
	}
	for i := 0; i < len(alphabet); i++ {
		m[alphabet[i]] = byte(i)
	}
	return m
}()

const invalid = 0xff
