package streams

import (
	"context"
	"errors"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Options configure a Service.
type Options struct {
	// Region appears in ARNs. Default "us-east-1".
	Region string
	// AccountID appears in ARNs and messages. Default "000000000000".
	AccountID string
	// ShardLimit is the account's open-shard limit. Default 20000.
	ShardLimit int
	// OnDemandStreamLimit is the account's on-demand stream limit. Default 50.
	OnDemandStreamLimit int
	// TransitionDelay is how long a stream stays CREATING, UPDATING or
	// DELETING (and a consumer CREATING or DELETING) before it settles.
	// Default 500ms; zero makes transitions immediate.
	TransitionDelay time.Duration
	// EnforceThroughput turns on per-shard throughput limits (1 MiB/s and
	// 1,000 records/s in; 2 MiB/s and 5 GetRecords/s out).
	EnforceThroughput bool
	// IteratorKey signs shard iterators. Empty: a random key per process
	// (iterators then do not survive a restart, which their 5-minute life
	// makes harmless).
	IteratorKey []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultOptions returns the defaults described on each Options field.
func DefaultOptions() Options {
	return Options{
		Region:              "us-east-1",
		AccountID:           "000000000000",
		ShardLimit:          20000,
		OnDemandStreamLimit: 50,
		TransitionDelay:     500 * time.Millisecond,
	}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.Region == "" {
		return errors.New("streams: empty region")
	}
	if len(o.AccountID) != 12 {
		return errors.New("streams: account id must be 12 digits")
	}
	for _, c := range o.AccountID {
		if c < '0' || c > '9' {
			return errors.New("streams: account id must be 12 digits")
		}
	}
	if o.ShardLimit < 1 {
		return errors.New("streams: shard limit must be positive")
	}
	if o.TransitionDelay < 0 {
		return errors.New("streams: negative transition delay")
	}
	return nil
}

// Service implements the Kinesis Data Streams semantics on an engine. It is
// safe for concurrent use. Every method returns either its output or an error;
// errors the client should see are *Error, anything else is an internal fault.
type Service struct {
	opts Options
	eng  engine.Engine
}

// New starts a service on eng. The caller owns eng and closes it after the
// service.
func New(ctx context.Context, eng engine.Engine, opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{opts: opts, eng: eng}, nil
}

// Close stops the service's background work.
func (s *Service) Close() error { return nil }

var errNotImplemented = errors.New("streams: not implemented")

func (s *Service) CreateStream(ctx context.Context, in *CreateStreamInput) error {
	return errNotImplemented
}
func (s *Service) DeleteStream(ctx context.Context, in *DeleteStreamInput) error {
	return errNotImplemented
}
func (s *Service) DescribeStream(ctx context.Context, in *DescribeStreamInput) (*DescribeStreamOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) DescribeStreamSummary(ctx context.Context, in *DescribeStreamSummaryInput) (*DescribeStreamSummaryOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) ListStreams(ctx context.Context, in *ListStreamsInput) (*ListStreamsOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) ListShards(ctx context.Context, in *ListShardsInput) (*ListShardsOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) PutRecord(ctx context.Context, in *PutRecordInput) (*PutRecordOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) PutRecords(ctx context.Context, in *PutRecordsInput) (*PutRecordsOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) GetShardIterator(ctx context.Context, in *GetShardIteratorInput) (*GetShardIteratorOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) GetRecords(ctx context.Context, in *GetRecordsInput) (*GetRecordsOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) AddTagsToStream(ctx context.Context, in *AddTagsToStreamInput) error {
	return errNotImplemented
}
func (s *Service) RemoveTagsFromStream(ctx context.Context, in *RemoveTagsFromStreamInput) error {
	return errNotImplemented
}
func (s *Service) ListTagsForStream(ctx context.Context, in *ListTagsForStreamInput) (*ListTagsForStreamOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) TagResource(ctx context.Context, in *TagResourceInput) error {
	return errNotImplemented
}
func (s *Service) UntagResource(ctx context.Context, in *UntagResourceInput) error {
	return errNotImplemented
}
func (s *Service) ListTagsForResource(ctx context.Context, in *ListTagsForResourceInput) (*ListTagsForResourceOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) IncreaseStreamRetentionPeriod(ctx context.Context, in *IncreaseStreamRetentionPeriodInput) error {
	return errNotImplemented
}
func (s *Service) DecreaseStreamRetentionPeriod(ctx context.Context, in *DecreaseStreamRetentionPeriodInput) error {
	return errNotImplemented
}
func (s *Service) DescribeLimits(ctx context.Context, in *DescribeLimitsInput) (*DescribeLimitsOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) UpdateMaxRecordSize(ctx context.Context, in *UpdateMaxRecordSizeInput) error {
	return errNotImplemented
}
func (s *Service) EnableEnhancedMonitoring(ctx context.Context, in *EnhancedMonitoringInput) (*EnhancedMonitoringOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) DisableEnhancedMonitoring(ctx context.Context, in *EnhancedMonitoringInput) (*EnhancedMonitoringOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) StartStreamEncryption(ctx context.Context, in *StreamEncryptionInput) error {
	return errNotImplemented
}
func (s *Service) StopStreamEncryption(ctx context.Context, in *StreamEncryptionInput) error {
	return errNotImplemented
}
func (s *Service) PutResourcePolicy(ctx context.Context, in *PutResourcePolicyInput) error {
	return errNotImplemented
}
func (s *Service) GetResourcePolicy(ctx context.Context, in *GetResourcePolicyInput) (*GetResourcePolicyOutput, error) {
	return nil, errNotImplemented
}
func (s *Service) DeleteResourcePolicy(ctx context.Context, in *DeleteResourcePolicyInput) error {
	return errNotImplemented
}
func (s *Service) DescribeAccountSettings(ctx context.Context, in *DescribeAccountSettingsInput) (*DescribeAccountSettingsOutput, error) {
	return nil, errNotImplemented
}
