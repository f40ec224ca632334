package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// The parsers read bytes any client can send: none may panic, and what
// they accept must be self-consistent.

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc", true)
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/kinesis/aws4_request,SignedHeaders=host,Signature=", false)
	f.Add("AWS4-HMAC-SHA256 Credential AKID", true)
	f.Add("Bearer x", true)
	f.Add("AWS4-HMAC-SHA256 ,,,=,", true)
	f.Fuzz(func(t *testing.T, h string, hasDate bool) {
		s, err := ParseAuthorization(h, hasDate)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T", err)
			}
			return
		}
		if !hasDate || !strings.HasPrefix(h, Algorithm+" ") {
			t.Fatalf("accepted %q without date or algorithm", h)
		}
		if strings.Join([]string{s.Credential.AccessKeyID, s.Credential.Scope()}, "/") == "" || len(s.SignedHeaders) == 0 {
			t.Fatalf("accepted %q as %+v", h, s)
		}
	})
}

func FuzzParseCredential(f *testing.F) {
	f.Add("AKID/20261206/us-east-1/kinesis/aws4_request")
	f.Add("AKID/20261206/us-east-1/kinesis")
	f.Add("////")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCredential(s)
		if err != nil {
			return
		}
		if c.AccessKeyID+"/"+c.Scope() != s {
			t.Fatalf("%q parsed as %+v", s, c)
		}
	})
}

func FuzzParsePresigned(f *testing.F) {
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261206%2Fus-east-1%2Fkinesis%2Faws4_request&X-Amz-Date=20261206T053000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=00")
	f.Add("X-Amz-Algorithm=x&X-Amz-Date=1")
	f.Add("X-Amz-Expires=-1&X-Amz-Signature=%zz")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		s, err := ParsePresigned(q)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T", err)
			}
			return
		}
		if !s.Presigned || s.Expires < 0 || s.Expires > maxPresignExpiry || s.Signature == "" {
			t.Fatalf("accepted %q as %+v", raw, s)
		}
	})
}

// FuzzVerify drives whole requests through a checking Verifier: any
// header, query and body is refused with an *Error or accepted, never a
// panic.
func FuzzVerify(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAPRODUCER/20261206/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
		"20261206T053000Z", "", "", "{}")
	f.Add("", "20261206T053000Z", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIATEMP/20261206/us-east-1/kinesis/aws4_request&X-Amz-Date=20261206T053000Z&X-Amz-SignedHeaders=host%3Bcontent-length&X-Amz-Signature=00&X-Amz-Security-Token=the-token", "", "x")
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAPRODUCER/20261206/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-content-sha256;transfer-encoding, Signature=00",
		"20261206T053000Z", "a=%&b", "UNSIGNED-PAYLOAD", "")
	v := testVerifier(f, testNow)
	f.Fuzz(func(t *testing.T, authz, date, query, sha, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.URL.RawQuery = query
		if authz != "" {
			r.Header["Authorization"] = []string{authz}
		}
		r.Header["X-Amz-Date"] = []string{date}
		if sha != "" {
			r.Header["X-Amz-Content-Sha256"] = []string{sha}
		}
		_, err := verify(v, r)
		if err == nil {
			t.Fatalf("accepted a forged request: %q %q", authz, query)
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error %T: %v", err, err)
		}
	})
}
