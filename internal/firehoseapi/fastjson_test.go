package firehoseapi

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/runnel/runnel/internal/delivery"
)

func TestFastPutRecordBatch(t *testing.T) {
	for body, fast := range map[string]bool{
		`{"DeliveryStreamName":"s","Records":[{"Data":"aGVsbG8="},{"Data":""}]}`: true,
		` { "Records" : [ ] , "DeliveryStreamName" : "s" } `:                     true,
		`{"DeliveryStreamName":"s","Records":[{"Data":"aGVsbG8="}],"X":1}`:       false,
		`{"DeliveryStreamName":"s\u0041","Records":[]}`:                          false,
		`{"DeliveryStreamName":"s","Records":[{"Data":null}]}`:                   false,
		`{"DeliveryStreamName":"s","Records":[{"Data":"aGVsbG9="}]}`:             false, // unused bits set
		`{"DeliveryStreamName":"s","Records":[{}]}`:                              false,
		`{"DeliveryStreamName":"s","DeliveryStreamName":"t","Records":[]}`:       false,
	} {
		var got delivery.PutRecordBatchInput
		if ok := fastPutRecordBatch([]byte(body), &got); ok != fast {
			t.Errorf("%s: fast path %v, want %v", body, ok, fast)
			continue
		}
		if fast {
			var want delivery.PutRecordBatchInput
			if err := json.Unmarshal([]byte(body), &want); err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s: fast %+v, encoding/json %+v (%v)", body, got, want, err)
			}
		}
	}
}

// FuzzPutRecordBatch checks that the fast decoder, whenever it answers,
// answers what encoding/json decodes.
func FuzzPutRecordBatch(f *testing.F) {
	for _, seed := range []string{
		`{"DeliveryStreamName":"s","Records":[{"Data":"aGVsbG8="},{"Data":""}]}`,
		`{"Records":[{"Data":"AAAA"}],"DeliveryStreamName":"x"}`,
		`{"DeliveryStreamName":"s","Records":[{"Data":"aGVsbG9="}]}`,
		`{"DeliveryStreamName":"s","Records":[{"Data":"aGVs\nbG8="}]}`,
		`{"DeliveryStreamName":"é","Records":[]}`,
		`{}`, `[]`, `{"Records":null}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var got delivery.PutRecordBatchInput
		if !fastPutRecordBatch(body, &got) {
			return
		}
		var want delivery.PutRecordBatchInput
		if err := json.Unmarshal(body, &want); err != nil {
			t.Fatalf("%q: the fast path decoded what encoding/json refuses: %v", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", body, got, want)
		}
	})
}
