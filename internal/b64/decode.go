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
	if len(s) > 0 && s[len(s)-1] == '=' {
		// Padding leaves bits of the last character unused: 2 after
		// "xxx=", 4 after "xx==". They must be zero (the strict decoding
		// Kinesis does). This looks at one character, so it costs nothing
		// measurable; a character outside the alphabet reads as 0 here and
		// is refused by the decoder below.
		unused := byte(0x03)
		last := s[len(s)-2]
		want--
		if last == '=' {
			want--
			unused = 0x0f
			last = s[len(s)-3]
		}
		if decodeMap[last]&unused != 0 {
			return 0, 0, false
		}
	}
	n, err := base64.StdEncoding.Decode(dst, s)
	if err != nil || n != want {
		return 0, 0, false
	}
	return n, end, true
}

// decodeMap maps a character of the standard alphabet to its 6-bit value
// (0 for every other byte).
var decodeMap = func() (m [256]byte) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := 0; i < len(alphabet); i++ {
		m[alphabet[i]] = byte(i)
	}
	return m
}()
