package bench

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// sentRec is one record of a verification scenario: who sent it, with which
// key, when it was first sent and acknowledged, and on which shard.
type sentRec struct {
	p     uint32
	seq   uint64
	key   uint32
	shard int32
	sent  int64
	ack   int64 // 0: never acknowledged
}

// readRec is one record as a consumer reads it from a shard.
type readRec struct {
	id      [2]uint64 // producer, seq
	key     string    // partition key read back; "" means the sent key
	seqNum  int       // sequence number; 0 means the next one
	corrupt bool      // flip a byte of the body
	foreign bool      // not a bench record at all
	run     uint32    // run id; 0 means the run's
}

func id(p, seq uint64) [2]uint64 { return [2]uint64{p, seq} }

// baseScenario is two producers writing keys 0 and 1 (key 0 on shard 0, key
// 1 on shard 1) strictly one after the other: each record is acknowledged
// before the next one is sent.
func baseScenario() []sentRec {
	recs := []sentRec{
		{p: 0, seq: 0, key: 0, shard: 0},
		{p: 0, seq: 1, key: 1, shard: 1},
		{p: 0, seq: 2, key: 0, shard: 0},
		{p: 1, seq: 0, key: 0, shard: 0},
		{p: 1, seq: 1, key: 1, shard: 1},
		{p: 0, seq: 3, key: 0, shard: 0},
		{p: 1, seq: 2, key: 1, shard: 1},
	}
	for i := range recs {
		recs[i].sent = int64(100 + 10*i)
		recs[i].ack = recs[i].sent + 5
	}
	return recs
}

// baseReads reads every acknowledged record once, in acknowledgement order,
// from its shard.
func baseReads(recs []sentRec) map[int32][]readRec {
	reads := map[int32][]readRec{0: nil, 1: nil}
	for _, r := range recs {
		if r.ack != 0 {
			reads[r.shard] = append(reads[r.shard], readRec{id: id(uint64(r.p), r.seq)})
		}
	}
	return reads
}

func TestVerify(t *testing.T) {
	type scenario struct {
		sent    []sentRec
		reads   map[int32][]readRec
		strict  bool
		retried [][2]uint64
	}
	tests := []struct {
		name   string
		modify func(s *scenario)
		want   Verification // only the counters are compared
		ok     bool
	}{
		{
			name:   "clean",
			modify: func(s *scenario) {},
			ok:     true,
		},
		{
			name: "lost",
			modify: func(s *scenario) {
				s.reads[0] = slices.Delete(s.reads[0], 1, 2)
			},
			want: Verification{Lost: 1},
		},
		{
			name: "duplicated",
			modify: func(s *scenario) {
				s.reads[1] = append(s.reads[1], readRec{id: id(0, 1)})
			},
			want: Verification{Duplicated: 1},
		},
		{
			name: "duplicate after a retry of unknown outcome",
			modify: func(s *scenario) {
				s.reads[1] = append(s.reads[1], readRec{id: id(0, 1)})
				s.retried = append(s.retried, id(0, 1))
			},
			want: Verification{RetryDuplicates: 1},
			ok:   true,
		},
		{
			name: "reordered within a producer",
			modify: func(s *scenario) {
				r := s.reads[0] // 0/0 0/2 1/0 0/3
				r[0], r[1] = r[1], r[0]
			},
			want: Verification{Reordered: 1},
		},
		{
			name: "reordered across producers",
			modify: func(s *scenario) {
				r := s.reads[0] // 0/0 0/2 1/0 0/3: 0/2 was acknowledged before 1/0 was sent
				r[1], r[2] = r[2], r[1]
			},
			want: Verification{Reordered: 1},
		},
		{
			name: "concurrent puts may land in either order",
			modify: func(s *scenario) {
				// 0/2 and 1/0 overlap in time: neither was acknowledged
				// before the other was sent.
				s.sent[2].ack = s.sent[3].sent + 1
				r := s.reads[0]
				r[1], r[2] = r[2], r[1]
			},
			ok: true,
		},
		{
			name: "corrupted body",
			modify: func(s *scenario) {
				s.reads[1][1].corrupt = true
			},
			want: Verification{Corrupted: 1, Lost: 1},
		},
		{
			name: "wrong partition key",
			modify: func(s *scenario) {
				s.reads[1][0].key = "k-other"
			},
			want: Verification{Corrupted: 1, Lost: 1},
		},
		{
			name: "misrouted",
			modify: func(s *scenario) {
				// 0/3 (key 0) read from shard 1 instead of shard 0.
				r := s.reads[0]
				moved := r[len(r)-1]
				s.reads[0] = r[:len(r)-1]
				s.reads[1] = append(s.reads[1], moved)
			},
			want: Verification{Misrouted: 1},
		},
		{
			name: "never sent",
			modify: func(s *scenario) {
				s.reads[0] = append(s.reads[0], readRec{id: id(0, 99)}, readRec{id: id(7, 0)})
			},
			want: Verification{Unexpected: 2},
		},
		{
			name: "unacknowledged but stored",
			modify: func(s *scenario) {
				s.sent = append(s.sent, sentRec{p: 1, seq: 3, key: 1, shard: -1, sent: 500})
				s.reads[1] = append(s.reads[1], readRec{id: id(1, 3)})
			},
			want: Verification{Ambiguous: 1},
			ok:   true,
		},
		{
			name: "sequence numbers go back",
			modify: func(s *scenario) {
				s.reads[0][2].seqNum = 1
			},
			want: Verification{SequenceErrors: 1},
		},
		{
			name: "foreign record on an existing stream",
			modify: func(s *scenario) {
				s.reads[0] = append(s.reads[0], readRec{foreign: true}, readRec{id: id(0, 0), run: 0xdead})
			},
			want: Verification{Foreign: 2},
			ok:   true,
		},
		{
			name: "foreign record on a stream the run created",
			modify: func(s *scenario) {
				s.strict = true
				s.reads[0] = append(s.reads[0], readRec{foreign: true}, readRec{id: id(0, 0), run: 0xdead})
			},
			want: Verification{Corrupted: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := scenario{sent: baseScenario()}
			s.reads = baseReads(s.sent)
			tt.modify(&s)
			got := runVerify(t, s.sent, s.reads, s.strict, s.retried)
			if got.OK != tt.ok {
				t.Errorf("OK = %v, want %v; %+v", got.OK, tt.ok, got)
			}
			tt.want.Checked, tt.want.OK = true, tt.ok
			tt.want.Acknowledged, tt.want.ReadOnce = got.Acknowledged, got.ReadOnce
			got.Samples = nil
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("verify = %+v\n          want %+v", got, tt.want)
			}
			if !tt.ok && got.Lost == 0 && got.ReadOnce != got.Acknowledged {
				t.Errorf("read once %d of %d acknowledged", got.ReadOnce, got.Acknowledged)
			}
		})
	}
}

const testRun = 0x5eed

// runVerify builds the producers' ledgers and the consumers' shard logs of
// a scenario through the same code paths as a run and verifies them.
func runVerify(t *testing.T, sent []sentRec, reads map[int32][]readRec, strict bool, retried [][2]uint64) Verification {
	t.Helper()
	keys := newKeySet("k-", 2)
	byID := map[[2]uint64]sentRec{}
	var ledgers []*ledger
	// Producers acknowledge in time order.
	order := slices.Clone(sent)
	slices.SortStableFunc(order, func(a, b sentRec) int { return int(a.ack - b.ack) })
	for _, r := range sent {
		byID[id(uint64(r.p), r.seq)] = r
		for int(r.p) >= len(ledgers) {
			ledgers = append(ledgers, &ledger{})
		}
		l := ledgers[r.p]
		for uint64(len(l.entries)) <= r.seq {
			l.add()
		}
	}
	for _, r := range order {
		if r.ack != 0 {
			ledgers[r.p].ack(r.seq, r.shard, r.ack)
		}
	}
	for _, rid := range retried {
		ledgers[rid[0]].retried(rid[1])
	}
	dec := &recordDecoder{run: testRun, keys: keys, strict: strict, verify: true}
	rng := rand.New(rand.NewPCG(3, 4))
	var logs []*shardLog
	for shard := int32(0); shard < int32(len(reads)); shard++ {
		sl := newShardLog(shard, dec)
		for i, rr := range reads[shard] {
			seqNum := i + 1
			if rr.seqNum != 0 {
				seqNum = rr.seqNum
			}
			var data []byte
			pk := "k-0"
			if rr.foreign {
				data = []byte(`{"not":"ours"}`)
			} else {
				r, ok := byID[rr.id]
				if !ok {
					r = sentRec{p: uint32(rr.id[0]), seq: rr.id[1]}
				}
				pk = keys.names[r.key]
				data = make([]byte, 64)
				newBodyWriter(ShapeRandom, rng).fill(data[headerSize:], pk, r.seq, r.sent)
				run := uint32(testRun)
				if rr.run != 0 {
					run = rr.run
				}
				sealRecord(data, header{Run: run, Producer: r.p, Seq: r.seq, Sent: r.sent, Key: r.key})
				if rr.corrupt {
					data[50] ^= 0x40
				}
				if rr.key != "" {
					pk = rr.key
				}
			}
			sl.observe(data, pk, fmt.Sprintf("4960%052d", seqNum), 1000)
		}
		logs = append(logs, sl)
	}
	return verify(ledgers, logs)
}

func TestSeqNumLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1", "2", true},
		{"2", "1", false},
		{"9", "10", true},
		{"10", "9", false},
		{"49600000000000000000000000000000000000000000000000000001", "49600000000000000000000000000000000000000000000000000002", true},
		{"5", "5", false},
	}
	for _, tt := range tests {
		if got := seqNumLess(tt.a, tt.b); got != tt.want {
			t.Errorf("seqNumLess(%s, %s) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestAckToReceipt checks the ack→receipt latency against hand-computed
// values: receipt minus the acknowledgement of the attempt that succeeded,
// clamped at 0 when the record was received before it was acknowledged.
func TestAckToReceipt(t *testing.T) {
	type read struct {
		p, seq uint64
		recv   int64
	}
	type rec struct {
		sent, ack int64 // ack 0: never acknowledged
		retried   bool  // a first attempt of unknown outcome was retried
	}
	tests := []struct {
		name  string
		sent  map[[2]uint64]rec
		reads []read
		want  []int64 // sorted values expected in the histogram
	}{
		{
			name:  "receipt after the acknowledgement",
			sent:  map[[2]uint64]rec{id(0, 0): {sent: 1000, ack: 1500}, id(1, 0): {sent: 1200, ack: 1300}},
			reads: []read{{0, 0, 1600}, {1, 0, 4000}},
			want:  []int64{100, 2700},
		},
		{
			name:  "receipt before the acknowledgement is clamped at 0",
			sent:  map[[2]uint64]rec{id(0, 0): {sent: 1000, ack: 3000}, id(0, 1): {sent: 1000, ack: 3000}},
			reads: []read{{0, 0, 2000}, {0, 1, 3000}},
			want:  []int64{0, 0},
		},
		{
			// The first attempt stored the record but its answer was
			// lost; the retry was acknowledged at 5000. The copy of the
			// first attempt is read before that, the retry's after.
			name:  "acknowledged after a retry",
			sent:  map[[2]uint64]rec{id(0, 0): {sent: 1000, ack: 5000, retried: true}},
			reads: []read{{0, 0, 2500}, {0, 0, 5200}},
			want:  []int64{0, 200},
		},
		{
			name:  "records never acknowledged or never sent are left out",
			sent:  map[[2]uint64]rec{id(0, 0): {sent: 1000}, id(0, 1): {sent: 1000, ack: 1100}},
			reads: []read{{0, 0, 1200}, {0, 1, 1200}, {0, 7, 1200}, {3, 0, 1200}},
			want:  []int64{100},
		},
	}
	keys := newKeySet("k-", 1)
	dec := &recordDecoder{run: testRun, keys: keys, strict: true, verify: true}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ledgers []*ledger
			for rid, r := range tt.sent {
				for int(rid[0]) >= len(ledgers) {
					ledgers = append(ledgers, &ledger{})
				}
				l := ledgers[rid[0]]
				for uint64(len(l.entries)) <= rid[1] {
					l.add()
				}
				if r.retried {
					l.retried(rid[1])
				}
				if r.ack != 0 {
					l.ack(rid[1], 0, r.ack)
				}
			}
			sl := newShardLog(0, dec)
			e2e := NewHistogram()
			for i, rd := range tt.reads {
				sent := tt.sent[id(rd.p, rd.seq)].sent
				data := make([]byte, 64)
				newBodyWriter(ShapeRandom, rng).fill(data[headerSize:], "k-0", rd.seq, sent)
				sealRecord(data, header{Run: testRun, Producer: uint32(rd.p), Seq: rd.seq, Sent: sent, Key: 0})
				if !sl.observe(data, "k-0", fmt.Sprintf("4960%052d", i+1), rd.recv) {
					t.Fatalf("read %d not recognised", i)
				}
				e2e.Record(rd.recv - sent)
			}
			h := ackToReceipt(ledgers, []*shardLog{sl})
			if h.Count() != uint64(len(tt.want)) {
				t.Fatalf("count %d, want %d", h.Count(), len(tt.want))
			}
			// The values are small enough for the histogram to hold them
			// exactly: each quantile is one of them.
			for i, v := range tt.want {
				q := float64(i+1) / float64(len(tt.want))
				if got := h.Quantile(q); got != v {
					t.Errorf("quantile %.2f = %d, want %d", q, got, v)
				}
			}
			if h.Min() != tt.want[0] || h.Max() != tt.want[len(tt.want)-1] {
				t.Errorf("min %d max %d, want %d and %d", h.Min(), h.Max(), tt.want[0], tt.want[len(tt.want)-1])
			}
			// The send-based end-to-end figure is untouched by the new one.
			if sl.e2e.Count() != e2e.Count() || sl.e2e.Max() != e2e.Max() || sl.e2e.Mean() != e2e.Mean() {
				t.Errorf("end-to-end n=%d max=%d mean=%g, want n=%d max=%d mean=%g", sl.e2e.Count(), sl.e2e.Max(), sl.e2e.Mean(), e2e.Count(), e2e.Max(), e2e.Mean())
			}
		})
	}
}
