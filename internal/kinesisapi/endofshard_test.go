package kinesisapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/internal/eventstream"
)

// closedShard sets up stream "s" whose shard 0 holds one record and was then
// split, and returns the consumer's ARN and the record's sequence number.
func (e *efoServer) closedShard(t *testing.T, c *kinesis.Client) (consumerARN, seq string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, consumerARN = e.setup(t, c)
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	// As a client does, wait for the stream to be ACTIVE again.
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
		if err != nil {
			t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return consumerARN, *put.SequenceNumber
}

// TestSubscribeEndOfShardPayload reads a closed shard to its end over raw
// HTTP in both payload encodings: the event with ChildShards must have no
// ContinuationSequenceNumber member at all (not even null), still carry
// MillisBehindLatest, and be the last message of the response.
func TestSubscribeEndOfShardPayload(t *testing.T) {
	e := newEFOServer(t)
	consumerARN, _ := e.closedShard(t, e.client())
	for _, tc := range []struct {
		name        string
		contentType string
		marshal     func(any) ([]byte, error)
		unmarshal   func([]byte, *map[string]any) error
	}{
		{"json", contentTypeJSON, json.Marshal, func(b []byte, m *map[string]any) error { return json.Unmarshal(b, m) }},
		{"cbor", contentTypeCBOR, cborEnc.Marshal, func(b []byte, m *map[string]any) error { return cborDec.Unmarshal(b, m) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			body, err := tc.marshal(map[string]any{
				"ConsumerARN": consumerARN, "ShardId": "shardId-000000000000",
				"StartingPosition": map[string]any{"Type": "TRIM_HORIZON"},
			})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/", bytes.NewReader(body))
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("X-Amz-Target", "Kinesis_20131202.SubscribeToShard")
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			dec := eventstream.NewDecoder(resp.Body)
			records := 0
			var end map[string]any
			for end == nil {
				m, err := dec.Decode()
				if err != nil {
					t.Fatalf("after %d records: %v", records, err)
				}
				if m.HeaderString(eventstream.HeaderEventType) != eventstream.EventTypeSubscribeToShardEvent {
					continue
				}
				var ev map[string]any
				if err := tc.unmarshal(m.Payload, &ev); err != nil {
					t.Fatal(err)
				}
				if recs, _ := ev["Records"].([]any); recs != nil {
					records += len(recs)
				}
				_, hasCont := ev["ContinuationSequenceNumber"]
				_, hasChildren := ev["ChildShards"]
				switch {
				case hasChildren && hasCont:
					t.Fatalf("ContinuationSequenceNumber next to ChildShards: %v", ev)
				case !hasChildren && !hasCont:
					t.Fatalf("event without ContinuationSequenceNumber or ChildShards: %v", ev)
				case hasChildren:
					end = ev
				}
			}
			if records != 1 {
				t.Fatalf("%d records before the end, want 1", records)
			}
			if _, ok := end["MillisBehindLatest"]; !ok {
				t.Fatalf("last event without MillisBehindLatest: %v", end)
			}
			if children, _ := end["ChildShards"].([]any); len(children) != 2 {
				t.Fatalf("ChildShards %v", end["ChildShards"])
			}
			if m, err := dec.Decode(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the last event: %v %v, want the end of the response", m, err)
			}
		})
	}
}

// TestSubscribeEndOfShardSDK subscribes after the last record of a closed
// shard with the SDK: the only event has ChildShards and a nil
// ContinuationSequenceNumber, and the stream then ends without error.
func TestSubscribeEndOfShardSDK(t *testing.T) {
	e := newEFOServer(t)
	c := e.client()
	consumerARN, seq := e.closedShard(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, pos := range []types.StartingPosition{
		{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: &seq},
		{Type: types.ShardIteratorTypeLatest},
	} {
		t.Run(string(pos.Type), func(t *testing.T) {
			sub, err := e.client().SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{
				ConsumerARN: &consumerARN, ShardId: aws.String("shardId-000000000000"), StartingPosition: &pos,
			})
			if err != nil {
				t.Fatal(err)
			}
			stream := sub.GetStream()
			defer stream.Close()
			var events []types.SubscribeToShardEvent
			for ev := range stream.Events() {
				m, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
				if !ok {
					t.Fatalf("event %T", ev)
				}
				events = append(events, m.Value)
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if len(events) != 1 {
				t.Fatalf("%d events, want 1", len(events))
			}
			ev := events[0]
			if ev.ContinuationSequenceNumber != nil || len(ev.ChildShards) != 2 || len(ev.Records) != 0 || ev.MillisBehindLatest == nil {
				t.Fatalf("event: continuation %v, children %v, %d records, behind %v",
					aws.ToString(ev.ContinuationSequenceNumber), ev.ChildShards, len(ev.Records), ev.MillisBehindLatest)
			}
			for _, ch := range ev.ChildShards {
				if len(ch.ParentShards) != 1 || ch.ParentShards[0] != "shardId-000000000000" {
					t.Fatalf("child %s parents %v", aws.ToString(ch.ShardId), ch.ParentShards)
				}
			}
		})
	}
}
