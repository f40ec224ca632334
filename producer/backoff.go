package producer

import (
	"math/rand/v2"
	"time"
)

// backoff is the pause before the attempt-th retry (1, 2, ...) of a shard's
// failed records: base·2^(attempt-1), capped at max, with "equal jitter":
// a uniformly random time in the upper half, so that producers throttled
// together do not retry together while each still waits at least half
// the exponential step.
func backoff(rng *rand.Rand, attempt int, base, limit time.Duration) time.Duration {
	if attempt < 1 {
		return 0
	}
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + time.Duration(rng.Int64N(int64(half)+1))
}
