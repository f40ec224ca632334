package delivery

import (
	"context"
	"time"
)

// Compression formats and the file extensions Firehose gives them.
var compressionExt = map[string]string{
	"UNCOMPRESSED":  "",
	"GZIP":          ".gz",
	"ZIP":           ".zip",
	"Snappy":        ".snappy",
	"HADOOP_SNAPPY": ".hsnappy",
}

// normalizeDest checks a destination configuration and returns it with
// Firehose's defaults filled in, as DescribeDeliveryStream shows it.
// member names the configuration in validation messages.
func (s *Service) normalizeDest(ctx context.Context, in *ExtendedS3DestinationConfiguration, member string) (*ExtendedS3DestinationConfiguration, error) {
	d := *in
	if d.RoleARN == nil {
		return nil, validation("null", member+".roleARN", "Member must not be null")
	}
	if n := len(*d.RoleARN); n < 1 || n > 512 || len(*d.RoleARN) < 4 || (*d.RoleARN)[:4] != "arn:" {
		return nil, validation(*d.RoleARN, member+".roleARN", "Member must satisfy regular expression pattern: arn:.*")
	}
	if d.BucketARN == nil {
		return nil, validation("null", member+".bucketARN", "Member must not be null")
	}
	if n := len(*d.BucketARN); n < 1 || n > 2048 || n < 4 || (*d.BucketARN)[:4] != "arn:" {
		return nil, validation(*d.BucketARN, member+".bucketARN", "Member must satisfy regular expression pattern: arn:.*")
	}
	if _, ok := bucketName(*d.BucketARN); !ok {
		return nil, errorf(CodeInvalidArgument, "BucketARN %s is not an S3 bucket ARN (arn:aws:s3:::bucket).", *d.BucketARN)
	}
	if s.opts.Resolver == nil {
		return nil, errorf(CodeInvalidArgument, "Bucket %s is not configured: this server has no buckets (see runnel serve --buckets-dir).", *d.BucketARN)
	}
	if _, err := s.opts.Resolver.Resolve(ctx, *d.BucketARN); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		v    *string
		name string
	}{{d.Prefix, "prefix"}, {d.ErrorOutputPrefix, "errorOutputPrefix"}} {
		if p.v != nil && len(*p.v) > 1024 {
			return nil, validation(*p.v, member+"."+p.name, "Member must have length less than or equal to 1024")
		}
	}
	dynamic := isDynamic(&d)
	if dynamic && (d.ErrorOutputPrefix == nil || *d.ErrorOutputPrefix == "") {
		return nil, errorf(CodeInvalidArgument, "ErrorOutputPrefix is required when dynamic partitioning is enabled.")
	}
	if _, err := compilePrefixes(d.Prefix, d.ErrorOutputPrefix, dynamic); err != nil {
		return nil, err
	}
	if r := d.DynamicPartitioningConfiguration; r != nil && r.RetryOptions != nil && r.RetryOptions.DurationInSeconds != nil {
		if v := *r.RetryOptions.DurationInSeconds; v < 0 || v > 7200 {
			return nil, validation(v, member+".dynamicPartitioningConfiguration.retryOptions.durationInSeconds", "Member must have value between 0 and 7200")
		}
	}
	bh := BufferingHints{SizeInMBs: ptr(int32(5)), IntervalInSeconds: ptr(int32(300))}
	if dynamic {
		bh.SizeInMBs = ptr(int32(128))
	}
	if in.BufferingHints != nil {
		if v := in.BufferingHints.SizeInMBs; v != nil {
			if *v < 1 || *v > 128 {
				return nil, validation(*v, member+".bufferingHints.sizeInMBs", "Member must have value between 1 and 128")
			}
			bh.SizeInMBs = v
		}
		if v := in.BufferingHints.IntervalInSeconds; v != nil {
			if *v < 0 || *v > 900 {
				return nil, validation(*v, member+".bufferingHints.intervalInSeconds", "Member must have value between 0 and 900")
			}
			bh.IntervalInSeconds = v
		}
	}
	if dynamic && *bh.SizeInMBs < 64 {
		return nil, errorf(CodeInvalidArgument, "BufferingHints.SizeInMBs must be at least 64 when dynamic partitioning is enabled.")
	}
	if dynamic && *bh.IntervalInSeconds == 0 {
		return nil, errorf(CodeInvalidArgument, "BufferingHints.IntervalInSeconds must be at least 1 when dynamic partitioning is enabled: zero buffering is not available with it.")
	}
	d.BufferingHints = &bh
	if d.CompressionFormat == nil {
		d.CompressionFormat = ptr("UNCOMPRESSED")
	}
	if _, ok := compressionExt[*d.CompressionFormat]; !ok {
		return nil, validation(*d.CompressionFormat, member+".compressionFormat", "Member must satisfy enum value set: [UNCOMPRESSED, GZIP, ZIP, Snappy, HADOOP_SNAPPY]")
	}
	if d.EncryptionConfiguration == nil {
		d.EncryptionConfiguration = &EncryptionConfiguration{NoEncryptionConfig: ptr("NoEncryption")}
	}
	if e := d.EncryptionConfiguration; e.NoEncryptionConfig != nil && *e.NoEncryptionConfig != "NoEncryption" {
		return nil, validation(*e.NoEncryptionConfig, member+".encryptionConfiguration.noEncryptionConfig", "Member must satisfy enum value set: [NoEncryption]")
	}
	if e := d.EncryptionConfiguration; e.NoEncryptionConfig != nil && e.KMSEncryptionConfig != nil {
		return nil, errorf(CodeInvalidArgument, "EncryptionConfiguration may have NoEncryptionConfig or KMSEncryptionConfig, not both.")
	}
	if d.CloudWatchLoggingOptions == nil {
		d.CloudWatchLoggingOptions = &CloudWatchLoggingOptions{Enabled: ptr(false)}
	}
	if d.S3BackupMode == nil {
		d.S3BackupMode = ptr("Disabled")
	}
	switch *d.S3BackupMode {
	case "Disabled":
	case "Enabled":
		return nil, errorf(CodeInvalidArgument, "S3BackupMode Enabled is not supported by this server.")
	default:
		return nil, validation(*d.S3BackupMode, member+".s3BackupMode", "Member must satisfy enum value set: [Disabled, Enabled]")
	}
	if isSet(d.S3BackupConfiguration) || isSet(d.S3BackupUpdate) {
		return nil, errorf(CodeInvalidArgument, "S3 backup is not supported by this server.")
	}
	if isSet(d.DataFormatConversionConfiguration) {
		return nil, errorf(CodeInvalidArgument, "Data format conversion is not supported by this server.")
	}
	d.S3BackupConfiguration, d.S3BackupUpdate, d.DataFormatConversionConfiguration = nil, nil, nil
	pc, err := processing(d.ProcessingConfiguration, dynamic)
	if err != nil {
		return nil, err
	}
	if p, _ := compilePrefixes(d.Prefix, d.ErrorOutputPrefix, dynamic); len(p.prefix.keys) > 0 && pc.query == nil {
		return nil, errorf(CodeInvalidArgument, "Prefix uses partitionKeyFromQuery, which needs a MetadataExtraction processor.")
	}
	if d.CustomTimeZone != nil && *d.CustomTimeZone != "" {
		if _, err := time.LoadLocation(*d.CustomTimeZone); err != nil {
			return nil, errorf(CodeInvalidArgument, "CustomTimeZone %s is not a known time zone.", *d.CustomTimeZone)
		}
	}
	if d.FileExtension != nil && *d.FileExtension != "" {
		ext := *d.FileExtension
		ok := len(ext) <= 128 && ext[0] == '.' && len(ext) > 1
		for i := 1; ok && i < len(ext); i++ {
			c := ext[i]
			ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '!' || c == '-' || c == '_' || c == '.' || c == '*' || c == '\'' || c == '(' || c == ')'
		}
		if !ok {
			return nil, validation(ext, member+".fileExtension", `Member must satisfy regular expression pattern: ^$|\.[0-9a-z!\-_.*'()]+`)
		}
	}
	return &d, nil
}

// isDynamic reports whether dynamic partitioning is on.
func isDynamic(d *ExtendedS3DestinationConfiguration) bool {
	p := d.DynamicPartitioningConfiguration
	return p != nil && p.Enabled != nil && *p.Enabled
}
