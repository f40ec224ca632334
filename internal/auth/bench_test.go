package auth

import (
	"bytes"
	"io"
	"strconv"
	"testing"
)

// BenchmarkVerify is the whole check of one signed request: Begin, the
// body read through Body, Finish.
func BenchmarkVerify(b *testing.B) {
	for _, size := range []int{1 << 10, 700 << 10} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			v := testVerifier(b, testNow)
			body := bytes.Repeat([]byte("x"), size)
			r := sdkRequest(b, string(body), signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow))
			buf := make([]byte, 32<<10)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				r.Body = io.NopCloser(bytes.NewReader(body))
				c, err := v.Begin(r)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(io.Discard, c.Body(r.Body), buf); err != nil {
					b.Fatal(err)
				}
				if err := c.Finish(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
