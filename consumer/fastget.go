package consumer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// fastGetter sends GetRecords without the SDK's request pipeline: it
// writes the request itself, signs it with SigV4 from the client's
// options and decodes the answer with a recordsDecoder. The answer is what
// the SDK would have returned, errors included: an error answer becomes
// the SDK's typed error (types.ExpiredIteratorException, …) wrapped like
// the SDK wraps it, so the poller's errors.As checks hold on either path.
// The client's retryer decides which errors are tried again, as in the
// SDK, though without its retry token bucket.
//
// It is shared by the shard readers of one retriever; each reader has its
// own fastReader with the buffers it reuses.
type fastGetter struct {
	opts   kinesis.Options
	region string
	creds  aws.CredentialsProvider // nil: requests are not signed
	http   aws.HTTPClient
	signer *v4.Signer

	mu struct {
		sync.Mutex
		url string // resolved on first use
	}
}

// newFastGetter returns the getter on the options of a *kinesis.Client.
func newFastGetter(opts kinesis.Options) *fastGetter {
	g := &fastGetter{opts: opts, region: opts.Region, creds: opts.Credentials, http: opts.HTTPClient, signer: v4.NewSigner()}
	if _, anon := g.creds.(aws.AnonymousCredentials); anon {
		g.creds = nil
	}
	if g.http == nil {
		g.http = http.DefaultClient
	}
	return g
}

// endpoint returns the URL requests go to: the client's BaseEndpoint, or
// else what its endpoint resolver (the SDK's default one when it has none)
// gives for the region, as the SDK resolves it.
func (g *fastGetter) endpoint(ctx context.Context) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.mu.url != "" {
		return g.mu.url, nil
	}
	if b := aws.ToString(g.opts.BaseEndpoint); b != "" {
		g.mu.url = b
		return b, nil
	}
	r := g.opts.EndpointResolverV2
	if r == nil {
		r = kinesis.NewDefaultEndpointResolverV2()
	}
	params := kinesis.EndpointParameters{
		Region:       aws.String(g.region),
		UseFIPS:      aws.Bool(g.opts.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack: aws.Bool(g.opts.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
	}
	ep, err := r.ResolveEndpoint(ctx, params)
	if err != nil {
		return "", fmt.Errorf("resolve endpoint: %w", err)
	}
	g.mu.url = ep.URI.String()
	return g.mu.url, nil
}

// fastReader is the GetRecords caller of one shard reader.
type fastReader struct {
	g    *fastGetter
	body []byte // the request
	resp []byte // the answer
	dec  recordsDecoder
}

// getRecords is GetRecords on the fast path.
func (f *fastReader) getRecords(ctx context.Context, in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	retryer := f.g.opts.Retryer
	for attempt := 1; ; attempt++ {
		out, err := f.try(ctx, in)
		if err == nil || retryer == nil || ctx.Err() != nil || attempt >= retryer.MaxAttempts() || !retryer.IsErrorRetryable(err) {
			return out, err
		}
		d, derr := retryer.RetryDelay(attempt, err)
		if derr != nil {
			return nil, err
		}
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

// maxAnswer bounds the answer read: GetRecords returns at most 10 MiB of
// data, under 14 MiB in base64.
const maxAnswer = 64 << 20

// try sends one GetRecords request.
func (f *fastReader) try(ctx context.Context, in *kinesis.GetRecordsInput) (*kinesis.GetRecordsOutput, error) {
	url, err := f.g.endpoint(ctx)
	if err != nil {
		return nil, opError(err)
	}
	f.body = appendGetRecordsBody(f.body[:0], in)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(f.body))
	if err != nil {
		return nil, opError(err)
	}
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.GetRecords")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if f.g.creds != nil {
		creds, err := f.g.creds.Retrieve(ctx)
		if err != nil {
			return nil, opError(fmt.Errorf("retrieve credentials: %w", err))
		}
		sum := sha256.Sum256(f.body)
		if err := f.g.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", f.g.region, time.Now()); err != nil {
			return nil, opError(fmt.Errorf("sign: %w", err))
		}
	}
	resp, err := f.g.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, opError(&smithy.CanceledError{Err: err})
		}
		return nil, opError(&smithyhttp.RequestSendError{Err: err})
	}
	defer resp.Body.Close()
	if f.resp, err = readAnswer(f.resp[:0], resp); err != nil {
		if ctx.Err() != nil {
			return nil, opError(&smithy.CanceledError{Err: err})
		}
		return nil, opError(fmt.Errorf("read answer: %w", err))
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &smithy.OperationError{ServiceID: kinesis.ServiceID, OperationName: "GetRecords", Err: &awshttp.ResponseError{
			ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: apiError(resp.Header, f.resp)},
			RequestID:     resp.Header.Get("X-Amzn-Requestid"),
		}}
	}
	out, err := f.dec.decode(f.resp)
	if err != nil {
		return nil, opError(&smithy.DeserializationError{Err: err})
	}
	return out, nil
}

// readAnswer appends the body of resp to b: in one read of its length
// when it has one, which spares bytes.Buffer's growing past the end to
// see it.
func readAnswer(b []byte, resp *http.Response) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= maxAnswer {
		b = slices.Grow(b, int(n))[:n]
		_, err := io.ReadFull(resp.Body, b)
		return b, err
	}
	buf := bytes.NewBuffer(b)
	_, err := buf.ReadFrom(io.LimitReader(resp.Body, maxAnswer))
	return buf.Bytes(), err
}

// opError wraps err as the SDK wraps the errors of an operation.
func opError(err error) error {
	return &smithy.OperationError{ServiceID: kinesis.ServiceID, OperationName: "GetRecords", Err: err}
}

// appendGetRecordsBody appends the JSON body of in to b.
func appendGetRecordsBody(b []byte, in *kinesis.GetRecordsInput) []byte {
	b = append(b, `{"ShardIterator":`...)
	it, _ := json.Marshal(aws.ToString(in.ShardIterator)) // a string always encodes
	b = append(b, it...)
	if in.Limit != nil {
		b = append(b, `,"Limit":`...)
		b = strconv.AppendInt(b, int64(*in.Limit), 10)
	}
	if in.StreamARN != nil {
		b = append(b, `,"StreamARN":`...)
		arn, _ := json.Marshal(*in.StreamARN)
		b = append(b, arn...)
	}
	return append(b, '}')
}

// apiError decodes an error answer the way the SDK's awsJson 1.1 protocol
// does: the type from the X-Amzn-ErrorType header, else the body's
// "__type", else its "code", without namespace ("…#") or suffix (":…");
// the message from the body's "message" (any case). A type Kinesis
// declares becomes its error in package types (with ErrorCode() as the
// SDK's), any other a smithy.GenericAPIError.
func apiError(h http.Header, body []byte) error {
	var info struct {
		Type    string `json:"__type"`
		Code    any    `json:"code"`
		Message string `json:"message"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &info); err != nil {
			return &smithy.DeserializationError{Err: fmt.Errorf("failed to decode response body, %w", err), Snapshot: body[:min(len(body), 1024)]}
		}
	}
	code := h.Get("X-Amzn-Errortype")
	if code == "" {
		code = info.Type
	}
	if c, ok := info.Code.(string); code == "" && ok {
		code = c
	}
	if code == "" {
		code = "UnknownError"
	}
	if i := strings.Index(code, ":"); i >= 0 {
		code = code[:i]
	}
	if i := strings.Index(code, "#"); i >= 0 {
		code = code[i+1:]
	}
	if e, ok := kinesis.TypeRegistry.DeserializableError(code); ok {
		if f := reflect.ValueOf(e).Elem().FieldByName("Message"); f.IsValid() && f.CanSet() && f.Type() == reflect.TypeFor[*string]() {
			if info.Message != "" {
				msg := info.Message
				f.Set(reflect.ValueOf(&msg))
			}
			return e
		}
	}
	msg := info.Message
	if msg == "" {
		msg = "UnknownError"
	}
	return &smithy.GenericAPIError{Code: code, Message: msg}
}
