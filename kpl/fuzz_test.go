package kpl

import (
	"bytes"
	"crypto/md5"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoder, both as they are and
// behind the magic with a correct digest (so that the fuzzer reaches the
// protobuf parser). Decode must not panic; what it accepts must aggregate
// again into the same user records; what it refuses Deaggregate hands
// through unchanged.
func FuzzDecode(f *testing.F) {
	seed := func(recs ...userRecord) []byte {
		a := NewAggregator()
		for _, r := range recs {
			a.add(r.pk, r.ehk, r.data)
		}
		return a.Drain().Data
	}
	valid := seed(userRecord{pk: "a", data: []byte("1")}, userRecord{pk: "b", ehk: "5", data: []byte("22")}, userRecord{pk: "a", ehk: "5", data: nil})
	f.Add(valid)
	f.Add(valid[4 : len(valid)-16])
	f.Add(seed(userRecord{pk: "k", data: bytes.Repeat([]byte{0xF3}, 200)}))
	f.Add([]byte{})
	f.Add(magic[:])
	f.Add([]byte("plain record"))
	f.Add([]byte{0x0A, 0x01, 'k', 0x1A, 0x04, 0x08, 0x00, 0x1A, 0x00, 0x6B, 0x00})
	f.Add([]byte{0x1A, 0x05, 0x08, 0x00, 0x1A, 0x00, 0x23, 0x24})
	f.Fuzz(func(t *testing.T, b []byte) {
		check(t, b)
		sum := md5.Sum(b)
		check(t, append(append(append([]byte{}, magic[:]...), b...), sum[:]...))
	})
}

func check(t *testing.T, data []byte) {
	recs, err := Decode(data)
	if err != nil {
		in := Record{PartitionKey: "p", Data: data}
		out, ok := Deaggregate(in)
		if ok || len(out) != 1 || out[0].PartitionKey != "p" || !bytes.Equal(out[0].Data, data) {
			t.Fatalf("refused (%v) but not handed through: %+v", err, out)
		}
		return
	}
	a := NewAggregator()
	for _, r := range recs {
		a.add(r.PartitionKey, r.ExplicitHashKey, r.Data)
	}
	again, err := Decode(a.Drain().Data)
	if err != nil && len(recs) > 0 {
		t.Fatalf("re-aggregated records do not decode: %v", err)
	}
	if len(again) != len(recs) && len(recs) > 0 {
		t.Fatalf("%d records, %d after a round trip", len(recs), len(again))
	}
	for i, r := range again {
		w := recs[i]
		if r.PartitionKey != w.PartitionKey || r.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(r.Data, w.Data) || r.SubSequenceNumber != uint64(i) || w.SubSequenceNumber != uint64(i) {
			t.Fatalf("record %d: %+v after a round trip, was %+v", i, r, w)
		}
	}
}
