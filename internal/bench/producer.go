package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// pacer spreads the records of all producers over time: at a target rate,
// in bursts, or both. It is shared by the producers.
type pacer struct {
	rate    float64 // records per second; 0 means unpaced
	on, off time.Duration
	start   time.Time
	issued  atomic.Int64
}

// wait blocks until a batch of n records may be sent. It returns false if
// that time is past the deadline (zero means none) or ctx ends first.
func (p *pacer) wait(ctx context.Context, n int, deadline time.Time) bool {
	var at time.Duration
	switch {
	case p.rate > 0:
		k := p.issued.Add(int64(n)) - int64(n)
		at = time.Duration(float64(k) / p.rate * float64(time.Second))
		if p.on > 0 {
			at = at/p.on*(p.on+p.off) + at%p.on
		}
	case p.on > 0:
		el := time.Since(p.start)
		phase := el % (p.on + p.off)
		if phase < p.on {
			return deadline.IsZero() || time.Now().Before(deadline)
		}
		at = el - phase + p.on + p.off
	default:
		return deadline.IsZero() || time.Now().Before(deadline)
	}
	t := p.start.Add(at)
	if !deadline.IsZero() && !t.Before(deadline) {
		return false
	}
	return sleep(ctx, time.Until(t)) == nil
}

// producer sends records from one goroutine, one call in flight at a time.
type producer struct {
	r      *runner
	id     uint32
	ledger *ledger
	keys   *keyPicker
	body   *bodyWriter
	rng    *rand.Rand
	putLat *Histogram

	// raw sends the PutRecords calls with --producer-client raw; nil
	// means the SDK.
	raw *rawPutter

	// the batch being sent
	entries []types.PutRecordsRequestEntry
	seqs    []uint64
	sizes   []int       // data sizes, to count bytes
	offs    []int       // noise offsets of the bodies (see bodyWriter.fill)
	results []putResult // of the last PutRecords call

	// arena holds the batch's data, reused from batch to batch: a batch is
	// done with (acknowledged or given up) before the next is built.
	arena []byte
}

// putResult is the outcome of one record of a PutRecords call, whichever
// client made it: the shard that stored it, or why it failed.
type putResult struct {
	ShardID      string
	ErrorCode    string // "" when stored
	ErrorMessage string
}

func newProducer(r *runner, id uint32) *producer {
	rng := rand.New(rand.NewPCG(r.seed, uint64(id)+1))
	body := newBodyWriter(r.o.Shape, rng)
	var raw *rawPutter
	if r.c != nil && r.c.raw != nil {
		raw = &rawPutter{c: r.c.rawFor(int(id)), stream: r.stream.name, bodies: body, shards: map[string]string{}}
	}
	return &producer{
		raw:    raw,
		r:      r,
		id:     id,
		ledger: &ledger{},
		keys:   newKeyPicker(r.o.KeyDist, r.o.ZipfS, r.o.Keys, rng),
		body:   body,
		rng:    rng,
		putLat: NewHistogram(),
	}
}

// run sends batches until the duration or the record budget is used up or
// ctx ends. It returns an error only for a failure retrying cannot fix.
func (p *producer) run(ctx context.Context) error {
	o := &p.r.o
	mode := o.putMode()
	for {
		if !p.r.deadline.IsZero() && !time.Now().Before(p.r.deadline) {
			return nil
		}
		n := p.r.take(o.Batch)
		if n == 0 {
			return nil
		}
		if !p.r.pacer.wait(ctx, n, p.r.deadline) {
			return nil
		}
		p.build(n)
		var err error
		if mode == PutRecord {
			err = p.putRecord(ctx)
		} else {
			err = p.putRecords(ctx)
		}
		if err != nil || ctx.Err() != nil {
			return err
		}
	}
}

// build makes the next n records.
func (p *producer) build(n int) {
	o := &p.r.o
	lo, hi := o.sizeRange()
	p.entries, p.seqs, p.sizes, p.offs = p.entries[:0], p.seqs[:0], p.sizes[:0], p.offs[:0]
	if need := n * hi; cap(p.arena) < need {
		p.arena = make([]byte, need)
	}
	used := 0
	now := p.r.now()
	for range n {
		size := lo
		if hi > lo {
			size += p.rng.IntN(hi - lo + 1)
		}
		key := p.keys.next()
		seq := p.ledger.add()
		name := p.r.keys.names[key]
		data := p.arena[used : used+size : used+size]
		used += size
		off := p.body.fill(data[headerSize:], name, seq, now)
		sealRecord(data, header{Run: p.r.run, Producer: p.id, Seq: seq, Sent: now, Key: key})
		p.entries = append(p.entries, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(name)})
		p.seqs = append(p.seqs, seq)
		p.sizes = append(p.sizes, size)
		p.offs = append(p.offs, off)
	}
}

// putRecords sends the batch with PutRecords, retrying throttled and failed
// records like a real producer, until all are acknowledged or the retries
// are used up.
func (p *producer) putRecords(ctx context.Context) error {
	st := &p.r.stats
	entries, seqs, sizes, offs := p.entries, p.seqs, p.sizes, p.offs
	for attempt := 0; len(entries) > 0; attempt++ {
		if attempt > 0 {
			if attempt > p.r.o.MaxRetries {
				st.failedRecords.Add(int64(len(entries)))
				return nil
			}
			st.retriedRecords.Add(int64(len(entries)))
			if sleep(ctx, backoff(p.rng, attempt)) != nil {
				return nil
			}
		}
		cctx, cancel := context.WithTimeout(ctx, p.r.o.RequestTimeout)
		t0 := time.Now()
		results, err := p.send(cctx, entries, offs)
		p.putLat.RecordDuration(time.Since(t0))
		cancel()
		st.putCalls.Add(1)
		if err != nil {
			switch classify(ctx, err) {
			case errStopped:
				return nil
			case errThrottled:
				st.throttledCalls.Add(1)
				st.throttledRecords.Add(int64(len(entries)))
			case errRetryable:
				st.putError(err)
				for _, s := range seqs {
					p.ledger.retried(s)
				}
			default:
				st.putError(err)
				return fmt.Errorf("put records: %w", err)
			}
			continue
		}
		if len(results) != len(entries) {
			st.putError(fmt.Errorf("PutRecords answered %d results for %d records", len(results), len(entries)))
			for _, s := range seqs {
				p.ledger.retried(s)
			}
			continue
		}
		ack := p.r.now()
		// Keep the failed records, in order, for the next attempt.
		k := 0
		var acked, ackedBytes int64
		for i, res := range results {
			if res.ErrorCode != "" {
				if res.ErrorCode == "ProvisionedThroughputExceededException" {
					st.throttledRecords.Add(1)
				} else {
					st.recordError(res.ErrorCode, res.ErrorMessage)
				}
				entries[k], seqs[k], sizes[k], offs[k] = entries[i], seqs[i], sizes[i], offs[i]
				k++
				continue
			}
			p.ledger.ack(seqs[i], p.r.shardIndex(res.ShardID), ack)
			acked++
			ackedBytes += int64(sizes[i])
		}
		st.putRecords.Add(acked)
		st.putBytes.Add(ackedBytes)
		entries, seqs, sizes, offs = entries[:k], seqs[:k], sizes[:k], offs[:k]
	}
	return nil
}

// send makes one PutRecords call with the producer's client and returns
// the per-record results, in the order of entries.
func (p *producer) send(ctx context.Context, entries []types.PutRecordsRequestEntry, offs []int) ([]putResult, error) {
	if p.raw != nil {
		res, err := p.raw.putRecords(ctx, entries, offs, p.results)
		if res != nil {
			p.results = res
		}
		return res, err
	}
	out, err := p.r.c.dataFor(int(p.id)).PutRecords(ctx, &kinesis.PutRecordsInput{
		StreamName: aws.String(p.r.stream.name),
		Records:    entries,
	})
	if err != nil {
		return nil, err
	}
	res := p.results[:0]
	for _, r := range out.Records {
		res = append(res, putResult{
			ShardID:      aws.ToString(r.ShardId),
			ErrorCode:    aws.ToString(r.ErrorCode),
			ErrorMessage: aws.ToString(r.ErrorMessage),
		})
	}
	p.results = res
	return res, nil
}

// putRecord sends the single record of the batch with PutRecord.
func (p *producer) putRecord(ctx context.Context) error {
	st := &p.r.stats
	e, seq := p.entries[0], p.seqs[0]
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if attempt > p.r.o.MaxRetries {
				st.failedRecords.Add(1)
				return nil
			}
			st.retriedRecords.Add(1)
			if sleep(ctx, backoff(p.rng, attempt)) != nil {
				return nil
			}
		}
		cctx, cancel := context.WithTimeout(ctx, p.r.o.RequestTimeout)
		t0 := time.Now()
		out, err := p.r.c.dataFor(int(p.id)).PutRecord(cctx, &kinesis.PutRecordInput{
			StreamName:   aws.String(p.r.stream.name),
			Data:         e.Data,
			PartitionKey: e.PartitionKey,
		})
		p.putLat.RecordDuration(time.Since(t0))
		cancel()
		st.putCalls.Add(1)
		if err != nil {
			switch classify(ctx, err) {
			case errStopped:
				return nil
			case errThrottled:
				st.throttledCalls.Add(1)
				st.throttledRecords.Add(1)
			case errRetryable:
				st.putError(err)
				p.ledger.retried(seq)
			default:
				st.putError(err)
				return fmt.Errorf("put record: %w", err)
			}
			continue
		}
		p.ledger.ack(seq, p.r.shardIndex(aws.ToString(out.ShardId)), p.r.now())
		st.putRecords.Add(1)
		st.putBytes.Add(int64(p.sizes[0]))
		return nil
	}
}
