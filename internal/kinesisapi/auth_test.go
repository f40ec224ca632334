package kinesisapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/fxamacker/cbor/v2"

	"github.com/runnel/runnel/internal/auth"
	"github.com/runnel/runnel/internal/streams"
)

// whoAmI is an API answering with the principal its context carries.
type whoAmI struct{}

func (whoAmI) TargetPrefix() string { return "WhoAmI_1" }
func (whoAmI) NewInput(op string) any {
	if op == "Get" {
		return new(map[string]any)
	}
	return nil
}
func (whoAmI) HasOutput(string) bool { return true }
func (whoAmI) Call(ctx context.Context, _ string, _ any) (any, error) {
	p := auth.FromContext(ctx)
	if p == nil {
		return map[string]string{"ARN": ""}, nil
	}
	return map[string]string{"ARN": p.ARN}, nil
}

func authHandler(t testing.TB, b Backend) (*Handler, *bytes.Buffer) {
	t.Helper()
	creds, err := auth.ParseCredentials([]byte(`{"users":[{"name":"producer",
		"keys":[{"access_key_id":"AKIAPRODUCER","secret_access_key":"producer-secret"}]}]}`), "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.New(auth.Options{Region: "us-east-1", Account: "123456789012", Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	opts := DefaultOptions()
	opts.AllowedHosts = []string{"example.com"}
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Auth = v
	opts.Audit = auth.NewAudit(slog.New(slog.NewTextHandler(&logs, nil)), true)
	opts.APIs = []API{whoAmI{}}
	h, err := NewHandler(b, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h, &logs
}

// signedRequest is a request as the SDK signs it, as the server receives it.
func signedRequest(t testing.TB, contentType, target, body, secret string, presign bool) *http.Request {
	t.Helper()
	cr, _ := http.NewRequest(http.MethodPost, "http://example.com/", strings.NewReader(body))
	cr.Header.Set("Content-Type", contentType)
	cr.Header.Set("X-Amz-Target", target)
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: "AKIAPRODUCER", SecretAccessKey: secret}
	raw := "/"
	if presign {
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, cr, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		raw = u[strings.Index(u, "/"+"?"):]
		cr.Header.Del("X-Amz-Target") // the URL alone carries it
	} else if err := v4.NewSigner().SignHTTP(context.Background(), creds, cr, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, raw, strings.NewReader(body))
	r.Header = cr.Header.Clone()
	return r
}

func TestAuthenticatedHandler(t *testing.T) {
	cases := []struct {
		name        string
		contentType string
		target      string
		body        string
		secret      string
		presign     bool
		edit        func(*http.Request)
		status      int
		errType     string
		message     string
	}{
		{name: "signed", target: "Kinesis_20131202.DescribeStreamSummary", body: `{"StreamName":"s1"}`, secret: "producer-secret", status: 200},
		{name: "signed CBOR", contentType: contentTypeCBOR, target: "Kinesis_20131202.DescribeStreamSummary", body: "\xa1\x6aStreamName\x62s1", secret: "producer-secret", status: 200},
		{name: "presigned", target: "Kinesis_20131202.DescribeStreamSummary", body: `{"StreamName":"s1"}`, secret: "producer-secret", presign: true, status: 200},
		{name: "unsigned", target: "Kinesis_20131202.DescribeStreamSummary", body: `{"StreamName":"s1"}`,
			edit: func(r *http.Request) { r.Header.Del("Authorization") }, secret: "x",
			status: 403, errType: "MissingAuthenticationTokenException", message: "Missing Authentication Token"},
		{name: "unsigned CBOR", contentType: contentTypeCBOR, target: "Kinesis_20131202.DescribeStreamSummary", body: "\xa0",
			edit: func(r *http.Request) { r.Header.Del("Authorization") }, secret: "x",
			status: 403, errType: "MissingAuthenticationTokenException", message: "Missing Authentication Token"},
		{name: "wrong secret", target: "Kinesis_20131202.DescribeStreamSummary", body: `{"StreamName":"s1"}`, secret: "wrong",
			status: 400, errType: "InvalidSignatureException", message: "The request signature we calculated does not match"},
		{name: "wrong secret CBOR", contentType: contentTypeCBOR, target: "Kinesis_20131202.DescribeStreamSummary", body: "\xa0", secret: "wrong",
			status: 400, errType: "InvalidSignatureException", message: "The request signature we calculated does not match"},
		{name: "body replaced", target: "Kinesis_20131202.DescribeStreamSummary", body: `{"StreamName":"s1"}`, secret: "producer-secret",
			edit:   func(r *http.Request) { r.Body = httptestBody(`{"StreamName":"s2"}`) },
			status: 400, errType: "InvalidSignatureException", message: "The request signature we calculated does not match"},
		{name: "lease API", target: "WhoAmI_1.Get", body: `{}`, secret: "wrong",
			status: 400, errType: "InvalidSignatureException", message: "The request signature we calculated does not match"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newFake()
			h, logs := authHandler(t, fake)
			ct := tc.contentType
			if ct == "" {
				ct = contentTypeJSON
			}
			r := signedRequest(t, ct, tc.target, tc.body, tc.secret, tc.presign)
			if tc.edit != nil {
				tc.edit(r)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			if tc.errType == "" {
				if _, ok := fake.lastCall(); !ok {
					t.Fatal("backend not called")
				}
				if !strings.Contains(logs.String(), "control-plane call") || !strings.Contains(logs.String(), "principal=arn:aws:iam::123456789012:user/producer") ||
					!strings.Contains(logs.String(), "resource=s1") {
					t.Fatalf("control-plane audit: %s", logs)
				}
				return
			}
			if _, ok := fake.lastCall(); ok {
				t.Fatal("backend called for a refused request")
			}
			var m map[string]any
			if ct == contentTypeCBOR {
				if err := cbor.Unmarshal(w.Body.Bytes(), &m); err != nil {
					t.Fatalf("CBOR error body: %v", err)
				}
			} else {
				m = jsonError(t, w)
			}
			if m["__type"] != tc.errType || !strings.HasPrefix(m["message"].(string), tc.message) {
				t.Fatalf("error %v, want %s %q", m, tc.errType, tc.message)
			}
			if got := w.Header().Get("X-Amzn-ErrorType"); got != tc.errType {
				t.Fatalf("X-Amzn-ErrorType %q", got)
			}
			log := logs.String()
			if !strings.Contains(log, "request refused") || !strings.Contains(log, "error="+tc.errType) ||
				!strings.Contains(log, "action="+tc.target) || !strings.Contains(log, "source_ip=192.0.2.1") {
				t.Fatalf("audit log: %s", log)
			}
			if tc.secret == "wrong" && !strings.Contains(log, "access_key=AKIAPRODUCER") {
				t.Fatalf("audit log without the key: %s", log)
			}
		})
	}
}

func httptestBody(s string) *readCloser { return &readCloser{strings.NewReader(s)} }

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// TestPrincipalInContext: the operation sees who signed the request.
func TestPrincipalInContext(t *testing.T) {
	h, _ := authHandler(t, newFake())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, signedRequest(t, contentTypeJSON, "WhoAmI_1.Get", `{}`, "producer-secret", false))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"ARN":"arn:aws:iam::123456789012:user/producer"`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// TestAuthCodesRegistered: every error type authentication answers with
// is in the registry, or it would be answered as an internal failure.
func TestAuthCodesRegistered(t *testing.T) {
	for _, code := range []string{auth.CodeMissingToken, auth.CodeIncompleteSignature, auth.CodeInvalidSignature,
		auth.CodeUnrecognizedClient, auth.CodeExpiredToken} {
		if _, ok := LookupErrorType(code); !ok {
			t.Errorf("%s is not registered", code)
		}
	}
}

// FuzzHandlerAuth sends arbitrary signatures through an authenticating
// handler: every answer is a well-formed refusal (or, for a forgery that
// cannot happen, a success), never an internal failure.
func FuzzHandlerAuth(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAPRODUCER/20261206/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"20261206T053000Z", "", []byte(`{}`))
	f.Add("", "", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAPRODUCER%2F20261206%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Signature=1", []byte{0xa0})
	f.Add("AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;, Signature=", "x", "%", []byte(nil))
	h, _ := authHandler(f, newFake())
	f.Fuzz(func(t *testing.T, authz, date, query string, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", contentTypeJSON)
		r.Header.Set("X-Amz-Target", TargetPrefix+".ListStreams")
		r.Header["Authorization"] = []string{authz}
		r.Header["X-Amz-Date"] = []string{date}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code == 200 {
			t.Fatalf("forged request accepted: %q %q", authz, query)
		}
		checkFuzzResponse(t, w.Code, w.Body.Bytes())
		m := map[string]any{}
		if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatalf("answer is not JSON: %q", w.Body.Bytes())
		}
	})
}

// BenchmarkHandlerPutRecordsSigned is BenchmarkHandlerPutRecords' JSON
// case with authentication: none, form only (no credentials) and checked.
func BenchmarkHandlerPutRecordsSigned(b *testing.B) {
	f := newFake()
	res := make([]streams.PutRecordsResultEntry, 500)
	seq, shard := "49590338271490256608559692538361571095921575989136588898", "shardId-000000000000"
	for i := range res {
		res[i] = streams.PutRecordsResultEntry{SequenceNumber: &seq, ShardId: &shard}
	}
	f.outputs["PutRecords"] = &streams.PutRecordsOutput{Records: res}
	body := putRecordsBody(b, protoJSON, 500, 1024)
	signed := signedRequest(b, contentTypeJSON, TargetPrefix+".PutRecords", string(body), "producer-secret", false)
	checked, _ := authHandler(b, f)
	unverified, _ := authHandler(b, f)
	unverified.opts.Auth.SetCredentials(nil)
	for _, tc := range []struct {
		name string
		h    *Handler
	}{{"none", newTestHandler(b, f)}, {"form", unverified}, {"checked", checked}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				f.calls = f.calls[:0]
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				r.Header = signed.Header
				w := httptest.NewRecorder()
				tc.h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}
