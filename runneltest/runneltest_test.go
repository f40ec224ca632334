package runneltest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"

	"github.com/runnel/runnel/runneltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// skipIfUnimplemented skips while the service does not implement op yet.
func skipIfUnimplemented(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "not implemented") {
		t.Skip("streams service: operation not implemented yet")
	}
}

// roundTrip creates a stream, puts records and reads them back.
func roundTrip(t *testing.T, c *kinesis.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	name := aws.String("smoke")
	_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: name, ShardCount: aws.Int32(2)})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: name})
	if err != nil {
		t.Fatal(err)
	}
	d := sum.StreamDescriptionSummary
	if d.StreamStatus != types.StreamStatusActive || aws.ToInt32(d.OpenShardCount) != 2 ||
		aws.ToString(d.StreamARN) != "arn:aws:kinesis:us-east-1:000000000000:stream/smoke" {
		t.Errorf("summary %+v", d)
	}
	if d.StreamCreationTimestamp == nil || time.Since(*d.StreamCreationTimestamp) > time.Minute {
		t.Errorf("creation time %v", d.StreamCreationTimestamp)
	}

	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: name, PartitionKey: aws.String("k"), Data: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	entries := make([]types.PutRecordsRequestEntry, 10)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: fmt.Appendf(nil, "batch-%d", i)}
	}
	puts, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: name, Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(puts.FailedRecordCount) != 0 || len(puts.Records) != 10 {
		t.Fatalf("PutRecords %+v", puts)
	}

	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: name, ShardId: put.ShardId, ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber,
		StartingSequenceNumber: put.SequenceNumber,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Records) != 11 || string(got.Records[0].Data) != "one" || string(got.Records[10].Data) != "batch-9" {
		t.Fatalf("%d records", len(got.Records))
	}
	r := got.Records[0]
	if aws.ToString(r.SequenceNumber) != aws.ToString(put.SequenceNumber) || r.ApproximateArrivalTimestamp == nil ||
		time.Since(*r.ApproximateArrivalTimestamp) > time.Minute {
		t.Errorf("record %+v", r)
	}
	if got.NextShardIterator == nil {
		t.Error("no next iterator on an open shard")
	}
}

func TestRoundTripMemory(t *testing.T) {
	srv := runneltest.NewServer(t)
	if !strings.HasPrefix(srv.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("endpoint %s", srv.Endpoint())
	}
	roundTrip(t, srv.Client(t))
}

func TestRoundTripDisk(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithDisk())
	roundTrip(t, srv.Client(t))
}

func TestRoundTripTLS(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithTLS())
	if !strings.HasPrefix(srv.Endpoint(), "https://") {
		t.Fatalf("endpoint %s", srv.Endpoint())
	}
	// The SDK speaks HTTP/2 to the server, negotiated by ALPN.
	var proto string
	c := srv.Client(t, func(o *kinesis.Options) {
		o.HTTPClient = protoRecorder{srv.HTTPClient(), &proto}
	})
	roundTrip(t, c)
	if proto != "HTTP/2.0" {
		t.Errorf("protocol %q, want HTTP/2.0", proto)
	}
}

func TestRoundTripH2C(t *testing.T) {
	srv := runneltest.NewServer(t)
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	var proto string
	c := srv.Client(t, func(o *kinesis.Options) {
		o.HTTPClient = protoRecorder{&http.Client{Transport: tr}, &proto}
	})
	roundTrip(t, c)
	if proto != "HTTP/2.0" {
		t.Errorf("protocol %q, want HTTP/2.0", proto)
	}
}

// protoRecorder notes the protocol of the last response.
type protoRecorder struct {
	c     *http.Client
	proto *string
}

func (p protoRecorder) Do(r *http.Request) (*http.Response, error) {
	resp, err := p.c.Do(r)
	if err == nil {
		*p.proto = resp.Proto
	}
	return resp, err
}

func TestErrorsThroughSDK(t *testing.T) {
	srv := runneltest.NewServer(t)
	c := srv.Client(t)
	ctx := context.Background()

	_, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("missing")})
	skipIfUnimplemented(t, err)
	var notFound *types.ResourceNotFoundException
	if !errors.As(err, &notFound) || !strings.Contains(notFound.ErrorMessage(), "missing") {
		t.Errorf("got %v, want ResourceNotFoundException", err)
	}

	// The SDK checks only required members; the server checks the rest.
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("bad name!"), ShardCount: aws.Int32(1)})
	var invalid *types.ValidationException
	want := "1 validation error detected: Value 'bad name!' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
	if !errors.As(err, &invalid) || invalid.ErrorMessage() != want {
		t.Errorf("got %v, want ValidationException %q", err, want)
	}
}

func TestStartClose(t *testing.T) {
	srv, err := runneltest.Start(runneltest.WithDisk(), runneltest.WithRegion("eu-west-1"))
	if err != nil {
		t.Fatal(err)
	}
	c := srv.NewClient()
	_, err = c.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
	skipIfUnimplemented(t, err)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
