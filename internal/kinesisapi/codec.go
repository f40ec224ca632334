package kinesisapi

import (
	"strings"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/runnel/runnel/internal/streams"
)

// protocol is a request's wire encoding, chosen by its Content-Type.
type protocol uint8

const (
	protoNone      protocol = iota // unsupported or missing content type
	protoJSON                      // application/x-amz-json-1.1
	protoCBOR                      // application/x-amz-cbor-1.1
	protoPlainJSON                 // application/json (answered the odd Coral way)
)

const (
	contentTypeJSON = "application/x-amz-json-1.1"
	contentTypeCBOR = "application/x-amz-cbor-1.1"
)

// protocolFor maps a Content-Type header to a protocol; parameters such as
// "; charset=utf-8" are ignored.
func protocolFor(contentType string) protocol {
	if i := strings.IndexByte(contentType, ';'); i >= 0 {
		contentType = contentType[:i]
	}
	switch strings.ToLower(strings.TrimSpace(contentType)) {
	case contentTypeJSON:
		return protoJSON
	case contentTypeCBOR:
		return protoCBOR
	case "application/json":
		return protoPlainJSON
	}
	return protoNone
}

// contentType is the Content-Type of responses in p.
func (p protocol) contentType() string {
	if p == protoCBOR {
		return contentTypeCBOR
	}
	if p == protoPlainJSON {
		return "application/json"
	}
	return contentTypeJSON
}

var (
	cborDec = mustDecMode(cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyQuiet,
		IndefLength:       cbor.IndefLengthAllowed,
		TagsMd:            cbor.TagsAllowed,
		MaxNestedLevels:   32,
		MaxArrayElements:  1 << 17,
		MaxMapPairs:       1 << 17,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		// Strings must be text strings, which the decoder checks are valid
		// UTF-8, as AWS's encoders write them.
		ByteStringToString: cbor.ByteStringToStringForbidden,
	})
	cborEnc = mustEncMode(cbor.EncOptions{})
)

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustEncMode(o cbor.EncOptions) cbor.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

// isMap reports whether body holds a JSON object or CBOR map at its top level
// (Kinesis answers anything else with a bare SerializationException).
func isMap(p protocol, body []byte) bool {
	if p == protoCBOR {
		return len(body) > 0 && body[0]>>5 == 5
	}
	for _, c := range body {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// decode fills v (a pointer to an input struct) from body. Errors are
// SerializationExceptions with Coral's messages.
func decode(p protocol, body []byte, v any) *apiError {
	return decodeWith(p, body, v, nil)
}

// decodeWith is decode with the fast PutRecords decoder borrowing its memory
// from sc (when not nil).
func decodeWith(p protocol, body []byte, v any, sc *putScratch) *apiError {
	if !isMap(p, body) {
		return bareError(ErrSerialization)
	}
	if p != protoCBOR {
		if pr, ok := v.(*streams.PutRecordsInput); ok && fastPutRecordsWith(body, pr, sc) {
			return nil
		}
		if !utf8.Valid(body) {
			// encoding/json would turn invalid UTF-8 into U+FFFD, storing a
			// partition key the client did not send; Kinesis' JSON parser
			// refuses the body instead. (The fast decoder above checks its
			// strings itself; CBOR text strings are checked in cbordec.go.)
			return bareError(ErrSerialization)
		}
	}
	return decodeTyped(p, body, v) // typecheck.go
}
