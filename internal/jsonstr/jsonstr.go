// Package jsonstr writes JSON strings exactly as encoding/json does with HTML
// escaping off, without reflection or allocation: the server's hand-written
// response encoders and the load tool's request builder use it.
package jsonstr

import "unicode/utf8"

// Plain reports whether s needs no escaping in JSON: printable ASCII
// without quote or backslash. It tests eight bytes at a time (the strings it
// sees most, 56-digit sequence numbers, take seven steps instead of 56).
func Plain(s string) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(s); i += 8 {
		x := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if x&highs != 0 {
			return false // a byte of 0x80 or above
		}
		// With every byte below 0x80, (v - ones) & ^v & highs is nonzero
		// exactly when some byte of v is zero, and (x - 0x20 in each byte)
		// & ^x & highs when some byte of x is below 0x20.
		q := x ^ ('"' * ones)
		b := x ^ ('\\' * ones)
		if (x-0x20*ones)&^x&highs != 0 || (q-ones)&^q&highs != 0 || (b-ones)&^b&highs != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// Append appends s as a JSON string exactly as encoding/json writes
// it with HTML escaping off: quote and backslash escaped, control characters
// as \b \f \n \r \t or \u00XX, invalid UTF-8 bytes as \ufffd, and U+2028 and
// U+2029 escaped.
func Append(dst []byte, s string) []byte {
	if Plain(s) {
		dst = append(dst, '"')
		dst = append(dst, s...)
		return append(dst, '"')
	}
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
