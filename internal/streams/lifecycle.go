package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Defaults and bounds of stream settings.
const (
	defaultRetentionHours = 24
	minRetentionHours     = 24
	maxRetentionHours     = 8760
	defaultMaxRecordKiB   = 1024
	minMaxRecordKiB       = 1024
	maxMaxRecordKiB       = 10240
	onDemandShards        = 4
	maxTags               = 50
)

func errNull(member string) *Error {
	return errorf(CodeValidation, "1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", member)
}

func newStreamID(nowMs int64) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(nowMs, 36) + "-" + hex.EncodeToString(b[:])
}

// streamIDTime returns the creation time embedded in a stream id.
func streamIDTime(id string) (int64, bool) {
	t, _, ok := strings.Cut(id, "-")
	if !ok {
		return 0, false
	}
	ms, err := strconv.ParseInt(t, 36, 64)
	return ms, err == nil
}

// CreateStream creates a stream in CREATING status; it turns ACTIVE after
// Options.TransitionDelay.
func (s *Service) CreateStream(ctx context.Context, in *CreateStreamInput) error {
	return s.createStream(ctx, in, false)
}

// ReservedPrefix begins the names of the streams the server keeps for
// itself (the hidden streams of delivery streams). CreateStream refuses
// such names and ListStreams does not show them; CreateReservedStream
// creates them.
const ReservedPrefix = "__runnel."

// Reserved reports whether a stream name is reserved for the server.
func Reserved(name string) bool { return strings.HasPrefix(name, ReservedPrefix) }

// CreateReservedStream creates a stream whose name begins with
// ReservedPrefix, as CreateStream creates others.
func (s *Service) CreateReservedStream(ctx context.Context, in *CreateStreamInput) error {
	if in == nil || in.StreamName == nil || !Reserved(*in.StreamName) {
		return errors.New("streams: a reserved stream's name must begin with " + ReservedPrefix)
	}
	return s.createStream(ctx, in, true)
}

func (s *Service) createStream(ctx context.Context, in *CreateStreamInput, reserved bool) error {
	if in == nil {
		in = &CreateStreamInput{}
	}
	if in.StreamName == nil {
		return errNull("streamName")
	}
	name := *in.StreamName
	if _, err := s.streamName(&name, nil); err != nil {
		return err
	}
	if Reserved(name) && !reserved {
		return errorf(CodeInvalidArgument, "Stream names beginning with %s are reserved for the server's own streams.", ReservedPrefix)
	}
	mode := modeProvisioned
	if in.StreamModeDetails != nil {
		if in.StreamModeDetails.StreamMode == nil {
			return errNull("streamModeDetails.streamMode")
		}
		mode = *in.StreamModeDetails.StreamMode
		if mode != modeProvisioned && mode != modeOnDemand {
			return errorf(CodeValidation, "1 validation error detected: Value '%s' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]", mode)
		}
	}
	count := onDemandShards
	if mode == modeProvisioned {
		if in.ShardCount == nil {
			return errorf(CodeInvalidArgument, "ShardCount is required for streams in PROVISIONED mode.")
		}
		if *in.ShardCount < 1 {
			return errorf(CodeValidation, "1 validation error detected: Value '%d' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.ShardCount)
		}
		count = int(*in.ShardCount)
	}
	maxKiB := int32(defaultMaxRecordKiB)
	if in.MaxRecordSizeInKiB != nil {
		maxKiB = *in.MaxRecordSizeInKiB
		if err := checkMaxRecordKiB(maxKiB); err != nil {
			return err
		}
	}
	if len(in.Tags) > maxTags {
		return s.errTooManyTags(name)
	}
	if err := s.checkTags(name, in.Tags); err != nil {
		return err
	}
	var warm int32
	if in.WarmThroughputMiBps != nil {
		if mode != modeOnDemand {
			return errorf(CodeInvalidArgument, "WarmThroughputMiBps can only be specified for streams in ON_DEMAND mode.")
		}
		warm = *in.WarmThroughputMiBps
	}
	distribution, err := s.createDistribution(name, mode, in.RecordDistributionStrategy) // account.go
	if err != nil {
		return err
	}

	// An existing key whose deletion has completed is removed first.
	b, ver, err := s.eng.Meta().Get(ctx, metaKey(name))
	switch {
	case errors.Is(err, engine.ErrKeyNotFound):
	case err != nil:
		return err
	default:
		m, err := decodeMeta(b)
		if err != nil {
			return err
		}
		if m.settled(s.nowMs()) != "" {
			return errorf(CodeResourceInUse, "Stream %s under account %s already exists.", name, s.opts.AccountID)
		}
		if err := s.finishDelete(ctx, m, ver); err != nil {
			return err
		}
	}

	all, err := s.listMeta(ctx)
	if err != nil {
		return err
	}
	open, onDemand := s.accountCounts(all)
	if open+count > s.opts.ShardLimit {
		return errorf(CodeLimitExceeded, "This request would exceed the shard limit for the account %s in %s. Current shard count for the account: %d. Limit: %d. Number of additional shards that would have resulted from this request: %d. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
			s.opts.AccountID, s.opts.Region, open, s.opts.ShardLimit, count)
	}
	if mode == modeOnDemand && onDemand >= s.opts.OnDemandStreamLimit {
		return errorf(CodeLimitExceeded, "This request would exceed the on-demand stream count limit for the account %s in %s. Current on-demand stream count for the account: %d. Limit: %d.",
			s.opts.AccountID, s.opts.Region, onDemand, s.opts.OnDemandStreamLimit)
	}

	now := s.nowMs()
	m := &streamMeta{
		Name:           name,
		ID:             newStreamID(now),
		Created:        now,
		Status:         statusCreating,
		Until:          now + s.opts.TransitionDelay.Milliseconds(),
		Mode:           mode,
		RetentionHours: defaultRetentionHours,
		MaxRecordKiB:   maxKiB,
		WarmMiBps:      warm,
		Distribution:   distribution,
		Shards:         make([]shardMeta, count),
	}
	if s.opts.TransitionDelay == 0 {
		m.Status, m.Until = statusActive, 0
	}
	if len(in.Tags) > 0 {
		m.Tags = make(map[string]string, len(in.Tags))
		for k, v := range in.Tags {
			m.Tags[k] = v
		}
	}
	for i, r := range evenRanges(count) {
		m.Shards[i] = shardMeta{Start: r[0].String(), End: r[1].String(), Created: now}
	}
	// Logs first, metadata last: a crash in between leaves only orphan logs,
	// which the reaper removes.
	retention := time.Duration(m.RetentionHours) * time.Hour
	for i := range count {
		if err := s.eng.CreateLog(ctx, logName(m.ID, i), engine.LogOptions{Retention: retention}); err != nil {
			s.deleteLogs(context.WithoutCancel(ctx), m.ID)
			return err
		}
	}
	nb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	nv, err := s.eng.Meta().Put(ctx, metaKey(name), nb, 0)
	if err != nil {
		s.deleteLogs(context.WithoutCancel(ctx), m.ID)
		if errors.Is(err, engine.ErrVersionMismatch) {
			return errorf(CodeResourceInUse, "Stream %s under account %s already exists.", name, s.opts.AccountID)
		}
		return err
	}
	s.store(name, s.build(m, nb, nv, nil))
	return nil
}

// accountCounts returns the open shards and on-demand streams of the account.
func (s *Service) accountCounts(all []*stream) (open, onDemand int) {
	now := s.nowMs()
	for _, st := range all {
		if st.meta.settled(now) == "" {
			continue
		}
		open += st.meta.openShards()
		if st.meta.Mode == modeOnDemand {
			onDemand++
		}
	}
	return open, onDemand
}

// DeleteStream starts deleting a stream: it turns DELETING and disappears
// after Options.TransitionDelay, when its shard logs are deleted.
func (s *Service) DeleteStream(ctx context.Context, in *DeleteStreamInput) error {
	if in == nil {
		in = &DeleteStreamInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	enforce := in.EnforceConsumerDeletion != nil && *in.EnforceConsumerDeletion
	_, err = s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status != statusActive {
			return s.errNotActive(name, m.Status)
		}
		if m.liveConsumers(now) > 0 && !enforce {
			return errorf(CodeResourceInUse, "Stream %s under account %s has registered consumers. Deregister the consumers or set EnforceConsumerDeletion to true.", name, s.opts.AccountID)
		}
		// A zero delay makes Until == now: the deletion has completed.
		m.Status, m.Until = statusDeleting, now+s.opts.TransitionDelay.Milliseconds()
		return nil
	})
	if err != nil {
		return err
	}
	s.poke()
	return nil
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// finishDelete removes a deleted stream's logs, then its metadata.
func (s *Service) finishDelete(ctx context.Context, m *streamMeta, version uint64) error {
	if err := s.deleteLogs(ctx, m.ID); err != nil {
		return err
	}
	err := s.eng.Meta().Delete(ctx, metaKey(m.Name), version)
	if err != nil && !errors.Is(err, engine.ErrKeyNotFound) && !errors.Is(err, engine.ErrVersionMismatch) {
		return err
	}
	s.mu.Lock()
	if st := s.mu.cache[m.Name]; st != nil && st.meta.ID == m.ID {
		delete(s.mu.cache, m.Name)
	}
	s.mu.Unlock()
	return nil
}

func (s *Service) deleteLogs(ctx context.Context, id string) error {
	names, err := s.eng.ListLogs(ctx, id+".")
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := s.eng.DeleteLog(ctx, n); err != nil && !errors.Is(err, engine.ErrLogNotFound) {
			return err
		}
	}
	return nil
}

// reaper finishes deletions and applies due pending changes in the
// background, including ones a restart interrupted, and removes orphan logs
// (at start, then every orphanAge). Services sharing an engine leave this
// work to their leader (cluster.go): the others' ticks do nothing, and a
// deletion or change asked of them is finished by the leader's next tick.
func (s *Service) reaper() {
	defer s.wg.Done()
	ctx := s.ctx
	interval := time.Second
	if d := s.opts.TransitionDelay / 2; d > 0 && d < interval {
		interval = max(d, 10*time.Millisecond)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var swept time.Time
	for {
		if s.isLeader() {
			if time.Since(swept) >= orphanAge {
				if s.sweepOrphans(ctx) == nil {
					swept = time.Now()
				}
			}
			_ = s.reap(ctx)
		}
		select {
		case <-s.stop:
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// reap completes every deletion whose deadline has passed and applies every
// pending change that is due. It reuses the cache's decodings, so a tick over
// unchanged streams decodes nothing.
func (s *Service) reap(ctx context.Context) error {
	all, err := s.listMeta(ctx)
	if err != nil {
		return err
	}
	now := s.nowMs()
	for _, st := range all {
		if st.meta.settled(now) == "" {
			if err := s.finishDelete(ctx, st.meta, st.version); err != nil {
				return err
			}
		}
	}
	return s.applyAllDue(ctx, all)
}

// orphanAge is how old a log of an unknown stream must be before the reaper
// deletes it (younger ones may belong to a CreateStream in progress).
const orphanAge = time.Minute

// sweepOrphans deletes logs left behind by a crash during CreateStream.
func (s *Service) sweepOrphans(ctx context.Context) error {
	logs, err := s.eng.ListLogs(ctx, "")
	if err != nil {
		return err
	}
	ents, err := s.eng.Meta().List(ctx, metaPrefix)
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(ents))
	for _, e := range ents {
		if m, err := decodeMeta(e.Value); err == nil {
			known[m.ID] = true
		}
	}
	now := s.nowMs()
	for _, l := range logs {
		id, _, ok := strings.Cut(l, ".")
		if !ok || known[id] {
			continue
		}
		created, ok := streamIDTime(id)
		if !ok || now-created < orphanAge.Milliseconds() {
			continue
		}
		if err := s.eng.DeleteLog(ctx, l); err != nil && !errors.Is(err, engine.ErrLogNotFound) {
			return err
		}
	}
	return nil
}

// shardVisible reports whether shard i is still listed at time now: open, or
// closed less than the retention period ago.
func (m *streamMeta) shardVisible(i int, now int64) bool {
	c := m.Shards[i].Closed
	return c == 0 || now < c+int64(m.RetentionHours)*3600_000
}

func (s *Service) shardOut(st *stream, i int) Shard {
	sm := &st.meta.Shards[i]
	sh := st.shards[i]
	out := Shard{
		ShardId:      sh.id,
		HashKeyRange: HashKeyRange{StartingHashKey: sm.Start, EndingHashKey: sm.End},
		SequenceNumberRange: SequenceNumberRange{
			StartingSequenceNumber: seqNum{created: sh.created, shard: uint32(i), arrival: sh.created}.String(),
		},
	}
	if len(sm.Parents) > 0 {
		p := shardID(sm.Parents[0])
		out.ParentShardId = &p
	}
	if len(sm.Parents) > 1 {
		p := shardID(sm.Parents[1])
		out.AdjacentParentShardId = &p
	}
	if sm.Closed != 0 {
		end := seqNum{created: sh.created, shard: uint32(i), offset: sm.EndOffset, arrival: uint64(sm.Closed / 1000)}.String()
		out.SequenceNumberRange.EndingSequenceNumber = &end
	}
	return out
}

func metricsOut(m *streamMeta) []EnhancedMetrics {
	l := append([]string{}, m.Metrics...)
	return []EnhancedMetrics{{ShardLevelMetrics: l}}
}

// encryptionOut reports the stream's encryption setting: the requested one
// while a change of it is pending (records get it from the end of UPDATING).
func encryptionOut(m *streamMeta) (*string, *string) {
	t, k := m.Encryption, m.KeyID
	if p := m.Pending; p != nil && p.Encryption != nil {
		t, k = p.Encryption.Type, p.Encryption.KeyID
	}
	if t == "" {
		none := "NONE"
		return &none, nil
	}
	return &t, &k
}

// DescribeStream describes a stream and pages through its shards.
func (s *Service) DescribeStream(ctx context.Context, in *DescribeStreamInput) (*DescribeStreamOutput, error) {
	if in == nil {
		in = &DescribeStreamInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	limit := 100
	if in.Limit != nil {
		if *in.Limit < 1 {
			return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.Limit)
		}
		limit = min(int(*in.Limit), 100)
	}
	st, status, err := s.existing(ctx, name)
	if err != nil {
		return nil, err
	}
	m := st.meta
	now := s.nowMs()
	d := StreamDescription{
		StreamName:              name,
		StreamARN:               st.arn,
		StreamStatus:            status,
		StreamModeDetails:       &StreamModeDetails{StreamMode: ptr(m.Mode)},
		Shards:                  []Shard{},
		RetentionPeriodHours:    m.RetentionHours,
		StreamCreationTimestamp: TimestampMillis(m.Created),
		EnhancedMonitoring:      metricsOut(m),
	}
	d.EncryptionType, d.KeyId = encryptionOut(m)
	after := ""
	if in.ExclusiveStartShardId != nil {
		after = normalShardID(*in.ExclusiveStartShardId)
	}
	for i := range m.Shards {
		if status == statusCreating {
			break // Kinesis lists a stream's shards once it is ACTIVE
		}
		if !m.shardVisible(i, now) {
			continue
		}
		if after != "" && st.shards[i].id <= after {
			continue
		}
		if len(d.Shards) == limit {
			d.HasMoreShards = true
			break
		}
		d.Shards = append(d.Shards, s.shardOut(st, i))
	}
	return &DescribeStreamOutput{StreamDescription: d}, nil
}

func ptr[T any](v T) *T { return &v }

// openShardCount is the open shards a description reports: none while the
// stream is CREATING, whose shards are listed once it is ACTIVE.
func openShardCount(m *streamMeta, status string) int {
	if status == statusCreating {
		return 0
	}
	return m.openShards()
}

// DescribeStreamSummary describes a stream without its shards.
func (s *Service) DescribeStreamSummary(ctx context.Context, in *DescribeStreamSummaryInput) (*DescribeStreamSummaryOutput, error) {
	if in == nil {
		in = &DescribeStreamSummaryInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	st, status, err := s.existing(ctx, name)
	if err != nil {
		return nil, err
	}
	m := st.meta
	d := StreamDescriptionSummary{
		StreamName:              name,
		StreamARN:               st.arn,
		StreamStatus:            status,
		StreamModeDetails:       &StreamModeDetails{StreamMode: ptr(m.Mode)},
		RetentionPeriodHours:    m.RetentionHours,
		StreamCreationTimestamp: TimestampMillis(m.Created),
		EnhancedMonitoring:      metricsOut(m),
		OpenShardCount:          int32(openShardCount(m, status)),
		ConsumerCount:           ptr(int32(m.liveConsumers(s.nowMs()))),
		MaxRecordSizeInKiB:      ptr(m.MaxRecordKiB),
	}
	d.EncryptionType, d.KeyId = encryptionOut(m)
	d.WarmThroughput = warmThroughputOut(m, s.nowMs()) // account.go
	d.RecordDistributionStrategy = distributionOut(m)
	return &DescribeStreamSummaryOutput{StreamDescriptionSummary: d}, nil
}

// tokenLife is how long a NextToken stays valid (Kinesis: 300 seconds).
const tokenLife = 300 * time.Second

// ListStreams lists the account's streams in name order.
func (s *Service) ListStreams(ctx context.Context, in *ListStreamsInput) (*ListStreamsOutput, error) {
	if in == nil {
		in = &ListStreamsInput{}
	}
	limit := 100
	if in.Limit != nil {
		if *in.Limit < 1 {
			return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.Limit)
		}
		limit = min(int(*in.Limit), 10000)
	}
	after := ""
	if in.ExclusiveStartStreamName != nil {
		after = *in.ExclusiveStartStreamName
	}
	if in.NextToken != nil {
		pt, err := s.openPageToken(*in.NextToken)
		if err != nil {
			return nil, err
		}
		if pt.filter != 0 || pt.streamID != "" {
			return nil, errorf(CodeInvalidArgument, "Invalid NextToken.")
		}
		after = pt.after
	}
	all, err := s.listMeta(ctx)
	if err != nil {
		return nil, err
	}
	now := s.nowMs()
	out := &ListStreamsOutput{StreamNames: []string{}, StreamSummaries: []StreamSummary{}}
	for _, st := range all { // sorted by key, hence by name
		m := st.meta
		status := m.settled(now)
		if status == "" || (after != "" && m.Name <= after) || Reserved(m.Name) {
			continue
		}
		if len(out.StreamNames) == limit {
			out.HasMoreStreams = true
			break
		}
		out.StreamNames = append(out.StreamNames, m.Name)
		out.StreamSummaries = append(out.StreamSummaries, StreamSummary{
			StreamName:              m.Name,
			StreamARN:               st.arn,
			StreamStatus:            status,
			StreamModeDetails:       &StreamModeDetails{StreamMode: ptr(m.Mode)},
			StreamCreationTimestamp: ptr(TimestampMillis(m.Created)),
		})
	}
	if out.HasMoreStreams {
		tok := s.tokens.encodePage(pageToken{issued: now, after: out.StreamNames[len(out.StreamNames)-1]})
		out.NextToken = &tok
	}
	return out, nil
}

func (s *Service) openPageToken(tok string) (pageToken, error) {
	pt, ok := s.tokens.decodePage(tok)
	if !ok {
		return pageToken{}, errorf(CodeInvalidArgument, "Invalid NextToken.")
	}
	now := s.nowMs()
	if now-pt.issued > tokenLife.Milliseconds() {
		return pageToken{}, errorf(CodeExpiredNextToken, "The NextToken has expired. Tokens are valid for %d seconds.", int(tokenLife.Seconds()))
	}
	return pt, nil
}

// DescribeLimits reports the account's shard and on-demand stream limits.
func (s *Service) DescribeLimits(ctx context.Context, in *DescribeLimitsInput) (*DescribeLimitsOutput, error) {
	all, err := s.listMeta(ctx)
	if err != nil {
		return nil, err
	}
	open, onDemand := s.accountCounts(all)
	return &DescribeLimitsOutput{
		ShardLimit:               int32(min(s.opts.ShardLimit, 1<<31-1)),
		OpenShardCount:           int32(open),
		OnDemandStreamCount:      int32(onDemand),
		OnDemandStreamCountLimit: int32(min(s.opts.OnDemandStreamLimit, 1<<31-1)),
	}, nil
}

// sortedTagKeys returns m's keys in order.
func sortedTagKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
