package kinesisapi

import (
	"context"
	"sync"

	"github.com/runnel/runnel/internal/streams"
)

// fakeBackend records every call and answers with a canned output or error
// per operation (zero outputs by default).
type fakeBackend struct {
	mu      sync.Mutex
	calls   []fakeCall
	outputs map[string]any
	errs    map[string]error
}

type fakeCall struct {
	op string
	in any
}

func newFake() *fakeBackend {
	return &fakeBackend{outputs: map[string]any{}, errs: map[string]error{}}
}

func (f *fakeBackend) record(op string, in any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fakeCall{op, in})
	return f.errs[op]
}

func (f *fakeBackend) lastCall() (fakeCall, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.calls) == 0 {
		return fakeCall{}, false
	}
	return f.calls[len(f.calls)-1], true
}

func output[O any](f *fakeBackend, op string) *O {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o, ok := f.outputs[op].(*O); ok {
		return o
	}
	return new(O)
}

func (f *fakeBackend) AddTagsToStream(ctx context.Context, in *streams.AddTagsToStreamInput) error {
	return f.record("AddTagsToStream", in)
}

func (f *fakeBackend) CreateStream(ctx context.Context, in *streams.CreateStreamInput) error {
	return f.record("CreateStream", in)
}

func (f *fakeBackend) DecreaseStreamRetentionPeriod(ctx context.Context, in *streams.DecreaseStreamRetentionPeriodInput) error {
	return f.record("DecreaseStreamRetentionPeriod", in)
}

func (f *fakeBackend) DeleteResourcePolicy(ctx context.Context, in *streams.DeleteResourcePolicyInput) error {
	return f.record("DeleteResourcePolicy", in)
}

func (f *fakeBackend) DeleteStream(ctx context.Context, in *streams.DeleteStreamInput) error {
	return f.record("DeleteStream", in)
}

func (f *fakeBackend) DescribeAccountSettings(ctx context.Context, in *streams.DescribeAccountSettingsInput) (*streams.DescribeAccountSettingsOutput, error) {
	if err := f.record("DescribeAccountSettings", in); err != nil {
		return nil, err
	}
	return output[streams.DescribeAccountSettingsOutput](f, "DescribeAccountSettings"), nil
}

func (f *fakeBackend) DescribeLimits(ctx context.Context, in *streams.DescribeLimitsInput) (*streams.DescribeLimitsOutput, error) {
	if err := f.record("DescribeLimits", in); err != nil {
		return nil, err
	}
	return output[streams.DescribeLimitsOutput](f, "DescribeLimits"), nil
}

func (f *fakeBackend) DescribeStream(ctx context.Context, in *streams.DescribeStreamInput) (*streams.DescribeStreamOutput, error) {
	if err := f.record("DescribeStream", in); err != nil {
		return nil, err
	}
	return output[streams.DescribeStreamOutput](f, "DescribeStream"), nil
}

func (f *fakeBackend) DescribeStreamSummary(ctx context.Context, in *streams.DescribeStreamSummaryInput) (*streams.DescribeStreamSummaryOutput, error) {
	if err := f.record("DescribeStreamSummary", in); err != nil {
		return nil, err
	}
	return output[streams.DescribeStreamSummaryOutput](f, "DescribeStreamSummary"), nil
}

func (f *fakeBackend) DisableEnhancedMonitoring(ctx context.Context, in *streams.EnhancedMonitoringInput) (*streams.EnhancedMonitoringOutput, error) {
	if err := f.record("DisableEnhancedMonitoring", in); err != nil {
		return nil, err
	}
	return output[streams.EnhancedMonitoringOutput](f, "DisableEnhancedMonitoring"), nil
}

func (f *fakeBackend) EnableEnhancedMonitoring(ctx context.Context, in *streams.EnhancedMonitoringInput) (*streams.EnhancedMonitoringOutput, error) {
	if err := f.record("EnableEnhancedMonitoring", in); err != nil {
		return nil, err
	}
	return output[streams.EnhancedMonitoringOutput](f, "EnableEnhancedMonitoring"), nil
}

func (f *fakeBackend) GetRecords(ctx context.Context, in *streams.GetRecordsInput) (*streams.GetRecordsOutput, error) {
	if err := f.record("GetRecords", in); err != nil {
		return nil, err
	}
	return output[streams.GetRecordsOutput](f, "GetRecords"), nil
}

func (f *fakeBackend) GetResourcePolicy(ctx context.Context, in *streams.GetResourcePolicyInput) (*streams.GetResourcePolicyOutput, error) {
	if err := f.record("GetResourcePolicy", in); err != nil {
		return nil, err
	}
	return output[streams.GetResourcePolicyOutput](f, "GetResourcePolicy"), nil
}

func (f *fakeBackend) GetShardIterator(ctx context.Context, in *streams.GetShardIteratorInput) (*streams.GetShardIteratorOutput, error) {
	if err := f.record("GetShardIterator", in); err != nil {
		return nil, err
	}
	return output[streams.GetShardIteratorOutput](f, "GetShardIterator"), nil
}

func (f *fakeBackend) IncreaseStreamRetentionPeriod(ctx context.Context, in *streams.IncreaseStreamRetentionPeriodInput) error {
	return f.record("IncreaseStreamRetentionPeriod", in)
}

func (f *fakeBackend) ListShards(ctx context.Context, in *streams.ListShardsInput) (*streams.ListShardsOutput, error) {
	if err := f.record("ListShards", in); err != nil {
		return nil, err
	}
	return output[streams.ListShardsOutput](f, "ListShards"), nil
}

func (f *fakeBackend) ListStreams(ctx context.Context, in *streams.ListStreamsInput) (*streams.ListStreamsOutput, error) {
	if err := f.record("ListStreams", in); err != nil {
		return nil, err
	}
	return output[streams.ListStreamsOutput](f, "ListStreams"), nil
}

func (f *fakeBackend) ListTagsForResource(ctx context.Context, in *streams.ListTagsForResourceInput) (*streams.ListTagsForResourceOutput, error) {
	if err := f.record("ListTagsForResource", in); err != nil {
		return nil, err
	}
	return output[streams.ListTagsForResourceOutput](f, "ListTagsForResource"), nil
}

func (f *fakeBackend) ListTagsForStream(ctx context.Context, in *streams.ListTagsForStreamInput) (*streams.ListTagsForStreamOutput, error) {
	if err := f.record("ListTagsForStream", in); err != nil {
		return nil, err
	}
	return output[streams.ListTagsForStreamOutput](f, "ListTagsForStream"), nil
}

func (f *fakeBackend) PutRecord(ctx context.Context, in *streams.PutRecordInput) (*streams.PutRecordOutput, error) {
	if err := f.record("PutRecord", in); err != nil {
		return nil, err
	}
	return output[streams.PutRecordOutput](f, "PutRecord"), nil
}

func (f *fakeBackend) PutRecords(ctx context.Context, in *streams.PutRecordsInput) (*streams.PutRecordsOutput, error) {
	if err := f.record("PutRecords", in); err != nil {
		return nil, err
	}
	return output[streams.PutRecordsOutput](f, "PutRecords"), nil
}

func (f *fakeBackend) PutResourcePolicy(ctx context.Context, in *streams.PutResourcePolicyInput) error {
	return f.record("PutResourcePolicy", in)
}

func (f *fakeBackend) RemoveTagsFromStream(ctx context.Context, in *streams.RemoveTagsFromStreamInput) error {
	return f.record("RemoveTagsFromStream", in)
}

func (f *fakeBackend) StartStreamEncryption(ctx context.Context, in *streams.StreamEncryptionInput) error {
	return f.record("StartStreamEncryption", in)
}

func (f *fakeBackend) StopStreamEncryption(ctx context.Context, in *streams.StreamEncryptionInput) error {
	return f.record("StopStreamEncryption", in)
}

func (f *fakeBackend) TagResource(ctx context.Context, in *streams.TagResourceInput) error {
	return f.record("TagResource", in)
}

func (f *fakeBackend) UntagResource(ctx context.Context, in *streams.UntagResourceInput) error {
	return f.record("UntagResource", in)
}

func (f *fakeBackend) UpdateMaxRecordSize(ctx context.Context, in *streams.UpdateMaxRecordSizeInput) error {
	return f.record("UpdateMaxRecordSize", in)
}
