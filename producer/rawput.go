package producer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/segmentio/asm/base64"
)

// rawPutter sends PutRecords without the SDK's request pipeline, for a
// *kinesis.Client with a BaseEndpoint (runnel, or any endpoint set by
// hand): it writes the JSON body itself into a reused buffer, encoding the
// data's base64 with SIMD, signs it with SigV4 from the client's
// credentials, posts it with the client's HTTP client and decodes the
// answer. Its errors are the SDK's: a service error is a
// *smithy.OperationError around an *awshttp.ResponseError around a
// smithy.APIError with the error code, a transport error a
// *smithyhttp.RequestSendError, so classifyCall reads both paths alike.
type rawPutter struct {
	url    string
	region string
	creds  aws.CredentialsProvider // nil: requests are not signed
	http   aws.HTTPClient
	signer *v4.Signer
	bufs   sync.Pool // of *[]byte
}

// newRawPutter returns a rawPutter for c, or nil when c is not a
// *kinesis.Client with a BaseEndpoint.
func newRawPutter(c Client) *rawPutter {
	kc, ok := c.(*kinesis.Client)
	if !ok {
		return nil
	}
	o := kc.Options()
	if aws.ToString(o.BaseEndpoint) == "" || o.HTTPClient == nil {
		return nil
	}
	r := &rawPutter{url: *o.BaseEndpoint, region: o.Region, creds: o.Credentials, http: o.HTTPClient, signer: v4.NewSigner()}
	if _, anon := r.creds.(aws.AnonymousCredentials); anon {
		r.creds = nil
	}
	return r
}

// maxPutAnswer bounds a PutRecords answer read: 500 results of at most a
// few hundred bytes each.
const maxPutAnswer = 4 << 20

// putRecords is PutRecords.
func (r *rawPutter) putRecords(ctx context.Context, stream string, entries []types.PutRecordsRequestEntry) (*kinesis.PutRecordsOutput, error) {
	bp, _ := r.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer r.bufs.Put(bp)
	body := appendPutRecordsBody((*bp)[:0], stream, entries)
	*bp = body
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return nil, putError(err)
	}
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if r.creds != nil {
		creds, err := r.creds.Retrieve(ctx)
		if err != nil {
			return nil, putError(fmt.Errorf("retrieve credentials: %w", err))
		}
		sum := sha256.Sum256(body)
		if err := r.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", r.region, time.Now()); err != nil {
			return nil, putError(fmt.Errorf("sign: %w", err))
		}
	}
	resp, err := r.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, putError(&smithy.CanceledError{Err: err})
		}
		return nil, putError(&smithyhttp.RequestSendError{Err: err})
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxPutAnswer))
	if err != nil {
		return nil, putError(&smithyhttp.RequestSendError{Err: fmt.Errorf("read answer: %w", err)})
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, putError(&awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: apiError(resp, answer)},
			RequestID:     resp.Header.Get("X-Amzn-Requestid"),
		})
	}
	var out struct {
		FailedRecordCount *int32
		EncryptionType    types.EncryptionType
		Records           []struct {
			SequenceNumber, ShardId, ErrorCode, ErrorMessage *string
		}
	}
	if err := json.Unmarshal(answer, &out); err != nil {
		return nil, putError(&smithy.DeserializationError{Err: err})
	}
	res := &kinesis.PutRecordsOutput{FailedRecordCount: out.FailedRecordCount, EncryptionType: out.EncryptionType,
		Records: make([]types.PutRecordsResultEntry, len(out.Records))}
	for i, e := range out.Records {
		res.Records[i] = types.PutRecordsResultEntry{SequenceNumber: e.SequenceNumber, ShardId: e.ShardId, ErrorCode: e.ErrorCode, ErrorMessage: e.ErrorMessage}
	}
	return res, nil
}

// putError wraps err as the SDK wraps the errors of an operation.
func putError(err error) error {
	return &smithy.OperationError{ServiceID: kinesis.ServiceID, OperationName: "PutRecords", Err: err}
}

// apiError is the service error an error answer holds: its type from the
// X-Amzn-ErrorType header or the body's __type (without a namespace
// before '#' or details after ':'), and its message.
func apiError(resp *http.Response, body []byte) error {
	var e struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal(body, &e) // an unreadable body leaves the status
	code := resp.Header.Get("X-Amzn-Errortype")
	if code == "" {
		code = e.Type
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	if code == "" {
		code = "HTTP" + strconv.Itoa(resp.StatusCode)
	}
	msg := e.Message
	if msg == "" {
		msg = e.MessageU
	}
	fault := smithy.FaultClient
	if resp.StatusCode >= 500 {
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: fault}
}

// appendPutRecordsBody appends the JSON body of a PutRecords call to b.
func appendPutRecordsBody(b []byte, stream string, entries []types.PutRecordsRequestEntry) []byte {
	b = append(b, `{"StreamName":`...)
	b = appendJSONString(b, stream)
	b = append(b, `,"Records":[`...)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Data":"`...)
		n := base64.StdEncoding.EncodedLen(len(e.Data))
		b = growBy(b, n)
		base64.StdEncoding.Encode(b[len(b):len(b)+n], e.Data)
		b = b[:len(b)+n]
		b = append(b, `","PartitionKey":`...)
		b = appendJSONString(b, aws.ToString(e.PartitionKey))
		if e.ExplicitHashKey != nil {
			b = append(b, `,"ExplicitHashKey":`...)
			b = appendJSONString(b, *e.ExplicitHashKey)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// growBy makes room for n more bytes in b.
func growBy(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	g := make([]byte, len(b), 2*cap(b)+n)
	copy(g, b)
	return g
}

// appendJSONString appends s as a JSON string: as it is when it is
// printable ASCII without quote or backslash, else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
