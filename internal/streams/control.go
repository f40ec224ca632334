package streams

import (
	"context"
	"slices"
	"time"
)

// checkMaxRecordKiB checks a MaxRecordSizeInKiB value.
func checkMaxRecordKiB(v int32) error {
	if v < minMaxRecordKiB {
		return errorf(CodeValidation, "1 validation error detected: Value '%d' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value greater than or equal to %d", v, minMaxRecordKiB)
	}
	if v > maxMaxRecordKiB {
		return errorf(CodeValidation, "1 validation error detected: Value '%d' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value less than or equal to %d", v, maxMaxRecordKiB)
	}
	return nil
}

// IncreaseStreamRetentionPeriod lengthens how long a stream keeps records.
func (s *Service) IncreaseStreamRetentionPeriod(ctx context.Context, in *IncreaseStreamRetentionPeriodInput) error {
	return s.setRetention(ctx, in, true)
}

// DecreaseStreamRetentionPeriod shortens how long a stream keeps records.
func (s *Service) DecreaseStreamRetentionPeriod(ctx context.Context, in *DecreaseStreamRetentionPeriodInput) error {
	return s.setRetention(ctx, in, false)
}

func (s *Service) setRetention(ctx context.Context, in *DecreaseStreamRetentionPeriodInput, increase bool) error {
	if in == nil {
		in = &DecreaseStreamRetentionPeriodInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	if in.RetentionPeriodHours == nil {
		return errNull("retentionPeriodHours")
	}
	h := *in.RetentionPeriodHours
	if h < minRetentionHours {
		return errorf(CodeInvalidArgument, "Minimum allowed retention period is %d hours. Requested retention period (%d hours) is too short.", minRetentionHours, h)
	}
	if h > maxRetentionHours {
		return errorf(CodeInvalidArgument, "Maximum allowed retention period is %d hours. Requested retention period (%d hours) is too long.", maxRetentionHours, h)
	}
	st, err := s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status != statusActive {
			return s.errNotActive(name, m.Status)
		}
		if increase && h < m.RetentionHours {
			return errorf(CodeInvalidArgument, "Requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours). Use DecreaseRetentionPeriod API.", h, name, m.RetentionHours)
		}
		if !increase && h > m.RetentionHours {
			return errorf(CodeInvalidArgument, "Requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours). Use IncreaseRetentionPeriod API.", h, name, m.RetentionHours)
		}
		m.RetentionHours = h
		return nil
	})
	if err != nil {
		return err
	}
	return s.applyRetention(ctx, st)
}

// applyRetention sets the stream's retention on every shard log.
func (s *Service) applyRetention(ctx context.Context, st *stream) error {
	d := time.Duration(st.meta.RetentionHours) * time.Hour
	for _, sh := range st.shards {
		l, err := sh.handle(ctx, s.eng)
		if err != nil {
			return err
		}
		if err := l.SetRetention(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// UpdateMaxRecordSize changes the largest record (data plus partition key)
// the stream accepts. The stream is UPDATING for a moment.
func (s *Service) UpdateMaxRecordSize(ctx context.Context, in *UpdateMaxRecordSizeInput) error {
	if in == nil {
		in = &UpdateMaxRecordSizeInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	if in.MaxRecordSizeInKiB == nil {
		return errNull("maxRecordSizeInKiB")
	}
	v := *in.MaxRecordSizeInKiB
	if err := checkMaxRecordKiB(v); err != nil {
		return err
	}
	_, err = s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status != statusActive {
			return s.errNotActive(name, m.Status)
		}
		m.MaxRecordKiB = v
		s.startUpdating(m, now)
		return nil
	})
	return err
}

// startUpdating puts an ACTIVE stream in UPDATING for the transition delay.
func (s *Service) startUpdating(m *streamMeta, now int64) {
	if s.opts.TransitionDelay > 0 {
		m.Status, m.Until = statusUpdating, now+s.opts.TransitionDelay.Milliseconds()
	}
}

// shardLevelMetrics is every metric in Kinesis' order; ALL stands for them all.
var shardLevelMetrics = []string{
	"IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
	"WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded",
	"IteratorAgeMilliseconds",
}

// EnableEnhancedMonitoring turns shard-level metrics on.
func (s *Service) EnableEnhancedMonitoring(ctx context.Context, in *EnhancedMonitoringInput) (*EnhancedMonitoringOutput, error) {
	return s.monitoring(ctx, in, true)
}

// DisableEnhancedMonitoring turns shard-level metrics off.
func (s *Service) DisableEnhancedMonitoring(ctx context.Context, in *EnhancedMonitoringInput) (*EnhancedMonitoringOutput, error) {
	return s.monitoring(ctx, in, false)
}

func (s *Service) monitoring(ctx context.Context, in *EnhancedMonitoringInput, enable bool) (*EnhancedMonitoringOutput, error) {
	if in == nil {
		in = &EnhancedMonitoringInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if len(in.ShardLevelMetrics) == 0 {
		return nil, errorf(CodeValidation, "1 validation error detected: Value '[]' at 'shardLevelMetrics' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	req := map[string]bool{}
	for _, mname := range in.ShardLevelMetrics {
		switch {
		case mname == "ALL":
			for _, x := range shardLevelMetrics {
				req[x] = true
			}
		case slices.Contains(shardLevelMetrics, mname):
			req[mname] = true
		default:
			return nil, errorf(CodeValidation, "1 validation error detected: Value '[%s]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, IteratorAgeMilliseconds, ALL]]", mname)
		}
	}
	var current, desired []string
	st, err := s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status != statusActive && m.Status != statusUpdating {
			return s.errNotActive(name, m.Status)
		}
		current = append([]string{}, m.Metrics...)
		desired = []string{}
		for _, x := range shardLevelMetrics {
			on := slices.Contains(m.Metrics, x)
			if req[x] {
				on = enable
			}
			if on {
				desired = append(desired, x)
			}
		}
		m.Metrics = desired
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &EnhancedMonitoringOutput{
		StreamName:               name,
		StreamARN:                st.arn,
		CurrentShardLevelMetrics: current,
		DesiredShardLevelMetrics: desired,
	}, nil
}

// StartStreamEncryption turns server-side encryption on: the KMS key is
// resolved in the key store (Options.Keys) and a data key made under it;
// the stream is UPDATING for the transition delay, then records written are
// encrypted at rest under that data key and report EncryptionType KMS
// (encryption.go).
func (s *Service) StartStreamEncryption(ctx context.Context, in *StreamEncryptionInput) error {
	return s.encryption(ctx, in, true)
}

// StopStreamEncryption turns server-side encryption off for new records.
func (s *Service) StopStreamEncryption(ctx context.Context, in *StreamEncryptionInput) error {
	return s.encryption(ctx, in, false)
}

func (s *Service) encryption(ctx context.Context, in *StreamEncryptionInput, start bool) error {
	if in == nil {
		in = &StreamEncryptionInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	if in.EncryptionType == nil {
		return errNull("encryptionType")
	}
	if in.KeyId == nil {
		return errNull("keyId")
	}
	et, key := *in.EncryptionType, *in.KeyId
	if et != "KMS" && et != "NONE" {
		return errorf(CodeValidation, "1 validation error detected: Value '%s' at 'encryptionType' failed to satisfy constraint: Member must satisfy enum value set: [KMS, NONE]", et)
	}
	if et != "KMS" {
		return errorf(CodeInvalidArgument, "Encryption type %s is not supported. Supported encryption types are: KMS.", et)
	}
	if key == "" || len(key) > 2048 {
		return errorf(CodeValidation, "1 validation error detected: Value '%s' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1", key)
	}
	if _, _, err := s.existing(ctx, name); err != nil {
		return err
	}
	var dk *dataKeyMeta
	if start {
		// The key is checked, and the data key made, before the stream
		// changes: a KMS error leaves it as it was.
		if dk, err = s.newDataKey(key); err != nil {
			return err
		}
	}
	st, err := s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status != statusActive {
			return s.errNotActive(name, m.Status)
		}
		// Records written while UPDATING keep the old setting: Kinesis
		// encrypts (or stops) once the stream is ACTIVE again.
		enc := &pendingEncryption{}
		if start {
			enc.Type, enc.KeyID, enc.DataKey = "KMS", key, dk
		}
		s.beginPending(m, now, &pendingChange{First: len(m.Shards), Encryption: enc})
		return nil
	})
	if err != nil {
		return err
	}
	_, err = s.settlePending(ctx, name, st)
	return err
}

// PutResourcePolicy attaches an IAM resource policy to a stream, once
// internal/iam has validated it; an iam.Authorizer evaluates it.
func (s *Service) PutResourcePolicy(ctx context.Context, in *PutResourcePolicyInput) error {
	if in == nil {
		in = &PutResourcePolicyInput{}
	}
	if ref, ok := s.resourceConsumer(in.ResourceARN); ok {
		return s.putConsumerPolicy(ctx, ref, in.Policy)
	}
	name, err := s.resourceStream(ctx, in.ResourceARN)
	if err != nil {
		return err
	}
	if err := checkPolicy(in.Policy); err != nil {
		return err
	}
	_, err = s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status == statusDeleting {
			return s.errNotActive(name, m.Status)
		}
		m.Policy = *in.Policy
		return nil
	})
	return err
}

// GetResourcePolicy returns a stream's resource policy, "{}" if none.
func (s *Service) GetResourcePolicy(ctx context.Context, in *GetResourcePolicyInput) (*GetResourcePolicyOutput, error) {
	if in == nil {
		in = &GetResourcePolicyInput{}
	}
	if ref, ok := s.resourceConsumer(in.ResourceARN); ok {
		return s.consumerPolicy(ctx, ref)
	}
	name, err := s.resourceStream(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	st, _, err := s.existing(ctx, name)
	if err != nil {
		return nil, err
	}
	p := st.meta.Policy
	if p == "" {
		p = "{}"
	}
	return &GetResourcePolicyOutput{Policy: p}, nil
}

// DeleteResourcePolicy removes a stream's resource policy.
func (s *Service) DeleteResourcePolicy(ctx context.Context, in *DeleteResourcePolicyInput) error {
	if in == nil {
		in = &DeleteResourcePolicyInput{}
	}
	if ref, ok := s.resourceConsumer(in.ResourceARN); ok {
		return s.deleteConsumerPolicy(ctx, ref)
	}
	name, err := s.resourceStream(ctx, in.ResourceARN)
	if err != nil {
		return err
	}
	_, err = s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Policy == "" {
			return errorf(CodeResourceNotFound, "No resource policy found for resource ARN %s.", *in.ResourceARN)
		}
		m.Policy = ""
		return nil
	})
	return err
}
