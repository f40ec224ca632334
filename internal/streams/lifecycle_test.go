package streams

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCreateStreamErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.ShardLimit = 10; o.OnDemandStreamLimit = 1 })
	e.create("taken", 3)
	tooMany := map[string]string{}
	for i := range 51 {
		tooMany[fmt.Sprint("k", i)] = "v"
	}
	cases := []struct {
		name string
		in   *CreateStreamInput
		code Code
		msg  string
	}{
		{"nil input", nil, CodeValidation, "1 validation error detected: Value null at 'streamName' failed to satisfy constraint: Member must not be null"},
		{"bad name", &CreateStreamInput{StreamName: sp("a/b"), ShardCount: ip(1)}, CodeValidation, ""},
		{"empty name", &CreateStreamInput{StreamName: sp(""), ShardCount: ip(1)}, CodeValidation, ""},
		{"zero shards", &CreateStreamInput{StreamName: sp("s"), ShardCount: ip(0)}, CodeValidation, "1 validation error detected: Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"no shard count", &CreateStreamInput{StreamName: sp("s")}, CodeInvalidArgument, ""},
		{"exists", &CreateStreamInput{StreamName: sp("taken"), ShardCount: ip(1)}, CodeResourceInUse, "Stream taken under account 000000000000 already exists."},
		{"shard limit", &CreateStreamInput{StreamName: sp("big"), ShardCount: ip(8)}, CodeLimitExceeded,
			"This request would exceed the shard limit for the account 000000000000 in us-east-1. Current shard count for the account: 3. Limit: 10. Number of additional shards that would have resulted from this request: 8. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits."},
		{"huge shard count", &CreateStreamInput{StreamName: sp("big"), ShardCount: ip(1<<31 - 1)}, CodeLimitExceeded, ""},
		{"bad mode", &CreateStreamInput{StreamName: sp("m"), StreamModeDetails: &StreamModeDetails{StreamMode: sp("FAST")}}, CodeValidation, ""},
		{"nil mode", &CreateStreamInput{StreamName: sp("m"), StreamModeDetails: &StreamModeDetails{}}, CodeValidation, ""},
		{"max record size", &CreateStreamInput{StreamName: sp("m"), ShardCount: ip(1), MaxRecordSizeInKiB: ip(1023)}, CodeValidation, ""},
		{"too many tags", &CreateStreamInput{StreamName: sp("m"), ShardCount: ip(1), Tags: tooMany}, CodeInvalidArgument,
			"Failed to add tags to stream m under account 000000000000 because a given stream cannot have more than 50 tags associated with it."},
		{"bad tag", &CreateStreamInput{StreamName: sp("m"), ShardCount: ip(1), Tags: map[string]string{"a;b": ""}}, CodeInvalidArgument, errTagChars},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, e.svc.CreateStream(ctx, tc.in), tc.code, tc.msg)
		})
	}
	// On-demand: 4 shards, and the on-demand stream limit.
	if err := e.svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("od"), StreamModeDetails: &StreamModeDetails{StreamMode: sp("ON_DEMAND")}}); err != nil {
		t.Fatal(err)
	}
	sum, err := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("od")})
	if err != nil {
		t.Fatal(err)
	}
	if sum.StreamDescriptionSummary.OpenShardCount != 4 || *sum.StreamDescriptionSummary.StreamModeDetails.StreamMode != "ON_DEMAND" {
		t.Fatalf("on-demand summary %+v", sum.StreamDescriptionSummary)
	}
	err = e.svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("od2"), StreamModeDetails: &StreamModeDetails{StreamMode: sp("ON_DEMAND")}})
	wantErr(t, err, CodeLimitExceeded, "")
}

func TestStreamLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.TransitionDelay = 500 * time.Millisecond })
	e.create("s1", 2)
	status := func() string {
		t.Helper()
		out, err := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s1")})
		if err != nil {
			t.Fatal(err)
		}
		return out.StreamDescriptionSummary.StreamStatus
	}
	if got := status(); got != "CREATING" {
		t.Fatalf("status %s, want CREATING", got)
	}
	// Writes are refused while CREATING, as are control-plane changes.
	_, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s1"), PartitionKey: sp("a"), Data: []byte("x")})
	wantErr(t, err, CodeResourceNotFound, "Stream s1 under account 000000000000 not found.")
	wantErr(t, e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamName: sp("s1")}), CodeResourceInUse,
		"Stream s1 under account 000000000000 not ACTIVE, instead in state CREATING")

	e.clock.Advance(500 * time.Millisecond)
	if got := status(); got != "ACTIVE" {
		t.Fatalf("status %s, want ACTIVE", got)
	}
	e.put("s1", "a", "x")

	// UPDATING during an encryption change, then ACTIVE again.
	if err := e.svc.StartStreamEncryption(ctx, &StreamEncryptionInput{StreamName: sp("s1"), EncryptionType: sp("KMS"), KeyId: sp("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != "UPDATING" {
		t.Fatalf("status %s, want UPDATING", got)
	}
	e.put("s1", "a", "x") // writes continue while UPDATING
	wantErr(t, e.svc.StopStreamEncryption(ctx, &StreamEncryptionInput{StreamName: sp("s1"), EncryptionType: sp("KMS"), KeyId: sp("k")}),
		CodeResourceInUse, "Stream s1 under account 000000000000 not ACTIVE, instead in state UPDATING")
	e.clock.Advance(time.Second)
	if got := status(); got != "ACTIVE" {
		t.Fatalf("status %s, want ACTIVE", got)
	}

	// DELETING, then gone; the reaper removes the logs.
	if err := e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamName: sp("s1")}); err != nil {
		t.Fatal(err)
	}
	if got := status(); got != "DELETING" {
		t.Fatalf("status %s, want DELETING", got)
	}
	wantErr(t, e.svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("s1"), ShardCount: ip(1)}), CodeResourceInUse, "Stream s1 under account 000000000000 already exists.")
	e.clock.Advance(time.Second)
	_, err = e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s1")})
	wantErr(t, err, CodeResourceNotFound, "Stream s1 under account 000000000000 not found.")
	if err := e.svc.reap(ctx); err != nil {
		t.Fatal(err)
	}
	logs, _ := e.eng.ListLogs(ctx, "")
	if len(logs) != 0 {
		t.Fatalf("logs left after deletion: %v", logs)
	}
	if _, _, err := e.eng.Meta().Get(ctx, metaKey("s1")); err == nil {
		t.Fatal("metadata left after deletion")
	}
}

// TestRecreateSeesNoOldRecords checks that a deleted and recreated stream
// starts empty even when the deletion is finished by CreateStream itself.
func TestRecreateSeesNoOldRecords(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.TransitionDelay = 100 * time.Millisecond })
	e.create("s", 1)
	e.clock.Advance(time.Second)
	e.put("s", "a", "old")
	if err := e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamARN: sp("arn:aws:kinesis:us-east-1:000000000000:stream/s")}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	e.create("s", 1)
	e.clock.Advance(time.Second)
	out := e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 0)
	if len(out.Records) != 0 {
		t.Fatalf("recreated stream has %d old records", len(out.Records))
	}
	logs, _ := e.eng.ListLogs(ctx, "")
	if len(logs) != 1 {
		t.Fatalf("logs %v, want one", logs)
	}
}

func TestDeletionSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.TransitionDelay = time.Hour })
	e.create("s", 2)
	e.clock.Advance(2 * time.Hour)
	if err := e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamName: sp("s")}); err != nil {
		t.Fatal(err)
	}
	e.restart()
	e.clock.Advance(2 * time.Hour)
	if err := e.svc.reap(ctx); err != nil {
		t.Fatal(err)
	}
	if logs, _ := e.eng.ListLogs(ctx, ""); len(logs) != 0 {
		t.Fatalf("logs left: %v", logs)
	}
}

func TestOrphanLogsSwept(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	orphan := newStreamID(e.clock.Now().UnixMilli()) + ".0"
	if err := e.eng.CreateLog(ctx, orphan, engineLogOptions()); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.sweepOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if logs, _ := e.eng.ListLogs(ctx, ""); len(logs) != 2 {
		t.Fatalf("young orphan swept too early: %v", logs)
	}
	e.clock.Advance(2 * orphanAge)
	if err := e.svc.sweepOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	logs, _ := e.eng.ListLogs(ctx, "")
	if len(logs) != 1 || logs[0] == orphan {
		t.Fatalf("logs after sweep: %v", logs)
	}
}

func TestRestartKeepsStreams(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("a", 1)
	e.create("b", 3)
	p := e.put("b", "k", "hello")
	e.restart()
	out, err := e.svc.ListStreams(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.StreamNames, ",") != "a,b" {
		t.Fatalf("streams after restart %v", out.StreamNames)
	}
	it := e.iter("b", p.ShardId, "AT_SEQUENCE_NUMBER", &p.SequenceNumber)
	got := e.get(it, 0)
	if len(got.Records) != 1 || string(got.Records[0].Data) != "hello" {
		t.Fatalf("records after restart %+v", got.Records)
	}
}

func TestDescribeStream(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if err := e.svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("d"), ShardCount: ip(5), Tags: map[string]string{"a": "b"}}); err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.DescribeStream(ctx, &DescribeStreamInput{StreamName: sp("d"), Limit: ip(2)})
	if err != nil {
		t.Fatal(err)
	}
	d := out.StreamDescription
	if d.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/d" || d.StreamStatus != "ACTIVE" || d.RetentionPeriodHours != 24 ||
		!d.HasMoreShards || len(d.Shards) != 2 || d.Shards[0].ShardId != "shardId-000000000000" || *d.EncryptionType != "NONE" {
		t.Fatalf("description %+v", d)
	}
	if d.Shards[0].HashKeyRange.StartingHashKey != "0" || d.Shards[0].HashKeyRange.EndingHashKey != "68056473384187692692674921486353642290" {
		t.Fatalf("shard 0 range %+v", d.Shards[0].HashKeyRange)
	}
	out, err = e.svc.DescribeStream(ctx, &DescribeStreamInput{StreamName: sp("d"), ExclusiveStartShardId: sp("shardId-000000000001")})
	if err != nil {
		t.Fatal(err)
	}
	d = out.StreamDescription
	if d.HasMoreShards || len(d.Shards) != 3 || d.Shards[0].ShardId != "shardId-000000000002" ||
		d.Shards[2].HashKeyRange.EndingHashKey != "340282366920938463463374607431768211455" {
		t.Fatalf("page 2 %+v", d)
	}
	for _, tc := range []struct {
		name string
		in   *DescribeStreamInput
		code Code
		msg  string
	}{
		{"missing", &DescribeStreamInput{StreamName: sp("nope")}, CodeResourceNotFound, "Stream nope under account 000000000000 not found."},
		{"nothing", &DescribeStreamInput{}, CodeInvalidArgument, ""},
		{"nil", nil, CodeInvalidArgument, ""},
		{"bad arn", &DescribeStreamInput{StreamARN: sp("arn:aws:kinesis:us-east-1:000000000000:table/d")}, CodeInvalidArgument, "StreamARN arn:aws:kinesis:us-east-1:000000000000:table/d is invalid."},
		{"other region", &DescribeStreamInput{StreamARN: sp("arn:aws:kinesis:eu-west-1:000000000000:stream/d")}, CodeResourceNotFound, "Stream d under account 000000000000 not found."},
		{"other account", &DescribeStreamInput{StreamARN: sp("arn:aws:kinesis:us-east-1:123456789012:stream/d")}, CodeResourceNotFound, "Stream d under account 123456789012 not found."},
		{"name and arn differ", &DescribeStreamInput{StreamName: sp("x"), StreamARN: sp("arn:aws:kinesis:us-east-1:000000000000:stream/d")}, CodeInvalidArgument, ""},
		{"zero limit", &DescribeStreamInput{StreamName: sp("d"), Limit: ip(0)}, CodeValidation, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.DescribeStream(ctx, tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	// By ARN.
	if _, err := e.svc.DescribeStream(ctx, &DescribeStreamInput{StreamARN: sp("arn:aws:kinesis:us-east-1:000000000000:stream/d")}); err != nil {
		t.Fatal(err)
	}
}

func TestListStreams(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	for _, n := range []string{"c", "a", "e", "b", "d"} {
		e.create(n, 1)
	}
	out, err := e.svc.ListStreams(ctx, &ListStreamsInput{Limit: ip(2)})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.StreamNames, ",") != "a,b" || !out.HasMoreStreams || out.NextToken == nil || len(out.StreamSummaries) != 2 ||
		out.StreamSummaries[1].StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/b" {
		t.Fatalf("page 1 %+v", out)
	}
	out, err = e.svc.ListStreams(ctx, &ListStreamsInput{Limit: ip(2), NextToken: out.NextToken})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.StreamNames, ",") != "c,d" || !out.HasMoreStreams {
		t.Fatalf("page 2 %+v", out)
	}
	out, err = e.svc.ListStreams(ctx, &ListStreamsInput{ExclusiveStartStreamName: sp("d")})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.StreamNames, ",") != "e" || out.HasMoreStreams || out.NextToken != nil {
		t.Fatalf("after d %+v", out)
	}
	_, err = e.svc.ListStreams(ctx, &ListStreamsInput{NextToken: sp("garbage")})
	wantErr(t, err, CodeInvalidArgument, "Invalid NextToken.")
	old, _ := e.svc.ListStreams(ctx, &ListStreamsInput{Limit: ip(1)})
	e.clock.Advance(301 * time.Second)
	_, err = e.svc.ListStreams(ctx, &ListStreamsInput{NextToken: old.NextToken})
	wantErr(t, err, CodeExpiredNextToken, "")
}

func TestDescribeLimits(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("a", 3)
	if err := e.svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp("od"), StreamModeDetails: &StreamModeDetails{StreamMode: sp("ON_DEMAND")}}); err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.DescribeLimits(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := DescribeLimitsOutput{ShardLimit: 20000, OpenShardCount: 7, OnDemandStreamCount: 1, OnDemandStreamCountLimit: 50}
	if *out != want {
		t.Fatalf("limits %+v, want %+v", *out, want)
	}
}

// TestTwoServicesOneEngine checks that a service sees another's changes even
// when a recreated stream's metadata version equals the one it cached.
func TestTwoServicesOneEngine(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	other, err := New(ctx, e.eng, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	e.create("s", 1)
	tag := func(k string) {
		t.Helper()
		if err := e.svc.AddTagsToStream(ctx, &AddTagsToStreamInput{StreamName: sp("s"), Tags: map[string]string{k: ""}}); err != nil {
			t.Fatal(err)
		}
	}
	tag("old1")
	tag("old2") // version 3
	if _, err := other.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamName: sp("s")}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	e.create("s", 2)
	tag("new1")
	tag("new2") // version 3 again
	out, err := other.ListTagsForStream(ctx, &ListTagsForStreamInput{StreamName: sp("s")})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tags) != 2 || *out.Tags[0].Key != "new1" {
		t.Fatalf("other service sees %+v", out.Tags)
	}
	// Its data plane writes to the new stream's logs.
	p, err := other.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	it := e.iter("s", p.ShardId, "AT_SEQUENCE_NUMBER", &p.SequenceNumber)
	if got := e.get(it, 0); len(got.Records) != 1 {
		t.Fatalf("record written by the other service not found: %+v", got)
	}
}

func TestReservedStreams(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	hidden := ReservedPrefix + "firehose.orders"
	err := e.svc.CreateStream(ctx, &CreateStreamInput{StreamName: sp(hidden), ShardCount: ip(1)})
	wantErr(t, err, CodeInvalidArgument, "Stream names beginning with __runnel. are reserved for the server's own streams.")
	if err := e.svc.CreateReservedStream(ctx, &CreateStreamInput{StreamName: sp("plain"), ShardCount: ip(1)}); err == nil {
		t.Fatal("CreateReservedStream made a stream with an ordinary name")
	}
	if err := e.svc.CreateReservedStream(ctx, &CreateStreamInput{StreamName: sp(hidden), ShardCount: ip(1)}); err != nil {
		t.Fatal(err)
	}
	e.create("visible", 1)
	out, err := e.svc.ListStreams(ctx, &ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(out.StreamNames, ",") != "visible" {
		t.Fatalf("ListStreams shows %v", out.StreamNames)
	}
	// The server's own stream is still a stream: it can be written and described.
	if _, err := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp(hidden)}); err != nil {
		t.Fatal(err)
	}
}

func TestReservedStreamsAreNotThrottled(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.EnforceThroughput = true })
	hidden := ReservedPrefix + "firehose.fast"
	if err := e.svc.CreateReservedStream(ctx, &CreateStreamInput{StreamName: sp(hidden), ShardCount: ip(1)}); err != nil {
		t.Fatal(err)
	}
	e.create("plain", 1)
	recs := make([]PutRecordsRequestEntry, 500)
	for i := range recs {
		recs[i] = PutRecordsRequestEntry{Data: make([]byte, 4096), PartitionKey: sp("k")}
	}
	for _, name := range []string{hidden, "plain"} {
		failed := int32(0)
		for range 3 { // 6 MiB in a moment: beyond a shard's 1 MiB/s
			out, err := e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp(name), Records: recs})
			if err != nil {
				t.Fatal(err)
			}
			failed += out.FailedRecordCount
		}
		if (failed == 0) != (name == hidden) {
			t.Errorf("%s: %d records throttled", name, failed)
		}
	}
}
