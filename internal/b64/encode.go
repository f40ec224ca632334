package b64

import "github.com/segmentio/asm/base64"

// AppendEncode appends the standard, padded base64 encoding of src to dst,
// the same bytes as encoding/base64's StdEncoding.AppendEncode. GetRecords
// answers spend most of their encoding time here.
func AppendEncode(dst, src []byte) []byte {
	n := base64.StdEncoding.EncodedLen(len(src))
	if cap(dst)-len(dst) < n {
		grown := make([]byte, len(dst), len(dst)+n)
		copy(grown, dst)
		dst = grown
	}
	base64.StdEncoding.Encode(dst[len(dst):len(dst)+n], src)
	return dst[:len(dst)+n]
}
