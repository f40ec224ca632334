package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const testAccount = "123456789012"

var testNow = time.Date(2026, 12, 6, 5, 30, 0, 0, time.UTC)

const testCredentials = `{"users":[
 {"name":"producer","keys":[{"access_key_id":"AKIAPRODUCER","secret_access_key":"producer-secret"}],
  "policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:PutRecords","Resource":"*"}]}]},
 {"name":"temp","account":"210987654321","keys":[
   {"access_key_id":"ASIATEMP","secret_access_key":"temp-secret","session_token":"the-token","expiration":"2026-12-06T06:00:00Z"},
   {"access_key_id":"ASIAOLD","secret_access_key":"old-secret","session_token":"old-token","expiration":"2026-12-06T05:00:00Z"}]}]}`

func testVerifier(t testing.TB, now time.Time) *Verifier {
	t.Helper()
	creds, err := ParseCredentials([]byte(testCredentials), testAccount)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Options{Region: "us-east-1", Account: testAccount, Credentials: creds, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// sdkRequest builds a Kinesis request as the SDK sends it, as the server
// receives it.
func sdkRequest(t testing.TB, body string, sign func(r *http.Request, payloadHash string)) *http.Request {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:4567/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
	sum := sha256.Sum256([]byte(body))
	sign(r, hex.EncodeToString(sum[:]))
	// What the server sees: the URL without scheme and host, the body as sent.
	sr := httptest.NewRequest(r.Method, r.URL.RequestURI(), strings.NewReader(body))
	sr.Host = r.URL.Host
	sr.Header = r.Header.Clone()
	sr.ContentLength = int64(len(body))
	return sr
}

func signWith(akid, secret, token, region, service string, at time.Time) func(*http.Request, string) {
	return func(r *http.Request, payloadHash string) {
		creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, payloadHash, service, region, at); err != nil {
			panic(err)
		}
	}
}

func presignWith(akid, secret, token string, at time.Time, expires string) func(*http.Request, string) {
	return func(r *http.Request, payloadHash string) {
		if expires != "" {
			q := r.URL.Query()
			q.Set("X-Amz-Expires", expires)
			r.URL.RawQuery = q.Encode()
		}
		creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret, SessionToken: token}
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, payloadHash, "kinesis", "us-east-1", at)
		if err != nil {
			panic(err)
		}
		r.URL.RawQuery = u[strings.Index(u, "?")+1:]
	}
}

func TestVerify(t *testing.T) {
	const body = `{"Limit":10}`
	cases := []struct {
		name    string
		sign    func(*http.Request, string)
		edit    func(*http.Request)
		code    string
		message string // prefix of the expected message
		arn     string
	}{
		{name: "signed", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow),
			arn: "arn:aws:iam::123456789012:user/producer"},
		{name: "firehose scope", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "firehose", testNow),
			arn: "arn:aws:iam::123456789012:user/producer"},
		{name: "signed 4 minutes ago", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow.Add(-4*time.Minute)),
			arn: "arn:aws:iam::123456789012:user/producer"},
		{name: "temporary", sign: signWith("ASIATEMP", "temp-secret", "the-token", "us-east-1", "kinesis", testNow),
			arn: "arn:aws:iam::210987654321:user/temp"},
		{name: "presigned", sign: presignWith("AKIAPRODUCER", "producer-secret", "", testNow.Add(-10*time.Minute), "3600"),
			arn: "arn:aws:iam::123456789012:user/producer"},
		{name: "presigned temporary", sign: presignWith("ASIATEMP", "temp-secret", "the-token", testNow, ""),
			arn: "arn:aws:iam::210987654321:user/temp"},

		{name: "HTTP/2 :authority signed", sign: func(r *http.Request, payloadHash string) {
			r.Header[":authority"] = []string{r.URL.Host} // as the SDK for JavaScript v3 signs over h2
			signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow)(r, payloadHash)
			if !strings.Contains(r.Header.Get("Authorization"), ":authority;") {
				panic("not signed: " + r.Header.Get("Authorization"))
			}
			delete(r.Header, ":authority") // net/http's server keeps it only as Host
		}, arn: "arn:aws:iam::123456789012:user/producer"},

		{name: "unsigned", sign: func(*http.Request, string) {}, code: CodeMissingToken, message: "Missing Authentication Token"},
		{name: "query without signature", sign: func(r *http.Request, _ string) { r.URL.RawQuery = "a=b" },
			code: CodeMissingToken, message: "Missing Authentication Token"},
		{name: "wrong secret", sign: signWith("AKIAPRODUCER", "not-the-secret", "", "us-east-1", "kinesis", testNow),
			code: CodeInvalidSignature, message: msgSignatureWrong + "\n\nThe Canonical String for this request should have been\n'POST\n/\n\ncontent-length:12\ncontent-type:application/x-amz-json-1.1\nhost:127.0.0.1:4567\nx-amz-date:20261206T053000Z\nx-amz-target:Kinesis_20131202.ListStreams\n\ncontent-length;content-type;host;x-amz-date;x-amz-target\n"},
		{name: "body changed", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow),
			edit: func(r *http.Request) { r.Body = http.NoBody; r.ContentLength = 12 },
			code: CodeInvalidSignature, message: msgSignatureWrong},
		{name: "header changed", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow),
			edit: func(r *http.Request) { r.Header.Set("X-Amz-Target", "Kinesis_20131202.DeleteStream") },
			code: CodeInvalidSignature, message: msgSignatureWrong},
		{name: "unknown key", sign: signWith("AKIANOBODY", "x", "", "us-east-1", "kinesis", testNow),
			code: CodeUnrecognizedClient, message: "The security token included in the request is invalid."},
		{name: "wrong region", sign: signWith("AKIAPRODUCER", "producer-secret", "", "eu-west-1", "kinesis", testNow),
			code: CodeInvalidSignature, message: "Credential should be scoped to a valid region, not 'eu-west-1'. "},
		{name: "wrong service", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "dynamodb", testNow),
			code: CodeInvalidSignature, message: "Credential should be scoped to correct service: 'kinesis'. "},
		{name: "expired", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow.Add(-6*time.Minute)),
			code: CodeInvalidSignature, message: "Signature expired: 20261206T052400Z is now earlier than 20261206T052500Z (20261206T053000Z - 5 min.)"},
		{name: "future", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow.Add(6*time.Minute)),
			code: CodeInvalidSignature, message: "Signature not yet current: 20261206T053600Z is still later than 20261206T053500Z (20261206T053000Z + 5 min.)"},
		{name: "scope date", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow),
			edit: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20261206/", "/20261205/", 1))
			},
			code: CodeInvalidSignature, message: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261205' != '20261206', from '20261206T053000Z'."},
		{name: "token missing", sign: signWith("ASIATEMP", "temp-secret", "", "us-east-1", "kinesis", testNow),
			code: CodeUnrecognizedClient, message: "The security token included in the request is invalid."},
		{name: "token wrong", sign: signWith("ASIATEMP", "temp-secret", "other-token", "us-east-1", "kinesis", testNow),
			code: CodeUnrecognizedClient, message: "The security token included in the request is invalid."},
		{name: "token with long-term key", sign: signWith("AKIAPRODUCER", "producer-secret", "a-token", "us-east-1", "kinesis", testNow),
			code: CodeUnrecognizedClient, message: "The security token included in the request is invalid."},
		{name: "token expired", sign: signWith("ASIAOLD", "old-secret", "old-token", "us-east-1", "kinesis", testNow),
			code: CodeExpiredToken, message: "The security token included in the request is expired"},
		{name: "incomplete header", sign: func(r *http.Request, _ string) {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAPRODUCER/20261206/us-east-1/kinesis/aws4_request")
		}, code: CodeIncompleteSignature, message: "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential=AKIAPRODUCER/20261206/us-east-1/kinesis/aws4_request"},
		{name: "other scheme", sign: func(r *http.Request, _ string) { r.Header.Set("Authorization", "Bearer xyz") },
			code: CodeIncompleteSignature, message: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter."},
		{name: "missing equal sign", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow),
			edit: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "Credential=", "Credential ", 1))
			},
			code: CodeIncompleteSignature, message: "'Credential AKIAPRODUCER/20261206/us-east-1/kinesis/aws4_request' not a valid key=value pair (missing equal-sign) in Authorization header"},
		{name: "short credential", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow),
			edit: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/aws4_request", "", 1))
			},
			code: CodeIncompleteSignature, message: "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIAPRODUCER/20261206/us-east-1/kinesis'"},
		{name: "host not signed", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow),
			edit: func(r *http.Request) {
				r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";host;", ";", 1))
			},
			code: CodeIncompleteSignature, message: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."},
		{name: "signed header absent", sign: signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow),
			edit: func(r *http.Request) { r.Header.Del("X-Amz-Target") },
			code: CodeIncompleteSignature, message: "'x-amz-target' is named as a SignedHeader, but it does not exist in the HTTP request."},
		{name: "content hash mismatch", sign: func(r *http.Request, _ string) {
			r.Header.Set("X-Amz-Content-Sha256", strings.Repeat("0", 64))
			signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow)(r, strings.Repeat("0", 64))
		}, code: CodeInvalidSignature, message: "The provided 'x-amz-content-sha256' header does not match what was computed."},
		{name: "unsigned payload over http", sign: func(r *http.Request, _ string) {
			r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
			signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow)(r, UnsignedPayload)
		}, code: CodeInvalidSignature, message: "UNSIGNED-PAYLOAD is accepted only over HTTPS"},
		{name: "unsigned payload over https", sign: func(r *http.Request, _ string) {
			r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
			signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow)(r, UnsignedPayload)
		}, edit: func(r *http.Request) { r.TLS = &tls.ConnectionState{} }, arn: "arn:aws:iam::123456789012:user/producer"},
		{name: "presigned expired", sign: presignWith("AKIAPRODUCER", "producer-secret", "", testNow.Add(-20*time.Minute), "600"),
			code: CodeInvalidSignature, message: "Signature expired: 20261206T051000Z is now earlier than 20261206T052000Z (20261206T053000Z - 600 sec.)"},
		{name: "presigned wrong secret", sign: presignWith("AKIAPRODUCER", "wrong", "", testNow, ""),
			code: CodeInvalidSignature, message: msgSignatureWrong},
		{name: "presigned too long", sign: presignWith("AKIAPRODUCER", "producer-secret", "", testNow, "604801"),
			code: CodeInvalidSignature, message: "X-Amz-Expires must be less than a week (in seconds) that is 604800"},
		{name: "presigned incomplete", sign: func(r *http.Request, _ string) {
			r.URL.RawQuery = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261206T053000Z"
		}, code: CodeIncompleteSignature, message: "AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters."},
	}
	v := testVerifier(t, testNow)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := sdkRequest(t, body, tc.sign)
			if tc.edit != nil {
				tc.edit(r)
			}
			c, err := verify(v, r)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.Principal().ARN != tc.arn {
					t.Fatalf("principal %+v, want %s", c.Principal(), tc.arn)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			if e.Code != tc.code || !strings.HasPrefix(e.Message, tc.message) {
				t.Fatalf("got %s %q\nwant %s %q", e.Code, e.Message, tc.code, tc.message)
			}
			if e.Reason == "" {
				t.Fatal("no reason for the audit log")
			}
		})
	}
}

// TestUnverified is the local default: no credentials, any key, any
// signature value, but a signature all the same.
func TestUnverified(t *testing.T) {
	v, err := New(Options{Region: "us-east-1", Account: testAccount})
	if err != nil {
		t.Fatal(err)
	}
	r := sdkRequest(t, "{}", signWith("anything", "whatever", "", "eu-west-3", "kinesis", time.Now().Add(-time.Hour)))
	c, err := verify(v, r)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Principal(); !p.Unverified || p.AccessKeyID != "anything" || p.Account != testAccount {
		t.Fatalf("principal %+v", p)
	}
	if got := c.Body(bytes.NewReader(nil)); got == nil {
		t.Fatal("no body reader")
	}
	for _, h := range []string{"", "Bearer x", "AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host"} {
		r := sdkRequest(t, "{}", func(r *http.Request, _ string) {
			if h != "" {
				r.Header.Set("Authorization", h)
				r.Header.Set("X-Amz-Date", "20261206T053000Z")
			}
		})
		if _, err := verify(v, r); err == nil {
			t.Errorf("Authorization %q accepted", h)
		}
	}
}

// TestSetCredentials swaps the credentials, as SIGHUP does.
func TestSetCredentials(t *testing.T) {
	v := testVerifier(t, testNow)
	sign := signWith("AKIANEW", "new-secret", "", "us-east-1", "kinesis", testNow)
	if _, err := verify(v, sdkRequest(t, "{}", sign)); err == nil {
		t.Fatal("unknown key accepted")
	}
	creds, err := ParseCredentials([]byte(`{"users":[{"name":"new","keys":[{"access_key_id":"AKIANEW","secret_access_key":"new-secret"}]}]}`), testAccount)
	if err != nil {
		t.Fatal(err)
	}
	v.SetCredentials(creds)
	if _, err := verify(v, sdkRequest(t, "{}", sign)); err != nil {
		t.Fatalf("new key refused: %v", err)
	}
	if _, err := verify(v, sdkRequest(t, "{}", signWith("AKIAPRODUCER", "producer-secret", "", "us-east-1", "kinesis", testNow))); err == nil {
		t.Fatal("removed key accepted")
	}
}

func TestParseCredentials(t *testing.T) {
	c, err := ParseCredentials([]byte(testCredentials), testAccount)
	if err != nil {
		t.Fatal(err)
	}
	if c.Users() != 2 || c.Keys() != 3 {
		t.Fatalf("%d users, %d keys", c.Users(), c.Keys())
	}
	p := c.keys["AKIAPRODUCER"].principal
	if len(p.Policies) != 1 || !bytes.Contains(p.Policies[0], []byte(`"kinesis:PutRecords"`)) {
		t.Fatalf("policies %q", p.Policies)
	}
	bad := map[string]string{
		"not json":        `{`,
		"unknown field":   `{"users":[{"name":"a","secret":"x"}]}`,
		"no keys":         `{"users":[{"name":"a"}]}`,
		"bad name":        `{"users":[{"name":"a b","keys":[{"access_key_id":"AKIA1","secret_access_key":"s"}]}]}`,
		"bad account":     `{"users":[{"name":"a","account":"12","keys":[{"access_key_id":"AKIA1","secret_access_key":"s"}]}]}`,
		"empty secret":    `{"users":[{"name":"a","keys":[{"access_key_id":"AKIA1","secret_access_key":""}]}]}`,
		"duplicate key":   `{"users":[{"name":"a","keys":[{"access_key_id":"AKIA1","secret_access_key":"s"},{"access_key_id":"AKIA1","secret_access_key":"t"}]}]}`,
		"duplicate user":  `{"users":[{"name":"a","keys":[{"access_key_id":"AKIA1","secret_access_key":"s"}]},{"name":"a","keys":[{"access_key_id":"AKIA2","secret_access_key":"s"}]}]}`,
		"token no expiry": `{"users":[{"name":"a","keys":[{"access_key_id":"ASIA1","secret_access_key":"s","session_token":"t"}]}]}`,
		"bad expiry":      `{"users":[{"name":"a","keys":[{"access_key_id":"ASIA1","secret_access_key":"s","session_token":"t","expiration":"tomorrow"}]}]}`,
		"policy array":    `{"users":[{"name":"a","keys":[{"access_key_id":"AKIA1","secret_access_key":"s"}],"policies":[[1]]}]}`,
		"bad arn":         `{"users":[{"name":"a","arn":"user/a","keys":[{"access_key_id":"AKIA1","secret_access_key":"s"}]}]}`,
	}
	for name, doc := range bad {
		if _, err := ParseCredentials([]byte(doc), testAccount); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
