package streams

import (
	"encoding/binary"
	"math/bits"
	"strconv"
)

// Sequence numbers.
//
// A sequence number is a 56-digit decimal string. Read as an integer it is a
// 188-bit value made of 47 hexadecimal nibbles, most significant first (the
// layout earlier Kinesis emulators observed on real Kinesis and documented):
//
//	nibbles  bits  field
//	1        4     version, always 2
//	9        36    shard creation time, Unix seconds
//	1        4     shard index, low 4 bits (repeated; checked on decode)
//	16       64    record index: the record's engine offset in the shard log
//	2        8     kind: 1 for the number of the record at this offset,
//	               0 for the position just before it (see below)
//	9        36    record arrival time, Unix seconds
//	8        32    shard index
//	1        4     trailer, always 2
//
// The version nibble makes every number 2*16^46 <= n < 3*16^46, which always
// prints as exactly 56 decimal digits. Within a shard the numbers grow with the
// engine offset, so a number maps straight to (shard index, offset) and back.
// A shard created by resharding gets a creation time strictly later (in whole
// seconds) than its parents', so its numbers sort above theirs.
//
// Numbers of kind 0 are positions, not records: a shard's
// StartingSequenceNumber and EndingSequenceNumber, and a subscription's
// ContinuationSequenceNumber. Kind 0 at offset n sorts between the records
// at n-1 and n, so a position never equals a record's number, and both
// AT_SEQUENCE_NUMBER and AFTER_SEQUENCE_NUMBER with it start at offset n.
type seqNum struct {
	created uint64 // shard creation time, Unix seconds (36 bits)
	shard   uint32 // shard index
	offset  uint64 // engine offset of the record
	arrival uint64 // record arrival time, Unix seconds (36 bits)
	record  bool   // the number of the record at offset (kind 1), else the position before it
}

const seqNumDigits = 56

const mask36 = 1<<36 - 1

// u192 is a 192-bit unsigned integer, w[0] least significant.
type u192 [3]uint64

// push shifts v left by n (< 64) bits and ors in x (< 2^n).
func (v *u192) push(n uint, x uint64) {
	v[2] = v[2]<<n | v[1]>>(64-n)
	v[1] = v[1]<<n | v[0]>>(64-n)
	v[0] = v[0]<<n | x
}

// pop returns the low n (<= 64) bits of v and shifts them out.
func (v *u192) pop(n uint) uint64 {
	var x uint64
	if n == 64 {
		x = v[0]
		v[0], v[1], v[2] = v[1], v[2], 0
		return x
	}
	x = v[0] & (1<<n - 1)
	v[0] = v[0]>>n | v[1]<<(64-n)
	v[1] = v[1]>>n | v[2]<<(64-n)
	v[2] >>= n
	return x
}

// String returns the 56-digit decimal form.
func (s seqNum) String() string {
	var buf [seqNumDigits]byte
	return string(s.appendTo(buf[:0]))
}

// appendTo appends the decimal form to b.
func (s seqNum) appendTo(b []byte) []byte {
	var v u192
	v.push(4, 2)
	v.push(36, s.created&mask36)
	v.push(4, uint64(s.shard&0xf))
	v.push(64, s.offset) // shifts of 64 yield 0 in Go, so push works for n = 64
	var kind uint64
	if s.record {
		kind = 1
	}
	v.push(8, kind)
	v.push(36, s.arrival&mask36)
	v.push(32, uint64(s.shard))
	v.push(4, 2)
	// Three base-10^19 limbs: 56 digits = 18 + 19 + 19.
	const base = 1e19
	var limbs [3]uint64
	for i := range limbs {
		var r uint64
		v[2], r = bits.Div64(0, v[2], base)
		v[1], r = bits.Div64(r, v[1], base)
		v[0], r = bits.Div64(r, v[0], base)
		limbs[i] = r
	}
	b = strconv.AppendUint(b, limbs[2], 10)
	for _, l := range []uint64{limbs[1], limbs[0]} {
		// 19 digits: one, then nine pairs from the right.
		var d [19]byte
		for j := 17; j > 0; j -= 2 {
			p := l % 100 * 2
			l /= 100
			d[j], d[j+1] = digitPairs[p], digitPairs[p+1]
		}
		d[0] = byte('0' + l)
		b = append(b, d[:]...)
	}
	return b
}

// nextSeqStep is 2^80 in decimal: adding it to a number adds one to its
// record index (the 80 bits below the record index are kind, arrival time,
// shard index and trailer).
const nextSeqStep = "1208925819614629174706176"

// appendNextSeq appends the decimal form of the number that follows prev,
// the decimal form of a number, in its shard: the same fields with the
// record index one higher. It adds 2^80 to prev's digits, several times
// faster than appendTo's divisions, for the runs of consecutive records in
// GetRecords and PutRecords answers. prev may alias b. The record index
// must not be 2^64-1 (engine offsets stay far below).
//
// The 25 digits of 2^80 are added eight at a time: each group of eight
// digits is read into an integer, the step's group and the carry added,
// and the group written back, all within one 64-bit word (parse8, format8).
func appendNextSeq(b, prev []byte) []byte {
	k := len(b)
	b = append(b, prev...)
	d := b[k:]
	if len(d) != seqNumDigits {
		panic("streams: appendNextSeq of a number that is not 56 digits")
	}
	carry := uint32(0)
	for i, step := range [3]uint32{74706176, 96146291, 20892581} {
		g := d[seqNumDigits-8*(i+1) : seqNumDigits-8*i]
		v := parse8(g) + step + carry
		carry = b2u32(v >= 1e8)
		v -= carry * 1e8
		binary.LittleEndian.PutUint64(g, format8(v))
	}
	// The step's leading 1, then the carry on to the left.
	carry++
	for i := seqNumDigits - 25; carry != 0 && i >= 0; i-- {
		v := uint32(d[i]-'0') + carry
		carry = (v + 6) >> 4
		d[i] = byte('0' + v - 10*carry)
	}
	return b
}

func b2u32(c bool) uint32 {
	if c {
		return 1
	}
	return 0
}

// parse8 reads eight ASCII digits, the first the most significant.
func parse8(g []byte) uint32 {
	x := binary.LittleEndian.Uint64(g) - 0x3030303030303030
	x = x*10 + x>>8 // each 16-bit lane: two digits' value in its low byte
	x = ((x&0x000000FF000000FF)*(100+1000000<<32) + (x>>16&0x000000FF000000FF)*(1+10000<<32)) >> 32
	return uint32(x)
}

// format8 returns v (below 10^8) as eight ASCII digits in a little-endian
// word: its first byte is the most significant digit.
func format8(v uint32) uint64 {
	x := uint64(v/10000) | uint64(v%10000)<<32  // 32-bit lanes of 4 digits
	q := (x * 10486 >> 20) & 0x0000007F0000007F // each lane / 100
	x = q | (x-q*100)<<16                       // 16-bit lanes of 2 digits
	t := (x * 103 >> 10) & 0x000F000F000F000F   // each lane / 10
	x = t | (x-t*10)<<8                         // bytes of 1 digit
	return x + 0x3030303030303030
}

// digitPairs holds the two decimal digits of 0 to 99.
const digitPairs = "00010203040506070809" +
	"10111213141516171819" +
	"20212223242526272829" +
	"30313233343536373839" +
	"40414243444546474849" +
	"50515253545556575859" +
	"60616263646566676869" +
	"70717273747576777879" +
	"80818283848586878889" +
	"90919293949596979899"

// parseSeqNum decodes a sequence number written by seqNum.String. It reports
// false for anything that is not one.
func parseSeqNum(str string) (seqNum, bool) {
	if len(str) != seqNumDigits || str[0] == '0' {
		return seqNum{}, false
	}
	var v u192
	for i := 0; i < len(str); i++ {
		c := str[i]
		if c < '0' || c > '9' {
			return seqNum{}, false
		}
		// v = v*10 + digit
		var carry uint64
		hi, lo := bits.Mul64(v[0], 10)
		lo, c0 := bits.Add64(lo, uint64(c-'0'), 0)
		v[0], carry = lo, hi+c0
		hi, lo = bits.Mul64(v[1], 10)
		lo, c0 = bits.Add64(lo, carry, 0)
		v[1], carry = lo, hi+c0
		hi, lo = bits.Mul64(v[2], 10)
		lo, c0 = bits.Add64(lo, carry, 0)
		if hi != 0 || c0 != 0 {
			return seqNum{}, false
		}
		v[2] = lo
	}
	var s seqNum
	if v.pop(4) != 2 {
		return seqNum{}, false
	}
	s.shard = uint32(v.pop(32))
	s.arrival = v.pop(36)
	switch v.pop(8) {
	case 0:
	case 1:
		s.record = true
	default:
		return seqNum{}, false
	}
	s.offset = v.pop(64)
	if v.pop(4) != uint64(s.shard&0xf) {
		return seqNum{}, false
	}
	s.created = v.pop(36)
	if v.pop(4) != 2 || v[0] != 0 || v[1] != 0 || v[2] != 0 {
		return seqNum{}, false
	}
	return s, true
}
