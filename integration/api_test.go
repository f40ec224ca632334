package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// sharedSrv is one server process for the tests that do not need their own;
// TestMain kills it at the end of the run.
var (
	sharedMu  sync.Mutex
	sharedSrv *server
)

// sharedServer starts (once) a server that lives for the whole package run.
func sharedServer(t *testing.T) *server {
	t.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if sharedSrv == nil {
		// A replicated engine takes longer to create a stream's logs: the
		// transitions last longer so that their states can be seen.
		delay := "300ms"
		if os.Getenv("RUNNEL_TEST_ENGINE") != "" {
			delay = "1s"
		}
		sharedSrv = launch(t, "127.0.0.1:"+fmt.Sprint(freePort(t)), sharedDir, "--transition-delay", delay, "--shard-limit", "200")
	}
	return sharedSrv
}

// expectAPIError asserts that err is a Kinesis error of the given type whose
// message contains msg.
func expectAPIError(t *testing.T, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("got %v, want %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error type %s (%s), want %s", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if !strings.Contains(ae.ErrorMessage(), msg) {
		t.Fatalf("%s message %q does not contain %q", code, ae.ErrorMessage(), msg)
	}
}

// newStream creates an ACTIVE stream with a name unique to the test.
func newStream(t *testing.T, c *kinesis.Client, shards int32) string {
	t.Helper()
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if len(name) > 100 {
		name = name[:100]
	}
	name = fmt.Sprintf("%s-%d", name, time.Now().UnixNano()%1e6)
	if _, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)
	return name
}

func TestStreamLifecycle(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := "lifecycle-" + fmt.Sprint(time.Now().UnixNano()%1e6)

	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(3),
		Tags: map[string]string{"team": "data"}}); err != nil {
		t.Fatal(err)
	}
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if sum.StreamDescriptionSummary.StreamStatus != types.StreamStatusCreating {
		t.Errorf("status right after CreateStream = %s, want CREATING", sum.StreamDescriptionSummary.StreamStatus)
	}
	_, err = c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)})
	expectAPIError(t, err, "ResourceInUseException", "already exists")
	waitActive(t, c, name)

	d, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	sd := d.StreamDescription
	if want := "arn:aws:kinesis:us-east-1:000000000000:stream/" + name; aws.ToString(sd.StreamARN) != want {
		t.Errorf("ARN %s, want %s", aws.ToString(sd.StreamARN), want)
	}
	if len(sd.Shards) != 3 || aws.ToInt32(sd.RetentionPeriodHours) != 24 || sd.StreamStatus != types.StreamStatusActive {
		t.Fatalf("description %+v", sd)
	}
	wantRanges := [][2]string{
		{"0", "113427455640312821154458202477256070484"},
		{"113427455640312821154458202477256070485", "226854911280625642308916404954512140969"},
		{"226854911280625642308916404954512140970", "340282366920938463463374607431768211455"},
	}
	for i, sh := range sd.Shards {
		if aws.ToString(sh.ShardId) != fmt.Sprintf("shardId-%012d", i) {
			t.Errorf("shard %d id %s", i, aws.ToString(sh.ShardId))
		}
		if got := [2]string{aws.ToString(sh.HashKeyRange.StartingHashKey), aws.ToString(sh.HashKeyRange.EndingHashKey)}; got != wantRanges[i] {
			t.Errorf("shard %d range %v, want %v", i, got, wantRanges[i])
		}
		if s := aws.ToString(sh.SequenceNumberRange.StartingSequenceNumber); len(s) != 56 {
			t.Errorf("shard %d starting sequence number %q is not 56 digits", i, s)
		}
	}

	// By ARN as well as by name.
	if _, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamARN: sd.StreamARN}); err != nil {
		t.Fatalf("DescribeStreamSummary by ARN: %v", err)
	}

	list, err := c.ListStreams(ctx, &kinesis.ListStreamsInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(list.StreamNames, name) {
		t.Errorf("ListStreams %v lacks %s", list.StreamNames, name)
	}
	var found bool
	for _, s := range list.StreamSummaries {
		if aws.ToString(s.StreamName) == name {
			found = aws.ToString(s.StreamARN) == aws.ToString(sd.StreamARN)
		}
	}
	if !found {
		t.Errorf("StreamSummaries lack %s with its ARN", name)
	}

	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	w := kinesis.NewStreamNotExistsWaiter(c, func(o *kinesis.StreamNotExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = 100 * time.Millisecond
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	_, err = c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	expectAPIError(t, err, "ResourceNotFoundException", "Stream "+name+" under account 000000000000 not found.")
}

func TestListStreamsPagination(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	prefix := fmt.Sprintf("page-%d-", time.Now().UnixNano()%1e6)
	for i := range 5 {
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(fmt.Sprintf("%s%d", prefix, i)), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
	}
	var names []string
	p := kinesis.NewListStreamsPaginator(c, &kinesis.ListStreamsInput{Limit: aws.Int32(2)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(out.StreamNames) > 2 {
			t.Fatalf("page of %d names with Limit 2", len(out.StreamNames))
		}
		names = append(names, out.StreamNames...)
	}
	for i := range 5 {
		if !slices.Contains(names, fmt.Sprintf("%s%d", prefix, i)) {
			t.Fatalf("paginated ListStreams lacks %s%d: %v", prefix, i, names)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("stream names not sorted: %v", names)
	}
	if pages < 3 {
		t.Errorf("%d pages for at least 5 streams with Limit 2", pages)
	}
}

func TestPutAndGetRecords(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := newStream(t, c, 2)

	// PutRecord routes by the MD5 of the partition key; an explicit hash key overrides it.
	r1, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("a"), Data: []byte("one")})
	if err != nil {
		t.Fatal(err)
	}
	// md5("a") = 0cc175b9c0f1b6a831c399e269772661 < 2^127, so the first shard.
	if aws.ToString(r1.ShardId) != "shardId-000000000000" {
		t.Errorf("partition key a went to %s", aws.ToString(r1.ShardId))
	}
	r2, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("a"),
		ExplicitHashKey: aws.String("340282366920938463463374607431768211455"), Data: []byte("two")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(r2.ShardId) != "shardId-000000000001" {
		t.Errorf("explicit hash key 2^128-1 went to %s", aws.ToString(r2.ShardId))
	}
	r3, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("a"), Data: []byte("three"),
		SequenceNumberForOrdering: r1.SequenceNumber})
	if err != nil {
		t.Fatal(err)
	}
	if seqLess(aws.ToString(r3.SequenceNumber), aws.ToString(r1.SequenceNumber)) {
		t.Errorf("sequence numbers decrease: %s then %s", aws.ToString(r1.SequenceNumber), aws.ToString(r3.SequenceNumber))
	}

	// PutRecords: response order is request order.
	entries := make([]types.PutRecordsRequestEntry, 100)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(fmt.Sprint("batch-", i))}
	}
	pr, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(name), Records: entries})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(pr.FailedRecordCount) != 0 || len(pr.Records) != 100 {
		t.Fatalf("PutRecords: %d failed, %d results", aws.ToInt32(pr.FailedRecordCount), len(pr.Records))
	}

	all := readAll(t, c, name)
	bySeq := map[string]string{}
	for _, recs := range all {
		for _, r := range recs {
			bySeq[aws.ToString(r.SequenceNumber)] = string(r.Data)
			if r.ApproximateArrivalTimestamp == nil || time.Since(*r.ApproximateArrivalTimestamp) > time.Minute {
				t.Errorf("record %s arrival %v", aws.ToString(r.SequenceNumber), r.ApproximateArrivalTimestamp)
			}
		}
	}
	for i, r := range pr.Records {
		if got := bySeq[aws.ToString(r.SequenceNumber)]; got != fmt.Sprint("batch-", i) {
			t.Errorf("record %d (%s): read %q", i, aws.ToString(r.SequenceNumber), got)
		}
	}
	if bySeq[aws.ToString(r1.SequenceNumber)] != "one" || bySeq[aws.ToString(r2.SequenceNumber)] != "two" {
		t.Errorf("PutRecord records not read back")
	}
	if len(bySeq) != 103 {
		t.Errorf("read %d records, want 103", len(bySeq))
	}
}

func seqLess(a, b string) bool {
	x, _ := new(big.Int).SetString(a, 10)
	y, _ := new(big.Int).SetString(b, 10)
	return x.Cmp(y) < 0
}

func TestShardIteratorTypes(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := newStream(t, c, 1)
	shard := aws.String("shardId-000000000000")
	var seqs []string
	var mid time.Time
	for i := range 6 {
		if i == 3 {
			time.Sleep(20 * time.Millisecond)
			mid = time.Now()
			time.Sleep(20 * time.Millisecond)
		}
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: []byte{byte('0' + i)}})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	first := func(in *kinesis.GetShardIteratorInput) string {
		t.Helper()
		in.StreamName = aws.String(name)
		in.ShardId = shard
		it, err := c.GetShardIterator(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Records) == 0 {
			return ""
		}
		return string(res.Records[0].Data)
	}
	tests := []struct {
		name string
		in   kinesis.GetShardIteratorInput
		want string
	}{
		{"TRIM_HORIZON", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeTrimHorizon}, "0"},
		{"LATEST", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeLatest}, ""},
		{"AT_SEQUENCE_NUMBER", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seqs[2])}, "2"},
		{"AFTER_SEQUENCE_NUMBER", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAfterSequenceNumber, StartingSequenceNumber: aws.String(seqs[2])}, "3"},
		{"AT_TIMESTAMP", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(mid)}, "3"},
		{"AT_TIMESTAMP before everything", kinesis.GetShardIteratorInput{ShardIteratorType: types.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(time.Unix(1, 0))}, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if got := first(&in); got != tt.want {
				t.Errorf("first record %q, want %q", got, tt.want)
			}
		})
	}

	// LATEST sees what is put after the iterator was taken.
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: shard, ShardIteratorType: types.ShardIteratorTypeLatest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: []byte("late")}); err != nil {
		t.Fatal(err)
	}
	res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Records) != 1 || string(res.Records[0].Data) != "late" || res.NextShardIterator == nil {
		t.Fatalf("GetRecords after LATEST: %d records, next %v", len(res.Records), res.NextShardIterator)
	}
	if aws.ToInt64(res.MillisBehindLatest) != 0 {
		t.Errorf("MillisBehindLatest %d at the tip", aws.ToInt64(res.MillisBehindLatest))
	}

	// Errors.
	_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: aws.String("shardId-000000000009"), ShardIteratorType: types.ShardIteratorTypeLatest})
	expectAPIError(t, err, "ResourceNotFoundException", "shardId-000000000009")
	_, err = c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: shard, ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber})
	expectAPIError(t, err, "InvalidArgumentException", "")
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")})
	expectAPIError(t, err, "InvalidArgumentException", "")
	tampered := []byte(aws.ToString(it.ShardIterator))
	tampered[len(tampered)/2] ^= 1
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String(string(tampered))})
	if err == nil {
		t.Fatal("a tampered iterator was accepted")
	}
}

func TestGetRecordsLimit(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := newStream(t, c, 1)
	entries := make([]types.PutRecordsRequestEntry, 250)
	for i := range entries {
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: bytes.Repeat([]byte{byte(i)}, 100)}
	}
	if _, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(name), Records: entries}); err != nil {
		t.Fatal(err)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	iter := it.ShardIterator
	var n int
	for range 3 {
		res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(100)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Records) > 100 {
			t.Fatalf("%d records with Limit 100", len(res.Records))
		}
		for _, r := range res.Records {
			if !bytes.Equal(r.Data, entries[n].Data) {
				t.Fatalf("record %d out of order or corrupt", n)
			}
			n++
		}
		iter = res.NextShardIterator
	}
	if n != 250 {
		t.Fatalf("read %d records, want 250", n)
	}
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10001)})
	expectAPIError(t, err, "ValidationException", "Member must have value less than or equal to 10000")
}

func TestPutValidation(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := newStream(t, c, 1)

	_, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("nope"), PartitionKey: aws.String("k"), Data: []byte("x")})
	expectAPIError(t, err, "ResourceNotFoundException", "Stream nope under account 000000000000 not found.")
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String(strings.Repeat("k", 257)), Data: []byte("x")})
	expectAPIError(t, err, "ValidationException", "Member must have length less than or equal to 256")
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: make([]byte, 1<<20+1)})
	expectAPIError(t, err, "ValidationException", "")
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456"), Data: []byte("x")})
	expectAPIError(t, err, "InvalidArgumentException", "")
	many := make([]types.PutRecordsRequestEntry, 501)
	for i := range many {
		many[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("x")}
	}
	_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(name), Records: many})
	expectAPIError(t, err, "ValidationException", "Member must have length less than or equal to 500")

	// A record up to the raised limit is accepted after UpdateMaxRecordSize.
	d, _ := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if _, err := c.UpdateMaxRecordSize(ctx, &kinesis.UpdateMaxRecordSizeInput{StreamARN: d.StreamDescriptionSummary.StreamARN, MaxRecordSizeInKiB: aws.Int32(2048)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: make([]byte, 1<<20+1)}); err != nil {
		t.Fatalf("1 MiB + 1 record with a 2 MiB limit: %v", err)
	}
}

func TestListShardsFilters(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := newStream(t, c, 5)
	all, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if len(all.Shards) != 5 {
		t.Fatalf("%d shards", len(all.Shards))
	}
	page, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name), MaxResults: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Shards) != 2 || page.NextToken == nil {
		t.Fatalf("first page: %d shards, token %v", len(page.Shards), page.NextToken)
	}
	next, err := c.ListShards(ctx, &kinesis.ListShardsInput{NextToken: page.NextToken, MaxResults: aws.Int32(10)})
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Shards) != 3 || aws.ToString(next.Shards[0].ShardId) != "shardId-000000000002" {
		t.Fatalf("second page: %v", next.Shards)
	}
	_, err = c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name), NextToken: page.NextToken})
	expectAPIError(t, err, "InvalidArgumentException", "")

	after, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name), ExclusiveStartShardId: aws.String("shardId-000000000003")})
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Shards) != 1 || aws.ToString(after.Shards[0].ShardId) != "shardId-000000000004" {
		t.Fatalf("ExclusiveStartShardId: %v", after.Shards)
	}
	for _, ft := range []types.ShardFilterType{types.ShardFilterTypeAtTrimHorizon, types.ShardFilterTypeFromTrimHorizon, types.ShardFilterTypeAtLatest} {
		out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name), ShardFilter: &types.ShardFilter{Type: ft}})
		if err != nil {
			t.Fatalf("%s: %v", ft, err)
		}
		if len(out.Shards) != 5 {
			t.Errorf("%s: %d shards, want 5", ft, len(out.Shards))
		}
	}
	out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name), ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000001")}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Shards) != 3 {
		t.Errorf("AFTER_SHARD_ID: %d shards, want 3", len(out.Shards))
	}
	for _, ft := range []types.ShardFilterType{types.ShardFilterTypeAtTimestamp, types.ShardFilterTypeFromTimestamp} {
		out, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(name), ShardFilter: &types.ShardFilter{Type: ft, Timestamp: aws.Time(time.Now())}})
		if err != nil {
			t.Fatalf("%s: %v", ft, err)
		}
		if len(out.Shards) != 5 {
			t.Errorf("%s: %d shards, want 5", ft, len(out.Shards))
		}
	}
}

func TestTagsRetentionMonitoringEncryption(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := newStream(t, c, 1)
	sum, _ := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	arn := sum.StreamDescriptionSummary.StreamARN

	// Tags, by name and by ARN.
	if _, err := c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String(name), Tags: map[string]string{"a": "1", "b": "2", "c": "3"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveTagsFromStream(ctx, &kinesis.RemoveTagsFromStreamInput{StreamName: aws.String(name), TagKeys: []string{"b"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.TagResource(ctx, &kinesis.TagResourceInput{ResourceARN: arn, Tags: map[string]string{"d": "4"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UntagResource(ctx, &kinesis.UntagResourceInput{ResourceARN: arn, TagKeys: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	lt, err := c.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, tag := range lt.Tags {
		keys = append(keys, aws.ToString(tag.Key))
	}
	if !slices.Equal(keys, []string{"c", "d"}) {
		t.Errorf("tags %v, want [c d]", keys)
	}
	lr, err := c.ListTagsForResource(ctx, &kinesis.ListTagsForResourceInput{ResourceARN: arn})
	if err != nil || len(lr.Tags) != 2 {
		t.Errorf("ListTagsForResource: %v, %v", lr, err)
	}
	page, err := c.ListTagsForStream(ctx, &kinesis.ListTagsForStreamInput{StreamName: aws.String(name), Limit: aws.Int32(1)})
	if err != nil || len(page.Tags) != 1 || !aws.ToBool(page.HasMoreTags) {
		t.Errorf("ListTagsForStream Limit 1: %+v %v", page, err)
	}
	tooMany := map[string]string{}
	for i := range 51 {
		tooMany[fmt.Sprint("t", i)] = "v"
	}
	_, err = c.AddTagsToStream(ctx, &kinesis.AddTagsToStreamInput{StreamName: aws.String(name), Tags: tooMany})
	if err == nil {
		t.Error("51 tags accepted")
	}

	// Retention.
	if _, err := c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(name), RetentionPeriodHours: aws.Int32(48)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)
	_, err = c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String(name), RetentionPeriodHours: aws.Int32(72)})
	expectAPIError(t, err, "InvalidArgumentException", "")
	_, err = c.IncreaseStreamRetentionPeriod(ctx, &kinesis.IncreaseStreamRetentionPeriodInput{StreamName: aws.String(name), RetentionPeriodHours: aws.Int32(8761)})
	if err == nil {
		t.Error("retention of 8761 hours accepted")
	}
	if _, err := c.DecreaseStreamRetentionPeriod(ctx, &kinesis.DecreaseStreamRetentionPeriodInput{StreamName: aws.String(name), RetentionPeriodHours: aws.Int32(24)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)

	// Enhanced monitoring.
	em, err := c.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: aws.String(name), ShardLevelMetrics: []types.MetricsName{types.MetricsNameIncomingBytes}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(em.DesiredShardLevelMetrics, types.MetricsNameIncomingBytes) {
		t.Errorf("desired metrics %v", em.DesiredShardLevelMetrics)
	}
	waitActive(t, c, name)
	if _, err := c.DisableEnhancedMonitoring(ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: aws.String(name), ShardLevelMetrics: []types.MetricsName{types.MetricsNameAll}}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)

	// Encryption: records written while it is on report KMS.
	if _, err := c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String(name), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: []byte("secret")})
	if err != nil {
		t.Fatal(err)
	}
	if put.EncryptionType != types.EncryptionTypeKms {
		t.Errorf("PutRecord EncryptionType %q with encryption on", put.EncryptionType)
	}
	recs := readAll(t, c, name)["shardId-000000000000"]
	if len(recs) != 1 || recs[0].EncryptionType != types.EncryptionTypeKms {
		t.Errorf("records %+v", recs)
	}
	if _, err := c.StopStreamEncryption(ctx, &kinesis.StopStreamEncryptionInput{StreamName: aws.String(name), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)

	// Resource policies.
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kinesis:GetRecords","Resource":"*"}]}`
	if _, err := c.PutResourcePolicy(ctx, &kinesis.PutResourcePolicyInput{ResourceARN: arn, Policy: aws.String(policy)}); err != nil {
		t.Fatal(err)
	}
	gp, err := c.GetResourcePolicy(ctx, &kinesis.GetResourcePolicyInput{ResourceARN: arn})
	if err != nil || aws.ToString(gp.Policy) != policy {
		t.Errorf("GetResourcePolicy %v %v", gp, err)
	}
	if _, err := c.DeleteResourcePolicy(ctx, &kinesis.DeleteResourcePolicyInput{ResourceARN: arn}); err != nil {
		t.Fatal(err)
	}

	// Account-level.
	lim, err := c.DescribeLimits(ctx, &kinesis.DescribeLimitsInput{})
	if err != nil || aws.ToInt32(lim.ShardLimit) != 200 || aws.ToInt32(lim.OpenShardCount) < 1 {
		t.Errorf("DescribeLimits %+v %v", lim, err)
	}
	if _, err := c.DescribeAccountSettings(ctx, &kinesis.DescribeAccountSettingsInput{}); err != nil {
		t.Errorf("DescribeAccountSettings: %v", err)
	}
}

func TestShardLimit(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	_, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String("too-big"), ShardCount: aws.Int32(1000)})
	expectAPIError(t, err, "LimitExceededException", "This request would exceed the shard limit for the account 000000000000 in us-east-1.")
}

func TestOnDemandStream(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := fmt.Sprintf("ondemand-%d", time.Now().UnixNano()%1e6)
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)
	sum, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	s := sum.StreamDescriptionSummary
	if s.StreamModeDetails == nil || s.StreamModeDetails.StreamMode != types.StreamModeOnDemand || aws.ToInt32(s.OpenShardCount) != 4 {
		t.Errorf("on-demand stream: mode %+v, %d shards", s.StreamModeDetails, aws.ToInt32(s.OpenShardCount))
	}
}

func TestUnknownOperation(t *testing.T) {
	srv := sharedServer(t)
	req, _ := newRawRequest(srv, "Kinesis_20131202.NoSuchThing", "application/x-amz-json-1.1", "{}")
	status, body := doRaw(t, req)
	if status != 400 || !strings.Contains(body, "UnknownOperationException") {
		t.Fatalf("unknown operation: %d %s", status, body)
	}
}
