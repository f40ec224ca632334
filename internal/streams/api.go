package streams

// This file declares the Kinesis Data Streams API shapes: the inputs and
// outputs of every operation, named and tagged exactly as in the Kinesis
// service model (Kinesis_20131202), so the wire layer can decode JSON 1.1 and
// CBOR 1.1 bodies straight into them and encode the outputs back.
//
// Optional and required input members are pointers (or nil slices/maps) so the
// wire layer can tell "absent or null" from "empty" when it validates them
// against the model's constraints. Outputs use pointers only where Kinesis
// omits or nulls the member (for example NextShardIterator at the end of a
// closed shard).

// StreamModeDetails says how a stream's capacity is managed.
type StreamModeDetails struct {
	StreamMode *string `json:"StreamMode,omitempty"` // PROVISIONED | ON_DEMAND
}

// Tag is one stream or consumer tag.
type Tag struct {
	Key   *string `json:"Key,omitempty"`
	Value *string `json:"Value,omitempty"`
}

// HashKeyRange is a shard's range of the 128-bit hash space, in decimal.
type HashKeyRange struct {
	StartingHashKey string `json:"StartingHashKey"`
	EndingHashKey   string `json:"EndingHashKey"`
}

// SequenceNumberRange is a shard's range of sequence numbers. Ending is nil
// while the shard is open.
type SequenceNumberRange struct {
	StartingSequenceNumber string  `json:"StartingSequenceNumber"`
	EndingSequenceNumber   *string `json:"EndingSequenceNumber,omitempty"`
}

// Shard describes one shard.
type Shard struct {
	ShardId               string              `json:"ShardId"`
	ParentShardId         *string             `json:"ParentShardId,omitempty"`
	AdjacentParentShardId *string             `json:"AdjacentParentShardId,omitempty"`
	HashKeyRange          HashKeyRange        `json:"HashKeyRange"`
	SequenceNumberRange   SequenceNumberRange `json:"SequenceNumberRange"`
}

// ChildShard is returned at the end of a closed shard.
type ChildShard struct {
	ShardId      string       `json:"ShardId"`
	ParentShards []string     `json:"ParentShards"`
	HashKeyRange HashKeyRange `json:"HashKeyRange"`
}

// EnhancedMetrics lists the shard-level metrics enabled on a stream.
type EnhancedMetrics struct {
	ShardLevelMetrics []string `json:"ShardLevelMetrics"`
}

// WarmThroughputObject reports a stream's warm throughput (on-demand only).
type WarmThroughputObject struct {
	TargetMiBps  *int32 `json:"TargetMiBps,omitempty"`
	CurrentMiBps *int32 `json:"CurrentMiBps,omitempty"`
}

// StreamDescription is DescribeStream's answer.
type StreamDescription struct {
	StreamName              string             `json:"StreamName"`
	StreamARN               string             `json:"StreamARN"`
	StreamStatus            string             `json:"StreamStatus"`
	StreamModeDetails       *StreamModeDetails `json:"StreamModeDetails,omitempty"`
	Shards                  []Shard            `json:"Shards"`
	HasMoreShards           bool               `json:"HasMoreShards"`
	RetentionPeriodHours    int32              `json:"RetentionPeriodHours"`
	StreamCreationTimestamp Timestamp          `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []EnhancedMetrics  `json:"EnhancedMonitoring"`
	EncryptionType          *string            `json:"EncryptionType,omitempty"`
	KeyId                   *string            `json:"KeyId,omitempty"`
}

// StreamDescriptionSummary is DescribeStreamSummary's answer.
type StreamDescriptionSummary struct {
	StreamName              string                `json:"StreamName"`
	StreamARN               string                `json:"StreamARN"`
	StreamStatus            string                `json:"StreamStatus"`
	StreamModeDetails       *StreamModeDetails    `json:"StreamModeDetails,omitempty"`
	RetentionPeriodHours    int32                 `json:"RetentionPeriodHours"`
	StreamCreationTimestamp Timestamp             `json:"StreamCreationTimestamp"`
	EnhancedMonitoring      []EnhancedMetrics     `json:"EnhancedMonitoring"`
	EncryptionType          *string               `json:"EncryptionType,omitempty"`
	KeyId                   *string               `json:"KeyId,omitempty"`
	OpenShardCount          int32                 `json:"OpenShardCount"`
	ConsumerCount           *int32                `json:"ConsumerCount,omitempty"`
	WarmThroughput          *WarmThroughputObject `json:"WarmThroughput,omitempty"`
	MaxRecordSizeInKiB      *int32                `json:"MaxRecordSizeInKiB,omitempty"`
	// RecordDistributionStrategy is reported for ON_DEMAND streams only.
	RecordDistributionStrategy *string `json:"RecordDistributionStrategy,omitempty"`
}

// StreamSummary is one entry of ListStreams' StreamSummaries.
type StreamSummary struct {
	StreamName              string             `json:"StreamName"`
	StreamARN               string             `json:"StreamARN"`
	StreamStatus            string             `json:"StreamStatus"`
	StreamModeDetails       *StreamModeDetails `json:"StreamModeDetails,omitempty"`
	StreamCreationTimestamp *Timestamp         `json:"StreamCreationTimestamp,omitempty"`
}

// Record is one record returned by GetRecords (and SubscribeToShard).
type Record struct {
	SequenceNumber              string    `json:"SequenceNumber"`
	ApproximateArrivalTimestamp Timestamp `json:"ApproximateArrivalTimestamp"`
	Data                        []byte    `json:"Data"`
	PartitionKey                string    `json:"PartitionKey"`
	EncryptionType              *string   `json:"EncryptionType,omitempty"`
}

// PutRecordsRequestEntry is one record of a PutRecords request.
type PutRecordsRequestEntry struct {
	Data            []byte  `json:"Data"`
	ExplicitHashKey *string `json:"ExplicitHashKey,omitempty"`
	PartitionKey    *string `json:"PartitionKey,omitempty"`
}

// PutRecordsResultEntry is the outcome of one PutRecords record: either
// SequenceNumber and ShardId, or ErrorCode and ErrorMessage.
type PutRecordsResultEntry struct {
	SequenceNumber *string `json:"SequenceNumber,omitempty"`
	ShardId        *string `json:"ShardId,omitempty"`
	ErrorCode      *string `json:"ErrorCode,omitempty"`
	ErrorMessage   *string `json:"ErrorMessage,omitempty"`
}

// ShardFilter selects shards in ListShards.
type ShardFilter struct {
	Type      *string    `json:"Type,omitempty"`
	ShardId   *string    `json:"ShardId,omitempty"`
	Timestamp *Timestamp `json:"Timestamp,omitempty"`
}

// StartingPosition says where a SubscribeToShard subscription starts.
type StartingPosition struct {
	Type           *string    `json:"Type,omitempty"`
	SequenceNumber *string    `json:"SequenceNumber,omitempty"`
	Timestamp      *Timestamp `json:"Timestamp,omitempty"`
}

// Consumer is an enhanced fan-out consumer registration.
type Consumer struct {
	ConsumerName              string    `json:"ConsumerName"`
	ConsumerARN               string    `json:"ConsumerARN"`
	ConsumerStatus            string    `json:"ConsumerStatus"`
	ConsumerCreationTimestamp Timestamp `json:"ConsumerCreationTimestamp"`
}

// ConsumerDescription is DescribeStreamConsumer's answer.
type ConsumerDescription struct {
	ConsumerName              string    `json:"ConsumerName"`
	ConsumerARN               string    `json:"ConsumerARN"`
	ConsumerStatus            string    `json:"ConsumerStatus"`
	ConsumerCreationTimestamp Timestamp `json:"ConsumerCreationTimestamp"`
	StreamARN                 string    `json:"StreamARN"`
}

// Operation inputs and outputs, in the order of the API reference.

type AddTagsToStreamInput struct {
	StreamName *string           `json:"StreamName,omitempty"`
	StreamARN  *string           `json:"StreamARN,omitempty"`
	Tags       map[string]string `json:"Tags,omitempty"`
}

type CreateStreamInput struct {
	StreamName          *string            `json:"StreamName,omitempty"`
	ShardCount          *int32             `json:"ShardCount,omitempty"`
	StreamModeDetails   *StreamModeDetails `json:"StreamModeDetails,omitempty"`
	Tags                map[string]string  `json:"Tags,omitempty"`
	WarmThroughputMiBps *int32             `json:"WarmThroughputMiBps,omitempty"`
	MaxRecordSizeInKiB  *int32             `json:"MaxRecordSizeInKiB,omitempty"`
	// RecordDistributionStrategy is AUTO or USER_PARTITION_KEY (the default).
	RecordDistributionStrategy *string `json:"RecordDistributionStrategy,omitempty"`
}

type DecreaseStreamRetentionPeriodInput struct {
	StreamName           *string `json:"StreamName,omitempty"`
	StreamARN            *string `json:"StreamARN,omitempty"`
	RetentionPeriodHours *int32  `json:"RetentionPeriodHours,omitempty"`
}

type IncreaseStreamRetentionPeriodInput = DecreaseStreamRetentionPeriodInput

type DeleteResourcePolicyInput struct {
	ResourceARN *string `json:"ResourceARN,omitempty"`
}

type DeleteStreamInput struct {
	StreamName              *string `json:"StreamName,omitempty"`
	StreamARN               *string `json:"StreamARN,omitempty"`
	EnforceConsumerDeletion *bool   `json:"EnforceConsumerDeletion,omitempty"`
}

type DeregisterStreamConsumerInput struct {
	StreamARN    *string `json:"StreamARN,omitempty"`
	ConsumerName *string `json:"ConsumerName,omitempty"`
	ConsumerARN  *string `json:"ConsumerARN,omitempty"`
}

type DescribeAccountSettingsInput struct{}

// MinimumThroughputBillingCommitmentOutput is the account's commitment state.
type MinimumThroughputBillingCommitmentOutput struct {
	Status               string     `json:"Status"`
	StartedAt            *Timestamp `json:"StartedAt,omitempty"`
	EndedAt              *Timestamp `json:"EndedAt,omitempty"`
	EarliestAllowedEndAt *Timestamp `json:"EarliestAllowedEndAt,omitempty"`
}

type DescribeAccountSettingsOutput struct {
	MinimumThroughputBillingCommitment *MinimumThroughputBillingCommitmentOutput `json:"MinimumThroughputBillingCommitment,omitempty"`
}

type DescribeLimitsInput struct{}

type DescribeLimitsOutput struct {
	ShardLimit               int32 `json:"ShardLimit"`
	OpenShardCount           int32 `json:"OpenShardCount"`
	OnDemandStreamCount      int32 `json:"OnDemandStreamCount"`
	OnDemandStreamCountLimit int32 `json:"OnDemandStreamCountLimit"`
}

type DescribeStreamInput struct {
	StreamName            *string `json:"StreamName,omitempty"`
	StreamARN             *string `json:"StreamARN,omitempty"`
	Limit                 *int32  `json:"Limit,omitempty"`
	ExclusiveStartShardId *string `json:"ExclusiveStartShardId,omitempty"`
}

type DescribeStreamOutput struct {
	StreamDescription StreamDescription `json:"StreamDescription"`
}

type DescribeStreamConsumerInput struct {
	StreamARN    *string `json:"StreamARN,omitempty"`
	ConsumerName *string `json:"ConsumerName,omitempty"`
	ConsumerARN  *string `json:"ConsumerARN,omitempty"`
}

type DescribeStreamConsumerOutput struct {
	ConsumerDescription ConsumerDescription `json:"ConsumerDescription"`
}

type DescribeStreamSummaryInput struct {
	StreamName *string `json:"StreamName,omitempty"`
	StreamARN  *string `json:"StreamARN,omitempty"`
}

type DescribeStreamSummaryOutput struct {
	StreamDescriptionSummary StreamDescriptionSummary `json:"StreamDescriptionSummary"`
}

type EnhancedMonitoringInput struct {
	StreamName        *string  `json:"StreamName,omitempty"`
	StreamARN         *string  `json:"StreamARN,omitempty"`
	ShardLevelMetrics []string `json:"ShardLevelMetrics,omitempty"`
}

type EnhancedMonitoringOutput struct {
	StreamName               string   `json:"StreamName"`
	StreamARN                string   `json:"StreamARN"`
	CurrentShardLevelMetrics []string `json:"CurrentShardLevelMetrics"`
	DesiredShardLevelMetrics []string `json:"DesiredShardLevelMetrics"`
}

type GetRecordsInput struct {
	ShardIterator *string `json:"ShardIterator,omitempty"`
	Limit         *int32  `json:"Limit,omitempty"`
	StreamARN     *string `json:"StreamARN,omitempty"`
}

type GetRecordsOutput struct {
	Records            []Record     `json:"Records"`
	NextShardIterator  *string      `json:"NextShardIterator,omitempty"`
	MillisBehindLatest int64        `json:"MillisBehindLatest"`
	ChildShards        []ChildShard `json:"ChildShards,omitempty"`

	release func()
}

// OnRelease sets the function Release calls: a backend that lends the
// records' memory sets it.
func (o *GetRecordsOutput) OnRelease(fn func()) { o.release = fn }

// Release gives the memory of the records' Data back to the engine, which
// may reuse it: a caller that has sent the answer on calls it, and must not
// touch the records afterwards. Callers that keep the records simply do not
// call it. It is safe to call more than once.
func (o *GetRecordsOutput) Release() {
	if o != nil && o.release != nil {
		r := o.release
		o.release = nil
		r()
	}
}

type GetResourcePolicyInput struct {
	ResourceARN *string `json:"ResourceARN,omitempty"`
}

type GetResourcePolicyOutput struct {
	Policy string `json:"Policy"`
}

type GetShardIteratorInput struct {
	StreamName             *string    `json:"StreamName,omitempty"`
	StreamARN              *string    `json:"StreamARN,omitempty"`
	ShardId                *string    `json:"ShardId,omitempty"`
	ShardIteratorType      *string    `json:"ShardIteratorType,omitempty"`
	StartingSequenceNumber *string    `json:"StartingSequenceNumber,omitempty"`
	Timestamp              *Timestamp `json:"Timestamp,omitempty"`
}

type GetShardIteratorOutput struct {
	ShardIterator *string `json:"ShardIterator"`
}

type ListShardsInput struct {
	StreamName              *string      `json:"StreamName,omitempty"`
	StreamARN               *string      `json:"StreamARN,omitempty"`
	NextToken               *string      `json:"NextToken,omitempty"`
	ExclusiveStartShardId   *string      `json:"ExclusiveStartShardId,omitempty"`
	MaxResults              *int32       `json:"MaxResults,omitempty"`
	StreamCreationTimestamp *Timestamp   `json:"StreamCreationTimestamp,omitempty"`
	ShardFilter             *ShardFilter `json:"ShardFilter,omitempty"`
}

type ListShardsOutput struct {
	Shards    []Shard `json:"Shards"`
	NextToken *string `json:"NextToken,omitempty"`
}

type ListStreamConsumersInput struct {
	StreamARN               *string    `json:"StreamARN,omitempty"`
	NextToken               *string    `json:"NextToken,omitempty"`
	MaxResults              *int32     `json:"MaxResults,omitempty"`
	StreamCreationTimestamp *Timestamp `json:"StreamCreationTimestamp,omitempty"`
}

type ListStreamConsumersOutput struct {
	Consumers []Consumer `json:"Consumers"`
	NextToken *string    `json:"NextToken,omitempty"`
}

type ListStreamsInput struct {
	Limit                    *int32  `json:"Limit,omitempty"`
	ExclusiveStartStreamName *string `json:"ExclusiveStartStreamName,omitempty"`
	NextToken                *string `json:"NextToken,omitempty"`
}

type ListStreamsOutput struct {
	StreamNames     []string        `json:"StreamNames"`
	HasMoreStreams  bool            `json:"HasMoreStreams"`
	NextToken       *string         `json:"NextToken,omitempty"`
	StreamSummaries []StreamSummary `json:"StreamSummaries"`
}

type ListTagsForResourceInput struct {
	ResourceARN *string `json:"ResourceARN,omitempty"`
}

type ListTagsForResourceOutput struct {
	Tags []Tag `json:"Tags"`
}

type ListTagsForStreamInput struct {
	StreamName           *string `json:"StreamName,omitempty"`
	StreamARN            *string `json:"StreamARN,omitempty"`
	ExclusiveStartTagKey *string `json:"ExclusiveStartTagKey,omitempty"`
	Limit                *int32  `json:"Limit,omitempty"`
}

type ListTagsForStreamOutput struct {
	Tags        []Tag `json:"Tags"`
	HasMoreTags bool  `json:"HasMoreTags"`
}

type MergeShardsInput struct {
	StreamName           *string `json:"StreamName,omitempty"`
	StreamARN            *string `json:"StreamARN,omitempty"`
	ShardToMerge         *string `json:"ShardToMerge,omitempty"`
	AdjacentShardToMerge *string `json:"AdjacentShardToMerge,omitempty"`
}

type PutRecordInput struct {
	StreamName                *string `json:"StreamName,omitempty"`
	StreamARN                 *string `json:"StreamARN,omitempty"`
	Data                      []byte  `json:"Data"`
	PartitionKey              *string `json:"PartitionKey,omitempty"`
	ExplicitHashKey           *string `json:"ExplicitHashKey,omitempty"`
	SequenceNumberForOrdering *string `json:"SequenceNumberForOrdering,omitempty"`
}

type PutRecordOutput struct {
	ShardId        string  `json:"ShardId"`
	SequenceNumber string  `json:"SequenceNumber"`
	EncryptionType *string `json:"EncryptionType,omitempty"`
}

type PutRecordsInput struct {
	StreamName *string                  `json:"StreamName,omitempty"`
	StreamARN  *string                  `json:"StreamARN,omitempty"`
	Records    []PutRecordsRequestEntry `json:"Records"`
}

type PutRecordsOutput struct {
	FailedRecordCount int32                   `json:"FailedRecordCount"`
	Records           []PutRecordsResultEntry `json:"Records"`
	EncryptionType    *string                 `json:"EncryptionType,omitempty"`
}

type PutResourcePolicyInput struct {
	ResourceARN *string `json:"ResourceARN,omitempty"`
	Policy      *string `json:"Policy,omitempty"`
}

type RegisterStreamConsumerInput struct {
	StreamARN    *string           `json:"StreamARN,omitempty"`
	ConsumerName *string           `json:"ConsumerName,omitempty"`
	Tags         map[string]string `json:"Tags,omitempty"`
}

type RegisterStreamConsumerOutput struct {
	Consumer Consumer `json:"Consumer"`
}

type RemoveTagsFromStreamInput struct {
	StreamName *string  `json:"StreamName,omitempty"`
	StreamARN  *string  `json:"StreamARN,omitempty"`
	TagKeys    []string `json:"TagKeys,omitempty"`
}

type SplitShardInput struct {
	StreamName         *string `json:"StreamName,omitempty"`
	StreamARN          *string `json:"StreamARN,omitempty"`
	ShardToSplit       *string `json:"ShardToSplit,omitempty"`
	NewStartingHashKey *string `json:"NewStartingHashKey,omitempty"`
}

type StreamEncryptionInput struct {
	StreamName     *string `json:"StreamName,omitempty"`
	StreamARN      *string `json:"StreamARN,omitempty"`
	EncryptionType *string `json:"EncryptionType,omitempty"`
	KeyId          *string `json:"KeyId,omitempty"`
}

type SubscribeToShardInput struct {
	ConsumerARN      *string           `json:"ConsumerARN,omitempty"`
	ShardId          *string           `json:"ShardId,omitempty"`
	StartingPosition *StartingPosition `json:"StartingPosition,omitempty"`
}

// SubscribeToShardEvent is one event of a SubscribeToShard stream.
// ContinuationSequenceNumber is nil only in the last event of a closed
// shard, the one that carries ChildShards: consumers (the Java KCL, the Go
// KCL ports) take a missing continuation as the end of the shard, and
// reject a continuation next to ChildShards as an invalid event.
type SubscribeToShardEvent struct {
	Records                    []Record     `json:"Records"`
	ContinuationSequenceNumber *string      `json:"ContinuationSequenceNumber,omitempty"`
	MillisBehindLatest         int64        `json:"MillisBehindLatest"`
	ChildShards                []ChildShard `json:"ChildShards,omitempty"`

	release func()
}

// Release gives the memory of the records' Data back to the engine, as
// GetRecordsOutput.Release does.
func (ev *SubscribeToShardEvent) Release() {
	if ev != nil && ev.release != nil {
		r := ev.release
		ev.release = nil
		r()
	}
}

type TagResourceInput struct {
	ResourceARN *string           `json:"ResourceARN,omitempty"`
	Tags        map[string]string `json:"Tags,omitempty"`
}

type UntagResourceInput struct {
	ResourceARN *string  `json:"ResourceARN,omitempty"`
	TagKeys     []string `json:"TagKeys,omitempty"`
}

type UpdateMaxRecordSizeInput struct {
	StreamARN          *string `json:"StreamARN,omitempty"`
	StreamName         *string `json:"StreamName,omitempty"`
	MaxRecordSizeInKiB *int32  `json:"MaxRecordSizeInKiB,omitempty"`
}

type UpdateShardCountInput struct {
	StreamName       *string `json:"StreamName,omitempty"`
	StreamARN        *string `json:"StreamARN,omitempty"`
	TargetShardCount *int32  `json:"TargetShardCount,omitempty"`
	ScalingType      *string `json:"ScalingType,omitempty"`
}

type UpdateShardCountOutput struct {
	StreamName        string `json:"StreamName"`
	StreamARN         string `json:"StreamARN"`
	CurrentShardCount int32  `json:"CurrentShardCount"`
	TargetShardCount  int32  `json:"TargetShardCount"`
}

// MinimumThroughputBillingCommitmentInput asks for the account's commitment
// to be ENABLED or DISABLED.
type MinimumThroughputBillingCommitmentInput struct {
	Status *string `json:"Status,omitempty"`
}

type UpdateAccountSettingsInput struct {
	MinimumThroughputBillingCommitment *MinimumThroughputBillingCommitmentInput `json:"MinimumThroughputBillingCommitment,omitempty"`
}

type UpdateAccountSettingsOutput struct {
	MinimumThroughputBillingCommitment *MinimumThroughputBillingCommitmentOutput `json:"MinimumThroughputBillingCommitment,omitempty"`
}

type UpdateStreamWarmThroughputInput struct {
	StreamARN           *string `json:"StreamARN,omitempty"`
	StreamId            *string `json:"StreamId,omitempty"` // reserved by Kinesis; ignored
	StreamName          *string `json:"StreamName,omitempty"`
	WarmThroughputMiBps *int32  `json:"WarmThroughputMiBps,omitempty"`
}

type UpdateStreamWarmThroughputOutput struct {
	StreamARN      string                `json:"StreamARN"`
	StreamName     string                `json:"StreamName"`
	WarmThroughput *WarmThroughputObject `json:"WarmThroughput,omitempty"`
}

type UpdateStreamRecordDistributionStrategyInput struct {
	StreamARN                  *string `json:"StreamARN,omitempty"`
	StreamId                   *string `json:"StreamId,omitempty"` // reserved by Kinesis; ignored
	RecordDistributionStrategy *string `json:"RecordDistributionStrategy,omitempty"`
}

type UpdateStreamModeInput struct {
	StreamARN         *string            `json:"StreamARN,omitempty"`
	StreamModeDetails *StreamModeDetails `json:"StreamModeDetails,omitempty"`
}
