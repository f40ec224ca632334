package eventstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// frame builds a message from raw parts with correct checksums, whatever
// the lengths claim.
func frame(total, hlen uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, total)
	b = binary.BigEndian.AppendUint32(b, hlen)
	b = binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
	b = append(b, body...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// headerFrame wraps a raw headers block in a message with valid lengths and
// checksums.
func headerFrame(headers []byte) []byte {
	return frame(uint32(Overhead+len(headers)), uint32(len(headers)), headers)
}

func TestDecodeDamage(t *testing.T) {
	good := encode(t, EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, []byte(`{"Records":[]}`)))
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	hdrStart := preludeLen
	tests := []struct {
		name string
		in   []byte
		opts *DecoderOptions
		want error
	}{
		{"empty stream", nil, nil, io.EOF},
		{"truncated prelude", good[:5], nil, ErrTruncated},
		{"prelude only", good[:preludeLen], nil, ErrTruncated},
		{"truncated headers", good[:preludeLen+3], nil, ErrTruncated},
		{"missing message crc", good[:len(good)-4], nil, ErrTruncated},
		{"one byte short", good[:len(good)-1], nil, ErrTruncated},
		{"bad prelude crc", flip(9), nil, ErrPreludeChecksum},
		{"corrupted total length", flip(3), nil, ErrPreludeChecksum},
		{"corrupted headers length", flip(7), nil, ErrPreludeChecksum},
		{"corrupted header", flip(hdrStart + 3), nil, ErrMessageChecksum},
		{"corrupted payload", flip(len(good) - 6), nil, ErrMessageChecksum},
		{"bad message crc", flip(len(good) - 1), nil, ErrMessageChecksum},
		{"total below overhead", frame(15, 0, nil)[:15], nil, ErrMessageLength},
		{"total zero", frame(0, 0, nil), nil, ErrMessageLength},
		{"total above limit", frame(MaxMessageLen+1, 0, nil), nil, ErrMessageLength},
		{"total max uint32", frame(0xffffffff, 0, nil), nil, ErrMessageLength},
		{"headers longer than message", frame(Overhead+4, 5, []byte("abcd")), nil, ErrHeadersLength},
		{"headers above limit", frame(Overhead+MaxHeadersLen+1, MaxHeadersLen+1, nil), nil, ErrHeadersLength},
		{"headers above option", headerFrame([]byte("\x01a\x04\x00\x00\x00\x01")), &DecoderOptions{MaxPayloadLen: 10, MaxHeadersLen: 6}, ErrHeadersLength},
		{"payload above option", frame(Overhead+11, 0, make([]byte, 11)), &DecoderOptions{MaxPayloadLen: 10, MaxHeadersLen: 10}, ErrPayloadLength},
		{"payload above limit", frame(Overhead+MaxPayloadLen+1, 0, nil), nil, ErrPayloadLength},
		{"unknown header type 10", headerFrame([]byte("\x01a\x0a")), nil, ErrHeaderType},
		{"unknown header type 255", headerFrame([]byte("\x01a\xff\x00\x00")), nil, ErrHeaderType},
		{"empty header name", headerFrame([]byte("\x00\x00")), nil, ErrHeaderName},
		{"header name too long", headerFrame(append(append([]byte{200}, bytes.Repeat([]byte("n"), 200)...), 0)), nil, ErrHeaderName},
		{"name past block", headerFrame([]byte("\x05ab")), nil, ErrHeadersTruncated},
		{"no type byte", headerFrame([]byte("\x01a")), nil, ErrHeadersTruncated},
		{"int32 past block", headerFrame([]byte("\x01a\x04\x00\x01")), nil, ErrHeadersTruncated},
		{"uuid past block", headerFrame([]byte("\x01a\x09\x00\x01")), nil, ErrHeadersTruncated},
		{"string length past block", headerFrame([]byte("\x01a\x07\x00")), nil, ErrHeadersTruncated},
		{"string past block", headerFrame([]byte("\x01a\x07\x00\x05abc")), nil, ErrHeadersTruncated},
		{"string value too long", headerFrame([]byte("\x01a\x07\x80\x00")), nil, ErrHeaderValue},
		{"bytes value too long", headerFrame([]byte("\x01a\x06\xff\xff")), nil, ErrHeaderValue},
		{"second header bad", headerFrame([]byte("\x01a\x00\x01b\x0c")), nil, ErrHeaderType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewDecoder(bytes.NewReader(tc.in))
			if tc.opts != nil {
				var err error
				if d, err = NewDecoderOptions(bytes.NewReader(tc.in), *tc.opts); err != nil {
					t.Fatal(err)
				}
			}
			_, err := d.Decode()
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode: %v, want %v", err, tc.want)
			}
			if tc.want != io.EOF {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Offset != 0 {
					t.Fatalf("error %v (%T) is not a *CorruptError at offset 0", err, err)
				}
			}
			// The error sticks.
			if _, err2 := d.Decode(); err2 != err {
				t.Fatalf("second Decode: %v, want %v", err2, err)
			}
		})
	}
}

func TestDecodeDamageAfterGoodMessage(t *testing.T) {
	good := encode(t, EventMessage(EventTypeInitialResponse, ContentTypeJSON, []byte(`{}`)))
	bad := bytes.Clone(good)
	bad[len(bad)-1] ^= 1
	d := NewDecoder(bytes.NewReader(append(bytes.Clone(good), bad...)))
	if _, err := d.Decode(); err != nil {
		t.Fatal(err)
	}
	_, err := d.Decode()
	var ce *CorruptError
	if !errors.As(err, &ce) || !errors.Is(err, ErrMessageChecksum) || ce.Offset != int64(len(good)) {
		t.Fatalf("Decode: %v, want checksum error at offset %d", err, len(good))
	}
	if ce.Error() == "" || ce.Detail == "" {
		t.Fatalf("error text %q detail %q", ce.Error(), ce.Detail)
	}
}

func TestDecodeReaderError(t *testing.T) {
	good := encode(t, Message{Payload: []byte("abc")})
	r := io.MultiReader(bytes.NewReader(good[:14]), iotest.ErrReader(iotest.ErrTimeout))
	_, err := NewDecoder(r).Decode()
	if !errors.Is(err, iotest.ErrTimeout) {
		t.Fatalf("Decode: %v, want the reader's error", err)
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		t.Fatalf("a read failure is not corruption: %v", err)
	}
}

// TestDecodeHostileLength checks that a peer announcing the largest message
// and then sending almost nothing costs one read chunk, not the announced
// size.
func TestDecodeHostileLength(t *testing.T) {
	in := append(frame(MaxMessageLen, MaxHeadersLen, nil)[:preludeLen], make([]byte, 10)...)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := NewDecoder(bytes.NewReader(in)).Decode()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("Decode: %v, want ErrTruncated", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*readChunk {
		t.Fatalf("allocated %d bytes for a %d-byte stream", grew, len(in))
	}
}

// TestDecodeNeverReadsAhead checks that the decoder stops at the message
// boundary, so the caller can hand the rest of the stream to someone else.
func TestDecodeNeverReadsAhead(t *testing.T) {
	good := encode(t, Message{Payload: []byte("abc")})
	r := bytes.NewReader(append(bytes.Clone(good), "trailer"...))
	if _, err := NewDecoder(r).Decode(); err != nil {
		t.Fatal(err)
	}
	if r.Len() != len("trailer") {
		t.Fatalf("decoder left %d bytes, want %d", r.Len(), len("trailer"))
	}
}
