package kinesisapi

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/runnel/runnel/internal/streams"
)

// TestValidPutRecords holds validPutRecords to validate: every input it
// passes, validate passes; and it passes the ordinary ones.
func TestValidPutRecords(t *testing.T) {
	shape := &operations["PutRecords"].input
	r := rand.New(rand.NewPCG(7, 8))
	str := func(s string) *string { return &s }
	pick := func(opts ...string) *string {
		i := r.IntN(len(opts) + 1)
		if i == len(opts) {
			return nil
		}
		return str(opts[i])
	}
	keys := []string{"", "k", "partition-key-1", strings.Repeat("a", 256), strings.Repeat("a", 257), "ключ", strings.Repeat("é", 128), strings.Repeat("é", 129), "\x00", "a b"}
	hashes := []string{"0", "00", "01", "1", "340282366920938463463374607431768211455", strings.Repeat("9", 39), strings.Repeat("9", 40), "-1", "1a", ""}
	names := []string{"s", "my-stream_1.0", strings.Repeat("n", 128), strings.Repeat("n", 129), "", "a b", "a/b", "ü"}
	arns := []string{"arn:aws:kinesis:us-east-1:123456789012:stream/s", "nope"}
	huge := make([]byte, 10485761) // one over the model's limit, shared
	small := make([]byte, 20)
	passed := 0
	for range 3000 {
		in := &streams.PutRecordsInput{StreamName: pick(names...), StreamARN: pick(arns...)}
		if r.IntN(4) != 0 {
			in.StreamARN = nil
		}
		n := []int{0, 1, 2, 500, 501}[r.IntN(5)]
		if r.IntN(10) == 0 {
			in.Records = nil
		} else {
			in.Records = make([]streams.PutRecordsRequestEntry, n)
		}
		for i := range in.Records {
			e := &in.Records[i]
			if r.IntN(50) != 0 {
				e.Data = small[:r.IntN(3)*10]
			}
			if r.IntN(200) == 0 {
				e.Data = huge
			}
			if r.IntN(3) != 0 {
				e.PartitionKey = str("key")
			} else {
				e.PartitionKey = pick(keys...)
			}
			if r.IntN(5) == 0 {
				e.ExplicitHashKey = pick(hashes...)
			}
		}
		if validPutRecords(in) {
			passed++
			if aerr := validate(shape, in); aerr != nil {
				t.Fatalf("validPutRecords passed what validate refuses (%s): %+v", aerr.message, in)
			}
		}
	}
	if passed < 100 {
		t.Fatalf("only %d inputs passed", passed)
	}
	ordinary := &streams.PutRecordsInput{StreamName: str("orders"), Records: []streams.PutRecordsRequestEntry{
		{Data: []byte("x"), PartitionKey: str("k")},
		{Data: []byte{}, PartitionKey: str(strings.Repeat("a", 256)), ExplicitHashKey: str("340282366920938463463374607431768211455")},
	}}
	if !validPutRecords(ordinary) || validate(shape, ordinary) != nil {
		t.Fatal("an ordinary PutRecords is not passed by both")
	}
}
