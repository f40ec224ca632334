package producer

import (
	"math"
	"time"
)

// Kinesis' write limits of one provisioned shard.
const (
	shardBytesPerSecond   = 1 << 20
	shardRecordsPerSecond = 1000
)

// limiter paces one shard's puts to its write limits with two token
// buckets, bytes and records, each holding at most one second's worth. A
// request waits until both buckets hold its cost, then takes it, so the
// shard is never sent more than it admits: a request of at most a second's
// worth always gets through in time. It is used by one goroutine.
type limiter struct {
	bytes, records float64 // tokens
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

// margin is how much more than a request's cost the buckets must hold:
// 5 ms worth, for a service that counts its time in whole milliseconds.
const margin = 0.005

// wait is how long from now until a request of records Kinesis records
// and bytes bytes (data plus partition keys) may be sent.
func (l *limiter) wait(now time.Time, records, bytes int) time.Duration {
	l.refill(now)
	b := min(shardBytesPerSecond, float64(bytes)+margin*shardBytesPerSecond)
	r := min(shardRecordsPerSecond, float64(records)+margin*shardRecordsPerSecond)
	s := max(0, (b-l.bytes)/shardBytesPerSecond, (r-l.records)/shardRecordsPerSecond)
	return time.Duration(math.Ceil(s * float64(time.Second)))
}

// landed forgoes the tokens earned while a request was in flight, until
// its answer at now: the service charged the request when it arrived, not
// when it was sent, so its buckets are behind this one by the flight time.
func (l *limiter) landed(now time.Time) {
	if now.After(l.last) {
		l.last = now
	}
}

// take charges a request sent at now.
func (l *limiter) take(now time.Time, records, bytes int) {
	l.refill(now)
	l.bytes -= float64(bytes)
	l.records -= float64(records)
}
