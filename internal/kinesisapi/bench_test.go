package kinesisapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fxamacker/cbor/v2"

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
