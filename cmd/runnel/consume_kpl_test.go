package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/runnel/runnel/consumer"
)

// TestConsumeJSONSubSequence: in JSON, the user records of a KPL aggregate,
// which share a sequence number, carry their sub-sequence number and
// explicit hash key; a plain record's line has neither.
func TestConsumeJSONSubSequence(t *testing.T) {
	p := &printer{format: "json"}
	at := time.UnixMilli(1700000000123)
	tests := []struct {
		name string
		rec  consumer.Record
		want map[string]any
	}{
		{"plain", consumer.Record{SequenceNumber: "5", PartitionKey: "k", Data: []byte("x"), ApproximateArrivalTimestamp: at},
			map[string]any{"ShardId": "shardId-000000000000", "SequenceNumber": "5", "PartitionKey": "k", "ApproximateArrivalTimestamp": 1700000000.123, "Data": "eA=="}},
		{"user record", consumer.Record{SequenceNumber: "5", SubSequenceNumber: 3, PartitionKey: "k", ExplicitHashKey: "42", Data: []byte("x"), ApproximateArrivalTimestamp: at},
			map[string]any{"ShardId": "shardId-000000000000", "SequenceNumber": "5", "SubSequenceNumber": 3.0, "PartitionKey": "k", "ExplicitHashKey": "42", "ApproximateArrivalTimestamp": 1700000000.123, "Data": "eA=="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got map[string]any
			if err := json.Unmarshal(p.appendRecord(nil, "shardId-000000000000", tt.rec), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("%s = %v, want %v (line %v)", k, got[k], v, got)
				}
			}
		})
	}
}
