package consumer

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

// getRecordsSeeds are answers as servers write them, and some that only
// encoding/json reads.
var getRecordsSeeds = []string{
	`{"Records":[],"NextShardIterator":"AAAA","MillisBehindLatest":0}`,
	`{"Records":[{"SequenceNumber":"49590338271490256608559692538361571095921575989136588898","ApproximateArrivalTimestamp":1.733456789123E9,"Data":"cmVjb3JkLTA=","PartitionKey":"key-0","EncryptionType":"NONE"},` +
		`{"SequenceNumber":"49590338271490256608559692538361571095921575989136588899","ApproximateArrivalTimestamp":1733456789.123,"Data":"","PartitionKey":"käse"}],"NextShardIterator":"it-2","MillisBehindLatest":12}`,
	`{"Records":[{"Data":"AAEC","PartitionKey":"k","SequenceNumber":"1","ApproximateArrivalTimestamp":1733456789,"EncryptionType":"KMS"}],"NextShardIterator":null,"MillisBehindLatest":0,` +
		`"ChildShards":[{"ShardId":"shardId-000000000002","ParentShards":["shardId-000000000000","shardId-000000000001"],"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"340282366920938463463374607431768211455"}}]}`,
	` { "Records" : null , "NextShardIterator" : "x" , "MillisBehindLatest" : null , "ChildShards" : null } `,
	`{"Records":[{"Data":null,"PartitionKey":null,"SequenceNumber":null,"ApproximateArrivalTimestamp":null,"EncryptionType":null}]}`,
	`{"Records":[{"Data":"cmVj\u0062\u0033Jk","PartitionKey":"a\"b"}]}`,
	`{"records":[{"data":"AA=="}],"Unknown":{"x":[1,2]}}`,
	`{"Records":[{"Data":"AA=="}],"Records":[{"PartitionKey":"p"}]}`,
	`{"MillisBehindLatest":1.5}`,
	`{"Records":[{"Data":"not base64"}]}`,
	`{"Records":[{"ApproximateArrivalTimestamp":1e400}]}`,
	`{"ChildShards":[{"HashKeyRange":{"StartingHashKey":"1"},"HashKeyRange":{"EndingHashKey":"2"}}]}`,
	`{"Records":[{"Data":"AAA="}]`,
	`null`,
	``,
	`{"Records":[{"Data":"QR=="},{"Data":"QUI="},{"Data":"QUJ="}]}`,
	`{"Records":[{"Data":"QQ"}]}`,
	`{"Records":[{"Data":"Q==="}]}`,
	`{"Records":[{"Data":"===="}]}`,
	`{"Records":[{"Data":"QUJDRA==QUJD"}]}`,
	`{"Records":[{"Data":"QUJDRE/+QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5eg=="}]}`,
	`{"Records":[{"Data":"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5e-=="}]}`,
}

// FuzzDecodeGetRecords: the decoder gives what encoding/json gives for
// the same text, or both fail; the fast path never accepts what
// encoding/json rejects, and an output stays intact when the decoder is
// used again.
func FuzzDecodeGetRecords(f *testing.F) {
	for _, s := range getRecordsSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, werr := decodeGetRecordsJSON(b)
		var d recordsDecoder
		fast, ok := d.scan(b)
		if ok {
			if werr != nil {
				t.Fatalf("fast path accepted what encoding/json rejects (%v): %q", werr, b)
			}
			if !reflect.DeepEqual(fast, want) {
				t.Fatalf("fast path differs for %q:\n got %+v\nwant %+v", b, fast, want)
			}
		}
		got, err := d.decode(b)
		if (err != nil) != (werr != nil) {
			t.Fatalf("decode error %v, encoding/json %v, for %q", err, werr, b)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("decode differs for %q:\n got %+v\nwant %+v", b, got, want)
		}
		// A second answer through the same decoder leaves the first alone.
		again, _ := decodeGetRecordsJSON(b)
		other := []byte(getRecordsSeeds[1])
		if _, err := d.decode(other); err != nil {
			t.Fatal(err)
		}
		if err == nil && !reflect.DeepEqual(got, again) {
			t.Fatalf("output changed by the next decode for %q", b)
		}
	})
}

// TestDecodeGetRecordsFastPath: the answers servers write take the fast
// path, the others the fallback, with the same results.
func TestDecodeGetRecordsFastPath(t *testing.T) {
	tests := []struct {
		name string
		body string
		fast bool
	}{
		{"empty", getRecordsSeeds[0], true},
		{"records", getRecordsSeeds[1], true},
		{"child shards", getRecordsSeeds[2], true},
		{"nulls and space", getRecordsSeeds[3], true},
		{"null members", getRecordsSeeds[4], true},
		{"escapes", getRecordsSeeds[5], false},
		{"other case, unknown member", getRecordsSeeds[6], false},
		{"member twice", getRecordsSeeds[7], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d recordsDecoder
			_, ok := d.scan([]byte(tt.body))
			if ok != tt.fast {
				t.Fatalf("fast path taken: %v, want %v", ok, tt.fast)
			}
			got, err := d.decode([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			want, err := decodeGetRecordsJSON([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
		})
	}
	var d recordsDecoder
	out, err := d.decode([]byte(getRecordsSeeds[1]))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 2 || string(out.Records[0].Data) != "record-0" || *out.Records[1].PartitionKey != "käse" ||
		out.Records[0].ApproximateArrivalTimestamp.UnixMilli() != 1733456789123 || *out.MillisBehindLatest != 12 {
		t.Fatalf("decoded %+v", out)
	}
}

// bigAnswer is a GetRecords answer of n records of 100 bytes, as runnel
// writes it.
func bigAnswer(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"SequenceNumber":"4959033827149025660855969253836157109592157598913658` + strings.Repeat("8", 4) + `","ApproximateArrivalTimestamp":1733456789.123,"Data":"` +
			strings.Repeat("QUJD", 33) + `AA==","PartitionKey":"key-12345"}`)
	}
	b.WriteString(`],"NextShardIterator":"AAAAAAAAAAF","MillisBehindLatest":0}`)
	return b.Bytes()
}

func BenchmarkDecodeGetRecords(b *testing.B) {
	body := bigAnswer(10000)
	b.Run("fast", func(b *testing.B) {
		var d recordsDecoder
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := d.scan(body); !ok {
				b.Fatal("fell back")
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeGetRecordsJSON(body); err != nil {
				b.Fatal(err)
			}
		}
	})
}
