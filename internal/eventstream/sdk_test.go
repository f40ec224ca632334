package eventstream

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
	smithyes "github.com/aws/smithy-go/eventstream"
)

// toSDK converts a Value to aws-sdk-go-v2's representation.
func toSDK(t testing.TB, v Value) sdk.Value {
	t.Helper()
	switch v.Type() {
	case TypeBoolTrue, TypeBoolFalse:
		b, _ := v.AsBool()
		return sdk.BoolValue(b)
	case TypeByte:
		return sdk.Int8Value(int8(v.n))
	case TypeInt16:
		return sdk.Int16Value(int16(v.n))
	case TypeInt32:
		return sdk.Int32Value(int32(v.n))
	case TypeInt64:
		return sdk.Int64Value(v.n)
	case TypeBytes:
		return sdk.BytesValue(v.b)
	case TypeString:
		return sdk.StringValue(v.s)
	case TypeTimestamp:
		tm, _ := v.AsTime()
		return sdk.TimestampValue(tm)
	case TypeUUID:
		id, _ := v.AsUUID()
		return sdk.UUIDValue(id)
	}
	t.Fatalf("no SDK value for %v", v.Type())
	return nil
}

// fromSDK converts an aws-sdk-go-v2 value to ours.
func fromSDK(t testing.TB, v sdk.Value) Value {
	t.Helper()
	switch v := v.(type) {
	case sdk.BoolValue:
		return Bool(bool(v))
	case sdk.Int8Value:
		return Byte(int8(v))
	case sdk.Int16Value:
		return Int16(int16(v))
	case sdk.Int32Value:
		return Int32(int32(v))
	case sdk.Int64Value:
		return Int64(int64(v))
	case sdk.BytesValue:
		return Bytes([]byte(v))
	case sdk.StringValue:
		return String(string(v))
	case sdk.TimestampValue:
		return Timestamp(time.Time(v))
	case sdk.UUIDValue:
		return UUID([16]byte(v))
	}
	t.Fatalf("unknown SDK value %T", v)
	return Value{}
}

func toSDKMessage(t testing.TB, m Message) sdk.Message {
	t.Helper()
	out := sdk.Message{Payload: m.Payload}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, sdk.Header{Name: h.Name, Value: toSDK(t, h.Value)})
	}
	return out
}

func fromSDKMessage(t testing.TB, m sdk.Message) Message {
	t.Helper()
	var out Message
	if len(m.Payload) > 0 {
		out.Payload = m.Payload
	}
	for _, h := range m.Headers {
		out.Headers = append(out.Headers, Header{Name: h.Name, Value: fromSDK(t, h.Value)})
	}
	return out
}

// sdkCases are messages both implementations must agree on: one per header
// type, every type at once, the SubscribeToShard messages and a payload
// larger than one read chunk. Header names are unique because the SDK keeps
// one value per name.
func sdkCases() map[string]Message {
	cases := map[string]Message{
		"empty":         {},
		"payload only":  {Payload: []byte("hello")},
		"large payload": EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, bytes.Repeat([]byte("x"), 300_000)),
		"initial":       EventMessage(EventTypeInitialResponse, ContentTypeJSON, []byte("{}")),
		"exception":     ExceptionMessage("ResourceInUseException", ContentTypeJSON, []byte(`{"message":"in use"}`)),
		"error":         ErrorMessage("InternalFailure", "internal"),
	}
	var all Message
	for i, vc := range valueCases {
		cases["value "+vc.name] = Message{Headers: []Header{{Name: ":h", Value: vc.value}}, Payload: []byte("p")}
		all.Headers = append(all.Headers, Header{Name: fmt.Sprintf("h%d", i), Value: vc.value})
	}
	all.Payload = []byte(`{"Records":[]}`)
	cases["all types"] = all
	cases["negative timestamp"] = Message{Headers: []Header{{"ts", TimestampMillis(-5001)}}}
	cases["long name"] = Message{Headers: []Header{{strings.Repeat("n", MaxHeaderNameLen), Int64(1)}}}
	return cases
}

func TestSDKDecodesOurs(t *testing.T) {
	for name, m := range sdkCases() {
		t.Run(name, func(t *testing.T) {
			b := encode(t, m)
			got, err := sdk.NewDecoder().Decode(bytes.NewReader(b), nil)
			if err != nil {
				t.Fatalf("SDK Decode: %v", err)
			}
			if back := fromSDKMessage(t, got); !equalMessages(back, m) {
				t.Fatalf("SDK decoded %+v, want %+v", back, m)
			}
		})
	}
}

func TestWeDecodeSDKs(t *testing.T) {
	for name, m := range sdkCases() {
		t.Run(name, func(t *testing.T) {
			var w bytes.Buffer
			if err := sdk.NewEncoder().Encode(&w, toSDKMessage(t, m)); err != nil {
				t.Fatalf("SDK Encode: %v", err)
			}
			if ours := encode(t, m); !bytes.Equal(ours, w.Bytes()) {
				t.Fatalf("encodings differ:\n ours %x\n  sdk %x", ours, w.Bytes())
			}
			got, err := NewDecoder(&w).Decode()
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !equalMessages(got, m) {
				t.Fatalf("decoded %+v, want %+v", got, m)
			}
		})
	}
}

// TestSmithyDispatch decodes the SubscribeToShard messages with the
// smithy-go copy of the codec, which the Kinesis client itself uses, and
// checks the headers its deserialiser dispatches on.
func TestSmithyDispatch(t *testing.T) {
	tests := []struct {
		name string
		m    Message
		want map[string]string
	}{
		{"initial response", EventMessage(EventTypeInitialResponse, ContentTypeJSON, []byte("{}")), map[string]string{
			smithyes.MessageTypeHeader: smithyes.EventMessageType,
			smithyes.EventTypeHeader:   "initial-response",
			smithyes.ContentTypeHeader: "application/json",
		}},
		{"event", EventMessage(EventTypeSubscribeToShardEvent, ContentTypeJSON, []byte(`{"Records":[]}`)), map[string]string{
			smithyes.MessageTypeHeader: smithyes.EventMessageType,
			smithyes.EventTypeHeader:   "SubscribeToShardEvent",
		}},
		{"exception", ExceptionMessage("ResourceInUseException", ContentTypeJSON, []byte(`{"message":"m"}`)), map[string]string{
			smithyes.MessageTypeHeader:   smithyes.ExceptionMessageType,
			smithyes.ExceptionTypeHeader: "ResourceInUseException",
		}},
		{"error", ErrorMessage("InternalFailure", "boom"), map[string]string{
			smithyes.MessageTypeHeader:  smithyes.ErrorMessageType,
			smithyes.ErrorCodeHeader:    "InternalFailure",
			smithyes.ErrorMessageHeader: "boom",
		}},
	}
	var stream bytes.Buffer
	enc := NewEncoder(&stream)
	for _, tc := range tests {
		if err := enc.Encode(tc.m); err != nil {
			t.Fatal(err)
		}
	}
	dec := smithyes.NewDecoder()
	for _, tc := range tests {
		got, err := dec.Decode(&stream, nil)
		if err != nil {
			t.Fatalf("%s: smithy Decode: %v", tc.name, err)
		}
		for h, want := range tc.want {
			v := got.Headers.Get(h)
			if v == nil || v.String() != want {
				t.Errorf("%s: header %s = %v, want %q", tc.name, h, v, want)
			}
		}
		if !bytes.Equal(got.Payload, tc.m.Payload) {
			t.Errorf("%s: payload %q, want %q", tc.name, got.Payload, tc.m.Payload)
		}
	}
}
