package integration

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// apiErrorCode returns the wire error type of an SDK error.
func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestAccountSettingsAndWarmThroughput drives UpdateAccountSettings and
// UpdateStreamWarmThroughput through the SDK: the commitment's rules, its
// survival across a restart, warm throughput reported by
// DescribeStreamSummary, and the scaler opening a shard per MiB/s of it.
func TestAccountSettingsAndWarmThroughput(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--transition-delay", "0s", "--scale-window", "300ms", "--scale-max-shards", "16"}
	srv := startServer(t, dir, args...)
	c := srv.client()
	ctx := context.Background()

	desc, err := c.DescribeAccountSettings(ctx, &kinesis.DescribeAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if st := desc.MinimumThroughputBillingCommitment.Status; st != types.MinimumThroughputBillingCommitmentOutputStatusDisabled {
		t.Fatalf("initial commitment %s", st)
	}

	for _, s := range []struct {
		name string
		mode types.StreamMode
	}{{"warm", types.StreamModeOnDemand}, {"fixed", types.StreamModeProvisioned}} {
		in := &kinesis.CreateStreamInput{StreamName: aws.String(s.name), StreamModeDetails: &types.StreamModeDetails{StreamMode: s.mode}}
		if s.mode == types.StreamModeProvisioned {
			in.ShardCount = aws.Int32(1)
		}
		if _, err := c.CreateStream(ctx, in); err != nil {
			t.Fatal(err)
		}
		waitActive(t, c, s.name)
	}
	warm := func(name string, mibps int32) (*kinesis.UpdateStreamWarmThroughputOutput, error) {
		return c.UpdateStreamWarmThroughput(ctx, &kinesis.UpdateStreamWarmThroughputInput{StreamName: aws.String(name), WarmThroughputMiBps: aws.Int32(mibps)})
	}
	var iae *types.InvalidArgumentException
	if _, err := warm("warm", 10); !errors.As(err, &iae) || !strings.Contains(iae.ErrorMessage(), "MinimumThroughputBillingCommitment") {
		t.Fatalf("warm throughput without a commitment: %v", err)
	}

	before := time.Now()
	up, err := c.UpdateAccountSettings(ctx, &kinesis.UpdateAccountSettingsInput{
		MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: types.MinimumThroughputBillingCommitmentInputStatusEnabled},
	})
	if err != nil {
		t.Fatal(err)
	}
	mc := up.MinimumThroughputBillingCommitment
	if mc.Status != types.MinimumThroughputBillingCommitmentOutputStatusEnabled || mc.StartedAt == nil || mc.EarliestAllowedEndAt == nil ||
		mc.StartedAt.Before(before.Add(-time.Second)) || mc.EarliestAllowedEndAt.Sub(*mc.StartedAt) != 24*time.Hour || mc.EndedAt != nil {
		t.Fatalf("enabled commitment %+v", mc)
	}
	started := *mc.StartedAt
	// Disabling within 24 hours schedules the end instead.
	up, err = c.UpdateAccountSettings(ctx, &kinesis.UpdateAccountSettingsInput{
		MinimumThroughputBillingCommitment: &types.MinimumThroughputBillingCommitmentInput{Status: types.MinimumThroughputBillingCommitmentInputStatusDisabled},
	})
	if err != nil || up.MinimumThroughputBillingCommitment.Status != types.MinimumThroughputBillingCommitmentOutputStatusEnabledUntilEarliestAllowedEnd {
		t.Fatalf("early disable: %+v %v", up, err)
	}

	// Provisioned streams, and more than 10 GiBps, are refused.
	if _, err := warm("fixed", 10); !errors.As(err, &iae) {
		t.Fatalf("warm throughput on a provisioned stream: %v", err)
	}
	var lee *types.LimitExceededException
	if _, err := warm("warm", 10241); !errors.As(err, &lee) {
		t.Fatalf("warm throughput above 10 GiBps: %v", err)
	}
	if _, err := warm("warm", -1); apiErrorCode(err) != "ValidationException" {
		t.Fatalf("negative warm throughput: %v", err)
	}
	out, err := warm("warm", 10)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.StreamName) != "warm" || !strings.HasSuffix(aws.ToString(out.StreamARN), ":stream/warm") ||
		aws.ToInt32(out.WarmThroughput.TargetMiBps) != 10 {
		t.Fatalf("UpdateStreamWarmThroughput output %+v", out)
	}

	// The scaler opens ten shards, one per MiB/s.
	summary := func(name string) *types.StreamDescriptionSummary {
		t.Helper()
		s, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return s.StreamDescriptionSummary
	}
	deadline := time.Now().Add(15 * time.Second)
	for aws.ToInt32(summary("warm").OpenShardCount) < 10 {
		if time.Now().After(deadline) {
			t.Fatalf("warm stream has %d open shards after 15s, want 10", aws.ToInt32(summary("warm").OpenShardCount))
		}
		time.Sleep(100 * time.Millisecond)
	}
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("warm"), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if err != nil || len(shards.Shards) != 10 {
		t.Fatalf("open shards listed: %d (%v)", len(shards.Shards), err)
	}

	// Everything survives a restart.
	srv.stop(t)
	srv = startServerAt(t, srv.addr, dir, args...)
	c = srv.client()
	desc, err = c.DescribeAccountSettings(ctx, &kinesis.DescribeAccountSettingsInput{})
	if err != nil {
		t.Fatal(err)
	}
	mc = desc.MinimumThroughputBillingCommitment
	if mc.Status != types.MinimumThroughputBillingCommitmentOutputStatusEnabledUntilEarliestAllowedEnd || !mc.StartedAt.Equal(started) ||
		!mc.EarliestAllowedEndAt.Equal(started.Add(24*time.Hour)) {
		t.Fatalf("commitment after restart %+v", mc)
	}
	s := summary("warm")
	if wt := s.WarmThroughput; wt == nil || aws.ToInt32(wt.TargetMiBps) != 10 || aws.ToInt32(wt.CurrentMiBps) != 10 {
		t.Fatalf("warm throughput after restart %+v", wt)
	}
	if aws.ToInt32(s.OpenShardCount) != 10 {
		t.Fatalf("open shards after restart: %d", aws.ToInt32(s.OpenShardCount))
	}
	if summary("fixed").WarmThroughput != nil {
		t.Fatal("provisioned stream reports warm throughput")
	}
}

// TestRecordDistributionStrategy switches an on-demand stream to AUTO
// through the SDK and checks that records with one partition key (and an
// explicit hash key) spread over every open shard, and back.
func TestRecordDistributionStrategy(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--transition-delay", "0s")
	c := srv.client()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("spread"), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("fixed"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, "spread")
	waitActive(t, c, "fixed")
	arn := func(name string) *string {
		s, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return s.StreamDescriptionSummary.StreamARN
	}
	strategy := func(name string) types.RecordDistributionStrategy {
		s, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			t.Fatal(err)
		}
		return s.StreamDescriptionSummary.RecordDistributionStrategy
	}
	set := func(name string, s types.RecordDistributionStrategy) error {
		_, err := c.UpdateStreamRecordDistributionStrategy(ctx, &kinesis.UpdateStreamRecordDistributionStrategyInput{StreamARN: arn(name), RecordDistributionStrategy: s})
		return err
	}
	put := func() map[string]int {
		t.Helper()
		var entries []types.PutRecordsRequestEntry
		for range 100 {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String("one-key"), ExplicitHashKey: aws.String("7"), Data: []byte("x")})
		}
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("spread"), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: %v", err)
		}
		count := map[string]int{}
		for _, r := range out.Records {
			count[aws.ToString(r.ShardId)]++
		}
		return count
	}

	if got := strategy("spread"); got != types.RecordDistributionStrategyUserPartitionKey {
		t.Fatalf("default strategy %q", got)
	}
	if got := strategy("fixed"); got != "" {
		t.Fatalf("provisioned stream reports strategy %q", got)
	}
	var iae *types.InvalidArgumentException
	if err := set("fixed", types.RecordDistributionStrategyAuto); !errors.As(err, &iae) {
		t.Fatalf("AUTO on a provisioned stream: %v", err)
	}
	if c := put(); len(c) != 1 {
		t.Fatalf("USER_PARTITION_KEY spread one key over %v", c)
	}
	if err := set("spread", types.RecordDistributionStrategyAuto); err != nil {
		t.Fatal(err)
	}
	if got := strategy("spread"); got != types.RecordDistributionStrategyAuto {
		t.Fatalf("strategy after the update %q", got)
	}
	if c := put(); len(c) != 4 || c["shardId-000000000000"] != 25 || c["shardId-000000000003"] != 25 {
		t.Fatalf("AUTO spread 100 records as %v, want 25 on each of 4 shards", c)
	}
	// Under AUTO the partition key may be left out (the SDK allows it).
	keyless, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("spread"), Records: []types.PutRecordsRequestEntry{{Data: []byte("a")}, {Data: []byte("b")}}})
	if err != nil || aws.ToInt32(keyless.FailedRecordCount) != 0 {
		t.Fatalf("keyless PutRecords under AUTO: %v", err)
	}
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("spread"), Data: []byte("c")}); err != nil {
		t.Fatalf("keyless PutRecord under AUTO: %v", err)
	}
	if err := set("spread", types.RecordDistributionStrategyUserPartitionKey); err != nil {
		t.Fatal(err)
	}
	if c := put(); len(c) != 1 {
		t.Fatalf("back to USER_PARTITION_KEY, one key spread over %v", c)
	}
	// CreateStream takes the strategy too.
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("born-auto"),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}, RecordDistributionStrategy: types.RecordDistributionStrategyAuto}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, "born-auto")
	if got := strategy("born-auto"); got != types.RecordDistributionStrategyAuto {
		t.Fatalf("stream created AUTO reports %q", got)
	}
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("fixed-auto"), ShardCount: aws.Int32(1),
		RecordDistributionStrategy: types.RecordDistributionStrategyAuto}); !errors.As(err, &iae) {
		t.Fatalf("CreateStream PROVISIONED with AUTO: %v", err)
	}
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("spread"), Data: []byte("c")}); apiErrorCode(err) != "ValidationException" ||
		!strings.Contains(err.Error(), "Value null at 'partitionKey'") {
		t.Fatalf("keyless PutRecord under USER_PARTITION_KEY: %v", err)
	}
}
