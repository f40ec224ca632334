package streams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Account settings and the on-demand settings that depend on them.
//
// The account's minimum throughput billing commitment is one metadata key
// (accountKeyName), changed with compare-and-set like a stream. Its rules
// are the API reference's (MinimumThroughputBillingCommitmentInput):
// enabling starts a commitment of at least 24 hours, whose end is
// EarliestAllowedEndAt; disabling before then does not fail but schedules
// the end for that time (status ENABLED_UNTIL_EARLIEST_ALLOWED_END), and
// enabling again before then cancels the scheduled end. Like a stream's
// transitions, the scheduled end is a deadline resolved from the clock
// whenever the settings are read, so a restart changes nothing.

// Commitment statuses.
const (
	commitEnabled          = "ENABLED"
	commitDisabled         = "DISABLED"
	commitEnabledUntilEnd  = "ENABLED_UNTIL_EARLIEST_ALLOWED_END"
	minCommitment          = 24 * time.Hour
	maxWarmThroughputMiBps = 10240 // 10 GiBps, Kinesis' default limit
)

// Record distribution strategies.
const (
	distributionUser = "USER_PARTITION_KEY"
	distributionAuto = "AUTO"
)

// accountKeyName is the metadata key of the account settings.
const accountKeyName = "server/account-settings"

// accountMeta is the stored account settings. Times are Unix ms; zero is
// absent.
type accountMeta struct {
	Status   string `json:"status,omitempty"` // "" is DISABLED
	Started  int64  `json:"started,omitempty"`
	Ended    int64  `json:"ended,omitempty"`
	Earliest int64  `json:"earliest,omitempty"`
}

// settle resolves a scheduled end that has come by now.
func (a *accountMeta) settle(now int64) {
	if a.Status == commitEnabledUntilEnd && now >= a.Earliest {
		a.Status, a.Ended = commitDisabled, a.Earliest
	}
	if a.Status == "" {
		a.Status = commitDisabled
	}
}

// output is the wire form of the commitment.
func (a *accountMeta) output() *MinimumThroughputBillingCommitmentOutput {
	ts := func(ms int64) *Timestamp {
		if ms == 0 {
			return nil
		}
		t := TimestampMillis(ms)
		return &t
	}
	o := &MinimumThroughputBillingCommitmentOutput{Status: a.Status, StartedAt: ts(a.Started), EndedAt: ts(a.Ended)}
	if a.Status != commitDisabled {
		o.EarliestAllowedEndAt = ts(a.Earliest)
	}
	return o
}

// committed reports whether the commitment is in force.
func (a *accountMeta) committed() bool {
	return a.Status == commitEnabled || a.Status == commitEnabledUntilEnd
}

// account reads the settled account settings and their version (0 when
// never stored).
func (s *Service) account(ctx context.Context) (*accountMeta, uint64, error) {
	a := new(accountMeta)
	b, ver, err := s.eng.Meta().Get(ctx, accountKeyName)
	switch {
	case errors.Is(err, engine.ErrKeyNotFound):
		ver = 0
	case err != nil:
		return nil, 0, err
	default:
		if err := json.Unmarshal(b, a); err != nil {
			return nil, 0, fmt.Errorf("streams: decode account settings: %w", err)
		}
	}
	a.settle(s.nowMs())
	return a, ver, nil
}

// DescribeAccountSettings reports the account's minimum throughput billing
// commitment.
func (s *Service) DescribeAccountSettings(ctx context.Context, in *DescribeAccountSettingsInput) (*DescribeAccountSettingsOutput, error) {
	a, _, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	return &DescribeAccountSettingsOutput{MinimumThroughputBillingCommitment: a.output()}, nil
}

// UpdateAccountSettings enables or disables the account's minimum throughput
// billing commitment and answers the settings that result.
func (s *Service) UpdateAccountSettings(ctx context.Context, in *UpdateAccountSettingsInput) (*UpdateAccountSettingsOutput, error) {
	if in == nil || in.MinimumThroughputBillingCommitment == nil {
		return nil, errNull("minimumThroughputBillingCommitment")
	}
	want := in.MinimumThroughputBillingCommitment.Status
	if want == nil {
		return nil, errNull("minimumThroughputBillingCommitment.status")
	}
	if *want != commitEnabled && *want != commitDisabled {
		return nil, errorf(CodeValidation, "1 validation error detected: Value '%s' at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]", *want)
	}
	for attempt := 0; ; attempt++ {
		a, ver, err := s.account(ctx)
		if err != nil {
			return nil, err
		}
		now := s.nowMs()
		switch {
		case *want == commitEnabled && a.Status == commitDisabled:
			a.Status, a.Started, a.Ended = commitEnabled, now, 0
			a.Earliest = now + minCommitment.Milliseconds()
		case *want == commitEnabled && a.Status == commitEnabledUntilEnd:
			a.Status = commitEnabled // the scheduled end is cancelled
		case *want == commitDisabled && a.Status == commitEnabled && now < a.Earliest:
			a.Status = commitEnabledUntilEnd
		case *want == commitDisabled && a.Status == commitEnabled:
			a.Status, a.Ended = commitDisabled, now
		default:
			// Already as asked (a scheduled end stays scheduled).
			return &UpdateAccountSettingsOutput{MinimumThroughputBillingCommitment: a.output()}, nil
		}
		b, err := json.Marshal(a)
		if err != nil {
			return nil, err
		}
		_, err = s.eng.Meta().Put(ctx, accountKeyName, b, ver)
		if errors.Is(err, engine.ErrVersionMismatch) && attempt < 100 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &UpdateAccountSettingsOutput{MinimumThroughputBillingCommitment: a.output()}, nil
	}
}

// warmThroughputOut reports an ON_DEMAND stream's warm throughput at now
// (Unix ms): the target, and the value before the last change while that
// change is UPDATING.
func warmThroughputOut(m *streamMeta, now int64) *WarmThroughputObject {
	if m.Mode != modeOnDemand || (m.WarmMiBps == 0 && m.WarmPrevMiBps == nil) {
		return nil
	}
	cur := m.WarmMiBps
	if m.WarmPrevMiBps != nil && now < m.WarmUntil {
		cur = *m.WarmPrevMiBps
	}
	return &WarmThroughputObject{TargetMiBps: ptr(m.WarmMiBps), CurrentMiBps: ptr(cur)}
}

// UpdateStreamWarmThroughput sets the write throughput an ON_DEMAND stream
// keeps ready. The stream is UPDATING for the transition delay; the
// on-demand scaler keeps at least one shard per MiB/s open (scaler.go).
// Warm throughput needs the account's billing commitment.
func (s *Service) UpdateStreamWarmThroughput(ctx context.Context, in *UpdateStreamWarmThroughputInput) (*UpdateStreamWarmThroughputOutput, error) {
	if in == nil {
		in = &UpdateStreamWarmThroughputInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if in.WarmThroughputMiBps == nil {
		return nil, errNull("warmThroughputMiBps")
	}
	warm := *in.WarmThroughputMiBps
	if warm < 0 {
		return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'warmThroughputMiBps' failed to satisfy constraint: Member must have value greater than or equal to 0", warm)
	}
	if warm > maxWarmThroughputMiBps {
		return nil, errorf(CodeLimitExceeded, "Warm throughput of %d MiBps for stream %s under account %s exceeds the limit of %d MiBps.", warm, name, s.opts.AccountID, maxWarmThroughputMiBps)
	}
	a, _, err := s.account(ctx)
	if err != nil {
		return nil, err
	}
	if !a.committed() {
		return nil, errorf(CodeInvalidArgument, "Warm throughput requires MinimumThroughputBillingCommitment to be enabled for account %s.", s.opts.AccountID)
	}
	st, err := s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status != statusActive {
			return s.errNotActive(name, m.Status)
		}
		if m.Mode != modeOnDemand {
			return errorf(CodeInvalidArgument, "Warm throughput can only be configured for streams in ON_DEMAND mode. Stream %s under account %s is in PROVISIONED mode.", name, s.opts.AccountID)
		}
		prev := m.WarmMiBps
		m.WarmMiBps, m.WarmPrevMiBps = warm, &prev
		m.WarmUntil = now + s.opts.TransitionDelay.Milliseconds()
		s.startUpdating(m, now)
		return nil
	})
	if err != nil {
		return nil, err
	}
	m := st.meta
	return &UpdateStreamWarmThroughputOutput{
		StreamARN:      st.arn,
		StreamName:     name,
		WarmThroughput: warmThroughputOut(m, s.nowMs()),
	}, nil
}

// UpdateStreamRecordDistributionStrategy chooses how an ON_DEMAND stream
// routes new records: by partition key (USER_PARTITION_KEY, the default) or
// spread over its open shards whatever the keys (AUTO). It takes effect at
// once; records already stored stay where they are.
func (s *Service) UpdateStreamRecordDistributionStrategy(ctx context.Context, in *UpdateStreamRecordDistributionStrategyInput) error {
	if in == nil {
		in = &UpdateStreamRecordDistributionStrategyInput{}
	}
	if in.StreamARN == nil {
		return errNull("streamARN")
	}
	name, err := s.streamName(nil, in.StreamARN)
	if err != nil {
		return err
	}
	if in.RecordDistributionStrategy == nil {
		return errNull("recordDistributionStrategy")
	}
	strategy := *in.RecordDistributionStrategy
	if strategy != distributionAuto && strategy != distributionUser {
		return errorf(CodeValidation, "1 validation error detected: Value '%s' at 'recordDistributionStrategy' failed to satisfy constraint: Member must satisfy enum value set: [AUTO, USER_PARTITION_KEY]", strategy)
	}
	_, err = s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status != statusActive && m.Status != statusUpdating {
			return s.errNotActive(name, m.Status)
		}
		if m.Mode != modeOnDemand && strategy == distributionAuto {
			return errorf(CodeInvalidArgument, "Record distribution strategy AUTO can only be configured for streams in ON_DEMAND mode. Stream %s under account %s is in PROVISIONED mode.", name, s.opts.AccountID)
		}
		m.Distribution = ""
		if strategy == distributionAuto {
			m.Distribution = distributionAuto
		}
		return nil
	})
	return err
}

// createDistribution checks CreateStream's RecordDistributionStrategy and
// returns the stored form ("" or AUTO).
func (s *Service) createDistribution(name, mode string, strategy *string) (string, error) {
	if strategy == nil || *strategy == distributionUser {
		return "", nil
	}
	if *strategy != distributionAuto {
		return "", errorf(CodeValidation, "1 validation error detected: Value '%s' at 'recordDistributionStrategy' failed to satisfy constraint: Member must satisfy enum value set: [AUTO, USER_PARTITION_KEY]", *strategy)
	}
	if mode != modeOnDemand {
		return "", errorf(CodeInvalidArgument, "Record distribution strategy AUTO can only be configured for streams in ON_DEMAND mode. Stream %s under account %s is in PROVISIONED mode.", name, s.opts.AccountID)
	}
	return distributionAuto, nil
}

// distributionOut reports an ON_DEMAND stream's record distribution
// strategy.
func distributionOut(m *streamMeta) *string {
	if m.Mode != modeOnDemand {
		return nil
	}
	if m.Distribution == distributionAuto {
		return ptr(distributionAuto)
	}
	return ptr(distributionUser)
}

// autoDistributed reports whether the stream spreads records itself.
func (m *streamMeta) autoDistributed() bool {
	return m.Mode == modeOnDemand && m.Distribution == distributionAuto
}

// warmShards is the fewest open shards that give an ON_DEMAND stream its
// warm throughput, at 1 MiB/s of writes per shard.
func (m *streamMeta) warmShards() int {
	if m.Mode != modeOnDemand {
		return 0
	}
	return int(m.WarmMiBps)
}

// hashFor returns the hash key a record of st routes by: its explicit hash
// key or its partition key's, or under AUTO the start of the next open shard
// in turn, which spreads records evenly whatever their keys.
func (st *stream) hashFor(pk string, explicit *string) (hashKey, error) {
	if st.meta.autoDistributed() && len(st.routes) > 0 {
		n := st.autoNext.Add(1) - 1
		return st.routes[n%uint64(len(st.routes))].start, nil
	}
	return recordHash(pk, explicit)
}

// noPartitionKey is the partition key stored with a record of an AUTO
// stream that came without one (the model makes the key optional there).
var noPartitionKey = ""

// partitionKey returns a record's partition key, or noPartitionKey when it
// has none (which only AUTO streams accept).
func (st *stream) partitionKey(pk *string) string {
	if pk == nil {
		return noPartitionKey
	}
	return *pk
}
