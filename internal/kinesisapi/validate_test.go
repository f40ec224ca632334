package kinesisapi

import (
	"encoding/base64"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel/runnel/internal/streams"

	"github.com/fxamacker/cbor/v2"
)

func TestValidationMessages(t *testing.T) {
	name129 := strings.Repeat("a", 129)
	key257 := strings.Repeat("k", 257)
	bigData := base64.StdEncoding.EncodeToString(make([]byte, 10485761))
	records501 := "[" + strings.TrimSuffix(strings.Repeat(`{"PartitionKey":"","Data":""},`, 501), ",") + "]"
	allMetrics := "[IncomingBytes, IncomingRecords, OutgoingBytes, OutgoingRecords, WriteProvisionedThroughputExceeded, ReadProvisionedThroughputExceeded, IteratorAgeMilliseconds, ALL]"
	const nameRE = "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"

	tests := []struct {
		name string
		op   string
		body string
		want []string // the violations, in order; nil means valid
	}{
		{"putrecords missing records", "PutRecords", `{}`, []string{
			"Value null at 'records' failed to satisfy constraint: Member must not be null",
		}},
		{"putrecords empty", "PutRecords", `{"StreamName":"","Records":[]}`, []string{
			"Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1",
			"Value '' at 'streamName' failed to satisfy constraint: " + nameRE,
			"Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1",
		}},
		{"putrecords empty members", "PutRecords", `{"StreamName":"","Records":[{"PartitionKey":"","Data":"","ExplicitHashKey":""}]}`, []string{
			"Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1",
			"Value '' at 'records.1.member.explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
			"Value '' at 'streamName' failed to satisfy constraint: " + nameRE,
			"Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1",
		}},
		{"putrecords too long", "PutRecords", `{"StreamName":"` + name129 + `","Records":[{"PartitionKey":"` + key257 + `","Data":"` + bigData + `","ExplicitHashKey":""}]}`, []string{
			"Value '" + key257 + "' at 'records.1.member.partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256",
			"Value '' at 'records.1.member.explicitHashKey' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,38})",
			"Value 'java.nio.HeapByteBuffer[pos=0 lim=10485761 cap=10485761]' at 'records.1.member.data' failed to satisfy constraint: Member must have length less than or equal to 10485760",
			"Value '" + name129 + "' at 'streamName' failed to satisfy constraint: Member must have length less than or equal to 128",
		}},
		// PartitionKey is optional in the model (AUTO streams ignore it);
		// the service requires it of other streams.
		{"putrecords missing members", "PutRecords", `{"StreamName":"s","Records":[{}]}`, []string{
			"Value null at 'records.1.member.data' failed to satisfy constraint: Member must not be null",
		}},
		{"putrecords valid", "PutRecords", `{"StreamName":"s","Records":[{"PartitionKey":"k","Data":"","ExplicitHashKey":"0"}]}`, nil},
		{"putrecord nulls", "PutRecord", `{"StreamName":"s"}`, []string{
			"Value null at 'data' failed to satisfy constraint: Member must not be null",
		}},
		{"partition key counts utf-16 units", "PutRecord", `{"StreamName":"s","Data":"","PartitionKey":"` + strings.Repeat("😀", 129) + `"}`, []string{
			"Value '" + strings.Repeat("😀", 129) + "' at 'partitionKey' failed to satisfy constraint: Member must have length less than or equal to 256",
		}},
		{"getshariterator nulls", "GetShardIterator", `{}`, []string{
			"Value null at 'shardId' failed to satisfy constraint: Member must not be null",
			"Value null at 'shardIteratorType' failed to satisfy constraint: Member must not be null",
		}},
		{"getshariterator bad", "GetShardIterator", `{"StreamName":"","ShardId":"","ShardIteratorType":"","StartingSequenceNumber":""}`, []string{
			"Value '' at 'shardId' failed to satisfy constraint: " + nameRE,
			"Value '' at 'shardId' failed to satisfy constraint: Member must have length greater than or equal to 1",
			"Value '' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, TRIM_HORIZON]",
			"Value '' at 'startingSequenceNumber' failed to satisfy constraint: Member must satisfy regular expression pattern: 0|([1-9]\\d{0,128})",
			"Value '' at 'streamName' failed to satisfy constraint: " + nameRE,
			"Value '' at 'streamName' failed to satisfy constraint: Member must have length greater than or equal to 1",
		}},
		{"createstream null name", "CreateStream", `{}`, []string{
			"Value null at 'streamName' failed to satisfy constraint: Member must not be null",
		}},
		{"createstream ranges", "CreateStream", `{"StreamName":"s","ShardCount":0,"MaxRecordSizeInKiB":100000,"WarmThroughputMiBps":-1}`, []string{
			"Value '100000' at 'maxRecordSizeInKiB' failed to satisfy constraint: Member must have value less than or equal to 10240",
			"Value '0' at 'shardCount' failed to satisfy constraint: Member must have value greater than or equal to 1",
			"Value '-1' at 'warmThroughputMiBps' failed to satisfy constraint: Member must have value greater than or equal to 0",
		}},
		{"updateaccountsettings null", "UpdateAccountSettings", `{}`, []string{
			"Value null at 'minimumThroughputBillingCommitment' failed to satisfy constraint: Member must not be null",
		}},
		{"updateaccountsettings enum", "UpdateAccountSettings", `{"MinimumThroughputBillingCommitment":{"Status":"ON"}}`, []string{
			"Value 'ON' at 'minimumThroughputBillingCommitment.status' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED]",
		}},
		{"updatestreamwarmthroughput", "UpdateStreamWarmThroughput", `{"StreamName":"s","StreamId":"x","WarmThroughputMiBps":-1}`, []string{
			"Value 'x' at 'streamId' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z0-9]{20}-[a-z0-9]{3}",
			"Value '-1' at 'warmThroughputMiBps' failed to satisfy constraint: Member must have value greater than or equal to 0",
		}},
		{"updatestreamwarmthroughput null", "UpdateStreamWarmThroughput", `{"StreamName":"s"}`, []string{
			"Value null at 'warmThroughputMiBps' failed to satisfy constraint: Member must not be null",
		}},
		{"updatestreamrecorddistributionstrategy", "UpdateStreamRecordDistributionStrategy", `{"RecordDistributionStrategy":"RANDOM"}`, []string{
			"Value 'RANDOM' at 'recordDistributionStrategy' failed to satisfy constraint: Member must satisfy enum value set: [AUTO, USER_PARTITION_KEY]",
			"Value null at 'streamARN' failed to satisfy constraint: Member must not be null",
		}},
		{"createstream nested null", "CreateStream", `{"StreamName":"s","StreamModeDetails":{}}`, []string{
			"Value null at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must not be null",
		}},
		{"createstream nested enum", "CreateStream", `{"StreamName":"s","StreamModeDetails":{"StreamMode":"FAST"}}`, []string{
			"Value 'FAST' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]",
		}},
		{"liststreams limit", "ListStreams", `{"Limit":100000}`, []string{
			"Value '100000' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 10000",
		}},
		{"addtags key too long", "AddTagsToStream", `{"StreamName":"s","Tags":{"` + strings.Repeat("k", 129) + `":"v"}}`, []string{
			"Value '{" + strings.Repeat("k", 129) + "=v}' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]",
		}},
		{"addtags value too long", "AddTagsToStream", `{"StreamName":"s","Tags":{"b":"` + strings.Repeat("v", 257) + `","a":"x"}}`, []string{
			"Value '{a=x, b=" + strings.Repeat("v", 257) + "}' at 'tags' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 0]",
		}},
		{"addtags empty map", "AddTagsToStream", `{"StreamName":"s","Tags":{}}`, []string{
			"Value '{}' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1",
		}},
		{"removetags empty key", "RemoveTagsFromStream", `{"StreamName":"s","TagKeys":["a",""]}`, []string{
			"Value '[a, ]' at 'tagKeys' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]",
		}},
		{"monitoring enum list", "EnableEnhancedMonitoring", `{"StreamName":"s","ShardLevelMetrics":["foo"]}`, []string{
			"Value '[foo]' at 'shardLevelMetrics' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: " + allMetrics + "]",
		}},
		{"stream arn pattern", "DescribeStreamSummary", `{"StreamARN":"arn:aws:s3:::bucket"}`, []string{
			"Value 'arn:aws:s3:::bucket' at 'streamARN' failed to satisfy constraint: Member must satisfy regular expression pattern: arn:aws.*:kinesis:.*:\\d{12}:stream/\\S+",
		}},
		{"stream arn valid", "DescribeStreamSummary", `{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}`, nil},
		{"retention required", "IncreaseStreamRetentionPeriod", `{"StreamName":"s"}`, []string{
			"Value null at 'retentionPeriodHours' failed to satisfy constraint: Member must not be null",
		}},
		{"getrecords", "GetRecords", `{"ShardIterator":"","Limit":0}`, []string{
			"Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1",
			"Value '' at 'shardIterator' failed to satisfy constraint: Member must have length greater than or equal to 1",
		}},
		{"listshards filter", "ListShards", `{"StreamName":"s","ShardFilter":{"Type":"NOPE"},"MaxResults":0}`, []string{
			"Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1",
			"Value 'NOPE' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]",
		}},
		{"updateshardcount", "UpdateShardCount", `{"StreamName":"s"}`, []string{
			"Value null at 'scalingType' failed to satisfy constraint: Member must not be null",
			"Value null at 'targetShardCount' failed to satisfy constraint: Member must not be null",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			h := newTestHandler(t, f)
			w := sendJSON(h, tt.op, tt.body)
			if tt.want == nil {
				if w.Code != 200 && !strings.Contains(w.Body.String(), "does not implement") {
					t.Fatalf("status %d: %s", w.Code, w.Body)
				}
				return
			}
			m := jsonError(t, w)
			noun := "errors"
			if len(tt.want) == 1 {
				noun = "error"
			}
			want := fmt.Sprintf("%d validation %s detected: %s", len(tt.want), noun, strings.Join(tt.want, "; "))
			if w.Code != 400 || m["__type"] != "ValidationException" || m["message"] != want {
				t.Errorf("status %d type %v\n got: %v\nwant: %s", w.Code, m["__type"], m["message"], want)
			}
			if len(f.calls) != 0 {
				t.Errorf("backend called after a validation error")
			}
		})
	}

	t.Run("at most ten", func(t *testing.T) {
		h := newTestHandler(t, newFake())
		w := sendJSON(h, "PutRecords", `{"StreamName":"","Records":`+records501+`}`)
		msg, _ := jsonError(t, w)["message"].(string)
		if !strings.HasPrefix(msg, "10 validation errors detected: Value '[com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@") {
			t.Fatalf("message %.200s", msg)
		}
		if !strings.Contains(msg, "]' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500; "+
			"Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1;") ||
			!strings.HasSuffix(msg, "Value '' at 'records.9.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1") {
			t.Errorf("message %s", msg[len(msg)-400:])
		}
	})

	t.Run("cbor", func(t *testing.T) {
		h := newTestHandler(t, newFake())
		body, _ := cbor.Marshal(map[string]any{"Records": []any{map[string]any{"Data": []byte("x"), "PartitionKey": ""}}})
		w := send(h, contentTypeCBOR, TargetPrefix+".PutRecords", body)
		var m map[string]string
		if err := cbor.Unmarshal(w.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		want := "1 validation error detected: Value '' at 'records.1.member.partitionKey' failed to satisfy constraint: Member must have length greater than or equal to 1"
		if w.Code != 400 || m["__type"] != "ValidationException" || m["message"] != want {
			t.Errorf("%d %v", w.Code, m)
		}
	})
}

func TestJavaLength(t *testing.T) {
	for s, want := range map[string]int64{"": 0, "abc": 3, "é": 1, "😀": 2, "a😀b": 4, "\xff": 1} {
		if got := javaLength(s); got != want {
			t.Errorf("javaLength(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestPutEntriesValid holds PutRecords' quick check to the reflective walk:
// it may answer "valid" only where the walk finds nothing, and it must
// answer it for the usual requests (or it saves nothing).
func TestPutEntriesValid(t *testing.T) {
	sure := &operations["PutRecords"].input
	slow := *sure
	slow.members = slices.Clone(sure.members)
	hooks := 0
	for i := range slow.members {
		if slow.members[i].shape.valid != nil {
			slow.members[i].shape.valid = nil
			hooks++
		}
	}
	if hooks != 1 {
		t.Fatalf("%d quick checks on PutRecords' members, want 1 (Records)", hooks)
	}
	str := func(s string) *string { return &s }
	keys := []*string{nil, str(""), str("k"), str(strings.Repeat("k", 256)), str(strings.Repeat("k", 257)),
		str(strings.Repeat("é", 128)), str(strings.Repeat("é", 129)), str(strings.Repeat("😀", 64)), str("\xff\xfe")}
	hashes := []*string{nil, str(""), str("0"), str("00"), str("01"), str("1"), str(strings.Repeat("9", 39)),
		str(strings.Repeat("9", 40)), str("12a"), str("-1"), str(" 1"), str("340282366920938463463374607431768211455")}
	datas := [][]byte{nil, {}, []byte("x"), make([]byte, data.max), make([]byte, data.max+1)}
	name := str("s")
	checked, quick := 0, 0
	for _, k := range keys {
		for _, h := range hashes {
			for _, d := range datas {
				for _, lead := range []bool{false, true} {
					e := streams.PutRecordsRequestEntry{PartitionKey: k, ExplicitHashKey: h, Data: d}
					recs := []streams.PutRecordsRequestEntry{e}
					if lead { // the entry after a valid one
						recs = []streams.PutRecordsRequestEntry{{PartitionKey: str("a"), Data: []byte("b")}, e}
					}
					in := &streams.PutRecordsInput{StreamName: name, Records: recs}
					walked := validate(&slow, in)
					fast := putEntriesValid(reflect.ValueOf(recs))
					if fast && walked != nil {
						t.Fatalf("key %q hash %v data %d: quick check says valid, the walk: %v", derefOr(k), derefOr(h), len(d), walked)
					}
					if got := validate(sure, in); (got == nil) != (walked == nil) || got != nil && got.message != walked.message {
						t.Fatalf("key %q hash %v data %d: %v with the quick check, %v without", derefOr(k), derefOr(h), len(d), got, walked)
					}
					checked++
					if fast {
						quick++
					}
				}
			}
		}
	}
	usual := make([]streams.PutRecordsRequestEntry, 500)
	for i := range usual {
		usual[i] = streams.PutRecordsRequestEntry{PartitionKey: str("key-" + strconv.Itoa(i)), Data: make([]byte, 1024)}
	}
	if !putEntriesValid(reflect.ValueOf(usual)) {
		t.Fatal("quick check refuses a usual request")
	}
	t.Logf("%d inputs, %d decided by the quick check", checked, quick)
}

func derefOr(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}
