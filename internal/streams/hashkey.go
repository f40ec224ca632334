package streams

import (
	"crypto/md5"
	"encoding/binary"
	"math/bits"
)

// hashKey is a point of Kinesis' 128-bit hash-key space: hi holds the most
// significant 64 bits. Partition keys map to it through MD5; shards own
// contiguous ranges of it.
type hashKey struct{ hi, lo uint64 }

// maxHashKey is 2^128-1, the last point of the space.
var maxHashKey = hashKey{^uint64(0), ^uint64(0)}

// partitionHash returns the MD5 of the partition key's UTF-8 bytes read as a
// big-endian 128-bit integer, as Kinesis routes records.
func partitionHash(key string) hashKey {
	sum := md5.Sum([]byte(key)) // the conversion does not escape: no allocation
	return hashKey{binary.BigEndian.Uint64(sum[0:8]), binary.BigEndian.Uint64(sum[8:16])}
}

func (h hashKey) cmp(o hashKey) int {
	switch {
	case h.hi < o.hi:
		return -1
	case h.hi > o.hi:
		return 1
	case h.lo < o.lo:
		return -1
	case h.lo > o.lo:
		return 1
	}
	return 0
}

func (h hashKey) add(n uint64) hashKey {
	lo, c := bits.Add64(h.lo, n, 0)
	return hashKey{h.hi + c, lo}
}

func (h hashKey) sub(n uint64) hashKey {
	lo, b := bits.Sub64(h.lo, n, 0)
	return hashKey{h.hi - b, lo}
}

// mul returns h*n; callers keep the product below 2^128.
func (h hashKey) mul(n uint64) hashKey {
	phi, plo := bits.Mul64(h.lo, n)
	return hashKey{h.hi*n + phi, plo}
}

// divmod returns h/n and h%n for n > 0.
func (h hashKey) divmod(n uint64) (hashKey, uint64) {
	qhi, r := bits.Div64(0, h.hi, n)
	qlo, r := bits.Div64(r, h.lo, n)
	return hashKey{qhi, qlo}, r
}

// shardStep returns floor(2^128 / n), the width of each of n equal shards.
func shardStep(n uint64) hashKey {
	q, r := maxHashKey.divmod(n)
	if r == n-1 { // n divides 2^128
		q = q.add(1)
	}
	return q
}

// evenRanges splits the hash space into n ranges the way Kinesis does at
// stream creation: range i starts at i*floor(2^128/n) and ends one before the
// next start; the last ends at 2^128-1.
func evenRanges(n int) [][2]hashKey {
	step := shardStep(uint64(n))
	out := make([][2]hashKey, n)
	for i := range n {
		start := step.mul(uint64(i))
		end := maxHashKey
		if i < n-1 {
			end = step.mul(uint64(i + 1)).sub(1)
		}
		out[i] = [2]hashKey{start, end}
	}
	return out
}

// String formats h in decimal.
func (h hashKey) String() string {
	if h.hi == 0 && h.lo == 0 {
		return "0"
	}
	var buf [40]byte
	i := len(buf)
	for h.hi != 0 || h.lo != 0 {
		var r uint64
		h, r = h.divmod(10)
		i--
		buf[i] = byte('0' + r)
	}
	return string(buf[i:])
}

// parseHashKey parses a decimal integer in [0, 2^128-1]. It reports false for
// anything else (sign, non-digit, empty, overflow).
func parseHashKey(s string) (hashKey, bool) {
	if s == "" || len(s) > 39 {
		return hashKey{}, false
	}
	var h hashKey
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return hashKey{}, false
		}
		hi1, hi := bits.Mul64(h.hi, 10)
		carry, lo := bits.Mul64(h.lo, 10)
		lo, c1 := bits.Add64(lo, uint64(c-'0'), 0)
		hi, c2 := bits.Add64(hi, carry, c1)
		if hi1 != 0 || c2 != 0 {
			return hashKey{}, false
		}
		h = hashKey{hi, lo}
	}
	return h, true
}
