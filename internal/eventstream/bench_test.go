package eventstream

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	sdk "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

var benchSizes = []int{0, 1 << 10, 64 << 10, 1 << 20}

func benchEvent(size int) Message {
	return EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, bytes.Repeat([]byte("r"), size))
}

func BenchmarkEncode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			m := benchEvent(size)
			n, _ := m.EncodedLen()
			enc := NewEncoder(io.Discard)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if err := enc.Encode(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncodeEventMessage measures the hot path as a pusher writes it:
// build the event with EventMessage, then encode it.
func BenchmarkEncodeEventMessage(b *testing.B) {
	payload := bytes.Repeat([]byte("r"), 1<<10)
	enc := NewEncoder(io.Discard)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if err := enc.Encode(EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, payload)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			frame := encode(b, benchEvent(size))
			r := bytes.NewReader(frame)
			d := NewDecoder(r)
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(frame)
				if _, err := d.Decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSDKEncode and BenchmarkSDKDecode measure aws-sdk-go-v2's codec on
// the same messages, for comparison.
func BenchmarkSDKEncode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			m := toSDKMessage(b, benchEvent(size))
			n, _ := benchEvent(size).EncodedLen()
			enc := sdk.NewEncoder()
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if err := enc.Encode(io.Discard, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSDKDecode(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			frame := encode(b, benchEvent(size))
			r := bytes.NewReader(frame)
			dec := sdk.NewDecoder()
			buf := make([]byte, 0, len(frame))
			b.SetBytes(int64(len(frame)))
			b.ReportAllocs()
			for b.Loop() {
				r.Reset(frame)
				if _, err := dec.Decode(r, buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
