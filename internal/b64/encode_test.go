package b64

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestAppendEncode(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for n := range 200 {
		for range 20 {
			src := make([]byte, n)
			for i := range src {
				src[i] = byte(r.IntN(256))
			}
			prefix := []byte("xy")
			want := base64.StdEncoding.AppendEncode(bytes.Clone(prefix), src)
			if got := AppendEncode(bytes.Clone(prefix), src); !bytes.Equal(got, want) {
				t.Fatalf("len %d: got %s, want %s", n, got, want)
			}
			if got := AppendEncode(make([]byte, 2, 1<<12), src); !bytes.Equal(got[2:], want[2:]) {
				t.Fatalf("len %d with room: got %s", n, got)
			}
		}
	}
}

func FuzzAppendEncode(f *testing.F) {
	f.Add([]byte("hello, world"), []byte("p"))
	f.Add([]byte{0xff, 0xfe, 0, 1, 2, 3, 4, 5, 6}, []byte(nil))
	f.Fuzz(func(t *testing.T, src, prefix []byte) {
		want := base64.StdEncoding.AppendEncode(bytes.Clone(prefix), src)
		if got := AppendEncode(bytes.Clone(prefix), src); !bytes.Equal(got, want) {
			t.Fatalf("got %s, want %s", got, want)
		}
	})
}

func BenchmarkAppendEncode(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		src := make([]byte, size)
		for i := range src {
			src[i] = byte(i * 31)
		}
		dst := make([]byte, 0, base64.StdEncoding.EncodedLen(len(src)))
		b.Run(sizeName(size)+"/runnel", func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendEncode(dst[:0], src)
			}
		})
		b.Run(sizeName(size)+"/stdlib", func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			for b.Loop() {
				dst = base64.StdEncoding.AppendEncode(dst[:0], src)
			}
		})
	}
}

func sizeName(n int) string {
	if n%(1<<10) == 0 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
