package console

import (
	"math"
	"testing"
)

func TestHashFrac(t *testing.T) {
	for _, tc := range []struct {
		dec  string
		want float64
	}{
		{"0", 0},
		{"170141183460469231731687303715884105728", 0.5}, // 2^127
		{"340282366920938463463374607431768211455", 1},   // 2^128-1
		{"85070591730234615865843651857942052864", 0.25},
		{"not a number", 0},
	} {
		if got := hashFrac(tc.dec); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("hashFrac(%s) = %v, want %v", tc.dec, got, tc.want)
		}
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 37: 50, 51: 100, 4999: 5000, 5001: 10000} {
		if got := niceCeil(in); math.Abs(got-want) > 1e-9 {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestHostAllowed(t *testing.T) {
	allowed := []string{"console.example", "other.example:8080"}
	for host, want := range map[string]bool{
		"":                       true,
		"127.0.0.1:4568":         true,
		"[::1]:4568":             true,
		"localhost":              true,
		"a.localhost:1":          true,
		"console.example":        true,
		"CONSOLE.example:4568":   true,
		"other.example:8080":     true,
		"other.example:9090":     false,
		"evil.example":           false,
		"127.0.0.1.evil.example": false,
	} {
		if got := hostAllowed(host, allowed); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
	if !hostAllowed("anything.example", []string{"*"}) {
		t.Error(`"*" does not allow any host`)
	}
}
