package kinesisapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
)

// deny is a WireError refusing with AccessDeniedException.
type deny struct{ msg string }

func (d deny) Error() string        { return d.msg }
func (d deny) ErrorCode() string    { return "AccessDeniedException" }
func (d deny) ErrorMessage() string { return d.msg }

// refAPI is an API whose one operation takes a stream reference.
type refAPI struct{ called int }

type refInput struct {
	StreamName *string `json:"StreamName,omitempty"`
	Other      string  `json:"Other"`
}

func (a *refAPI) TargetPrefix() string { return "Refs_20260101" }
func (a *refAPI) NewInput(op string) any {
	if op != "Touch" {
		return nil
	}
	return &refInput{}
}
func (a *refAPI) Call(context.Context, string, any) (any, error) { a.called++; return nil, nil }
func (a *refAPI) HasOutput(string) bool                          { return false }
func (a *refAPI) IAMService() string                             { return "refs" }

func TestAuthorizeHook(t *testing.T) {
	var seen []AuthorizeRequest
	var verdict error
	api := &refAPI{}
	opts := DefaultOptions()
	opts.AllowedHosts = []string{"example.com"}
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.APIs = []API{api}
	opts.Authorize = func(ctx context.Context, req *AuthorizeRequest) error {
		if req.HTTP == nil || req.Input == nil {
			t.Error("the hook saw no HTTP request or input")
		}
		r := *req
		r.HTTP, r.Input = nil, nil
		seen = append(seen, r)
		return verdict
	}
	fb := newFake()
	h, err := NewHandler(fb, opts)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		op, body string
		want     AuthorizeRequest
	}{
		{"PutRecords", `{"StreamName":"orders","Records":[{"Data":"AA==","PartitionKey":"k"}]}`,
			AuthorizeRequest{Target: TargetPrefix, Service: "kinesis", Operation: "PutRecords", StreamName: "orders"}},
		{"GetRecords", `{"ShardIterator":"it-123"}`,
			AuthorizeRequest{Target: TargetPrefix, Service: "kinesis", Operation: "GetRecords", Token: "it-123"}},
		{"DescribeStreamConsumer", `{"StreamARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","ConsumerName":"app"}`,
			AuthorizeRequest{Target: TargetPrefix, Service: "kinesis", Operation: "DescribeStreamConsumer", StreamARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s", ConsumerName: "app"}},
		{"TagResource", `{"ResourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","Tags":{"a":"b"}}`,
			AuthorizeRequest{Target: TargetPrefix, Service: "kinesis", Operation: "TagResource", ResourceARN: "arn:aws:kinesis:us-east-1:123456789012:stream/s"}},
		{"ListStreams", `{}`,
			AuthorizeRequest{Target: TargetPrefix, Service: "kinesis", Operation: "ListStreams"}},
	}
	for _, c := range cases {
		seen = nil
		verdict = nil
		w := sendJSON(h, c.op, c.body)
		if len(seen) != 1 || seen[0] != c.want {
			t.Fatalf("%s: hook saw %+v, want %+v", c.op, seen, c.want)
		}
		if c.op == "DescribeStreamConsumer" {
			// The fake backend has no consumers; the request got
			// past the hook to the backend's answer.
			if jsonError(t, w)["__type"] != "UnknownOperationException" {
				t.Fatalf("%s: %d %s", c.op, w.Code, w.Body)
			}
			continue
		}
		if w.Code != http.StatusOK {
			t.Fatalf("%s allowed: status %d %s", c.op, w.Code, w.Body)
		}
		if call, ok := fb.lastCall(); !ok || call.op != c.op {
			t.Fatalf("%s: backend not called (%v)", c.op, call.op)
		}
	}

	// A refusal: the backend is not called, the client gets Kinesis'
	// AccessDeniedException with its "Message" member.
	verdict = deny{"User: arn:aws:iam::123456789012:user/a is not authorized to perform: kinesis:DeleteStream"}
	n := len(fb.calls)
	w := sendJSON(h, "DeleteStream", `{"StreamName":"orders"}`)
	m := jsonError(t, w)
	if w.Code != http.StatusBadRequest || m["__type"] != "AccessDeniedException" || m["Message"] != verdict.(deny).msg {
		t.Fatalf("refusal answered %d %s", w.Code, w.Body)
	}
	if w.Header().Get("X-Amzn-ErrorType") != "AccessDeniedException" {
		t.Fatalf("X-Amzn-ErrorType %q", w.Header().Get("X-Amzn-ErrorType"))
	}
	if len(fb.calls) != n {
		t.Fatal("a refused request reached the backend")
	}
	// Invalid input is answered before authorization.
	seen = nil
	if w := sendJSON(h, "DeleteStream", `{"StreamName":"bad name!"}`); w.Code != http.StatusBadRequest || jsonError(t, w)["__type"] != "ValidationException" || len(seen) != 0 {
		t.Fatalf("invalid input: %d %s, hook calls %d", w.Code, w.Body, len(seen))
	}
	// Other APIs go through the hook too.
	seen = nil
	w = send(h, contentTypeJSON, "Refs_20260101.Touch", []byte(`{"StreamName":"orders","Other":"x"}`))
	if w.Code != http.StatusBadRequest || api.called != 0 || len(seen) != 1 ||
		seen[0] != (AuthorizeRequest{Target: "Refs_20260101", Service: "refs", Operation: "Touch", StreamName: "orders"}) {
		t.Fatalf("API refused: %d %s, hook saw %+v, calls %d", w.Code, w.Body, seen, api.called)
	}
	verdict = nil
	if w := send(h, contentTypeJSON, "Refs_20260101.Touch", []byte(`{}`)); w.Code != http.StatusOK || api.called != 1 {
		t.Fatalf("API allowed: %d %s", w.Code, w.Body)
	}
	// Any other error is an internal failure, not a refusal.
	verdict = errors.New("policy store down")
	if w := sendJSON(h, "ListStreams", `{}`); w.Code != http.StatusInternalServerError || jsonError(t, w)["__type"] != "InternalFailure" {
		t.Fatalf("hook failure answered %d %s", w.Code, w.Body)
	}
}
