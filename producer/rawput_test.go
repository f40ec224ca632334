package producer

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

func TestPutRecordsBody(t *testing.T) {
	entries := []types.PutRecordsRequestEntry{
		{Data: []byte("hello"), PartitionKey: aws.String("plain")},
		{Data: []byte{0, 1, 2, 0xff}, PartitionKey: aws.String("é \"q\" \\ \n <&>"), ExplicitHashKey: aws.String("42")},
		{Data: nil, PartitionKey: aws.String("empty")},
	}
	body := appendPutRecordsBody(nil, "str\"eam", entries)
	var got struct {
		StreamName string
		Records    []struct {
			Data            []byte
			PartitionKey    string
			ExplicitHashKey *string
		}
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	if got.StreamName != "str\"eam" || len(got.Records) != len(entries) {
		t.Fatalf("%s", body)
	}
	for i, e := range entries {
		r := got.Records[i]
		if string(r.Data) != string(e.Data) || r.PartitionKey != *e.PartitionKey || aws.ToString(r.ExplicitHashKey) != aws.ToString(e.ExplicitHashKey) {
			t.Fatalf("record %d: %+v, want %+v (body %s)", i, r, e, body)
		}
	}
}

func TestAPIError(t *testing.T) {
	for _, tc := range []struct {
		status int
		header string
		body   string
		code   string
		msg    string
		fault  smithy.ErrorFault
	}{
		{400, "", `{"__type":"ResourceNotFoundException","message":"Stream s not found."}`, "ResourceNotFoundException", "Stream s not found.", smithy.FaultClient},
		{400, "", `{"__type":"com.amazonaws.kinesis.v20131202#ProvisionedThroughputExceededException:x","Message":"slow"}`, "ProvisionedThroughputExceededException", "slow", smithy.FaultClient},
		{400, "LimitExceededException:", `{}`, "LimitExceededException", "", smithy.FaultClient},
		{500, "", `{"__type":"InternalFailure"}`, "InternalFailure", "", smithy.FaultServer},
		{503, "", `not json`, "HTTP503", "", smithy.FaultServer},
	} {
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		if tc.header != "" {
			resp.Header.Set("X-Amzn-ErrorType", tc.header)
		}
		var api smithy.APIError
		if err := apiError(resp, []byte(tc.body)); !errors.As(err, &api) || api.ErrorCode() != tc.code || api.ErrorMessage() != tc.msg || api.ErrorFault() != tc.fault {
			t.Errorf("%d %q %s: %v", tc.status, tc.header, tc.body, err)
		}
	}
}
