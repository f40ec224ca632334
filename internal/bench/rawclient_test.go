package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// jsonRoundTrip is what encoding/json makes of s: invalid UTF-8 replaced.
func jsonRoundTrip(t testing.TB, s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendBody(t *testing.T) {
	keys := []string{"key-0001", `a"b\c`, "tab\tnl\nnul\x00\x1f", "é€😀", "bad\xffutf8", ""}
	var entries []types.PutRecordsRequestEntry
	for i, k := range keys {
		entries = append(entries, types.PutRecordsRequestEntry{Data: bytes.Repeat([]byte{byte(i), 0xfe}, i*7+1), PartitionKey: aws.String(k)})
	}
	body := appendBody([]byte("garbage"), `stream"x`, entries, nil, nil)[len("garbage"):]
	var got struct {
		StreamName string
		Records    []struct {
			Data         []byte
			PartitionKey string
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if got.StreamName != `stream"x` || len(got.Records) != len(entries) {
		t.Fatalf("decoded %+v", got)
	}
	for i, r := range got.Records {
		if !bytes.Equal(r.Data, entries[i].Data) || r.PartitionKey != jsonRoundTrip(t, keys[i]) {
			t.Errorf("record %d: %q %q, want %q %q", i, r.Data, r.PartitionKey, entries[i].Data, keys[i])
		}
	}
}

// TestRawPutter checks the raw client's request (headers, body, a SigV4
// signature that verifies) and how its answers and failures are
// classified, alike the SDK's.
func TestRawPutter(t *testing.T) {
	type answer struct {
		status int
		header map[string]string
		body   string
	}
	var (
		mu      sync.Mutex
		next    answer
		got     *http.Request
		gotBody []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = r.Clone(context.Background())
		gotBody, _ = io.ReadAll(r.Body)
		if next.status == 0 {
			conn, _, _ := http.NewResponseController(w).Hijack()
			conn.Close()
			return
		}
		for k, v := range next.header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(next.status)
		io.WriteString(w, next.body)
	}))
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	creds := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	p := &rawPutter{
		c: &rawClient{
			http: &http.Client{Transport: tr}, url: endpointURL(srv.URL, "eu-west-1"), region: "eu-west-1",
			creds: creds, signer: v4.NewSigner(),
		},
		stream: "s",
	}
	entries := []types.PutRecordsRequestEntry{
		{Data: []byte("one"), PartitionKey: aws.String("k1")},
		{Data: []byte("two"), PartitionKey: aws.String("k2")},
	}
	ok := `{"FailedRecordCount":1,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000001"},{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"slow down"}]}`
	run := context.Background()
	tests := []struct {
		name  string
		a     answer
		class errClass // of the error; -1 for success
		code  string
	}{
		{name: "success", a: answer{200, nil, ok}, class: -1},
		{name: "success again, reused buffers", a: answer{200, nil, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"2","ShardId":"shardId-000000000000"},{"SequenceNumber":"3","ShardId":"shardId-000000000002"}]}`}, class: -1},
		{name: "throttled in body", a: answer{400, nil, `{"__type":"com.amazonaws.kinesis#ProvisionedThroughputExceededException","message":"Rate exceeded"}`}, class: errThrottled, code: "ProvisionedThroughputExceededException"},
		{name: "throttled in header", a: answer{400, map[string]string{"X-Amzn-ErrorType": "ProvisionedThroughputExceededException:http://internal.amazon.com/"}, `{"message":"x"}`}, class: errThrottled, code: "ProvisionedThroughputExceededException"},
		{name: "limit exceeded", a: answer{400, nil, `{"__type":"LimitExceededException","message":"x"}`}, class: errThrottled, code: "LimitExceededException"},
		{name: "missing stream", a: answer{400, nil, `{"__type":"ResourceNotFoundException","message":"Stream s not found."}`}, class: errFatal, code: "ResourceNotFoundException"},
		{name: "internal failure", a: answer{500, nil, `{"__type":"InternalFailure"}`}, class: errRetryable, code: "InternalFailure"},
		{name: "unavailable without a body", a: answer{503, nil, ``}, class: errRetryable, code: "UnknownError"},
		{name: "connection closed", a: answer{}, class: errRetryable},
		{name: "undecodable answer", a: answer{200, nil, `{"Records":[`}, class: errFatal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			next = tt.a
			mu.Unlock()
			res, err := p.putRecords(context.Background(), entries, nil, nil)
			if tt.class == -1 {
				if err != nil {
					t.Fatal(err)
				}
				var want rawPutRecordsOutput
				json.Unmarshal([]byte(tt.a.body), &want)
				if len(res) != len(want.Records) {
					t.Fatalf("results %+v", res)
				}
				for i, w := range want.Records {
					if r := res[i]; r.ShardID != w.ShardId || r.ErrorCode != w.ErrorCode || r.ErrorMessage != w.ErrorMessage {
						t.Errorf("result %d = %+v, want %+v", i, r, w)
					}
				}
			} else {
				if err == nil {
					t.Fatalf("no error, results %+v", res)
				}
				if c := classify(run, err); c != tt.class {
					t.Errorf("%v classified %d, want %d", err, c, tt.class)
				}
				var ae interface{ ErrorCode() string }
				if tt.code != "" && (!errors.As(err, &ae) || ae.ErrorCode() != tt.code) {
					t.Errorf("error %v, want code %s", err, tt.code)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			checkSigned(t, got, gotBody, creds)
		})
	}
}

// checkSigned checks the request's headers and body and verifies its SigV4
// signature by signing the same request again at its X-Amz-Date.
func checkSigned(t *testing.T, r *http.Request, body []byte, creds aws.CredentialsProvider) {
	t.Helper()
	if r.Method != http.MethodPost || r.URL.Path != "/" ||
		r.Header.Get("Content-Type") != "application/x-amz-json-1.1" ||
		r.Header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" {
		t.Errorf("request %s %s, headers %v", r.Method, r.URL, r.Header)
	}
	var in struct {
		StreamName string
		Records    []struct {
			Data         []byte
			PartitionKey string
		}
	}
	if err := json.Unmarshal(body, &in); err != nil || in.StreamName != "s" || len(in.Records) != 2 || string(in.Records[1].Data) != "two" {
		t.Errorf("body %s: %v", body, err)
	}
	date, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatalf("X-Amz-Date: %v", err)
	}
	auth := r.Header.Get("Authorization")
	prefix := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/" + date.Format("20060102") + "/eu-west-1/kinesis/aws4_request, SignedHeaders="
	if !strings.HasPrefix(auth, prefix) {
		t.Fatalf("Authorization %q, want prefix %q", auth, prefix)
	}
	signed, _, _ := strings.Cut(strings.TrimPrefix(auth, prefix), ",")
	again, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	for _, h := range strings.Split(signed, ";") {
		if h != "host" {
			again.Header.Set(h, r.Header.Get(h))
		}
	}
	again.Header.Del("X-Amz-Date")
	sum := sha256.Sum256(body)
	c, _ := creds.Retrieve(context.Background())
	if err := v4.NewSigner().SignHTTP(context.Background(), c, again, hex.EncodeToString(sum[:]), "kinesis", "eu-west-1", date); err != nil {
		t.Fatal(err)
	}
	if want := again.Header.Get("Authorization"); want != auth {
		t.Errorf("signature does not verify:\n got %s\nwant %s", auth, want)
	}
}

func TestEndpointURL(t *testing.T) {
	for _, tt := range []struct{ endpoint, region, want string }{
		{"http://127.0.0.1:4567", "us-east-1", "http://127.0.0.1:4567/"},
		{"http://127.0.0.1:4567/", "us-east-1", "http://127.0.0.1:4567/"},
		{"https://proxy.example/kinesis", "us-east-1", "https://proxy.example/kinesis"},
		{"", "eu-west-1", "https://kinesis.eu-west-1.amazonaws.com/"},
		{"", "cn-north-1", "https://kinesis.cn-north-1.amazonaws.com.cn/"},
	} {
		if got := endpointURL(tt.endpoint, tt.region); got != tt.want {
			t.Errorf("endpointURL(%q, %q) = %q, want %q", tt.endpoint, tt.region, got, tt.want)
		}
	}
}

// TestMainProducerClients runs the tool with either producer client
// against the fake Kinesis with faults, and checks both are handled alike.
func TestMainProducerClients(t *testing.T) {
	short := []string{"--duration", "300ms", "--shards", "3", "--producers", "3", "--batch", "20", "--size", "100", "--poll-interval", "10ms"}
	tests := []struct {
		name  string
		f     faults
		args  []string
		code  int
		check func(t *testing.T, r Report)
	}{
		{
			name: "clean",
			code: exitOK,
			check: func(t *testing.T, r Report) {
				if r.Written.Records == 0 || r.Verification.ReadOnce != r.Written.Records || r.PutErrors != 0 || r.RetriedRecords != 0 {
					t.Errorf("written %d, verification %+v, put errors %d", r.Written.Records, r.Verification, r.PutErrors)
				}
				checkAckToReceipt(t, r)
			},
		},
		{
			name: "throttled calls are retried",
			f:    faults{throttleCall: 3},
			code: exitOK,
			check: func(t *testing.T, r Report) {
				if r.ThrottledCalls == 0 || r.ThrottledRecords < 20*r.ThrottledCalls || r.RetriedRecords == 0 || r.FailedRecords != 0 || r.PutErrors != 0 {
					t.Errorf("throttled %d calls / %d records, retried %d, failed %d, errors %d %v", r.ThrottledCalls, r.ThrottledRecords, r.RetriedRecords, r.FailedRecords, r.PutErrors, r.Errors)
				}
			},
		},
		{
			name: "throttled and failed records are retried",
			f:    faults{throttle: 7, failRecord: 11},
			code: exitOK,
			check: func(t *testing.T, r Report) {
				if r.ThrottledRecords == 0 || r.ThrottledCalls != 0 || r.RetriedRecords == 0 || r.FailedRecords != 0 || r.PutErrors == 0 ||
					r.Errors["put record: InternalFailure: Internal service failure."] != r.PutErrors {
					t.Errorf("throttled %d calls / %d records, retried %d, failed %d, errors %d %v", r.ThrottledCalls, r.ThrottledRecords, r.RetriedRecords, r.FailedRecords, r.PutErrors, r.Errors)
				}
				checkAckToReceipt(t, r)
			},
		},
		{
			name: "unanswered calls are retried with an unknown outcome",
			f:    faults{hangup: 4},
			code: exitOK,
			check: func(t *testing.T, r Report) {
				if r.PutErrors == 0 || r.RetriedRecords == 0 || r.Verification.RetryDuplicates == 0 || !r.Verification.OK {
					t.Errorf("put errors %d %v, retried %d, verification %+v", r.PutErrors, r.Errors, r.RetriedRecords, r.Verification)
				}
			},
		},
		{
			name: "lost",
			f:    faults{drop: 50},
			code: exitFailed,
			check: func(t *testing.T, r Report) {
				if r.Verification.Lost == 0 || r.Verification.OK {
					t.Errorf("verification %+v", r.Verification)
				}
			},
		},
	}
	for _, client := range []ClientKind{ClientSDK, ClientRaw} {
		for _, tt := range tests {
			t.Run(string(client)+"/"+tt.name, func(t *testing.T) {
				endpoint := newFakeKinesis(t, tt.f)
				args := append(append([]string{"--producer-client", string(client), "--consumer-client", string(client)}, short...), tt.args...)
				code, rep, stderr := runMain(t, endpoint, args...)
				if code != tt.code {
					t.Errorf("exit %d, want %d; error %q; verification %+v\nstderr: %s", code, tt.code, rep.Error, rep.Verification, stderr)
				}
				if rep.Workload.ProducerClient != client || rep.Workload.ConsumerClient != client {
					t.Errorf("report's clients %q and %q, want %q", rep.Workload.ProducerClient, rep.Workload.ConsumerClient, client)
				}
				tt.check(t, rep)
			})
		}
	}
	t.Run("raw/PutRecord stays on the SDK", func(t *testing.T) {
		endpoint := newFakeKinesis(t, faults{})
		code, rep, stderr := runMain(t, endpoint, "--producer-client", "raw", "--records", "50", "--batch", "1", "--keys", "3", "--poll-interval", "10ms")
		if code != exitOK || rep.Written.Records != 50 || rep.Workload.Mode != PutRecord || rep.Workload.ProducerClient != ClientSDK {
			t.Errorf("exit %d, written %d, mode %s, client %s\nstderr: %s", code, rep.Written.Records, rep.Workload.Mode, rep.Workload.ProducerClient, stderr)
		}
	})
}
