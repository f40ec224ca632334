package kinesisapi

import (
	"encoding/json"
	"math"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/runnel/runnel/internal/streams"
)

// wrongTypes lists, per model type, values of another type and the
// SerializationException message Kinesis answers them with (as recorded
// against Kinesis by kinesalite's test helpers).
var wrongTypes = map[string][]struct {
	value any
	want  string
}{
	"Boolean": {
		{"23", "'23' can not be converted to an Boolean"},
		{23, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean"},
		{-2147483648, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean"},
		{2147483648, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an Boolean"},
		{[]any{}, "Start of list found where not expected"},
		{map[string]any{}, "Start of structure or map found where not expected."},
	},
	"String": {
		{true, "class java.lang.Boolean can not be converted to an String"},
		{23, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"},
		{-2147483648, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"},
		{2147483648, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"},
		{34.56, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"},
		{[]any{}, "Start of list found where not expected"},
		{map[string]any{}, "Start of structure or map found where not expected."},
	},
	"Integer": {
		{"23", "class java.lang.String can not be converted to an Integer"},
		{true, "class java.lang.Boolean can not be converted to an Integer"},
		{[]any{}, "Start of list found where not expected"},
		{map[string]any{}, "Start of structure or map found where not expected."},
	},
	"Blob": {
		{true, "class java.lang.Boolean can not be converted to a Blob"},
		{23, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob"},
		{-2147483648, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob"},
		{2147483648, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob"},
		{34.56, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob"},
		{[]any{}, "Start of list found where not expected"},
		{map[string]any{}, "Start of structure or map found where not expected."},
	},
	"Timestamp": {
		{"23", "class java.lang.String can not be converted to milliseconds since epoch"},
		{"2016-04-04T19:58:46.480Z", "class java.lang.String can not be converted to milliseconds since epoch"},
		{true, "class java.lang.Boolean can not be converted to milliseconds since epoch"},
		{[]any{}, "Start of list found where not expected"},
		{map[string]any{}, "Start of structure or map found where not expected."},
	},
	"List": {
		{"23", "Expected list or null"},
		{true, "Expected list or null"},
		{23, "Expected list or null"},
		{-2147483648, "Expected list or null"},
		{2147483648, "Expected list or null"},
		{34.56, "Expected list or null"},
		{map[string]any{}, "Start of structure or map found where not expected."},
	},
	"Map": {
		{"23", "Expected map or null"},
		{true, "Expected map or null"},
		{23, "Expected map or null"},
		{2147483648, "Expected map or null"},
		{34.56, "Expected map or null"},
		{[]any{}, "Start of list found where not expected"},
	},
	"Structure": {
		{"23", "Expected null"},
		{true, "Expected null"},
		{23, "Expected null"},
		{2147483648, "Expected null"},
		{34.56, "Expected null"},
		{[]any{}, "Start of list found where not expected"},
	},
}

// jsonBlobStrings are strings that are not canonical base64, refused in a
// JSON blob member with the messages Kinesis answers.
var jsonBlobStrings = []struct{ value, want string }{
	{"23456", "'23456' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"},
	{"=+/=", "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"},
	{"+/+=", "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"},
	{"QR==", "'QR==' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"},
	{"QUJ=", "'QUJ=' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"},
	{"Q===", "'Q===' can not be converted to a Blob: Invalid last non-pad Base64 character dectected"},
	{"QQ=", "'QQ=' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 3"},
	{"QQ", "'QQ' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 2"},
	{"QQ=A", "'QQ=A' can not be converted to a Blob: Invalid Base64 character: '='"},
	{"QU E", "'QU E' can not be converted to a Blob: Invalid Base64 character: ' '"},
	{"QUE=\n", "'QUE=\n' can not be converted to a Blob: Base64 encoded length is expected a multiple of 4 bytes but found: 5"},
	{"QU\nE", "'QU\nE' can not be converted to a Blob: Invalid Base64 character: '\n'"},
	{"-_-_", "'-_-_' can not be converted to a Blob: Invalid Base64 character: '-'"},
	{"QUé=", "'QUé=' can not be converted to a Blob: Invalid Base64 character: 'é'"},
}

// memberPath is a member somewhere in an operation's input: the steps from
// the top (a member name, or "0" for a list's first element) and its type.
type memberPath struct {
	steps []string
	kind  shapeKind
}

// leaves lists every member of s, nested ones included, in model order.
func leaves(s *shape, prefix []string) []memberPath {
	var out []memberPath
	for _, m := range s.members {
		p := append(append([]string(nil), prefix...), m.name)
		out = append(out, memberPath{p, m.shape.kind})
		switch {
		case m.shape.kind == kindStruct:
			out = append(out, leaves(&m.shape, p)...)
		case m.shape.kind == kindList && m.shape.elem.kind == kindStruct:
			out = append(out, leaves(m.shape.elem, append(p, "0"))...)
		}
	}
	return out
}

// body builds an input with value at path.
func (p memberPath) body(value any) map[string]any {
	top := map[string]any{}
	var cur any = top
	for i, step := range p.steps {
		last := i == len(p.steps)-1
		var next any
		if !last {
			if p.steps[i+1] == "0" {
				next = []any{nil}
			} else {
				next = map[string]any{}
			}
		}
		switch c := cur.(type) {
		case map[string]any:
			if last {
				c[step] = value
			} else {
				c[step] = next
			}
		case []any:
			if last {
				c[0] = value
			} else {
				c[0] = next
			}
		}
		cur = next
	}
	return top
}

func javaTypeOf(k shapeKind) string {
	return map[shapeKind]string{
		kindString: "String", kindInt: "Integer", kindLong: "Long", kindBool: "Boolean",
		kindBlob: "Blob", kindTimestamp: "Timestamp", kindList: "List", kindMap: "Map", kindStruct: "Structure",
	}[k]
}

// serializationMessage sends body in protocol p and returns the
// SerializationException's message, failing the test on any other answer.
func serializationMessage(t *testing.T, h *Handler, p protocol, op string, body map[string]any) string {
	t.Helper()
	var raw []byte
	var err error
	if p == protoCBOR {
		raw, err = cbor.Marshal(body)
	} else {
		raw, err = json.Marshal(body)
	}
	if err != nil {
		t.Fatal(err)
	}
	return serializationMessageRaw(t, h, p, op, raw)
}

func serializationMessageRaw(t *testing.T, h *Handler, p protocol, op string, raw []byte) string {
	t.Helper()
	var err error
	w := send(h, p.contentType(), TargetPrefix+"."+op, raw)
	var m map[string]any
	if p == protoCBOR {
		err = cbor.Unmarshal(w.Body.Bytes(), &m)
	} else {
		err = json.Unmarshal(w.Body.Bytes(), &m)
	}
	if err != nil || w.Code != 400 || m["__type"] != "SerializationException" {
		t.Fatalf("%s %s: %d %q (%v)", op, raw, w.Code, w.Body.Bytes(), err)
	}
	msg, _ := m["Message"].(string)
	return msg
}

// TestWrongTypes sends every member of every operation's input, nested ones
// included, a value of each other type, in JSON 1.1 and CBOR 1.1.
func TestWrongTypes(t *testing.T) {
	h := newTestHandler(t, newFake())
	names := opNames()
	tested := 0
	for _, p := range []protocol{protoJSON, protoCBOR} {
		for _, op := range names {
			for _, leaf := range leaves(&operations[op].input, nil) {
				typ := javaTypeOf(leaf.kind)
				cases := wrongTypes[typ]
				if len(cases) == 0 {
					t.Fatalf("%s.%s: no wrong values for %s", op, strings.Join(leaf.steps, "."), typ)
				}
				for _, c := range cases {
					got := serializationMessage(t, h, p, op, leaf.body(c.value))
					if got != c.want {
						t.Errorf("%s %s.%s = %#v: %q, want %q", p.contentType(), op, strings.Join(leaf.steps, "."), c.value, got, c.want)
					}
					tested++
				}
				if leaf.kind != kindBlob {
					continue
				}
				if p == protoJSON {
					for _, c := range jsonBlobStrings {
						if got := serializationMessage(t, h, p, op, leaf.body(c.value)); got != c.want {
							t.Errorf("%s.%s = %q: %q, want %q", op, strings.Join(leaf.steps, "."), c.value, got, c.want)
						}
					}
				} else if got := serializationMessage(t, h, p, op, leaf.body("QUJD")); got != "class java.lang.String can not be converted to a Blob" {
					t.Errorf("cbor %s.%s as text: %q", op, strings.Join(leaf.steps, "."), got)
				}
			}
		}
	}
	if tested < 500 {
		t.Fatalf("only %d cases: the walk over the shapes missed members", tested)
	}
}

// TestNumberConversion checks that integers are truncated and saturated as
// Coral's TruncatingBigNumber does, and timestamps converted, in both
// protocols.
func TestNumberConversion(t *testing.T) {
	tests := []struct {
		name string
		json string
		cbor map[string]any
		want int32
	}{
		{"fraction", `1.9`, map[string]any{"ShardCount": 1.9}, 1},
		{"whole float", `3.0`, map[string]any{"ShardCount": 3.0}, 3},
		{"exponent", `1e2`, map[string]any{"ShardCount": 100.0}, 100},
		{"beyond int32", `100000000000`, map[string]any{"ShardCount": int64(100000000000)}, math.MaxInt32},
		{"beyond int64", `123456789012345678901234567890`, map[string]any{"ShardCount": float64(1e30)}, math.MaxInt32},
		{"huge exponent", `1e400`, map[string]any{"ShardCount": math.Inf(1)}, math.MaxInt32},
		{"below int32", `-100000000000`, map[string]any{"ShardCount": int64(-100000000000)}, math.MinInt32},
		{"negative fraction floors", `-0.5`, map[string]any{"ShardCount": -0.5}, -1},
	}
	f := newFake()
	h := newTestHandler(t, f)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := sendJSON(h, "CreateStream", `{"StreamName":"s","ShardCount":`+tt.json+`}`)
			if w.Code == 200 {
				c, _ := f.lastCall()
				if got := *c.in.(*streams.CreateStreamInput).ShardCount; got != tt.want {
					t.Errorf("json: %d, want %d", got, tt.want)
				}
			} else if tt.want >= 1 || !strings.Contains(w.Body.String(), "'"+strconv.Itoa(int(tt.want))+"' at 'shardCount'") {
				t.Errorf("json: %d %s", w.Code, w.Body)
			}
			body := map[string]any{"StreamName": "s", "ShardCount": tt.cbor["ShardCount"]}
			raw, _ := cbor.Marshal(body)
			w = send(h, contentTypeCBOR, TargetPrefix+".CreateStream", raw)
			if w.Code == 200 {
				c, _ := f.lastCall()
				if got := *c.in.(*streams.CreateStreamInput).ShardCount; got != tt.want {
					t.Errorf("cbor: %d, want %d", got, tt.want)
				}
			} else if tt.want >= 1 || !strings.Contains(w.Body.String(), "'"+strconv.Itoa(int(tt.want))+"' at 'shardCount'") {
				t.Errorf("cbor: %d %q", w.Code, w.Body.Bytes())
			}
		})
	}
}

// TestTimestampConversion checks the timestamp forms each protocol accepts.
func TestTimestampConversion(t *testing.T) {
	f := newFake()
	h := newTestHandler(t, f)
	get := func(w *httptest.ResponseRecorder) int64 {
		t.Helper()
		if w.Code != 200 {
			t.Fatalf("%d %q", w.Code, w.Body.Bytes())
		}
		c, _ := f.lastCall()
		return c.in.(*streams.GetShardIteratorInput).Timestamp.Millis()
	}
	base := `{"StreamName":"s","ShardId":"shardId-0","ShardIteratorType":"AT_TIMESTAMP","Timestamp":`
	for _, tt := range []struct {
		json string
		want int64
	}{
		{`1459799926.480`, 1459799926480},
		{`1459799926`, 1459799926000},
		{`-1.5`, -1500},
		{`1e300`, math.MaxInt64},
		{`-1e300`, math.MinInt64},
	} {
		if got := get(sendJSON(h, "GetShardIterator", base+tt.json+`}`)); got != tt.want {
			t.Errorf("json %s: %d, want %d", tt.json, got, tt.want)
		}
	}
	for _, tt := range []struct {
		name  string
		value any
		want  int64
	}{
		{"tag 1 integer milliseconds", cbor.Tag{Number: 1, Content: int64(1459799926480)}, 1459799926480},
		{"tag 1 float seconds", cbor.Tag{Number: 1, Content: 1459799926.48}, 1459799926480},
		{"bare integer milliseconds", uint64(1459799926480), 1459799926480},
		{"bare negative milliseconds", int64(-5), -5},
		{"bare float seconds", 1.5, 1500},
		{"half float", float32(0.5), 500},
	} {
		raw, _ := cbor.Marshal(map[string]any{"StreamName": "s", "ShardId": "shardId-0", "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": tt.value})
		if got := get(send(h, contentTypeCBOR, TargetPrefix+".GetShardIterator", raw)); got != tt.want {
			t.Errorf("cbor %s: %d, want %d", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		name string
		raw  []byte
		want string
	}{
		{"tag 1 around text", []byte{0xc1, 0x62, '2', '3'}, "class java.lang.String can not be converted to milliseconds since epoch"},
		{"tag 1 around true", []byte{0xc1, 0xf5}, "class java.lang.Boolean can not be converted to milliseconds since epoch"},
		{"tag 0", []byte{0xc0, 0x62, '2', '3'}, ""},
		{"byte string", []byte{0x42, 1, 2}, ""},
	} {
		raw := append([]byte{0xa1, 0x69}, "Timestamp"...)
		raw = append(raw, tt.raw...)
		msg := serializationMessageRaw(t, h, protoCBOR, "GetShardIterator", raw)
		if msg != tt.want {
			t.Errorf("cbor %s: %q, want %q", tt.name, msg, tt.want)
		}
	}
}

// TestDecodeUnmodeledInput checks that inputs of APIs other than Kinesis,
// which have no model shape, decode with the standard decoders and their
// type errors still answer a SerializationException.
func TestDecodeUnmodeledInput(t *testing.T) {
	type ref struct {
		Name *string `json:"Name,omitempty"`
	}
	type input struct {
		ref
		Counter *uint64  `json:"Counter,omitempty"`
		At      *float64 `json:"At,omitempty"`
		Keys    []string `json:"Keys"`
	}
	for _, p := range []protocol{protoJSON, protoCBOR} {
		body := map[string]any{"Name": "n", "Counter": 7, "At": 1.5, "Keys": []any{"a"}}
		var raw []byte
		if p == protoCBOR {
			raw, _ = cbor.Marshal(body)
		} else {
			raw, _ = json.Marshal(body)
		}
		var in input
		if aerr := decode(p, raw, &in); aerr != nil {
			t.Fatalf("%s: %v", p.contentType(), aerr)
		}
		if *in.Name != "n" || *in.Counter != 7 || *in.At != 1.5 || len(in.Keys) != 1 {
			t.Fatalf("%s: decoded %+v", p.contentType(), in)
		}
		body["Keys"] = "x"
		if p == protoCBOR {
			raw, _ = cbor.Marshal(body)
		} else {
			raw, _ = json.Marshal(body)
		}
		aerr := decode(p, raw, &input{})
		if aerr == nil || aerr.typ != ErrSerialization || aerr.message != "Expected list or null" {
			t.Fatalf("%s: wrong type answered %v", p.contentType(), aerr)
		}
	}
}
