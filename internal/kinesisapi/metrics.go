package kinesisapi

import "github.com/runnel/runnel/internal/metrics"

// The wire layer measures the latency of the operations CloudWatch has a
// Latency metric for, from the request's arrival to the answer written,
// and records it under the stream the service resolved (the Backend finds
// the request's metrics.Call in its context). Everything else a stream
// counts is counted by the service.
func init() {
	for name, op := range map[string]metrics.Op{
		"PutRecord":  metrics.OpPutRecord,
		"PutRecords": metrics.OpPutRecords,
		"GetRecords": metrics.OpGetRecords,
	} {
		operations[name].timed = true
		operations[name].latency = op
	}
}
