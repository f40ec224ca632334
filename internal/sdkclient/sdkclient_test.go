package sdkclient

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// captureClient records the request it is given.
type captureClient struct{ got *http.Request }

func (c *captureClient) Do(r *http.Request) (*http.Response, error) {
	c.got = r
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

// writerToBody is a body with WriteTo, as the SDK's is.
type writerToBody struct{ *bytes.Reader }

func (writerToBody) Close() error { return nil }

func TestGuardHidesWriteTo(t *testing.T) {
	inner := &captureClient{}
	body := writerToBody{bytes.NewReader([]byte("payload"))}
	if _, ok := any(body).(io.WriterTo); !ok {
		t.Fatal("test body lacks WriteTo")
	}
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/", body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Guard(inner).Do(req); err != nil {
		t.Fatal(err)
	}
	if _, ok := inner.got.Body.(io.WriterTo); ok {
		t.Fatal("the guarded request body still has WriteTo")
	}
	b, err := io.ReadAll(inner.got.Body)
	if err != nil || string(b) != "payload" {
		t.Fatalf("guarded body read %q, %v", b, err)
	}
	if req.Body != io.ReadCloser(body) {
		t.Fatal("the caller's request was modified")
	}
}

func TestGuardLeavesEmptyBodies(t *testing.T) {
	inner := &captureClient{}
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	if _, err := Guard(inner).Do(req); err != nil {
		t.Fatal(err)
	}
	if inner.got != req {
		t.Fatal("a request without a body was copied")
	}
	req2, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/", strings.NewReader(""))
	req2.Body = http.NoBody
	if _, err := Guard(inner).Do(req2); err != nil || inner.got.Body != http.NoBody {
		t.Fatalf("NoBody was wrapped: %v", err)
	}
}
