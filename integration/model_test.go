package integration

import (
	"context"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestAtTrimHorizonAfterSplitAndMerge: on a 2-shard stream younger than its
// retention period, after a split and a merge, ListShards with
// AT_TRIM_HORIZON lists all five shards, closed parents included, as
// Kinesis does; AT_LATEST lists the open ones.
func TestAtTrimHorizonAfterSplitAndMerge(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	s := newStream(t, c, 2)
	half := new(big.Int).Rsh(hashSpace, 2).String()
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(half)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, s)
	// Shards 2 and 3 split shard 0; 3 is the upper one, adjacent to 1.
	if _, err := c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(s), ShardToMerge: aws.String("shardId-000000000003"), AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, s)
	for _, tc := range []struct {
		filter types.ShardFilterType
		want   string
	}{
		{types.ShardFilterTypeAtTrimHorizon, ",1,2,3,4"},
		{types.ShardFilterTypeFromTrimHorizon, ",1,2,3,4"},
		{types.ShardFilterTypeAtLatest, "2,4"},
	} {
		if got := ids(listAll(t, c, s, &types.ShardFilter{Type: tc.filter})); got != tc.want {
			t.Errorf("%s: shards %q, want %q", tc.filter, got, tc.want)
		}
	}

	// The same through the AWS CLI, when it is installed.
	if _, err := exec.LookPath("/usr/bin/aws"); err != nil && os.Getenv("CI") == "" {
		return
	}
	cli := awsCLI(t)
	cmd := exec.Command(cli, "--endpoint-url", srv.endpoint(), "--region", "us-east-1", "--output", "json",
		"kinesis", "list-shards", "--stream-name", s, "--shard-filter", "Type=AT_TRIM_HORIZON")
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws kinesis list-shards: %v\n%s", err, out)
	}
	var res struct{ Shards []struct{ ShardId string } }
	if err := json.Unmarshal(out, &res); err != nil || len(res.Shards) != 5 {
		t.Fatalf("aws kinesis list-shards AT_TRIM_HORIZON: %d shards (%v)\n%s", len(res.Shards), err, out)
	}
}

// TestReshardVisibleWhenActive: a split is answered at once, the stream is
// UPDATING, and the old shards keep taking the writes until it is ACTIVE.
func TestReshardVisibleWhenActive(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--transition-delay", "3s")
	c := srv.client()
	ctx := context.Background()
	const s = "visible"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, s)
	if _, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String(new(big.Int).Rsh(hashSpace, 1).String())}); err != nil {
		t.Fatal(err)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s)})
	if err != nil || sum.StreamDescriptionSummary.StreamStatus != types.StreamStatusUpdating || aws.ToInt32(sum.StreamDescriptionSummary.OpenShardCount) != 1 {
		t.Fatalf("summary after SplitShard: %v %+v", err, sum)
	}
	desc, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(s)})
	if err != nil || len(desc.StreamDescription.Shards) != 1 || desc.StreamDescription.Shards[0].SequenceNumberRange.EndingSequenceNumber != nil {
		t.Fatalf("describe while UPDATING: %v %+v", err, desc)
	}
	for _, pk := range []string{"a", "b", "c", "d"} {
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(s), PartitionKey: aws.String(pk), Data: []byte(pk)})
		if err != nil || aws.ToString(out.ShardId) != "shardId-000000000000" {
			t.Fatalf("put while UPDATING: %v %+v", err, out)
		}
	}
	waitActive(t, c, s)
	if got := ids(listAll(t, c, s, nil)); got != ",1,2" {
		t.Fatalf("shards when ACTIVE: %q", got)
	}
	for _, pk := range []string{"a", "b", "c", "d"} {
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(s), PartitionKey: aws.String(pk), Data: []byte(pk)})
		if err != nil || aws.ToString(out.ShardId) == "shardId-000000000000" {
			t.Fatalf("put when ACTIVE: %v %+v", err, out)
		}
	}
}

// TestKinesisWording: the service-level answers Kinesis gives for a CREATING
// stream, shard ids in their short form, a reversed merge pair, an unknown
// stream before bad tag keys, and the encryption records get.
func TestKinesisWording(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--transition-delay", "3s")
	c := srv.client()
	ctx := context.Background()
	const s = "wording"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	// CREATING: no shards yet, and the data plane does not know the stream.
	desc, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(s)})
	if err != nil || desc.StreamDescription.StreamStatus != types.StreamStatusCreating || desc.StreamDescription.Shards == nil || len(desc.StreamDescription.Shards) != 0 {
		t.Fatalf("describe while CREATING: %v %+v", err, desc)
	}
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(s)})
	if err != nil || ls.Shards == nil || len(ls.Shards) != 0 {
		t.Fatalf("list shards while CREATING: %v %+v", err, ls)
	}
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(s), PartitionKey: aws.String("k"), Data: []byte("x")})
	expectAPIError(t, err, "ResourceNotFoundException", "Stream wording under account 000000000000 not found.")
	_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(s), ShardId: aws.String("shardId-0"), ShardIteratorType: types.ShardIteratorTypeLatest})
	expectAPIError(t, err, "ResourceNotFoundException", "Shard shardId-000000000000 in stream wording under account 000000000000 does not exist")
	_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(s), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("a"), Data: []byte{}}}})
	expectAPIError(t, err, "ResourceNotFoundException", "Stream wording under account 000000000000 not found.")
	_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(s), ShardToMerge: aws.String("shardId-0"), AdjacentShardToMerge: aws.String("shardId-1")})
	expectAPIError(t, err, "ResourceInUseException", "Stream wording under account 000000000000 not ACTIVE, instead in state CREATING")
	waitActive(t, c, s)

	// Shard ids.
	_, err = c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(s), ShardToSplit: aws.String("shardId-5"), NewStartingHashKey: aws.String("1000")})
	expectAPIError(t, err, "ResourceNotFoundException", "Could not find shard shardId-000000000005 in stream wording under account 000000000000.")
	_, err = c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("nope"), ShardToSplit: aws.String("shardId-5"), NewStartingHashKey: aws.String("1000")})
	expectAPIError(t, err, "ResourceNotFoundException", "Stream nope under account 000000000000 not found.")
	if _, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(s), ShardId: aws.String("shardId-1"), ShardIteratorType: types.ShardIteratorTypeLatest}); err != nil {
		t.Fatalf("iterator by short id: %v", err)
	}
	if got := ids(listAll(t, c, s, &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-0")})); got != "1" {
		t.Fatalf("AFTER_SHARD_ID shardId-0: %q", got)
	}
	_, err = c.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(s), ShardToMerge: aws.String("shardId-000000000001"), AdjacentShardToMerge: aws.String("shardId-000000000000")})
	expectAPIError(t, err, "InvalidArgumentException", "Shards shardId-000000000001 and shardId-000000000000 in stream wording under account 000000000000 are not an adjacent pair of shards eligible for merging")
	_, err = c.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String("nope"), TagKeys: []string{"bad%key"}})
	expectAPIError(t, err, "ResourceNotFoundException", "Stream nope under account 000000000000 not found.")

	// Encryption: records get it once the stream is ACTIVE again.
	if _, err := c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String(s), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	put := func() string {
		t.Helper()
		one, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(s), PartitionKey: aws.String("k"), Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		many, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(s), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("y")}}})
		if err != nil {
			t.Fatal(err)
		}
		return string(one.EncryptionType) + "/" + string(many.EncryptionType)
	}
	if got := put(); got != "NONE/NONE" {
		t.Fatalf("encryption while UPDATING: %s", got)
	}
	waitActive(t, c, s)
	if got := put(); got != "KMS/KMS" {
		t.Fatalf("encryption when ACTIVE: %s", got)
	}
	// GetRecords omits the EncryptionType of unencrypted records.
	var got []string
	for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(s), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		gr, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range gr.Records {
			got = append(got, string(r.Data)+":"+string(r.EncryptionType))
		}
	}
	if strings.Join(got, ",") != "x:,y:,x:KMS,y:KMS" {
		t.Fatalf("records %v", got)
	}
}
