package eventstream

import (
	"errors"
	"fmt"
)

// Sentinel errors. Decoding failures arrive wrapped in a *CorruptError;
// encoding failures wrap them with the offending header or size. Check with
// errors.Is.
var (
	// ErrPreludeChecksum means the prelude CRC does not match the two
	// length fields: the lengths cannot be trusted.
	ErrPreludeChecksum = errors.New("eventstream: prelude checksum mismatch")
	// ErrMessageChecksum means the message CRC does not match its bytes.
	ErrMessageChecksum = errors.New("eventstream: message checksum mismatch")
	// ErrMessageLength means the total length is below the 16-byte overhead
	// or above the limit.
	ErrMessageLength = errors.New("eventstream: message length out of range")
	// ErrHeadersLength means the headers block is larger than the message
	// or than the limit.
	ErrHeadersLength = errors.New("eventstream: headers length out of range")
	// ErrPayloadLength means the payload is larger than the limit.
	ErrPayloadLength = errors.New("eventstream: payload length out of range")
	// ErrHeaderName means a header name is empty or longer than
	// MaxHeaderNameLen.
	ErrHeaderName = errors.New("eventstream: invalid header name length")
	// ErrHeaderValue means a bytes or string value is longer than
	// MaxHeaderValueLen, or a header Value is the invalid zero Value.
	ErrHeaderValue = errors.New("eventstream: invalid header value")
	// ErrHeaderType means a header carries a type byte outside 0..9.
	ErrHeaderType = errors.New("eventstream: unknown header value type")
	// ErrHeadersTruncated means a header runs past the end of the headers
	// block.
	ErrHeadersTruncated = errors.New("eventstream: header overruns headers block")
	// ErrTruncated means the stream ended inside a message.
	ErrTruncated = errors.New("eventstream: truncated message")
)

// CorruptError reports a message the Decoder rejected. The stream cannot be
// resynchronised after it: the Decoder returns the same error from then on.
type CorruptError struct {
	// Offset is the stream offset of the first byte of the bad message.
	Offset int64
	// Err is one of the package's sentinel errors.
	Err error
	// Detail says what exactly was wrong, e.g. the two differing checksums.
	Detail string
}

// Error implements error.
func (e *CorruptError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%v (message at offset %d)", e.Err, e.Offset)
	}
	return fmt.Sprintf("%v (message at offset %d: %s)", e.Err, e.Offset, e.Detail)
}

// Unwrap returns the sentinel error.
func (e *CorruptError) Unwrap() error { return e.Err }

func errPayloadTooLarge(n int) error {
	return fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadLength, n, MaxPayloadLen)
}
