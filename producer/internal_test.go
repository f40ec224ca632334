package producer

import (
	"crypto/md5"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseHashKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want hashKey
		ok   bool
	}{
		{"0", hashKey{}, true},
		{"1", hashKey{0, 1}, true},
		{"18446744073709551616", hashKey{1, 0}, true},
		{"340282366920938463463374607431768211455", hashKey{^uint64(0), ^uint64(0)}, true},
		{"340282366920938463463374607431768211456", hashKey{}, false},
		{"999999999999999999999999999999999999999", hashKey{}, false},
		{"01", hashKey{}, false},
		{"", hashKey{}, false},
		{"-1", hashKey{}, false},
		{"12a", hashKey{}, false},
		{"1234567890123456789012345678901234567890", hashKey{}, false},
	} {
		got, err := parseHashKey(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseHashKey(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestPartitionHash(t *testing.T) {
	c := newHashCache()
	for _, k := range []string{"a", "key-1", "日本語", string(make([]byte, 256))} {
		sum := md5.Sum([]byte(k))
		want, _ := parseHashKey(new(big.Int).SetBytes(sum[:]).String())
		if got := partitionHash(k); got != want {
			t.Errorf("partitionHash(%q) = %v, want %v", k, got, want)
		}
		for range 2 { // a miss, then a hit
			if got := c.hash(k); got != want {
				t.Errorf("cached hash(%q) = %v, want %v", k, got, want)
			}
		}
	}
}

func TestShardMapLookup(t *testing.T) {
	q := ^uint64(0) / 4
	m := &shardMap{shards: []shardRange{
		{id: "a", lo: hashKey{0, 0}, hi: hashKey{q, ^uint64(0)}},
		{id: "b", lo: hashKey{q + 1, 0}, hi: hashKey{2 * q, 5}},
		// a gap: (2q, 5] .. [2q, 7)
		{id: "c", lo: hashKey{2 * q, 7}, hi: hashKey{^uint64(0), ^uint64(0)}},
	}}
	for _, tc := range []struct {
		h    hashKey
		want int
	}{
		{hashKey{0, 0}, 0},
		{hashKey{q, ^uint64(0)}, 0},
		{hashKey{q + 1, 0}, 1},
		{hashKey{2 * q, 5}, 1},
		{hashKey{2 * q, 6}, -1},
		{hashKey{2 * q, 7}, 2},
		{hashKey{^uint64(0), ^uint64(0)}, 2},
	} {
		if got := m.lookup(tc.h); got != tc.want {
			t.Errorf("lookup(%v) = %d, want %d", tc.h, got, tc.want)
		}
	}
}

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	l := newLimiter(t0)
	// A full bucket lets a second's worth through at once.
	if d := l.wait(t0, 1, shardBytesPerSecond); d != 0 {
		t.Fatalf("a full bucket waits %v", d)
	}
	l.take(t0, 1, shardBytesPerSecond)
	// Then half a second's worth waits half a second and the 5 ms
	// margin, less what passed.
	if d := l.wait(t0, 1, shardBytesPerSecond/2); d != 505*ms {
		t.Fatalf("wait = %v, want 505ms", d)
	}
	if d := l.wait(t0.Add(200*ms), 1, shardBytesPerSecond/2); d != 305*ms {
		t.Fatalf("wait after 200ms = %v, want 305ms", d)
	}
	l.take(t0.Add(505*ms), 1, shardBytesPerSecond/2)
	if want := 0.005 * shardBytesPerSecond; l.bytes < want-1 || l.bytes > want+1 {
		t.Fatalf("%v bytes left, want %v", l.bytes, want)
	}
	// Records count on their own: 900 after 600 wait for 505 to come back.
	l = newLimiter(t0)
	l.take(t0, 600, 10)
	if d := l.wait(t0, 900, 10); d != 505*ms {
		t.Fatalf("records wait = %v, want 505ms", d)
	}
	// A request's flight time earns nothing.
	l = newLimiter(t0)
	l.take(t0, 1000, 0)
	l.landed(t0.Add(100 * ms))
	if d := l.wait(t0.Add(100*ms), 500, 0); d != 505*ms {
		t.Fatalf("wait after a call of 100ms = %v, want 505ms", d)
	}
	// A long idle time refills no more than a second's worth.
	l = newLimiter(t0)
	l.take(t0, 1000, shardBytesPerSecond)
	if d := l.wait(t0.Add(time.Hour), 1000, shardBytesPerSecond); d != 0 {
		t.Fatalf("after an idle hour a second's worth waits %v", d)
	}
	l.take(t0.Add(time.Hour), 1000, shardBytesPerSecond)
	if d := l.wait(t0.Add(time.Hour), 1, 0); d != 6*ms {
		t.Fatalf("after a second's worth, one record waits %v, want 6ms", d)
	}
}

func TestBackoff(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base, limit := 100*time.Millisecond, 5*time.Second
	if d := backoff(rng, 0, base, limit); d != 0 {
		t.Fatalf("attempt 0 waits %v", d)
	}
	for attempt, want := range map[int]time.Duration{1: base, 2: 2 * base, 3: 4 * base, 6: 3200 * time.Millisecond, 7: limit, 50: limit} {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := backoff(rng, attempt, base, limit)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, want/2, want)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Fatalf("attempt %d: only %d distinct pauses in 200: no jitter", attempt, len(seen))
		}
	}
}

func TestKeyQueues(t *testing.T) {
	k := newKeyQueues()
	rec := func(key string, n int) *userRecord {
		return &userRecord{key: key, data: []byte{byte(n)}, enq: time.Duration(n)}
	}
	// Key a has a backlog; b and c one record each.
	for i := range 5 {
		k.push(rec("a", i))
	}
	k.push(rec("b", 10))
	k.push(rec("c", 20))
	var b batch
	k.take(&b, 0, time.Hour, 1<<20)
	if got := keysOf(b.recs); got != "a0 b10 c20" {
		t.Fatalf("first call %q, want one record per key", got)
	}
	// The call failed: its records go back in front of their keys.
	k.pushFront(b.recs)
	k.push(rec("b", 11))
	b = batch{}
	k.take(&b, 0, time.Hour, 1<<20)
	if got := keysOf(b.recs); got != "a0 b10 c20" {
		t.Fatalf("retried call %q", got)
	}
	b = batch{}
	k.take(&b, 0, time.Hour, 1<<20)
	if got := keysOf(b.recs); got != "a1 b11" {
		t.Fatalf("next call %q", got)
	}
	// Expired records are handed out, and the key's next record taken.
	b = batch{}
	k.take(&b, 4, 2, 1<<20)
	if got := keysOf(b.expired); got != "a2" || keysOf(b.recs) != "a3" {
		t.Fatalf("expired %q, taken %q", got, keysOf(b.recs))
	}
	if got := keysOf(k.drain()); got != "a4" || k.len() != 0 {
		t.Fatalf("left %q", got)
	}
}

// keysOf lists records as key and data byte, sorted: the order among
// keys of one call does not matter.
func keysOf(recs []userRecord) string {
	var s []string
	for _, r := range recs {
		s = append(s, fmt.Sprint(r.key, r.data[0]))
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}
