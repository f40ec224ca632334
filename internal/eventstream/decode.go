package eventstream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// readChunk is how much buffer the Decoder adds at a time while the bytes of
// a large message arrive: a peer must send data to make it allocate more.
const readChunk = 64 << 10

// DecoderOptions limits what a Decoder accepts.
type DecoderOptions struct {
	// MaxPayloadLen is the largest payload accepted, 1..MaxPayloadLen.
	// Lower it when the producer is known to send small events.
	MaxPayloadLen int
	// MaxHeadersLen is the largest headers block accepted,
	// 1..MaxHeadersLen.
	MaxHeadersLen int
}

// DefaultDecoderOptions returns the protocol limits.
func DefaultDecoderOptions() DecoderOptions {
	return DecoderOptions{MaxPayloadLen: MaxPayloadLen, MaxHeadersLen: MaxHeadersLen}
}

// Validate reports whether the options are usable.
func (o DecoderOptions) Validate() error {
	if o.MaxPayloadLen < 1 || o.MaxPayloadLen > MaxPayloadLen {
		return fmt.Errorf("eventstream: MaxPayloadLen %d out of range 1..%d", o.MaxPayloadLen, MaxPayloadLen)
	}
	if o.MaxHeadersLen < 1 || o.MaxHeadersLen > MaxHeadersLen {
		return fmt.Errorf("eventstream: MaxHeadersLen %d out of range 1..%d", o.MaxHeadersLen, MaxHeadersLen)
	}
	return nil
}

// Decoder reads messages from an io.Reader, validating lengths, both
// checksums, header names, types and value lengths. It reads exactly one
// message per Decode and never past it. A Decoder is not safe for concurrent
// use.
type Decoder struct {
	r    io.Reader
	opts DecoderOptions
	buf  []byte   // the current message, prelude to message CRC
	hdrs []Header // the current message's headers
	off  int64    // stream offset of the next message
	err  error    // sticky: once set, every Decode returns it
}

// NewDecoder returns a Decoder reading from r with DefaultDecoderOptions.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: r, opts: DefaultDecoderOptions()}
}

// NewDecoderOptions returns a Decoder reading from r with the given limits.
func NewDecoderOptions(r io.Reader, opts DecoderOptions) (*Decoder, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Decoder{r: r, opts: opts}, nil
}

// Offset returns the stream offset just past the last message decoded.
func (d *Decoder) Offset() int64 { return d.off }

// Decode reads the next message. It returns io.EOF when the stream ends
// cleanly between messages, a *CorruptError (wrapping ErrTruncated, a
// checksum, length or header sentinel) for bad bytes, and the reader's own
// error, wrapped, when reading fails. After any error the Decoder is done
// and returns the same error again.
//
// The returned Message borrows the Decoder's memory (headers slice, payload,
// bytes values) until the next call to Decode.
func (d *Decoder) Decode() (Message, error) {
	if d.err != nil {
		return Message{}, d.err
	}
	m, err := d.decode()
	if err != nil {
		d.err = err
		return Message{}, err
	}
	return m, nil
}

func (d *Decoder) corrupt(sentinel error, format string, args ...any) error {
	e := &CorruptError{Offset: d.off, Err: sentinel}
	if format != "" {
		e.Detail = fmt.Sprintf(format, args...)
	}
	return e
}

func (d *Decoder) readErr(err error, n, want int) error {
	switch {
	case errors.Is(err, io.EOF) && n == 0:
		return io.EOF
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return d.corrupt(ErrTruncated, "stream ended after %d of %d bytes", n, want)
	}
	return fmt.Errorf("eventstream: read message at offset %d: %w", d.off, err)
}

func (d *Decoder) decode() (Message, error) {
	if cap(d.buf) < preludeLen {
		d.buf = make([]byte, 0, 256)
	}
	buf := d.buf[:preludeLen]
	if n, err := io.ReadFull(d.r, buf); err != nil {
		return Message{}, d.readErr(err, n, preludeLen)
	}
	total := binary.BigEndian.Uint32(buf[0:4])
	hlen := binary.BigEndian.Uint32(buf[4:8])
	if got, want := binary.BigEndian.Uint32(buf[8:12]), crc32.ChecksumIEEE(buf[0:8]); got != want {
		return Message{}, d.corrupt(ErrPreludeChecksum, "got %#08x, computed %#08x", got, want)
	}
	if total < Overhead || uint64(total) > uint64(Overhead+d.opts.MaxHeadersLen+d.opts.MaxPayloadLen) {
		return Message{}, d.corrupt(ErrMessageLength, "total length %d", total)
	}
	if hlen > total-Overhead || hlen > uint32(d.opts.MaxHeadersLen) {
		return Message{}, d.corrupt(ErrHeadersLength, "headers length %d, total length %d", hlen, total)
	}
	plen := total - Overhead - hlen
	if plen > uint32(d.opts.MaxPayloadLen) {
		return Message{}, d.corrupt(ErrPayloadLength, "payload length %d", plen)
	}

	buf, err := d.fill(buf, int(total))
	d.buf = buf[:0]
	if err != nil {
		return Message{}, err
	}
	end := int(total) - 4
	if got, want := binary.BigEndian.Uint32(buf[end:]), crc32.ChecksumIEEE(buf[:end]); got != want {
		return Message{}, d.corrupt(ErrMessageChecksum, "got %#08x, computed %#08x", got, want)
	}

	var m Message
	hdrs, err := d.parseHeaders(d.hdrs[:0], buf[preludeLen:preludeLen+int(hlen)])
	if err != nil {
		return Message{}, err
	}
	d.hdrs = hdrs
	if len(hdrs) > 0 {
		m.Headers = hdrs
	}
	if plen > 0 {
		m.Payload = buf[preludeLen+int(hlen) : end : end]
	}
	d.off += int64(total)
	return m, nil
}

// fill reads the rest of a message of n bytes into buf, which holds its
// first len(buf) bytes. Beyond the capacity it already has, it grows buf only
// as bytes arrive, at most doubling per step.
func (d *Decoder) fill(buf []byte, n int) ([]byte, error) {
	for len(buf) < n {
		want := n
		if cap(buf) < n {
			want = min(n, len(buf)+max(readChunk, len(buf)))
			if cap(buf) < want {
				grown := make([]byte, len(buf), want)
				copy(grown, buf)
				buf = grown
			}
		}
		k, err := io.ReadFull(d.r, buf[len(buf):want])
		buf = buf[:len(buf)+k]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // EOF inside a message is never clean
			}
			return buf, d.readErr(err, len(buf), n)
		}
	}
	return buf, nil
}

// parseHeaders decodes a headers block, appending to hdrs.
func (d *Decoder) parseHeaders(hdrs []Header, b []byte) ([]Header, error) {
	for i := 0; len(b) > 0; i++ {
		nl := int(b[0])
		if nl == 0 || nl > MaxHeaderNameLen {
			return hdrs, d.corrupt(ErrHeaderName, "header %d name is %d bytes", i, nl)
		}
		if len(b) < 1+nl+1 {
			return hdrs, d.corrupt(ErrHeadersTruncated, "header %d name", i)
		}
		name := intern(b[1 : 1+nl])
		t := Type(b[1+nl])
		b = b[2+nl:]
		v := Value{t: uint8(t) + 1}
		if fl := t.fixedLen(); fl >= 0 {
			if len(b) < fl {
				return hdrs, d.corrupt(ErrHeadersTruncated, "header %q %s value", name, t)
			}
			switch t {
			case TypeByte:
				v.n = int64(int8(b[0]))
			case TypeInt16:
				v.n = int64(int16(binary.BigEndian.Uint16(b)))
			case TypeInt32:
				v.n = int64(int32(binary.BigEndian.Uint32(b)))
			case TypeInt64, TypeTimestamp:
				v.n = int64(binary.BigEndian.Uint64(b))
			case TypeUUID:
				v.n = int64(binary.BigEndian.Uint64(b[0:8]))
				v.u = binary.BigEndian.Uint64(b[8:16])
			}
			b = b[fl:]
		} else {
			if t != TypeBytes && t != TypeString {
				return hdrs, d.corrupt(ErrHeaderType, "header %q has type %d", name, uint8(t))
			}
			if len(b) < 2 {
				return hdrs, d.corrupt(ErrHeadersTruncated, "header %q %s length", name, t)
			}
			vl := int(binary.BigEndian.Uint16(b))
			if vl > MaxHeaderValueLen {
				return hdrs, d.corrupt(ErrHeaderValue, "header %q %s value is %d bytes", name, t, vl)
			}
			if len(b) < 2+vl {
				return hdrs, d.corrupt(ErrHeadersTruncated, "header %q %s value", name, t)
			}
			val := b[2 : 2+vl : 2+vl]
			if t == TypeBytes {
				v.b = val
			} else {
				v.s = intern(val)
			}
			b = b[2+vl:]
		}
		hdrs = append(hdrs, Header{Name: name, Value: v})
	}
	return hdrs, nil
}

// intern returns the header names and values that every SubscribeToShard
// message repeats without allocating, and a fresh string otherwise.
func intern(b []byte) string {
	switch string(b) {
	case HeaderMessageType:
		return HeaderMessageType
	case HeaderEventType:
		return HeaderEventType
	case HeaderContentType:
		return HeaderContentType
	case HeaderExceptionType:
		return HeaderExceptionType
	case HeaderErrorCode:
		return HeaderErrorCode
	case HeaderErrorMessage:
		return HeaderErrorMessage
	case MessageTypeEvent:
		return MessageTypeEvent
	case MessageTypeException:
		return MessageTypeException
	case MessageTypeError:
		return MessageTypeError
	case EventTypeInitialResponse:
		return EventTypeInitialResponse
	case EventTypeSubscribeToShardEvent:
		return EventTypeSubscribeToShardEvent
	case ContentTypeJSON:
		return ContentTypeJSON
	case "application/x-amz-json-1.1":
		return "application/x-amz-json-1.1"
	case "application/cbor":
		return "application/cbor"
	case "application/x-amz-cbor-1.1":
		return "application/x-amz-cbor-1.1"
	}
	return string(b)
}
