package bench

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestRecordRoundTrip(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC).UnixNano()
	for _, shape := range []Shape{ShapeRandom, ShapeClickstream, ShapeIoT, ShapeLogs} {
		for _, size := range []int{headerSize, headerSize + 1, 100, 137, 500, 1536, 4096} {
			w := newBodyWriter(shape, rand.New(rand.NewPCG(uint64(size), 9)))
			data := make([]byte, size)
			w.fill(data[headerSize:], "user-00042", 7, now)
			h := header{Run: 0xabcdef01, Producer: 3, Seq: 7, Sent: now, Key: 42}
			sealRecord(data, h)
			if len(data) != size {
				t.Fatalf("%s/%d: size changed to %d", shape, size, len(data))
			}
			got, err := decodeRecord(data)
			if err != nil || got != h {
				t.Fatalf("%s/%d: decode = %+v, %v; want %+v", shape, size, got, err, h)
			}
			// Any flipped bit is caught.
			for i := 0; i < size; i += max(1, size/37) {
				bad := bytes.Clone(data)
				bad[i] ^= 1 << (i % 8)
				if _, err := decodeRecord(bad); err == nil {
					t.Fatalf("%s/%d: flip at %d not detected", shape, size, i)
				}
			}
		}
	}
}

func TestShapes(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC).UnixNano()
	rng := rand.New(rand.NewPCG(1, 1))
	for _, shape := range []Shape{ShapeClickstream, ShapeIoT} {
		w := newBodyWriter(shape, rng)
		body := make([]byte, 700)
		w.fill(body, "device-7", 1, now)
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s body is not JSON: %v\n%s", shape, err, body)
		}
	}
	w := newBodyWriter(ShapeLogs, rng)
	body := make([]byte, 2000)
	w.fill(body, "host-03", 1, now)
	if !strings.HasPrefix(string(body), "2026-01-02T03:04:05.006Z ") || !strings.Contains(string(body), "[host-03]") {
		t.Errorf("log body = %.120s", body)
	}
}

func TestAppendTimestamp(t *testing.T) {
	for _, tm := range []time.Time{
		time.Unix(0, 0),
		time.Date(2000, 2, 29, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(2100, 3, 1, 12, 30, 0, 0, time.UTC),
	} {
		want := tm.UTC().Format("2006-01-02T15:04:05.000Z")
		if got := string(appendTimestamp(nil, tm.UnixNano())); got != want {
			t.Errorf("appendTimestamp(%v) = %s, want %s", tm, got, want)
		}
	}
}

func TestDecodeNotBench(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("RB"), []byte(`{"event":"page_view","user_id":"u1","pad":"xxxxxxxxxx"}`), make([]byte, 64)} {
		if _, err := decodeRecord(b); !errors.Is(err, errNotBench) {
			t.Errorf("decodeRecord(%q) error = %v, want errNotBench", b, err)
		}
	}
}

// FuzzDecodeRecord checks that arbitrary record data never panics the
// decoder and that whatever it accepts re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	data := make([]byte, 80)
	newBodyWriter(ShapeIoT, rand.New(rand.NewPCG(1, 2))).fill(data[headerSize:], "d", 1, 1)
	sealRecord(data, header{Run: 1, Producer: 2, Seq: 3, Sent: 4, Key: 5})
	f.Add(data)
	f.Add([]byte("RB\x01\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeRecord(b)
		if err != nil {
			return
		}
		again := bytes.Clone(b)
		sealRecord(again, h)
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, re-encodes to %x", b, again)
		}
	})
}

func BenchmarkRecordEncode(b *testing.B) {
	for _, shape := range []Shape{ShapeRandom, ShapeClickstream, ShapeIoT, ShapeLogs} {
		b.Run(string(shape), func(b *testing.B) {
			w := newBodyWriter(shape, rand.New(rand.NewPCG(1, 2)))
			data := make([]byte, 1024)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for i := uint64(0); b.Loop(); i++ {
				w.fill(data[headerSize:], "user-000123", i, 1)
				sealRecord(data, header{Seq: i})
			}
		})
	}
}

// TestEncodeData checks that a record's data encoded from the noise's
// encoding is the data's standard base64, for every size around the noise's
// and the quantum's edges and every shape.
func TestEncodeData(t *testing.T) {
	for _, shape := range []Shape{ShapeRandom, ShapeClickstream, ShapeLogs} {
		w := newBodyWriter(shape, rand.New(rand.NewPCG(5, 6)))
		sizes := []int{headerSize, headerSize + 1, headerSize + 2, headerSize + 3, 100, 1024, 1025, 1026,
			headerSize + len(w.noise) - 1, headerSize + len(w.noise), headerSize + len(w.noise) + 1, 3 * len(w.noise)}
		for _, size := range sizes {
			for range 20 {
				data := make([]byte, size)
				off := w.fill(data[headerSize:], "k", 1, 1)
				if shape == ShapeRandom && size > headerSize && size-headerSize <= len(w.noise) && (off < 0 || off%3 != 0) {
					t.Fatalf("%s/%d: offset %d, want a multiple of 3", shape, size, off)
				}
				if shape != ShapeRandom && off != -1 {
					t.Fatalf("%s/%d: offset %d, want -1", shape, size, off)
				}
				sealRecord(data, header{Seq: 1})
				got := w.encodeData([]byte("x"), data, off)
				if want := "x" + base64.StdEncoding.EncodeToString(data); string(got) != want {
					t.Fatalf("%s/%d at %d: encoded\n%s\nwant\n%s", shape, size, off, got, want)
				}
			}
		}
	}
}
