package producer

import "time"

// Kinesis' write limits of one provisioned shard.
const (
	shardBytesPerSecond   = 1 << 20
	shardRecordsPerSecond = 1000
)

// limiter paces one shard's puts to its write limits with two token
// buckets, bytes and records, each holding at most one second's worth. A
// request takes its tokens at once and may drive a bucket negative; the
// next request then waits until both buckets are back above zero. So a
// request never waits for more than it costs, and the rate over any second
// stays within the limits plus one request. It is used by one goroutine.
type limiter struct {
	bytes, records float64 // tokens; negative is a debt
	last           time.Time
}

func newLimiter(now time.Time) *limiter {
	return &limiter{bytes: shardBytesPerSecond, records: shardRecordsPerSecond, last: now}
}

// refill adds the tokens earned since the last call.
func (l *limiter) refill(now time.Time) {
	if d := now.Sub(l.last).Seconds(); d > 0 {
		l.bytes = min(shardBytesPerSecond, l.bytes+d*shardBytesPerSecond)
		l.records = min(shardRecordsPerSecond, l.records+d*shardRecordsPerSecond)
		l.last = now
	}
}

// wait is how long to wait from now before a request may be sent.
func (l *limiter) wait(now time.Time) time.Duration {
	l.refill(now)
	var s float64
	if l.bytes < 0 {
		s = -l.bytes / shardBytesPerSecond
	}
	if l.records < 0 {
		s = max(s, -l.records/shardRecordsPerSecond)
	}
	return time.Duration(s * float64(time.Second))
}

// take charges a request of records Kinesis records and bytes bytes (data
// plus partition keys).
func (l *limiter) take(now time.Time, records, bytes int) {
	l.refill(now)
	l.bytes -= float64(bytes)
	l.records -= float64(records)
}
