package eventstream

import (
	"bytes"
	"errors"
	"io"
	"testing"

	sdk "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// FuzzDecode feeds arbitrary streams to the Decoder. It must not panic, and
// every message it accepts must re-encode to exactly the bytes it consumed
// and be accepted by the SDK's decoder too.
func FuzzDecode(f *testing.F) {
	seeds := []Message{
		{},
		{Payload: []byte("payload")},
		EventMessage(EventTypeInitialResponse, ContentTypeJSON, []byte("{}")),
		EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, []byte(`{"Records":[],"ContinuationSequenceNumber":"1","MillisBehindLatest":0}`)),
		ExceptionMessage("ResourceInUseException", ContentTypeJSON, []byte(`{"message":"m"}`)),
		ErrorMessage("InternalFailure", "x"),
	}
	var all Message
	for _, vc := range valueCases {
		if len(vc.wire) < 64 {
			all.Headers = append(all.Headers, Header{Name: vc.name, Value: vc.value})
		}
	}
	seeds = append(seeds, all)
	var stream []byte
	for _, m := range seeds {
		b := encode(f, m)
		f.Add(b)
		stream = append(stream, b...)
	}
	f.Add(stream)
	f.Add(headerFrame([]byte("\x01a\x0a")))
	f.Add(headerFrame([]byte("\x01a\x07\x80\x00")))
	f.Add(frame(Overhead+MaxPayloadLen, 0, nil)[:preludeLen])
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data))
		var start int64
		for {
			m, err := d.Decode()
			if err != nil {
				var ce *CorruptError
				if err != io.EOF && !errors.As(err, &ce) {
					t.Fatalf("Decode: unexpected error type %T: %v", err, err)
				}
				return
			}
			consumed := data[start:d.Offset()]
			again, err := AppendMessage(nil, m)
			if err != nil {
				t.Fatalf("re-encode of a decoded message: %v", err)
			}
			if !bytes.Equal(again, consumed) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, consumed)
			}
			if _, err := sdk.NewDecoder().Decode(bytes.NewReader(consumed), nil); err != nil {
				t.Fatalf("SDK rejects a message we accept: %v\n%x", err, consumed)
			}
			start = d.Offset()
		}
	})
}

// FuzzDecodeSealed builds messages around arbitrary headers blocks and
// payloads with correct lengths and checksums, so that the fuzzer reaches
// the header parser instead of stopping at the CRCs. Whatever decodes must
// re-encode to the same bytes.
func FuzzDecodeSealed(f *testing.F) {
	for _, m := range []Message{
		EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, []byte(`{"Records":[]}`)),
		ErrorMessage("c", "m"),
	} {
		b := encode(f, m)
		hlen := len(b) - Overhead - len(m.Payload)
		f.Add(b[preludeLen:preludeLen+hlen], m.Payload)
	}
	for _, vc := range valueCases {
		if len(vc.wire) < 64 {
			b := encode(f, Message{Headers: []Header{{Name: "n", Value: vc.value}}})
			f.Add(b[preludeLen:len(b)-4], []byte(nil))
		}
	}
	f.Add([]byte("\x01a\x0a"), []byte("p"))
	f.Add([]byte("\x01a\x07\x00\x05abc"), []byte(nil))

	f.Fuzz(func(t *testing.T, headers, payload []byte) {
		if len(headers) > MaxHeadersLen || len(payload) > 1<<16 {
			return
		}
		in := frame(uint32(Overhead+len(headers)+len(payload)), uint32(len(headers)), append(bytes.Clone(headers), payload...))
		m, err := NewDecoder(bytes.NewReader(in)).Decode()
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Decode: unexpected error type %T: %v", err, err)
			}
			return
		}
		again, err := AppendMessage(nil, m)
		if err != nil {
			t.Fatalf("re-encode of a decoded message: %v", err)
		}
		if !bytes.Equal(again, in) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, in)
		}
		if _, err := sdk.NewDecoder().Decode(bytes.NewReader(in), nil); err != nil {
			t.Fatalf("SDK rejects a message we accept: %v\n%x", err, in)
		}
	})
}
