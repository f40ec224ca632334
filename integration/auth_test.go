package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/fxamacker/cbor/v2"

	"github.com/runnel/runnel/internal/sdkclient"
)

const authCredentials = `{"users":[
 {"name":"producer","keys":[{"access_key_id":"AKIAPRODUCER","secret_access_key":"producer-secret"}],"policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}]},
 {"name":"temp","keys":[{"access_key_id":"ASIATEMP","secret_access_key":"temp-secret",
   "session_token":"the-session-token","expiration":"2099-01-01T00:00:00Z"}],"policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}]}]}`

// authServer starts a server that checks signatures against a credentials
// file, and returns it with the file's path.
func authServer(t *testing.T, args ...string) (*server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(path, []byte(authCredentials), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--engine", "memory", "--transition-delay", "0s", "--credentials", path}, args...)
	return startServer(t, t.TempDir(), args...), path
}

// shiftedSigner signs as if the client's clock were off by shift.
type shiftedSigner struct{ shift time.Duration }

func (s shiftedSigner) SignHTTP(ctx context.Context, c aws.Credentials, r *http.Request, payloadHash, service, region string, at time.Time, fns ...func(*v4.SignerOptions)) error {
	return v4.NewSigner().SignHTTP(ctx, c, r, payloadHash, service, region, at.Add(s.shift), fns...)
}

func authClient(endpoint string, rt http.RoundTripper, akid, secret, token string, signer kinesis.HTTPSignerV4) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(akid, secret, token),
		HTTPClient:       sdkclient.Guard(&http.Client{Transport: rt}),
		RetryMaxAttempts: 1,
		HTTPSignerV4:     signer,
	})
}

// apiErr returns the error code and message of an SDK error.
func apiErr(err error) (string, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	if err != nil {
		return "not an API error: " + err.Error(), ""
	}
	return "", ""
}

// TestSDKAuthentication signs real requests with the AWS SDK for Go v2,
// right and wrong, over HTTP/1.1 and h2c, and a TLS h2 server.
func TestSDKAuthentication(t *testing.T) {
	plain, _ := authServer(t)
	tlsSrv, _ := authServer(t, "--tls-self-signed")
	h2c := h2cTransport()
	defer h2c.CloseIdleConnections()
	h2 := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer h2.CloseIdleConnections()
	transports := []struct {
		name     string
		endpoint string
		rt       http.RoundTripper
	}{
		{"http1.1", plain.endpoint(), http.DefaultTransport},
		{"h2c", plain.endpoint(), h2c},
		{"h2 over TLS", "https://" + tlsSrv.addr, h2},
	}
	cases := []struct {
		name              string
		akid, secret, tok string
		shift             time.Duration
		code, msg         string
	}{
		{name: "right key", akid: "AKIAPRODUCER", secret: "producer-secret"},
		{name: "temporary credentials", akid: "ASIATEMP", secret: "temp-secret", tok: "the-session-token"},
		{name: "clock 4 minutes behind", akid: "AKIAPRODUCER", secret: "producer-secret", shift: -4 * time.Minute},
		{name: "wrong secret", akid: "AKIAPRODUCER", secret: "wrong", code: "InvalidSignatureException",
			msg: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."},
		{name: "unknown key", akid: "AKIANOBODY", secret: "producer-secret", code: "UnrecognizedClientException",
			msg: "The security token included in the request is invalid."},
		{name: "session token wrong", akid: "ASIATEMP", secret: "temp-secret", tok: "another-token", code: "UnrecognizedClientException",
			msg: "The security token included in the request is invalid."},
		{name: "session token missing", akid: "ASIATEMP", secret: "temp-secret", code: "UnrecognizedClientException",
			msg: "The security token included in the request is invalid."},
		{name: "clock 10 minutes behind", akid: "AKIAPRODUCER", secret: "producer-secret", shift: -10 * time.Minute,
			code: "InvalidSignatureException", msg: "Signature expired: "},
		{name: "clock 10 minutes ahead", akid: "AKIAPRODUCER", secret: "producer-secret", shift: 10 * time.Minute,
			code: "InvalidSignatureException", msg: "Signature not yet current: "},
	}
	for _, tr := range transports {
		for _, tc := range cases {
			t.Run(tr.name+"/"+tc.name, func(t *testing.T) {
				var signer kinesis.HTTPSignerV4
				if tc.shift != 0 {
					signer = shiftedSigner{tc.shift}
				}
				c := authClient(tr.endpoint, tr.rt, tc.akid, tc.secret, tc.tok, signer)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				_, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
				code, msg := apiErr(err)
				if code != tc.code || !strings.HasPrefix(msg, tc.msg) {
					t.Fatalf("got %q %q, want %q %q", code, msg, tc.code, tc.msg)
				}
			})
		}
	}
	// A write and its read, signed, over the TLS h2 server.
	c := authClient("https://"+tlsSrv.addr, h2, "AKIAPRODUCER", "producer-secret", "", nil)
	name := newStream(t, c, 1)
	if _, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: &name, PartitionKey: aws.String("k"), Data: []byte("signed")}); err != nil {
		t.Fatal(err)
	}
}

// rawSigned sends a hand-made API request signed by the SDK's signer (or
// presigned, the X-Amz-* headers in the query) and returns the answer.
func rawSigned(t *testing.T, rt http.RoundTripper, endpoint, contentType, target string, body []byte, akid, secret string, presign bool) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, endpoint+"/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Amz-Target", target)
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
	if presign {
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		req, _ = http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType) // X-Amz-Target travels in the URL
	} else if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestRawAuthentication covers what the SDK does not send: no signature,
// an incomplete one, a presigned URL, CBOR, and the audit log.
func TestRawAuthentication(t *testing.T) {
	srv, _ := authServer(t)
	const listStreams = "Kinesis_20131202.ListStreams"
	t.Run("missing", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.endpoint()+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", listStreams)
		status, body := doRaw(t, req)
		if status != 403 || body != `{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}` {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("incomplete", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, srv.endpoint()+"/", strings.NewReader("{}"))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", listStreams)
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAPRODUCER/20261206/us-east-1/kinesis/aws4_request")
		req.Header.Set("X-Amz-Date", "20261206T000000Z")
		status, body := doRaw(t, req)
		want := `{"__type":"IncompleteSignatureException","message":"Authorization header requires 'Signature' parameter. ` +
			`Authorization header requires 'SignedHeaders' parameter. Authorization=AWS4-HMAC-SHA256 Credential=AKIAPRODUCER/20261206/us-east-1/kinesis/aws4_request"}`
		if status != 400 || body != want {
			t.Fatalf("%d %s", status, body)
		}
	})
	t.Run("presigned", func(t *testing.T) {
		resp, body := rawSigned(t, http.DefaultTransport, srv.endpoint(), "application/x-amz-json-1.1", listStreams, []byte("{}"), "AKIAPRODUCER", "producer-secret", true)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"StreamNames"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
		resp, body = rawSigned(t, http.DefaultTransport, srv.endpoint(), "application/x-amz-json-1.1", listStreams, []byte("{}"), "AKIAPRODUCER", "wrong", true)
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"InvalidSignatureException"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("CBOR", func(t *testing.T) {
		resp, body := rawSigned(t, http.DefaultTransport, srv.endpoint(), "application/x-amz-cbor-1.1", listStreams, []byte{0xa0}, "AKIAPRODUCER", "producer-secret", false)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %x", resp.StatusCode, body)
		}
		resp, body = rawSigned(t, http.DefaultTransport, srv.endpoint(), "application/x-amz-cbor-1.1", listStreams, []byte{0xa0}, "AKIAPRODUCER", "wrong", false)
		var m map[string]string
		if err := cbor.Unmarshal(body, &m); err != nil || resp.StatusCode != 400 || m["__type"] != "InvalidSignatureException" ||
			!strings.HasPrefix(m["message"], "The request signature we calculated does not match") ||
			resp.Header.Get("Content-Type") != "application/x-amz-cbor-1.1" {
			t.Fatalf("%d %v %v", resp.StatusCode, m, err)
		}
	})
	t.Run("lease API", func(t *testing.T) {
		resp, body := rawSigned(t, http.DefaultTransport, srv.endpoint(), "application/x-amz-json-1.1", "RunnelLeases_20261206.ListLeaseTables",
			[]byte(`{"StreamName":"none"}`), "AKIANOBODY", "x", false)
		if resp.StatusCode != 400 || !strings.Contains(string(body), `"UnrecognizedClientException"`) {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	srv.kill()
	log := srv.log.String()
	for _, want := range []string{
		`msg="request refused" action=Kinesis_20131202.ListStreams access_key="" principal="" source_ip=127.0.0.1 error=MissingAuthenticationTokenException reason="request not signed"`,
		`msg="request refused" action=Kinesis_20131202.ListStreams access_key=AKIAPRODUCER principal="" source_ip=127.0.0.1 error=InvalidSignatureException reason="signature does not match"`,
		`msg="request refused" action=RunnelLeases_20261206.ListLeaseTables access_key=AKIANOBODY principal="" source_ip=127.0.0.1 error=UnrecognizedClientException reason="unknown access key"`,
		`msg="signatures checked" credentials=`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("server log lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("server log:\n%s", log)
	}
}

// TestAuditControlPlane: with --audit-control-plane each control-plane
// call is logged with its principal and resource, data-plane calls not.
func TestAuditControlPlane(t *testing.T) {
	srv, _ := authServer(t, "--audit-control-plane")
	c := authClient(srv.endpoint(), http.DefaultTransport, "AKIAPRODUCER", "producer-secret", "", nil)
	name := newStream(t, c, 1)
	if _, err := c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: &name, PartitionKey: aws.String("k"), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	srv.kill()
	log := srv.log.String()
	if !strings.Contains(log, `msg="control-plane call" action=Kinesis_20131202.CreateStream access_key=AKIAPRODUCER principal=arn:aws:iam::000000000000:user/producer source_ip=127.0.0.1 resource=`+name) {
		t.Errorf("no audit record of CreateStream:\n%s", log)
	}
	if strings.Contains(log, "action=Kinesis_20131202.PutRecord ") {
		t.Errorf("PutRecord audited as a control-plane call:\n%s", log)
	}
}

// TestCredentialsReload rewrites the credentials file and sends SIGHUP:
// the new key works and the removed one no longer does, without a restart;
// a broken file keeps the keys in use.
func TestCredentialsReload(t *testing.T) {
	srv, path := authServer(t)
	old := authClient(srv.endpoint(), http.DefaultTransport, "AKIAPRODUCER", "producer-secret", "", nil)
	next := authClient(srv.endpoint(), http.DefaultTransport, "AKIANEXT", "next-secret", "", nil)
	list := func(c *kinesis.Client) string {
		_, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
		code, _ := apiErr(err)
		return code
	}
	if got := list(old); got != "" {
		t.Fatalf("before reload: %s", got)
	}
	if got := list(next); got != "UnrecognizedClientException" {
		t.Fatalf("new key before reload: %q", got)
	}
	// A broken file first: nothing changes.
	if err := os.WriteFile(path, []byte(`{"users":[{"name":"x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // nothing to wait for: the old key must keep working
	if got := list(old); got != "" {
		t.Fatalf("after a broken file: %s", got)
	}
	next2 := `{"users":[{"name":"next","keys":[{"access_key_id":"AKIANEXT","secret_access_key":"next-secret"}],"policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}]}]}`
	if err := os.WriteFile(path, []byte(next2), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for list(next) != "" {
		if time.Now().After(deadline) {
			t.Fatal("new key not accepted 20s after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := list(old); got != "UnrecognizedClientException" {
		t.Fatalf("removed key after reload: %q", got)
	}
	srv.kill()
	if log := srv.log.String(); !strings.Contains(log, "credentials not reloaded, the previous ones stay in use") ||
		!strings.Contains(log, `msg="credentials reloaded"`) {
		t.Errorf("reload not logged:\n%s", log)
	}
}

// TestOpenAddressNeedsCredentials: on a non-loopback address the server
// refuses to start without credentials, saying what to do, unless told
// --insecure-no-auth.
func TestOpenAddressNeedsCredentials(t *testing.T) {
	out, err := exec.Command(runnelBin, "serve", "--listen", "0.0.0.0:0", "--engine", "memory").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--credentials") || !strings.Contains(string(out), "--insecure-no-auth") {
		t.Fatalf("started, or did not say what to do: %v\n%s", err, out)
	}
}

// TestCLIAuthentication signs with the AWS CLI v2 (botocore's signer).
func TestCLIAuthentication(t *testing.T) {
	awsBin := awsCLI(t)
	srv, _ := authServer(t)
	run := func(akid, secret string) (string, error) {
		cmd := exec.Command(awsBin, "--endpoint-url", srv.endpoint(), "--region", "us-east-1", "--output", "json", "kinesis", "list-streams")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret, "AWS_PAGER=",
			"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_MAX_ATTEMPTS=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("AKIAPRODUCER", "producer-secret"); err != nil || !strings.Contains(out, "StreamNames") {
		t.Fatalf("right key: %v\n%s", err, out)
	}
	if out, err := run("AKIAPRODUCER", "wrong"); err == nil || !strings.Contains(out, "(InvalidSignatureException)") ||
		!strings.Contains(out, "The request signature we calculated does not match the signature you provided.") {
		t.Fatalf("wrong secret: %v\n%s", err, out)
	}
	if out, err := run("AKIANOBODY", "x"); err == nil || !strings.Contains(out, "(UnrecognizedClientException)") {
		t.Fatalf("unknown key: %v\n%s", err, out)
	}
}

// TestBoto3Authentication signs with boto3: plain and temporary
// credentials, right and wrong.
func TestBoto3Authentication(t *testing.T) {
	// python3 on PATH, else Debian's, where `make setup` installs boto3.
	python := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(p, "-c", "import boto3").Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("boto3 not importable by python3 or /usr/bin/python3; `make setup` installs python3-boto3")
		}
		t.Skip("boto3 not installed (`make setup`, or apt-get install python3-boto3)")
	}
	srv, _ := authServer(t)
	script := `
import json, sys, boto3, botocore.config, botocore.exceptions
endpoint = sys.argv[1]
def call(akid, secret, token=None):
    c = boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=akid, aws_secret_access_key=secret, aws_session_token=token,
        config=botocore.config.Config(retries={"max_attempts": 1}))
    try:
        c.list_streams()
        return "ok"
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"] + ": " + e.response["Error"]["Message"]
print(json.dumps([
    call("AKIAPRODUCER", "producer-secret"),
    call("ASIATEMP", "temp-secret", "the-session-token"),
    call("AKIAPRODUCER", "wrong"),
    call("ASIATEMP", "temp-secret", "bad-token"),
    call("AKIANOBODY", "x"),
]))
`
	cmd := exec.Command(python, "-c", script, srv.endpoint())
	cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("boto3 printed %s", out)
	}
	want := []string{"ok", "ok", "InvalidSignatureException: The request signature we calculated does not match",
		"UnrecognizedClientException: The security token included in the request is invalid.",
		"UnrecognizedClientException: The security token included in the request is invalid."}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("call %d: %q, want %q", i, got[i], want[i])
		}
	}
}
