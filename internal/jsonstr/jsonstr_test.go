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
