package bench

import (
	"errors"
	"fmt"
)

// maxSamples bounds the problem descriptions kept for the report.
const maxSamples = 10

// ledger is what one producer sent and what the stream acknowledged, indexed
// by the record's sequence within the producer. It is owned by the producer
// goroutine while the run is going and read by the verification afterwards.
type ledger struct {
	entries []ledgerEntry
	acked   uint32 // acknowledgement ordinals handed out so far
	// count, when set, keeps no entries: records are only numbered (runs
	// without verification).
	count bool
	n     uint64
}

type ledgerEntry struct {
	ack   int64  // Unix nanoseconds of the acknowledgement; 0 while unacknowledged
	ord   uint32 // acknowledgement ordinal within the producer, from 1; 0 while unacknowledged
	shard int32  // shard index the service reported, -1 if unknown
	// retried is set when a put of the record failed in a way that leaves
	// it unknown whether the service stored it (a transport error or a
	// server error) and the record was sent again: a duplicate is then
	// expected (Kinesis is at-least-once), not an error.
	retried bool
}

// add registers a new record and returns its sequence.
func (l *ledger) add() uint64 {
	if l.count {
		l.n++
		return l.n - 1
	}
	l.entries = append(l.entries, ledgerEntry{shard: -1})
	return uint64(len(l.entries) - 1)
}

// ack records that the stream acknowledged record seq on shard (-1 if
// unknown) at time at. Records must be acknowledged in the order the service
// answered.
func (l *ledger) ack(seq uint64, shard int32, at int64) {
	l.acked++
	if l.count {
		return
	}
	e := &l.entries[seq]
	e.ack, e.ord, e.shard = at, l.acked, shard
}

// retried records that record seq is sent again after a put whose outcome
// is unknown.
func (l *ledger) retried(seq uint64) {
	if !l.count {
		l.entries[seq].retried = true
	}
}

// observation is one of this run's records as a consumer read it.
type observation struct {
	producer uint32
	key      uint32
	seq      uint64
	sent     int64 // first send, Unix nanoseconds (from the record's header)
	recv     int64 // receipt by the consumer, Unix nanoseconds (the run's clock)
}

// shardLog is what the consumers read from one shard, in order. It is owned by
// the one goroutine that reads the shard while the run is going.
type shardLog struct {
	shard   int32
	decoder *recordDecoder
	obs     []observation

	lastSeqNum string // last sequence number read, to check they increase
	seqErrors  int64
	corrupted  int64
	foreign    int64
	bytes      int64
	samples    []string

	e2e *Histogram
}

func newShardLog(shard int32, d *recordDecoder) *shardLog {
	return &shardLog{shard: shard, decoder: d, e2e: NewHistogram()}
}

// recordDecoder holds what a consumer needs to recognise and check this run's
// records.
type recordDecoder struct {
	run  uint32
	keys *keySet
	// strict is set when the run created the stream: every record in it must
	// then be one of the run's, and anything else is corruption.
	strict bool
	// verify keeps every observation for the verification.
	verify bool
}

func (l *shardLog) sample(format string, args ...any) {
	if len(l.samples) < maxSamples {
		l.samples = append(l.samples, fmt.Sprintf("shard %d: ", l.shard)+fmt.Sprintf(format, args...))
	}
}

// observe checks one record read from the shard at time recv (Unix
// nanoseconds) and remembers it for the verification. It reports whether the
// record is one of this run's. data is not retained.
func (l *shardLog) observe(data []byte, partitionKey, seqNum string, recv int64) bool {
	l.bytes += int64(len(data))
	if l.lastSeqNum != "" && !seqNumLess(l.lastSeqNum, seqNum) {
		l.seqErrors++
		l.sample("sequence number %s read after %s", seqNum, l.lastSeqNum)
	}
	l.lastSeqNum = seqNum
	h, err := decodeRecord(data)
	switch {
	case errors.Is(err, errNotBench) && !l.decoder.strict:
		l.foreign++
		return false
	case err != nil:
		l.corrupted++
		l.sample("record %s (key %q): %v", seqNum, partitionKey, err)
		return false
	case h.Run != l.decoder.run:
		if l.decoder.strict {
			l.corrupted++
			l.sample("record %s: run id %08x, want %08x", seqNum, h.Run, l.decoder.run)
		} else {
			l.foreign++
		}
		return false
	}
	keys := l.decoder.keys.names
	if int(h.Key) >= len(keys) || keys[h.Key] != partitionKey {
		l.corrupted++
		l.sample("record %d/%d read with partition key %q, sent with key index %d", h.Producer, h.Seq, partitionKey, h.Key)
		return false
	}
	l.e2e.Record(recv - h.Sent)
	if l.decoder.verify {
		l.obs = append(l.obs, observation{producer: h.Producer, key: h.Key, seq: h.Seq, sent: h.Sent, recv: recv})
	}
	return true
}

// ackToReceipt returns the distribution of the time from each acknowledged
// record's acknowledgement to its receipt: for every read of a record
// (copies read again included) whose put the stream acknowledged, the
// receipt time minus the time the producer received the acknowledgement of
// the attempt that succeeded, or 0 when the consumer received the record
// before the producer had the acknowledgement (a push consumer can). Reads
// of records never acknowledged or never sent have no acknowledgement and
// are left out. Both times are on the run's clock (runner.now), so the
// figure is exact up to the histogram's precision.
//
// It runs after the run, once the producers' ledgers and the consumers'
// shard logs are final: while the run goes a record can be received before
// its producer has recorded the acknowledgement.
func ackToReceipt(ledgers []*ledger, logs []*shardLog) *Histogram {
	h := NewHistogram()
	for _, sl := range logs {
		for _, o := range sl.obs {
			if int(o.producer) >= len(ledgers) || o.seq >= uint64(len(ledgers[o.producer].entries)) {
				continue
			}
			e := ledgers[o.producer].entries[o.seq]
			if e.ord == 0 {
				continue
			}
			h.Record(max(0, o.recv-e.ack))
		}
	}
	return h
}

// seqNumLess reports whether decimal sequence number a is below b.
func seqNumLess(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}

// Verification is the outcome of comparing what the producers had
// acknowledged with what the consumers read.
type Verification struct {
	// Checked is false when verification was turned off.
	Checked bool `json:"checked"`
	// OK is true when no acknowledged record was lost, duplicated,
	// reordered, corrupted or misrouted and sequence numbers increased.
	OK bool `json:"ok"`
	// Acknowledged counts records whose put the stream acknowledged.
	Acknowledged int64 `json:"acknowledged"`
	// ReadOnce counts acknowledged records read (the first time).
	ReadOnce int64 `json:"read_once"`
	// Lost counts acknowledged records never read.
	Lost int64 `json:"lost"`
	// Duplicated counts extra copies read of a record already read.
	Duplicated int64 `json:"duplicated"`
	// Reordered counts records read out of order for their partition key
	// within their shard.
	Reordered int64 `json:"reordered"`
	// Corrupted counts records whose checksum, header or partition key did
	// not match.
	Corrupted int64 `json:"corrupted"`
	// Misrouted counts records read from another shard than the one the
	// service acknowledged them on.
	Misrouted int64 `json:"misrouted"`
	// Unexpected counts intact records of this run that no producer sent.
	Unexpected int64 `json:"unexpected"`
	// SequenceErrors counts records whose sequence number was not above
	// the previous one read from the same shard.
	SequenceErrors int64 `json:"sequence_errors"`
	// Ambiguous counts records read although their put was never
	// acknowledged (the call failed or timed out after the service
	// stored them). Not an error.
	Ambiguous int64 `json:"ambiguous"`
	// RetryDuplicates counts extra copies of records that were sent again
	// after a put with an unknown outcome: expected of an at-least-once
	// stream, not an error.
	RetryDuplicates int64 `json:"retry_duplicates"`
	// Foreign counts records of other runs or tools on an existing stream,
	// which are ignored.
	Foreign int64 `json:"foreign"`
	// Samples describes the first few problems found.
	Samples []string `json:"samples,omitempty"`
}

// verify compares the producers' ledgers with the consumers' shard logs.
func verify(ledgers []*ledger, logs []*shardLog) Verification {
	v := Verification{Checked: true}
	sample := func(format string, args ...any) {
		if len(v.Samples) < maxSamples {
			v.Samples = append(v.Samples, fmt.Sprintf(format, args...))
		}
	}
	seen := make([][]bool, len(ledgers))
	for i, l := range ledgers {
		seen[i] = make([]bool, len(l.entries))
	}
	for _, sl := range logs {
		v.Corrupted += sl.corrupted
		v.Foreign += sl.foreign
		v.SequenceErrors += sl.seqErrors
		for _, s := range sl.samples {
			sample("%s", s)
		}
		// Order is checked per partition key within the shard.
		lastOrd := make(map[[2]uint32]uint32) // (producer, key) -> highest ordinal read
		maxSent := make(map[uint32]int64)     // key -> latest first-send time read
		for _, o := range sl.obs {
			if int(o.producer) >= len(ledgers) || o.seq >= uint64(len(ledgers[o.producer].entries)) {
				v.Unexpected++
				sample("shard %d: record %d/%d was never sent", sl.shard, o.producer, o.seq)
				continue
			}
			if seen[o.producer][o.seq] {
				if ledgers[o.producer].entries[o.seq].retried {
					v.RetryDuplicates++
					continue
				}
				v.Duplicated++
				sample("shard %d: record %d/%d read again", sl.shard, o.producer, o.seq)
				continue
			}
			seen[o.producer][o.seq] = true
			e := ledgers[o.producer].entries[o.seq]
			if e.ord == 0 {
				v.Ambiguous++
				continue
			}
			v.ReadOnce++
			if e.shard >= 0 && e.shard != sl.shard {
				v.Misrouted++
				sample("record %d/%d acknowledged on shard %d, read from shard %d", o.producer, o.seq, e.shard, sl.shard)
			}
			pk := [2]uint32{o.producer, o.key}
			last, ok := lastOrd[pk]
			switch {
			case ok && e.ord < last:
				v.Reordered++
				sample("shard %d: record %d/%d of key %d read after a record its producer had acknowledged later", sl.shard, o.producer, o.seq, o.key)
			default:
				if m, ok := maxSent[o.key]; ok && e.ack < m {
					v.Reordered++
					sample("shard %d: record %d/%d of key %d read after a record first sent once it was acknowledged", sl.shard, o.producer, o.seq, o.key)
				}
			}
			lastOrd[pk] = max(last, e.ord)
			maxSent[o.key] = max(maxSent[o.key], o.sent)
		}
	}
	for p, l := range ledgers {
		for seq, e := range l.entries {
			if e.ord == 0 {
				continue
			}
			v.Acknowledged++
			if !seen[p][seq] {
				v.Lost++
				sample("record %d/%d acknowledged on shard %d never read", p, seq, e.shard)
			}
		}
	}
	v.OK = v.Lost == 0 && v.Duplicated == 0 && v.Reordered == 0 && v.Corrupted == 0 &&
		v.Misrouted == 0 && v.Unexpected == 0 && v.SequenceErrors == 0
	return v
}
