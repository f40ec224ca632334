package eventstream

import "slices"

// Protocol limits; see the package documentation for where each comes from.
const (
	// Overhead is the fixed size of a message without headers or payload:
	// the 12-byte prelude and the 4-byte message CRC.
	Overhead = 16
	// MaxHeadersLen is the largest headers block, in bytes.
	MaxHeadersLen = 128 << 10
	// MaxPayloadLen is the largest payload, in bytes.
	MaxPayloadLen = 16 << 20
	// MaxMessageLen is the largest message, in bytes.
	MaxMessageLen = Overhead + MaxHeadersLen + MaxPayloadLen
	// MaxHeaderNameLen is the longest header name, in bytes.
	MaxHeaderNameLen = 127
	// MaxHeaderValueLen is the longest bytes or string header value, in bytes.
	MaxHeaderValueLen = 1<<15 - 1
)

const preludeLen = 12 // total length, headers length, prelude CRC

// Header is one named header value.
type Header struct {
	Name  string
	Value Value
}

// Message is one event-stream message: ordered headers and an opaque
// payload.
type Message struct {
	Headers []Header
	Payload []byte
}

// Header returns the value of the first header called name.
func (m Message) Header(name string) (Value, bool) {
	for i := range m.Headers {
		if m.Headers[i].Name == name {
			return m.Headers[i].Value, true
		}
	}
	return Value{}, false
}

// HeaderString returns the string value of the first header called name, or
// "" when there is none or it is not a string. It suits the :message-type,
// :event-type and :exception-type dispatch headers.
func (m Message) HeaderString(name string) string {
	v, _ := m.Header(name)
	s, _ := v.AsString()
	return s
}

// Clone returns a deep copy of m that shares no memory with it, for keeping
// a decoded message past the next Decode.
func (m Message) Clone() Message {
	c := Message{Payload: slices.Clone(m.Payload)}
	if m.Headers != nil {
		c.Headers = make([]Header, len(m.Headers))
		for i, h := range m.Headers {
			if h.Value.Type() == TypeBytes {
				h.Value.b = slices.Clone(h.Value.b)
			}
			c.Headers[i] = h
		}
	}
	return c
}

// EncodedLen returns the size m will have on the wire, or an error if it
// cannot be encoded.
func (m Message) EncodedLen() (int, error) {
	hlen, err := headersLen(m.Headers)
	if err != nil {
		return 0, err
	}
	if len(m.Payload) > MaxPayloadLen {
		return 0, errPayloadTooLarge(len(m.Payload))
	}
	return Overhead + hlen + len(m.Payload), nil
}
