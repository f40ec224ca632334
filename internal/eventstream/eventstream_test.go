package eventstream

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// encode returns the wire form of m, failing the test if it cannot be
// encoded.
func encode(t testing.TB, m Message) []byte {
	t.Helper()
	b, err := AppendMessage(nil, m)
	if err != nil {
		t.Fatalf("AppendMessage: %v", err)
	}
	return b
}

// equalMessages reports whether a and b carry the same headers, in the same
// order, and the same payload.
func equalMessages(a, b Message) bool {
	if len(a.Headers) != len(b.Headers) || !bytes.Equal(a.Payload, b.Payload) {
		return false
	}
	for i := range a.Headers {
		if a.Headers[i].Name != b.Headers[i].Name || !a.Headers[i].Value.Equal(b.Headers[i].Value) {
			return false
		}
	}
	return true
}

func testUUID() [16]byte {
	return [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
}

// valueCases has one case per wire type, extremes included.
var valueCases = []struct {
	name  string
	value Value
	typ   Type
	wire  string // hex of type byte and value
}{
	{"bool true", Bool(true), TypeBoolTrue, "00"},
	{"bool false", Bool(false), TypeBoolFalse, "01"},
	{"byte", Byte(-49), TypeByte, "02cf"},
	{"byte max", Byte(127), TypeByte, "027f"},
	{"int16", Int16(42), TypeInt16, "03002a"},
	{"int16 min", Int16(-32768), TypeInt16, "038000"},
	{"int32", Int32(40972), TypeInt32, "040000a00c"},
	{"int32 negative", Int32(-1), TypeInt32, "04ffffffff"},
	{"int64", Int64(42424242), TypeInt64, "0500000000028757b2"},
	{"int64 min", Int64(-1 << 63), TypeInt64, "058000000000000000"},
	{"bytes", Bytes([]byte("I'm a little teapot!")), TypeBytes, "060014" + hex.EncodeToString([]byte("I'm a little teapot!"))},
	{"bytes empty", Bytes(nil), TypeBytes, "060000"},
	{"string", String("application/json"), TypeString, "070010" + hex.EncodeToString([]byte("application/json"))},
	{"string empty", String(""), TypeString, "070000"},
	{"string max", String(strings.Repeat("x", MaxHeaderValueLen)), TypeString, "077fff" + strings.Repeat("78", MaxHeaderValueLen)},
	{"timestamp", TimestampMillis(8675309), TypeTimestamp, "080000000000845fed"},
	{"timestamp negative", TimestampMillis(-1), TypeTimestamp, "08ffffffffffffffff"},
	{"uuid", UUID(testUUID()), TypeUUID, "090102030405060708090a0b0c0d0e0f10"},
}

func TestValueRoundTrip(t *testing.T) {
	for _, tc := range valueCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.value.Type(); got != tc.typ {
				t.Fatalf("Type() = %v, want %v", got, tc.typ)
			}
			m := Message{
				Headers: []Header{{Name: "h", Value: tc.value}},
				Payload: []byte("payload"),
			}
			b := encode(t, m)
			wantHeader := "0168" + tc.wire
			if got := hex.EncodeToString(b[preludeLen : len(b)-len(m.Payload)-4]); got != wantHeader {
				t.Fatalf("header bytes\n got %s\nwant %s", got, wantHeader)
			}
			d := NewDecoder(bytes.NewReader(b))
			got, err := d.Decode()
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !equalMessages(got, m) {
				t.Fatalf("round trip: got %+v, want %+v", got, m)
			}
			if _, err := d.Decode(); err != io.EOF {
				t.Fatalf("second Decode: %v, want io.EOF", err)
			}
		})
	}
}

func TestValueAccessors(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	tests := []struct {
		name string
		v    Value
		want string
	}{
		{"bool", Bool(true), "true"},
		{"int", Int16(-7), "-7"},
		{"bytes", Bytes([]byte{0xff}), "/w=="},
		{"string", String("hi"), "hi"},
		{"timestamp", Timestamp(ts.Add(999 * time.Microsecond)), "2026-01-02T03:04:05.006Z"},
		{"uuid", UUID(testUUID()), "01020304-0506-0708-090a-0b0c0d0e0f10"},
		{"invalid", Value{}, "<invalid>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
	if b, ok := Bool(false).AsBool(); !ok || b {
		t.Errorf("AsBool(false) = %v, %v", b, ok)
	}
	if _, ok := String("x").AsBool(); ok {
		t.Error("AsBool on string succeeded")
	}
	if n, ok := Byte(-3).AsInt(); !ok || n != -3 {
		t.Errorf("AsInt = %d, %v", n, ok)
	}
	if _, ok := TimestampMillis(3).AsInt(); ok {
		t.Error("AsInt on timestamp succeeded")
	}
	if got, ok := Timestamp(ts).AsTime(); !ok || !got.Equal(ts) {
		t.Errorf("AsTime = %v, %v; want %v", got, ok, ts)
	}
	if ms, ok := Timestamp(ts).AsMillis(); !ok || ms != ts.UnixMilli() {
		t.Errorf("AsMillis = %d, %v", ms, ok)
	}
	if id, ok := UUID(testUUID()).AsUUID(); !ok || id != testUUID() {
		t.Errorf("AsUUID = %x, %v", id, ok)
	}
	if b, ok := Bytes([]byte("ab")).AsBytes(); !ok || string(b) != "ab" {
		t.Errorf("AsBytes = %q, %v", b, ok)
	}
	if s, ok := Int32(1).AsString(); ok || s != "" {
		t.Errorf("AsString on int32 = %q, %v", s, ok)
	}
	if Value.Equal(Int32(1), Int64(1)) {
		t.Error("int32 1 equals int64 1")
	}
	if (Value{}).Type() != TypeInvalid {
		t.Error("zero Value is not TypeInvalid")
	}
	if got := Type(42).String(); got != "type(42)" {
		t.Errorf("Type(42).String() = %q", got)
	}
}

// TestKnownAnswer checks the encoding against the "all_headers" vector of
// the event-stream test suite that the AWS SDKs share.
func TestKnownAnswer(t *testing.T) {
	const want = "000000cc000000af0fae64ca0a6576656e742d74797065040000a00c0c636f6e74656e742d7479706507" +
		"00106170706c69636174696f6e2f6a736f6e0a626f6f6c2066616c73650109626f6f6c2074727565000462797465" +
		"02cf08627974652062756606001449276d2061206c6974746c6520746561706f74210974696d657374616d700800" +
		"00000000845fed05696e74313603002a05696e7436340500000000028757b20475756964090102030405060708090a" +
		"0b0c0d0e0f107b27666f6f273a27626172277daba5f10c"
	m := Message{
		Headers: []Header{
			{"event-type", Int32(40972)},
			{"content-type", String("application/json")},
			{"bool false", Bool(false)},
			{"bool true", Bool(true)},
			{"byte", Byte(-49)},
			{"byte buf", Bytes([]byte("I'm a little teapot!"))},
			{"timestamp", TimestampMillis(8675309)},
			{"int16", Int16(42)},
			{"int64", Int64(42424242)},
			{"uuid", UUID(testUUID())},
		},
		Payload: []byte("{'foo':'bar'}"),
	}
	b := encode(t, m)
	if got := hex.EncodeToString(b); got != want {
		t.Fatalf("encoding\n got %s\nwant %s", got, want)
	}
	got, err := NewDecoder(bytes.NewReader(b)).Decode()
	if err != nil {
		t.Fatal(err)
	}
	if !equalMessages(got, m) {
		t.Fatalf("decoded %+v", got)
	}
	// The empty message: 16 bytes, CRCs of zeros.
	if got := hex.EncodeToString(encode(t, Message{})); got != "000000100000000005c248eb7d98c8ff" {
		t.Errorf("empty message = %s", got)
	}
}

func TestMessageShapes(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB, past readChunk
	tests := []struct {
		name string
		m    Message
	}{
		{"empty", Message{}},
		{"payload only", Message{Payload: []byte(`{"Records":[]}`)}},
		{"headers only", Message{Headers: []Header{{"a", String("b")}}}},
		{"event", EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, []byte(`{"Records":[]}`))},
		{"initial response", EventMessage(EventTypeInitialResponse, ContentTypeJSON, []byte(`{}`))},
		{"exception", ExceptionMessage("ResourceInUseException", ContentTypeJSON, []byte(`{"message":"busy"}`))},
		{"error", ErrorMessage("InternalFailure", "oops")},
		{"duplicate names kept in order", Message{Headers: []Header{{"a", Int32(1)}, {"a", Int32(2)}}}},
		{"longest name", Message{Headers: []Header{{strings.Repeat("n", MaxHeaderNameLen), Bool(true)}}}},
		{"large payload", EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, big)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := encode(t, tc.m)
			if n, err := tc.m.EncodedLen(); err != nil || n != len(b) {
				t.Errorf("EncodedLen = %d, %v; encoded %d bytes", n, err, len(b))
			}
			readers := map[string]io.Reader{
				"whole":    bytes.NewReader(b),
				"one byte": iotest.OneByteReader(bytes.NewReader(b)),
				"half":     iotest.HalfReader(bytes.NewReader(b)),
			}
			if len(b) > 1<<16 {
				delete(readers, "one byte") // slow under -race, and "half" covers it
			}
			for rname, r := range readers {
				got, err := NewDecoder(r).Decode()
				if err != nil {
					t.Fatalf("%s: Decode: %v", rname, err)
				}
				if !equalMessages(got, tc.m) {
					t.Fatalf("%s: decoded %d headers, %d payload bytes; want %d, %d", rname, len(got.Headers), len(got.Payload), len(tc.m.Headers), len(tc.m.Payload))
				}
			}
		})
	}
}

func TestStream(t *testing.T) {
	msgs := []Message{
		EventMessage(EventTypeInitialResponse, ContentTypeJSON, []byte(`{}`)),
		EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, bytes.Repeat([]byte("r"), 100_000)),
		{},
		EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, []byte(`{"Records":[]}`)),
		ExceptionMessage("ResourceInUseException", ContentTypeJSON, []byte(`{"message":"x"}`)),
	}
	var stream bytes.Buffer
	enc := NewEncoder(&stream)
	var offsets []int64
	for _, m := range msgs {
		if err := enc.Encode(m); err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, int64(stream.Len()))
	}
	d := NewDecoder(iotest.HalfReader(&stream))
	for i, want := range msgs {
		got, err := d.Decode()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !equalMessages(got, want) {
			t.Fatalf("message %d differs", i)
		}
		if d.Offset() != offsets[i] {
			t.Fatalf("message %d: Offset() = %d, want %d", i, d.Offset(), offsets[i])
		}
	}
	for range 2 {
		if _, err := d.Decode(); err != io.EOF {
			t.Fatalf("after last message: %v, want io.EOF", err)
		}
	}
}

func TestHelpers(t *testing.T) {
	m := EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, []byte("p"))
	for name, want := range map[string]string{
		HeaderMessageType: MessageTypeEvent,
		HeaderEventType:   EventTypeSubscribeToShardEvent,
		HeaderContentType: ContentTypeJSON,
		"missing":         "",
	} {
		if got := m.HeaderString(name); got != want {
			t.Errorf("event %s = %q, want %q", name, got, want)
		}
	}
	x := ExceptionMessage("ResourceInUseException", ContentTypeJSON, nil)
	if x.HeaderString(HeaderMessageType) != MessageTypeException || x.HeaderString(HeaderExceptionType) != "ResourceInUseException" {
		t.Errorf("exception headers %+v", x.Headers)
	}
	e := ErrorMessage("Code", "msg")
	if e.HeaderString(HeaderErrorCode) != "Code" || e.HeaderString(HeaderErrorMessage) != "msg" {
		t.Errorf("error headers %+v", e.Headers)
	}
	if _, ok := m.Header("missing"); ok {
		t.Error("Header(missing) found")
	}
}

func TestDecodedMessageBorrowsAndCloneKeeps(t *testing.T) {
	first := Message{Headers: []Header{{"b", Bytes([]byte("one"))}}, Payload: []byte("first")}
	second := Message{Headers: []Header{{"b", Bytes([]byte("two"))}}, Payload: []byte("other")}
	var stream bytes.Buffer
	stream.Write(encode(t, first))
	stream.Write(encode(t, second))
	d := NewDecoder(&stream)
	got, err := d.Decode()
	if err != nil {
		t.Fatal(err)
	}
	kept := got.Clone()
	if _, err := d.Decode(); err != nil {
		t.Fatal(err)
	}
	if !equalMessages(kept, first) {
		t.Fatalf("clone changed by next Decode: %+v", kept)
	}
}

func TestEncodeErrors(t *testing.T) {
	long := strings.Repeat("v", MaxHeaderValueLen+1)
	maxed := String(strings.Repeat("v", MaxHeaderValueLen))
	var tooManyHeaders []Header
	for range 5 { // 5 * (2+1+2+32767) > 128 KiB
		tooManyHeaders = append(tooManyHeaders, Header{"h", maxed})
	}
	tests := []struct {
		name string
		m    Message
		want error
	}{
		{"empty name", Message{Headers: []Header{{"", Bool(true)}}}, ErrHeaderName},
		{"name too long", Message{Headers: []Header{{strings.Repeat("n", MaxHeaderNameLen+1), Bool(true)}}}, ErrHeaderName},
		{"zero value", Message{Headers: []Header{{"h", Value{}}}}, ErrHeaderValue},
		{"string too long", Message{Headers: []Header{{"h", String(long)}}}, ErrHeaderValue},
		{"bytes too long", Message{Headers: []Header{{"h", Bytes([]byte(long))}}}, ErrHeaderValue},
		{"headers too long", Message{Headers: tooManyHeaders}, ErrHeadersLength},
		{"payload too long", Message{Payload: make([]byte, MaxPayloadLen+1)}, ErrPayloadLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var w bytes.Buffer
			err := NewEncoder(&w).Encode(tc.m)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Encode: %v, want %v", err, tc.want)
			}
			if w.Len() != 0 {
				t.Fatalf("wrote %d bytes on error", w.Len())
			}
			dst := []byte("keep")
			if out, err := AppendMessage(dst, tc.m); err == nil || string(out) != "keep" {
				t.Fatalf("AppendMessage = %q, %v", out, err)
			}
			if _, err := tc.m.EncodedLen(); !errors.Is(err, tc.want) {
				t.Fatalf("EncodedLen: %v", err)
			}
		})
	}
	// The largest legal message encodes.
	if _, err := AppendMessage(nil, Message{Payload: make([]byte, MaxPayloadLen)}); err != nil {
		t.Fatalf("max payload: %v", err)
	}
}

func TestEncoderWriteError(t *testing.T) {
	boom := errors.New("boom")
	err := NewEncoder(errWriter{boom}).Encode(Message{})
	if !errors.Is(err, boom) {
		t.Fatalf("Encode: %v", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestDecoderOptions(t *testing.T) {
	if err := DefaultDecoderOptions().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, o := range []DecoderOptions{
		{},
		{MaxPayloadLen: MaxPayloadLen + 1, MaxHeadersLen: 1},
		{MaxPayloadLen: 1, MaxHeadersLen: MaxHeadersLen + 1},
	} {
		if err := o.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", o)
		}
		if _, err := NewDecoderOptions(nil, o); err == nil {
			t.Errorf("NewDecoderOptions(%+v) = nil error", o)
		}
	}
}
