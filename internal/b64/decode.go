package b64

import "encoding/binary"

// DecodeQuoted decodes the base64 content of a JSON string whose opening
// quote has been consumed: src starts just after it. It accepts exactly what
// base64.StdEncoding.Decode accepts (standard alphabet, padded, trailing
// bits of the last character ignored) except CR and LF, which the standard
// decoder skips but JSON does not allow raw in a string; the content ends at
// the first '"'. Anything else, an escape included, is refused: the caller
// then hands the body to a complete JSON decoder.
//
// It writes the decoded bytes to dst[:n] and returns n and end, the index of
// the closing quote in src. It may overwrite all of dst, and reports !ok if
// dst is too short; len(dst) >= base64.StdEncoding.DecodedLen(end) always
// suffices. On !ok, n, end and the contents of dst are meaningless.
//
// The input is read once: sixteen characters at a time, two per lookup of a
// table that also marks every pair outside the alphabet, while they are all
// in the alphabet and room remains; the closing quote, padding and the last
// few characters are left to a byte-at-a-time loop.
func DecodeQuoted(dst, src []byte) (n, end int, ok bool) {
	s, d := src, dst
	// Sixteen characters a step, in two independent halves, then eight.
	for len(s) >= 16 && len(d) >= 16 {
		x := binary.LittleEndian.Uint64(s)
		a0, a1 := decodePairs[uint16(x)], decodePairs[uint16(x>>16)]
		a2, a3 := decodePairs[uint16(x>>32)], decodePairs[uint16(x>>48)]
		bad := a0 | a1 | a2 | a3
		a := uint64(a0)<<52 | uint64(a1)<<40 | uint64(a2)<<28 | uint64(a3)<<16
		y := binary.LittleEndian.Uint64(s[8:])
		b0, b1 := decodePairs[uint16(y)], decodePairs[uint16(y>>16)]
		b2, b3 := decodePairs[uint16(y>>32)], decodePairs[uint16(y>>48)]
		bad |= b0 | b1 | b2 | b3
		b := uint64(b0)<<52 | uint64(b1)<<40 | uint64(b2)<<28 | uint64(b3)<<16
		if bad > 0xfff {
			break // a quote, padding or a byte to refuse
		}
		// Each half's 48 bits land in 6 bytes; the 2 after them are
		// scratch, overwritten by the next store or the tail, or past n.
		binary.BigEndian.PutUint64(d, a)
		binary.BigEndian.PutUint64(d[6:], b)
		s, d = s[16:], d[12:]
	}
	for len(s) >= 8 && len(d) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		a0, a1 := decodePairs[uint16(x)], decodePairs[uint16(x>>16)]
		a2, a3 := decodePairs[uint16(x>>32)], decodePairs[uint16(x>>48)]
		if a0|a1|a2|a3 > 0xfff {
			break
		}
		binary.BigEndian.PutUint64(d, uint64(a0)<<52|uint64(a1)<<40|uint64(a2)<<28|uint64(a3)<<16)
		s, d = s[8:], d[6:]
	}
	n, end, ok = decodeTail(d, s)
	return len(dst) - len(d) + n, len(src) - len(s) + end, ok
}

// decodeTail is DecodeQuoted one character at a time, for the rest of the
// input once the fast loop stops, at the start of a quantum of four
// characters. It mirrors encoding/base64's decodeQuantum with the quote as
// the end of input and without its newline skipping.
func decodeTail(dst, src []byte) (n, end int, ok bool) {
	i, o := 0, 0
	for {
		var v uint32
		for j := range 4 {
			if i+j >= len(src) {
				return 0, 0, false // no closing quote
			}
			c := src[i+j]
			if d := decodeMap[c]; d != 0xff {
				v = v<<6 | uint32(d)
				continue
			}
			switch {
			case c == '"' && j == 0:
				return o, i, true
			case c == '=' && j >= 2:
				// "xx==" or "xxx=", then the quote.
				k := i + j + 1
				if j == 2 {
					if k >= len(src) || src[k] != '=' {
						return 0, 0, false
					}
					k++
				}
				if k >= len(src) || src[k] != '"' || len(dst)-o < j-1 {
					return 0, 0, false
				}
				v <<= 6 * (4 - j)
				dst[o] = byte(v >> 16)
				if j == 3 {
					dst[o+1] = byte(v >> 8)
				}
				return o + j - 1, k, true
			}
			// A quote inside a quantum, misplaced padding, or a byte
			// outside the alphabet.
			return 0, 0, false
		}
		if len(dst)-o < 3 {
			return 0, 0, false
		}
		dst[o], dst[o+1], dst[o+2] = byte(v>>16), byte(v>>8), byte(v)
		i += 4
		o += 3
	}
}

// decodeMap maps a character to its 6 bits, and every byte outside the
// alphabet to 0xff.
var decodeMap = func() (t [256]uint8) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(alphabet) {
		t[alphabet[i]] = uint8(i)
	}
	return t
}()

// badPair marks a decodePairs entry that is not two alphabet characters:
// any bit above the low 12 set tells the fast loop to stop.
const badPair = 0xffff

// decodePairs maps two characters, the first in the low byte as a
// little-endian load reads them, to their 12 bits, the first character's
// in the high 6; every other pair to badPair. At 128 KiB it is large, but the
// 4096 valid entries sit in 12 KiB of cache lines. Filling it at start-up
// takes under 0.1 ms.
var decodePairs [1 << 16]uint16

func init() {
	for i := range decodePairs {
		decodePairs[i] = badPair
	}
	for a := range len(alphabet) {
		for b := range len(alphabet) {
			decodePairs[uint16(alphabet[a])|uint16(alphabet[b])<<8] = uint16(a<<6 | b)
		}
	}
}
