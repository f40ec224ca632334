package delivery

import (
	"encoding/json"

	"github.com/runnel/runnel/internal/streams"
)

// The shapes of the Firehose API (service model Firehose_20150804), as
// the wire layer decodes and encodes them. Members runnel does not
// implement are decoded as raw JSON so that a request naming them is
// refused rather than silently ignored.

// Tag is a delivery stream tag.
type Tag struct {
	Key   *string `json:"Key,omitempty"`
	Value *string `json:"Value,omitempty"`
}

// BufferingHints say when a buffer is written: at SizeInMBs or after
// IntervalInSeconds, whichever comes first.
type BufferingHints struct {
	SizeInMBs         *int32 `json:"SizeInMBs,omitempty"`
	IntervalInSeconds *int32 `json:"IntervalInSeconds,omitempty"`
}

// KMSEncryptionConfig names a KMS key.
type KMSEncryptionConfig struct {
	AWSKMSKeyARN *string `json:"AWSKMSKeyARN,omitempty"`
}

// EncryptionConfiguration is the destination's server-side encryption.
type EncryptionConfiguration struct {
	NoEncryptionConfig  *string              `json:"NoEncryptionConfig,omitempty"`
	KMSEncryptionConfig *KMSEncryptionConfig `json:"KMSEncryptionConfig,omitempty"`
}

// CloudWatchLoggingOptions are accepted and described; runnel logs to its
// own log.
type CloudWatchLoggingOptions struct {
	Enabled       *bool   `json:"Enabled,omitempty"`
	LogGroupName  *string `json:"LogGroupName,omitempty"`
	LogStreamName *string `json:"LogStreamName,omitempty"`
}

// ProcessorParameter is one parameter of a processor.
type ProcessorParameter struct {
	ParameterName  *string `json:"ParameterName,omitempty"`
	ParameterValue *string `json:"ParameterValue,omitempty"`
}

// Processor is one stage of data processing.
type Processor struct {
	Type       *string              `json:"Type,omitempty"`
	Parameters []ProcessorParameter `json:"Parameters,omitempty"`
}

// ProcessingConfiguration is the destination's data processing.
type ProcessingConfiguration struct {
	Enabled    *bool       `json:"Enabled,omitempty"`
	Processors []Processor `json:"Processors,omitempty"`
}

// RetryOptions bound the retries of dynamic partitioning.
type RetryOptions struct {
	DurationInSeconds *int32 `json:"DurationInSeconds,omitempty"`
}

// DynamicPartitioningConfiguration turns dynamic partitioning on.
type DynamicPartitioningConfiguration struct {
	Enabled      *bool         `json:"Enabled,omitempty"`
	RetryOptions *RetryOptions `json:"RetryOptions,omitempty"`
}

// ExtendedS3DestinationConfiguration is an object-store destination: a
// bucket of an S3-compatible store or a directory (a bucket the server's
// configuration maps to one).
type ExtendedS3DestinationConfiguration struct {
	RoleARN                           *string                           `json:"RoleARN,omitempty"`
	BucketARN                         *string                           `json:"BucketARN,omitempty"`
	Prefix                            *string                           `json:"Prefix,omitempty"`
	ErrorOutputPrefix                 *string                           `json:"ErrorOutputPrefix,omitempty"`
	BufferingHints                    *BufferingHints                   `json:"BufferingHints,omitempty"`
	CompressionFormat                 *string                           `json:"CompressionFormat,omitempty"`
	EncryptionConfiguration           *EncryptionConfiguration          `json:"EncryptionConfiguration,omitempty"`
	CloudWatchLoggingOptions          *CloudWatchLoggingOptions         `json:"CloudWatchLoggingOptions,omitempty"`
	ProcessingConfiguration           *ProcessingConfiguration          `json:"ProcessingConfiguration,omitempty"`
	S3BackupMode                      *string                           `json:"S3BackupMode,omitempty"`
	DynamicPartitioningConfiguration  *DynamicPartitioningConfiguration `json:"DynamicPartitioningConfiguration,omitempty"`
	FileExtension                     *string                           `json:"FileExtension,omitempty"`
	CustomTimeZone                    *string                           `json:"CustomTimeZone,omitempty"`
	S3BackupConfiguration             json.RawMessage                   `json:"S3BackupConfiguration,omitempty"`
	S3BackupUpdate                    json.RawMessage                   `json:"S3BackupUpdate,omitempty"`
	DataFormatConversionConfiguration json.RawMessage                   `json:"DataFormatConversionConfiguration,omitempty"`
}

// KinesisStreamSourceConfiguration names the stream a delivery stream of
// type KinesisStreamAsSource reads.
type KinesisStreamSourceConfiguration struct {
	KinesisStreamARN *string `json:"KinesisStreamARN,omitempty"`
	RoleARN          *string `json:"RoleARN,omitempty"`
}

// EncryptionInput is DeliveryStreamEncryptionConfigurationInput.
type EncryptionInput struct {
	KeyARN  *string `json:"KeyARN,omitempty"`
	KeyType *string `json:"KeyType,omitempty"`
}

// DirectPutSourceConfiguration is accepted and described.
type DirectPutSourceConfiguration struct {
	ThroughputHintInMBs *int32 `json:"ThroughputHintInMBs,omitempty"`
}

// CreateDeliveryStreamInput is CreateDeliveryStream's input.
type CreateDeliveryStreamInput struct {
	DeliveryStreamName                         *string                             `json:"DeliveryStreamName,omitempty"`
	DeliveryStreamType                         *string                             `json:"DeliveryStreamType,omitempty"`
	KinesisStreamSourceConfiguration           *KinesisStreamSourceConfiguration   `json:"KinesisStreamSourceConfiguration,omitempty"`
	DeliveryStreamEncryptionConfigurationInput *EncryptionInput                    `json:"DeliveryStreamEncryptionConfigurationInput,omitempty"`
	DirectPutSourceConfiguration               *DirectPutSourceConfiguration       `json:"DirectPutSourceConfiguration,omitempty"`
	S3DestinationConfiguration                 *ExtendedS3DestinationConfiguration `json:"S3DestinationConfiguration,omitempty"`
	ExtendedS3DestinationConfiguration         *ExtendedS3DestinationConfiguration `json:"ExtendedS3DestinationConfiguration,omitempty"`
	Tags                                       []Tag                               `json:"Tags,omitempty"`

	RedshiftDestinationConfiguration                   json.RawMessage `json:"RedshiftDestinationConfiguration,omitempty"`
	ElasticsearchDestinationConfiguration              json.RawMessage `json:"ElasticsearchDestinationConfiguration,omitempty"`
	AmazonopensearchserviceDestinationConfiguration    json.RawMessage `json:"AmazonopensearchserviceDestinationConfiguration,omitempty"`
	AmazonOpenSearchServerlessDestinationConfiguration json.RawMessage `json:"AmazonOpenSearchServerlessDestinationConfiguration,omitempty"`
	SplunkDestinationConfiguration                     json.RawMessage `json:"SplunkDestinationConfiguration,omitempty"`
	HttpEndpointDestinationConfiguration               json.RawMessage `json:"HttpEndpointDestinationConfiguration,omitempty"`
	SnowflakeDestinationConfiguration                  json.RawMessage `json:"SnowflakeDestinationConfiguration,omitempty"`
	IcebergDestinationConfiguration                    json.RawMessage `json:"IcebergDestinationConfiguration,omitempty"`
	MSKSourceConfiguration                             json.RawMessage `json:"MSKSourceConfiguration,omitempty"`
	DatabaseSourceConfiguration                        json.RawMessage `json:"DatabaseSourceConfiguration,omitempty"`
}

// CreateDeliveryStreamOutput is CreateDeliveryStream's output.
type CreateDeliveryStreamOutput struct {
	DeliveryStreamARN string `json:"DeliveryStreamARN"`
}

// NameInput names a delivery stream (DescribeDeliveryStream,
// DeleteDeliveryStream, StopDeliveryStreamEncryption).
type NameInput struct {
	DeliveryStreamName          *string `json:"DeliveryStreamName,omitempty"`
	AllowForceDelete            *bool   `json:"AllowForceDelete,omitempty"`
	Limit                       *int32  `json:"Limit,omitempty"`
	ExclusiveStartDestinationId *string `json:"ExclusiveStartDestinationId,omitempty"`
}

// ListDeliveryStreamsInput is ListDeliveryStreams' input.
type ListDeliveryStreamsInput struct {
	Limit                            *int32  `json:"Limit,omitempty"`
	DeliveryStreamType               *string `json:"DeliveryStreamType,omitempty"`
	ExclusiveStartDeliveryStreamName *string `json:"ExclusiveStartDeliveryStreamName,omitempty"`
}

// ListDeliveryStreamsOutput is ListDeliveryStreams' output.
type ListDeliveryStreamsOutput struct {
	DeliveryStreamNames    []string `json:"DeliveryStreamNames"`
	HasMoreDeliveryStreams bool     `json:"HasMoreDeliveryStreams"`
}

// Record is one record put to a delivery stream.
type Record struct {
	Data []byte `json:"Data"`
}

// PutRecordInput is PutRecord's input.
type PutRecordInput struct {
	DeliveryStreamName *string `json:"DeliveryStreamName,omitempty"`
	Record             *Record `json:"Record,omitempty"`
}

// PutRecordOutput is PutRecord's output.
type PutRecordOutput struct {
	RecordId  string `json:"RecordId"`
	Encrypted bool   `json:"Encrypted"`
}

// PutRecordBatchInput is PutRecordBatch's input.
type PutRecordBatchInput struct {
	DeliveryStreamName *string  `json:"DeliveryStreamName,omitempty"`
	Records            []Record `json:"Records"`
}

// PutRecordBatchResponseEntry is one record's outcome.
type PutRecordBatchResponseEntry struct {
	RecordId     *string `json:"RecordId,omitempty"`
	ErrorCode    *string `json:"ErrorCode,omitempty"`
	ErrorMessage *string `json:"ErrorMessage,omitempty"`
}

// PutRecordBatchOutput is PutRecordBatch's output.
type PutRecordBatchOutput struct {
	FailedPutCount   int32                         `json:"FailedPutCount"`
	Encrypted        bool                          `json:"Encrypted"`
	RequestResponses []PutRecordBatchResponseEntry `json:"RequestResponses"`
}

// UpdateDestinationInput is UpdateDestination's input.
type UpdateDestinationInput struct {
	DeliveryStreamName             *string                             `json:"DeliveryStreamName,omitempty"`
	CurrentDeliveryStreamVersionId *string                             `json:"CurrentDeliveryStreamVersionId,omitempty"`
	DestinationId                  *string                             `json:"DestinationId,omitempty"`
	S3DestinationUpdate            *ExtendedS3DestinationConfiguration `json:"S3DestinationUpdate,omitempty"`
	ExtendedS3DestinationUpdate    *ExtendedS3DestinationConfiguration `json:"ExtendedS3DestinationUpdate,omitempty"`

	RedshiftDestinationUpdate                   json.RawMessage `json:"RedshiftDestinationUpdate,omitempty"`
	ElasticsearchDestinationUpdate              json.RawMessage `json:"ElasticsearchDestinationUpdate,omitempty"`
	AmazonopensearchserviceDestinationUpdate    json.RawMessage `json:"AmazonopensearchserviceDestinationUpdate,omitempty"`
	AmazonOpenSearchServerlessDestinationUpdate json.RawMessage `json:"AmazonOpenSearchServerlessDestinationUpdate,omitempty"`
	SplunkDestinationUpdate                     json.RawMessage `json:"SplunkDestinationUpdate,omitempty"`
	HttpEndpointDestinationUpdate               json.RawMessage `json:"HttpEndpointDestinationUpdate,omitempty"`
	SnowflakeDestinationUpdate                  json.RawMessage `json:"SnowflakeDestinationUpdate,omitempty"`
	IcebergDestinationUpdate                    json.RawMessage `json:"IcebergDestinationUpdate,omitempty"`
}

// TagDeliveryStreamInput is TagDeliveryStream's input.
type TagDeliveryStreamInput struct {
	DeliveryStreamName *string `json:"DeliveryStreamName,omitempty"`
	Tags               []Tag   `json:"Tags"`
}

// UntagDeliveryStreamInput is UntagDeliveryStream's input.
type UntagDeliveryStreamInput struct {
	DeliveryStreamName *string  `json:"DeliveryStreamName,omitempty"`
	TagKeys            []string `json:"TagKeys"`
}

// ListTagsForDeliveryStreamInput is ListTagsForDeliveryStream's input.
type ListTagsForDeliveryStreamInput struct {
	DeliveryStreamName   *string `json:"DeliveryStreamName,omitempty"`
	ExclusiveStartTagKey *string `json:"ExclusiveStartTagKey,omitempty"`
	Limit                *int32  `json:"Limit,omitempty"`
}

// ListTagsForDeliveryStreamOutput is ListTagsForDeliveryStream's output.
type ListTagsForDeliveryStreamOutput struct {
	Tags        []Tag `json:"Tags"`
	HasMoreTags bool  `json:"HasMoreTags"`
}

// StartEncryptionInput is StartDeliveryStreamEncryption's input.
type StartEncryptionInput struct {
	DeliveryStreamName                         *string          `json:"DeliveryStreamName,omitempty"`
	DeliveryStreamEncryptionConfigurationInput *EncryptionInput `json:"DeliveryStreamEncryptionConfigurationInput,omitempty"`
}

// DescribeDeliveryStreamOutput is DescribeDeliveryStream's output.
type DescribeDeliveryStreamOutput struct {
	DeliveryStreamDescription *DeliveryStreamDescription `json:"DeliveryStreamDescription"`
}

// FailureDescription says why delivery fails.
type FailureDescription struct {
	Type    string `json:"Type"`
	Details string `json:"Details"`
}

// EncryptionDescription is DeliveryStreamEncryptionConfiguration.
type EncryptionDescription struct {
	KeyARN             *string             `json:"KeyARN,omitempty"`
	KeyType            *string             `json:"KeyType,omitempty"`
	Status             string              `json:"Status"`
	FailureDescription *FailureDescription `json:"FailureDescription,omitempty"`
}

// KinesisStreamSourceDescription describes a KinesisStreamAsSource source.
type KinesisStreamSourceDescription struct {
	KinesisStreamARN       string             `json:"KinesisStreamARN"`
	RoleARN                string             `json:"RoleARN"`
	DeliveryStartTimestamp *streams.Timestamp `json:"DeliveryStartTimestamp,omitempty"`
}

// SourceDescription describes a delivery stream's source.
type SourceDescription struct {
	KinesisStreamSourceDescription *KinesisStreamSourceDescription `json:"KinesisStreamSourceDescription,omitempty"`
	DirectPutSourceDescription     *DirectPutSourceConfiguration   `json:"DirectPutSourceDescription,omitempty"`
}

// DestinationDescription describes the destination.
type DestinationDescription struct {
	DestinationId                    string                              `json:"DestinationId"`
	ExtendedS3DestinationDescription *ExtendedS3DestinationConfiguration `json:"ExtendedS3DestinationDescription,omitempty"`
	S3DestinationDescription         *ExtendedS3DestinationConfiguration `json:"S3DestinationDescription,omitempty"`
}

// DeliveryStats are runnel's delivery counters, an extension of the
// description: what was delivered and how fresh the destination is.
type DeliveryStats struct {
	RecordsDelivered int64 `json:"RecordsDelivered"`
	BytesDelivered   int64 `json:"BytesDelivered"`
	ObjectsDelivered int64 `json:"ObjectsDelivered"`
	// FreshnessMillis is the age of the oldest record not yet delivered,
	// 0 when everything is delivered.
	FreshnessMillis int64 `json:"FreshnessMillis"`
}

// DeliveryStreamDescription describes a delivery stream.
type DeliveryStreamDescription struct {
	DeliveryStreamName                    string                   `json:"DeliveryStreamName"`
	DeliveryStreamARN                     string                   `json:"DeliveryStreamARN"`
	DeliveryStreamStatus                  string                   `json:"DeliveryStreamStatus"`
	FailureDescription                    *FailureDescription      `json:"FailureDescription,omitempty"`
	DeliveryStreamEncryptionConfiguration *EncryptionDescription   `json:"DeliveryStreamEncryptionConfiguration,omitempty"`
	DeliveryStreamType                    string                   `json:"DeliveryStreamType"`
	VersionId                             string                   `json:"VersionId"`
	CreateTimestamp                       streams.Timestamp        `json:"CreateTimestamp"`
	LastUpdateTimestamp                   *streams.Timestamp       `json:"LastUpdateTimestamp,omitempty"`
	Source                                *SourceDescription       `json:"Source,omitempty"`
	Destinations                          []DestinationDescription `json:"Destinations"`
	HasMoreDestinations                   bool                     `json:"HasMoreDestinations"`
	RunnelDeliveryStats                   *DeliveryStats           `json:"RunnelDeliveryStats,omitempty"`
}
