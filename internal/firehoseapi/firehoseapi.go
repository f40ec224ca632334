// Package firehoseapi is the wire layer of delivery streams: the
// operations of the Firehose API (X-Amz-Target prefix Firehose_20150804,
// JSON 1.1), served on the Kinesis port by the same protocol plumbing as
// Kinesis (envelope, error registry, request ids). The shapes and rules
// live in package delivery; this package maps operations to them.
package firehoseapi

import (
	"context"
	"fmt"
	"github.com/runnel/runnel/internal/iam"

	"github.com/runnel/runnel/internal/delivery"
)

// TargetPrefix is the service part of X-Amz-Target for Firehose.
const TargetPrefix = "Firehose_20150804"

// API serves the Firehose API from a delivery service.
type API struct {
	svc *delivery.Service
}

// New returns the API of svc.
func New(svc *delivery.Service) *API { return &API{svc: svc} }

// TargetPrefix returns the X-Amz-Target service name the API answers to.
func (a *API) TargetPrefix() string { return TargetPrefix }

// IAMService is the IAM service prefix of the Firehose API's actions
// ("firehose:PutRecordBatch"), for the policy evaluator.
func (a *API) IAMService() string { return iam.FirehoseService }

// operations maps each operation to a constructor of its input.
var operations = map[string]func() any{
	"CreateDeliveryStream":          func() any { return new(delivery.CreateDeliveryStreamInput) },
	"DeleteDeliveryStream":          func() any { return new(deleteInput) },
	"DescribeDeliveryStream":        func() any { return new(describeInput) },
	"ListDeliveryStreams":           func() any { return new(delivery.ListDeliveryStreamsInput) },
	"PutRecord":                     func() any { return new(delivery.PutRecordInput) },
	"PutRecordBatch":                func() any { return new(delivery.PutRecordBatchInput) },
	"UpdateDestination":             func() any { return new(delivery.UpdateDestinationInput) },
	"TagDeliveryStream":             func() any { return new(delivery.TagDeliveryStreamInput) },
	"UntagDeliveryStream":           func() any { return new(delivery.UntagDeliveryStreamInput) },
	"ListTagsForDeliveryStream":     func() any { return new(delivery.ListTagsForDeliveryStreamInput) },
	"StartDeliveryStreamEncryption": func() any { return new(delivery.StartEncryptionInput) },
	"StopDeliveryStreamEncryption":  func() any { return new(stopEncryptionInput) },
}

// Distinct types for the operations that share delivery.NameInput, so
// that Call can tell them apart.
type (
	deleteInput         struct{ delivery.NameInput }
	describeInput       struct{ delivery.NameInput }
	stopEncryptionInput struct{ delivery.NameInput }
)

// NewInput returns a new, empty input for op, or nil when the API has no
// such operation.
func (a *API) NewInput(op string) any {
	f := operations[op]
	if f == nil {
		return nil
	}
	return f()
}

// Call runs op on an input NewInput made and the plumbing decoded. Errors
// the client should see are *delivery.Error; any other is an internal
// fault.
func (a *API) Call(ctx context.Context, op string, in any) (any, error) {
	switch in := in.(type) {
	case *delivery.CreateDeliveryStreamInput:
		return a.svc.CreateDeliveryStream(ctx, in)
	case *deleteInput:
		return nil, a.svc.DeleteDeliveryStream(ctx, &in.NameInput)
	case *describeInput:
		return a.svc.DescribeDeliveryStream(ctx, &in.NameInput)
	case *delivery.ListDeliveryStreamsInput:
		return a.svc.ListDeliveryStreams(ctx, in)
	case *delivery.PutRecordInput:
		return a.svc.PutRecord(ctx, in)
	case *delivery.PutRecordBatchInput:
		return a.svc.PutRecordBatch(ctx, in)
	case *delivery.UpdateDestinationInput:
		return nil, a.svc.UpdateDestination(ctx, in)
	case *delivery.TagDeliveryStreamInput:
		return nil, a.svc.TagDeliveryStream(ctx, in)
	case *delivery.UntagDeliveryStreamInput:
		return nil, a.svc.UntagDeliveryStream(ctx, in)
	case *delivery.ListTagsForDeliveryStreamInput:
		return a.svc.ListTagsForDeliveryStream(ctx, in)
	case *delivery.StartEncryptionInput:
		return nil, a.svc.StartDeliveryStreamEncryption(ctx, in)
	case *stopEncryptionInput:
		return nil, a.svc.StopDeliveryStreamEncryption(ctx, &in.NameInput)
	}
	return nil, fmt.Errorf("firehoseapi: no handler for %s with %T", op, in)
}

// HasOutput reports whether op answers with a body: Firehose's operations
// without output members answer with an empty object, which the plumbing
// writes for a nil output.
func (a *API) HasOutput(string) bool { return true }
