// Package eventstream implements the AWS event-stream binary framing
// (content type application/vnd.amazon.eventstream): the sequence of
// self-delimiting, checksummed messages that carries a SubscribeToShard
// response body from the server to a Kinesis consumer.
//
// # Message layout
//
// Every integer is big-endian. A message is
//
//	offset  size  field
//	0       4     total length    uint32, the whole message including this field
//	                              and the trailing message CRC
//	4       4     headers length  uint32, the byte length of the headers block
//	8       4     prelude CRC     CRC-32/IEEE of bytes 0..7
//	12      H     headers         H = headers length, zero or more headers
//	12+H    P     payload         P = total length - headers length - 16
//	12+H+P  4     message CRC     CRC-32/IEEE of bytes 0..12+H+P-1, i.e. of
//	                              everything before it, prelude CRC included
//
// The fixed overhead is therefore 16 bytes and the smallest message (no
// headers, no payload) is 16 bytes long. Both checksums use the IEEE
// polynomial (the one gzip and hash/crc32.ChecksumIEEE use), not Castagnoli.
//
// # Header layout
//
// The headers block is the concatenation of headers, each
//
//	size  field
//	1     name length   uint8, N
//	N     name          bytes (UTF-8 by convention, e.g. ":event-type")
//	1     value type    uint8, see below
//	...   value         type-dependent
//
// The value types and their encodings are
//
//	type  name       value bytes
//	0     bool true  none
//	1     bool false none
//	2     byte       1, signed int8
//	3     int16      2, signed
//	4     int32      4, signed
//	5     int64      8, signed
//	6     bytes      2-byte uint16 length L, then L bytes
//	7     string     2-byte uint16 length L, then L bytes of UTF-8
//	8     timestamp  8, signed int64 milliseconds since the Unix epoch
//	9     uuid       16 raw bytes
//
// Any other type byte makes the message invalid. Headers appear in the order
// they were written and names are not required to be unique; the SDKs keep
// one value per name, so a writer should not repeat a name.
//
// # Limits
//
// This package enforces these limits, on encode and on decode:
//
//   - payload at most 16 MiB (MaxPayloadLen) and headers block at most
//     128 KiB (MaxHeadersLen), so a message is at most 16 MiB + 128 KiB + 16
//     bytes (MaxMessageLen). aws-sdk-go-v2 enforced exactly these until
//     aws/protocol/eventstream v1.6.9 dropped all size limits; the C library
//     behind the CRT-based SDKs (aws-c-event-stream) caps the whole message
//     at 16 MiB (24 MiB in later releases), so a producer that must reach
//     every client keeps messages under 16 MiB in total;
//   - header names 1 to 127 bytes (MaxHeaderNameLen): aws-c-event-stream
//     caps names at INT8_MAX, the wire allows 255 and aws-sdk-go-v2 accepts
//     0 to 255;
//   - bytes and string values at most 32767 bytes (MaxHeaderValueLen,
//     INT16_MAX), as aws-sdk-go-v2, the Ruby and the Swift SDKs enforce even
//     though the length field is unsigned.
//
// String values and names are not checked for UTF-8.
//
// The Decoder applies the same limits (or lower ones, see DecoderOptions), so
// every message it accepts re-encodes to the very same bytes. It checks the
// prelude CRC before trusting either length, and it grows its buffer only as
// bytes actually arrive (64 KiB, then doubling), so a peer that announces a
// large message and then stalls costs at most twice what it has sent plus
// 64 KiB, never the announced size.
//
// # Message types
//
// On top of the framing, AWS services (and the SDKs' deserialisers) classify
// a message by its string headers:
//
//   - :message-type "event" with :event-type naming the event member (for
//     SubscribeToShard: first "initial-response" with payload "{}", then
//     "SubscribeToShardEvent") and :content-type of the payload;
//   - :message-type "exception" with :exception-type naming the modelled
//     error (e.g. "ResourceInUseException") and :content-type;
//   - :message-type "error" with :error-code and :error-message, for errors
//     the service model does not name.
//
// EventMessage, ExceptionMessage and ErrorMessage build these. Header values
// that name things must use the string type (7): the SDKs compare their
// String() form, which for bytes would be base64.
//
// # Ownership
//
// Encoding never retains the caller's Message. A Message returned by
// Decoder.Decode borrows the decoder's buffers (payload, bytes values and the
// header slice) until the next call to Decode; use Message.Clone to keep it.
package eventstream
