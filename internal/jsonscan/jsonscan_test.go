package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzPlainString: the word-at-a-time check agrees with the plain
// definition.
func FuzzPlainString(f *testing.F) {
	for _, s := range []string{"", "key-1", "49590338271490256608559692538361571095921575989136588898", "abcdefgh\\", "abcdefghi\x1f", "käsekäsekäse", "abcdefgh\xff", "\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x7f\x20"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := utf8.Valid(b) && !bytes.ContainsAny(b, "\\") && !bytes.ContainsFunc(b, func(r rune) bool { return r < 0x20 })
		if got := Plain(b); got != want {
			t.Fatalf("Plain(%q) = %v, want %v", b, got, want)
		}
	})
}

// FuzzSkip: Skip accepts only valid JSON (within its subset and depth) and
// stops exactly at the end of the value.
func FuzzSkip(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e3,"x",null,true,false,{}]}`, `[]`, `"k"`, `0`, `01`, `{"a":}`, `[1,]`, `"a\"b"`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s := Scanner{B: b}
		if s.Skip(0) && s.End() && !json.Valid(b) {
			t.Fatalf("Skip accepted invalid JSON %q", b)
		}
	})
}

func TestScanner(t *testing.T) {
	s := Scanner{B: []byte(` {"Records": [ {"K":"v","N":12,"Z":null} ], "Next":"", "X":{"y":[true]}} `)}
	var keys []string
	var n, z int
	ok := s.Object(func(key []byte) bool {
		keys = append(keys, string(key))
		switch string(key) {
		case "Records":
			return s.Array(func() bool {
				return s.Object(func(k []byte) bool {
					switch string(k) {
					case "N":
						n++
						return s.Digits()
					case "Z":
						v, ok := s.StrOrNull()
						if v == nil {
							z++
						}
						return ok
					}
					_, ok := s.Str()
					return ok
				})
			})
		case "Next":
			v, ok := s.StrOrNull()
			return ok && v != nil && len(v) == 0
		}
		return s.Skip(1)
	})
	if !ok || !s.End() || len(keys) != 3 || n != 1 || z != 1 {
		t.Fatalf("ok %v end %v keys %v n %d z %d", ok, s.End(), keys, n, z)
	}
	for _, bad := range []string{`"a\\b"`, "\"a\x01\"", `"abc`} {
		s := Scanner{B: []byte(bad)}
		if _, ok := s.Str(); ok {
			t.Errorf("Str accepted %q", bad)
		}
	}
	if s := (Scanner{B: []byte("0123")}); s.Digits() {
		t.Error("Digits accepted a leading zero")
	}
}
