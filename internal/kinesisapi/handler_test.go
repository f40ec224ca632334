package kinesisapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/runnel/runnel/internal/streams"
)

var _ Backend = (*streams.Service)(nil)

func newTestHandler(t testing.TB, b Backend) *Handler {
	t.Helper()
	opts := DefaultOptions()
	opts.AllowedHosts = []string{"example.com"} // httptest.NewRequest's Host
	opts.Logger = slog.New(slog.DiscardHandler)
	h, err := NewHandler(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// send posts body to h with the given headers and returns the recorder.
func send(h http.Handler, contentType, target string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if target != "" {
		r.Header.Set("X-Amz-Target", target)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func sendJSON(h http.Handler, op, body string) *httptest.ResponseRecorder {
	return send(h, contentTypeJSON, TargetPrefix+"."+op, []byte(body))
}

// jsonError decodes a JSON error body into its type and message.
func jsonError(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("error body %q is not JSON: %v", w.Body.String(), err)
	}
	return m
}

func TestRegistryCoversServiceCodes(t *testing.T) {
	codes := []streams.Code{
		streams.CodeValidation, streams.CodeInvalidArgument, streams.CodeResourceNotFound,
		streams.CodeResourceInUse, streams.CodeLimitExceeded, streams.CodeExpiredIterator,
		streams.CodeExpiredNextToken, streams.CodeProvisionedThroughputExceeded,
		streams.CodeAccessDenied, streams.CodeInternalFailure,
	}
	for _, c := range codes {
		typ, ok := LookupErrorType(string(c))
		if !ok {
			t.Errorf("streams code %s has no registered error type", c)
			continue
		}
		want := http.StatusBadRequest
		if c == streams.CodeInternalFailure {
			want = http.StatusInternalServerError
		}
		if typ.Status != want {
			t.Errorf("%s: status %d, want %d", c, typ.Status, want)
		}
	}
}

func TestOperationsTableBinds(t *testing.T) {
	// The table is built at init; reaching here means every shape bound to
	// its Go type. Check the set of operations against the Backend.
	for _, name := range []string{"PutRecords", "PutRecord", "GetRecords", "GetShardIterator", "CreateStream",
		"ListShards", "SplitShard", "MergeShards", "RegisterStreamConsumer", "UpdateStreamMode",
		"UpdateAccountSettings", "UpdateStreamWarmThroughput", "UpdateStreamRecordDistributionStrategy"} {
		if operations[name] == nil {
			t.Errorf("operation %s missing", name)
		}
	}
	if len(operations) != 40 {
		t.Errorf("%d operations, want 40", len(operations))
	}
}

func TestProtocolErrors(t *testing.T) {
	target := TargetPrefix + ".ListStreams"
	tests := []struct {
		name        string
		method      string
		contentType string
		target      string
		body        string
		wantStatus  int
		wantCT      string
		wantBody    string // exact body, JSON compared as JSON when wantCT is JSON
	}{
		{"get", http.MethodGet, contentTypeJSON, target, "{}", 403, "",
			"<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n"},
		{"empty body json", "", contentTypeJSON, target, "", 400, contentTypeJSON, `{"__type":"SerializationException"}`},
		{"empty body unknown op", "", contentTypeJSON, TargetPrefix + ".Nope", "", 400, contentTypeJSON, `{"__type":"UnknownOperationException"}`},
		{"empty body no content type", "", "", target, "", 400, contentTypeCBOR, "\xa1f__typevSerializationException"},
		{"bad content type no target", "", "text/plain", "", "{}", 403, "",
			"<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n"},
		{"bad content type", "", "text/plain", target, "{}", 404, "", "<UnknownOperationException/>\n"},
		{"garbled json", "", contentTypeJSON, target, "{", 400, contentTypeJSON, `{"__type":"SerializationException"}`},
		{"json array", "", contentTypeJSON, target, "[]", 400, contentTypeJSON, `{"__type":"SerializationException"}`},
		{"json trailing garbage", "", contentTypeJSON, target, "{} x", 400, contentTypeJSON, `{"__type":"SerializationException"}`},
		{"unknown operation", "", contentTypeJSON, TargetPrefix + ".Nope", "{}", 400, contentTypeJSON, `{"__type":"UnknownOperationException"}`},
		{"wrong service", "", contentTypeJSON, "DynamoDB_20120810.ListStreams", "{}", 400, contentTypeJSON, `{"__type":"UnknownOperationException"}`},
		{"unserved operation", "", contentTypeJSON, TargetPrefix + ".CreateChannel", "{}", 400, contentTypeJSON,
			`{"__type":"UnknownOperationException","message":"runnel does not implement CreateChannel yet"}`},
		{"plain json", "", "application/json", target, "{}", 200, "application/json",
			`{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException","message":null},"Version":"1.0"}`},
		{"plain json garbled", "", "application/json", target, "{", 200, "application/json",
			`{"Output":{"__type":"com.amazon.coral.service#SerializationException","Message":null},"Version":"1.0"}`},
		{"cbor not a map", "", contentTypeCBOR, target, "\x80", 400, contentTypeCBOR, "\xa1f__typevSerializationException"},
		{"cbor truncated", "", contentTypeCBOR, target, "\xa1", 400, contentTypeCBOR, "\xa1f__typevSerializationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			h := newTestHandler(t, f)
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			r := httptest.NewRequest(method, "/", strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			if tt.target != "" {
				r.Header.Set("X-Amz-Target", tt.target)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Errorf("status %d, want %d (body %q)", w.Code, tt.wantStatus, w.Body.String())
			}
			if got := w.Header().Get("Content-Type"); got != tt.wantCT {
				t.Errorf("Content-Type %q, want %q", got, tt.wantCT)
			}
			if got := w.Body.String(); got != tt.wantBody {
				t.Errorf("body %q, want %q", got, tt.wantBody)
			}
			if len(f.calls) != 0 {
				t.Errorf("backend called: %v", f.calls)
			}
		})
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestResponseHeaders(t *testing.T) {
	h := newTestHandler(t, newFake())
	for _, w := range []*httptest.ResponseRecorder{
		sendJSON(h, "ListStreams", "{}"),
		sendJSON(h, "Nope", "{}"),
		send(h, "", "", nil),
	} {
		if id := w.Header().Get("x-amzn-RequestId"); !uuidRE.MatchString(id) {
			t.Errorf("x-amzn-RequestId %q is not a UUID", id)
		}
		if w.Header().Get("x-amz-id-2") == "" {
			t.Error("no x-amz-id-2")
		}
		if w.Header().Get("Content-Length") == "" {
			t.Error("no Content-Length")
		}
	}
	w := sendJSON(h, "Nope", "{}")
	if got := w.Header().Get("X-Amzn-ErrorType"); got != "UnknownOperationException" {
		t.Errorf("X-Amzn-ErrorType %q", got)
	}
	a, b := sendJSON(h, "ListStreams", "{}"), sendJSON(h, "ListStreams", "{}")
	if a.Header().Get("x-amzn-RequestId") == b.Header().Get("x-amzn-RequestId") {
		t.Error("request ids repeat")
	}
}

func TestSuccessJSON(t *testing.T) {
	f := newFake()
	f.outputs["PutRecord"] = &streams.PutRecordOutput{ShardId: "shardId-000000000000", SequenceNumber: "4960"}
	h := newTestHandler(t, f)
	w := sendJSON(h, "PutRecord", `{"StreamName":"s","PartitionKey":"k","Data":"aGVsbG8="}`)
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != contentTypeJSON {
		t.Errorf("Content-Type %q", ct)
	}
	if got, want := w.Body.String(), `{"ShardId":"shardId-000000000000","SequenceNumber":"4960"}`; got != want {
		t.Errorf("body %s, want %s", got, want)
	}
	c, _ := f.lastCall()
	in := c.in.(*streams.PutRecordInput)
	if c.op != "PutRecord" || *in.StreamName != "s" || *in.PartitionKey != "k" || string(in.Data) != "hello" {
		t.Errorf("call %s %+v", c.op, in)
	}

	// An operation without output answers an empty body.
	w = sendJSON(h, "CreateStream", `{"StreamName":"s","ShardCount":1}`)
	if w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("CreateStream: %d %q", w.Code, w.Body)
	}
	// A timestamp in epoch seconds.
	w = sendJSON(h, "GetShardIterator", `{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1459799926.48}`)
	if w.Code != 200 {
		t.Fatalf("GetShardIterator %d %s", w.Code, w.Body)
	}
	c, _ = f.lastCall()
	if ts := c.in.(*streams.GetShardIteratorInput).Timestamp; ts == nil || ts.Millis() != 1459799926480 {
		t.Errorf("timestamp %v", ts)
	}
}

// TestGetRecordsReleased checks that a GetRecords answer's records are
// given back once written, in JSON and in CBOR, and only then.
func TestGetRecordsReleased(t *testing.T) {
	for _, proto := range []string{"json", "cbor"} {
		t.Run(proto, func(t *testing.T) {
			f := newFake()
			data := []byte("lent-bytes")
			released := 0
			out := &streams.GetRecordsOutput{Records: []streams.Record{{
				SequenceNumber: "1", ApproximateArrivalTimestamp: streams.TimestampMillis(1), Data: data, PartitionKey: "k",
			}}}
			out.OnRelease(func() {
				released++
				copy(data, "reused-now") // what a lender may do once released
			})
			f.outputs["GetRecords"] = out
			h := newTestHandler(t, f)
			var w *httptest.ResponseRecorder
			if proto == "json" {
				w = sendJSON(h, "GetRecords", `{"ShardIterator":"abc"}`)
			} else {
				body, _ := cbor.Marshal(map[string]any{"ShardIterator": "abc"})
				w = send(h, contentTypeCBOR, TargetPrefix+".GetRecords", body)
			}
			if w.Code != 200 {
				t.Fatalf("status %d: %q", w.Code, w.Body)
			}
			if released != 1 {
				t.Fatalf("released %d times, want 1", released)
			}
			var got []byte
			if proto == "json" {
				var o struct{ Records []struct{ Data []byte } }
				if err := json.Unmarshal(w.Body.Bytes(), &o); err != nil || len(o.Records) != 1 {
					t.Fatalf("%v: %q", err, w.Body)
				}
				got = o.Records[0].Data
			} else {
				var o struct{ Records []struct{ Data []byte } }
				if err := cbor.Unmarshal(w.Body.Bytes(), &o); err != nil || len(o.Records) != 1 {
					t.Fatalf("%v: %x", err, w.Body.Bytes())
				}
				got = o.Records[0].Data
			}
			if string(got) != "lent-bytes" {
				t.Fatalf("answer carries %q: released before it was written", got)
			}
		})
	}
}

func TestSuccessCBOR(t *testing.T) {
	f := newFake()
	f.outputs["GetRecords"] = &streams.GetRecordsOutput{
		Records: []streams.Record{{
			SequenceNumber:              "1",
			ApproximateArrivalTimestamp: streams.TimestampMillis(1459799926480),
			Data:                        []byte{0, 1, 2},
			PartitionKey:                "k",
		}},
		MillisBehindLatest: 0,
	}
	h := newTestHandler(t, f)
	body, _ := cbor.Marshal(map[string]any{"ShardIterator": "abc", "Limit": 10})
	w := send(h, contentTypeCBOR, TargetPrefix+".GetRecords", body)
	if w.Code != 200 {
		t.Fatalf("status %d: %x", w.Code, w.Body.Bytes())
	}
	if ct := w.Header().Get("Content-Type"); ct != contentTypeCBOR {
		t.Errorf("Content-Type %q", ct)
	}
	var out struct {
		Records []struct {
			Data                        []byte
			ApproximateArrivalTimestamp cbor.RawTag
		}
	}
	if err := cbor.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 1 || !bytes.Equal(out.Records[0].Data, []byte{0, 1, 2}) {
		t.Fatalf("records %+v", out.Records)
	}
	var ms int64
	if err := cbor.Unmarshal(out.Records[0].ApproximateArrivalTimestamp.Content, &ms); err != nil ||
		out.Records[0].ApproximateArrivalTimestamp.Number != 1 || ms != 1459799926480 {
		t.Errorf("timestamp tag %d content %d (%v)", out.Records[0].ApproximateArrivalTimestamp.Number, ms, err)
	}
	c, _ := f.lastCall()
	if in := c.in.(*streams.GetRecordsInput); *in.ShardIterator != "abc" || *in.Limit != 10 {
		t.Errorf("input %+v", in)
	}

	// CBOR request timestamps are tag 1 around epoch milliseconds.
	body, _ = cbor.Marshal(map[string]any{
		"StreamName": "s", "ShardId": "shardId-000000000000", "ShardIteratorType": "AT_TIMESTAMP",
		"Timestamp": cbor.Tag{Number: 1, Content: int64(1459799926480)},
	})
	w = send(h, contentTypeCBOR, TargetPrefix+".GetShardIterator", body)
	if w.Code != 200 {
		t.Fatalf("GetShardIterator %d %x", w.Code, w.Body.Bytes())
	}
	c, _ = f.lastCall()
	if ts := c.in.(*streams.GetShardIteratorInput).Timestamp; ts == nil || ts.Millis() != 1459799926480 {
		t.Errorf("timestamp %v", ts)
	}

	// Blobs are byte strings; an empty one is present, not null.
	body, _ = cbor.Marshal(map[string]any{"StreamName": "s", "Records": []any{
		map[string]any{"PartitionKey": "a", "Data": []byte{}},
	}})
	if w := send(h, contentTypeCBOR, TargetPrefix+".PutRecords", body); w.Code != 200 {
		t.Fatalf("PutRecords %d %x", w.Code, w.Body.Bytes())
	}
}

func TestBackendErrors(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	f := newFake()
	opts := DefaultOptions()
	opts.AllowedHosts = []string{"example.com"} // httptest.NewRequest's Host
	opts.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	h, err := NewHandler(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.errs["DescribeStreamSummary"] = &streams.Error{Code: streams.CodeResourceNotFound, Message: "Stream s under account 000000000000 not found."}
	f.errs["ListStreams"] = errors.New("disk on fire")
	f.errs["DescribeLimits"] = &streams.Error{Code: "NoSuchCode", Message: "x"}

	w := sendJSON(h, "DescribeStreamSummary", `{"StreamName":"s"}`)
	if w.Code != 400 || w.Body.String() != `{"__type":"ResourceNotFoundException","message":"Stream s under account 000000000000 not found."}` {
		t.Errorf("not found: %d %s", w.Code, w.Body)
	}
	if w.Header().Get("X-Amzn-ErrorType") != "ResourceNotFoundException" {
		t.Errorf("X-Amzn-ErrorType %q", w.Header().Get("X-Amzn-ErrorType"))
	}

	// The same error in CBOR.
	body, _ := cbor.Marshal(map[string]any{"StreamName": "s"})
	w = send(h, contentTypeCBOR, TargetPrefix+".DescribeStreamSummary", body)
	var cb map[string]string
	if err := cbor.Unmarshal(w.Body.Bytes(), &cb); err != nil || w.Code != 400 ||
		cb["__type"] != "ResourceNotFoundException" || cb["message"] == "" {
		t.Errorf("cbor not found: %d %v %v", w.Code, cb, err)
	}

	for _, op := range []string{"ListStreams", "DescribeLimits"} {
		w = sendJSON(h, op, `{}`)
		if w.Code != 500 || w.Body.String() != `{"__type":"InternalFailure"}` {
			t.Errorf("%s: %d %s", op, w.Code, w.Body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "disk on fire") {
		t.Errorf("internal failure not logged: %s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestBodyLimit(t *testing.T) {
	f := newFake()
	opts := DefaultOptions()
	opts.AllowedHosts = []string{"example.com"} // httptest.NewRequest's Host
	opts.MaxBodyBytes = 4096
	opts.Logger = slog.New(slog.DiscardHandler)
	h, err := NewHandler(f, opts)
	if err != nil {
		t.Fatal(err)
	}
	big := `{"StreamName":"` + strings.Repeat("a", 5000) + `"}`

	// Declared length over the limit.
	w := sendJSON(h, "DescribeStreamSummary", big)
	if w.Code != http.StatusRequestEntityTooLarge || jsonError(t, w)["__type"] != "RequestEntityTooLargeException" {
		t.Errorf("declared: %d %s", w.Code, w.Body)
	}
	// Undeclared (chunked) length over the limit.
	r := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader(big)))
	r.ContentLength = -1
	r.Header.Set("Content-Type", contentTypeJSON)
	r.Header.Set("X-Amz-Target", TargetPrefix+".DescribeStreamSummary")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked: %d %s", w.Code, w.Body)
	}
	if len(f.calls) != 0 {
		t.Errorf("backend called")
	}
	// At the limit is fine.
	ok := `{"StreamName":"` + strings.Repeat("a", 130) + `"}`
	if w := sendJSON(h, "DescribeStreamSummary", ok); w.Code != 400 || !strings.Contains(w.Body.String(), "less than or equal to 128") {
		t.Errorf("small: %d %s", w.Code, w.Body)
	}
}

func TestSerializationMessages(t *testing.T) {
	tests := []struct {
		op, body, want string
	}{
		{"CreateStream", `{"StreamName":"s","ShardCount":"1"}`, "class java.lang.String can not be converted to an Integer"},
		{"CreateStream", `{"StreamName":"s","ShardCount":true}`, "class java.lang.Boolean can not be converted to an Integer"},
		{"CreateStream", `{"StreamName":"s","ShardCount":[]}`, "Start of list found where not expected"},
		{"CreateStream", `{"StreamName":"s","ShardCount":{}}`, "Start of structure or map found where not expected."},
		{"CreateStream", `{"StreamName":true}`, "class java.lang.Boolean can not be converted to an String"},
		{"CreateStream", `{"StreamName":23}`, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to an String"},
		{"CreateStream", `{"StreamName":"s","Tags":"x"}`, "Expected map or null"},
		{"CreateStream", `{"StreamName":"s","Tags":[]}`, "Start of list found where not expected"},
		{"CreateStream", `{"StreamName":"s","StreamModeDetails":"x"}`, "Expected null"},
		{"PutRecords", `{"StreamName":"s","Records":"x"}`, "Expected list or null"},
		{"PutRecords", `{"StreamName":"s","Records":{}}`, "Start of structure or map found where not expected."},
		{"PutRecords", `{"StreamName":"s","Records":[{"PartitionKey":"a","Data":true}]}`, "class java.lang.Boolean can not be converted to a Blob"},
		{"PutRecords", `{"StreamName":"s","Records":[{"PartitionKey":"a","Data":1}]}`, "class com.amazon.coral.value.json.numbers.TruncatingBigNumber can not be converted to a Blob"},
		{"DeleteStream", `{"StreamName":"s","EnforceConsumerDeletion":"yes"}`, "'yes' can not be converted to an Boolean"},
		{"DeleteStream", `{"StreamName":"s","EnforceConsumerDeletion":"a\"b"}`, `'a"b' can not be converted to an Boolean`},
	}
	h := newTestHandler(t, newFake())
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			w := sendJSON(h, tt.op, tt.body)
			m := jsonError(t, w)
			if w.Code != 400 || m["__type"] != "SerializationException" || m["Message"] != tt.want {
				t.Errorf("%d %s, want Message %q", w.Code, w.Body, tt.want)
			}
		})
	}
	// The same check in CBOR.
	body, _ := cbor.Marshal(map[string]any{"StreamName": "s", "ShardCount": "1"})
	w := send(h, contentTypeCBOR, TargetPrefix+".CreateStream", body)
	var m map[string]string
	if err := cbor.Unmarshal(w.Body.Bytes(), &m); err != nil || w.Code != 400 ||
		m["__type"] != "SerializationException" || m["Message"] != "class java.lang.String can not be converted to an Integer" {
		t.Errorf("cbor: %d %v %v", w.Code, m, err)
	}
}
