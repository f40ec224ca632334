package producer

import (
	"fmt"
	"time"

	"github.com/runnel/runnel/kpl"
)

// PutRecords limits.
const (
	maxRequestRecords = 500
	maxRequestBytes   = 5 << 20
)

// config is what the Options set.
type config struct {
	linger          time.Duration
	aggregate       bool
	aggregateMax    int
	maxRecordSize   int
	ttl             time.Duration
	maxBuffered     int64
	failWhenFull    bool
	ordered         bool
	maxInFlight     int
	rateLimit       bool
	requestTimeout  time.Duration
	backoffBase     time.Duration
	backoffMax      time.Duration
	maxRequestBytes int
	sdkCalls        bool
}

func defaultConfig() config {
	return config{
		linger:          100 * time.Millisecond,
		aggregate:       true,
		maxRecordSize:   kpl.DefaultMaxSize,
		ttl:             30 * time.Second,
		maxBuffered:     64 << 20,
		ordered:         true,
		maxInFlight:     4,
		rateLimit:       true,
		requestTimeout:  30 * time.Second,
		backoffBase:     100 * time.Millisecond,
		backoffMax:      5 * time.Second,
		maxRequestBytes: maxRequestBytes,
	}
}

func (c *config) validate() error {
	switch {
	case c.linger < 0:
		return fmt.Errorf("%w: linger %v is negative", ErrInvalidOption, c.linger)
	case c.maxRecordSize < 1<<10 || c.maxRecordSize > 10<<20:
		return fmt.Errorf("%w: max record size %d is outside 1 KiB..10 MiB", ErrInvalidOption, c.maxRecordSize)
	case c.aggregateMax != 0 && (c.aggregateMax < 1<<10 || c.aggregateMax > c.maxRecordSize):
		return fmt.Errorf("%w: aggregate size %d is outside 1 KiB..the max record size %d", ErrInvalidOption, c.aggregateMax, c.maxRecordSize)
	case c.ttl <= 0:
		return fmt.Errorf("%w: record TTL %v must be positive", ErrInvalidOption, c.ttl)
	case c.maxBuffered < int64(c.maxRecordSize):
		return fmt.Errorf("%w: buffer bound %d is below the max record size %d: one record would never fit", ErrInvalidOption, c.maxBuffered, c.maxRecordSize)
	case c.maxInFlight < 1:
		return fmt.Errorf("%w: max in flight %d must be at least 1", ErrInvalidOption, c.maxInFlight)
	case c.requestTimeout <= 0:
		return fmt.Errorf("%w: request timeout %v must be positive", ErrInvalidOption, c.requestTimeout)
	case c.backoffBase <= 0 || c.backoffMax < c.backoffBase:
		return fmt.Errorf("%w: back-off %v..%v: base must be positive and at most the cap", ErrInvalidOption, c.backoffBase, c.backoffMax)
	}
	if c.aggregateMax == 0 {
		c.aggregateMax = c.maxRecordSize
	}
	return nil
}

// Option configures a Producer.
type Option func(*config)

// Linger is the longest a record waits in the buffer for others to share
// its request, unless the request fills first or Flush is called. The
// default is 100 ms, the KPL's RecordMaxBufferedTime. 0 sends as soon as
// the shard's previous request is answered.
func Linger(d time.Duration) Option { return func(c *config) { c.linger = d } }

// Aggregation turns KPL aggregation on (the default) or off. On, the
// records bound for one shard are packed into KPL aggregated records (see
// package kpl), which count as one record against the shard's limit of
// 1,000 records/s; readers must de-aggregate them (the KCL, package
// consumer, Firehose and kpl.Deaggregate do).
func Aggregation(on bool) Option { return func(c *config) { c.aggregate = on } }

// AggregationMaxSize bounds an aggregated record's size (data plus
// partition key). The default is the max record size, 1 MiB; the KPL's
// default is 51,200 bytes, which costs more requests but lets a
// throttled aggregate be retried at a smaller price.
func AggregationMaxSize(n int) Option { return func(c *config) { c.aggregateMax = n } }

// MaxRecordSize is the stream's limit on a record's data plus partition
// key: 1 MiB (the default) unless the stream's MaxRecordSizeInKiB was
// raised. Put refuses larger user records.
func MaxRecordSize(n int) Option { return func(c *config) { c.maxRecordSize = n } }

// RecordTTL is how long after Put a record may still be sent or retried;
// after it the caller gets an error wrapping ErrRecordExpired and the last
// failure. The default is 30 s, the KPL's RecordTtl.
func RecordTTL(d time.Duration) Option { return func(c *config) { c.ttl = d } }

// MaxBufferedBytes bounds the bytes (data, partition keys and explicit
// hash keys) of the records put but not yet acknowledged or failed. When
// the bound is reached Put blocks until there is room or its ctx ends, or
// with FailWhenFull fails at once with ErrBufferFull. The default is 64 MiB.
func MaxBufferedBytes(n int64) Option { return func(c *config) { c.maxBuffered = n } }

// FailWhenFull makes Put fail at once with ErrBufferFull instead of
// blocking when the buffer bound is reached.
func FailWhenFull() Option { return func(c *config) { c.failWhenFull = true } }

// Unordered gives up the order of records per partition key for
// throughput: up to n requests per shard are in flight at once (the
// default keeps one), a request may carry several records of one key
// (several aggregates, without aggregation several records), and a retried
// record may land after records put later.
func Unordered(n int) Option {
	return func(c *config) { c.ordered, c.maxInFlight = false, n }
}

// RateLimit paces each shard's puts to Kinesis' write limits of a
// provisioned shard, 1 MiB/s and 1,000 records/s (an aggregate counts as
// one), as the KPL does, so that a producer does not spend its requests
// on throttled records. It is on by default. Turn it off against runnel
// (which enforces no limits unless started with --enforce-throughput) and
// against on-demand streams with more than a shard's throughput per key
// range.
func RateLimit(on bool) Option { return func(c *config) { c.rateLimit = on } }

// RequestTimeout bounds one PutRecords call; a call that takes longer is
// retried like a transport error. The default is 30 s.
func RequestTimeout(d time.Duration) Option { return func(c *config) { c.requestTimeout = d } }

// Backoff sets the pause before retrying a shard's failed records: base
// doubled for each consecutive failure up to limit, with jitter (a random
// time in the upper half). The defaults are 100 ms and 5 s.
func Backoff(base, limit time.Duration) Option {
	return func(c *config) { c.backoffBase, c.backoffMax = base, limit }
}

// SDKCalls sends PutRecords through the SDK's request pipeline even for a
// *kinesis.Client with a BaseEndpoint, for which the producer otherwise
// writes, signs and sends the calls itself (the same requests, at a
// fraction of the CPU: see PRODUCER.md). Clients without a BaseEndpoint
// (Amazon Kinesis found by region) and other Client implementations always
// go through their PutRecords method.
func SDKCalls() Option { return func(c *config) { c.sdkCalls = true } }

// PutOption sets a property of one record.
type PutOption struct {
	explicitHashKey string
}

// ExplicitHashKey routes the record by hash key (a decimal number from 0
// to 2^128-1) instead of by the MD5 of its partition key.
func ExplicitHashKey(key string) PutOption { return PutOption{explicitHashKey: key} }
