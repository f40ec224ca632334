package bench

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// KeyDist names how producers pick partition keys.
type KeyDist string

// The key distributions.
const (
	// KeyUniform picks every key with the same probability.
	KeyUniform KeyDist = "uniform"
	// KeyZipf picks key i with probability proportional to 1/(1+i)^s: a few
	// hot keys (popular users, chatty devices) and a long tail.
	KeyZipf KeyDist = "zipf"
)

// keySet holds the partition keys of a run, shared read-only by producers and
// consumers: key i is prefix followed by i, zero-padded.
type keySet struct {
	names []string
}

func newKeySet(prefix string, n int) *keySet {
	width := len(strconv.Itoa(max(n-1, 0)))
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%0*d", prefix, width, i)
	}
	return &keySet{names: names}
}

// keyPicker draws key indexes for one producer. Not safe for concurrent use.
type keyPicker struct {
	n    int
	rng  *rand.Rand
	zipf *rand.Zipf
}

func newKeyPicker(dist KeyDist, s float64, n int, rng *rand.Rand) *keyPicker {
	p := &keyPicker{n: n, rng: rng}
	if dist == KeyZipf && n > 1 {
		p.zipf = rand.NewZipf(rng, s, 1, uint64(n-1))
	}
	return p
}

func (p *keyPicker) next() uint32 {
	switch {
	case p.n <= 1:
		return 0
	case p.zipf != nil:
		return uint32(p.zipf.Uint64())
	default:
		return uint32(p.rng.IntN(p.n))
	}
}
