package auth

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The cases below are requests of the AWS Signature Version 4 test suite
// (docs.aws.amazon.com, "Signature Version 4 test suite";
// github.com/awslabs/aws-c-auth tests/aws-signing-test-suite), rewritten
// as raw HTTP requests: the published signature of each, computed by AWS
// with the suite's example key, must verify. The suite's own credentials,
// date, region and service name.
const (
	suiteKey    = "AKIDEXAMPLE"
	suiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	suiteToken  = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
)

var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

func suiteVerifier(t *testing.T) *Verifier {
	t.Helper()
	creds, err := ParseCredentials([]byte(`{"users":[
		{"name":"example","keys":[{"access_key_id":"`+suiteKey+`","secret_access_key":"`+suiteSecret+`"}]},
		{"name":"temporary","keys":[{"access_key_id":"ASIAEXAMPLE","secret_access_key":"`+suiteSecret+`",
			"session_token":"`+suiteToken+`","expiration":"2015-08-30T13:00:00Z"}]}]}`), "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Options{Region: "us-east-1", Services: []string{"service"}, Account: "123456789012",
		Credentials: creds, Now: func() time.Time { return suiteTime }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readRequest parses a raw HTTP/1.1 request as the server does.
func readRequest(t *testing.T, raw string) *http.Request {
	t.Helper()
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(strings.ReplaceAll(raw, "\n", "\r\n"))))
	if err != nil {
		t.Fatalf("parse request: %v", err)
	}
	return r
}

// verify runs a request through Begin, its body and Finish.
func verify(v *Verifier, r *http.Request) (*Check, error) {
	c, err := v.Begin(r)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(io.Discard, c.Body(r.Body)); err != nil {
		return nil, err
	}
	return c, c.Finish()
}

func TestSuiteVectors(t *testing.T) {
	authz := func(signed, sig string) string {
		return "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=" +
			signed + ", Signature=" + sig + "\n"
	}
	const base = "Host: example.amazonaws.com\nX-Amz-Date: 20150830T123600Z\n"
	cases := []struct {
		name string
		raw  string
	}{
		{"get-vanilla", "GET / HTTP/1.1\n" + base +
			authz("host;x-amz-date", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31") + "\n"},
		{"get-unreserved", "GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1\n" + base +
			authz("host;x-amz-date", "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f") + "\n"},
		{"get-vanilla-query-order-key-case", "GET /?Param2=value2&Param1=value1 HTTP/1.1\n" + base +
			authz("host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500") + "\n"},
		{"get-vanilla-query-order-value", "GET /?Param1=value2&Param1=value1 HTTP/1.1\n" + base +
			authz("host;x-amz-date", "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694") + "\n"},
		{"get-vanilla-utf8-query", "GET /?%E1%88%B4=bar HTTP/1.1\n" + base +
			authz("host;x-amz-date", "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04") + "\n"},
		{"get-header-value-order", "GET / HTTP/1.1\n" + base +
			"My-Header1: value4\nMy-Header1: value1\nMy-Header1: value3\nMy-Header1: value2\n" +
			authz("host;my-header1;x-amz-date", "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01") + "\n"},
		{"get-header-key-duplicate", "GET / HTTP/1.1\n" + base +
			"My-Header1: value2\nMy-Header1: value2\nMy-Header1: value1\n" +
			authz("host;my-header1;x-amz-date", "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea") + "\n"},
		{"get-header-value-trim", "GET / HTTP/1.1\n" + base +
			"My-Header1:  value1\nMy-Header2: \"a   b   c\"\n" +
			authz("host;my-header1;my-header2;x-amz-date", "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736") + "\n"},
		{"post-x-www-form-urlencoded", "POST / HTTP/1.1\n" + base +
			"Content-Type: application/x-www-form-urlencoded\nContent-Length: 13\n" +
			authz("content-type;host;x-amz-date", "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a") + "\nParam1=value1"},
	}
	v := suiteVerifier(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := verify(v, readRequest(t, tc.raw))
			if err != nil {
				t.Fatalf("published signature refused: %v", err)
			}
			if p := c.Principal(); p.ARN != "arn:aws:iam::123456789012:user/example" || p.AccessKeyID != suiteKey {
				t.Fatalf("principal %+v", p)
			}
		})
		t.Run(tc.name+"/tampered", func(t *testing.T) {
			raw := strings.Replace(tc.raw, "Host: example.amazonaws.com", "Host: example.amazonaws.net", 1)
			_, err := verify(v, readRequest(t, raw))
			if e, ok := err.(*Error); !ok || e.Code != CodeInvalidSignature || !strings.HasPrefix(e.Message, msgSignatureWrong) {
				t.Fatalf("tampered request: %v", err)
			}
		})
	}
}

// TestDateHeader: a request dated by Date instead of X-Amz-Date, with an
// X-Amz-Content-Sha256 header: the 2011 test suite's get-header-value-trim
// request as goamz's signer tests sign it (service "host").
func TestDateHeader(t *testing.T) {
	creds, err := ParseCredentials([]byte(`{"users":[{"name":"example","keys":[{"access_key_id":"`+suiteKey+`","secret_access_key":"`+suiteSecret+`"}]}]}`), "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2011, 9, 9, 23, 36, 0, 0, time.UTC)
	v, err := New(Options{Region: "us-east-1", Services: []string{"host"}, Account: "123456789012",
		Credentials: creds, Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	raw := "POST / HTTP/1.1\nHost: host.foo.com\nDATE: Mon, 09 Sep 2011 23:36:00 GMT\np: phfft \n" +
		"X-Amz-Content-Sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, " +
		"SignedHeaders=date;host;p;x-amz-content-sha256, Signature=c7876fcc7fa5fdfd0d087d47c110c945d1bd1528828507b9c2c7cff6f3e8d838\n\n"
	if _, err := verify(v, readRequest(t, raw)); err != nil {
		t.Fatalf("refused: %v", err)
	}
	raw = strings.Replace(raw, "p: phfft", "p: pfft", 1)
	if _, err := verify(v, readRequest(t, raw)); err == nil {
		t.Fatal("changed header accepted")
	}
}
