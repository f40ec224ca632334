package eventstream

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"slices"
)

// maxRetainedBuffer bounds the buffer an Encoder keeps between messages, so
// that one very large event does not pin its size for the life of a
// subscription.
const maxRetainedBuffer = 4 << 20

// Encoder writes messages to an io.Writer, each with exactly one Write call,
// reusing one buffer between messages. An Encoder is not safe for concurrent
// use.
type Encoder struct {
	w   io.Writer
	buf []byte
}

// NewEncoder returns an Encoder that writes to w.
func NewEncoder(w io.Writer) *Encoder { return &Encoder{w: w} }

// Encode writes m as one message. Nothing is written if m cannot be
// encoded. The Encoder does not keep m.
func (e *Encoder) Encode(m Message) error {
	var err error
	e.buf, err = appendMessage(e.buf[:0], m.Headers, m.Payload)
	if err != nil {
		return err
	}
	_, err = e.w.Write(e.buf)
	if cap(e.buf) > maxRetainedBuffer {
		e.buf = nil
	}
	return err
}

// AppendMessage appends the encoding of m to dst and returns the extended
// slice. On error dst is returned unchanged.
func AppendMessage(dst []byte, m Message) ([]byte, error) {
	return appendMessage(dst, m.Headers, m.Payload)
}

func appendMessage(dst []byte, headers []Header, payload []byte) ([]byte, error) {
	hlen, err := headersLen(headers)
	if err != nil {
		return dst, err
	}
	if len(payload) > MaxPayloadLen {
		return dst, errPayloadTooLarge(len(payload))
	}
	total := Overhead + hlen + len(payload)

	start := len(dst)
	dst = slices.Grow(dst, total)
	dst = binary.BigEndian.AppendUint32(dst, uint32(total))
	dst = binary.BigEndian.AppendUint32(dst, uint32(hlen))
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:start+8]))
	for i := range headers {
		h := &headers[i]
		dst = append(dst, byte(len(h.Name)))
		dst = append(dst, h.Name...)
		dst = h.Value.appendValue(dst)
	}
	dst = append(dst, payload...)
	dst = binary.BigEndian.AppendUint32(dst, crc32.ChecksumIEEE(dst[start:]))
	return dst, nil
}

// headersLen validates headers and returns the size of their block.
func headersLen(headers []Header) (int, error) {
	n := 0
	for i := range headers {
		h := &headers[i]
		if len(h.Name) == 0 || len(h.Name) > MaxHeaderNameLen {
			return 0, fmt.Errorf("%w: header %d is %d bytes, want 1..%d", ErrHeaderName, i, len(h.Name), MaxHeaderNameLen)
		}
		vl := h.Value.encodedLen()
		if vl < 0 {
			if h.Value.Type() == TypeInvalid {
				return 0, fmt.Errorf("%w: header %q has no value", ErrHeaderValue, h.Name)
			}
			return 0, fmt.Errorf("%w: header %q value longer than %d bytes", ErrHeaderValue, h.Name, MaxHeaderValueLen)
		}
		n += 2 + len(h.Name) + vl
		if n > MaxHeadersLen {
			return 0, fmt.Errorf("%w: more than %d bytes of headers", ErrHeadersLength, MaxHeadersLen)
		}
	}
	return n, nil
}
