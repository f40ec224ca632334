package producer

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// Client is what a Producer needs of a Kinesis client. *kinesis.Client
// satisfies it; tests wrap one to watch or fail calls.
type Client interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

var _ Client = (*kinesis.Client)(nil)

// maxPartitionKeyLength is Kinesis' limit on a partition key, in Unicode
// characters.
const maxPartitionKeyLength = 256

// Producer puts records into one stream in batches. Its methods are safe
// for concurrent use.
type Producer struct {
	client Client
	raw    *rawPutter // nil: calls go through client
	stream string
	cfg    config
	start  time.Time // the origin of the records' monotonic times

	shards    atomic.Pointer[shardMap]
	refreshCh chan struct{}
	// listings started and the number of the last one completed, and
	// whether that one succeeded.
	listStarted, listDone atomic.Int64
	listOK                atomic.Bool

	closed   atomic.Bool
	stop     chan struct{} // closed to stop the goroutines
	stopOnce sync.Once
	ctx      context.Context // of PutRecords and ListShards calls; cancelled at stop
	cancel   context.CancelFunc
	wg       sync.WaitGroup // pipelines and the refresher

	hashes   *hashCache
	buf      budget
	epoch    atomic.Pointer[epoch]
	flushSem chan struct{}
	flushing atomic.Int32

	m counters
}

// userRecord is one record from Put until its result is delivered.
type userRecord struct {
	key, ehk string
	hash     hashKey
	data     []byte // owned by the producer (copied at Put)
	fut      *Future
	cb       func(Result)
	ep       *epoch
	enq      time.Duration // when Put, since Producer.start
	attempts int32
	lastErr  error
}

func (r *userRecord) size() int { return len(r.key) + len(r.ehk) + len(r.data) }

// New returns a Producer for stream. It lists the stream's shards first,
// and fails if it cannot (no such stream, no access).
func New(client Client, stream string, opts ...Option) (*Producer, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if stream == "" {
		return nil, fmt.Errorf("%w: empty stream name", ErrInvalidOption)
	}
	p := &Producer{
		client:    client,
		stream:    stream,
		cfg:       cfg,
		start:     time.Now(),
		refreshCh: make(chan struct{}, 1),
		stop:      make(chan struct{}),
		flushSem:  make(chan struct{}, 1),
		hashes:    newHashCache(),
	}
	p.buf.max = cfg.maxBuffered
	if !cfg.sdkCalls {
		p.raw = newRawPutter(client)
	}
	p.epoch.Store(newEpoch())
	p.ctx, p.cancel = context.WithCancel(context.Background())
	ctx, cancel := context.WithTimeout(p.ctx, cfg.requestTimeout)
	shards, err := listOpenShards(ctx, client, stream)
	cancel()
	if err != nil {
		p.cancel()
		return nil, fmt.Errorf("producer: %w", err)
	}
	m := &shardMap{shards: shards}
	for i := range m.shards {
		m.shards[i].pl = newPipeline(p, m.shards[i], nil)
	}
	p.shards.Store(m)
	p.listOK.Store(true)
	for _, s := range m.shards {
		p.wg.Add(1)
		go s.pl.run()
	}
	p.wg.Add(1)
	go p.refresher()
	return p, nil
}

// now is the monotonic time since the producer started.
func (p *Producer) now() time.Duration { return time.Since(p.start) }

// Put buffers a record for the stream and returns its Future. The record
// is refused at once (the Future already holds the error) when the
// producer is closed, the record is invalid, or under FailWhenFull the
// buffer is full; otherwise Put blocks while the buffer is full, until
// there is room or ctx ends. data is copied: the caller may reuse it.
func (p *Producer) Put(ctx context.Context, partitionKey string, data []byte, opts ...PutOption) *Future {
	f := &Future{}
	if err := p.put(ctx, partitionKey, data, f, nil, opts); err != nil {
		f.res.Err, f.done = err, true
	}
	return f
}

// PutAsync is Put with a callback instead of a Future: done is called
// once with the record's Result, on one of the producer's goroutines,
// unless PutAsync returns an error (then never). done must be quick and
// must not call Flush or Close.
func (p *Producer) PutAsync(ctx context.Context, partitionKey string, data []byte, done func(Result), opts ...PutOption) error {
	return p.put(ctx, partitionKey, data, nil, done, opts)
}

func (p *Producer) put(ctx context.Context, key string, data []byte, f *Future, cb func(Result), opts []PutOption) error {
	if p.closed.Load() {
		return ErrClosed
	}
	var ehk string
	for _, o := range opts {
		if o.explicitHashKey != "" {
			ehk = o.explicitHashKey
		}
	}
	if key == "" || (len(key) > maxPartitionKeyLength && utf8.RuneCountInString(key) > maxPartitionKeyLength) || !utf8.ValidString(key) {
		return fmt.Errorf("%w: partition key must be 1 to %d Unicode characters", ErrInvalidRecord, maxPartitionKeyLength)
	}
	if n := len(key) + len(data); n > p.cfg.maxRecordSize {
		return fmt.Errorf("%w: data and partition key of %d bytes exceed the record limit of %d", ErrInvalidRecord, n, p.cfg.maxRecordSize)
	}
	var h hashKey
	if ehk != "" {
		var err error
		if h, err = parseHashKey(ehk); err != nil {
			return fmt.Errorf("%w: explicit hash key %q: %w", ErrInvalidRecord, ehk, err)
		}
	} else {
		h = p.hashes.hash(key)
	}
	rec := userRecord{key: key, ehk: ehk, hash: h, fut: f, cb: cb}
	size := int64(len(key) + len(ehk) + len(data))
	if err := p.buf.acquire(ctx, size, !p.cfg.failWhenFull, p.stop); err != nil {
		return err
	}
	rec.ep = p.acquireEpoch()
	rec.enq = p.now()
	for {
		m := p.shards.Load()
		i := m.lookup(h)
		if i < 0 {
			// A gap in a map taken mid-reshard: Kinesis routes by hash
			// key anyway; the refresh closes the gap.
			p.requestRefresh()
			i = 0
		}
		switch m.shards[i].pl.enqueue(&rec, data) {
		case enqueued:
			p.m.bufferedRecords.Add(1)
			return nil
		case stopped:
			p.buf.release(size)
			rec.ep.release(1)
			return ErrClosed
		}
		// retired: the new map is already published.
	}
}

// Flush sends every buffered record without waiting for its linger time
// and returns when every record put before Flush was called is
// acknowledged or failed, or ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	select {
	case p.flushSem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-p.flushSem }()
	p.flushing.Add(1)
	defer p.flushing.Add(-1)
	old := p.epoch.Swap(newEpoch())
	old.release(1)
	for _, s := range p.shards.Load().shards {
		s.pl.signal()
	}
	select {
	case <-old.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close flushes, then stops the producer: later Puts fail with ErrClosed.
// When ctx ends before the flush completes, Close stops anyway: the
// records still buffered fail with an error wrapping ErrClosed (those in
// flight also wrap ErrUnknownOutcome), and Close returns ctx's error.
func (p *Producer) Close(ctx context.Context) error {
	p.closed.Store(true)
	err := p.Flush(ctx)
	p.stopOnce.Do(func() {
		close(p.stop)
		p.cancel()
	})
	p.wg.Wait()
	return err
}

// requestRefresh asks the refresher to list the shards again.
func (p *Producer) requestRefresh() {
	select {
	case p.refreshCh <- struct{}{}:
	default:
	}
}

// refresher lists the shards when asked and publishes the new map.
func (p *Producer) refresher() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case <-p.refreshCh:
		}
		n := p.listStarted.Add(1)
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.requestTimeout)
		shards, err := listOpenShards(ctx, p.client, p.stream)
		cancel()
		// Before the map: a pipeline it retires settles with it at once.
		p.listOK.Store(err == nil)
		if err == nil {
			p.applyMap(shards)
			p.m.refreshes.Add(1)
		}
		p.listDone.Store(n)
		for _, s := range p.shards.Load().shards {
			s.pl.signal()
		}
		// At most ten listings a second; a failed one is tried again
		// when the next put asks.
		select {
		case <-p.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// applyMap publishes a new shard map: open shards keep their pipelines,
// new shards get new ones that start sending only once the pipelines of
// the closed shards they overlap have handed on their records, and the
// closed shards' pipelines are retired.
func (p *Producer) applyMap(shards []shardRange) {
	old := p.shards.Load()
	keep := make(map[string]bool, len(shards))
	for _, s := range shards {
		if o := old.byID(s.id); o != nil && o.lo == s.lo && o.hi == s.hi {
			keep[s.id] = true
		}
	}
	if len(keep) == len(shards) && len(old.shards) == len(shards) {
		return
	}
	var retired []*pipeline
	for _, o := range old.shards {
		if !keep[o.id] {
			retired = append(retired, o.pl)
		}
	}
	m := &shardMap{shards: shards}
	var fresh []*pipeline
	for i := range m.shards {
		s := &m.shards[i]
		if keep[s.id] {
			s.pl = old.byID(s.id).pl
			continue
		}
		var parents []*pipeline
		for _, r := range retired {
			if !r.hi.less(s.lo) && !s.hi.less(r.lo) {
				parents = append(parents, r)
			}
		}
		s.pl = newPipeline(p, *s, parents)
		fresh = append(fresh, s.pl)
	}
	p.shards.Store(m)
	for _, pl := range fresh {
		p.wg.Add(1)
		go pl.run()
	}
	for _, r := range retired {
		r.retire()
	}
}

// budget bounds the bytes buffered.
type budget struct {
	used, peak atomic.Int64
	max        int64
	waiters    atomic.Int32
	mu         sync.Mutex
	wake       chan struct{} // closed and replaced when bytes are released
}

// acquire takes n bytes, waiting for room when block is set.
func (b *budget) acquire(ctx context.Context, n int64, block bool, stop <-chan struct{}) error {
	for {
		if v := b.used.Add(n); v <= b.max {
			for pk := b.peak.Load(); v > pk && !b.peak.CompareAndSwap(pk, v); pk = b.peak.Load() {
			}
			return nil
		}
		b.used.Add(-n)
		if !block {
			return ErrBufferFull
		}
		b.mu.Lock()
		b.waiters.Add(1)
		if b.wake == nil {
			b.wake = make(chan struct{})
		}
		ch := b.wake
		b.mu.Unlock()
		// Bytes released between the failed Add and now closed no
		// channel this waiter holds: look again before sleeping.
		if b.used.Load()+n <= b.max {
			b.waiters.Add(-1)
			continue
		}
		select {
		case <-ch:
			b.waiters.Add(-1)
		case <-ctx.Done():
			b.waiters.Add(-1)
			return ctx.Err()
		case <-stop:
			b.waiters.Add(-1)
			return ErrClosed
		}
	}
}

// release gives back n bytes and wakes the waiters.
func (b *budget) release(n int64) {
	b.used.Add(-n)
	if b.waiters.Load() > 0 {
		b.mu.Lock()
		if b.wake != nil {
			close(b.wake)
			b.wake = nil
		}
		b.mu.Unlock()
	}
}

// epoch counts the records put between two Flush calls, plus one while
// it is the current epoch; done is closed when the count reaches zero.
type epoch struct {
	n    atomic.Int64
	done chan struct{}
}

func newEpoch() *epoch {
	e := &epoch{done: make(chan struct{})}
	e.n.Store(1)
	return e
}

func (e *epoch) release(k int64) {
	if e.n.Add(-k) == 0 {
		close(e.done)
	}
}

// acquireEpoch counts a record in the current epoch.
func (p *Producer) acquireEpoch() *epoch {
	for {
		e := p.epoch.Load()
		v := e.n.Load()
		if v > 0 && e.n.CompareAndSwap(v, v+1) {
			return e
		}
	}
}

// counters are the producer's metrics.
type counters struct {
	recordsPut, bytesPut, kinesisRecordsPut atomic.Int64
	requests, recordsRetried, recordsFailed atomic.Int64
	throttled, bufferedRecords, refreshes   atomic.Int64
}

// Metrics is a snapshot of a producer's counters since New.
type Metrics struct {
	// RecordsPut and BytesPut count the user records acknowledged and
	// their data bytes.
	RecordsPut, BytesPut int64
	// KinesisRecordsPut counts the Kinesis records acknowledged: an
	// aggregate counts one.
	KinesisRecordsPut int64
	// Requests counts PutRecords calls, failed ones included.
	Requests int64
	// RecordsRetried counts the user records sent again after a failed
	// attempt (once per retry).
	RecordsRetried int64
	// RecordsFailed counts the user records whose Result holds an error.
	RecordsFailed int64
	// Throttled counts Kinesis records refused with
	// ProvisionedThroughputExceededException (a throttled call counts
	// its records).
	Throttled int64
	// BufferedBytes and BufferedRecords are the bytes and records put and
	// not yet acknowledged or failed; PeakBufferedBytes is the most
	// BufferedBytes has been.
	BufferedBytes, BufferedRecords, PeakBufferedBytes int64
	// AverageBatchSize is the mean number of user records per
	// PutRecords call.
	AverageBatchSize float64
	// AggregationRatio is the mean number of user records per Kinesis
	// record acknowledged (1 without aggregation).
	AggregationRatio float64
	// ShardMapRefreshes counts the shard listings after the first.
	ShardMapRefreshes int64
}

// Metrics returns a snapshot of the producer's counters.
func (p *Producer) Metrics() Metrics {
	m := Metrics{
		RecordsPut:        p.m.recordsPut.Load(),
		BytesPut:          p.m.bytesPut.Load(),
		KinesisRecordsPut: p.m.kinesisRecordsPut.Load(),
		Requests:          p.m.requests.Load(),
		RecordsRetried:    p.m.recordsRetried.Load(),
		RecordsFailed:     p.m.recordsFailed.Load(),
		Throttled:         p.m.throttled.Load(),
		BufferedBytes:     p.buf.used.Load(),
		BufferedRecords:   p.m.bufferedRecords.Load(),
		PeakBufferedBytes: p.buf.peak.Load(),
		ShardMapRefreshes: p.m.refreshes.Load(),
	}
	if m.Requests > 0 {
		m.AverageBatchSize = float64(m.RecordsPut+m.RecordsRetried) / float64(m.Requests)
	}
	if m.KinesisRecordsPut > 0 {
		m.AggregationRatio = float64(m.RecordsPut) / float64(m.KinesisRecordsPut)
	}
	return m
}
