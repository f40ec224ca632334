package streams

import (
	"context"
	"testing"
	"time"
)

func (e *env) commitment() *MinimumThroughputBillingCommitmentOutput {
	e.t.Helper()
	out, err := e.svc.DescribeAccountSettings(context.Background(), &DescribeAccountSettingsInput{})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.MinimumThroughputBillingCommitment
}

func (e *env) setCommitment(status string) *MinimumThroughputBillingCommitmentOutput {
	e.t.Helper()
	out, err := e.svc.UpdateAccountSettings(context.Background(), &UpdateAccountSettingsInput{
		MinimumThroughputBillingCommitment: &MinimumThroughputBillingCommitmentInput{Status: &status},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.MinimumThroughputBillingCommitment
}

// checkCommitment compares a commitment with the status and times (Unix
// ms, 0 for absent) it should have.
func checkCommitment(t *testing.T, what string, got *MinimumThroughputBillingCommitmentOutput, status string, started, ended, earliest int64) {
	t.Helper()
	ms := func(ts *Timestamp) int64 {
		if ts == nil {
			return 0
		}
		return ts.Millis()
	}
	if got == nil || got.Status != status || ms(got.StartedAt) != started || ms(got.EndedAt) != ended || ms(got.EarliestAllowedEndAt) != earliest {
		t.Fatalf("%s: %+v (started %d ended %d earliest %d)\nwant %s started %d ended %d earliest %d",
			what, got, ms(got.StartedAt), ms(got.EndedAt), ms(got.EarliestAllowedEndAt), status, started, ended, earliest)
	}
}

func TestAccountSettingsCommitment(t *testing.T) {
	e := newEnv(t)
	day := (24 * time.Hour).Milliseconds()
	checkCommitment(t, "at first", e.commitment(), "DISABLED", 0, 0, 0)
	checkCommitment(t, "disable when disabled", e.setCommitment("DISABLED"), "DISABLED", 0, 0, 0)

	t0 := e.clock.Now().UnixMilli()
	checkCommitment(t, "enable", e.setCommitment("ENABLED"), "ENABLED", t0, 0, t0+day)
	e.clock.Advance(time.Hour)
	checkCommitment(t, "enable again", e.setCommitment("ENABLED"), "ENABLED", t0, 0, t0+day)
	// Disabling within the first 24 hours schedules the end.
	checkCommitment(t, "early disable", e.setCommitment("DISABLED"), "ENABLED_UNTIL_EARLIEST_ALLOWED_END", t0, 0, t0+day)
	checkCommitment(t, "disable while scheduled", e.setCommitment("DISABLED"), "ENABLED_UNTIL_EARLIEST_ALLOWED_END", t0, 0, t0+day)
	// Enabling before the end cancels it.
	checkCommitment(t, "cancel", e.setCommitment("ENABLED"), "ENABLED", t0, 0, t0+day)
	checkCommitment(t, "early disable again", e.setCommitment("DISABLED"), "ENABLED_UNTIL_EARLIEST_ALLOWED_END", t0, 0, t0+day)

	// The settings are stored: a restart keeps them.
	e.restart()
	checkCommitment(t, "after restart", e.commitment(), "ENABLED_UNTIL_EARLIEST_ALLOWED_END", t0, 0, t0+day)

	// The scheduled end comes by itself.
	e.clock.Advance(23 * time.Hour)
	checkCommitment(t, "at the earliest end", e.commitment(), "DISABLED", t0, t0+day, 0)

	// A new commitment, disabled after its 24 hours, ends at once.
	t1 := e.clock.Now().UnixMilli()
	checkCommitment(t, "new commitment", e.setCommitment("ENABLED"), "ENABLED", t1, 0, t1+day)
	e.clock.Advance(25 * time.Hour)
	t2 := e.clock.Now().UnixMilli()
	checkCommitment(t, "late disable", e.setCommitment("DISABLED"), "DISABLED", t1, t2, 0)
	e.restart()
	checkCommitment(t, "after a second restart", e.commitment(), "DISABLED", t1, t2, 0)

	ctx := context.Background()
	_, err := e.svc.UpdateAccountSettings(ctx, &UpdateAccountSettingsInput{})
	wantErr(t, err, CodeValidation, "1 validation error detected: Value null at 'minimumThroughputBillingCommitment' failed to satisfy constraint: Member must not be null")
	_, err = e.svc.UpdateAccountSettings(ctx, &UpdateAccountSettingsInput{MinimumThroughputBillingCommitment: &MinimumThroughputBillingCommitmentInput{Status: sp("ON")}})
	wantErr(t, err, CodeValidation, "1 validation error detected: Value 'ON' at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]")
}

func (e *env) createOnDemand(name string) {
	e.t.Helper()
	if err := e.svc.CreateStream(context.Background(), &CreateStreamInput{StreamName: &name, StreamModeDetails: &StreamModeDetails{StreamMode: sp("ON_DEMAND")}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) summary(name string) StreamDescriptionSummary {
	e.t.Helper()
	out, err := e.svc.DescribeStreamSummary(context.Background(), &DescribeStreamSummaryInput{StreamName: &name})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.StreamDescriptionSummary
}

func TestUpdateStreamWarmThroughput(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) {
		o.TransitionDelay = time.Second
		o.Scaler = ScalerOptions{Window: time.Hour, Cooldown: time.Minute, MinShards: 4, MaxShards: 12}
	})
	e.createOnDemand("od")
	e.create("prov", 1)
	e.clock.Advance(2 * time.Second)
	warm := func(name string, mibps int32) (*UpdateStreamWarmThroughputOutput, error) {
		return e.svc.UpdateStreamWarmThroughput(ctx, &UpdateStreamWarmThroughputInput{StreamName: &name, WarmThroughputMiBps: &mibps})
	}

	_, err := warm("od", 10)
	wantErr(t, err, CodeInvalidArgument, "Warm throughput requires MinimumThroughputBillingCommitment to be enabled for account 000000000000.")
	e.setCommitment("ENABLED")
	_, err = warm("prov", 10)
	wantErr(t, err, CodeInvalidArgument, "Warm throughput can only be configured for streams in ON_DEMAND mode. Stream prov under account 000000000000 is in PROVISIONED mode.")
	_, err = warm("od", 10241)
	wantErr(t, err, CodeLimitExceeded, "Warm throughput of 10241 MiBps for stream od under account 000000000000 exceeds the limit of 10240 MiBps.")
	_, err = warm("nope", 10)
	wantErr(t, err, CodeResourceNotFound, "Stream nope under account 000000000000 not found.")
	_, err = e.svc.UpdateStreamWarmThroughput(ctx, &UpdateStreamWarmThroughputInput{StreamName: sp("od")})
	wantErr(t, err, CodeValidation, "1 validation error detected: Value null at 'warmThroughputMiBps' failed to satisfy constraint: Member must not be null")

	out, err := warm("od", 10)
	if err != nil {
		t.Fatal(err)
	}
	if out.StreamName != "od" || out.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/od" ||
		*out.WarmThroughput.TargetMiBps != 10 || *out.WarmThroughput.CurrentMiBps != 0 {
		t.Fatalf("output %+v %+v", out, out.WarmThroughput)
	}
	s := e.summary("od")
	if s.StreamStatus != "UPDATING" || *s.WarmThroughput.TargetMiBps != 10 || *s.WarmThroughput.CurrentMiBps != 0 {
		t.Fatalf("while updating: %s %+v", s.StreamStatus, s.WarmThroughput)
	}
	_, err = warm("od", 20)
	wantErr(t, err, CodeResourceInUse, "Stream od under account 000000000000 not ACTIVE, instead in state UPDATING")
	e.clock.Advance(2 * time.Second)
	s = e.summary("od")
	if s.StreamStatus != "ACTIVE" || *s.WarmThroughput.TargetMiBps != 10 || *s.WarmThroughput.CurrentMiBps != 10 {
		t.Fatalf("after the update: %s %+v", s.StreamStatus, s.WarmThroughput)
	}
	if e.summary("prov").WarmThroughput != nil {
		t.Fatal("a provisioned stream reports warm throughput")
	}

	// The scaler opens a shard per MiB/s, up to MaxShards, splitting the
	// widest shards first whatever the write rates...
	tick := func() {
		t.Helper()
		if err := e.svc.scaleTick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// A reshard may take effect at the end of an UPDATING: each tick is
	// followed by the transition delay and a read of the stream.
	settledTick := func() int32 {
		t.Helper()
		tick()
		e.clock.Advance(2 * time.Second)
		return e.summary("od").OpenShardCount
	}
	if n := settledTick(); n != 8 {
		t.Fatalf("after one tick: %d open shards, want 8 (4 split once)", n)
	}
	for range 3 {
		e.clock.Advance(time.Hour)
		settledTick()
	}
	if n := e.summary("od").OpenShardCount; n != 10 {
		t.Fatalf("warmed: %d open shards, want 10", n)
	}
	checkLineage(t, e.meta("od"))
	// ... and never merges cold shards below the warm throughput.
	for range 3 {
		e.clock.Advance(time.Hour)
		settledTick()
	}
	if n := e.summary("od").OpenShardCount; n != 10 {
		t.Fatalf("idle: %d open shards, want 10", n)
	}
	// Lowered, the cold shards merge down to it.
	if _, err := warm("od", 6); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		e.clock.Advance(time.Hour)
		settledTick()
	}
	if n := e.summary("od").OpenShardCount; n != 6 {
		t.Fatalf("after lowering: %d open shards, want 6", n)
	}
	checkLineage(t, e.meta("od"))

	// It is kept across a restart.
	e.restart()
	if s := e.summary("od"); *s.WarmThroughput.TargetMiBps != 6 || *s.WarmThroughput.CurrentMiBps != 6 {
		t.Fatalf("after restart: %+v", s.WarmThroughput)
	}
}

func TestUpdateStreamRecordDistributionStrategy(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.createOnDemand("od")
	e.create("prov", 2)
	arn := func(name string) *string { return sp("arn:aws:kinesis:us-east-1:000000000000:stream/" + name) }
	set := func(name, strategy string) error {
		return e.svc.UpdateStreamRecordDistributionStrategy(ctx, &UpdateStreamRecordDistributionStrategyInput{StreamARN: arn(name), RecordDistributionStrategy: &strategy})
	}

	wantErr(t, set("prov", "AUTO"), CodeInvalidArgument, "Record distribution strategy AUTO can only be configured for streams in ON_DEMAND mode. Stream prov under account 000000000000 is in PROVISIONED mode.")
	if err := set("prov", "USER_PARTITION_KEY"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, set("nope", "AUTO"), CodeResourceNotFound, "Stream nope under account 000000000000 not found.")
	wantErr(t, set("od", "RANDOM"), CodeValidation, "1 validation error detected: Value 'RANDOM' at 'recordDistributionStrategy' failed to satisfy constraint: Member must satisfy enum value set: [AUTO, USER_PARTITION_KEY]")
	wantErr(t, e.svc.UpdateStreamRecordDistributionStrategy(ctx, &UpdateStreamRecordDistributionStrategyInput{RecordDistributionStrategy: sp("AUTO")}),
		CodeValidation, "1 validation error detected: Value null at 'streamARN' failed to satisfy constraint: Member must not be null")

	if got := e.summary("od").RecordDistributionStrategy; got == nil || *got != "USER_PARTITION_KEY" {
		t.Fatalf("default strategy %v", got)
	}
	if got := e.summary("prov").RecordDistributionStrategy; got != nil {
		t.Fatalf("provisioned stream reports strategy %q", *got)
	}
	perShard := func(n int, explicit *string) map[string]int {
		t.Helper()
		recs := make([]PutRecordsRequestEntry, n)
		for i := range recs {
			recs[i] = PutRecordsRequestEntry{PartitionKey: sp("same"), ExplicitHashKey: explicit, Data: []byte("x")}
		}
		out, err := e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("od"), Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		count := map[string]int{}
		for _, r := range out.Records {
			count[*r.ShardId]++
		}
		return count
	}
	if c := perShard(40, nil); len(c) != 1 {
		t.Fatalf("USER_PARTITION_KEY spread one key over %v", c)
	}
	// Records without a partition key are refused...
	_, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("od"), Data: []byte("x")})
	wantErr(t, err, CodeValidation, "1 validation error detected: Value null at 'partitionKey' failed to satisfy constraint: Member must not be null")
	_, err = e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("od"), Records: []PutRecordsRequestEntry{{PartitionKey: sp("k"), Data: []byte("x")}, {Data: []byte("x")}}})
	wantErr(t, err, CodeValidation, "1 validation error detected: Value null at 'records.2.member.partitionKey' failed to satisfy constraint: Member must not be null")

	if err := set("od", "AUTO"); err != nil {
		t.Fatal(err)
	}
	if got := e.summary("od").RecordDistributionStrategy; got == nil || *got != "AUTO" {
		t.Fatalf("strategy after AUTO: %v", got)
	}
	for _, explicit := range []*string{nil, sp("0")} {
		c := perShard(40, explicit)
		if len(c) != 4 {
			t.Fatalf("AUTO: one key went to %v, want all 4 shards", c)
		}
		for id, n := range c {
			if n != 10 {
				t.Fatalf("AUTO: uneven spread %v (shard %s)", c, id)
			}
		}
	}
	// PutRecord too.
	seen := map[string]bool{}
	for range 8 {
		seen[e.put("od", "same", "x").ShardId] = true
	}
	if len(seen) != 4 {
		t.Fatalf("AUTO PutRecord used shards %v", seen)
	}
	// ... but taken under AUTO, stored with an empty key.
	one, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("od"), Data: []byte("keyless")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("od"), Records: []PutRecordsRequestEntry{{Data: []byte("keyless")}, {Data: []byte("keyless")}}}); err != nil {
		t.Fatal(err)
	}
	recs := e.get(e.iter("od", one.ShardId, "AT_SEQUENCE_NUMBER", &one.SequenceNumber), 1).Records
	if len(recs) != 1 || string(recs[0].Data) != "keyless" || recs[0].PartitionKey != "" {
		t.Fatalf("keyless record read back as %+v", recs)
	}
	// Kept across a restart, and switched back at once.
	e.restart()
	if got := e.summary("od").RecordDistributionStrategy; *got != "AUTO" {
		t.Fatalf("after restart: %s", *got)
	}
	if err := set("od", "USER_PARTITION_KEY"); err != nil {
		t.Fatal(err)
	}
	if c := perShard(40, nil); len(c) != 1 {
		t.Fatalf("back to USER_PARTITION_KEY, one key spread over %v", c)
	}
}

func TestCreateStreamRecordDistributionStrategy(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	create := func(name, mode, strategy string) error {
		in := &CreateStreamInput{StreamName: &name, StreamModeDetails: &StreamModeDetails{StreamMode: &mode}, RecordDistributionStrategy: &strategy}
		if mode == "PROVISIONED" {
			in.ShardCount = ip(2)
		}
		return e.svc.CreateStream(ctx, in)
	}
	wantErr(t, create("p", "PROVISIONED", "AUTO"), CodeInvalidArgument, "Record distribution strategy AUTO can only be configured for streams in ON_DEMAND mode. Stream p under account 000000000000 is in PROVISIONED mode.")
	if err := create("p", "PROVISIONED", "USER_PARTITION_KEY"); err != nil {
		t.Fatal(err)
	}
	if err := create("a", "ON_DEMAND", "AUTO"); err != nil {
		t.Fatal(err)
	}
	if got := e.summary("a").RecordDistributionStrategy; got == nil || *got != "AUTO" {
		t.Fatalf("created AUTO, reported %v", got)
	}
	seen := map[string]bool{}
	for range 4 {
		seen[e.put("a", "same", "x").ShardId] = true
	}
	if len(seen) != 4 {
		t.Fatalf("AUTO from creation used shards %v", seen)
	}
}
