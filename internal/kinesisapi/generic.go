package kinesisapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"

	"github.com/fxamacker/cbor/v2"

	"github.com/runnel/runnel/internal/streams"
)

// This file decodes inputs that have no model shape in the dispatch table
// (APIs other than Kinesis served by the same Handler) with encoding/json
// and fxamacker/cbor, translating their type errors into Coral's
// SerializationException messages as closely as Go types allow. Kinesis
// operations never come here: typecheck.go converts their members as
// Kinesis does.

// decodeGeneric fills v from body with the standard decoders.
func decodeGeneric(p protocol, body []byte, v any) *apiError {
	var err error
	if p == protoCBOR {
		err = cborDec.Unmarshal(body, v)
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

var timestampType = reflect.TypeFor[streams.Timestamp]()

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
