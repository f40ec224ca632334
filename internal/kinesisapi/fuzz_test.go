package kinesisapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/runnel/runnel/internal/streams"
)

// opNames lists the dispatch table's operations in a stable order, so a
// fuzzer's byte picks the same operation every run.
func opNames() []string {
	names := make([]string, 0, len(operations))
	for n := range operations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// fuzzSeeds are request bodies (in JSON) covering every member kind.
var fuzzSeeds = []string{
	`{}`,
	`{"StreamName":"s","Records":[{"PartitionKey":"k","Data":"aGVsbG8=","ExplicitHashKey":"1"}]}`,
	`{"StreamName":"s","PartitionKey":"k","Data":"","SequenceNumberForOrdering":"0"}`,
	`{"StreamName":"s","ShardCount":3,"Tags":{"a":"b"},"StreamModeDetails":{"StreamMode":"ON_DEMAND"}}`,
	`{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1459799926.480}`,
	`{"StreamName":"s","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":"2016-04-04T19:58:46.480-00:00"},"MaxResults":5}`,
	`{"StreamName":"s","TagKeys":["a",""],"EnforceConsumerDeletion":true}`,
	`{"StreamName":"s","ShardLevelMetrics":["ALL","nope"]}`,
	`{"Records":[{},null,{"Data":null}],"StreamName":null}`,
	`{"ShardCount":"1","Limit":1e99,"Timestamp":true}`,
	`[1,2]`,
	`{"Data":"=+/="}`,
	"{\"StreamName\":\"s\",\"Records\":[{\"PartitionKey\":\"k\xff\",\"Data\":\"eA==\"}]}",
}

func checkFuzzResponse(t *testing.T, status int, body []byte) {
	t.Helper()
	switch status {
	case http.StatusOK, http.StatusBadRequest, http.StatusNotFound, http.StatusForbidden, http.StatusRequestEntityTooLarge:
	default:
		// The fake backend never fails, so a 500 is a wire-layer bug.
		t.Fatalf("status %d body %q", status, body)
	}
}

func FuzzHandlerJSON(f *testing.F) {
	names := opNames()
	for i, s := range fuzzSeeds {
		f.Add(uint8(i*7), []byte(s))
	}
	h := newTestHandler(f, newFake())
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := names[int(op)%len(names)]
		w := send(h, contentTypeJSON, TargetPrefix+"."+name, body)
		checkFuzzResponse(t, w.Code, w.Body.Bytes())
		if w.Body.Len() > 0 && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("response is not JSON: %q", w.Body.Bytes())
		}
	})
}

func FuzzHandlerCBOR(f *testing.F) {
	names := opNames()
	for i, s := range fuzzSeeds {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			continue
		}
		b, err := cbor.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i*7), b)
	}
	f.Add(uint8(3), []byte{0xbf, 0x6a, 'S', 't', 'r', 'e', 'a', 'm', 'N', 'a', 'm', 'e', 0x61, 's', 0xff}) // indefinite-length map
	f.Add(uint8(5), []byte{0xa1, 0x69, 'T', 'i', 'm', 'e', 's', 't', 'a', 'm', 'p', 0xc1, 0x1b, 0, 0, 1, 0x53, 0xe3, 0x4a, 0xd8, 0x10})
	h := newTestHandler(f, newFake())
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := names[int(op)%len(names)]
		w := send(h, contentTypeCBOR, TargetPrefix+"."+name, body)
		checkFuzzResponse(t, w.Code, w.Body.Bytes())
		if w.Body.Len() > 0 {
			var v any
			if err := cbor.Unmarshal(w.Body.Bytes(), &v); err != nil {
				t.Fatalf("response is not CBOR: %x: %v", w.Body.Bytes(), err)
			}
		}
	})
}

// FuzzFastPutRecords checks that the PutRecords fast path, whenever it
// accepts a body, decodes exactly what the complete decoder decodes.
func FuzzFastPutRecords(f *testing.F) {
	for _, s := range []string{
		`{"StreamName":"s","Records":[{"PartitionKey":"k","Data":"aGVsbG8=","ExplicitHashKey":"1"}]}`,
		`{"Records":[],"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}`,
		`{"Records":null,"StreamName":null}`,
		`{"Records":[{"Data":"","PartitionKey":"é"},{"Data":null,"PartitionKey":null}]}`,
		` { "Records" : [ { "Data" : "YQ==" } ] } `,
		`{"Records":[{"Data":"YQ=="}],"Records":[{"Data":"Yg=="}]}`,
		`{"records":[{"data":"YQ=="}]}`,
		`{"Records":[{"Data":"Y\nQ=="}]}`,
		`{"Records":[{"Data":"QR=="},{"Data":"+/+="}]}`,
		`{"Records":[{"Data":"+/+8","PartitionKey":"k"}]}`,
		`{"StreamName":"a\"b"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast streams.PutRecordsInput
		if !fastPutRecords(body, &fast) {
			if !reflect.DeepEqual(fast, streams.PutRecordsInput{}) {
				t.Fatalf("rejected body left input filled: %+v", fast)
			}
			return
		}
		var slow streams.PutRecordsInput
		if err := decodeTyped(protoJSON, body, &slow); err != nil {
			t.Fatalf("fast path accepted %q, the complete decoder refused it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("body %q\nfast %s\nslow %s", body, dump(fast), dump(slow))
		}
		// With pooled memory (dirtied by an earlier request), the same.
		sc := scratchFor(operations["PutRecords"], protoJSON)
		var pooled streams.PutRecordsInput
		if !fastPutRecordsWith(body, &pooled, sc) || !reflect.DeepEqual(pooled, slow) {
			t.Fatalf("body %q with scratch\nfast %s\nslow %s", body, dump(pooled), dump(slow))
		}
		for i := range sc.data[:cap(sc.data)] {
			sc.data[:cap(sc.data)][i] = 0xa5
		}
		sc.release()
	})
}

func dump(in streams.PutRecordsInput) string {
	b, _ := json.Marshal(in)
	return string(b)
}

// FuzzDecodeCBOR checks the shape-led CBOR decoder: whatever input it
// accepts must come back unchanged when encoded (as the SDKs encode it) and
// decoded again, and it must never panic on any body.
func FuzzDecodeCBOR(f *testing.F) {
	names := opNames()
	for i, s := range fuzzSeeds {
		var v any
		if json.Unmarshal([]byte(s), &v) != nil {
			continue
		}
		b, err := cbor.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i*7), b)
	}
	f.Add(uint8(20), []byte{0xa1, 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x9f, 0xa1, 0x64, 'D', 'a', 't', 'a', 0x5f, 0x41, 1, 0x42, 2, 3, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		o := operations[names[int(op)%len(names)]]
		in := o.newInput()
		if decodeTyped(protoCBOR, body, in) != nil {
			return
		}
		again, err := cborEnc.Marshal(in)
		if err != nil {
			t.Fatalf("encode %+v: %v", in, err)
		}
		out := o.newInput()
		if aerr := decodeTyped(protoCBOR, again, out); aerr != nil {
			t.Fatalf("re-encoded input %x refused: %v", again, aerr)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("body %x\nfirst  %+v\nsecond %+v", body, in, out)
		}
	})
}
