package kinesisapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/runnel/runnel/internal/iam"
	"github.com/runnel/runnel/internal/streams"
)

// putRecordsBody returns a PutRecords request of n records of size bytes
// each, encoded in p.
func putRecordsBody(tb testing.TB, p protocol, n, size int) []byte {
	tb.Helper()
	type entry struct {
		Data         []byte
		PartitionKey string
	}
	in := struct {
		StreamName string
		Records    []entry
	}{StreamName: "bench"}
	for i := range n {
		d := make([]byte, size)
		for j := range d {
			d[j] = byte(i + j)
		}
		in.Records = append(in.Records, entry{Data: d, PartitionKey: fmt.Sprintf("key-%d", i)})
	}
	var (
		b   []byte
		err error
	)
	if p == protoCBOR {
		b, err = cbor.Marshal(in)
	} else {
		b, err = json.Marshal(in)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecodePutRecords measures decoding and validating a PutRecords
// body of 500 records of 1 KiB, the largest common producer batch.
func BenchmarkDecodePutRecords(b *testing.B) {
	op := operations["PutRecords"]
	for _, p := range []struct {
		name  string
		proto protocol
	}{{"json", protoJSON}, {"cbor", protoCBOR}} {
		b.Run(p.name, func(b *testing.B) {
			body := putRecordsBody(b, p.proto, 500, 1024)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				in := op.newInput()
				if err := decode(p.proto, body, in); err != nil {
					b.Fatal(err)
				}
				if err := validate(&op.input, in); err != nil {
					b.Fatal(err)
				}
				if got := len(in.(*streams.PutRecordsInput).Records); got != 500 {
					b.Fatalf("%d records", got)
				}
			}
		})
	}
}

// BenchmarkHandlerPutRecords measures a whole PutRecords request through the
// handler (decode, validate, fake backend, encode), without the network.
func BenchmarkHandlerPutRecords(b *testing.B) {
	f := newFake()
	res := make([]streams.PutRecordsResultEntry, 500)
	seq, shard := "49590338271490256608559692538361571095921575989136588898", "shardId-000000000000"
	for i := range res {
		res[i] = streams.PutRecordsResultEntry{SequenceNumber: &seq, ShardId: &shard}
	}
	f.outputs["PutRecords"] = &streams.PutRecordsOutput{Records: res}
	h := newTestHandler(b, f)
	for _, p := range []struct {
		name  string
		proto protocol
	}{{"json", protoJSON}, {"cbor", protoCBOR}} {
		b.Run(p.name, func(b *testing.B) {
			body := putRecordsBody(b, p.proto, 500, 1024)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				f.calls = f.calls[:0]
				w := send(h, p.proto.contentType(), TargetPrefix+".PutRecords", body)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
	_ = httptest.NewRecorder
}

// discardWriter is a ResponseWriter that keeps nothing, so that handler
// benchmarks measure the handler and not a recorder's growing buffer.
type discardWriter struct {
	hdr    http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header {
	if w.hdr == nil {
		w.hdr = http.Header{}
	}
	return w.hdr
}
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
func (w *discardWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }

// getRecordsOutput returns a GetRecords answer of n records of size bytes.
func getRecordsOutput(n, size int) *streams.GetRecordsOutput {
	out := &streams.GetRecordsOutput{Records: make([]streams.Record, n), MillisBehindLatest: 1234}
	data := make([]byte, n*size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ms := int64(1764000000123)
	for i := range out.Records {
		out.Records[i] = streams.Record{
			SequenceNumber:              fmt.Sprintf("4959033827149025660855969253836157109592157598913%07d", i),
			ApproximateArrivalTimestamp: streams.TimestampMillis(ms + int64(i)),
			Data:                        data[i*size : (i+1)*size],
			PartitionKey:                fmt.Sprintf("key-%d", i),
		}
	}
	it := "AAAAAAAAAAFqYJ0t0Vk2mSg8m0lVYqgkq6ZJ7wW2x3j1kH3bS2ZkA4p7KkP2iB1uQ0Xo8JmZ3L9pN5rT6vY2sW4cE1fG3hH8jK0lM7nO9qR"
	out.NextShardIterator = &it
	return out
}

// BenchmarkHandlerGetRecords measures a whole GetRecords request through the
// handler (decode, validate, fake backend, encode the records), without the
// network; bytes are the records' data.
func BenchmarkHandlerGetRecords(b *testing.B) {
	for _, p := range []struct {
		name  string
		proto protocol
	}{{"json", protoJSON}, {"cbor", protoCBOR}} {
		for _, n := range []int{100, 10000} {
			b.Run(fmt.Sprintf("%s/records=%d", p.name, n), func(b *testing.B) {
				f := newFake()
				f.outputs["GetRecords"] = getRecordsOutput(n, 1024)
				h := newTestHandler(b, f)
				var body []byte
				if p.proto == protoCBOR {
					body, _ = cbor.Marshal(map[string]any{"ShardIterator": "AAAA"})
				} else {
					body = []byte(`{"ShardIterator":"AAAA"}`)
				}
				b.SetBytes(int64(n * 1024))
				b.ReportAllocs()
				for b.Loop() {
					f.calls = f.calls[:0]
					r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
					r.Header.Set("Content-Type", p.proto.contentType())
					r.Header.Set("X-Amz-Target", TargetPrefix+".GetRecords")
					w := &discardWriter{}
					h.ServeHTTP(w, r)
					if w.status != http.StatusOK {
						b.Fatalf("status %d", w.status)
					}
				}
			})
		}
	}
}

// benchResources is an iam.Resources with no resource policies.
type benchResources struct{}

func (benchResources) ResourcePolicy(context.Context, string) (string, error)     { return "", nil }
func (benchResources) ConsumerARN(context.Context, string, string) (string, bool) { return "", false }
func (benchResources) TokenStream(string) (string, bool)                          { return "", false }

// BenchmarkHandlerPutRecordsAuthorized is BenchmarkHandlerPutRecords (JSON)
// with a principal in the request's context and the IAM authorizer
// deciding each request: the cost of policies on the hot path.
func BenchmarkHandlerPutRecordsAuthorized(b *testing.B) {
	f := newFake()
	res := make([]streams.PutRecordsResultEntry, 500)
	seq, shard := "49590338271490256608559692538361571095921575989136588898", "shardId-000000000000"
	for i := range res {
		res[i] = streams.PutRecordsResultEntry{SequenceNumber: &seq, ShardId: &shard}
	}
	f.outputs["PutRecords"] = &streams.PutRecordsOutput{Records: res}
	az, err := iam.NewAuthorizer(iam.AuthorizerOptions{Region: "us-east-1", AccountID: "123456789012", Resources: benchResources{},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	opts := DefaultOptions()
	opts.AllowedHosts = []string{"example.com"}
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.Authorize = IAMAuthorizer(az)
	h, err := NewHandler(f, opts)
	if err != nil {
		b.Fatal(err)
	}
	p := &iam.Principal{ARN: "arn:aws:iam::123456789012:user/producer", Account: "123456789012", Policies: []string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesis:PutRecord","kinesis:PutRecords"],"Resource":"arn:aws:kinesis:*:123456789012:stream/*"}]}`}}
	body := putRecordsBody(b, protoJSON, 500, 1024)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		f.calls = f.calls[:0]
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentTypeJSON)
		r.Header.Set("X-Amz-Target", TargetPrefix+".PutRecords")
		r = r.WithContext(iam.WithPrincipal(r.Context(), p))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d %s", w.Code, w.Body)
		}
	}
}
