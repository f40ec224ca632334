package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// userRecord is a user record as a test adds it.
type userRecord struct {
	pk, ehk string
	data    []byte
}

// aggregate adds recs to a new Aggregator and drains it.
func aggregate(t *testing.T, recs []userRecord, opts ...Option) Aggregate {
	t.Helper()
	a := NewAggregator(opts...)
	for i, r := range recs {
		if err := a.Add(r.pk, r.ehk, r.data); err != nil {
			t.Fatalf("add %d: %v", i, err)
		}
	}
	return a.Drain()
}

// checkRecords fails unless got are want, in order, with their indexes as
// sub-sequence numbers.
func checkRecords(t *testing.T, got []Record, want []userRecord) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.PartitionKey != w.pk || g.ExplicitHashKey != w.ehk || !bytes.Equal(g.Data, w.data) || g.SubSequenceNumber != uint64(i) {
			t.Fatalf("record %d: %+v, want %+v", i, g, w)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0xAB}, 300)
	tests := []struct {
		name string
		recs []userRecord
	}{
		{"one", []userRecord{{pk: "k", data: []byte("v")}}},
		{"empty data", []userRecord{{pk: "k", data: []byte{}}, {pk: "k", data: nil}}},
		{"shared keys", []userRecord{{pk: "a", data: []byte("1")}, {pk: "b", data: []byte("2")}, {pk: "a", data: []byte("3")}}},
		{"explicit hash keys", []userRecord{
			{pk: "a", ehk: "0", data: []byte("1")},
			{pk: "b", data: []byte("2")},
			{pk: "c", ehk: "340282366920938463463374607431768211455", data: []byte("3")},
			{pk: "d", ehk: "0", data: []byte("4")},
		}},
		{"binary and long", []userRecord{{pk: strings.Repeat("é", 256), data: big}, {pk: "\x00", data: []byte{0, 0xF3, 0x89, 0x9A, 0xC2}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agg := aggregate(t, tt.recs)
			if agg.PartitionKey != tt.recs[0].pk || agg.ExplicitHashKey != tt.recs[0].ehk || agg.Records != len(tt.recs) {
				t.Fatalf("aggregate put with %q/%q, %d records", agg.PartitionKey, agg.ExplicitHashKey, agg.Records)
			}
			got, ok := Deaggregate(Record{PartitionKey: agg.PartitionKey, Data: agg.Data})
			if !ok {
				t.Fatal("not taken for an aggregate")
			}
			want := make([]userRecord, len(tt.recs))
			for i, r := range tt.recs {
				want[i] = r
				if r.data == nil {
					want[i].data = []byte{}
				}
			}
			checkRecords(t, got, want)
		})
	}
}

// TestKnownBytes pins the encoding to bytes written by aws-kinesis-agg
// 4.2.8 (RecordAggregator.addUserRecord, then build) for the same records.
func TestKnownBytes(t *testing.T) {
	recs := []userRecord{
		{pk: "alpha", data: []byte("one")},
		{pk: "beta", ehk: "12345", data: []byte("two")},
		{pk: "alpha", ehk: "12345", data: []byte{}},
	}
	const want = "f3899ac2" + // magic
		"0a05616c706861" + "0a0462657461" + // partition key table: alpha, beta
		"12053132333435" + // explicit hash key table: 12345
		"1a07" + "0800" + "1a036f6e65" + // {0, "one"}
		"1a09" + "0801" + "1000" + "1a0374776f" + // {1, 0, "two"}
		"1a06" + "0800" + "1000" + "1a00" + // {0, 0, ""}
		"0fc7dfbd2dcd2692658a54ef23de4c17" // MD5
	agg := aggregate(t, recs)
	if got := fmt.Sprintf("%x", agg.Data); got != want {
		t.Fatalf("aggregate\n got %s\nwant %s", got, want)
	}
}

func TestDeaggregatePassesThrough(t *testing.T) {
	valid := aggregate(t, []userRecord{{pk: "a", data: []byte("1")}, {pk: "b", ehk: "7", data: []byte("2")}}).Data
	withDigest := func(pb []byte) []byte {
		sum := md5.Sum(pb)
		return append(append(append([]byte{}, magic[:]...), pb...), sum[:]...)
	}
	pb := valid[4 : len(valid)-16]
	record := func(fields ...[]byte) []byte {
		var b []byte
		for _, f := range fields {
			b = append(b, f...)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, fieldRecords, protowire.BytesType), b)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	bytesField := func(num protowire.Number, v string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), v)
	}
	table := bytesField(fieldPartitionKeyTable, "k")
	tests := []struct {
		name string
		data []byte
		err  error
	}{
		{"empty", nil, ErrNotAggregated},
		{"plain text", []byte("hello, world: a plain record of some length"), ErrNotAggregated},
		{"magic only", magic[:], ErrNotAggregated},
		{"one byte short", append(append([]byte{}, magic[:]...), make([]byte, 15)...), ErrNotAggregated},
		{"magic and digest of nothing", withDigest(nil), ErrNotAggregated},
		{"bad digest", append(append([]byte{}, valid[:len(valid)-1]...), valid[len(valid)-1]^1), ErrChecksum},
		{"flipped protobuf byte", func() []byte { b := bytes.Clone(valid); b[6] ^= 0x40; return b }(), ErrChecksum},
		{"truncated protobuf", withDigest(pb[:len(pb)-2]), ErrMalformed},
		{"bad varint", withDigest([]byte{0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}), ErrMalformed},
		{"field number 0", withDigest([]byte{0x02, 0x00}), ErrMalformed},
		{"stray end group", withDigest([]byte{0x0C}), ErrMalformed},
		{"partition key index out of range", withDigest(append(bytes.Clone(table), record(varint(1, 1), bytesField(3, "x"))...)), ErrMalformed},
		{"explicit hash key index out of range", withDigest(append(bytes.Clone(table), record(varint(1, 0), varint(2, 0), bytesField(3, "x"))...)), ErrMalformed},
		{"no partition key index", withDigest(append(bytes.Clone(table), record(bytesField(3, "x"))...)), ErrMalformed},
		{"no data", withDigest(append(bytes.Clone(table), record(varint(1, 0))...)), ErrMalformed},
		{"tag without key", withDigest(append(bytes.Clone(table), record(varint(1, 0), bytesField(3, "x"), bytesField(4, string(bytesField(2, "v"))))...)), ErrMalformed},
		{"record longer than message", withDigest(append(bytes.Clone(table), 0x1A, 0x10, 0x08, 0x00)), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Decode(tt.data); !errors.Is(err, tt.err) {
				t.Fatalf("Decode: %v, want %v", err, tt.err)
			}
			in := Record{PartitionKey: "outer", ExplicitHashKey: "9", Data: tt.data}
			got, ok := Deaggregate(in)
			if ok || len(got) != 1 || got[0].PartitionKey != in.PartitionKey || got[0].ExplicitHashKey != in.ExplicitHashKey ||
				!bytes.Equal(got[0].Data, in.Data) || got[0].SubSequenceNumber != 0 {
				t.Fatalf("Deaggregate: %+v, %v; want the record unchanged", got, ok)
			}
		})
	}
}

func TestDecodeSkipsUnknownFields(t *testing.T) {
	var pb []byte
	unknown := func(b []byte) []byte {
		b = protowire.AppendTag(b, 9, protowire.VarintType)
		b = protowire.AppendVarint(b, 1<<40)
		b = protowire.AppendTag(b, 10, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, 7)
		b = protowire.AppendTag(b, 11, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, 7)
		b = protowire.AppendTag(b, 12, protowire.BytesType)
		b = protowire.AppendString(b, "skip me")
		b = protowire.AppendTag(b, 13, protowire.StartGroupType)
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, 3)
		b = protowire.AppendTag(b, 13, protowire.EndGroupType)
		// A known field with another wire type is unknown too.
		b = protowire.AppendTag(b, 3, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, 1)
		return b
	}
	pb = unknown(pb)
	pb = protowire.AppendTag(pb, fieldPartitionKeyTable, protowire.BytesType)
	pb = protowire.AppendString(pb, "key")
	var rec []byte
	rec = unknown(rec)
	rec = protowire.AppendTag(rec, fieldPartitionKeyIndex, protowire.VarintType)
	rec = protowire.AppendVarint(rec, 0)
	rec = protowire.AppendTag(rec, fieldData, protowire.BytesType)
	rec = protowire.AppendString(rec, "first")
	rec = protowire.AppendTag(rec, fieldData, protowire.BytesType) // the last wins
	rec = protowire.AppendString(rec, "data")
	var tag []byte
	tag = protowire.AppendTag(tag, fieldTagKey, protowire.BytesType)
	tag = protowire.AppendString(tag, "t")
	rec = protowire.AppendTag(rec, fieldTags, protowire.BytesType)
	rec = protowire.AppendBytes(rec, unknown(tag))
	pb = protowire.AppendTag(pb, fieldRecords, protowire.BytesType)
	pb = protowire.AppendBytes(pb, rec)
	pb = unknown(pb)
	sum := md5.Sum(pb)
	data := append(append(append([]byte{}, magic[:]...), pb...), sum[:]...)
	got, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	checkRecords(t, got, []userRecord{{pk: "key", data: []byte("data")}})
}

func TestEmptyAggregate(t *testing.T) {
	// A protobuf with a table but no records: the KCL takes it for an
	// aggregate of no user records.
	pb := []byte{0x0A, 0x01, 'k'}
	sum := md5.Sum(pb)
	got, ok := Deaggregate(Record{PartitionKey: "k", Data: append(append(magic[:], pb...), sum[:]...)})
	if !ok || len(got) != 0 {
		t.Fatalf("%+v, %v", got, ok)
	}
	if agg := NewAggregator().Drain(); agg.Data != nil || agg.Records != 0 {
		t.Fatalf("drain of nothing: %+v", agg)
	}
}

// TestSizeIsExact checks that Size is the drained aggregate's size as
// Kinesis counts it, however records and keys are mixed, and that Add
// fills up to the limit and no further.
func TestSizeIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, limit := range []int{100, 1000, 5000, 64 << 10} {
		t.Run(fmt.Sprint(limit), func(t *testing.T) {
			a := NewAggregator(MaxSize(limit))
			for round := 0; round < 20; round++ {
				for {
					pk := fmt.Sprintf("key-%d", rng.IntN(200))
					ehk := ""
					if rng.IntN(3) == 0 {
						ehk = fmt.Sprint(rng.Uint64())
					}
					data := make([]byte, rng.IntN(limit/4+1))
					before := a.Size()
					err := a.Add(pk, ehk, data)
					if errors.Is(err, ErrFull) {
						if a.Size() != before {
							t.Fatal("a refused record changed the size")
						}
						if a.sizeWith(pk, ehk, len(data)) <= limit {
							t.Fatal("refused a record that fits")
						}
						break
					}
					if errors.Is(err, ErrTooLarge) {
						continue
					}
					if err != nil {
						t.Fatal(err)
					}
					if a.Size() > limit {
						t.Fatalf("size %d over limit %d", a.Size(), limit)
					}
				}
				size, n := a.Size(), a.Len()
				agg := a.Drain()
				if got := len(agg.Data) + len(agg.PartitionKey); got != size {
					t.Fatalf("Size %d, drained %d", size, got)
				}
				recs, err := Decode(agg.Data)
				if err != nil || len(recs) != n || agg.Records != n {
					t.Fatalf("decode: %d records (%v), want %d", len(recs), err, n)
				}
				if a.Len() != 0 || a.Size() != 0 {
					t.Fatal("drain left records behind")
				}
			}
		})
	}
}

func TestAddRefuses(t *testing.T) {
	tests := []struct {
		name    string
		pk, ehk string
		data    int
		err     error
	}{
		{"empty partition key", "", "", 1, ErrInvalidKey},
		{"partition key of 257 characters", strings.Repeat("x", 257), "", 1, ErrInvalidKey},
		{"partition key not UTF-8", "\xff", "", 1, ErrInvalidKey},
		{"hash key not a number", "k", "12a", 1, ErrInvalidKey},
		{"hash key with leading zero", "k", "01", 1, ErrInvalidKey},
		{"hash key negative", "k", "-1", 1, ErrInvalidKey},
		{"hash key 2^128", "k", "340282366920938463463374607431768211456", 1, ErrInvalidKey},
		{"data of 1 MiB", "k", "", DefaultMaxSize, ErrTooLarge},
		{"largest that fits", "k", "", DefaultMaxSize - overhead - 1 - (1 + 1 + 1) - (1 + 3 + 1 + 1 + 1 + 3), nil},
		{"one byte more", "k", "", DefaultMaxSize - overhead - 1 - (1 + 1 + 1) - (1 + 3 + 1 + 1 + 1 + 3) + 1, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := NewAggregator()
			err := a.Add(tt.pk, tt.ehk, make([]byte, tt.data))
			if !errors.Is(err, tt.err) {
				t.Fatalf("Add: %v, want %v", err, tt.err)
			}
			if err == nil && a.Size() != DefaultMaxSize {
				t.Fatalf("size %d, want exactly the limit", a.Size())
			}
		})
	}
	// A record that fits alone but not with others: ErrFull, and it fits
	// after a drain.
	a := NewAggregator(MaxSize(100))
	if err := a.Add("k", "", make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	if err := a.Add("k", "", make([]byte, 50)); !errors.Is(err, ErrFull) {
		t.Fatalf("second add: %v, want ErrFull", err)
	}
	a.Drain()
	if err := a.Add("k", "", make([]byte, 50)); err != nil {
		t.Fatalf("add after drain: %v", err)
	}
}
