package jetstream

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/runnel/runnel/internal/engine"
)

// A record is one JetStream message: the last of a batch on its log's
// subject, the others on the log's body subject (logNames). Its payload is
//
//	time  int64, big-endian: the batch's arrival time in Unix milliseconds
//	klen  uvarint: the key's length
//	key   klen bytes
//	value the rest
//
// The arrival time is the appending gateway's clock, kept from going back
// along the log by that gateway (see docs/CLUSTER.md), and the same for every
// record of a batch. A record's offset is its stream sequence minus one.

// Headers.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
	hdrSequence    = "Nats-Sequence"
	hdrMsgID       = "Nats-Msg-Id"
	hdrEvent       = "Runnel-Event" // on the notify subject: "sealed" or "deleted"
)

func encodeRecord(t int64, r engine.Record) []byte {
	b := make([]byte, 8, 8+binary.MaxVarintLen64+len(r.Key)+len(r.Value))
	binary.BigEndian.PutUint64(b, uint64(t))
	b = binary.AppendUvarint(b, uint64(len(r.Key)))
	b = append(b, r.Key...)
	return append(b, r.Value...)
}

// decode returns the record at offset stored as b, opening it with o if it
// is encrypted.
func (o *opener) decode(offset uint64, b []byte) (engine.StoredRecord, error) {
	if len(b) >= 8 && binary.BigEndian.Uint64(b)&encryptedBit != 0 {
		return o.open(offset, b)
	}
	return decodeRecord(offset, b)
}

// peek returns the record at offset stored as b with its time only (no
// key or value, nothing opened): for callers that look for positions.
func peek(offset uint64, b []byte) (engine.StoredRecord, error) {
	if len(b) < 8 {
		return engine.StoredRecord{}, fmt.Errorf("jetstream: record %d: %d bytes, too short", offset, len(b))
	}
	return engine.StoredRecord{Offset: offset, Time: int64(binary.BigEndian.Uint64(b) &^ encryptedBit)}, nil
}

func decodeRecord(offset uint64, b []byte) (engine.StoredRecord, error) {
	if len(b) < 9 {
		return engine.StoredRecord{}, fmt.Errorf("jetstream: record %d: %d bytes, too short", offset, len(b))
	}
	t := int64(binary.BigEndian.Uint64(b))
	klen, n := binary.Uvarint(b[8:])
	if n <= 0 || klen > uint64(len(b)-8-n) {
		return engine.StoredRecord{}, fmt.Errorf("jetstream: record %d: bad key length", offset)
	}
	k := b[8+n : 8+n+int(klen)]
	v := b[8+n+int(klen):]
	return engine.StoredRecord{Offset: offset, Time: t, Key: k[:len(k):len(k)], Value: v}, nil
}

type log struct {
	e    *Engine
	name string
	n    logNames
}

// stamp returns the arrival time for a batch of the log: now, or the last
// time this engine gave the log if the clock went back.
func (l *log) stamp() int64 {
	v, _ := l.e.stamps.LoadOrStore(l.name, new(atomic.Int64))
	last := v.(*atomic.Int64)
	now := l.e.opts.Now().UnixMilli()
	for {
		old := last.Load()
		t := max(now, old)
		if last.CompareAndSwap(old, t) {
			return t
		}
	}
}

// pubAck is JetStream's answer to a publish.
type pubAck struct {
	Stream    string    `json:"stream"`
	Seq       uint64    `json:"seq"`
	Duplicate bool      `json:"duplicate"`
	Error     *apiError `json:"error"`
}

type apiError struct {
	Code        int    `json:"code"`
	ErrCode     int    `json:"err_code"`
	Description string `json:"description"`
}

func (a *apiError) Error() string {
	return fmt.Sprintf("%s (code %d, error %d)", a.Description, a.Code, a.ErrCode)
}

// JetStream error codes the engine maps.
const (
	errCodeStreamNotFound   = 10059
	errCodeMsgTooLarge      = 10054
	errCodeBatchTooLarge    = 10199
	errCodeNoMessageFound   = 10037
	errCodeAtomicIncomplete = 10176
)

func (l *log) Append(ctx context.Context, recs []engine.Record) (engine.AppendResult, error) {
	if err := l.e.check(); err != nil {
		return engine.AppendResult{}, err
	}
	if len(recs) == 0 {
		return engine.AppendResult{}, errors.New("jetstream: empty batch")
	}
	if len(recs) > engine.MaxBatchRecords {
		return engine.AppendResult{}, fmt.Errorf("jetstream: %d records: %w", len(recs), engine.ErrTooLarge)
	}
	size := 0
	for _, r := range recs {
		size += len(r.Key) + len(r.Value)
	}
	if size > engine.MaxBatchBytes {
		return engine.AppendResult{}, fmt.Errorf("jetstream: %d bytes: %w", size, engine.ErrTooLarge)
	}
	// A batch is given a minute more per 16 MiB to reach a quorum.
	ctx, cancel := context.WithTimeout(ctx, l.e.opts.RequestTimeout+time.Duration(size>>24)*time.Minute)
	defer cancel()
	a := &appendCall{l: l, recs: recs, id: nuid.Next(), floor: l.e.ackedSeq(l.n.stream), answers: make(chan *nats.Msg, 16), sent: make(map[string]int64)}
	defer a.close()
	seq, t, err := a.run(ctx, l.e.opts.ResendAfter+time.Duration(size)*resendPerByte)
	if err != nil {
		return engine.AppendResult{}, err
	}
	l.e.appended(l.n.stream, seq)
	return engine.AppendResult{FirstOffset: seq - uint64(len(recs)), Time: t}, nil
}

// An append survives a change of its stream's leader without waiting out
// its timeout, and without storing a batch twice:
//
//   - Every batch carries a message id (Nats-Msg-Id, on its last message),
//     and JetStream stores a message id once within the stream's
//     duplicates window (dupWindow).
//   - A leader that steps down or dies, a server that loses interest on
//     the way, or a connection that breaks drops a publish without an
//     answer. So a batch is sent again, under a new batch id and the same
//     message id, when JetStream reports a new leader for its stream, when
//     the engine's connection comes back, and when it had no answer after
//     ResendAfter (plus a little per byte), then after twice as long, up to
//     a second between resends (or the first wait, if longer). The answers
//     of every attempt are awaited together: the first acknowledgement ends
//     the append.
//   - A resend of a batch JetStream already holds is refused as a
//     duplicate. Then the batch is stored, or about to be: the append waits
//     a moment for an earlier attempt's acknowledgement, and failing that
//     finds the batch by its message id, reading forward from the last
//     sequence this engine saw acknowledged on the stream before the first
//     attempt (floor), which the batch must follow.
//
// Resends stop at half the duplicates window after the first attempt; from
// then on only answers are awaited.
const (
	dupWindow     = time.Minute
	resendPerByte = 100 * time.Nanosecond // 10 MB/s on top of ResendAfter
	maxResendWait = time.Second
	dupGrace      = 20 * time.Millisecond // how long a duplicate waits for an earlier attempt's answer
)

// JetStream error codes an append retries on or reads as "stored already".
const (
	errCodeClusterNotAvail = 10008
	errCodeDupConflict     = 10158 // the message id is being stored
	errCodeDupInBatch      = 10201 // an atomic batch holds a stored message id
)

// appendCall is one Append's attempts.
type appendCall struct {
	l       *log
	recs    []engine.Record
	id      string // the batch's message id, the same in every attempt
	floor   uint64 // the batch follows this stream sequence
	answers chan *nats.Msg
	sent    map[string]int64 // reply subject -> the arrival time that attempt stamped
	unheard int              // attempts nobody received
}

func (a *appendCall) close() {
	for reply := range a.sent {
		a.l.e.replies.close(reply)
	}
}

// send publishes one attempt.
func (a *appendCall) send(ctx context.Context) error {
	reply := a.l.e.replies.open(a.answers)
	t, err := a.l.publish(ctx, a.recs, reply, a.id)
	if err != nil {
		a.l.e.replies.close(reply)
		return err
	}
	if len(a.sent) > 0 {
		a.l.e.resent.Add(1)
	}
	a.sent[reply] = t
	return nil
}

// run sends the batch until JetStream acknowledges it, and returns the
// stream sequence of its last record and its arrival time.
func (a *appendCall) run(ctx context.Context, wait time.Duration) (uint64, int64, error) {
	l := a.l
	first := time.Now()
	longest := max(wait, maxResendWait)
	elected := l.e.leaderEpoch(l.n.stream)
	reconnected := l.e.leaderEpoch(reconnects)
	if err := a.send(ctx); err != nil {
		return 0, 0, err
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	stored := false // JetStream reported the message id stored
	retries := 0
	for {
		select {
		case m := <-a.answers:
			seq, dup, retry, err := a.answer(ctx, m)
			switch {
			case err != nil:
				return 0, 0, err
			case seq > 0 && !dup:
				return seq, a.sent[m.Subject], nil
			case seq > 0:
				t, err := l.timeAt(ctx, seq)
				return seq, t, err
			case dup:
				if !stored {
					stored = true
					timer.Reset(dupGrace)
				}
			case retry && !stored:
				// Nothing was stored by that attempt: send again soon.
				retries++
				timer.Reset(time.Duration(min(retries, 10)) * 20 * time.Millisecond)
			}
		case <-elected:
			// A new leader: what the old one dropped will not be answered.
			elected = l.e.leaderEpoch(l.n.stream)
			if !stored {
				timer.Reset(0)
			}
		case <-reconnected:
			// What was on its way through the lost connection is lost.
			reconnected = l.e.leaderEpoch(reconnects)
			if !stored {
				timer.Reset(0)
			}
		case <-timer.C:
			if stored {
				return a.locate(ctx)
			}
			if time.Since(first) < dupWindow/2 {
				if err := a.send(ctx); err != nil {
					return 0, 0, err
				}
				wait = min(2*wait, longest)
				timer.Reset(wait)
			}
		case <-ctx.Done():
			return 0, 0, l.e.wrap("append to "+l.name, ctx.Err())
		case <-l.e.done:
			return 0, 0, fmt.Errorf("jetstream: %w", engine.ErrClosed)
		}
	}
}

// answer reads one attempt's answer: the acknowledged sequence (dup if
// JetStream held the batch already), or dup alone if the batch is stored or
// being stored elsewhere, or retry if this attempt stored nothing and
// another may succeed.
func (a *appendCall) answer(ctx context.Context, m *nats.Msg) (seq uint64, dup, retry bool, err error) {
	l := a.l
	if m.Header.Get("Status") == "503" {
		// Nobody received the attempt: the log is sealed or gone, or its
		// stream is new (or between leaders) and its server not yet known
		// to ours. Asking which can take as long as an election, so it is
		// asked at every third such answer only, and sent again between.
		if a.unheard++; a.unheard%3 == 0 {
			if err := l.whyNoStream(ctx); !errors.Is(err, errNotYet) {
				return 0, false, false, err
			}
		}
		return 0, false, true, nil
	}
	var ack pubAck
	if err := json.Unmarshal(m.Data, &ack); err != nil {
		return 0, false, false, fmt.Errorf("jetstream: append to %s: bad acknowledgement %q", l.name, m.Data)
	}
	if ack.Error != nil {
		switch ack.Error.ErrCode {
		case errCodeMsgTooLarge, errCodeBatchTooLarge:
			return 0, false, false, fmt.Errorf("jetstream: append to %s: %v: %w", l.name, ack.Error, engine.ErrTooLarge)
		case errCodeDupConflict, errCodeDupInBatch:
			return 0, true, false, nil
		case errCodeAtomicIncomplete, errCodeClusterNotAvail:
			return 0, false, true, nil
		}
		return 0, false, false, fmt.Errorf("jetstream: append to %s: %w", l.name, ack.Error)
	}
	if ack.Seq < uint64(len(a.recs)) {
		return 0, false, false, fmt.Errorf("jetstream: append to %s: acknowledged at sequence %d for %d records", l.name, ack.Seq, len(a.recs))
	}
	return ack.Seq, ack.Duplicate, false, nil
}

// locate finds the batch JetStream reported stored: the message after
// floor that carries its message id is its last record.
func (a *appendCall) locate(ctx context.Context) (uint64, int64, error) {
	l := a.l
	from := a.floor
	for {
		var found uint64
		var t int64
		last := from
		_, err := l.directBatch(ctx, from, 1000, 64<<20, func(seq uint64, m *nats.Msg) (bool, error) {
			if seq != last+1 && last != a.floor {
				// Messages went missing on the way (a reconnection):
				// read on from the last one seen in order.
				return false, nil
			}
			last = seq
			if m.Header.Get(hdrMsgID) != a.id {
				return true, nil
			}
			r, err := peek(seq-1, m.Data)
			found, t = seq, r.Time
			return false, err
		})
		if err != nil {
			return 0, 0, err
		}
		if found > 0 {
			if found < uint64(len(a.recs)) {
				return 0, 0, fmt.Errorf("jetstream: append to %s: batch found at sequence %d for %d records", l.name, found, len(a.recs))
			}
			l.e.located.Add(1)
			return found, t, nil
		}
		if last == from {
			// Not there yet: the batch is still on its way to the replicas.
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return 0, 0, l.e.wrap("append to "+l.name, errors.Join(errors.New("batch reported stored but not found"), ctx.Err()))
			}
		}
		from = last
	}
}

// timeAt returns the arrival time of the record at stream sequence seq,
// acknowledged, so present on a replica soon if not yet.
func (l *log) timeAt(ctx context.Context, seq uint64) (int64, error) {
	for {
		page, _, err := l.directGet(ctx, seq-1, 1, 1, nil)
		if err != nil {
			return 0, err
		}
		if len(page) > 0 && page[0].Offset == seq-1 {
			return page[0].Time, nil
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return 0, l.e.wrap("append to "+l.name, errors.Join(fmt.Errorf("acknowledged record %d not found", seq), ctx.Err()))
		}
	}
}

// publish stamps the batch and publishes its records, the last one with
// the message id and asking for JetStream's answer on reply. It holds the
// log's lock so that batches stamped in one order reach the stream in that
// order.
func (l *log) publish(ctx context.Context, recs []engine.Record, reply, id string) (int64, error) {
	sid, aead, c, err := l.sealer(ctx)
	if err != nil {
		return 0, err
	}
	mu := l.e.locks.get(l.name)
	mu.Lock()
	defer mu.Unlock()
	t := l.stamp()
	payload := func(r engine.Record) ([]byte, error) {
		if aead == nil {
			return encodeRecord(t, r), nil
		}
		return l.encryptRecord(t, sid, aead, c, r)
	}
	if len(recs) == 1 {
		data, err := payload(recs[0])
		if err != nil {
			return 0, err
		}
		m := &nats.Msg{Subject: l.n.subject, Reply: reply, Data: data, Header: nats.Header{hdrMsgID: {id}}}
		return t, l.publishErr(l.e.nc.PublishMsg(m))
	}
	// An atomic batch: JetStream stages the messages and stores all of
	// them, or none, when the commit arrives.
	datas := make([][]byte, len(recs))
	for i, r := range recs {
		if datas[i], err = payload(r); err != nil {
			return 0, err
		}
	}
	batch := nuid.Next()
	for i, data := range datas {
		m := &nats.Msg{Subject: l.n.subject, Data: data, Header: nats.Header{}}
		m.Header[hdrBatchID] = []string{batch}
		m.Header[hdrBatchSeq] = []string{strconv.Itoa(i + 1)}
		if i < len(recs)-1 && l.n.body != "" {
			m.Subject = l.n.body
		}
		if i == len(recs)-1 {
			m.Header[hdrBatchCommit] = []string{"1"}
			m.Header[hdrMsgID] = []string{id}
			m.Reply = reply
		}
		if err := l.e.nc.PublishMsg(m); err != nil {
			return 0, l.publishErr(err)
		}
	}
	return t, nil
}

func (l *log) publishErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, nats.ErrMaxPayload) {
		return fmt.Errorf("jetstream: append to %s: %v: %w", l.name, err, engine.ErrTooLarge)
	}
	return l.e.wrap("append to "+l.name, err)
}

// whyNoStream explains a publish nobody received: the log is sealed (its
// stream listens elsewhere) or gone.
func (l *log) whyNoStream(ctx context.Context) error {
	// Between leaders, nobody may answer: that is "not yet" too.
	ictx, cancel := context.WithTimeout(ctx, l.e.opts.ResendAfter)
	defer cancel()
	st, err := l.e.js.Stream(ictx, l.n.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("jetstream: log %q: %w", l.name, engine.ErrLogNotFound)
	}
	if err != nil && ctx.Err() == nil && ictx.Err() != nil {
		return errNotYet
	}
	if err != nil {
		return l.e.wrap("append to "+l.name, err)
	}
	if st.CachedInfo().Config.Metadata[mdSealed] == "true" {
		return fmt.Errorf("jetstream: log %q: %w", l.name, engine.ErrSealed)
	}
	return errNotYet
}

// errNotYet reports a publish nobody received to a log that exists and is
// open.
var errNotYet = errors.New("jetstream: no JetStream server answered")

// directGetRequest is the body of a JetStream direct get.
type directGetRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

func (l *log) Read(ctx context.Context, from uint64, maxRecords, maxBytes int) ([]engine.StoredRecord, error) {
	if err := l.e.check(); err != nil {
		return nil, err
	}
	if maxRecords <= 0 || from == math.MaxUint64 {
		return nil, nil // no record can be at or past the last offset there is
	}
	maxRecords = min(maxRecords, engine.MaxBatchRecords)
	ctx, cancel := l.e.ctx(ctx)
	defer cancel()
	o := &opener{l: l, ctx: ctx}
	out, full, err := l.directRead(ctx, from, maxRecords, maxBytes, o)
	if err != nil {
		return nil, err
	}
	if full || l.e.opts.Replicas == 1 {
		return out, nil
	}
	// Direct gets are answered by any replica, and a follower may not have
	// applied the newest records yet. A short answer is checked against
	// the leader's last record: what the leader had when asked was
	// acknowledged before, and must be read. Records acknowledged later
	// are the next read's.
	last, err := l.leaderLast(ctx)
	if err != nil {
		return nil, err
	}
	bytes := 0
	for _, r := range out {
		bytes += len(r.Key) + len(r.Value)
	}
	next := func() uint64 {
		if len(out) > 0 {
			return out[len(out)-1].Offset + 1
		}
		return from
	}
	add := func(page []engine.StoredRecord) (full, gap bool) {
		for _, r := range page {
			if r.Offset < next() {
				continue
			}
			if len(out) > 0 && r.Offset > next() {
				return false, true // a replica without some records: see directRead
			}
			size := len(r.Key) + len(r.Value)
			if len(out) >= maxRecords || len(out) > 0 && bytes+size > maxBytes {
				return true, false
			}
			bytes += size
			out = append(out, r)
		}
		return len(out) >= maxRecords, false
	}
	// A lagging follower catches up within milliseconds: ask the replicas
	// again a few times before reading the gap from the leader.
	for _, wait := range []time.Duration{0, 2 * time.Millisecond, 10 * time.Millisecond} {
		if next() >= last {
			return out, nil
		}
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, l.e.wrap("read "+l.name, ctx.Err())
			}
		}
		page, _, err := l.directRead(ctx, next(), maxRecords-len(out), max(maxBytes-bytes, 1), o)
		if err != nil {
			return nil, err
		}
		full, gap := add(page)
		if full {
			return out, nil
		}
		if gap {
			break
		}
	}
	// Still short: the gap, and only the gap, from the leader.
	for next() < last {
		r, ok, err := l.leaderGet(ctx, next()+1, o)
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		if full, _ := add([]engine.StoredRecord{r}); full {
			break
		}
	}
	return out, nil
}

// leaderLast returns the Next offset of the log as its stream's leader
// knows it: the sequence of the last message on the log's subject (0 for
// none), from one message get, which only the leader answers.
func (l *log) leaderLast(ctx context.Context) (uint64, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": l.n.subject})
	resp, err := l.e.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+l.n.stream, req)
	if err != nil {
		return 0, l.e.wrap("read "+l.name, err)
	}
	var ans struct {
		Message *storedMsg `json:"message"`
		Error   *apiError  `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ans); err != nil {
		return 0, fmt.Errorf("jetstream: read %s: bad answer %q", l.name, resp.Data)
	}
	if ans.Error != nil {
		switch ans.Error.ErrCode {
		case errCodeNoMessageFound:
			return 0, nil
		case errCodeStreamNotFound:
			return 0, fmt.Errorf("jetstream: log %q: %w", l.name, engine.ErrLogNotFound)
		}
		return 0, fmt.Errorf("jetstream: read %s: %w", l.name, ans.Error)
	}
	return ans.Message.Sequence, nil
}

// directRead reads with batched direct gets. full reports whether it
// stopped at a limit rather than at the end of the answering replica's log.
//
// A replica that is catching up may hold later records without some
// earlier ones, and a direct get steps over what it lacks. So the records
// read are dense from from: a record past the next offset ends the read
// short before it (the caller reads on, from other replicas or the
// leader), except as the very first record, which is past from when from is
// below the log's trim horizon; there the leader is asked whether the
// record at from exists, and gives it if so.
func (l *log) directRead(ctx context.Context, from uint64, maxRecords, maxBytes int, o *opener) (recs []engine.StoredRecord, full bool, err error) {
	bytes := 0
	want := from // the offset the next record must have
	for from < math.MaxUint64 {
		page, pending, err := l.directGet(ctx, from, maxRecords-len(recs), maxBytes-bytes, o)
		if err != nil {
			return nil, false, err
		}
		for _, r := range page {
			if r.Offset > want && l.e.opts.Replicas > 1 {
				if len(recs) > 0 {
					return recs, false, nil
				}
				lr, ok, err := l.leaderGet(ctx, want+1, o)
				if err != nil {
					return nil, false, err
				}
				if ok {
					return []engine.StoredRecord{lr}, false, nil
				}
				// Trimmed: the log starts later.
			}
			want = r.Offset + 1
			size := len(r.Key) + len(r.Value)
			if len(recs) > 0 && bytes+size > maxBytes {
				return recs, true, nil
			}
			bytes += size
			recs = append(recs, r)
			if len(recs) == maxRecords {
				return recs, true, nil
			}
		}
		if len(page) == 0 || pending == 0 {
			return recs, false, nil
		}
		// The replica stopped at its own byte count (which includes
		// subjects and headers) before ours: ask for the rest.
		from = page[len(page)-1].Offset + 1
	}
	return recs, false, nil
}

// directGet asks a replica for up to n records from offset from, and about
// maxBytes of keys and values. pending is how many more the replica holds.
func (l *log) directGet(ctx context.Context, from uint64, n, maxBytes int, o *opener) (recs []engine.StoredRecord, pending uint64, err error) {
	// The replica counts subjects and headers too: leave room for them.
	serverBytes := min(max(maxBytes, 1)+n*(len(l.n.subject)+256), 64<<20)
	pending, err = l.directBatch(ctx, from, n, serverBytes, func(seq uint64, m *nats.Msg) (bool, error) {
		var r engine.StoredRecord
		var err error
		if o == nil {
			r, err = peek(seq-1, m.Data)
		} else {
			r, err = o.decode(seq-1, m.Data)
		}
		recs = append(recs, r)
		return true, err
	})
	if err != nil {
		return nil, 0, err
	}
	return recs, pending, nil
}

// directBatch asks a replica for up to n messages after stream sequence
// after, and at most maxBytes of them as the replica counts (subjects and
// headers included), and gives each to fn until fn says stop. pending is
// how many more the replica holds past the batch.
func (l *log) directBatch(ctx context.Context, after uint64, n, maxBytes int, fn func(seq uint64, m *nats.Msg) (more bool, err error)) (pending uint64, err error) {
	for attempt := 1; ; attempt++ {
		pending, answered, err := l.directBatchOnce(ctx, after, n, maxBytes, fn)
		if answered || err != nil {
			return pending, err
		}
		// Nobody answered: the log is gone, or its replicas (of a stream
		// just made, or between leaders) do not take direct gets yet.
		if err := l.noReplica(ctx); err != nil {
			return 0, err
		}
		select {
		case <-time.After(time.Duration(min(attempt, 10)) * 10 * time.Millisecond):
		case <-ctx.Done():
			return 0, l.e.wrap("read "+l.name, errors.Join(errors.New("no replica answered the read"), ctx.Err()))
		}
	}
}

// directBatchOnce is one request of directBatch; answered is false if no
// replica answered it.
func (l *log) directBatchOnce(ctx context.Context, after uint64, n, maxBytes int, fn func(seq uint64, m *nats.Msg) (bool, error)) (pending uint64, answered bool, err error) {
	inbox := l.e.nc.NewRespInbox()
	sub, err := l.e.nc.SubscribeSync(inbox)
	if err != nil {
		return 0, false, l.e.wrap("read "+l.name, err)
	}
	defer sub.Unsubscribe()
	req, _ := json.Marshal(directGetRequest{Seq: after + 1, Batch: n, MaxBytes: maxBytes})
	if err := l.e.nc.PublishRequest("$JS.API.DIRECT.GET."+l.n.stream, inbox, req); err != nil {
		return 0, false, l.e.wrap("read "+l.name, err)
	}
	got := false // some message came: the request is not to be sent again
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if errors.Is(err, nats.ErrNoResponders) {
			return 0, got, nil
		}
		if err != nil {
			return 0, false, l.e.wrap("read "+l.name, err)
		}
		switch m.Header.Get("Status") {
		case "":
			got = true
		case "204": // end of the batch
			pending, _ = strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			return pending, true, nil
		case "404": // nothing at or after from
			return 0, true, nil
		case "503":
			// Cut off after some messages: they stand, and the caller
			// asks again for the rest.
			return 0, got, nil
		default:
			return 0, false, l.e.wrap("read "+l.name, fmt.Errorf("status %s %s", m.Header.Get("Status"), m.Header.Get("Description")))
		}
		seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64)
		if err != nil || seq == 0 {
			return 0, false, fmt.Errorf("jetstream: read %s: message without a sequence", l.name)
		}
		more, err := fn(seq, m)
		if err != nil {
			return 0, false, err
		}
		if !more {
			return 0, true, nil
		}
	}
}

// noReplica explains a read nobody answered: the log is gone, or the
// context ended; nil if the log's stream exists.
func (l *log) noReplica(ctx context.Context) error {
	_, err := l.e.js.Stream(ctx, l.n.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return fmt.Errorf("jetstream: log %q: %w", l.name, engine.ErrLogNotFound)
	}
	if ctx.Err() != nil {
		return l.e.wrap("read "+l.name, errors.Join(errors.New("no replica answered the read"), ctx.Err()))
	}
	return nil
}

// storedMsg is a message as JetStream's message get answers it.
type storedMsg struct {
	Sequence uint64 `json:"seq"`
	Data     string `json:"data"`
}

// leaderGet reads the record at stream sequence seq from the stream's
// leader. ok is false when there is none.
func (l *log) leaderGet(ctx context.Context, seq uint64, o *opener) (engine.StoredRecord, bool, error) {
	req, _ := json.Marshal(map[string]uint64{"seq": seq})
	resp, err := l.e.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+l.n.stream, req)
	if err != nil {
		return engine.StoredRecord{}, false, l.e.wrap("read "+l.name, err)
	}
	var ans struct {
		Message *storedMsg `json:"message"`
		Error   *apiError  `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ans); err != nil {
		return engine.StoredRecord{}, false, fmt.Errorf("jetstream: read %s: bad answer %q", l.name, resp.Data)
	}
	if ans.Error != nil {
		switch ans.Error.ErrCode {
		case errCodeNoMessageFound:
			return engine.StoredRecord{}, false, nil
		case errCodeStreamNotFound:
			return engine.StoredRecord{}, false, fmt.Errorf("jetstream: log %q: %w", l.name, engine.ErrLogNotFound)
		}
		return engine.StoredRecord{}, false, fmt.Errorf("jetstream: read %s: %w", l.name, ans.Error)
	}
	data, err := base64.StdEncoding.DecodeString(ans.Message.Data)
	if err != nil {
		return engine.StoredRecord{}, false, fmt.Errorf("jetstream: read %s: %v", l.name, err)
	}
	var r engine.StoredRecord
	if o == nil {
		r, err = peek(ans.Message.Sequence-1, data)
	} else {
		r, err = o.decode(ans.Message.Sequence-1, data)
	}
	return r, err == nil, err
}

// state is what the stream's leader says of the log.
type state struct {
	first, next uint64 // offsets
	msgs        uint64
	sealed      bool
	retention   time.Duration
	cfg         jetstream.StreamConfig
}

func (l *log) state(ctx context.Context) (state, error) {
	st, err := l.e.js.Stream(ctx, l.n.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return state{}, fmt.Errorf("jetstream: log %q: %w", l.name, engine.ErrLogNotFound)
	}
	if err != nil {
		return state{}, l.e.wrap("info of "+l.name, err)
	}
	info := st.CachedInfo()
	s := state{next: info.State.LastSeq, msgs: info.State.Msgs, cfg: info.Config}
	s.first = s.next
	if s.msgs > 0 {
		s.first = info.State.FirstSeq - 1
	}
	s.sealed = info.Config.Metadata[mdSealed] == "true"
	if ns, err := strconv.ParseInt(info.Config.Metadata[mdRetention], 10, 64); err == nil {
		s.retention = time.Duration(ns)
	}
	return s, nil
}

func (l *log) Info(ctx context.Context) (engine.LogInfo, error) {
	if err := l.e.check(); err != nil {
		return engine.LogInfo{}, err
	}
	ctx, cancel := l.e.ctx(ctx)
	defer cancel()
	s, err := l.state(ctx)
	if err != nil {
		return engine.LogInfo{}, err
	}
	info := engine.LogInfo{Name: l.name, First: s.first, Next: s.next, Sealed: s.sealed, Retention: s.retention}
	if s.first < s.next {
		if r, ok, err := l.leaderGet(ctx, s.first+1, nil); err != nil {
			return engine.LogInfo{}, err
		} else if ok {
			info.FirstTime = r.Time
		}
		if r, ok, err := l.leaderGet(ctx, s.next, nil); err != nil {
			return engine.LogInfo{}, err
		} else if ok {
			info.LastTime = r.Time
		}
	}
	return info, nil
}

func (l *log) OffsetAt(ctx context.Context, t int64) (uint64, error) {
	if err := l.e.check(); err != nil {
		return 0, err
	}
	ctx, cancel := l.e.ctx(ctx)
	defer cancel()
	s, err := l.state(ctx)
	if err != nil {
		return 0, err
	}
	return l.offsetAt(ctx, s, t)
}

// offsetAt searches [s.first, s.next) for the first record at or after t.
// Times never decrease along a log, so a binary search over the leader's
// records finds it.
func (l *log) offsetAt(ctx context.Context, s state, t int64) (uint64, error) {
	lo, hi := s.first, s.next
	for lo < hi {
		mid := lo + (hi-lo)/2
		r, ok, err := l.leaderGet(ctx, mid+1, nil)
		if err != nil {
			return 0, err
		}
		if !ok { // trimmed meanwhile: everything below is gone
			lo = mid + 1
			continue
		}
		if r.Time >= t {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

func (l *log) Seal(ctx context.Context) error {
	if err := l.e.check(); err != nil {
		return err
	}
	ctx, cancel := l.e.ctx(ctx)
	defer cancel()
	s, err := l.state(ctx)
	if err != nil {
		return err
	}
	if !s.sealed {
		cfg := l.e.streamConfig(l.name, l.n, s.retention, true)
		if _, err := l.e.js.UpdateStream(ctx, cfg); err != nil {
			return l.e.wrap("seal "+l.name, err)
		}
	}
	// Wake the waiters of every gateway: a sealed log has no more records.
	_ = l.e.nc.PublishMsg(&nats.Msg{Subject: l.n.notify, Header: nats.Header{hdrEvent: []string{"sealed"}}})
	return nil
}

func (l *log) SetRetention(ctx context.Context, d time.Duration) error {
	if err := l.e.check(); err != nil {
		return err
	}
	if d < 0 {
		return fmt.Errorf("jetstream: negative retention %v", d)
	}
	ctx, cancel := l.e.ctx(ctx)
	defer cancel()
	s, err := l.state(ctx)
	if err != nil {
		return err
	}
	cfg := l.e.streamConfig(l.name, l.n, d, s.sealed)
	if _, err := l.e.js.UpdateStream(ctx, cfg); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("jetstream: log %q: %w", l.name, engine.ErrLogNotFound)
		}
		return l.e.wrap("set retention of "+l.name, err)
	}
	return nil
}

func (l *log) Trim(ctx context.Context, before int64) error {
	if err := l.e.check(); err != nil {
		return err
	}
	ctx, cancel := l.e.ctx(ctx)
	defer cancel()
	s, err := l.state(ctx)
	if err != nil {
		return err
	}
	cut, err := l.offsetAt(ctx, s, before)
	if err != nil {
		return err
	}
	if cut <= s.first {
		return nil
	}
	st, err := l.e.js.Stream(ctx, l.n.stream)
	if err != nil {
		return l.e.wrap("trim "+l.name, err)
	}
	// Purge removes the messages below the sequence given: offsets below cut.
	if err := st.Purge(ctx, jetstream.WithPurgeSequence(cut+1)); err != nil {
		return l.e.wrap("trim "+l.name, err)
	}
	return nil
}

func (l *log) Wait(ctx context.Context, next uint64) (uint64, error) {
	if err := l.e.check(); err != nil {
		return 0, err
	}
	w, err := l.e.acquire(ctx, l)
	if err != nil {
		return 0, err
	}
	defer l.e.release(w)
	probe := true // look at the log itself, not only at the notices
	timer := time.NewTimer(w.firstBackstop())
	defer timer.Stop()
	for {
		// Take the wake-up channel before looking, so that an event after
		// the look wakes us.
		wake, seen, ev := w.snapshot()
		switch {
		case ev == evDeleted:
			return 0, fmt.Errorf("jetstream: log %q deleted: %w", l.name, engine.ErrClosed)
		case seen > next:
			// A notice names one record; the replicas know the whole
			// batch it came with.
			if page, pending, err := l.directGet(ctx, next, 1, 1, nil); err == nil && len(page) > 0 {
				seen = max(seen, page[0].Offset+1+pending)
			}
			return seen, nil
		case ev == evSealed:
			return seen, nil
		case ev == evCheck:
			// The stream's configuration changed (sealed, maybe): ask the
			// leader.
			if err := w.refresh(ctx, l); err != nil {
				return 0, err
			}
			continue
		}
		if probe {
			probe = false
			page, pending, err := l.directGet(ctx, next, 1, 1, nil)
			if err != nil {
				return 0, err
			}
			if len(page) > 0 {
				n := page[0].Offset + 1 + pending
				w.saw(n)
				return n, nil
			}
		}
		select {
		case <-wake:
		case <-timer.C:
			// A notice can be missed (interest reaches the stream's leader
			// through the cluster's routes a little after a subscription
			// starts, and a gateway can die between sealing a log and
			// announcing it): look again now and then even without one.
			if err := w.refresh(ctx, l); err != nil {
				return 0, err
			}
			probe = true
			timer.Reset(backstop)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-l.e.done:
			return 0, fmt.Errorf("jetstream: %w", engine.ErrClosed)
		}
	}
}

// Next returns the log's Next offset as a replica knows it (see
// engine.NextReader): the sequence of the last message on the log's
// subject, from one direct get, or the leader's state for an empty log.
func (l *log) Next(ctx context.Context) (uint64, error) {
	if err := l.e.check(); err != nil {
		return 0, err
	}
	ctx, cancel := l.e.ctx(ctx)
	defer cancel()
	req, _ := json.Marshal(map[string]string{"last_by_subj": l.n.subject})
	resp, err := l.e.nc.RequestWithContext(ctx, "$JS.API.DIRECT.GET."+l.n.stream, req)
	if errors.Is(err, nats.ErrNoResponders) {
		// No replica takes direct gets yet: ask the leader below.
		if err := l.noReplica(ctx); err != nil {
			return 0, err
		}
	} else if err != nil {
		return 0, l.e.wrap("next of "+l.name, err)
	}
	if err == nil && resp.Header.Get("Status") == "" {
		if seq, err := strconv.ParseUint(resp.Header.Get(hdrSequence), 10, 64); err == nil {
			return seq, nil
		}
	}
	s, err := l.state(ctx)
	return s.next, err
}

// backstop is how long Wait trusts notices alone before it asks the leader.
const backstop = 5 * time.Second
