package producer

import (
	"context"
	"sync"
)

// Result is the outcome of one record.
type Result struct {
	// ShardID is the shard that stored the record.
	ShardID string
	// SequenceNumber is the sequence number of the Kinesis record that
	// carries it: the record itself, or its aggregate.
	SequenceNumber string
	// SubSequenceNumber is the record's index in its aggregate, when
	// Aggregated.
	SubSequenceNumber uint64
	// Aggregated reports whether the record was put inside a KPL
	// aggregate (with others) rather than as a Kinesis record of its own.
	Aggregated bool
	// Attempts is the number of PutRecords calls that carried the record.
	Attempts int
	// Err is nil when the stream acknowledged the record. Otherwise the
	// record may or may not be in the stream only if the error wraps
	// ErrUnknownOutcome.
	Err error
}

// Future is the pending result of one Put. Its methods are safe for
// concurrent use.
type Future struct {
	mu   sync.Mutex
	done bool
	ch   chan struct{} // made by the first waiter
	res  Result
}

// Wait blocks until the record is acknowledged or failed, or ctx ends. It
// returns the record's Result and its Err, or ctx's error (the record is
// still pending then).
func (f *Future) Wait(ctx context.Context) (Result, error) {
	f.mu.Lock()
	if f.done {
		r := f.res
		f.mu.Unlock()
		return r, r.Err
	}
	if f.ch == nil {
		f.ch = make(chan struct{})
	}
	ch := f.ch
	f.mu.Unlock()
	select {
	case <-ch:
		f.mu.Lock()
		r := f.res
		f.mu.Unlock()
		return r, r.Err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

// Done reports whether the record is acknowledged or failed.
func (f *Future) Done() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done
}

func (f *Future) complete(r Result) {
	f.mu.Lock()
	f.res, f.done = r, true
	if f.ch != nil {
		close(f.ch)
	}
	f.mu.Unlock()
}

// failed returns a Future already failed with err.
func failed(err error) *Future {
	return &Future{done: true, res: Result{Err: err}}
}
