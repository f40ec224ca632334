package streams

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/metrics"
)

// Record keys in the engine: one flag byte, then the partition key's bytes.
const (
	keyFlagKMS byte = 1 << 0 // written while the stream was KMS-encrypted
)

// Limits of the data plane.
const (
	maxPutRecords        = 500
	maxPutRecordsBytes   = 10 << 20
	maxGetRecords        = 10000
	maxGetRecordsBytes   = 10 << 20
	iteratorLife         = 300_000 // ms
	maxPartitionKeyChars = 256
)

var (
	encKMS  = "KMS"
	encNone = "NONE"
)

const errInternal = "Internal service failure."

func checkPartitionKey(pk *string, member string) error {
	if pk == nil {
		return errNull(member)
	}
	n := utf8.RuneCountInString(*pk)
	if n < 1 {
		return errorf(CodeValidation, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length greater than or equal to 1", *pk, member)
	}
	if n > maxPartitionKeyChars {
		return errorf(CodeValidation, "1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to 256", *pk, member)
	}
	return nil
}

// validPartitionKey reports whether checkPartitionKey accepts pk: 1 to 256
// characters. A key of 1 to 256 bytes always is.
func validPartitionKey(pk string) bool {
	if n := len(pk); n >= 1 && n <= maxPartitionKeyChars {
		return true
	}
	n := utf8.RuneCountInString(pk)
	return n >= 1 && n <= maxPartitionKeyChars
}

func errExplicitHashKey(v string) *Error {
	return errorf(CodeInvalidArgument, "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", v)
}

// recordHash returns the hash key a record routes by.
func recordHash(pk string, explicit *string) (hashKey, error) {
	if explicit != nil {
		h, ok := parseHashKey(*explicit)
		if !ok {
			return hashKey{}, errExplicitHashKey(*explicit)
		}
		return h, nil
	}
	return partitionHash(pk), nil
}

// checkRecordSize enforces the stream's maximum record size. A data blob
// above it alone gets the model's length message (what Kinesis answered when
// 1 MiB was the model's limit); data plus partition key above it gets
// runnel's wording of the documented rule.
func (s *Service) checkRecordSize(name, member string, data, pk int, maxKiB int32) error {
	maxBytes := int(maxKiB) << 10
	if data > maxBytes {
		return errorf(CodeValidation, "1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", member, maxBytes)
	}
	if data+pk > maxBytes {
		return errorf(CodeValidation, "1 validation error detected: Record size %d bytes (data plus partition key) at '%s' exceeds the maximum record size of %d KiB of stream %s under account %s.", data+pk, member, maxKiB, name, s.opts.AccountID)
	}
	return nil
}

// appenders runs the appends of a PutRecords call to its shards but the
// first on goroutines kept between calls. A goroutine started for each
// would grow its stack anew every time: an append commits its round on its
// own goroutine, down to the disk's system calls. Idle ones wait for work
// until the service stops; at most maxAppenders are kept.
type appenders struct {
	work chan func() // unbuffered: a send succeeds only to an idle one
	n    atomic.Int32
}

const maxAppenders = 256

// run runs f on an idle appender, a new one, or (beyond maxAppenders) a
// goroutine of its own.
func (a *appenders) run(stop <-chan struct{}, f func()) {
	select {
	case a.work <- f:
		return
	default:
	}
	if a.n.Add(1) > maxAppenders {
		a.n.Add(-1)
		go f()
		return
	}
	go func() {
		defer a.n.Add(-1)
		for {
			f()
			select {
			case f = <-a.work:
			case <-stop:
				return
			}
		}
	}()
}

// slowAppend is how long an append may take before it is logged.
const slowAppend = time.Second

// appendLog appends to a shard's log, mapping engine failures, and returns
// the bytes appended (data plus partition keys). It returns errShardClosed
// if resharding closed the shard since the records were routed.
func (s *Service) appendLog(ctx context.Context, sh *shard, recs []engine.Record) (engine.AppendResult, int, error) {
	if len(sh.parents) > 0 && !sh.parentsSealed.Load() {
		if err := s.sealParents(ctx, sh); err != nil {
			return engine.AppendResult{}, 0, err
		}
	}
	sh.gate.RLock()
	defer sh.gate.RUnlock()
	if sh.closed.Load() {
		return engine.AppendResult{}, 0, errShardClosed
	}
	l, err := sh.handle(ctx, s.eng)
	if err != nil {
		return engine.AppendResult{}, 0, err
	}
	start := time.Now()
	res, err := l.Append(ctx, recs)
	if d := time.Since(start); d >= slowAppend {
		// Operators see where a stall of the writes came from: a shard's
		// log (a leader election in a cluster, a slow disk) or not.
		s.logger().Warn("slow append", "stream_log", sh.logName, "shard", sh.id, "records", len(recs), "took", d.Round(time.Millisecond), "error", err)
	}
	if errors.Is(err, engine.ErrSealed) {
		return res, 0, errShardClosed
	}
	n := 0
	if err == nil {
		for i := range recs {
			n += len(recs[i].Key) - 1 + len(recs[i].Value)
		}
		sh.countWrite(len(recs), n)
		if s.appendFails.pending.Load() {
			s.flushAppendFailures()
		}
	}
	return res, n, err
}

// PutRecord writes one record to the shard its hash key falls in.
func (s *Service) PutRecord(ctx context.Context, in *PutRecordInput) (*PutRecordOutput, error) {
	if in == nil {
		in = &PutRecordInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if in.PartitionKey != nil {
		if err := checkPartitionKey(in.PartitionKey, "partitionKey"); err != nil {
			return nil, err
		}
	}
	st, status, err := s.live(ctx, name)
	if err != nil {
		return nil, err
	}
	if st.metrics != nil {
		metrics.CallFrom(ctx).SetStream(st.metrics)
	}
	if err := s.writable(name, status); err != nil {
		return nil, err
	}
	m := st.meta
	if in.PartitionKey == nil && !m.autoDistributed() {
		return nil, errNull("partitionKey") // AUTO streams take records without one (account.go)
	}
	pk := st.partitionKey(in.PartitionKey)
	size := len(in.Data) + len(pk)
	if err := s.checkRecordSize(name, "data", len(in.Data), len(pk), m.MaxRecordKiB); err != nil {
		return nil, err
	}
	h, err := st.hashFor(pk, in.ExplicitHashKey)
	if err != nil {
		return nil, err
	}
	if in.SequenceNumberForOrdering != nil {
		sn, ok := parseSeqNum(*in.SequenceNumberForOrdering)
		if !ok || int64(sn.arrival) > s.nowMs()/1000+1 {
			return nil, errorf(CodeInvalidArgument, "ExclusiveMinimumSequenceNumber %s used in PutRecord on stream %s under account %s is invalid.", *in.SequenceNumberForOrdering, name, s.opts.AccountID)
		}
		// Numbers grow per shard with every append, so any record appended
		// now is above every number already issued for its shard.
	}
	sh := st.route(h)
	if sh == nil {
		return nil, errors.New("streams: no open shard covers the hash key")
	}
	if !sh.limits.admitWrite(size, s.nowMs()) {
		st.metrics.WriteThrottled(sh.metrics, 1)
		return nil, s.errThrottled(sh, name)
	}
	flags := byte(0)
	enc := &encNone
	if m.Encryption != "" {
		flags |= keyFlagKMS
		enc = &encKMS
		if err := s.checkKMS(m); err != nil {
			return nil, err
		}
	}
	key := make([]byte, 1+len(pk))
	key[0] = flags
	copy(key[1:], pk)
	res, _, err := s.appendLog(withSealKey(ctx, m.DataKey), sh, []engine.Record{{Key: key, Value: in.Data}})
	if errors.Is(err, errShardClosed) && canReroute(ctx) {
		return s.putRecordAgain(ctx, in)
	}
	if err != nil {
		if errors.Is(err, engine.ErrLogNotFound) || errors.Is(err, engine.ErrClosed) {
			return nil, s.errStreamNotFound(name)
		}
		if e, ok := kmsError(err); ok {
			return nil, e
		}
		s.noteAppendFailure(name, 1, err)
		return nil, err
	}
	st.metrics.PutRecord(sh.metrics, size)
	et := *enc
	return &PutRecordOutput{
		ShardId:        sh.id,
		SequenceNumber: seqNum{created: sh.created, shard: uint32(sh.index), offset: res.FirstOffset, arrival: uint64(res.Time / 1000), record: true}.String(),
		EncryptionType: &et,
	}, nil
}

// putGroup is the records of one PutRecords request bound for one shard.
type putGroup struct {
	sh    *shard
	first int // position of the group's first record in the sorted order
	n     int
	bytes int // appended: data plus partition keys
	res   engine.AppendResult
	err   error
}

// PutRecords writes up to 500 records. Each record succeeds or fails on its
// own; the response lists the outcomes in request order. The records bound
// for one shard are appended as one batch in request order; batches for
// different shards are appended concurrently.
func (s *Service) PutRecords(ctx context.Context, in *PutRecordsInput) (*PutRecordsOutput, error) {
	return s.putRecords(ctx, in, true)
}

// putRecords is PutRecords; request is false when it retries records of a
// request whose shards resharding closed (rerouteClosed), so that the
// request is counted once in the metrics.
func (s *Service) putRecords(ctx context.Context, in *PutRecordsInput, request bool) (*PutRecordsOutput, error) {
	if in == nil {
		in = &PutRecordsInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	n := len(in.Records)
	if in.Records == nil {
		return nil, errNull("records")
	}
	if n < 1 {
		return nil, errorf(CodeValidation, "1 validation error detected: Value '[]' at 'records' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if n > maxPutRecords {
		return nil, errorf(CodeValidation, "1 validation error detected: Value '[...]' at 'records' failed to satisfy constraint: Member must have length less than or equal to %d", maxPutRecords)
	}
	st, status, err := s.live(ctx, name)
	if err != nil {
		return nil, err
	}
	if st.metrics != nil && request {
		metrics.CallFrom(ctx).SetStream(st.metrics)
	}
	if err := s.writable(name, status); err != nil {
		return nil, err
	}
	m := st.meta

	// Validate and route every record first: any invalid record fails the
	// whole request, as in Kinesis.
	shardOf := make([]*shard, n)
	total, keyBytes := 0, 0
	for i := range in.Records {
		r := &in.Records[i]
		// The member names are built only for an error message.
		if r.PartitionKey == nil && m.autoDistributed() {
			r.PartitionKey = &noPartitionKey // AUTO streams take records without one (account.go)
		} else if r.PartitionKey == nil || !validPartitionKey(*r.PartitionKey) {
			return nil, checkPartitionKey(r.PartitionKey, "records."+itoa(i+1)+".member.partitionKey")
		}
		pk := *r.PartitionKey
		if len(r.Data)+len(pk) > int(m.MaxRecordKiB)<<10 {
			return nil, s.checkRecordSize(name, "records."+itoa(i+1)+".member.data", len(r.Data), len(pk), m.MaxRecordKiB)
		}
		total += len(r.Data) + len(pk)
		keyBytes += 1 + len(pk)
		h, err := st.hashFor(pk, r.ExplicitHashKey)
		if err != nil {
			return nil, err
		}
		if shardOf[i] = st.route(h); shardOf[i] == nil {
			return nil, errors.New("streams: no open shard covers the hash key")
		}
	}
	if total > maxPutRecordsBytes {
		return nil, errorf(CodeInvalidArgument, "Records size %d bytes (data plus partition keys) exceeds the PutRecords limit of %d bytes.", total, maxPutRecordsBytes)
	}

	out := &PutRecordsOutput{Records: make([]PutRecordsResultEntry, n)}
	flags := byte(0)
	enc := encNone
	if m.Encryption != "" {
		flags |= keyFlagKMS
		enc = encKMS
		if err := s.checkKMS(m); err != nil {
			return nil, err
		}
	}
	out.EncryptionType = &enc
	ctx = withSealKey(ctx, m.DataKey)

	// Throughput admission, in request order; rejected records are marked
	// and left out of the batches.
	throttled := 0
	if s.opts.EnforceThroughput {
		now := s.nowMs()
		for i := range in.Records {
			r := &in.Records[i]
			if !shardOf[i].limits.admitWrite(len(r.Data)+len(*r.PartitionKey), now) {
				st.metrics.WriteThrottled(shardOf[i].metrics, 1)
				throttled++
				e := s.errThrottled(shardOf[i], name)
				out.Records[i].ErrorCode, out.Records[i].ErrorMessage = ptr(string(e.Code)), &e.Message
				out.FailedRecordCount++
				shardOf[i] = nil
			}
		}
	}

	// Group by shard (counting sort, stable: request order within a shard).
	var groups []putGroup
	groupOf := make([]int32, n)
	var index map[*shard]int32
	for i, sh := range shardOf {
		if sh == nil {
			groupOf[i] = -1
			continue
		}
		g := int32(-1)
		if index != nil {
			if x, ok := index[sh]; ok {
				g = x
			}
		} else {
			for j := range groups {
				if groups[j].sh == sh {
					g = int32(j)
					break
				}
			}
		}
		if g < 0 {
			g = int32(len(groups))
			groups = append(groups, putGroup{sh: sh})
			if index == nil && len(groups) > 16 {
				index = make(map[*shard]int32, 64)
				for j := range groups {
					index[groups[j].sh] = int32(j)
				}
			} else if index != nil {
				index[sh] = g
			}
		}
		groupOf[i] = g
		groups[g].n++
	}
	pos := 0
	for j := range groups {
		groups[j].first = pos
		pos += groups[j].n
	}
	recs := make([]engine.Record, pos)
	slot := make([]int32, n) // record i's position within its group
	fill := make([]int, len(groups))
	keys := make([]byte, 0, keyBytes)
	for i := range in.Records {
		g := groupOf[i]
		if g < 0 {
			continue
		}
		r := &in.Records[i]
		k := len(keys)
		keys = append(keys, flags)
		keys = append(keys, *r.PartitionKey...)
		slot[i] = int32(fill[g])
		recs[groups[g].first+fill[g]] = engine.Record{Key: keys[k:len(keys):len(keys)], Value: r.Data}
		fill[g]++
	}

	// Append: one batch per shard, concurrently when there are several.
	appendGroup := func(g *putGroup) {
		g.res, g.bytes, g.err = s.appendLog(ctx, g.sh, recs[g.first:g.first+g.n])
	}
	if len(groups) == 1 {
		appendGroup(&groups[0])
	} else if len(groups) > 1 {
		var wg sync.WaitGroup
		for j := 1; j < len(groups); j++ {
			wg.Add(1)
			g := &groups[j]
			s.appenders.run(s.stop, func() {
				defer wg.Done()
				appendGroup(g)
			})
		}
		appendGroup(&groups[0])
		wg.Wait()
	}
	if st.metrics != nil {
		for j := range groups {
			if g := &groups[j]; g.err == nil {
				st.metrics.PutRecordsShard(g.sh.metrics, g.n, g.bytes)
			}
		}
	}
	rerouted := s.rerouteClosed(ctx, in, out, groups, groupOf)

	// Outcomes in request order.
	seqs := make([]string, n)
	seqBuf := make([]byte, 0, seqNumDigits*pos)
	internal := string(CodeInternalFailure)
	failed, failedErr := 0, error(nil)
	// Where in seqBuf each group's last number is, and for which slot: a
	// group's records follow each other in request order, so each number
	// but the first is its group's previous one plus one.
	lastSeq := make([]struct{ at, slot int32 }, len(groups))
	for i := range in.Records {
		g := groupOf[i]
		if g < 0 {
			continue
		}
		grp := &groups[g]
		e := &out.Records[i]
		if grp.err != nil {
			msg := errInternal
			e.ErrorCode, e.ErrorMessage = &internal, &msg
			out.FailedRecordCount++
			failed++
			failedErr = grp.err
			continue
		}
		sh := grp.sh
		k := len(seqBuf)
		if last := &lastSeq[g]; last.slot > 0 && slot[i] == last.slot {
			seqBuf = appendNextSeq(seqBuf, seqBuf[last.at:last.at+seqNumDigits])
		} else {
			seqBuf = seqNum{created: sh.created, shard: uint32(sh.index), offset: grp.res.FirstOffset + uint64(slot[i]), arrival: uint64(grp.res.Time / 1000), record: true}.appendTo(seqBuf)
		}
		lastSeq[g] = struct{ at, slot int32 }{int32(k), slot[i] + 1}
		seqs[i] = unsafeString(seqBuf[k:])
		e.SequenceNumber = &seqs[i]
		e.ShardId = &sh.id
	}
	if failed > 0 {
		s.noteAppendFailure(name, failed, failedErr)
	}
	if request && st.metrics != nil {
		// Rerouted records' outcomes came from the retry.
		for _, i := range rerouted {
			if e := out.Records[i].ErrorCode; e != nil && *e == string(CodeProvisionedThroughputExceeded) {
				throttled++
			}
		}
		st.metrics.PutRecords(n, int(out.FailedRecordCount)-throttled, throttled)
	}
	return out, nil
}

func itoa(i int) string {
	var b [20]byte
	p := len(b)
	for {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[p:])
		}
	}
}

// GetShardIterator returns an iterator to a position in a shard.
func (s *Service) GetShardIterator(ctx context.Context, in *GetShardIteratorInput) (*GetShardIteratorOutput, error) {
	if in == nil {
		in = &GetShardIteratorInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if in.ShardId == nil {
		return nil, errNull("shardId")
	}
	if in.ShardIteratorType == nil {
		return nil, errNull("shardIteratorType")
	}
	typ := *in.ShardIteratorType
	switch typ {
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP":
	default:
		return nil, errorf(CodeValidation, "1 validation error detected: Value '%s' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, AT_SEQUENCE_NUMBER, AT_TIMESTAMP, TRIM_HORIZON, LATEST]", typ)
	}
	idx, ok := parseShardIndex(*in.ShardId)
	if !ok {
		return nil, errorf(CodeResourceNotFound, "Could not find shard %s in stream %s under account %s.", *in.ShardId, name, s.opts.AccountID)
	}
	sid := shardID(idx)
	st, status, err := s.live(ctx, name)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == CodeResourceNotFound {
			return nil, s.errShardNotFound(sid, name)
		}
		return nil, err
	}
	if status != statusActive && status != statusUpdating {
		// A stream not yet (or no longer) ACTIVE has no shards to name,
		// as for a stream that does not exist.
		return nil, s.errShardNotFound(sid, name)
	}
	now := s.nowMs()
	if idx >= len(st.shards) || !st.meta.shardVisible(idx, now) {
		return nil, s.errShardNotFound(sid, name)
	}
	mustSpecify := "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified %s and %s StartingSequenceNumber."
	var seq string
	var ts int64
	switch typ {
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if in.StartingSequenceNumber == nil {
			return nil, errorf(CodeInvalidArgument, mustSpecify, typ, "no")
		}
		seq = *in.StartingSequenceNumber
	case "TRIM_HORIZON", "LATEST":
		if in.StartingSequenceNumber != nil {
			return nil, errorf(CodeInvalidArgument, mustSpecify, typ, "also a")
		}
	case "AT_TIMESTAMP":
		if in.Timestamp == nil {
			return nil, errorf(CodeInvalidArgument, "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.")
		}
		ts = in.Timestamp.Millis()
	}
	offset, err := s.positionOffset(ctx, "GetShardIterator", name, st, idx, typ, seq, ts, now)
	if err != nil {
		return nil, err
	}
	it := s.tokens.encodeIterator(iterator{issued: now, stream: name, streamID: st.meta.ID, shard: uint32(idx), offset: offset})
	return &GetShardIteratorOutput{ShardIterator: &it}, nil
}

// mapLogErr turns the engine's "log gone" errors into the shard's
// ResourceNotFoundException.
func (s *Service) mapLogErr(err error, sid, name string) error {
	if errors.Is(err, engine.ErrLogNotFound) || errors.Is(err, engine.ErrClosed) {
		return s.errShardNotFound(sid, name)
	}
	if e, ok := kmsError(err); ok {
		return e
	}
	return err
}

// GetRecords reads from the position a shard iterator names.
func (s *Service) GetRecords(ctx context.Context, in *GetRecordsInput) (*GetRecordsOutput, error) {
	if in == nil {
		in = &GetRecordsInput{}
	}
	if in.ShardIterator == nil {
		return nil, errNull("shardIterator")
	}
	limit := maxGetRecords
	if in.Limit != nil {
		if *in.Limit < 1 {
			return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.Limit)
		}
		if *in.Limit > maxGetRecords {
			return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value less than or equal to %d", *in.Limit, maxGetRecords)
		}
		limit = int(*in.Limit)
	}
	it, ok := s.tokens.decodeIterator(*in.ShardIterator)
	now := s.nowMs()
	if !ok || it.issued <= 0 || it.issued > now+iteratorLife || !validStreamName(it.stream) || it.shard > 1<<31-1 {
		return nil, errorf(CodeInvalidArgument, "Invalid ShardIterator.")
	}
	if now-it.issued > iteratorLife {
		return nil, errorf(CodeExpiredIterator, "Iterator expired. The iterator was created at time %s while right now it is %s which is further in the future than the tolerated delay of %d milliseconds.", amzTime(it.issued), amzTime(now), iteratorLife)
	}
	name := it.stream
	if in.StreamARN != nil {
		arnName, err := s.streamFromARN(*in.StreamARN)
		if err != nil {
			return nil, err
		}
		if arnName != name {
			return nil, errorf(CodeInvalidArgument, "Invalid ShardIterator.")
		}
	}
	idx := int(it.shard)
	sid := shardID(idx)
	st, status, err := s.live(ctx, name)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == CodeResourceNotFound {
			return nil, s.errShardNotFound(sid, name)
		}
		return nil, err
	}
	if st.meta.ID != it.streamID || idx >= len(st.shards) {
		return nil, s.errShardNotFound(sid, name)
	}
	if st.metrics != nil {
		metrics.CallFrom(ctx).SetStream(st.metrics)
	}
	if err := s.writable(name, status); err != nil {
		return nil, err
	}
	sh, sm := st.shards[idx], st.meta.Shards[idx]
	if !sh.limits.admitRead(now) {
		st.metrics.ReadThrottled(sh.metrics)
		return nil, s.errThrottled(sh, name)
	}
	l, err := sh.handle(ctx, s.eng)
	if err != nil {
		return nil, s.mapLogErr(err, sid, name)
	}
	var end uint64 // of a closed shard, known before reading its last records
	if sm.Closed != 0 {
		if end, err = s.sealedEnd(ctx, st, idx); err != nil {
			return nil, s.mapLogErr(err, sid, name)
		}
	}
	stored, release, err := engine.ReadLent(ctx, l, it.offset, limit, maxGetRecordsBytes)
	if err != nil {
		return nil, s.mapLogErr(err, sid, name)
	}
	out := &GetRecordsOutput{}
	var bytes int
	ab := getAnswerBufs()
	out.Records, bytes = ab.toRecords(sh, stored)
	out.release = func() {
		release()
		putAnswerBufs(ab)
	}
	// Records lost to damage on disk are skipped as expired ones are: the
	// offsets of the records returned may jump, and the next iterator
	// follows the last of them.
	next := it.offset
	if n := len(stored); n > 0 {
		next = stored[n-1].Offset + 1
	} else if sm.Closed != 0 && next < end {
		// Nothing readable is left before the end of a closed shard (its log
		// is sealed): what remains was lost. The shard is drained.
		next = end
	}
	sh.limits.chargeRead(bytes)
	if st.metrics != nil {
		var age int64
		if n := len(stored); n > 0 {
			age = max(0, now-stored[n-1].Time)
		}
		// The metrics count data and partition keys, not the keys' flag bytes.
		st.metrics.GetRecords(sh.metrics, len(stored), max(0, bytes-len(stored)), age)
	}

	if sm.Closed != 0 && next >= end {
		// The closed shard is drained: no next iterator, the children instead.
		out.ChildShards = s.childShards(st, idx)
		return out, nil
	}
	if len(stored) > 0 {
		tail, err := engine.Next(ctx, l)
		if err != nil {
			out.Release()
			return nil, s.mapLogErr(err, sid, name)
		}
		if next < tail {
			out.MillisBehindLatest = max(0, now-stored[len(stored)-1].Time)
		}
	}
	nit := s.tokens.encodeIterator(iterator{issued: now, stream: name, streamID: st.meta.ID, shard: it.shard, offset: next})
	out.NextShardIterator = &nit
	return out, nil
}

// childShards lists the shards created from shard idx by resharding.
func (s *Service) childShards(st *stream, idx int) []ChildShard {
	out := []ChildShard{}
	for i := range st.meta.Shards {
		sm := &st.meta.Shards[i]
		for _, p := range sm.Parents {
			if p != idx {
				continue
			}
			c := ChildShard{ShardId: st.shards[i].id, HashKeyRange: HashKeyRange{StartingHashKey: sm.Start, EndingHashKey: sm.End}}
			for _, pp := range sm.Parents {
				c.ParentShards = append(c.ParentShards, shardID(pp))
			}
			out = append(out, c)
			break
		}
	}
	return out
}

// positionOffset resolves a starting position on shard idx of stream name
// (an iterator or StartingPosition type with its sequence number or
// timestamp, which the caller has checked are present when the type needs
// them) to the offset of the first record to read. op names the calling
// operation in messages. GetShardIterator and SubscribeToShard share it, so
// a sequence number means the same position to both.
func (s *Service) positionOffset(ctx context.Context, op, name string, st *stream, idx int, typ, seq string, ts, now int64) (uint64, error) {
	sid := shardID(idx)
	sh, sm := st.shards[idx], &st.meta.Shards[idx]
	switch typ {
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		invalid := func(why string) error {
			return errorf(CodeInvalidArgument, "StartingSequenceNumber %s used in %s on shard %s in stream %s under account %s is invalid%s.", seq, op, sid, name, s.opts.AccountID, why)
		}
		sn, ok := parseSeqNum(seq)
		if !ok {
			return 0, invalid("")
		}
		if int(sn.shard) != idx {
			return 0, errorf(CodeInvalidArgument, "Invalid StartingSequenceNumber. It encodes %s, while it was used in a call to a shard with %s", shardID(int(sn.shard)), sid)
		}
		if sn.created != sh.created&mask36 {
			return 0, invalid(" because it did not come from this stream")
		}
		offset := sn.offset
		// A position (not a record's number) names its offset for both
		// types; see seqNum.
		if typ == "AFTER_SEQUENCE_NUMBER" && sn.record {
			if offset == ^uint64(0) {
				return 0, invalid("")
			}
			offset++
		}
		return offset, nil
	case "LATEST":
		if sm.Closed != 0 {
			end, err := s.sealedEnd(ctx, st, idx)
			if err != nil {
				return 0, s.mapLogErr(err, sid, name)
			}
			return end, nil
		}
		l, err := sh.handle(ctx, s.eng)
		if err != nil {
			return 0, s.mapLogErr(err, sid, name)
		}
		info, err := l.Info(ctx)
		if err != nil {
			return 0, s.mapLogErr(err, sid, name)
		}
		return info.Next, nil
	case "AT_TIMESTAMP":
		if ts > now {
			return 0, errorf(CodeInvalidArgument, "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: %d, currentTimestampInMillis: %d", ts, now)
		}
		l, err := sh.handle(ctx, s.eng)
		if err != nil {
			return 0, s.mapLogErr(err, sid, name)
		}
		offset, err := l.OffsetAt(ctx, ts)
		if err != nil {
			return 0, s.mapLogErr(err, sid, name)
		}
		return offset, nil
	}
	return 0, nil // TRIM_HORIZON
}

// toRecords turns records read from shard sh's log into API records, and
// returns them with the bytes of keys and values they hold. The sequence
// numbers share one buffer; partition keys and data are views of the stored
// keys and values, which the engine hands over and never modifies.
func toRecords(sh *shard, stored []engine.StoredRecord) ([]Record, int) {
	return (&answerBufs{}).toRecords(sh, stored)
}

// answerBufs are the record slice and the sequence numbers' bytes of one
// answer. GetRecords takes them from a pool and gives them back when the
// answer is released, once written out (GetRecordsOutput.Release): an
// answer of thousands of records needs hundreds of kilobytes of them.
type answerBufs struct {
	recs []Record
	seq  []byte
}

var answerPool sync.Pool

func getAnswerBufs() *answerBufs {
	if ab, ok := answerPool.Get().(*answerBufs); ok {
		return ab
	}
	return &answerBufs{}
}

// putAnswerBufs gives ab back, dropping what its records point to.
func putAnswerBufs(ab *answerBufs) {
	clear(ab.recs)
	ab.recs, ab.seq = ab.recs[:0], ab.seq[:0]
	answerPool.Put(ab)
}

// toRecords is toRecords with the slices of ab, grown as needed.
func (ab *answerBufs) toRecords(sh *shard, stored []engine.StoredRecord) ([]Record, int) {
	if cap(ab.recs) < len(stored) {
		ab.recs = make([]Record, len(stored))
	}
	if cap(ab.seq) < seqNumDigits*len(stored) {
		ab.seq = make([]byte, 0, seqNumDigits*len(stored))
	}
	recs, seqBuf := ab.recs[:len(stored)], ab.seq[:0]
	bytes := 0
	var kms *string
	for i := range stored {
		r := &stored[i]
		rec := &recs[i]
		var pk []byte
		if len(r.Key) > 0 {
			pk = r.Key[1:]
			if r.Key[0]&keyFlagKMS != 0 {
				if kms == nil {
					kms = ptr(encKMS)
				}
				rec.EncryptionType = kms
			}
		}
		k := len(seqBuf)
		if i > 0 && r.Offset == stored[i-1].Offset+1 && r.Time/1000 == stored[i-1].Time/1000 {
			seqBuf = appendNextSeq(seqBuf, seqBuf[k-seqNumDigits:k])
		} else {
			seqBuf = seqNum{created: sh.created, shard: uint32(sh.index), offset: r.Offset, arrival: uint64(r.Time / 1000), record: true}.appendTo(seqBuf)
		}
		rec.SequenceNumber = unsafeString(seqBuf[k:])
		rec.ApproximateArrivalTimestamp = TimestampMillis(r.Time)
		rec.Data = r.Value
		if rec.Data == nil {
			rec.Data = []byte{}
		}
		rec.PartitionKey = unsafeString(pk)
		bytes += len(r.Key) + len(r.Value)
	}
	ab.recs, ab.seq = recs, seqBuf // what putAnswerBufs clears
	return recs, bytes
}
