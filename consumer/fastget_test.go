package consumer

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// cannedServer answers every request with the next of answers (the last
// one again when they run out) and remembers the requests.
type cannedServer struct {
	mu      sync.Mutex
	answers []cannedAnswer
	reqs    []*http.Request
	bodies  []string
}

type cannedAnswer struct {
	status int
	header map[string]string
	body   string
}

func (s *cannedServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs, s.bodies = append(s.reqs, r), append(s.bodies, string(body))
	a := s.answers[min(len(s.reqs), len(s.answers))-1]
	s.mu.Unlock()
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

// cannedClient returns an SDK client on a server with answers, retrying
// with short delays.
func cannedClient(t *testing.T, answers ...cannedAnswer) (*kinesis.Client, *cannedServer) {
	t.Helper()
	cs := &cannedServer{answers: answers}
	srv := httptest.NewServer(cs)
	t.Cleanup(srv.Close)
	c := kinesis.New(kinesis.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = 3
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return time.Millisecond, nil })
			o.RateLimiter = noRateLimit{}
		}),
	})
	return c, cs
}

// noRateLimit lets the SDK retry without its token bucket, as the fast
// path does.
type noRateLimit struct{}

func (noRateLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noRateLimit) AddTokens(uint) error { return nil }

func getRecordsInput() *kinesis.GetRecordsInput {
	return &kinesis.GetRecordsInput{ShardIterator: aws.String("it-\"1\""), Limit: aws.Int32(500)}
}

// TestFastGetMatchesSDK: the fast path sends a signed JSON 1.1 request and
// returns what the SDK returns for the same answer.
func TestFastGetMatchesSDK(t *testing.T) {
	for i, body := range getRecordsSeeds {
		c, cs := cannedClient(t, cannedAnswer{status: 200, body: body})
		want, sdkErr := c.GetRecords(context.Background(), getRecordsInput())
		f := &fastReader{g: newFastGetter(c.Options())}
		got, err := f.getRecords(context.Background(), getRecordsInput())
		if (err != nil) != (sdkErr != nil) {
			t.Errorf("seed %d %s: fast error %v, SDK error %v", i, body, err, sdkErr)
			continue
		}
		if err != nil {
			continue
		}
		if !reflect.DeepEqual(got.Records, want.Records) || !reflect.DeepEqual(got.ChildShards, want.ChildShards) ||
			!reflect.DeepEqual(got.NextShardIterator, want.NextShardIterator) || !reflect.DeepEqual(got.MillisBehindLatest, want.MillisBehindLatest) {
			t.Fatalf("seed %d: fast %+v\nSDK %+v", i, got, want)
		}
		sdkReq, fastReq := cs.reqs[0], cs.reqs[1]
		for _, h := range []string{"X-Amz-Target", "Content-Type"} {
			if sdkReq.Header.Get(h) != fastReq.Header.Get(h) {
				t.Fatalf("%s: fast %q, SDK %q", h, fastReq.Header.Get(h), sdkReq.Header.Get(h))
			}
		}
		if a := fastReq.Header.Get("Authorization"); !strings.HasPrefix(a, "AWS4-HMAC-SHA256 Credential=AKID/") || !strings.Contains(a, "/eu-west-1/kinesis/aws4_request") {
			t.Fatalf("Authorization %q", a)
		}
		if cs.bodies[1] != `{"ShardIterator":"it-\"1\"","Limit":500}` {
			t.Fatalf("request body %s (SDK: %s)", cs.bodies[1], cs.bodies[0])
		}
	}
}

// TestFastGetErrors: error answers become the errors the SDK returns, so
// that the poller's checks (expired iterator, throttling) hold.
func TestFastGetErrors(t *testing.T) {
	tests := []struct {
		name    string
		answer  cannedAnswer
		as      any // a pointer to the error type errors.As must find
		code    string
		message string
	}{
		{"expired iterator", cannedAnswer{status: 400, body: `{"__type":"ExpiredIteratorException","message":"Iterator expired."}`},
			new(*types.ExpiredIteratorException), "ExpiredIteratorException", "Iterator expired."},
		{"throttled, namespaced type", cannedAnswer{status: 400, body: `{"__type":"com.amazonaws.kinesis.v20131202#ProvisionedThroughputExceededException","message":"Rate exceeded for shard."}`},
			new(*types.ProvisionedThroughputExceededException), "ProvisionedThroughputExceededException", "Rate exceeded for shard."},
		{"type in header, Message", cannedAnswer{status: 400, header: map[string]string{"X-Amzn-ErrorType": "KMSThrottlingException:http://internal.amazon.com/"}, body: `{"Message":"slow down"}`},
			new(*types.KMSThrottlingException), "KMSThrottlingException", "slow down"},
		{"limit exceeded", cannedAnswer{status: 400, body: `{"__type":"LimitExceededException","message":"too many"}`},
			new(*types.LimitExceededException), "LimitExceededException", "too many"},
		{"not found", cannedAnswer{status: 400, body: `{"__type":"ResourceNotFoundException","message":"Shard shardId-000000000009 in stream s under account 000000000000 does not exist"}`},
			new(*types.ResourceNotFoundException), "ResourceNotFoundException", "Shard shardId-000000000009 in stream s under account 000000000000 does not exist"},
		{"unknown type", cannedAnswer{status: 400, body: `{"__type":"SomethingNewException","message":"new"}`},
			new(*smithy.GenericAPIError), "SomethingNewException", "new"},
		{"no body", cannedAnswer{status: 403},
			new(*smithy.GenericAPIError), "UnknownError", "UnknownError"},
		{"code member", cannedAnswer{status: 400, body: `{"code":"InvalidArgumentException","message":"bad"}`},
			new(*types.InvalidArgumentException), "InvalidArgumentException", "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := cannedClient(t, tt.answer)
			_, sdkErr := c.GetRecords(context.Background(), getRecordsInput(), func(o *kinesis.Options) { o.RetryMaxAttempts = 1 })
			opts := c.Options()
			opts.Retryer = nil
			f := &fastReader{g: newFastGetter(opts)}
			_, fastErr := f.getRecords(context.Background(), getRecordsInput())
			for _, err := range []error{sdkErr, fastErr} {
				target := reflect.New(reflect.TypeOf(tt.as).Elem()).Interface()
				if !errors.As(err, target) {
					t.Fatalf("%v is no %T", err, tt.as)
				}
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != tt.code || ae.ErrorMessage() != tt.message {
					t.Fatalf("%v: code %q message %q, want %q %q", err, ae.ErrorCode(), ae.ErrorMessage(), tt.code, tt.message)
				}
				var re *awshttp.ResponseError
				if !errors.As(err, &re) || re.HTTPStatusCode() != tt.answer.status {
					t.Fatalf("%v: no response error of status %d", err, tt.answer.status)
				}
				var oe *smithy.OperationError
				if !errors.As(err, &oe) || oe.Service() != "Kinesis" || oe.Operation() != "GetRecords" {
					t.Fatalf("%v: no GetRecords operation error", err)
				}
			}
			if got, want := throttled(fastErr), throttled(sdkErr); got != want {
				t.Fatalf("throttled: fast %v, SDK %v", got, want)
			}
		})
	}
}

// TestFastGetRetries: the client's retryer decides, as in the SDK: a
// server error is tried again, an expired iterator is not.
func TestFastGetRetries(t *testing.T) {
	c, cs := cannedClient(t,
		cannedAnswer{status: 500, body: `{"__type":"InternalFailureException","message":"oops"}`},
		cannedAnswer{status: 200, body: getRecordsSeeds[1]})
	f := &fastReader{g: newFastGetter(c.Options())}
	out, err := f.getRecords(context.Background(), getRecordsInput())
	if err != nil || len(out.Records) != 2 || len(cs.reqs) != 2 {
		t.Fatalf("after a server error: %v, %d requests", err, len(cs.reqs))
	}

	c, cs = cannedClient(t, cannedAnswer{status: 400, body: `{"__type":"ExpiredIteratorException","message":"x"}`})
	f = &fastReader{g: newFastGetter(c.Options())}
	if _, err := f.getRecords(context.Background(), getRecordsInput()); err == nil || len(cs.reqs) != 1 {
		t.Fatalf("expired iterator: %v after %d requests, want an error after 1", err, len(cs.reqs))
	}
}

// TestFastGetEndpoint: without a BaseEndpoint the endpoint is the one the
// SDK resolves for the region.
func TestFastGetEndpoint(t *testing.T) {
	tests := []struct {
		name string
		opts kinesis.Options
		want string
	}{
		{"base endpoint", kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:4567")}, "http://127.0.0.1:4567"},
		{"region", kinesis.Options{Region: "eu-west-1"}, "https://kinesis.eu-west-1.amazonaws.com"},
		{"china", kinesis.Options{Region: "cn-north-1"}, "https://kinesis.cn-north-1.amazonaws.com.cn"},
		{"fips", kinesis.Options{Region: "us-east-1", EndpointOptions: kinesis.EndpointResolverOptions{UseFIPSEndpoint: aws.FIPSEndpointStateEnabled}}, "https://kinesis-fips.us-east-1.amazonaws.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := newFastGetter(kinesis.New(tt.opts).Options()).endpoint(context.Background())
			if err != nil || got != tt.want {
				t.Fatalf("endpoint %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestPollerPath: a *kinesis.Client gets the fast path unless the SDK is
// asked for; other clients always go through their GetRecords.
func TestPollerPath(t *testing.T) {
	c := kinesis.New(kinesis.Options{Region: "us-east-1"})
	if newPollingRetriever(c, "s", 10, 0, false).fast == nil {
		t.Fatal("no fast path for a *kinesis.Client")
	}
	if newPollingRetriever(c, "s", 10, 0, true).fast != nil {
		t.Fatal("fast path though the SDK was asked for")
	}
	if NewPollingRetriever(&scriptedKinesis{}, "s", 10, 0).(*pollingRetriever).fast != nil {
		t.Fatal("fast path for a client that is not a *kinesis.Client")
	}
}

// TestPollerRecoversFastPath is TestPollerRecovers on a *kinesis.Client,
// whose GetRecords calls take the fast path: the poller recognises the
// expired iterator and the throttling in the errors it makes.
func TestPollerRecoversFastPath(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	rec := func(seq string) string {
		return `{"SequenceNumber":"` + seq + `","Data":"` + b64("r"+seq) + `","PartitionKey":"k","ApproximateArrivalTimestamp":1733456789.5}`
	}
	gets := []cannedAnswer{
		{200, nil, `{"Records":[` + rec("1") + `,` + rec("2") + `],"NextShardIterator":"it","MillisBehindLatest":5}`},
		{400, nil, `{"__type":"ExpiredIteratorException","message":"Iterator expired."}`},
		{400, nil, `{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded."}`},
		{200, nil, `{"Records":[],"NextShardIterator":"it","MillisBehindLatest":0}`},
		{200, nil, `{"Records":[` + rec("3") + `],"NextShardIterator":"it","MillisBehindLatest":0}`},
		{200, nil, `{"Records":[],"NextShardIterator":null,"MillisBehindLatest":0,"ChildShards":[]}`},
	}
	var mu sync.Mutex
	var starts []string
	var sdkGets int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		a := cannedAnswer{status: 200}
		switch r.Header.Get("X-Amz-Target") {
		case "Kinesis_20131202.GetShardIterator":
			starts = append(starts, string(body))
			a.body = `{"ShardIterator":"it"}`
		case "Kinesis_20131202.GetRecords":
			if strings.Contains(r.Header.Get("User-Agent"), "aws-sdk-go-v2") {
				sdkGets++
			}
			a, gets = gets[0], gets[1:]
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	defer srv.Close()
	c := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")})
	ctx := context.Background()
	rd, err := NewPollingRetriever(c, "s", 100, 10*time.Millisecond).Open(ctx, "shardId-000000000000", Start{AfterSequenceNumber: "0"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for ended := false; !ended; {
		b, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Records {
			got = append(got, *r.SequenceNumber+"="+string(r.Data))
		}
		ended = b.End
	}
	if strings.Join(got, " ") != "1=r1 2=r2 3=r3" {
		t.Fatalf("records %v", got)
	}
	if len(starts) != 2 || !strings.Contains(starts[1], `"StartingSequenceNumber":"2"`) || sdkGets != 0 || len(gets) != 0 {
		t.Fatalf("GetShardIterator calls %v, %d GetRecords by the SDK, %d answers left", starts, sdkGets, len(gets))
	}
}
