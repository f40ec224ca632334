package streams

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"sort"
	"testing"
)

func bigOf(h hashKey) *big.Int {
	b := new(big.Int).SetUint64(h.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(h.lo))
}

func TestPartitionHashVectors(t *testing.T) {
	// MD5 read as a big-endian integer, and the shard it lands in for a few
	// shard counts (reference: math/big over the same ranges).
	cases := []struct {
		key  string
		hash string
	}{
		{"a", "16955237001963240173058271559858726497"},      // md5 0cc175b9c0f1b6a831c399e269772661
		{"", "281949768489412648962353822266799178366"},      // md5 d41d8cd98f00b204e9800998ecf8427e
		{"hello", "123957004363873451094272536567338222994"}, // md5 5d41402abc4b2a76b9719d911017c592
	}
	for _, tc := range cases {
		h := partitionHash(tc.key)
		if h.String() != tc.hash {
			t.Errorf("hash(%q) = %s, want %s", tc.key, h, tc.hash)
		}
		sum := md5.Sum([]byte(tc.key))
		if bigOf(h).Cmp(new(big.Int).SetBytes(sum[:])) != 0 {
			t.Errorf("hash(%q) disagrees with math/big", tc.key)
		}
	}
	// "a" with 2 shards: below 2^127, so shard 0; "" is above: shard 1.
	r := evenRanges(2)
	if partitionHash("a").cmp(r[0][1]) > 0 || partitionHash("").cmp(r[1][0]) < 0 {
		t.Fatal("routing with 2 shards")
	}
}

func TestEvenRanges(t *testing.T) {
	two128 := new(big.Int).Lsh(big.NewInt(1), 128)
	for _, n := range []int{1, 2, 3, 4, 5, 7, 8, 10, 16, 100, 1000} {
		r := evenRanges(n)
		step := new(big.Int).Div(two128, big.NewInt(int64(n)))
		for i, rg := range r {
			wantStart := new(big.Int).Mul(step, big.NewInt(int64(i)))
			wantEnd := new(big.Int).Sub(new(big.Int).Mul(step, big.NewInt(int64(i+1))), big.NewInt(1))
			if i == n-1 {
				wantEnd = new(big.Int).Sub(two128, big.NewInt(1))
			}
			if bigOf(rg[0]).Cmp(wantStart) != 0 || bigOf(rg[1]).Cmp(wantEnd) != 0 {
				t.Fatalf("n=%d shard %d: [%s, %s], want [%s, %s]", n, i, rg[0], rg[1], wantStart, wantEnd)
			}
		}
	}
	// Kinesis' figures for 3 shards.
	r := evenRanges(3)
	if r[1][0].String() != "113427455640312821154458202477256070485" || r[2][0].String() != "226854911280625642308916404954512140970" {
		t.Fatalf("3-shard ranges %v", r)
	}
}

func TestHashKeyParse(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0", true}, {"340282366920938463463374607431768211455", true},
		{"340282366920938463463374607431768211456", false}, {"-1", false}, {"", false},
		{"1e5", false}, {"9999999999999999999999999999999999999999", false}, {"00012", true},
	} {
		h, ok := parseHashKey(tc.in)
		if ok != tc.ok {
			t.Errorf("parseHashKey(%q) ok=%v, want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok {
			want, _ := new(big.Int).SetString(tc.in, 10)
			if bigOf(h).Cmp(want) != 0 {
				t.Errorf("parseHashKey(%q) = %s", tc.in, h)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		h := hashKey{rng.Uint64(), rng.Uint64()}
		back, ok := parseHashKey(h.String())
		if !ok || back != h || bigOf(h).String() != h.String() {
			t.Fatalf("round trip %s", h)
		}
	}
}

func TestSeqNumRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	cases := []seqNum{
		{},
		{created: 1700000000, shard: 0, offset: 0, arrival: 1700000000},
		{created: mask36, shard: 1<<32 - 1, offset: ^uint64(0), arrival: mask36},
	}
	for range 1000 {
		cases = append(cases, seqNum{created: rng.Uint64() & mask36, shard: rng.Uint32(), offset: rng.Uint64(), arrival: rng.Uint64() & mask36, record: rng.IntN(2) == 0})
	}
	for _, sn := range cases {
		s := sn.String()
		if len(s) != 56 {
			t.Fatalf("%+v: %d digits: %s", sn, len(s), s)
		}
		back, ok := parseSeqNum(s)
		if !ok || back != sn {
			t.Fatalf("round trip %+v -> %s -> %+v %v", sn, s, back, ok)
		}
	}
	// A known layout check: version 2, trailer 2, fields in place.
	sn := seqNum{created: 0x123456789, shard: 0xABCDEF01, offset: 0x0102030405060708, arrival: 0x987654321}
	want, _ := new(big.Int).SetString("2"+"123456789"+"1"+"0102030405060708"+"00"+"987654321"+"abcdef01"+"2", 16)
	if sn.String() != want.String() {
		t.Fatalf("layout: %s, want %s", sn, want)
	}
	// The decimal digits of random numbers, against math/big.
	for _, sn := range cases {
		kind := 0
		if sn.record {
			kind = 1
		}
		hex := fmt.Sprintf("2%09x%x%016x%02x%09x%08x2", sn.created, sn.shard&0xf, sn.offset, kind, sn.arrival, sn.shard)
		want, _ := new(big.Int).SetString(hex, 16)
		if got := sn.String(); got != want.String() {
			t.Fatalf("%+v: %s, want %s", sn, got, want)
		}
	}
}

func TestSeqNumOrdering(t *testing.T) {
	// Within a shard numbers grow with the offset, whatever the arrival
	// time; a later-created shard sorts above an earlier one.
	var nums []string
	for off := uint64(0); off < 300; off += 7 {
		nums = append(nums, seqNum{created: 1000, shard: 3, offset: off, arrival: 2000 - off}.String())
	}
	if !sort.StringsAreSorted(nums) {
		t.Fatal("not ordered by offset")
	}
	parent := seqNum{created: 1000, shard: 15, offset: ^uint64(0), arrival: mask36}.String()
	child := seqNum{created: 1001, shard: 16, offset: 0, arrival: 1001}.String()
	if child <= parent {
		t.Fatal("child below parent")
	}
}

func TestSeqNumRejects(t *testing.T) {
	good := seqNum{created: 5, shard: 1, offset: 2, arrival: 6}.String()
	for _, s := range []string{
		"", "0", "1", good[:55], good + "0", "x" + good[1:], "0" + good[1:],
		"99999999999999999999999999999999999999999999999999999999",
		"49579844037727333356165064238440708846556371693205002242", // a real Kinesis number of another layout
	} {
		if _, ok := parseSeqNum(s); ok {
			t.Errorf("parseSeqNum(%q) accepted", s)
		}
	}
}

func BenchmarkSeqNum(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 64)
	for i := range b.N {
		buf = seqNum{created: 1700000000, shard: 7, offset: uint64(i), arrival: 1700000001}.appendTo(buf[:0])
	}
}

func BenchmarkPartitionHash(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		_ = partitionHash("partition-key-0001")
	}
}

func TestAppendNextSeq(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := []seqNum{
		{},
		{created: mask36, shard: math.MaxUint32, offset: math.MaxUint64 - 1, arrival: mask36, record: true},
		{created: 1700000000, shard: 3, offset: 1<<32 - 1, arrival: 1700000001, record: true},
		{created: 1700000000, shard: 3, offset: 999, arrival: 1700000001},
	}
	for range 10000 {
		cases = append(cases, seqNum{
			created: r.Uint64() & mask36,
			shard:   r.Uint32(),
			offset:  r.Uint64N(math.MaxUint64),
			arrival: r.Uint64() & mask36,
			record:  r.IntN(2) == 1,
		})
	}
	for _, s := range cases {
		prefix := []byte("prefix")
		b := s.appendTo(prefix)
		got := appendNextSeq(b, b[len(prefix):])
		next := s
		next.offset++
		if want := next.String(); string(got[len(b):]) != want {
			t.Fatalf("appendNextSeq(%+v) = %s, want %s", s, got[len(b):], want)
		}
		if string(got[:len(b)]) != string(b) {
			t.Fatalf("appendNextSeq changed its input: %s", got[:len(b)])
		}
	}
}

func BenchmarkAppendNextSeq(b *testing.B) {
	b.ReportAllocs()
	// A run of numbers, as in an answer: each from the one before.
	buf := seqNum{created: 1700000000, shard: 7, offset: 12345, arrival: 1700000001}.appendTo(make([]byte, 0, 2*seqNumDigits))
	for b.Loop() {
		buf = appendNextSeq(buf, buf)
		buf = append(buf[:0], buf[seqNumDigits:]...)
	}
}

// TestParseFormat8 checks the eight-digit conversions of appendNextSeq
// against strconv, at the edges and at random.
func TestParseFormat8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	vals := []uint32{0, 1, 9, 10, 99, 100, 9999, 10000, 99999999, 12345678, 87654321, 10000000, 99990000, 9999}
	for range 100000 {
		vals = append(vals, r.Uint32N(1e8))
	}
	for _, v := range vals {
		want := fmt.Sprintf("%08d", v)
		var g [8]byte
		binary.LittleEndian.PutUint64(g[:], format8(v))
		if string(g[:]) != want {
			t.Fatalf("format8(%d) = %q, want %q", v, g[:], want)
		}
		if got := parse8([]byte(want)); got != v {
			t.Fatalf("parse8(%q) = %d", want, got)
		}
	}
}
