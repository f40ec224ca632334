package iam

// ResourceType is the kind of resource a Kinesis operation is authorized
// on, from AWS's "Actions, resources, and condition keys for Amazon Kinesis
// Data Streams" (Service Authorization Reference).
type ResourceType uint8

// Resource types.
const (
	// OnAccount operations name no resource: the policy's Resource must
	// match "*" (ListStreams, DescribeLimits, the account settings).
	OnAccount ResourceType = iota + 1
	// OnStream operations act on the stream ARN
	// arn:aws:kinesis:<region>:<account>:stream/<name>.
	OnStream
	// OnConsumer operations act on the consumer ARN
	// arn:aws:kinesis:<region>:<account>:stream/<name>/consumer/<consumer>:<created>.
	OnConsumer
	// OnStreamOrConsumer operations take a ResourceARN naming either
	// (tags by ARN, resource policies).
	OnStreamOrConsumer
)

// kinesisActions maps each Kinesis operation runnel serves to the resource
// it is authorized on. The IAM action is "kinesis:" + the operation name.
var kinesisActions = map[string]ResourceType{
	"AddTagsToStream":                        OnStream,
	"CreateStream":                           OnStream,
	"DecreaseStreamRetentionPeriod":          OnStream,
	"DeleteResourcePolicy":                   OnStreamOrConsumer,
	"DeleteStream":                           OnStream,
	"DeregisterStreamConsumer":               OnConsumer,
	"DescribeAccountSettings":                OnAccount,
	"DescribeLimits":                         OnAccount,
	"DescribeStream":                         OnStream,
	"DescribeStreamConsumer":                 OnConsumer,
	"DescribeStreamSummary":                  OnStream,
	"DisableEnhancedMonitoring":              OnStream,
	"EnableEnhancedMonitoring":               OnStream,
	"GetRecords":                             OnStream,
	"GetResourcePolicy":                      OnStreamOrConsumer,
	"GetShardIterator":                       OnStream,
	"IncreaseStreamRetentionPeriod":          OnStream,
	"ListShards":                             OnStream,
	"ListStreamConsumers":                    OnStream,
	"ListStreams":                            OnAccount,
	"ListTagsForResource":                    OnStreamOrConsumer,
	"ListTagsForStream":                      OnStream,
	"MergeShards":                            OnStream,
	"PutRecord":                              OnStream,
	"PutRecords":                             OnStream,
	"PutResourcePolicy":                      OnStreamOrConsumer,
	"RegisterStreamConsumer":                 OnStream,
	"RemoveTagsFromStream":                   OnStream,
	"SplitShard":                             OnStream,
	"StartStreamEncryption":                  OnStream,
	"StopStreamEncryption":                   OnStream,
	"SubscribeToShard":                       OnConsumer,
	"TagResource":                            OnStreamOrConsumer,
	"UntagResource":                          OnStreamOrConsumer,
	"UpdateAccountSettings":                  OnAccount,
	"UpdateMaxRecordSize":                    OnStream,
	"UpdateShardCount":                       OnStream,
	"UpdateStreamMode":                       OnStream,
	"UpdateStreamRecordDistributionStrategy": OnStream,
	"UpdateStreamWarmThroughput":             OnStream,
}

// ownerOnly lists the operations only principals of the owning account may
// call, whatever a resource policy says: Kinesis documents that the caller
// of PutResourcePolicy (and of its Get and Delete) must "belong to the
// owner's account".
var ownerOnly = map[string]bool{
	"PutResourcePolicy":    true,
	"GetResourcePolicy":    true,
	"DeleteResourcePolicy": true,
}

// KinesisResourceType returns the resource type a Kinesis operation is
// authorized on; ok is false for an operation not in the table.
func KinesisResourceType(op string) (t ResourceType, ok bool) {
	t, ok = kinesisActions[op]
	return t, ok
}
