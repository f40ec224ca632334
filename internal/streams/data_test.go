package streams

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPutGetRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 4)
	var puts []*PutRecordOutput
	for i := range 20 {
		puts = append(puts, e.put("s", fmt.Sprint("key-", i), fmt.Sprint("data-", i)))
	}
	// Each record is readable from its shard, in order, with its number.
	for _, shard := range []string{"shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000003"} {
		var want []string
		for i, p := range puts {
			if p.ShardId == shard {
				want = append(want, fmt.Sprint("data-", i))
			}
		}
		out := e.get(e.iter("s", shard, "TRIM_HORIZON", nil), 0)
		if len(out.Records) != len(want) {
			t.Fatalf("%s: %d records, want %d", shard, len(out.Records), len(want))
		}
		for i, r := range out.Records {
			if string(r.Data) != want[i] {
				t.Fatalf("%s record %d: %q want %q", shard, i, r.Data, want[i])
			}
			if i > 0 && r.SequenceNumber <= out.Records[i-1].SequenceNumber {
				t.Fatal("sequence numbers not increasing")
			}
			if r.EncryptionType != nil || r.ApproximateArrivalTimestamp.Millis() != e.clock.Now().UnixMilli() {
				t.Fatalf("record %+v", r)
			}
		}
		if out.NextShardIterator == nil || out.MillisBehindLatest != 0 {
			t.Fatalf("next iterator %v behind %d", out.NextShardIterator, out.MillisBehindLatest)
		}
		// The next iterator continues after the last record.
		more := e.get(*out.NextShardIterator, 0)
		if len(more.Records) != 0 {
			t.Fatal("records after the end")
		}
	}
	// Routing matches the hash ranges.
	d, _ := e.svc.DescribeStream(ctx, &DescribeStreamInput{StreamName: sp("s")})
	for i, p := range puts {
		h := partitionHash(fmt.Sprint("key-", i))
		for _, sh := range d.StreamDescription.Shards {
			lo, _ := parseHashKey(sh.HashKeyRange.StartingHashKey)
			hi, _ := parseHashKey(sh.HashKeyRange.EndingHashKey)
			if h.cmp(lo) >= 0 && h.cmp(hi) <= 0 && sh.ShardId != p.ShardId {
				t.Fatalf("key-%d went to %s, range says %s", i, p.ShardId, sh.ShardId)
			}
		}
	}
}

func TestPutRecordOptions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 2)
	// ExplicitHashKey overrides the partition key.
	out, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), ExplicitHashKey: sp("340282366920938463463374607431768211455"), Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if out.ShardId != "shardId-000000000001" || *out.EncryptionType != "NONE" {
		t.Fatalf("explicit hash key: %+v", out)
	}
	// SequenceNumberForOrdering: the new record is above it.
	out2, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), ExplicitHashKey: sp("340282366920938463463374607431768211455"), Data: []byte("y"), SequenceNumberForOrdering: &out.SequenceNumber})
	if err != nil {
		t.Fatal(err)
	}
	if out2.SequenceNumber <= out.SequenceNumber {
		t.Fatal("not ordered")
	}
	for _, tc := range []struct {
		name string
		in   *PutRecordInput
		code Code
		msg  string
	}{
		{"nil", nil, CodeInvalidArgument, ""},
		{"no key", &PutRecordInput{StreamName: sp("s"), Data: []byte("x")}, CodeValidation, "1 validation error detected: Value null at 'partitionKey' failed to satisfy constraint: Member must not be null"},
		{"empty key", &PutRecordInput{StreamName: sp("s"), PartitionKey: sp(""), Data: []byte("x")}, CodeValidation, ""},
		{"long key", &PutRecordInput{StreamName: sp("s"), PartitionKey: sp(strings.Repeat("é", 257)), Data: []byte("x")}, CodeValidation, ""},
		{"missing stream", &PutRecordInput{StreamName: sp("nope"), PartitionKey: sp("a")}, CodeResourceNotFound, "Stream nope under account 000000000000 not found."},
		{"hash key too big", &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), ExplicitHashKey: sp("340282366920938463463374607431768211456")}, CodeInvalidArgument,
			"Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was 340282366920938463463374607431768211456"},
		{"hash key garbage", &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), ExplicitHashKey: sp("-5")}, CodeInvalidArgument, ""},
		{"bad ordering", &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), SequenceNumberForOrdering: sp("12")}, CodeInvalidArgument,
			"ExclusiveMinimumSequenceNumber 12 used in PutRecord on stream s under account 000000000000 is invalid."},
		{"too large", &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), Data: make([]byte, 1<<20)}, CodeValidation,
			"1 validation error detected: Record size 1048577 bytes (data plus partition key) at 'data' exceeds the maximum record size of 1024 KiB of stream s under account 000000000000."},
		{"data too large", &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), Data: make([]byte, 1<<20+1)}, CodeValidation,
			"1 validation error detected: Value at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.PutRecord(ctx, tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	// Exactly at the limit is fine; raising the limit admits larger records.
	if _, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), Data: make([]byte, 1<<20-1)}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.UpdateMaxRecordSize(ctx, &UpdateMaxRecordSizeInput{StreamName: sp("s"), MaxRecordSizeInKiB: ip(2048)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), Data: make([]byte, 2<<20-1)}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, e.svc.UpdateMaxRecordSize(ctx, &UpdateMaxRecordSizeInput{StreamName: sp("s"), MaxRecordSizeInKiB: ip(10241)}), CodeValidation, "")
	wantErr(t, e.svc.UpdateMaxRecordSize(ctx, &UpdateMaxRecordSizeInput{StreamName: sp("s")}), CodeValidation, "")
	sum, _ := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")})
	if *sum.StreamDescriptionSummary.MaxRecordSizeInKiB != 2048 {
		t.Fatal("max record size not reported")
	}
}

func TestPutRecordsOrderAndGrouping(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 8)
	const n = 500
	in := &PutRecordsInput{StreamName: sp("s")}
	for i := range n {
		in.Records = append(in.Records, PutRecordsRequestEntry{PartitionKey: sp(fmt.Sprint("k", i%37)), Data: []byte(fmt.Sprint(i))})
	}
	out, err := e.svc.PutRecords(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if out.FailedRecordCount != 0 || len(out.Records) != n || *out.EncryptionType != "NONE" {
		t.Fatalf("failed %d of %d", out.FailedRecordCount, len(out.Records))
	}
	// Response order = request order: each entry's number reads back its data.
	perShard := map[string][]int{}
	for i, r := range out.Records {
		if r.SequenceNumber == nil || r.ShardId == nil || r.ErrorCode != nil {
			t.Fatalf("entry %d %+v", i, r)
		}
		perShard[*r.ShardId] = append(perShard[*r.ShardId], i)
	}
	for shard, idx := range perShard {
		got := e.get(e.iter("s", shard, "TRIM_HORIZON", nil), 0).Records
		if len(got) != len(idx) {
			t.Fatalf("%s: %d records, want %d", shard, len(got), len(idx))
		}
		for j, i := range idx { // request order within a shard
			if string(got[j].Data) != fmt.Sprint(i) || got[j].SequenceNumber != *out.Records[i].SequenceNumber {
				t.Fatalf("%s record %d: %q %s, want %d %s", shard, j, got[j].Data, got[j].SequenceNumber, i, *out.Records[i].SequenceNumber)
			}
			if got[j].PartitionKey != fmt.Sprint("k", i%37) {
				t.Fatalf("partition key %q", got[j].PartitionKey)
			}
		}
	}
}

func TestPutRecordsErrors(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	rec := PutRecordsRequestEntry{PartitionKey: sp("a"), Data: []byte("x")}
	many := make([]PutRecordsRequestEntry, 501)
	for i := range many {
		many[i] = rec
	}
	for _, tc := range []struct {
		name string
		in   *PutRecordsInput
		code Code
		msg  string
	}{
		{"nil records", &PutRecordsInput{StreamName: sp("s")}, CodeValidation, ""},
		{"empty records", &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{}}, CodeValidation, ""},
		{"too many", &PutRecordsInput{StreamName: sp("s"), Records: many}, CodeValidation, ""},
		{"no key", &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{rec, {Data: []byte("x")}}}, CodeValidation,
			"1 validation error detected: Value null at 'records.2.member.partitionKey' failed to satisfy constraint: Member must not be null"},
		{"bad hash", &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{{PartitionKey: sp("a"), ExplicitHashKey: sp("x")}}}, CodeInvalidArgument, ""},
		{"too large", &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{rec, {PartitionKey: sp("a"), Data: make([]byte, 1<<20+1)}}}, CodeValidation,
			"1 validation error detected: Value at 'records.2.member.data' failed to satisfy constraint: Member must have length less than or equal to 1048576"},
		{"missing", &PutRecordsInput{StreamName: sp("x"), Records: []PutRecordsRequestEntry{rec}}, CodeResourceNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.PutRecords(ctx, tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	// Nothing was written by the failed requests.
	if got := e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 0); len(got.Records) != 0 {
		t.Fatalf("%d records written by failed requests", len(got.Records))
	}
}

func TestPutRecordsPartialFailure(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.EnforceThroughput = true })
	e.create("s", 2)
	// 1,000 records/s per shard: 1,200 records to shard 0 in one second
	// fail 200 with the per-record error; shard 1 is unaffected.
	var failed, ok int
	for round := range 3 {
		in := &PutRecordsInput{StreamName: sp("s")}
		for range 400 {
			in.Records = append(in.Records, PutRecordsRequestEntry{PartitionKey: sp("a"), ExplicitHashKey: sp("0"), Data: []byte("x")})
		}
		in.Records = append(in.Records, PutRecordsRequestEntry{PartitionKey: sp("b"), ExplicitHashKey: sp("340282366920938463463374607431768211455"), Data: []byte("y")})
		out, err := e.svc.PutRecords(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				failed++
				if *r.ErrorCode != "ProvisionedThroughputExceededException" ||
					*r.ErrorMessage != "Rate exceeded for shard shardId-000000000000 in stream s under account 000000000000." ||
					r.SequenceNumber != nil || r.ShardId != nil {
					t.Fatalf("round %d entry %d: %+v", round, i, r)
				}
			} else {
				ok++
			}
		}
		if last := out.Records[400]; last.ErrorCode != nil || *last.ShardId != "shardId-000000000001" {
			t.Fatalf("round %d: other shard throttled: %+v", round, last)
		}
		if int(out.FailedRecordCount) != countFailed(out) {
			t.Fatal("FailedRecordCount mismatch")
		}
	}
	if failed != 200 || ok != 1003 {
		t.Fatalf("failed %d ok %d, want 200 and 1003", failed, ok)
	}
	// A second later the shard takes records again.
	e.clock.Advance(time.Second)
	if _, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), ExplicitHashKey: sp("0"), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	// PutRecord is refused whole.
	big := make([]byte, 1<<20-1)
	_, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), ExplicitHashKey: sp("0"), Data: big})
	wantErr(t, err, CodeProvisionedThroughputExceeded, "Rate exceeded for shard shardId-000000000000 in stream s under account 000000000000.")
}

func countFailed(o *PutRecordsOutput) int {
	n := 0
	for _, r := range o.Records {
		if r.ErrorCode != nil {
			n++
		}
	}
	return n
}

func TestGetRecordsThrottled(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.EnforceThroughput = true })
	e.create("s", 1)
	it := e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil)
	for range 5 {
		e.get(it, 0)
	}
	_, err := e.svc.GetRecords(context.Background(), &GetRecordsInput{ShardIterator: &it})
	wantErr(t, err, CodeProvisionedThroughputExceeded, "")
	e.clock.Advance(time.Second)
	e.get(it, 0)
}

func TestGetShardIterator(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 2)
	const sh = "shardId-000000000000"
	var seqs []string
	for i := range 5 {
		p, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("k"), ExplicitHashKey: sp("1"), Data: []byte{byte('0' + i)}})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, p.SequenceNumber)
		e.clock.Advance(10 * time.Second)
	}
	data := func(it string) string {
		var b bytes.Buffer
		for _, r := range e.get(it, 0).Records {
			b.Write(r.Data)
		}
		return b.String()
	}
	ts := func(d time.Duration) *Timestamp { return &Timestamp{e.clock.Now().Add(d)} }
	for _, tc := range []struct {
		name string
		in   GetShardIteratorInput
		want string
	}{
		{"trim horizon", GetShardIteratorInput{ShardIteratorType: sp("TRIM_HORIZON")}, "01234"},
		{"latest", GetShardIteratorInput{ShardIteratorType: sp("LATEST")}, ""},
		{"at", GetShardIteratorInput{ShardIteratorType: sp("AT_SEQUENCE_NUMBER"), StartingSequenceNumber: &seqs[2]}, "234"},
		{"after", GetShardIteratorInput{ShardIteratorType: sp("AFTER_SEQUENCE_NUMBER"), StartingSequenceNumber: &seqs[2]}, "34"},
		{"after last", GetShardIteratorInput{ShardIteratorType: sp("AFTER_SEQUENCE_NUMBER"), StartingSequenceNumber: &seqs[4]}, ""},
		{"at timestamp", GetShardIteratorInput{ShardIteratorType: sp("AT_TIMESTAMP"), Timestamp: ts(-25 * time.Second)}, "34"},
		{"at old timestamp", GetShardIteratorInput{ShardIteratorType: sp("AT_TIMESTAMP"), Timestamp: &Timestamp{time.Unix(0, 0)}}, "01234"},
		{"bare shard number", GetShardIteratorInput{ShardId: sp("0"), ShardIteratorType: sp("TRIM_HORIZON")}, "01234"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.StreamName = sp("s")
			if in.ShardId == nil {
				in.ShardId = sp(sh)
			}
			out, err := e.svc.GetShardIterator(ctx, &in)
			if err != nil {
				t.Fatal(err)
			}
			if len(*out.ShardIterator) > 512 {
				t.Fatalf("iterator of %d chars", len(*out.ShardIterator))
			}
			if got := data(*out.ShardIterator); got != tc.want {
				t.Fatalf("read %q, want %q", got, tc.want)
			}
		})
	}
	// LATEST sees records written after it.
	latest := e.iter("s", sh, "LATEST", nil)
	e.put("s", "k", "new") // may land in either shard
	_ = latest

	other := seqNum{created: 1, shard: 0}.String()
	wrongShard := seqNum{created: uint64(e.clock.Now().Unix()), shard: 1}.String()
	for _, tc := range []struct {
		name string
		in   GetShardIteratorInput
		code Code
		msg  string
	}{
		{"missing type", GetShardIteratorInput{ShardId: sp(sh)}, CodeValidation, ""},
		{"bad type", GetShardIteratorInput{ShardId: sp(sh), ShardIteratorType: sp("OLDEST")}, CodeValidation, ""},
		{"missing shard", GetShardIteratorInput{ShardIteratorType: sp("LATEST")}, CodeValidation, ""},
		{"unknown shard", GetShardIteratorInput{ShardId: sp("shardId-000000000009"), ShardIteratorType: sp("LATEST")}, CodeResourceNotFound,
			"Shard shardId-000000000009 in stream s under account 000000000000 does not exist"},
		{"garbage shard", GetShardIteratorInput{ShardId: sp("shard-x"), ShardIteratorType: sp("LATEST")}, CodeResourceNotFound,
			"Could not find shard shard-x in stream s under account 000000000000."},
		{"at without number", GetShardIteratorInput{ShardId: sp(sh), ShardIteratorType: sp("AT_SEQUENCE_NUMBER")}, CodeInvalidArgument,
			"Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber."},
		{"latest with number", GetShardIteratorInput{ShardId: sp(sh), ShardIteratorType: sp("LATEST"), StartingSequenceNumber: &seqs[0]}, CodeInvalidArgument,
			"Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified LATEST and also a StartingSequenceNumber."},
		{"garbage number", GetShardIteratorInput{ShardId: sp(sh), ShardIteratorType: sp("AT_SEQUENCE_NUMBER"), StartingSequenceNumber: sp("123")}, CodeInvalidArgument,
			"StartingSequenceNumber 123 used in GetShardIterator on shard shardId-000000000000 in stream s under account 000000000000 is invalid."},
		{"number of other shard", GetShardIteratorInput{ShardId: sp(sh), ShardIteratorType: sp("AT_SEQUENCE_NUMBER"), StartingSequenceNumber: &wrongShard}, CodeInvalidArgument,
			"Invalid StartingSequenceNumber. It encodes shardId-000000000001, while it was used in a call to a shard with shardId-000000000000"},
		{"number of other stream", GetShardIteratorInput{ShardId: sp(sh), ShardIteratorType: sp("AT_SEQUENCE_NUMBER"), StartingSequenceNumber: &other}, CodeInvalidArgument,
			"StartingSequenceNumber " + other + " used in GetShardIterator on shard shardId-000000000000 in stream s under account 000000000000 is invalid because it did not come from this stream."},
		{"no timestamp", GetShardIteratorInput{ShardId: sp(sh), ShardIteratorType: sp("AT_TIMESTAMP")}, CodeInvalidArgument,
			"Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter."},
		{"future timestamp", GetShardIteratorInput{ShardId: sp(sh), ShardIteratorType: sp("AT_TIMESTAMP"), Timestamp: ts(time.Hour)}, CodeInvalidArgument, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.StreamName = sp("s")
			_, err := e.svc.GetShardIterator(ctx, &in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	_, err := e.svc.GetShardIterator(ctx, &GetShardIteratorInput{StreamName: sp("nope"), ShardId: sp(sh), ShardIteratorType: sp("LATEST")})
	wantErr(t, err, CodeResourceNotFound, "Shard shardId-000000000000 in stream nope under account 000000000000 does not exist")
	_, err = e.svc.GetShardIterator(ctx, nil)
	wantErr(t, err, CodeInvalidArgument, "")
}

func TestGetRecordsLimits(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.TransitionDelay = 0 })
	e.create("s", 1)
	if err := e.svc.UpdateMaxRecordSize(ctx, &UpdateMaxRecordSizeInput{StreamName: sp("s"), MaxRecordSizeInKiB: ip(10240)}); err != nil {
		t.Fatal(err)
	}
	in := &PutRecordsInput{StreamName: sp("s")}
	for range 30 {
		in.Records = append(in.Records, PutRecordsRequestEntry{PartitionKey: sp("k"), Data: []byte("small")})
	}
	if _, err := e.svc.PutRecords(ctx, in); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(3 * time.Second)
	// Three 4 MiB records: a read stops at 10 MiB.
	for range 3 {
		if _, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("k"), Data: make([]byte, 4<<20)}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(2 * time.Second)
	it := e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil)
	out := e.get(it, 10)
	if len(out.Records) != 10 || out.MillisBehindLatest != 5000 {
		t.Fatalf("limit 10: %d records, behind %d", len(out.Records), out.MillisBehindLatest)
	}
	out = e.get(*out.NextShardIterator, 0)
	if len(out.Records) != 22 { // 20 small + two 4 MiB records within 10 MiB
		t.Fatalf("byte limit: %d records", len(out.Records))
	}
	out = e.get(*out.NextShardIterator, 0)
	if len(out.Records) != 1 || out.MillisBehindLatest != 0 {
		t.Fatalf("last: %d records behind %d", len(out.Records), out.MillisBehindLatest)
	}
	for _, l := range []int32{0, 10001} {
		_, err := e.svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: &it, Limit: &l})
		wantErr(t, err, CodeValidation, "")
	}
}

func TestIteratorTamperAndExpiry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	it := e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil)
	raw, _ := base64.RawURLEncoding.DecodeString(it)
	flipped := append([]byte(nil), raw...)
	flipped[10] ^= 1
	bad := []string{
		"", "garbage", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		base64.RawURLEncoding.EncodeToString(flipped), it[:len(it)-2], it + "A", strings.Repeat("A", 600),
	}
	for _, b := range bad {
		_, err := e.svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: &b})
		wantErr(t, err, CodeInvalidArgument, "Invalid ShardIterator.")
	}
	// Another key does not verify either.
	other := tokenSigner{key: []byte("other")}.encodeIterator(iterator{issued: e.clock.Now().UnixMilli(), stream: "s", shard: 0})
	_, err := e.svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: &other})
	wantErr(t, err, CodeInvalidArgument, "Invalid ShardIterator.")

	e.clock.Advance(5 * time.Minute)
	e.get(it, 0) // exactly 5 minutes: still valid
	e.clock.Advance(time.Millisecond)
	_, err = e.svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: &it})
	wantErr(t, err, CodeExpiredIterator, "Iterator expired. The iterator was created at time Fri Mar 14 15:09:26 UTC 2025 while right now it is Fri Mar 14 15:14:26 UTC 2025 which is further in the future than the tolerated delay of 300000 milliseconds.")

	// An iterator of a deleted and recreated stream is refused.
	it = e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil)
	if err := e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamName: sp("s")}); err != nil {
		t.Fatal(err)
	}
	e.create("s", 1)
	_, err = e.svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: &it})
	wantErr(t, err, CodeResourceNotFound, "Shard shardId-000000000000 in stream s under account 000000000000 does not exist")
	// StreamARN must name the iterator's stream.
	it = e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil)
	_, err = e.svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: &it, StreamARN: sp("arn:aws:kinesis:us-east-1:000000000000:stream/t")})
	wantErr(t, err, CodeInvalidArgument, "Invalid ShardIterator.")
	if _, err := e.svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: &it, StreamARN: sp("arn:aws:kinesis:us-east-1:000000000000:stream/s")}); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.GetRecords(ctx, nil)
	wantErr(t, err, CodeValidation, "")
}

func FuzzDecodeIterator(f *testing.F) {
	ts := tokenSigner{key: []byte("fuzz")}
	f.Add(ts.encodeIterator(iterator{issued: 1, stream: "s", streamID: "x-1", shard: 3, offset: 9}))
	f.Add(ts.encodePage(pageToken{issued: 1, stream: "s", after: "shardId-000000000001"}))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		if it, ok := ts.decodeIterator(s); ok {
			if ts.encodeIterator(it) != s {
				t.Fatalf("accepted a non-canonical iterator %q", s)
			}
		}
		if pt, ok := ts.decodePage(s); ok {
			if ts.encodePage(pt) != s {
				t.Fatalf("accepted a non-canonical token %q", s)
			}
		}
	})
}

func FuzzParseSeqNum(f *testing.F) {
	f.Add(seqNum{created: 5, shard: 1, offset: 2, arrival: 6}.String())
	f.Add("0")
	f.Fuzz(func(t *testing.T, s string) {
		if sn, ok := parseSeqNum(s); ok && sn.String() != s {
			t.Fatalf("%q decodes to %+v which encodes to %q", s, sn, sn.String())
		}
	})
}

func TestEncryptedRecords(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	e.put("s", "a", "plain")
	if err := e.svc.StartStreamEncryption(ctx, &StreamEncryptionInput{StreamName: sp("s"), EncryptionType: sp("KMS"), KeyId: sp("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	p := e.put("s", "a", "secret")
	if *p.EncryptionType != "KMS" {
		t.Fatal("PutRecord does not report KMS")
	}
	out, err := e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{{PartitionKey: sp("b"), Data: []byte("s2")}}})
	if err != nil || *out.EncryptionType != "KMS" {
		t.Fatalf("PutRecords %v %v", out, err)
	}
	sum, _ := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")})
	if *sum.StreamDescriptionSummary.EncryptionType != "KMS" || *sum.StreamDescriptionSummary.KeyId != "alias/aws/kinesis" {
		t.Fatal("summary does not report KMS")
	}
	if err := e.svc.StopStreamEncryption(ctx, &StreamEncryptionInput{StreamName: sp("s"), EncryptionType: sp("KMS"), KeyId: sp("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	e.put("s", "a", "plain again")
	recs := e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 0).Records
	var got []string
	for _, r := range recs {
		et := "NONE"
		if r.EncryptionType != nil {
			et = *r.EncryptionType
		}
		got = append(got, string(r.Data)+":"+et+":"+r.PartitionKey)
	}
	if strings.Join(got, ",") != "plain:NONE:a,secret:KMS:a,s2:KMS:b,plain again:NONE:a" {
		t.Fatalf("records %v", got)
	}
	wantErr(t, e.svc.StartStreamEncryption(ctx, &StreamEncryptionInput{StreamName: sp("s"), EncryptionType: sp("NONE"), KeyId: sp("k")}), CodeInvalidArgument, "")
	wantErr(t, e.svc.StartStreamEncryption(ctx, &StreamEncryptionInput{StreamName: sp("s"), EncryptionType: sp("KMS")}), CodeValidation, "")
}

// TestEncryptionAtEndOfUpdating: StartStreamEncryption and
// StopStreamEncryption take effect for records when the stream is ACTIVE
// again, as Kinesis documents; the description shows the requested setting
// at once.
func TestEncryptionAtEndOfUpdating(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.TransitionDelay = time.Second })
	e.create("s", 1)
	e.clock.Advance(time.Second)
	putBoth := func(data string) string {
		t.Helper()
		one := e.put("s", "a", data)
		many, err := e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{{PartitionKey: sp("b"), Data: []byte(data)}}})
		if err != nil {
			t.Fatal(err)
		}
		return *one.EncryptionType + "/" + *many.EncryptionType
	}
	summary := func() string {
		t.Helper()
		sum, err := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")})
		if err != nil {
			t.Fatal(err)
		}
		d := sum.StreamDescriptionSummary
		return d.StreamStatus + " " + *d.EncryptionType
	}
	if err := e.svc.StartStreamEncryption(ctx, &StreamEncryptionInput{StreamName: sp("s"), EncryptionType: sp("KMS"), KeyId: sp("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	if got := summary() + " " + putBoth("during start"); got != "UPDATING KMS NONE/NONE" {
		t.Fatalf("while starting: %s", got)
	}
	e.clock.Advance(time.Second)
	if got := putBoth("started") + " " + summary(); got != "KMS/KMS ACTIVE KMS" {
		t.Fatalf("after starting: %s", got)
	}
	if err := e.svc.StopStreamEncryption(ctx, &StreamEncryptionInput{StreamName: sp("s"), EncryptionType: sp("KMS"), KeyId: sp("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	if got := summary() + " " + putBoth("during stop"); got != "UPDATING NONE KMS/KMS" {
		t.Fatalf("while stopping: %s", got)
	}
	e.clock.Advance(time.Second)
	if got := putBoth("stopped"); got != "NONE/NONE" {
		t.Fatalf("after stopping: %s", got)
	}
	var got []string
	for _, r := range e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 0).Records {
		et := "NONE"
		if r.EncryptionType != nil {
			et = *r.EncryptionType
		}
		got = append(got, string(r.Data)+":"+et)
	}
	want := "during start:NONE,during start:NONE,started:KMS,started:KMS,during stop:KMS,during stop:KMS,stopped:NONE,stopped:NONE"
	if strings.Join(got, ",") != want {
		t.Fatalf("records %v", got)
	}
}

// TestAfterStartingSequenceNumber: a shard's StartingSequenceNumber stands
// just before its first record, so AFTER_SEQUENCE_NUMBER with it starts at
// the first record (as a SubscribeToShard ContinuationSequenceNumber on an
// empty shard does), and AT_SEQUENCE_NUMBER with it too.
func TestAfterStartingSequenceNumber(t *testing.T) {
	e := newEnv(t)
	e.create("s", 1)
	e.clock.Advance(time.Second)
	for _, d := range []string{"r0", "r1", "r2"} {
		e.put("s", "k", d)
	}
	ls, err := e.svc.ListShards(context.Background(), &ListShardsInput{StreamName: sp("s")})
	if err != nil {
		t.Fatal(err)
	}
	start := ls.Shards[0].SequenceNumberRange.StartingSequenceNumber
	for _, typ := range []string{"AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"} {
		out := e.get(e.iter("s", "shardId-000000000000", typ, &start), 10)
		if len(out.Records) != 3 || string(out.Records[0].Data) != "r0" {
			t.Errorf("%s StartingSequenceNumber: %d records, first %q", typ, len(out.Records), out.Records[0].Data)
		}
	}
}

// TestStoreKeepsShardState: the same metadata built a second time from no
// cached entry (a background list racing the stream's creation) does not
// replace the cached entry, whose shards hold state such as the throughput
// buckets. TestPutRecordsPartialFailure failed about once in eight runs of
// the package before.
func TestStoreKeepsShardState(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, func(o *Options) { o.EnforceThroughput = true })
	e.create("s", 1)
	st, err := e.svc.cached(ctx, "s")
	if err != nil || st == nil {
		t.Fatal(st, err)
	}
	again := e.svc.build(st.meta, st.raw, st.version, nil)
	if got := e.svc.store("s", again); got != st {
		t.Fatal("a second decoding of the same version replaced the cached stream")
	}
	now, err := e.svc.cached(ctx, "s")
	if err != nil || now.shards[0] != st.shards[0] {
		t.Fatal("the cached stream's shards changed", err)
	}
}

// TestGetRecordsAnswersReused checks that a released answer's buffers,
// reused for the next answers, carry only those answers' own records: the
// second answer is shorter than the first, so that anything left over from
// it would show.
func TestGetRecordsAnswersReused(t *testing.T) {
	e := newEnv(t)
	e.create("s", 1)
	var want []string // sequence numbers, as PutRecord returned them
	for i := range 30 {
		want = append(want, e.put("s", fmt.Sprint("k", i), fmt.Sprint("v", i)).SequenceNumber)
	}
	it := e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil)
	next := 0
	for _, limit := range []int32{20, 4, 6} {
		out := e.get(it, limit)
		if len(out.Records) != int(limit) {
			t.Fatalf("limit %d: %d records", limit, len(out.Records))
		}
		for _, r := range out.Records {
			if r.PartitionKey != fmt.Sprint("k", next) || string(r.Data) != fmt.Sprint("v", next) ||
				r.SequenceNumber != want[next] || r.EncryptionType != nil {
				t.Fatalf("record %d: %q %q %s %v, want sequence number %s", next, r.PartitionKey, r.Data, r.SequenceNumber, r.EncryptionType, want[next])
			}
			next++
		}
		it = *out.NextShardIterator
		out.Release()
		out.Release() // a second call does nothing
	}
}

// TestAppenders checks the goroutines that run PutRecords' other appends:
// an idle one takes the next call's work, no more than maxAppenders are
// kept (beyond, work runs on a goroutine of its own), and they end when the
// service stops.
func TestAppenders(t *testing.T) {
	a := appenders{work: make(chan func())}
	stop := make(chan struct{})
	waitIdle := func(want int32) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); a.n.Load() != want; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d appenders, want %d", a.n.Load(), want)
			}
		}
	}
	done := make(chan struct{})
	a.run(stop, func() { done <- struct{}{} })
	<-done
	for range 20 { // the one appender waits for work again, and takes it
		select {
		case a.work <- func() { done <- struct{}{} }:
		case <-time.After(10 * time.Second):
			t.Fatal("no idle appender took the work")
		}
		<-done
	}
	if n := a.n.Load(); n != 1 {
		t.Fatalf("%d appenders after sequential work, want 1", n)
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range maxAppenders + 50 {
		wg.Add(1)
		a.run(stop, func() {
			defer wg.Done()
			<-release
		})
	}
	if n := a.n.Load(); n != maxAppenders {
		t.Errorf("%d appenders while %d calls wait, want at most %d", n, maxAppenders+50, maxAppenders)
	}
	close(release)
	wg.Wait()
	close(stop)
	waitIdle(0)
}
