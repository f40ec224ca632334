package kinesisapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"reflect"
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
	var err error
	if p == protoCBOR {
		err = cborDec.Unmarshal(body, v)
	} else if pr, ok := v.(*streams.PutRecordsInput); ok && fastPutRecordsWith(body, pr, sc) {
		return nil
	} else if !utf8.Valid(body) {
		// encoding/json would turn invalid UTF-8 into U+FFFD, storing a
		// partition key the client did not send; Kinesis' JSON parser
		// refuses the body instead. (The fast decoder above checks its
		// strings itself.)
		return bareError(ErrSerialization)
	} else {
		err = json.Unmarshal(body, v)
	}
	if err == nil {
		return nil
	}
	return decodeError(body, err)
}

// decodeError translates a decoder error into the SerializationException
// Kinesis answers with.
func decodeError(body []byte, err error) *apiError {
	var (
		jsonType *json.UnmarshalTypeError
		cborType *cbor.UnmarshalTypeError
		b64      base64.CorruptInputError
	)
	switch {
	case errors.As(err, &jsonType):
		kind := jsonKind(jsonType.Value)
		lit := ""
		if kind == "string" && jsonType.Offset > 0 && jsonType.Offset <= int64(len(body)) {
			lit = stringBefore(body[:jsonType.Offset])
		}
		return serializationError(coralTypeMessage(javaType(jsonType.Type), kind, lit))
	case errors.As(err, &cborType):
		return serializationError(coralTypeMessage(javaTypeName(cborType.GoType), cborKind(cborType.CBORType), ""))
	case errors.As(err, &b64):
		return serializationError("Base64 encoded data could not be decoded: illegal base64 data at input byte " +
			itoa(int64(b64)))
	}
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		return bareError(ErrSerialization)
	}
	var (
		cs    *cbor.SyntaxError
		cse   *cbor.SemanticError
		extra *cbor.ExtraneousDataError
	)
	if errors.As(err, &cs) || errors.As(err, &cse) || errors.As(err, &extra) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return bareError(ErrSerialization)
	}
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "streams: ")
	msg = strings.TrimPrefix(msg, "cbor: ")
	msg = strings.TrimPrefix(msg, "json: ")
	return serializationError(msg)
}

// jsonKind normalises encoding/json's description of the offending value
// ("string", "number 1.5", "bool", "array", "object").
func jsonKind(v string) string {
	if strings.HasPrefix(v, "number") {
		return "number"
	}
	return v
}

// cborKind maps fxamacker's CBOR type names to the JSON kinds Coral's
// messages speak of.
func cborKind(t string) string {
	switch t {
	case "UTF-8 text string", "byte string":
		return "string"
	case "positive integer", "negative integer", "primitives", "tag":
		return "number"
	case "array":
		return "array"
	case "map":
		return "object"
	}
	return "number"
}

// stringBefore returns the JSON string literal that ends just before the end
// of b, unquoted, or "" when there is none.
func stringBefore(b []byte) string {
	end := bytes.LastIndexByte(b, '"')
	if end < 0 {
		return ""
	}
	for start := end - 1; start >= 0; start-- {
		if b[start] != '"' {
			continue
		}
		n := 0
		for i := start - 1; i >= 0 && b[i] == '\\'; i-- {
			n++
		}
		if n%2 == 1 {
			continue
		}
		var s string
		if json.Unmarshal(b[start:end+1], &s) == nil {
			return s
		}
		return ""
	}
	return ""
}

var (
	timestampType = reflect.TypeFor[streams.Timestamp]()
	bytesType     = reflect.TypeFor[[]byte]()
)

// javaType names t the way Coral's messages do.
func javaType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timestampType:
		return "Timestamp"
	case t == bytesType:
		return "Blob"
	}
	switch t.Kind() {
	case reflect.String:
		return "String"
	case reflect.Int32, reflect.Int, reflect.Int16:
		return "Integer"
	case reflect.Int64:
		return "Long"
	case reflect.Bool:
		return "Boolean"
	case reflect.Slice, reflect.Array:
		return "List"
	case reflect.Map:
		return "Map"
	case reflect.Struct:
		return "Structure"
	}
	return t.String()
}

// javaTypeName names a type given as fxamacker's string form.
func javaTypeName(goType string) string {
	goType = strings.TrimLeft(goType, "*")
	switch {
	case goType == "streams.Timestamp":
		return "Timestamp"
	case goType == "[]uint8":
		return "Blob"
	case goType == "string":
		return "String"
	case goType == "int32" || goType == "int":
		return "Integer"
	case goType == "int64":
		return "Long"
	case goType == "bool":
		return "Boolean"
	case strings.HasPrefix(goType, "[]"):
		return "List"
	case strings.HasPrefix(goType, "map["):
		return "Map"
	}
	return "Structure"
}

// coralTypeMessage builds Coral's message for a value of JSON kind ("string",
// "number", "bool", "array", "object") found where the model expects the Java
// type t. lit is the offending string, when kind is "string".
func coralTypeMessage(t, kind, lit string) string {
	const bigNumber = "class com.amazon.coral.value.json.numbers.TruncatingBigNumber"
	article := "an "
	if t == "Blob" {
		article = "a "
	}
	switch t {
	case "List":
		if kind == "object" {
			return "Start of structure or map found where not expected."
		}
		return "Expected list or null"
	case "Map":
		if kind == "array" {
			return "Start of list found where not expected"
		}
		return "Expected map or null"
	case "Structure":
		if kind == "array" {
			return "Start of list found where not expected"
		}
		return "Expected null"
	}
	switch kind {
	case "array":
		return "Start of list found where not expected"
	case "object":
		return "Start of structure or map found where not expected."
	case "bool":
		return "class java.lang.Boolean can not be converted to " + article + t
	case "string":
		if t == "Boolean" {
			return "'" + lit + "' can not be converted to an Boolean"
		}
		return "class java.lang.String can not be converted to " + article + t
	}
	return bigNumber + " can not be converted to " + article + t
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	neg := n < 0
	if neg {
		n = -n
	}
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
