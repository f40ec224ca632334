package bench

import (
	"encoding/json"
	"reflect"
	"testing"
)

// unmarshalResults is the reference: what encoding/json makes of a
// PutRecords response.
func unmarshalResults(b []byte) ([]putResult, error) {
	var out rawPutRecordsOutput
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	res := []putResult{}
	for _, r := range out.Records {
		res = append(res, putResult{ShardID: r.ShardId, ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage})
	}
	return res, nil
}

var putRecordsResponses = []struct {
	body string
	fast bool // scanPutRecords reads it itself
}{
	{`{"FailedRecordCount":0,"Records":[{"SequenceNumber":"4960","ShardId":"shardId-000000000001"},{"SequenceNumber":"4961","ShardId":"shardId-000000000000"}],"EncryptionType":"NONE"}`, true},
	{` { "Records" : [ { "ShardId" : "shardId-000000000003" , "SequenceNumber" : "1" } ] , "FailedRecordCount" : 0 } `, true},
	{`{"FailedRecordCount":1,"Records":[{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard shardId-000000000001 in stream s under account 000000000000."},{"SequenceNumber":"2","ShardId":"shardId-000000000002"}]}`, true},
	{`{"Records":[],"EncryptionType":null}`, true},
	{`{}`, true},
	{`{"Records":[{}]}`, true},
	{`{"Records":[{"ShardId":null,"ErrorCode":"InternalFailure"}]}`, true},
	// Left to encoding/json.
	{`{"Records":[{"ErrorCode":"X","ErrorMessage":"a \"quoted\" word"}]}`, false},
	{`{"records":[{"shardid":"shardId-000000000001"}]}`, false},
	{`{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000001","Extra":{"a":1}}]}`, false},
	{`{"Records":[{"ShardId":"s"}],"Other":true}`, false},
	{`{"FailedRecordCount":-1,"Records":[]}`, false},
	{`{"Records":[{"ShardId":"s"}]}x`, false},
	{`{"Records":[{"ShardId":"s"},]}`, false},
	{`{"Records":[{"ShardId":"s"}`, false},
	{``, false},
	{`{}0`, false},
	{`{"FailedRecordCount":01}`, false},
	{`{"FailedRecordCount":1.5}`, false},
	{"{\"Records\":[{\"ErrorMessage\":\"bad \xff utf-8\"}]}", false},
}

func TestScanPutRecords(t *testing.T) {
	shards := map[string]string{}
	for _, tt := range putRecordsResponses {
		got, ok := scanPutRecords([]byte(tt.body), nil, shards)
		if ok != tt.fast {
			t.Errorf("%s: scanned %v, want %v", tt.body, ok, tt.fast)
		}
		if !ok {
			continue
		}
		want, err := unmarshalResults([]byte(tt.body))
		if err != nil {
			t.Fatalf("%s: encoding/json: %v", tt.body, err)
		}
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.body, got, want)
		}
	}
	for i := range 4 {
		if id := "shardId-00000000000" + string(rune('0'+i)); shards[id] != id {
			t.Errorf("shard id %s not interned: %v", id, shards)
		}
	}
}

// FuzzScanPutRecords checks that whatever scanPutRecords reads itself,
// encoding/json reads alike.
func FuzzScanPutRecords(f *testing.F) {
	for _, tt := range putRecordsResponses {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := scanPutRecords(b, nil, map[string]string{})
		if !ok {
			return
		}
		want, err := unmarshalResults(b)
		if err != nil {
			t.Fatalf("scanned %q, which encoding/json refuses: %v", b, err)
		}
		if len(got) == 0 && len(want) == 0 {
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %+v\nwant %+v", b, got, want)
		}
	})
}

// unmarshalGet is the reference: what encoding/json makes of a GetRecords
// response.
func unmarshalGet(b []byte) ([]rawRecord, *string, error) {
	var out rawGetRecordsOutput
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, err
	}
	recs := []rawRecord{}
	for _, r := range out.Records {
		recs = append(recs, rawRecord{Data: r.Data, PartitionKey: r.PartitionKey, SequenceNumber: r.SequenceNumber})
	}
	return recs, out.NextShardIterator, nil
}

var getRecordsResponses = []struct {
	body string
	fast bool // scanGetRecords reads it itself
}{
	{`{"Records":[{"SequenceNumber":"4960","ApproximateArrivalTimestamp":1.764101234567E9,"Data":"aGVsbG8=","PartitionKey":"k-1","EncryptionType":"NONE"},{"SequenceNumber":"4961","ApproximateArrivalTimestamp":1764101234,"Data":"","PartitionKey":"k-2"}],"NextShardIterator":"AAAA/it==","MillisBehindLatest":0}`, true},
	{` { "MillisBehindLatest" : 12 , "Records" : [ ] , "NextShardIterator" : null , "ChildShards" : [ { "ShardId" : "shardId-000000000004" , "ParentShards" : [ "shardId-000000000001" ] , "HashKeyRange" : { "StartingHashKey" : "0" , "EndingHashKey" : "17" } } ] } `, true},
	{`{"Records":[{"Data":null,"PartitionKey":null,"SequenceNumber":null,"EncryptionType":null}],"NextShardIterator":"x"}`, true},
	{`{"Records":[{"Data":"AAEC","Data":"AwQF","PartitionKey":"a","PartitionKey":"b"}]}`, true},
	{`{"Records":[{"ApproximateArrivalTimestamp":-0.5e-3}],"ChildShards":[true,false,null,{},[]]}`, true},
	{`{}`, true},
	// Left to encoding/json.
	{`{"Records":[{"data":"aGVsbG8="}]}`, false},
	{`{"Records":[{"Data":"aGVsbG8\u003d"}]}`, false},
	{`{"Records":[{"Data":"aGVs\nbG8="}]}`, false},
	{`{"Records":[{"Data":"aGVsbG8"}]}`, false},
	{`{"Records":[{"Data":"aGVsbG8=","Other":1}]}`, false},
	{`{"Records":[{"PartitionKey":"a\"b"}]}`, false},
	{`{"Records":[{"ApproximateArrivalTimestamp":01}]}`, false},
	{`{"Records":[{"ApproximateArrivalTimestamp":1.}]}`, false},
	{`{"Records":[],"NextShardIterator":"x"}]`, false},
	{`{"Records":[],"NextShardIterator":"x"`, false},
	{`{"ChildShards":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`, false},
	{``, false},
}

func checkGetScan(t *testing.T, b []byte, wantFast int) {
	t.Helper()
	keys := map[string]string{}
	recs, next, ok := scanGetRecords(b, nil, make([]byte, 0, len(b)), keys)
	if wantFast >= 0 && ok != (wantFast == 1) {
		t.Errorf("%s: scanned %v, want %v", b, ok, wantFast == 1)
	}
	if !ok {
		return
	}
	want, wantNext, err := unmarshalGet(b)
	if err != nil {
		t.Fatalf("scanned %q, which encoding/json refuses: %v", b, err)
	}
	if (next == nil) != (wantNext == nil) || next != nil && *next != *wantNext {
		t.Errorf("%s: next iterator %v, want %v", b, next, wantNext)
	}
	if len(recs) != len(want) {
		t.Fatalf("%s: %d records, want %d", b, len(recs), len(want))
	}
	for i := range recs {
		g, w := recs[i], want[i]
		if (g.Data == nil) != (w.Data == nil) || string(g.Data) != string(w.Data) || g.PartitionKey != w.PartitionKey || g.SequenceNumber != w.SequenceNumber {
			t.Errorf("%s: record %d:\n got %+v\nwant %+v", b, i, g, w)
		}
	}
}

func TestScanGetRecords(t *testing.T) {
	for _, tt := range getRecordsResponses {
		fast := 0
		if tt.fast {
			fast = 1
		}
		checkGetScan(t, []byte(tt.body), fast)
	}
}

// FuzzScanGetRecords checks that whatever scanGetRecords reads itself,
// encoding/json reads alike.
func FuzzScanGetRecords(f *testing.F) {
	for _, tt := range getRecordsResponses {
		f.Add([]byte(tt.body))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkGetScan(t, b, -1)
	})
}
