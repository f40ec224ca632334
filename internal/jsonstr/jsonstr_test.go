package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

// stdlib encodes s as encoding/json does with HTML escaping off.
func stdlib(t testing.TB, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "key-1", `a"b\c`, "tab\tnl\nnul\x00\x1f\b\f\r", "é€😀", "bad\xffutf8\xfe", "\u2028\u2029", "<&>"} {
		if got, want := Append([]byte("x"), s), append([]byte("x"), stdlib(t, s)...); !bytes.Equal(got, want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
		// Plain is conservative (ASCII only), but never wrong.
		if Plain(s) && string(stdlib(t, s)) != `"`+s+`"` {
			t.Errorf("Plain(%q) but encoding/json escapes it", s)
		}
	}
}

func FuzzAppend(f *testing.F) {
	for _, s := range []string{"", "key-1", `"\`, "\x00\x7f\u2028", "\xff\xfe", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := Append(nil, s)
		if want := stdlib(t, s); !bytes.Equal(b, want) {
			t.Fatalf("%q encoded as %s, encoding/json writes %s", s, b, want)
		}
		var out string
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%q encoded as %s: %v", s, b, err)
		}
	})
}

// plainRef is Plain one byte at a time.
func plainRef(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func TestPlainEveryByteEveryPosition(t *testing.T) {
	base := []byte("49590338271490256608559692538361571095921575989136588898abcdef")
	for n := 0; n <= 24; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := append([]byte(nil), base[:n]...)
				b[pos] = byte(c)
				if got, want := Plain(string(b)), plainRef(string(b)); got != want {
					t.Fatalf("Plain(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

func FuzzPlain(f *testing.F) {
	for _, s := range []string{"", "a", "49590338271490256608559692538361571095921575989136588898", "key-\"1", "\x1f01234567", "0123456\\", "\u00e9\u00e9\u00e9\u00e9", " ~~~~~~~~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Plain(s), plainRef(s); got != want {
			t.Errorf("Plain(%q) = %v, want %v", s, got, want)
		}
	})
}

func BenchmarkPlain(b *testing.B) {
	for _, tc := range []struct{ name, s string }{
		{"sequence-number", "49590338271490256608559692538361571095921575989136588898"},
		{"partition-key", "key-1023"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.s)))
			b.ReportAllocs()
			for b.Loop() {
				if !Plain(tc.s) {
					b.Fatal("not plain")
				}
			}
		})
	}
}
