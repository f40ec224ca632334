// Package b64 is standard, padded base64 (RFC 4648 section 4, the encoding
// Kinesis uses for record data in JSON) for the server's hot paths: it
// produces and accepts exactly the bytes encoding/base64's StdEncoding does,
// faster, by working on two characters (12 bits) per table lookup.
//
// AppendEncode writes GetRecords answers; DecodeQuoted reads the Data
// members of PutRecords requests straight out of the JSON body, finding the
// closing quote in the same pass.
package b64
