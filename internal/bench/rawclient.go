package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/runnel/runnel/internal/b64"
	"github.com/runnel/runnel/internal/jsonstr"
)

// rawClient is what the producers of a run with --producer-client raw
// share: the HTTP client, the signer and the credentials. Each producer
// has its own rawPutter with its buffers.
type rawClient struct {
	http   aws.HTTPClient
	url    string
	region string
	creds  aws.CredentialsProvider
	signer *v4.Signer
}

// endpointURL returns the URL the raw client posts to: the endpoint, or
// the regional AWS endpoint when there is none.
func endpointURL(endpoint, region string) string {
	if endpoint == "" {
		host := "kinesis." + region + ".amazonaws.com"
		if strings.HasPrefix(region, "cn-") {
			host += ".cn"
		}
		return "https://" + host + "/"
	}
	if u := strings.TrimSuffix(endpoint, "/"); strings.Count(u, "/") > 2 {
		return u // a path of its own
	}
	return strings.TrimSuffix(endpoint, "/") + "/"
}

// rawPutter sends PutRecords calls for one producer without the SDK: it
// writes the JSON body into a reused buffer, signs it and decodes the
// response into a reused struct.
type rawPutter struct {
	c      *rawClient
	stream string
	bodies *bodyWriter       // the producer's, to encode its records' data
	shards map[string]string // shard ids seen, interned
	body   []byte
	resp   bytes.Buffer
	out    rawPutRecordsOutput
}

// rawPutRecordsOutput is the part of a PutRecords response the tool uses.
type rawPutRecordsOutput struct {
	FailedRecordCount int
	Records           []rawPutRecordsResult
}

type rawPutRecordsResult struct {
	SequenceNumber string
	ShardId        string
	ErrorCode      string
	ErrorMessage   string
}

// rawAPIError is an error response of the endpoint. It answers the same
// interfaces as the SDK's errors (smithy.APIError and HTTPStatusCode), so
// that classify treats it alike.
type rawAPIError struct {
	op      string
	status  int
	code    string
	message string
}

func (e *rawAPIError) Error() string {
	return fmt.Sprintf("%s: StatusCode: %d, api error %s: %s", e.op, e.status, e.code, e.message)
}

// ErrorCode returns the error's type, e.g. ProvisionedThroughputExceededException.
func (e *rawAPIError) ErrorCode() string { return e.code }

// ErrorMessage returns the error's message.
func (e *rawAPIError) ErrorMessage() string { return e.message }

// ErrorFault tells whether the client or the server is at fault.
func (e *rawAPIError) ErrorFault() smithy.ErrorFault {
	if e.status >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// HTTPStatusCode returns the response's status code.
func (e *rawAPIError) HTTPStatusCode() int { return e.status }

var _ smithy.APIError = (*rawAPIError)(nil)

// appendBody appends the PutRecords request body for entries to b. With
// bodies not nil, the data of entry i is encoded by
// bodies.encodeData(…, offs[i]).
func appendBody(b []byte, stream string, entries []types.PutRecordsRequestEntry, bodies *bodyWriter, offs []int) []byte {
	b = append(b, `{"StreamName":`...)
	b = jsonstr.Append(b, stream)
	b = append(b, `,"Records":[`...)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Data":"`...)
		if bodies != nil {
			b = bodies.encodeData(b, e.Data, offs[i])
		} else {
			b = b64.AppendEncode(b, e.Data)
		}
		b = append(b, `","PartitionKey":`...)
		b = jsonstr.Append(b, aws.ToString(e.PartitionKey))
		if e.ExplicitHashKey != nil {
			b = append(b, `,"ExplicitHashKey":`...)
			b = jsonstr.Append(b, *e.ExplicitHashKey)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// putRecords sends entries in one PutRecords call and returns the
// per-record results in results (reused). Errors are shaped like the
// SDK's: a *rawAPIError for an error response, a
// *smithyhttp.RequestSendError when the request could not be sent or its
// answer not received (the outcome is unknown), a
// *smithy.DeserializationError for an answer that does not decode.
// offs[i] is the noise offset of entry i's body (see bodyWriter.fill).
func (p *rawPutter) putRecords(ctx context.Context, entries []types.PutRecordsRequestEntry, offs []int, results []putResult) ([]putResult, error) {
	var bodies *bodyWriter
	if len(offs) == len(entries) {
		bodies = p.bodies
	}
	p.body = appendBody(p.body[:0], p.stream, entries, bodies, offs)
	if err := p.c.call(ctx, "PutRecords", p.body, &p.resp); err != nil {
		return nil, err
	}
	if res, ok := scanPutRecords(p.resp.Bytes(), results[:0], p.shards); ok {
		return res, nil
	}
	// Unmarshal appends into the reused slice and keeps the fields of old
	// elements a result leaves out: clear them first.
	p.out.Records = p.out.Records[:cap(p.out.Records)]
	clear(p.out.Records)
	p.out.Records = p.out.Records[:0]
	p.out.FailedRecordCount = 0
	if err := json.Unmarshal(p.resp.Bytes(), &p.out); err != nil {
		return nil, &smithy.DeserializationError{Err: fmt.Errorf("PutRecords response: %w", err)}
	}
	results = results[:0]
	for _, r := range p.out.Records {
		results = append(results, putResult{ShardID: r.ShardId, ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage})
	}
	return results, nil
}

// call posts body as the operation op and reads a successful answer into
// resp. Errors are shaped like the SDK's: a *rawAPIError for an error
// response, a *smithyhttp.RequestSendError when the request could not be
// sent or its answer not received (the outcome is unknown).
func (c *rawClient) call(ctx context.Context, op string, body []byte, resp *bytes.Buffer) error {
	sum := sha256.Sum256(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("%s: retrieve credentials: %w", op, err)
	}
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", c.region, time.Now()); err != nil {
		return fmt.Errorf("%s: sign: %w", op, err)
	}
	r, err := c.http.Do(req)
	if err != nil {
		return &smithyhttp.RequestSendError{Err: err}
	}
	resp.Reset()
	_, err = resp.ReadFrom(r.Body)
	r.Body.Close()
	if err != nil {
		return &smithyhttp.RequestSendError{Err: fmt.Errorf("read response: %w", err)}
	}
	if r.StatusCode != http.StatusOK {
		return responseError(op, r, resp.Bytes())
	}
	return nil
}

// responseError maps an error response to a *rawAPIError like the SDK's
// JSON 1.1 deserialiser: the type from the X-Amzn-ErrorType header, else
// from the body's __type (or code), without any namespace or suffix.
func responseError(op string, resp *http.Response, body []byte) error {
	var e struct {
		Type     string `json:"__type"`
		Code     string `json:"code"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal(body, &e) // an unreadable body leaves the status alone
	code := resp.Header.Get("X-Amzn-ErrorType")
	if code == "" {
		code = e.Type
	}
	if code == "" {
		code = e.Code
	}
	code, _, _ = strings.Cut(code, ":")
	if i := strings.LastIndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	if code == "" {
		code = "UnknownError"
	}
	msg := e.Message
	if msg == "" {
		msg = e.MessageU
	}
	return &rawAPIError{op: op, status: resp.StatusCode, code: code, message: msg}
}
