package producer

import (
	"math/big"
	"testing"
)

// FuzzParseHashKey holds parseHashKey, which reads the hash key ranges of
// ListShards answers, to math/big's reading of the same decimal string
// under Kinesis' rules (no sign, no leading zero, at most 2^128-1).
func FuzzParseHashKey(f *testing.F) {
	for _, s := range []string{"0", "1", "01", "", "-1", "+1", "1e3", " 1",
		"340282366920938463463374607431768211455", "340282366920938463463374607431768211456",
		"170141183460469231731687303715884105728", "18446744073709551616", "99999999999999999999999999999999999999999"} {
		f.Add(s)
	}
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseHashKey(s)
		v, ok := new(big.Int).SetString(s, 10)
		want := ok && v.Sign() >= 0 && v.Cmp(limit) < 0 && v.String() == s
		if (err == nil) != want {
			t.Fatalf("parseHashKey(%q) error %v, want valid %v", s, err, want)
		}
		if err == nil {
			hi := new(big.Int).Rsh(v, 64).Uint64()
			lo := new(big.Int).And(v, new(big.Int).SetUint64(^uint64(0))).Uint64()
			if got != (hashKey{hi, lo}) {
				t.Fatalf("parseHashKey(%q) = %v, want %x %x", s, got, hi, lo)
			}
		}
	})
}
