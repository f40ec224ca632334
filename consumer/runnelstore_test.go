package consumer

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// cannedHTTP answers every request with one status and body.
type cannedHTTP struct {
	status int
	body   string
	last   *http.Request
}

func (c *cannedHTTP) Do(req *http.Request) (*http.Response, error) {
	c.last = req
	return &http.Response{StatusCode: c.status, Body: io.NopCloser(strings.NewReader(c.body)), Header: http.Header{}}, nil
}

func cannedStore(t testing.TB, status int, body string) (*RunnelStore, *cannedHTTP) {
	h := &cannedHTTP{status: status, body: body}
	return testStore(t, h), h
}

// testStore is a store of application app on stream s whose requests go to h.
func testStore(t testing.TB, h kinesis.HTTPClient) *RunnelStore {
	s, err := NewRunnelStore(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String("http://127.0.0.1:1"), HTTPClient: h,
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
	}, "s", "app")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunnelStoreErrors(t *testing.T) {
	ctx := context.Background()
	s, h := cannedStore(t, 400, `{"__type":"LeaseConflictException","message":"Lease shardId-000000000000 of application app is held by b with counter 3; the request named a with counter 2."}`)
	_, err := s.Take(ctx, "shardId-000000000000", "a", 2)
	var ae *APIError
	if !errors.Is(err, ErrLeaseConflict) || !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(ae.Message, "held by b") {
		t.Fatalf("conflict: %v", err)
	}
	if got := h.last.Header.Get("X-Amz-Target"); got != "RunnelLeases_20261206.TakeLease" {
		t.Fatalf("target %q", got)
	}
	if !strings.HasPrefix(h.last.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKID/") {
		t.Fatalf("not signed: %q", h.last.Header.Get("Authorization"))
	}
	s, _ = cannedStore(t, 400, `{"__type":"com.amazonaws.kinesis#ResourceNotFoundException","message":"no"}`)
	if _, err := s.List(ctx); !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("not found: %v", err)
	}
	s, _ = cannedStore(t, 200, `{"Lease":null}`)
	if _, err := s.Checkpoint(ctx, "shardId-000000000000", "a", 1, "1", 0); err == nil {
		t.Fatal("an answer without a lease was accepted")
	}
	if _, err := NewRunnelStore(kinesis.Options{}, "s", "app"); err == nil {
		t.Fatal("a store without an endpoint")
	}
}

// FuzzRunnelStoreAnswers: no answer of the lease API, however malformed,
// panics the store; each call returns a value or an error.
func FuzzRunnelStoreAnswers(f *testing.F) {
	f.Add(200, `{"Leases":[{"LeaseKey":"shardId-000000000000","Owner":"a","Counter":3,"Checkpoint":"TRIM_HORIZON","ParentShardIds":["x"]}]}`)
	f.Add(200, `{"Renewed":[{"LeaseKey":"k","Counter":1}],"Lost":null}`)
	f.Add(200, `{"LeaseTable":{"InitialPosition":{"Type":"AT_TIMESTAMP","Timestamp":1.7e9}}}`)
	f.Add(200, `{"Lease":{"Counter":-1}}`)
	f.Add(400, `{"__type":"ResourceInUseException"}`)
	f.Add(500, `not json`)
	f.Add(200, ``)
	f.Fuzz(func(t *testing.T, status int, body string) {
		s, _ := cannedStore(t, status, body)
		ctx := context.Background()
		_, _ = s.Prepare(ctx, AtTimestamp(aws.ToTime(nil)))
		_, _ = s.List(ctx)
		_, _ = s.Take(ctx, "k", "o", 1)
		_, _, _ = s.Renew(ctx, "o", []Lease{{Key: "k", Counter: 1}})
		_, _ = s.Release(ctx, "k", "o", 1)
		_, _ = s.Checkpoint(ctx, "k", "o", 1, "1", 0)
	})
}

// scriptedHTTP answers the requests in turn with its statuses and bodies,
// repeating the last.
type scriptedHTTP struct {
	answers []cannedHTTP
	targets []string
}

func (s *scriptedHTTP) Do(req *http.Request) (*http.Response, error) {
	s.targets = append(s.targets, strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "RunnelLeases_20261206."))
	a := s.answers[min(len(s.targets), len(s.answers))-1]
	return &http.Response{StatusCode: a.status, Body: io.NopCloser(strings.NewReader(a.body)), Header: http.Header{}}, nil
}

// TestRunnelStorePrepareAfterOtherCreates: when another worker's creation
// is reported (ResourceInUse) but the read after it does not find the table
// yet (a cluster's replica behind its leader), Prepare reads again until
// it does, and gives up after describeRetries.
func TestRunnelStorePrepareAfterOtherCreates(t *testing.T) {
	defer func(n int, d time.Duration) { describeRetries, describeRetryDelay = n, d }(describeRetries, describeRetryDelay)
	describeRetries, describeRetryDelay = 3, time.Millisecond
	inUse := cannedHTTP{status: 400, body: `{"__type":"ResourceInUseException","message":"Lease table of application app on stream s already exists."}`}
	notFound := cannedHTTP{status: 400, body: `{"__type":"ResourceNotFoundException","message":"Lease table of application app on stream s not found."}`}
	found := cannedHTTP{status: 200, body: `{"LeaseTable":{"InitialPosition":{"Type":"LATEST"}}}`}
	h := &scriptedHTTP{answers: []cannedHTTP{inUse, notFound, notFound, found}}
	pos, err := testStore(t, h).Prepare(context.Background(), Position{Type: "TRIM_HORIZON"})
	if err != nil || pos.Type != "LATEST" {
		t.Fatalf("Prepare = %+v, %v; want the table's LATEST", pos, err)
	}
	if want := "CreateLeaseTable DescribeLeaseTable DescribeLeaseTable DescribeLeaseTable"; strings.Join(h.targets, " ") != want {
		t.Fatalf("calls %v, want %s", h.targets, want)
	}
	h = &scriptedHTTP{answers: []cannedHTTP{inUse, notFound}}
	if _, err := testStore(t, h).Prepare(context.Background(), Position{Type: "TRIM_HORIZON"}); !errors.Is(err, ErrTableNotFound) {
		t.Fatalf("Prepare with the table never found: %v", err)
	}
	if len(h.targets) != 1+describeRetries+1 {
		t.Fatalf("%d calls, want the creation and %d reads", len(h.targets), describeRetries+1)
	}
}
