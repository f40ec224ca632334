package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	// Every value falls in a bucket whose bounds hold it, bucket bounds are
	// contiguous, and a bucket is narrower than 1/histSub of its values.
	prevHi := int64(-1)
	for i := 0; i < 40*histSub; i++ {
		lo, hi := histBounds(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if histIndex(lo) != i || histIndex(hi) != i {
			t.Fatalf("bucket %d [%d,%d]: index(lo)=%d index(hi)=%d", i, lo, hi, histIndex(lo), histIndex(hi))
		}
		if w := hi - lo + 1; i >= 2*histSub && float64(w)/float64(lo) > 1.0/histSub+1e-12 {
			t.Fatalf("bucket %d [%d,%d] too wide", i, lo, hi)
		}
		prevHi = hi
	}
	if i := histIndex(math.MaxInt64); i <= 0 {
		t.Fatalf("index of MaxInt64 = %d", i)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []int64
		q      map[float64]int64 // expected exact values (small values are exact)
	}{
		{name: "empty", values: nil, q: map[float64]int64{0.5: 0, 0.99: 0, 1: 0}},
		{name: "single", values: []int64{42}, q: map[float64]int64{0: 42, 0.5: 42, 1: 42}},
		{name: "1..100", values: seq(1, 100), q: map[float64]int64{0.01: 1, 0.5: 50, 0.9: 90, 0.99: 99, 1: 100}},
		{name: "negative as zero", values: []int64{-5, 3}, q: map[float64]int64{0.5: 0, 1: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := NewHistogram()
			for _, v := range tt.values {
				h.Record(v)
			}
			if h.Count() != uint64(len(tt.values)) {
				t.Fatalf("Count = %d, want %d", h.Count(), len(tt.values))
			}
			for q, want := range tt.q {
				if got := h.Quantile(q); got != want {
					t.Errorf("Quantile(%g) = %d, want %d", q, got, want)
				}
			}
		})
	}
}

func seq(lo, hi int64) []int64 {
	var s []int64
	for v := lo; v <= hi; v++ {
		s = append(s, v)
	}
	return s
}

func TestHistogramAccuracy(t *testing.T) {
	// Latency-like values (log-normal around 2 ms): quantiles within the
	// bucket precision of the exact ones; min, max and mean exact.
	rng := rand.New(rand.NewPCG(1, 2))
	h := NewHistogram()
	vals := make([]int64, 100000)
	var sum float64
	for i := range vals {
		v := int64(math.Exp(rng.NormFloat64()) * float64(2*time.Millisecond))
		vals[i] = v
		sum += float64(v)
		h.Record(v)
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(math.Ceil(q*float64(len(vals))))-1]
		got := h.Quantile(q)
		if rel := math.Abs(float64(got-exact)) / float64(exact); rel > 1.0/histSub {
			t.Errorf("Quantile(%g) = %d, exact %d (rel err %.4f)", q, got, exact, rel)
		}
	}
	if h.Min() != vals[0] || h.Max() != vals[len(vals)-1] {
		t.Errorf("Min/Max = %d/%d, want %d/%d", h.Min(), h.Max(), vals[0], vals[len(vals)-1])
	}
	if math.Abs(h.Mean()-sum/float64(len(vals))) > 1e-6*h.Mean() {
		t.Errorf("Mean = %g, want %g", h.Mean(), sum/float64(len(vals)))
	}
}

func TestHistogramMerge(t *testing.T) {
	a, b, all := NewHistogram(), NewHistogram(), NewHistogram()
	for v := int64(0); v < 10000; v += 7 {
		a.Record(v)
		all.Record(v)
	}
	for v := int64(1_000_000); v < 50_000_000; v += 99_991 {
		b.Record(v)
		all.Record(v)
	}
	m := NewHistogram()
	m.Merge(a)
	m.Merge(b)
	m.Merge(NewHistogram())
	m.Merge(nil)
	for _, q := range []float64{0, 0.1, 0.5, 0.9, 0.99, 1} {
		if m.Quantile(q) != all.Quantile(q) {
			t.Errorf("merged Quantile(%g) = %d, want %d", q, m.Quantile(q), all.Quantile(q))
		}
	}
	if m.Count() != all.Count() || m.Min() != all.Min() || m.Max() != all.Max() {
		t.Errorf("merged count/min/max %d/%d/%d, want %d/%d/%d", m.Count(), m.Min(), m.Max(), all.Count(), all.Min(), all.Max())
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	h := NewHistogram()
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]int64, 4096)
	for i := range vals {
		vals[i] = int64(rng.ExpFloat64() * 1e6)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		h.Record(vals[i&4095])
	}
}
