package b64

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

// referenceDecodeQuoted is DecodeQuoted written plainly: find the quote,
// refuse CR and LF, then decode with the standard library's strict decoder.
func referenceDecodeQuoted(dst, src []byte) (n, end int, ok bool) {
	end = bytes.IndexByte(src, '"')
	if end < 0 {
		return 0, 0, false
	}
	s := src[:end]
	if bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		return 0, 0, false
	}
	n, err := base64.StdEncoding.Strict().Decode(dst, s)
	if err != nil {
		return 0, 0, false
	}
	return n, end, true
}

// checkDecodeQuoted compares DecodeQuoted with the reference on src, with
// dst as large as the whole input allows and, when the input is valid, with
// dst exactly as large as its documented bound, guarded by sentinels.
func checkDecodeQuoted(t *testing.T, src []byte) {
	t.Helper()
	want := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	wn, wend, wok := referenceDecodeQuoted(want, src)

	got := make([]byte, len(want))
	n, end, ok := DecodeQuoted(got, src)
	if ok != wok {
		t.Fatalf("DecodeQuoted(%q): ok %v, want %v", src, ok, wok)
	}
	if !ok {
		return
	}
	if n != wn || end != wend || !bytes.Equal(got[:n], want[:wn]) {
		t.Fatalf("DecodeQuoted(%q) = %x, end %d; want %x, end %d", src, got[:n], end, want[:wn], wend)
	}

	// The bound: len(dst) == DecodedLen(end), and nothing written past it.
	const sentinel = 0xa5
	exact := base64.StdEncoding.DecodedLen(end)
	buf := bytes.Repeat([]byte{sentinel}, exact+16)
	n, end, ok = DecodeQuoted(buf[:exact], src)
	if !ok || n != wn || end != wend || !bytes.Equal(buf[:n], want[:wn]) {
		t.Fatalf("DecodeQuoted(%q) into exactly %d bytes = %x, end %d, ok %v", src, exact, buf[:n], end, ok)
	}
	for i, c := range buf[exact:] {
		if c != sentinel {
			t.Fatalf("DecodeQuoted(%q) wrote past dst at %d", src, exact+i)
		}
	}
	// One byte short of the output is refused, not overrun.
	if wn > 0 {
		if _, _, ok := DecodeQuoted(buf[:wn-1], src); ok {
			t.Fatalf("DecodeQuoted(%q) into %d bytes: ok, want refused", src, wn-1)
		}
	}
}

func TestDecodeQuoted(t *testing.T) {
	long := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("runnel"), 100))
	tests := []struct {
		name string
		src  string
		want string // decoded bytes, if ok
		end  int
		ok   bool
	}{
		{name: "empty", src: `"`, want: "", end: 0, ok: true},
		{name: "nothing", src: ``},
		{name: "no quote", src: `QUJD`},
		{name: "no quote after padding", src: `QQ==`},
		{name: "one char", src: `Q"`},
		{name: "two chars", src: `QQ"`},
		{name: "three chars", src: `QUI"`},
		{name: "four chars", src: `QUJD"`, want: "ABC", end: 4, ok: true},
		{name: "five chars", src: `QUJDR"`},
		{name: "six chars", src: `QUJDRA"`},
		{name: "seven chars", src: `QUJDREU"`},
		{name: "eight chars", src: `QUJDREVG"`, want: "ABCDEF", end: 8, ok: true},
		{name: "nine chars", src: `QUJDREVGRw"`[:9] + `"`},
		{name: "ten chars", src: `QUJDREVGRw"`},
		{name: "eleven chars", src: `QUJDREVGR0g"`},
		{name: "twelve chars", src: `QUJDREVGR0hJ"`, want: "ABCDEFGHI", end: 12, ok: true},
		{name: "double padding", src: `QQ=="`, want: "A", end: 4, ok: true},
		{name: "single padding", src: `QUI="`, want: "AB", end: 4, ok: true},
		{name: "padding after eight", src: `QUJDREVGRw=="`, want: "ABCDEFG", end: 12, ok: true},
		{name: "one padding where two are due", src: `QQ="`},
		{name: "three padding", src: `Q==="`},
		{name: "padding first", src: `====" `},
		{name: "padding second", src: `Q==="`},
		{name: "too much padding", src: `QUI=="`},
		{name: "padding in the middle", src: `QQ==QUJD"`},
		{name: "char after double padding", src: `QQ==Q"`},
		{name: "char after single padding", src: `QUI=Q"`},
		{name: "padding alone", src: `="`},
		{name: "padding second of a quantum", src: `Q="`},
		{name: "padding second after eight", src: `QUJDREVGQ="`},
		{name: "trailing bits refused", src: `QR=="`},
		{name: "trailing bits refused, single padding", src: `QUJ="`},
		{name: "trailing bits refused, symbols", src: `+/+="`},
		{name: "trailing bits zero, symbols", src: `+/+8"`, want: "\xfb\xff\xbc", end: 4, ok: true},
		{name: "trailing bits refused after eight", src: `QUJDREVGRx=="`},
		{name: "quote mid quantum", src: `QU"JD"`},
		{name: "later quote ignored", src: `QUJD"QQ"`, want: "ABC", end: 4, ok: true},
		{name: "rest of the body", src: `QUJD","PartitionKey":"k"}]}`, want: "ABC", end: 4, ok: true},
		{name: "newline", src: "QUJD\nQUJD\""},
		{name: "newline at the end", src: "QUJD\n\""},
		{name: "carriage return", src: "QU\rJD\""},
		{name: "newline after padding", src: "QQ==\n\""},
		{name: "escape", src: `QUJD\/"`},
		{name: "escaped quote", src: `QUJD\""`},
		{name: "URL alphabet", src: `-_-_"`},
		{name: "space", src: `QU JD"`},
		{name: "tab", src: "QUJD\t\""},
		{name: "NUL", src: "QUJ\x00\""},
		{name: "high byte", src: "QUJ\xc3\""},
		{name: "high byte in fast loop", src: "QUJDREV\xffQUJD\""},
		{name: "UTF-8 letter", src: "QUJDRE\xc3\xa9\""},
		{name: "long", src: long + `"`, want: strings.Repeat("runnel", 100), end: len(long), ok: true},
		{name: "long with a bad byte near the end", src: long[:len(long)-10] + "*" + long[len(long)-9:] + `"`},
		{name: "long without quote", src: long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := []byte(tt.src)
			dst := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
			n, end, ok := DecodeQuoted(dst, src)
			if ok != tt.ok {
				t.Fatalf("ok %v, want %v", ok, tt.ok)
			}
			if ok && (string(dst[:n]) != tt.want || end != tt.end) {
				t.Fatalf("got %q, end %d; want %q, end %d", dst[:n], end, tt.want, tt.end)
			}
			checkDecodeQuoted(t, src)
		})
	}
}

const stdAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// TestDecodeQuotedEveryByte puts every byte value in every position of
// short inputs, valid and padded ones, each ending in the quote: the result
// must match the reference wherever the byte lands, in the fast loop or the
// tail.
func TestDecodeQuotedEveryByte(t *testing.T) {
	for _, s := range []string{
		`QUJD"`,
		`QQ=="`,
		`QUI="`,
		`QUJDREVG"`,
		`QUJDREVGRw=="`,
		`QUJDREVGR0hJ"`,
		`QUJDQQ"`,
		`QUJDREVGR0hJSktMTU5P"`,
	} {
		for i := range len(s) {
			src := []byte(s)
			for c := range 256 {
				src[i] = byte(c)
				checkDecodeQuoted(t, src)
				if !strings.ContainsRune(stdAlphabet, rune(c)) && c != '=' && c != '"' {
					if _, _, ok := DecodeQuoted(make([]byte, len(src)), src); ok {
						t.Fatalf("DecodeQuoted(%q) accepted byte %#x", src, c)
					}
				}
			}
		}
	}
}

// TestDecodeQuotedRandom decodes the encodings of random data of every
// length up to a few quanta past the fast loop's step, intact and with one
// byte changed.
func TestDecodeQuotedRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	special := []byte("=\"\\\r\n +/A")
	for n := range 100 {
		for range 20 {
			data := make([]byte, n)
			for i := range data {
				data[i] = byte(r.IntN(256))
			}
			src := base64.StdEncoding.AppendEncode(nil, data)
			src = append(src, `","PartitionKey":"k"}`...)
			checkDecodeQuoted(t, src)
			i := r.IntN(len(src))
			if r.IntN(2) == 0 {
				src[i] = special[r.IntN(len(special))]
			} else {
				src[i] = byte(r.IntN(256))
			}
			checkDecodeQuoted(t, src)
		}
	}
}

func FuzzDecodeQuoted(f *testing.F) {
	for _, s := range []string{
		``, `"`, `QUJD"`, `QQ=="`, `QUI="`, `QR=="`, `QQ="`, `Q==="`, `QUJDREVGRw=="`,
		`QUJDREVGR0hJ","PartitionKey":"k"}`, "QUJD\nQUJD\"", "QUJD\r\"", `QUJD\"`,
		"QUJDREV\xffQUJD\"", `QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="`, `QU"JD"`, `Q="`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		checkDecodeQuoted(t, src)
	})
}

func BenchmarkDecodeQuoted(b *testing.B) {
	for _, size := range []int{100, 1 << 10} {
		data := make([]byte, size)
		for i := range data {
			data[i] = byte(i * 31)
		}
		src := base64.StdEncoding.AppendEncode(nil, data)
		src = append(src, `","PartitionKey":"partition-key-0001"}`...)
		dst := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
		for _, c := range []struct {
			name   string
			decode func(dst, src []byte) (int, int, bool)
		}{
			{"runnel", DecodeQuoted},
			{"reference", referenceDecodeQuoted},
		} {
			b.Run(sizeName(size)+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, ok := c.decode(dst, src); !ok {
						b.Fatal("refused")
					}
				}
			})
		}
	}
}
