// Package b64 is standard, padded base64 (RFC 4648 section 4, the encoding
// Kinesis uses for record data in JSON) for the server's hot paths. It
// produces exactly the bytes encoding/base64's StdEncoding does and accepts
// exactly what its strict form accepts (Kinesis refuses non-zero unused bits
// in the last character), several times faster, on the SIMD codec of github.com/segmentio/asm
// (which falls back to portable code on CPUs without AVX2).
//
// AppendEncode writes GetRecords answers; DecodeQuoted reads the Data
// members of PutRecords requests straight out of the JSON body.
package b64
