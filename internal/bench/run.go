package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"
)

// stats are the counters of a run, updated by producers and consumers and
// read by the progress reporter.
type stats struct {
	putCalls         atomic.Int64
	putRecords       atomic.Int64 // acknowledged
	putBytes         atomic.Int64 // data bytes acknowledged
	throttledCalls   atomic.Int64
	throttledRecords atomic.Int64
	retriedRecords   atomic.Int64
	failedRecords    atomic.Int64 // given up after the retries
	putErrors        atomic.Int64

	getCalls     atomic.Int64
	getRecords   atomic.Int64 // this run's records read (including copies)
	getBytes     atomic.Int64
	getThrottles atomic.Int64
	getErrors    atomic.Int64
	getInFlight  atomic.Int64 // GetRecords calls waiting for their answer
	lastRead     atomic.Int64 // time of the last record read, since the start

	mu struct {
		sync.Mutex
		errors map[string]int64 // error text -> count, bounded
	}
}

// maxErrorKinds bounds the distinct error texts kept.
const maxErrorKinds = 20

func (s *stats) noteError(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.errors == nil {
		s.mu.errors = make(map[string]int64)
	}
	if _, ok := s.mu.errors[text]; ok || len(s.mu.errors) < maxErrorKinds {
		s.mu.errors[text]++
	}
}

func (s *stats) putError(err error) {
	s.putErrors.Add(1)
	s.noteError("put: " + err.Error())
}

func (s *stats) recordError(code, msg string) {
	s.putErrors.Add(1)
	s.noteError("put record: " + code + ": " + msg)
}

func (s *stats) getError(err error) {
	s.getErrors.Add(1)
	s.noteError("get: " + err.Error())
}

// runner is the state of one run shared by its producers and consumers.
type runner struct {
	o      Options
	c      *clients
	stream *streamInfo
	run    uint32
	seed   uint64
	keys   *keySet
	pacer  *pacer
	stats  stats

	start     time.Time // when producers started; also the clock's origin
	startUnix int64
	deadline  time.Time // end of the producing phase; zero if none
	budget    atomic.Int64

	// readFrom is when reading starts on an existing stream, with
	// --read-after or when an iterator expired before anything was read:
	// shortly before the consumers were set up.
	readFrom time.Time
	// reading, with --read-after, is closed when the producing phase ends
	// and the consumers may start reading; nil otherwise.
	reading chan struct{}
}

// readFromMargin moves readFrom back a little, so that neither the
// millisecond precision of arrival timestamps nor a small difference
// between the clocks of the endpoint and this process skips a record. The
// records of others it lets in are ignored.
const readFromMargin = time.Second

// awaitReading blocks, with --read-after, until the producing phase ended.
// It reports false if ctx ended first.
func (r *runner) awaitReading(ctx context.Context) bool {
	if r.reading == nil {
		return ctx.Err() == nil
	}
	select {
	case <-r.reading:
		return true
	case <-ctx.Done():
		return false
	}
}

// now returns the current time in Unix nanoseconds, derived from the
// monotonic clock so that latencies never go backwards.
func (r *runner) now() int64 { return r.startUnix + int64(time.Since(r.start)) }

// take reserves up to n records of the record budget and returns how many.
func (r *runner) take(n int) int {
	if r.o.Records == 0 {
		return n
	}
	for {
		left := r.budget.Load()
		if left <= 0 {
			return 0
		}
		k := min(int64(n), left)
		if r.budget.CompareAndSwap(left, left-k) {
			return int(k)
		}
	}
}

// shardIndex maps a shard id from a put response to its index, -1 if
// unknown.
func (r *runner) shardIndex(id string) int32 {
	if i, ok := r.stream.index[id]; ok {
		return i
	}
	return -1
}

// Progress is a snapshot of a running bench, for live display.
type Progress struct {
	// Elapsed is the time since producers started.
	Elapsed time.Duration
	// Phase is "producing", then "draining" (consumers reading what is
	// left), or with --read-after "reading back".
	Phase string
	// PutRate and GetRate are records per second over the last interval.
	PutRate, GetRate float64
	// PutMiBps and GetMiBps are MiB per second over the last interval.
	PutMiBps, GetMiBps float64
	// Put and Get are the records acknowledged and read so far.
	Put, Get int64
	// PutThrottled counts put records refused for capacity so far.
	PutThrottled int64
	// GetThrottled counts read calls refused for capacity so far.
	GetThrottled int64
	// Retried counts records sent again so far.
	Retried int64
	// Errors counts failed calls and records so far.
	Errors int64
}

// Run executes one bench run with options o. progress, if not nil, is called
// about once a second from one goroutine. The report is returned even when
// the run failed after it started, with the error.
func Run(ctx context.Context, o Options, progress func(Progress)) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	var rb [12]byte
	if _, err := crand.Read(rb[:]); err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	r := &runner{o: o, run: binary.BigEndian.Uint32(rb[:4]), seed: o.Seed}
	if r.seed == 0 {
		r.seed = binary.BigEndian.Uint64(rb[4:])
	}
	r.keys = newKeySet(o.KeyPrefix, o.Keys)
	name := o.Stream
	if name == "" {
		name = fmt.Sprintf("runnel-bench-%08x", r.run)
	}
	rep := newReport(&o, name)

	c, err := newClients(ctx, &o)
	if err != nil {
		return rep.fail(err)
	}
	r.c = c
	defer c.close()
	// Bound the setup even against an endpoint that accepts connections
	// and never answers.
	setupCtx, cancelSetup := context.WithTimeout(ctx, o.SetupTimeout+o.RequestTimeout)
	defer cancelSetup()
	si, err := setupStream(setupCtx, c.control, &o, name)
	if si != nil && si.created && !o.Keep {
		defer func() {
			if err := deleteStream(c.control, name); err != nil {
				rep.Cleanup = append(rep.Cleanup, err.Error())
			}
		}()
	}
	rep.StreamCreated = si != nil && si.created
	if errors.Is(err, syscall.ECONNREFUSED) {
		err = noEndpointError(o.Endpoint, err)
	}
	if err != nil {
		return rep.fail(err)
	}
	r.stream = si
	rep.StreamReady = true
	rep.Shards = len(si.shards)

	var consumerARN string
	if o.ConsumerMode == ConsumeEFO {
		consumerARN, err = registerConsumer(setupCtx, c.control, &o, si, fmt.Sprintf("runnel-bench-%08x", r.run))
		if consumerARN != "" {
			defer func() {
				if err := deregisterConsumer(c.control, consumerARN); err != nil {
					rep.Cleanup = append(rep.Cleanup, err.Error())
				}
			}()
		}
		if err != nil {
			return rep.fail(err)
		}
	}

	dec := &recordDecoder{run: r.run, keys: r.keys, strict: si.created, verify: o.Verify}
	readers := make([]*shardReader, len(si.shards))
	for i, id := range si.shards {
		readers[i] = &shardReader{id: id, log: newShardLog(int32(i), dec)}
	}
	producers := make([]*producer, o.Producers)
	for i := range producers {
		producers[i] = newProducer(r, uint32(i))
		producers[i].ledger.count = !o.Verify
	}

	r.readFrom = time.Now().Add(-readFromMargin)
	if o.ReadAfter {
		r.reading = make(chan struct{})
	}
	g, gctx := errgroup.WithContext(ctx)
	consCtx, stopConsumers := context.WithCancel(gctx)
	defer stopConsumers()
	var ready sync.WaitGroup
	startConsumer := func(run func(context.Context, func()) error) {
		ready.Add(1)
		var once sync.Once
		g.Go(func() error {
			defer once.Do(ready.Done) // never leave the run waiting
			return run(consCtx, func() { once.Do(ready.Done) })
		})
	}
	if o.ConsumerMode == ConsumeEFO {
		for i, s := range readers {
			sub := &subscriber{r: r, consumer: consumerARN, s: s, rng: rand.New(rand.NewPCG(r.seed, uint64(1000000+i)))}
			startConsumer(sub.run)
		}
	} else {
		n := o.Consumers
		if n == 0 || n > len(readers) {
			n = len(readers)
		}
		for i := range n {
			pc := &pollConsumer{r: r, idx: i, rng: rand.New(rand.NewPCG(r.seed, uint64(1000000+i)))}
			if r.c != nil && r.c.raw != nil && r.o.consumerClient() == ClientRaw {
				pc.raw = &rawGetter{c: r.c.rawFor(i)}
			}
			for j := i; j < len(readers); j += n {
				pc.shards = append(pc.shards, readers[j])
			}
			startConsumer(pc.run)
		}
	}
	rep.Consumers = len(readers)
	if o.ConsumerMode == ConsumePoll && o.Consumers > 0 {
		rep.Consumers = min(o.Consumers, len(readers))
	}
	// A consumer that fails also marks itself ready: check the group too.
	if !waitGroup(gctx, &ready) || gctx.Err() != nil {
		stopConsumers()
		err := g.Wait()
		if err == nil {
			err = ctx.Err()
		}
		return rep.fail(err)
	}

	// Produce, measuring the server from here to the end of reading.
	meter := startMeter(&o, rep)
	rep.Started = true
	r.start = time.Now()
	r.startUnix = r.start.UnixNano()
	if o.Duration > 0 {
		r.deadline = r.start.Add(o.Duration)
	}
	r.budget.Store(o.Records)
	r.pacer = &pacer{rate: o.Rate, on: o.BurstOn, off: o.BurstOff, start: r.start}
	var producing sync.WaitGroup
	for _, p := range producers {
		producing.Add(1)
		g.Go(func() error {
			defer producing.Done()
			return p.run(gctx)
		})
	}
	var phase atomic.Value
	phase.Store("producing")
	tickCtx, stopTicker := context.WithCancel(gctx)
	var ticking sync.WaitGroup
	if progress != nil {
		ticking.Add(1)
		go func() {
			defer ticking.Done()
			r.tick(tickCtx, &phase, progress)
		}()
	}
	waitGroup(gctx, &producing)
	produced := time.Since(r.start)

	// Drain: read until as many records arrived as were acknowledged and
	// nothing more came for a moment (copies would otherwise end the drain
	// early), or nothing new arrived for the drain timeout, and no
	// GetRecords call is still answering (a large one can take a while,
	// above all with --read-after; the request timeout bounds it). With
	// --read-after the consumers start reading now.
	readStart := time.Duration(0)
	if o.ReadAfter {
		phase.Store("reading back")
		readStart = time.Since(r.start)
		close(r.reading)
	} else {
		phase.Store("draining")
	}
	settle := max(2*o.PollInterval, 200*time.Millisecond)
	lastGet, lastChange := r.stats.getRecords.Load(), time.Now()
	for gctx.Err() == nil {
		got := r.stats.getRecords.Load()
		if got != lastGet {
			lastGet, lastChange = got, time.Now()
		}
		quiet := time.Since(lastChange)
		if got >= r.stats.putRecords.Load() && quiet >= settle {
			break
		}
		if quiet > o.DrainTimeout && (r.stats.getInFlight.Load() == 0 || quiet > o.DrainTimeout+o.RequestTimeout) {
			break
		}
		sleep(gctx, 20*time.Millisecond)
	}
	drained := time.Since(r.start)
	stopConsumers()
	runErr := g.Wait()
	stopTicker()
	ticking.Wait()
	if meter != nil {
		if rep.Server, err = meter.finish(r.stats.putRecords.Load()); err != nil {
			rep.ServerNote = err.Error()
		}
	}

	rep.Interrupted = ctx.Err() != nil
	rep.fill(r, producers, readers, produced, readStart, drained)
	if runErr != nil {
		rep.Error = runErr.Error()
	}
	return rep, runErr
}

// startMeter starts measuring the server process the options name, or the
// one listening on a loopback endpoint's port; it returns nil, with the
// reason in rep.ServerNote when one was asked for, when there is none.
func startMeter(o *Options, rep *Report) *serverMeter {
	pid := o.ServerPID
	if pid < 0 {
		return nil
	}
	if pid == 0 {
		port, ok := localEndpointPort(o.Endpoint)
		if !ok {
			return nil // not a local server: nothing to say
		}
		var err error
		if pid, err = pidListeningOn(port); err != nil {
			rep.ServerNote = err.Error()
			return nil
		}
	}
	m, err := startServerMeter(pid)
	if err != nil {
		rep.ServerNote = fmt.Sprintf("process %d: %v", pid, err)
		return nil
	}
	return m
}

// tick calls progress every second until ctx ends.
func (r *runner) tick(ctx context.Context, phase *atomic.Value, progress func(Progress)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	st := &r.stats
	prev := time.Now()
	var prevPut, prevPutB, prevGet, prevGetB int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			dt := now.Sub(prev).Seconds()
			prev = now
			put, putB, get, getB := st.putRecords.Load(), st.putBytes.Load(), st.getRecords.Load(), st.getBytes.Load()
			progress(Progress{
				Elapsed:      now.Sub(r.start),
				Phase:        phase.Load().(string),
				PutRate:      float64(put-prevPut) / dt,
				PutMiBps:     float64(putB-prevPutB) / dt / (1 << 20),
				GetRate:      float64(get-prevGet) / dt,
				GetMiBps:     float64(getB-prevGetB) / dt / (1 << 20),
				Put:          put,
				Get:          get,
				PutThrottled: st.throttledRecords.Load(),
				GetThrottled: st.getThrottles.Load(),
				Retried:      st.retriedRecords.Load(),
				Errors:       st.putErrors.Load() + st.getErrors.Load(),
			})
			prevPut, prevPutB, prevGet, prevGetB = put, putB, get, getB
		}
	}
}

// waitGroup waits for wg or ctx, and reports whether wg finished first.
func waitGroup(ctx context.Context, wg *sync.WaitGroup) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}
