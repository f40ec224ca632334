package streams

import "sync"

// Per-shard throughput limits of a provisioned Kinesis shard, enforced when
// Options.EnforceThroughput is set. Each is a token bucket that refills at its
// rate per second and holds at most one second's worth.
const (
	writeBytesPerSec   = 1 << 20
	writeRecordsPerSec = 1000
	readBytesPerSec    = 2 << 20
	readCallsPerSec    = 5
)

type bucket struct {
	tokens float64
	rate   float64 // per second; also the capacity
	last   int64   // Unix ms of the last refill
}

func newBucket(rate float64) bucket { return bucket{tokens: rate, rate: rate} }

func (b *bucket) refill(now int64) {
	if b.last == 0 {
		b.last = now
		return
	}
	if now > b.last {
		b.tokens = min(b.rate, b.tokens+b.rate*float64(now-b.last)/1000)
		b.last = now
	}
}

// shardLimits holds one shard's buckets.
type shardLimits struct {
	mu                 sync.Mutex
	inBytes, inRecords bucket
	outBytes, outCalls bucket
}

func newShardLimits() *shardLimits {
	return &shardLimits{
		inBytes:   newBucket(writeBytesPerSec),
		inRecords: newBucket(writeRecordsPerSec),
		outBytes:  newBucket(readBytesPerSec),
		outCalls:  newBucket(readCallsPerSec),
	}
}

// admitWrite takes one record of size bytes, or reports false and takes
// nothing. A nil receiver admits everything.
func (l *shardLimits) admitWrite(size int, now int64) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inBytes.refill(now)
	l.inRecords.refill(now)
	if l.inRecords.tokens < 1 || l.inBytes.tokens < float64(size) {
		return false
	}
	l.inRecords.tokens--
	l.inBytes.tokens -= float64(size)
	return true
}

// admitRead takes one GetRecords call if the shard has call budget and has
// paid off the bytes of earlier reads.
func (l *shardLimits) admitRead(now int64) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outCalls.refill(now)
	l.outBytes.refill(now)
	if l.outCalls.tokens < 1 || l.outBytes.tokens <= 0 {
		return false
	}
	l.outCalls.tokens--
	return true
}

// chargeRead debits bytes read; the bucket may go negative, which throttles
// the following calls until it refills (a 10 MiB read blocks ~5 s).
func (l *shardLimits) chargeRead(n int) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.outBytes.tokens -= float64(n)
	l.mu.Unlock()
}

func (s *Service) errThrottled(sh *shard, name string) *Error {
	return errorf(CodeProvisionedThroughputExceeded, "Rate exceeded for shard %s in stream %s under account %s.", sh.id, name, s.opts.AccountID)
}
