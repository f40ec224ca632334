package kinesisapi

import (
	"context"
	"reflect"

	"github.com/runnel/runnel/internal/metrics"
	"github.com/runnel/runnel/internal/streams"
)

// Backend is what the wire layer needs from the service: one method per
// Kinesis operation, taking the decoded, validated input. *streams.Service
// implements it. Errors the client should see are *streams.Error; any other
// error is an internal fault. A method must not keep an input's byte slices
// (PutRecords' Data) after it returns: the handler reuses their memory.
type Backend interface {
	AddTagsToStream(ctx context.Context, in *streams.AddTagsToStreamInput) error
	CreateStream(ctx context.Context, in *streams.CreateStreamInput) error
	DecreaseStreamRetentionPeriod(ctx context.Context, in *streams.DecreaseStreamRetentionPeriodInput) error
	DeleteResourcePolicy(ctx context.Context, in *streams.DeleteResourcePolicyInput) error
	DeleteStream(ctx context.Context, in *streams.DeleteStreamInput) error
	DescribeAccountSettings(ctx context.Context, in *streams.DescribeAccountSettingsInput) (*streams.DescribeAccountSettingsOutput, error)
	DescribeLimits(ctx context.Context, in *streams.DescribeLimitsInput) (*streams.DescribeLimitsOutput, error)
	DescribeStream(ctx context.Context, in *streams.DescribeStreamInput) (*streams.DescribeStreamOutput, error)
	DescribeStreamSummary(ctx context.Context, in *streams.DescribeStreamSummaryInput) (*streams.DescribeStreamSummaryOutput, error)
	DisableEnhancedMonitoring(ctx context.Context, in *streams.EnhancedMonitoringInput) (*streams.EnhancedMonitoringOutput, error)
	EnableEnhancedMonitoring(ctx context.Context, in *streams.EnhancedMonitoringInput) (*streams.EnhancedMonitoringOutput, error)
	GetRecords(ctx context.Context, in *streams.GetRecordsInput) (*streams.GetRecordsOutput, error)
	GetResourcePolicy(ctx context.Context, in *streams.GetResourcePolicyInput) (*streams.GetResourcePolicyOutput, error)
	GetShardIterator(ctx context.Context, in *streams.GetShardIteratorInput) (*streams.GetShardIteratorOutput, error)
	IncreaseStreamRetentionPeriod(ctx context.Context, in *streams.IncreaseStreamRetentionPeriodInput) error
	ListShards(ctx context.Context, in *streams.ListShardsInput) (*streams.ListShardsOutput, error)
	ListStreams(ctx context.Context, in *streams.ListStreamsInput) (*streams.ListStreamsOutput, error)
	ListTagsForResource(ctx context.Context, in *streams.ListTagsForResourceInput) (*streams.ListTagsForResourceOutput, error)
	ListTagsForStream(ctx context.Context, in *streams.ListTagsForStreamInput) (*streams.ListTagsForStreamOutput, error)
	PutRecord(ctx context.Context, in *streams.PutRecordInput) (*streams.PutRecordOutput, error)
	PutRecords(ctx context.Context, in *streams.PutRecordsInput) (*streams.PutRecordsOutput, error)
	PutResourcePolicy(ctx context.Context, in *streams.PutResourcePolicyInput) error
	RemoveTagsFromStream(ctx context.Context, in *streams.RemoveTagsFromStreamInput) error
	StartStreamEncryption(ctx context.Context, in *streams.StreamEncryptionInput) error
	StopStreamEncryption(ctx context.Context, in *streams.StreamEncryptionInput) error
	TagResource(ctx context.Context, in *streams.TagResourceInput) error
	UntagResource(ctx context.Context, in *streams.UntagResourceInput) error
	UpdateMaxRecordSize(ctx context.Context, in *streams.UpdateMaxRecordSizeInput) error
}

// Operations whose inputs are modeled but which a Backend may not offer yet.
// The handler serves them when the Backend has the method and answers
// UnknownOperationException otherwise.
type (
	shardMerger interface {
		MergeShards(ctx context.Context, in *streams.MergeShardsInput) error
	}
	shardSplitter interface {
		SplitShard(ctx context.Context, in *streams.SplitShardInput) error
	}
	shardCountUpdater interface {
		UpdateShardCount(ctx context.Context, in *streams.UpdateShardCountInput) (*streams.UpdateShardCountOutput, error)
	}
	streamModeUpdater interface {
		UpdateStreamMode(ctx context.Context, in *streams.UpdateStreamModeInput) error
	}
	consumerRegistrar interface {
		RegisterStreamConsumer(ctx context.Context, in *streams.RegisterStreamConsumerInput) (*streams.RegisterStreamConsumerOutput, error)
	}
	consumerDescriber interface {
		DescribeStreamConsumer(ctx context.Context, in *streams.DescribeStreamConsumerInput) (*streams.DescribeStreamConsumerOutput, error)
	}
	consumerLister interface {
		ListStreamConsumers(ctx context.Context, in *streams.ListStreamConsumersInput) (*streams.ListStreamConsumersOutput, error)
	}
	consumerDeregistrar interface {
		DeregisterStreamConsumer(ctx context.Context, in *streams.DeregisterStreamConsumerInput) error
	}
	accountSettingsUpdater interface {
		UpdateAccountSettings(ctx context.Context, in *streams.UpdateAccountSettingsInput) (*streams.UpdateAccountSettingsOutput, error)
	}
	warmThroughputUpdater interface {
		UpdateStreamWarmThroughput(ctx context.Context, in *streams.UpdateStreamWarmThroughputInput) (*streams.UpdateStreamWarmThroughputOutput, error)
	}
	distributionUpdater interface {
		UpdateStreamRecordDistributionStrategy(ctx context.Context, in *streams.UpdateStreamRecordDistributionStrategyInput) error
	}
)

// operation is one entry of the dispatch table.
type operation struct {
	name string
	// input is the shape of the input, bound to the Go input type.
	input shape
	// newInput returns a pointer to a zero input.
	newInput func() any
	// hasOutput reports whether the operation answers with a body.
	hasOutput bool
	// call runs the operation on b. A nil result with a nil error means an
	// empty output.
	call func(ctx context.Context, b Backend, in any) (any, error)
	// stream, when set, serves the operation instead of call and writes
	// the response itself (SubscribeToShard's event stream, subscribe.go).
	stream func(h *Handler, x *exchange, in any)
	// timed is set for the operations whose latency is a metric, latency
	// names it (metrics.go).
	timed   bool
	latency metrics.Op
}

// notImplemented answers an operation the Backend does not offer.
func notImplemented(name string) error {
	return newError(ErrUnknownOperation, "runnel does not implement "+name+" yet")
}

// withOutput declares an operation that answers with an output structure.
func withOutput[B any, I any, O any](name string, in shape, fn func(B, context.Context, *I) (*O, error)) operation {
	in.bind(reflect.TypeFor[I]())
	return operation{
		name:      name,
		input:     in,
		newInput:  func() any { return new(I) },
		hasOutput: true,
		call: func(ctx context.Context, b Backend, x any) (any, error) {
			impl, ok := b.(B)
			if !ok {
				return nil, notImplemented(name)
			}
			out, err := fn(impl, ctx, x.(*I))
			if err != nil || out == nil {
				return nil, err
			}
			return out, nil
		},
	}
}

// noOutput declares an operation whose success has no body.
func noOutput[B any, I any](name string, in shape, fn func(B, context.Context, *I) error) operation {
	in.bind(reflect.TypeFor[I]())
	return operation{
		name:     name,
		input:    in,
		newInput: func() any { return new(I) },
		call: func(ctx context.Context, b Backend, x any) (any, error) {
			impl, ok := b.(B)
			if !ok {
				return nil, notImplemented(name)
			}
			return nil, fn(impl, ctx, x.(*I))
		},
	}
}

// Member shapes of the service model (botocore kinesis 2013-12-02), shared by
// the operations below.
var (
	namePattern    = `[a-zA-Z0-9_.-]+`
	streamName     = str().length(1, 128).matching(namePattern)
	streamARN      = str().length(1, 2048).matching(`arn:aws.*:kinesis:.*:\d{12}:stream/\S+`)
	streamID       = str().length(1, 24).matching(`[a-z0-9]{20}-[a-z0-9]{3}`)
	resourceARN    = str().length(1, 2048).matching(`arn:aws.*:kinesis:.*:\d{12}:.*stream/\S+`)
	consumerARN    = str().length(1, 2048).matching(`^(arn):aws.*:kinesis:.*:\d{12}:.*stream\/[a-zA-Z0-9_.-]+\/consumer\/[a-zA-Z0-9_.-]+:[0-9]+`)
	consumerName   = str().length(1, 128).matching(namePattern)
	shardID        = str().length(1, 128).matching(namePattern)
	nextToken      = str().length(1, 1048576)
	hashKey        = str().matching(`0|([1-9]\d{0,38})`)
	sequenceNumber = str().matching(`0|([1-9]\d{0,128})`)
	partitionKey   = str().length(1, 256)
	data           = blob().length(0, 10485760)
	tagKey         = str().length(1, 128)
	tagValue       = str().length(0, 256)
	tagMap         = mapOf(tagKey, tagValue).length(1, 200)
	tagKeyList     = listOf(tagKey).length(1, 50)
	keyID          = str().length(1, 2048)
	positiveInt    = integer().between(1, noBound)
	naturalInt     = integer().between(0, noBound)
	maxRecordSize  = integer().between(1024, 10240)
	// The order Kinesis prints this enum in (observed; not the model's).
	shardIteratorType          = str().oneOf("AFTER_SEQUENCE_NUMBER", "LATEST", "AT_TIMESTAMP", "AT_SEQUENCE_NUMBER", "TRIM_HORIZON")
	streamMode                 = str().oneOf("PROVISIONED", "ON_DEMAND")
	encryptionType             = str().oneOf("NONE", "KMS")
	recordDistributionStrategy = str().oneOf("AUTO", "USER_PARTITION_KEY")
	metricsNameList            = listOf(str().oneOf("IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
		"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded", "IteratorAgeMilliseconds", "ALL")).length(1, 7)
	streamModeDetails = structure("StreamModeDetails", field("StreamMode", streamMode.req()))
)

// operations is the dispatch table, keyed by operation name.
var operations = func() map[string]*operation {
	ops := []operation{
		noOutput("AddTagsToStream", structure("AddTagsToStreamInput",
			field("StreamARN", streamARN),
			field("StreamName", streamName),
			field("Tags", tagMap.req()),
		), Backend.AddTagsToStream),
		noOutput("CreateStream", structure("CreateStreamInput",
			field("MaxRecordSizeInKiB", maxRecordSize),
			field("RecordDistributionStrategy", recordDistributionStrategy),
			field("ShardCount", positiveInt),
			field("StreamModeDetails", streamModeDetails),
			field("StreamName", streamName.req()),
			field("Tags", tagMap),
			field("WarmThroughputMiBps", naturalInt),
		), Backend.CreateStream),
		noOutput("DecreaseStreamRetentionPeriod", retentionInput(), Backend.DecreaseStreamRetentionPeriod),
		noOutput("DeleteResourcePolicy", structure("DeleteResourcePolicyInput",
			field("ResourceARN", resourceARN.req()),
		), Backend.DeleteResourcePolicy),
		noOutput("DeleteStream", structure("DeleteStreamInput",
			field("EnforceConsumerDeletion", boolean()),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
		), Backend.DeleteStream),
		noOutput("DeregisterStreamConsumer", consumerInput("DeregisterStreamConsumerInput"), consumerDeregistrar.DeregisterStreamConsumer),
		withOutput("DescribeAccountSettings", structure("DescribeAccountSettingsInput"), Backend.DescribeAccountSettings),
		withOutput("DescribeLimits", structure("DescribeLimitsInput"), Backend.DescribeLimits),
		withOutput("DescribeStream", structure("DescribeStreamInput",
			field("ExclusiveStartShardId", shardID),
			field("Limit", integer().between(1, 10000)),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
		), Backend.DescribeStream),
		withOutput("DescribeStreamConsumer", consumerInput("DescribeStreamConsumerInput"), consumerDescriber.DescribeStreamConsumer),
		withOutput("DescribeStreamSummary", structure("DescribeStreamSummaryInput",
			field("StreamARN", streamARN),
			field("StreamName", streamName),
		), Backend.DescribeStreamSummary),
		withOutput("DisableEnhancedMonitoring", monitoringInput("DisableEnhancedMonitoringInput"), Backend.DisableEnhancedMonitoring),
		withOutput("EnableEnhancedMonitoring", monitoringInput("EnableEnhancedMonitoringInput"), Backend.EnableEnhancedMonitoring),
		withOutput("GetRecords", structure("GetRecordsInput",
			field("Limit", integer().between(1, 10000)),
			field("ShardIterator", str().length(1, 512).req()),
			field("StreamARN", streamARN),
		), Backend.GetRecords),
		withOutput("GetResourcePolicy", structure("GetResourcePolicyInput",
			field("ResourceARN", resourceARN.req()),
		), Backend.GetResourcePolicy),
		withOutput("GetShardIterator", structure("GetShardIteratorInput",
			field("ShardId", shardID.req()),
			field("ShardIteratorType", shardIteratorType.req()),
			field("StartingSequenceNumber", sequenceNumber),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
			field("Timestamp", timestamp()),
		), Backend.GetShardIterator),
		noOutput("IncreaseStreamRetentionPeriod", retentionInput(), Backend.IncreaseStreamRetentionPeriod),
		withOutput("ListShards", structure("ListShardsInput",
			field("ExclusiveStartShardId", shardID),
			field("MaxResults", integer().between(1, 10000)),
			field("NextToken", nextToken),
			field("ShardFilter", structure("ShardFilter",
				field("ShardId", shardID),
				field("Timestamp", timestamp()),
				field("Type", str().oneOf("AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST", "AT_TIMESTAMP", "FROM_TIMESTAMP").req()),
			)),
			field("StreamARN", streamARN),
			field("StreamCreationTimestamp", timestamp()),
			field("StreamName", streamName),
		), Backend.ListShards),
		withOutput("ListStreamConsumers", structure("ListStreamConsumersInput",
			field("MaxResults", integer().between(1, 10000)),
			field("NextToken", nextToken),
			field("StreamARN", streamARN.req()),
			field("StreamCreationTimestamp", timestamp()),
		), consumerLister.ListStreamConsumers),
		withOutput("ListStreams", structure("ListStreamsInput",
			field("ExclusiveStartStreamName", streamName),
			field("Limit", integer().between(1, 10000)),
			field("NextToken", nextToken),
		), Backend.ListStreams),
		withOutput("ListTagsForResource", structure("ListTagsForResourceInput",
			field("ResourceARN", resourceARN.req()),
		), Backend.ListTagsForResource),
		withOutput("ListTagsForStream", structure("ListTagsForStreamInput",
			field("ExclusiveStartTagKey", tagKey),
			field("Limit", integer().between(1, 50)),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
		), Backend.ListTagsForStream),
		noOutput("MergeShards", structure("MergeShardsInput",
			field("AdjacentShardToMerge", shardID.req()),
			field("ShardToMerge", shardID.req()),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
		), shardMerger.MergeShards),
		withOutput("PutRecord", structure("PutRecordInput",
			field("Data", data.req()),
			field("ExplicitHashKey", hashKey),
			field("PartitionKey", partitionKey),
			field("SequenceNumberForOrdering", sequenceNumber),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
		), Backend.PutRecord),
		withOutput("PutRecords", structure("PutRecordsInput",
			field("Records", listOf(structure("PutRecordsRequestEntry",
				field("PartitionKey", partitionKey),
				field("ExplicitHashKey", hashKey),
				field("Data", data.req()),
			)).length(1, 500).req().sure(putEntriesValid)),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
		), Backend.PutRecords),
		noOutput("PutResourcePolicy", structure("PutResourcePolicyInput",
			field("Policy", str().req()),
			field("ResourceARN", resourceARN.req()),
		), Backend.PutResourcePolicy),
		withOutput("RegisterStreamConsumer", structure("RegisterStreamConsumerInput",
			field("ConsumerName", consumerName.req()),
			field("StreamARN", streamARN.req()),
			field("Tags", tagMap),
		), consumerRegistrar.RegisterStreamConsumer),
		noOutput("RemoveTagsFromStream", structure("RemoveTagsFromStreamInput",
			field("StreamARN", streamARN),
			field("StreamName", streamName),
			field("TagKeys", tagKeyList.req()),
		), Backend.RemoveTagsFromStream),
		noOutput("SplitShard", structure("SplitShardInput",
			field("NewStartingHashKey", hashKey.req()),
			field("ShardToSplit", shardID.req()),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
		), shardSplitter.SplitShard),
		noOutput("StartStreamEncryption", encryptionInput(), Backend.StartStreamEncryption),
		noOutput("StopStreamEncryption", encryptionInput(), Backend.StopStreamEncryption),
		noOutput("TagResource", structure("TagResourceInput",
			field("ResourceARN", resourceARN.req()),
			field("Tags", tagMap.req()),
		), Backend.TagResource),
		noOutput("UntagResource", structure("UntagResourceInput",
			field("ResourceARN", resourceARN.req()),
			field("TagKeys", tagKeyList.req()),
		), Backend.UntagResource),
		noOutput("UpdateMaxRecordSize", structure("UpdateMaxRecordSizeInput",
			field("MaxRecordSizeInKiB", maxRecordSize.req()),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
		), Backend.UpdateMaxRecordSize),
		withOutput("UpdateShardCount", structure("UpdateShardCountInput",
			field("ScalingType", str().oneOf("UNIFORM_SCALING").req()),
			field("StreamARN", streamARN),
			field("StreamName", streamName),
			field("TargetShardCount", positiveInt.req()),
		), shardCountUpdater.UpdateShardCount),
		noOutput("UpdateStreamMode", structure("UpdateStreamModeInput",
			field("StreamARN", streamARN.req()),
			field("StreamModeDetails", streamModeDetails.req()),
		), streamModeUpdater.UpdateStreamMode),
		withOutput("UpdateAccountSettings", structure("UpdateAccountSettingsInput",
			field("MinimumThroughputBillingCommitment", structure("MinimumThroughputBillingCommitmentInput",
				field("Status", str().oneOf("ENABLED", "DISABLED").req()),
			).req()),
		), accountSettingsUpdater.UpdateAccountSettings),
		withOutput("UpdateStreamWarmThroughput", structure("UpdateStreamWarmThroughputInput",
			field("StreamARN", streamARN),
			field("StreamId", streamID),
			field("StreamName", streamName),
			field("WarmThroughputMiBps", naturalInt.req()),
		), warmThroughputUpdater.UpdateStreamWarmThroughput),
		noOutput("UpdateStreamRecordDistributionStrategy", structure("UpdateStreamRecordDistributionStrategyInput",
			field("RecordDistributionStrategy", recordDistributionStrategy.req()),
			field("StreamARN", streamARN.req()),
			field("StreamId", streamID),
		), distributionUpdater.UpdateStreamRecordDistributionStrategy),
	}
	m := make(map[string]*operation, len(ops))
	for i := range ops {
		m[ops[i].name] = &ops[i]
	}
	return m
}()

// knownButUnserved lists operations of the current Kinesis API that runnel
// recognises but does not serve yet; they answer UnknownOperationException
// with a message saying so, rather than the bare "unknown operation".
var knownButUnserved = map[string]bool{
	"CreateChannel":   true,
	"DeleteChannel":   true,
	"DescribeChannel": true,
	"ListChannels":    true,
	"UpdateChannel":   true,
}

func retentionInput() shape {
	return structure("DecreaseStreamRetentionPeriodInput",
		field("RetentionPeriodHours", integer().req()),
		field("StreamARN", streamARN),
		field("StreamName", streamName),
	)
}

func consumerInput(class string) shape {
	return structure(class,
		field("ConsumerARN", consumerARN),
		field("ConsumerName", consumerName),
		field("StreamARN", streamARN),
	)
}

func monitoringInput(class string) shape {
	return structure(class,
		field("ShardLevelMetrics", metricsNameList.req()),
		field("StreamARN", streamARN),
		field("StreamName", streamName),
	)
}

func encryptionInput() shape {
	return structure("StartStreamEncryptionInput",
		field("EncryptionType", encryptionType.req()),
		field("KeyId", keyID.req()),
		field("StreamARN", streamARN),
		field("StreamName", streamName),
	)
}
