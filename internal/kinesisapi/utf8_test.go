package kinesisapi

import (
	"net/http"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// A partition key that is not valid UTF-8 is refused, never stored with
// its bytes replaced by U+FFFD.
func TestInvalidUTF8PartitionKey(t *testing.T) {
	badKey := "k\xff\xfe"
	cborRecord := func(key any) []byte {
		b, err := cbor.Marshal(map[string]any{
			"StreamName": "s",
			"Records":    []any{map[string]any{"Data": []byte("x"), "PartitionKey": key}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// A CBOR text string with invalid UTF-8 (major type 3, 3 bytes).
	cborBadText := append(append([]byte{0xa2}, mustCBOR(t, "StreamName")...), mustCBOR(t, "s")...)
	cborBadText = append(cborBadText, mustCBOR(t, "Records")...)
	cborBadText = append(cborBadText, 0x81, 0xa2)
	cborBadText = append(cborBadText, mustCBOR(t, "Data")...)
	cborBadText = append(cborBadText, 0x41, 'x')
	cborBadText = append(cborBadText, mustCBOR(t, "PartitionKey")...)
	cborBadText = append(cborBadText, 0x63, 'k', 0xff, 0xfe)

	tests := []struct {
		name        string
		op          string
		contentType string
		body        []byte
	}{
		{"json PutRecords (fast decoder)", "PutRecords", contentTypeJSON,
			[]byte(`{"StreamName":"s","Records":[{"Data":"eA==","PartitionKey":"` + badKey + `"}]}`)},
		{"json PutRecords (general decoder)", "PutRecords", contentTypeJSON,
			[]byte(`{"StreamName":"s","Records":[{"Data":"eA==","PartitionKey":"\u0041` + badKey + `"}]}`)},
		{"json PutRecord", "PutRecord", contentTypeJSON,
			[]byte(`{"StreamName":"s","Data":"eA==","PartitionKey":"` + badKey + `"}`)},
		{"cbor PutRecords text string", "PutRecords", contentTypeCBOR, cborBadText},
		{"cbor PutRecords byte string", "PutRecords", contentTypeCBOR, cborRecord([]byte(badKey))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			h := newTestHandler(t, f)
			w := send(h, tt.contentType, TargetPrefix+"."+tt.op, tt.body)
			if w.Code != http.StatusBadRequest || w.Header().Get("X-Amzn-ErrorType") != "SerializationException" {
				t.Fatalf("status %d %q: %q", w.Code, w.Header().Get("X-Amzn-ErrorType"), w.Body)
			}
			if len(f.calls) != 0 {
				t.Errorf("backend called: %v", f.calls)
			}
		})
	}
}

func mustCBOR(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
