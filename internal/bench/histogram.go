package bench

import (
	"math"
	"math/bits"
	"time"
)

// histSubBits sets the precision of a Histogram: each power-of-two range of
// values is split into 2^histSubBits linear buckets, so a recorded value is
// known to within 1/2^histSubBits (under 0.8%) of itself.
const histSubBits = 7

const histSub = 1 << histSubBits

// Histogram counts non-negative int64 values (latencies in nanoseconds) in
// log-linear buckets, like an HDR histogram: exact below 2^(histSubBits+1),
// and within a relative error of 2^-histSubBits above. Memory grows with the
// largest value recorded (at most a few thousand buckets).
//
// A Histogram is not safe for concurrent use: each goroutine records into its
// own and the owner merges them when the goroutines are done.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{min: math.MaxInt64}
}

// histIndex returns the bucket of v (v >= 0).
func histIndex(v int64) int {
	u := uint64(v)
	shift := bits.Len64(u) - (histSubBits + 1)
	if shift < 0 {
		shift = 0
	}
	return shift*histSub + int(u>>uint(shift))
}

// histBounds returns the smallest and largest value that fall in bucket i.
func histBounds(i int) (lo, hi int64) {
	if i < 2*histSub {
		return int64(i), int64(i)
	}
	shift := i/histSub - 1
	m := int64(i - shift*histSub)
	return m << uint(shift), (m+1)<<uint(shift) - 1
}

// Record adds one value; negative values are recorded as 0.
func (h *Histogram) Record(v int64) {
	if v < 0 {
		v = 0
	}
	i := histIndex(v)
	if i >= len(h.counts) {
		grown := make([]uint64, i+1+histSub)
		copy(grown, h.counts)
		h.counts = grown
	}
	h.counts[i]++
	h.n++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// RecordDuration adds one duration.
func (h *Histogram) RecordDuration(d time.Duration) { h.Record(int64(d)) }

// Merge adds all values of o to h.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if len(o.counts) > len(h.counts) {
		grown := make([]uint64, len(o.counts))
		copy(grown, h.counts)
		h.counts = grown
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count returns the number of values recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Min returns the smallest value recorded, or 0 if none.
func (h *Histogram) Min() int64 {
	if h.n == 0 {
		return 0
	}
	return h.min
}

// Max returns the largest value recorded, or 0 if none.
func (h *Histogram) Max() int64 { return h.max }

// Mean returns the average of the values recorded, or 0 if none.
func (h *Histogram) Mean() float64 {
	if h.n == 0 {
		return 0
	}
	return h.sum / float64(h.n)
}

// Quantile returns the value below or at which a fraction q (0..1) of the
// recorded values fall: the upper bound of the bucket holding the value of
// rank ceil(q*n), clamped to the observed minimum and maximum. It returns 0
// when nothing was recorded.
func (h *Histogram) Quantile(q float64) int64 {
	if h.n == 0 {
		return 0
	}
	q = min(max(q, 0), 1)
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank == 0 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			_, hi := histBounds(i)
			return min(max(hi, h.min), h.max)
		}
	}
	return h.max
}
