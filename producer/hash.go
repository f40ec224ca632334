package producer

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"hash/maphash"
	"math/bits"
	"strings"
	"sync/atomic"
)

// hashKey is a point of Kinesis' 128-bit hash key space: the MD5 digest of
// a partition key read as a big-endian number, or an explicit hash key.
type hashKey struct{ hi, lo uint64 }

func (a hashKey) less(b hashKey) bool {
	return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo)
}

// partitionHash is the hash key Kinesis routes a partition key by.
func partitionHash(partitionKey string) hashKey {
	sum := md5.Sum([]byte(partitionKey))
	return hashKey{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

var errHashKey = errors.New("not a decimal number from 0 to 2^128-1 without leading zeros")

// parseHashKey parses a decimal hash key as Kinesis writes and accepts
// them: 0 or digits without a leading zero, at most 2^128-1.
func parseHashKey(s string) (hashKey, error) {
	if s == "" || len(s) > 39 || (s[0] == '0' && len(s) > 1) {
		return hashKey{}, errHashKey
	}
	var h hashKey
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return hashKey{}, errHashKey
		}
		// h = h*10 + d, refusing overflow.
		hiHi, hiLo := bits.Mul64(h.hi, 10)
		loHi, loLo := bits.Mul64(h.lo, 10)
		hi, carry := bits.Add64(hiLo, loHi, 0)
		if hiHi != 0 || carry != 0 {
			return hashKey{}, errHashKey
		}
		lo, carry := bits.Add64(loLo, uint64(c-'0'), 0)
		hi, carry2 := bits.Add64(hi, 0, carry)
		if carry2 != 0 {
			return hashKey{}, errHashKey
		}
		h = hashKey{hi, lo}
	}
	return h, nil
}

// hashCache remembers the hash keys of recent partition keys, so that a
// producer putting many records per key computes each MD5 about once. It
// is direct-mapped: a slot holds the last key that hashed to it. Safe for
// concurrent use without locks: a slot is an atomic pointer to an
// immutable entry.
type hashCache struct {
	seed  maphash.Seed
	slots [hashCacheSlots]atomic.Pointer[hashEntry]
}

const hashCacheSlots = 4096

type hashEntry struct {
	key  string
	hash hashKey
}

func newHashCache() *hashCache { return &hashCache{seed: maphash.MakeSeed()} }

// hash returns partitionHash(key).
func (c *hashCache) hash(key string) hashKey {
	slot := &c.slots[maphash.String(c.seed, key)%hashCacheSlots]
	if e := slot.Load(); e != nil && e.key == key {
		return e.hash
	}
	h := partitionHash(key)
	if len(key) <= 64 {
		// Cloned: key may alias the caller's memory.
		slot.Store(&hashEntry{key: strings.Clone(key), hash: h})
	}
	return h
}
