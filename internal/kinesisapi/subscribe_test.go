package kinesisapi

import (
	"bytes"
	"context"
	"errors"
	"github.com/runnel/runnel/internal/sdkclient"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/eventstream"
	"github.com/runnel/runnel/internal/streams"
)

// efoServer is a handler on a real service over the memory engine.
type efoServer struct {
	svc *streams.Service
	srv *httptest.Server
}

func newEFOServer(t *testing.T) *efoServer {
	t.Helper()
	eng := mem.New(mem.DefaultOptions())
	opts := streams.DefaultOptions()
	opts.TransitionDelay = 0
	opts.SubscriptionHeartbeat = 100 * time.Millisecond
	svc, err := streams.New(context.Background(), eng, opts)
	if err != nil {
		t.Fatal(err)
	}
	hopts := DefaultOptions()
	hopts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := NewHandler(svc, hopts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		svc.EndSubscriptions()
		srv.Close()
		svc.Close()
		eng.Close()
	})
	return &efoServer{svc: svc, srv: srv}
}

// client returns an SDK client of its own (sharing one between concurrent
// subscriptions is a data race inside the SDK).
func (e *efoServer) client() *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		// Guarded against the SDK's early-response race (see sdkclient).
		HTTPClient: sdkclient.Guard(e.srv.Client()),
	})
}

// setup creates a one-shard stream and an ACTIVE consumer.
func (e *efoServer) setup(t *testing.T, c *kinesis.Client) (streamARN, consumerARN string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	streamARN = "arn:aws:kinesis:us-east-1:000000000000:stream/s"
	reg, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &streamARN, ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	return streamARN, *reg.Consumer.ConsumerARN
}

// TestSubscribeSDKRoundTrip checks the JSON event encoding against the SDK's
// own event-stream and payload decoders.
func TestSubscribeSDKRoundTrip(t *testing.T) {
	e := newEFOServer(t)
	c := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, consumerARN := e.setup(t, c)

	data := [][]byte{{0, 1, 2, 0xff}, []byte(`{"json":"<&>"}`), {}}
	var puts []*kinesis.PutRecordOutput
	for i, d := range data {
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("pk-\u00e9" + string(rune('a'+i))), Data: d})
		if err != nil {
			t.Fatal(err)
		}
		puts = append(puts, out)
	}
	sub, err := e.client().SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
		ConsumerARN: &consumerARN, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon},
	})
	if err != nil {
		t.Fatal(err)
	}
	stream := sub.GetStream()
	defer stream.Close()
	var got []types.Record
	var last *types.SubscribeToShardEvent
	for len(got) < len(data) {
		ev, ok := <-stream.Events()
		if !ok {
			t.Fatalf("stream closed after %d records: %v", len(got), stream.Err())
		}
		m, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !ok {
			t.Fatalf("event %T", ev)
		}
		last = &m.Value
		got = append(got, m.Value.Records...)
	}
	for i, r := range got {
		if !bytes.Equal(r.Data, data[i]) || *r.SequenceNumber != *puts[i].SequenceNumber || *r.PartitionKey != "pk-\u00e9"+string(rune('a'+i)) {
			t.Errorf("record %d: %q %s %s", i, r.Data, *r.SequenceNumber, *r.PartitionKey)
		}
		if r.ApproximateArrivalTimestamp == nil || time.Since(*r.ApproximateArrivalTimestamp) > time.Minute || r.ApproximateArrivalTimestamp.Nanosecond()%int(time.Millisecond) != 0 {
			t.Errorf("record %d arrival %v", i, r.ApproximateArrivalTimestamp)
		}
	}
	if *last.ContinuationSequenceNumber != *puts[len(puts)-1].SequenceNumber || last.MillisBehindLatest == nil {
		t.Fatalf("last event continuation %v behind %v", *last.ContinuationSequenceNumber, last.MillisBehindLatest)
	}

	// A heartbeat without records keeps the continuation.
	ev, open := <-stream.Events()
	if !open {
		t.Fatalf("stream ended before the heartbeat: %v", stream.Err())
	}
	m, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
	if !ok || len(m.Value.Records) != 0 || *m.Value.ContinuationSequenceNumber != *last.ContinuationSequenceNumber {
		t.Fatalf("heartbeat %+v", ev)
	}

	// Deleting the stream ends the subscription with an exception event.
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String("s"), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	for range stream.Events() {
	}
	var rnf *types.ResourceNotFoundException
	if !errors.As(stream.Err(), &rnf) {
		t.Fatalf("stream error %v, want ResourceNotFoundException", stream.Err())
	}
}

func TestSubscribeHTTPErrors(t *testing.T) {
	e := newEFOServer(t)
	c := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	streamARN, consumerARN := e.setup(t, c)
	tests := []struct {
		name string
		in   kinesis.SubscribeToShardInput
		code string
	}{
		{"unknown consumer", kinesis.SubscribeToShardInput{ConsumerARN: aws.String(streamARN + "/consumer/ghost:1"), ShardId: aws.String("shardId-000000000000"),
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}}, "ResourceNotFoundException"},
		{"unknown shard", kinesis.SubscribeToShardInput{ConsumerARN: &consumerARN, ShardId: aws.String("shardId-000000000007"),
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}}, "ResourceNotFoundException"},
		{"missing sequence number", kinesis.SubscribeToShardInput{ConsumerARN: &consumerARN, ShardId: aws.String("shardId-000000000000"),
			StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber}}, "InvalidArgumentException"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.client().SubscribeToShard(ctx, &tc.in)
			var ae interface{ ErrorCode() string }
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code {
				t.Fatalf("err %v, want %s", err, tc.code)
			}
		})
	}

	// A second subscription within 5 seconds is refused.
	fc := e.client()
	defer runtime.KeepAlive(fc)
	first, err := fc.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: &consumerARN, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	if err != nil {
		t.Fatal(err)
	}
	defer first.GetStream().Close()
	go func() {
		for range first.GetStream().Events() {
		}
	}()
	_, err = e.client().SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: &consumerARN, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("second subscription: %v", err)
	}
}

// cborEvent is a SubscribeToShardEvent as a CBOR client decodes it.
type cborEvent struct {
	Records []struct {
		Data                        []byte
		PartitionKey                string
		SequenceNumber              string
		ApproximateArrivalTimestamp streams.Timestamp
	}
	ContinuationSequenceNumber string
	MillisBehindLatest         int64
}

// TestSubscribeCBOR sends the request in CBOR, as the Java SDK does, and
// expects CBOR event payloads.
func TestSubscribeCBOR(t *testing.T) {
	e := newEFOServer(t)
	c := e.client()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, consumerARN := e.setup(t, c)
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte{9, 8, 7}})
	if err != nil {
		t.Fatal(err)
	}
	body, err := cborEnc.Marshal(map[string]any{
		"ConsumerARN": consumerARN, "ShardId": "shardId-000000000000",
		"StartingPosition": map[string]any{"Type": "TRIM_HORIZON"},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentTypeCBOR)
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.SubscribeToShard")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ContentTypeEventStream || resp.ContentLength != -1 {
		t.Fatalf("status %d, content type %q, length %d", resp.StatusCode, resp.Header.Get("Content-Type"), resp.ContentLength)
	}
	dec := eventstream.NewDecoder(resp.Body)
	m, err := dec.Decode()
	if err != nil || m.HeaderString(eventstream.HeaderEventType) != eventstream.EventTypeInitialResponse {
		t.Fatalf("first message %v %v", m, err)
	}
	m, err = dec.Decode()
	if err != nil {
		t.Fatal(err)
	}
	if m.HeaderString(eventstream.HeaderEventType) != eventstream.EventTypeSubscribeToShardEvent || m.HeaderString(eventstream.HeaderContentType) != contentTypeCBOR {
		t.Fatalf("headers %v", m.Headers)
	}
	var ev cborEvent
	if err := cborDec.Unmarshal(m.Payload, &ev); err != nil {
		t.Fatal(err)
	}
	if len(ev.Records) != 1 || !bytes.Equal(ev.Records[0].Data, []byte{9, 8, 7}) || ev.Records[0].SequenceNumber != *put.SequenceNumber || ev.ContinuationSequenceNumber != *put.SequenceNumber {
		t.Fatalf("event %+v", ev)
	}
	if d := time.Since(ev.Records[0].ApproximateArrivalTimestamp.Time); d < 0 || d > time.Minute {
		t.Fatalf("arrival %v", ev.Records[0].ApproximateArrivalTimestamp)
	}
}
