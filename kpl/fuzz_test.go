package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
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

// FuzzAggregate adds user records made from the input to an Aggregator
// with a small limit: no aggregate may pass the limit, Size must be the
// drained aggregate's size, a refused record must not fit, and every
// aggregate must decode to the records added to it.
func FuzzAggregate(f *testing.F) {
	f.Add(uint16(200), []byte("k1\x00abc\x01k2\x0042\x00data\x02k1\x00\x00"))
	f.Add(uint16(40), bytes.Repeat([]byte("key\x00xx\x00"), 30))
	f.Add(uint16(1000), []byte{})
	f.Fuzz(func(t *testing.T, limit uint16, in []byte) {
		a := NewAggregator(MaxSize(int(limit)))
		var added []userRecord
		drain := func() {
			size := a.Size()
			agg := a.Drain()
			if len(added) == 0 {
				return
			}
			if got := len(agg.Data) + len(agg.PartitionKey); got != size || got > int(limit) {
				t.Fatalf("drained %d bytes, Size said %d, limit %d", got, size, limit)
			}
			recs, err := Decode(agg.Data)
			if err != nil {
				t.Fatal(err)
			}
			for i := range added {
				if added[i].data == nil {
					added[i].data = []byte{}
				}
			}
			checkRecords(t, recs, added)
			added = added[:0]
		}
		// Records are NUL-separated: a partition key, an explicit hash
		// key (digits kept, may be empty), the data.
		parts := bytes.Split(in, []byte{0})
		for len(parts) >= 3 {
			pk, ehk, data := string(parts[0]), digits(parts[1]), parts[2]
			parts = parts[3:]
			err := a.Add(pk, ehk, data)
			switch {
			case err == nil:
				added = append(added, userRecord{pk: pk, ehk: ehk, data: bytes.Clone(data)})
				if a.Size() > int(limit) {
					t.Fatalf("size %d over limit %d", a.Size(), limit)
				}
			case errors.Is(err, ErrFull):
				if a.sizeWith(pk, ehk, len(data)) <= int(limit) {
					t.Fatal("refused a record that fits")
				}
				drain()
			case errors.Is(err, ErrTooLarge), errors.Is(err, ErrInvalidKey):
			default:
				t.Fatal(err)
			}
		}
		drain()
	})
}

// digits keeps the decimal digits of b, without leading zeros, so that
// most inputs make valid explicit hash keys.
func digits(b []byte) string {
	var s []byte
	for _, c := range b {
		if c >= '0' && c <= '9' && (len(s) > 0 || c != '0') {
			s = append(s, c)
		}
	}
	if len(s) > 38 {
		s = s[:38]
	}
	return string(s)
}
