// Package mem is an in-memory engine: every log and every metadata key lives
// in the process and is gone when the engine is closed.
//
// It implements the full engine contract (atomic ordered appends, limits,
// seal, retention, waiting without polling, versioned metadata) and serves
// tests and the server's memory mode. Its stored unit is one appended batch:
// Trim and retention remove whole batches.
package mem

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Options configure an Engine.
type Options struct {
	// Now is the clock that stamps appended batches and drives retention.
	// Nil means time.Now.
	Now func() time.Time
	// RetentionInterval is how often the background retention pass looks for
	// expired batches. Default 1s; it must not be negative (zero means the
	// default).
	RetentionInterval time.Duration
}

// DefaultOptions returns the defaults described on each Options field.
func DefaultOptions() Options {
	return Options{
		Now:               time.Now,
		RetentionInterval: time.Second,
	}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.RetentionInterval < 0 {
		return errors.New("mem: negative retention interval")
	}
	return nil
}

// Engine is an in-memory engine.Engine. It is safe for concurrent use.
type Engine struct {
	now      func() time.Time
	interval time.Duration
	meta     *meta

	closed atomic.Bool
	stop   chan struct{}
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		logs map[string]*log
	}
}

var _ engine.Engine = (*Engine)(nil)

// New returns an empty engine and starts its retention goroutine, which Close
// stops. Zero fields of opts take their defaults; New panics if opts fail
// Validate, as that is a programming error.
func New(opts Options) *Engine {
	if err := opts.Validate(); err != nil {
		panic(err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RetentionInterval == 0 {
		opts.RetentionInterval = DefaultOptions().RetentionInterval
	}
	e := &Engine{
		now:      opts.Now,
		interval: opts.RetentionInterval,
		stop:     make(chan struct{}),
	}
	e.meta = &meta{eng: e}
	e.meta.mu.entries = make(map[string]*metaEntry)
	e.mu.logs = make(map[string]*log)
	e.wg.Add(1)
	go e.retentionLoop()
	return e
}

// nowMillis returns the clock in Unix milliseconds.
func (e *Engine) nowMillis() int64 { return e.now().UnixMilli() }

func (e *Engine) check(ctx context.Context) error {
	if e.closed.Load() {
		return engine.ErrClosed
	}
	return ctx.Err()
}

// CreateLog implements engine.Engine.
func (e *Engine) CreateLog(ctx context.Context, name string, opts engine.LogOptions) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	if !engine.ValidLogName(name) {
		return fmt.Errorf("mem: create log %q: %w", name, engine.ErrInvalidName)
	}
	if opts.Retention < 0 {
		return fmt.Errorf("mem: create log %q: negative retention", name)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return engine.ErrClosed
	}
	if _, ok := e.mu.logs[name]; ok {
		return fmt.Errorf("mem: create log %q: %w", name, engine.ErrLogExists)
	}
	l := &log{eng: e, name: name}
	l.mu.retention = opts.Retention
	e.mu.logs[name] = l
	return nil
}

// Log implements engine.Engine.
func (e *Engine) Log(ctx context.Context, name string) (engine.Log, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	if !engine.ValidLogName(name) {
		return nil, fmt.Errorf("mem: log %q: %w", name, engine.ErrInvalidName)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, engine.ErrClosed
	}
	l, ok := e.mu.logs[name]
	if !ok {
		return nil, fmt.Errorf("mem: log %q: %w", name, engine.ErrLogNotFound)
	}
	return l, nil
}

// DeleteLog implements engine.Engine.
func (e *Engine) DeleteLog(ctx context.Context, name string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	if e.closed.Load() {
		e.mu.Unlock()
		return engine.ErrClosed
	}
	l, ok := e.mu.logs[name]
	if ok {
		delete(e.mu.logs, name)
	}
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("mem: delete log %q: %w", name, engine.ErrLogNotFound)
	}
	l.mu.Lock()
	l.mu.deleted = true
	l.mu.recs = nil
	l.wakeLocked()
	l.mu.Unlock()
	return nil
}

// ListLogs implements engine.Engine.
func (e *Engine) ListLogs(ctx context.Context, prefix string) ([]string, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return nil, engine.ErrClosed
	}
	names := make([]string, 0, len(e.mu.logs))
	for name := range e.mu.logs {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Meta implements engine.Engine.
func (e *Engine) Meta() engine.Meta { return e.meta }

// Close stops the retention goroutine, wakes every waiter with
// engine.ErrClosed and drops all data. A second Close returns
// engine.ErrClosed.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed.Swap(true) {
		e.mu.Unlock()
		return engine.ErrClosed
	}
	logs := e.mu.logs
	e.mu.logs = nil
	e.mu.Unlock()

	close(e.stop)
	e.wg.Wait()
	for _, l := range logs {
		l.mu.Lock()
		l.mu.closed = true
		l.mu.recs = nil
		l.wakeLocked()
		l.mu.Unlock()
	}
	e.meta.mu.Lock()
	e.meta.mu.entries = nil
	e.meta.mu.Unlock()
	return nil
}

// retentionLoop runs until Close, trimming every log that has a retention.
func (e *Engine) retentionLoop() {
	defer e.wg.Done()
	t := time.NewTicker(e.interval)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.enforceRetention()
		}
	}
}

// enforceRetention trims every log whose retention has expired records.
func (e *Engine) enforceRetention() {
	e.mu.Lock()
	logs := make([]*log, 0, len(e.mu.logs))
	for _, l := range e.mu.logs {
		logs = append(logs, l)
	}
	e.mu.Unlock()
	now := e.nowMillis()
	for _, l := range logs {
		l.mu.Lock()
		if r := l.mu.retention; r > 0 && l.errLocked() == nil {
			l.trimLocked(now - r.Milliseconds())
		}
		l.mu.Unlock()
	}
}

// log is one in-memory log and also its handle.
type log struct {
	eng  *Engine
	name string

	// keys holds the log's engine.Keys (in a keysBox), nil when none. The
	// memory engine keeps records in plain text (nothing it holds is at
	// rest), but it asks for keys and records key ids as the disk engine
	// does, so that the service behaves the same on both.
	keys atomic.Pointer[keysBox]

	mu struct {
		sync.Mutex
		// recs are the kept records in offset order; recs[i].Offset ==
		// first+i. Key and Value of a batch share one buffer that is never
		// written after Append.
		recs []engine.StoredRecord
		// first is the trim horizon, next is one past the last offset.
		first, next uint64
		// lastTime is the newest batch time ever assigned, kept across trims
		// so that times never decrease.
		lastTime  int64
		sealed    bool
		retention time.Duration
		deleted   bool
		closed    bool
		// wake, when a waiter has made it, is closed on every change a waiter
		// cares about (append, seal, delete, close); the next waiter makes a
		// new one. Appends without waiters allocate nothing.
		wake chan struct{}
	}
}

var _ engine.Log = (*log)(nil)

type keysBox struct{ k engine.Keys }

// SetKeys implements engine.Log.
func (l *log) SetKeys(k engine.Keys) {
	if k == nil {
		l.keys.Store(nil)
		return
	}
	l.keys.Store(&keysBox{k})
}

// sealKey returns the id of the key a new batch is stored under, 0 for none.
func (l *log) sealKey(ctx context.Context) (uint32, error) {
	b := l.keys.Load()
	if b == nil {
		return 0, nil
	}
	id, aead, err := b.k.SealKey(ctx)
	if err != nil {
		return 0, fmt.Errorf("mem: append to %q: %w", l.name, err)
	}
	if aead == nil {
		return 0, nil
	}
	if id == 0 {
		return 0, fmt.Errorf("mem: append to %q: keys returned key id 0", l.name)
	}
	return id, nil
}

// checkKeys asks for the key of every encrypted batch among recs, as the
// disk engine does to decrypt them.
func (l *log) checkKeys(ctx context.Context, recs []engine.StoredRecord) error {
	var last uint32
	for _, r := range recs {
		if r.KeyID == 0 || r.KeyID == last {
			continue
		}
		b := l.keys.Load()
		if b == nil {
			return fmt.Errorf("mem: read %q at offset %d: %w", l.name, r.Offset, engine.ErrNoKeys)
		}
		if _, err := b.k.OpenKey(ctx, r.KeyID); err != nil {
			return fmt.Errorf("mem: read %q at offset %d: %w", l.name, r.Offset, err)
		}
		last = r.KeyID
	}
	return nil
}

// errLocked returns why the handle is unusable, or nil.
func (l *log) errLocked() error {
	switch {
	case l.mu.closed || l.eng.closed.Load():
		return engine.ErrClosed
	case l.mu.deleted:
		return fmt.Errorf("mem: log %q: %w", l.name, engine.ErrLogNotFound)
	}
	return nil
}

// lock checks ctx and takes the log's lock if the handle is usable.
func (l *log) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	if err := l.errLocked(); err != nil {
		l.mu.Unlock()
		return err
	}
	return nil
}

// wakeLocked wakes every waiter.
func (l *log) wakeLocked() {
	if l.mu.wake != nil {
		close(l.mu.wake)
		l.mu.wake = nil
	}
}

// Append implements engine.Log.
func (l *log) Append(ctx context.Context, recs []engine.Record) (engine.AppendResult, error) {
	if len(recs) == 0 {
		return engine.AppendResult{}, fmt.Errorf("mem: append to %q: empty batch", l.name)
	}
	if len(recs) > engine.MaxBatchRecords {
		return engine.AppendResult{}, fmt.Errorf("mem: append %d records to %q: %w", len(recs), l.name, engine.ErrTooLarge)
	}
	size := 0
	for _, r := range recs {
		size += len(r.Key) + len(r.Value)
	}
	if size > engine.MaxBatchBytes {
		return engine.AppendResult{}, fmt.Errorf("mem: append %d bytes to %q: %w", size, l.name, engine.ErrTooLarge)
	}
	keyID, err := l.sealKey(ctx)
	if err != nil {
		return engine.AppendResult{}, err
	}
	// Copy before taking the lock: the caller may reuse its slices.
	buf := make([]byte, 0, size)
	stored := make([]engine.StoredRecord, len(recs))
	for i, r := range recs {
		buf = append(buf, r.Key...)
		k := buf[len(buf)-len(r.Key):]
		buf = append(buf, r.Value...)
		v := buf[len(buf)-len(r.Value):]
		stored[i] = engine.StoredRecord{Key: k[:len(k):len(k)], Value: v[:len(v):len(v)]}
	}

	if err := l.lock(ctx); err != nil {
		return engine.AppendResult{}, err
	}
	defer l.mu.Unlock()
	if l.mu.sealed {
		return engine.AppendResult{}, fmt.Errorf("mem: append to %q: %w", l.name, engine.ErrSealed)
	}
	t := max(l.eng.nowMillis(), l.mu.lastTime)
	res := engine.AppendResult{FirstOffset: l.mu.next, Time: t}
	for i := range stored {
		stored[i].Offset = l.mu.next + uint64(i)
		stored[i].Time = t
		stored[i].KeyID = keyID
	}
	l.mu.recs = append(l.mu.recs, stored...)
	l.mu.next += uint64(len(stored))
	l.mu.lastTime = t
	l.wakeLocked()
	return res, nil
}

// Read implements engine.Log. The byte limit counts every returned record's
// key and value; only a lone first record may exceed it. A non-positive
// maxRecords means no record limit.
func (l *log) Read(ctx context.Context, from uint64, maxRecords, maxBytes int) ([]engine.StoredRecord, error) {
	out, err := l.read(ctx, from, maxRecords, maxBytes)
	if err != nil {
		return nil, err
	}
	if err := l.checkKeys(ctx, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (l *log) read(ctx context.Context, from uint64, maxRecords, maxBytes int) ([]engine.StoredRecord, error) {
	if err := l.lock(ctx); err != nil {
		return nil, err
	}
	defer l.mu.Unlock()
	from = max(from, l.mu.first)
	if from >= l.mu.next {
		return nil, nil
	}
	avail := l.mu.recs[from-l.mu.first:]
	n, size := 0, 0
	for _, r := range avail {
		if maxRecords > 0 && n == maxRecords {
			break
		}
		s := len(r.Key) + len(r.Value)
		if n > 0 && size+s > maxBytes {
			break
		}
		n++
		size += s
	}
	// The caller owns what it gets: copy into one fresh buffer.
	out := make([]engine.StoredRecord, n)
	buf := make([]byte, 0, size)
	for i, r := range avail[:n] {
		buf = append(buf, r.Key...)
		k := buf[len(buf)-len(r.Key):]
		buf = append(buf, r.Value...)
		v := buf[len(buf)-len(r.Value):]
		out[i] = engine.StoredRecord{Offset: r.Offset, Time: r.Time, KeyID: r.KeyID, Key: k[:len(k):len(k)], Value: v[:len(v):len(v)]}
	}
	return out, nil
}

// OffsetAt implements engine.Log.
func (l *log) OffsetAt(ctx context.Context, t int64) (uint64, error) {
	if err := l.lock(ctx); err != nil {
		return 0, err
	}
	defer l.mu.Unlock()
	i := sort.Search(len(l.mu.recs), func(i int) bool { return l.mu.recs[i].Time >= t })
	return l.mu.first + uint64(i), nil
}

// Info implements engine.Log.
func (l *log) Info(ctx context.Context) (engine.LogInfo, error) {
	if err := l.lock(ctx); err != nil {
		return engine.LogInfo{}, err
	}
	defer l.mu.Unlock()
	info := engine.LogInfo{
		Name:      l.name,
		First:     l.mu.first,
		Next:      l.mu.next,
		Sealed:    l.mu.sealed,
		Retention: l.mu.retention,
	}
	if n := len(l.mu.recs); n > 0 {
		info.FirstTime = l.mu.recs[0].Time
		info.LastTime = l.mu.recs[n-1].Time
	}
	return info, nil
}

// Seal implements engine.Log.
func (l *log) Seal(ctx context.Context) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	if !l.mu.sealed {
		l.mu.sealed = true
		l.wakeLocked()
	}
	return nil
}

// SetRetention implements engine.Log.
func (l *log) SetRetention(ctx context.Context, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("mem: set retention of %q: negative retention", l.name)
	}
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	l.mu.retention = d
	return nil
}

// Trim implements engine.Log. Every record older than before goes; since all
// records of a batch share one time, that is always a whole number of
// batches.
func (l *log) Trim(ctx context.Context, before int64) error {
	if err := l.lock(ctx); err != nil {
		return err
	}
	defer l.mu.Unlock()
	l.trimLocked(before)
	return nil
}

// trimLocked removes the records older than before.
func (l *log) trimLocked(before int64) {
	i := sort.Search(len(l.mu.recs), func(i int) bool { return l.mu.recs[i].Time >= before })
	if i == 0 {
		return
	}
	// Copy the rest so the trimmed prefix can be collected.
	l.mu.recs = append([]engine.StoredRecord(nil), l.mu.recs[i:]...)
	l.mu.first += uint64(i)
}

// Wait implements engine.Log.
func (l *log) Wait(ctx context.Context, next uint64) (uint64, error) {
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		l.mu.Lock()
		if l.errLocked() != nil {
			l.mu.Unlock()
			return 0, fmt.Errorf("mem: wait on %q: %w", l.name, engine.ErrClosed)
		}
		if l.mu.next > next || l.mu.sealed {
			n := l.mu.next
			l.mu.Unlock()
			return n, nil
		}
		if l.mu.wake == nil {
			l.mu.wake = make(chan struct{})
		}
		wake := l.mu.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// meta is the in-memory engine.Meta.
type meta struct {
	eng *Engine
	mu  struct {
		sync.Mutex
		entries map[string]*metaEntry
	}
}

var _ engine.Meta = (*meta)(nil)

type metaEntry struct {
	value   []byte
	version uint64
}

// lock checks ctx and the engine and takes the store's lock.
func (m *meta) lock(ctx context.Context) error {
	if err := m.eng.check(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	if m.mu.entries == nil {
		m.mu.Unlock()
		return engine.ErrClosed
	}
	return nil
}

// Get implements engine.Meta.
func (m *meta) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if err := m.lock(ctx); err != nil {
		return nil, 0, err
	}
	defer m.mu.Unlock()
	e, ok := m.mu.entries[key]
	if !ok {
		return nil, 0, fmt.Errorf("mem: get %q: %w", key, engine.ErrKeyNotFound)
	}
	return clone(e.value), e.version, nil
}

// Put implements engine.Meta.
func (m *meta) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if err := m.lock(ctx); err != nil {
		return 0, err
	}
	defer m.mu.Unlock()
	var have uint64
	if e, ok := m.mu.entries[key]; ok {
		have = e.version
	}
	if have != expect {
		return 0, fmt.Errorf("mem: put %q: have version %d, expected %d: %w", key, have, expect, engine.ErrVersionMismatch)
	}
	m.mu.entries[key] = &metaEntry{value: clone(value), version: have + 1}
	return have + 1, nil
}

// Delete implements engine.Meta.
func (m *meta) Delete(ctx context.Context, key string, expect uint64) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	e, ok := m.mu.entries[key]
	if !ok {
		return fmt.Errorf("mem: delete %q: %w", key, engine.ErrKeyNotFound)
	}
	if e.version != expect {
		return fmt.Errorf("mem: delete %q: have version %d, expected %d: %w", key, e.version, expect, engine.ErrVersionMismatch)
	}
	delete(m.mu.entries, key)
	return nil
}

// List implements engine.Meta.
func (m *meta) List(ctx context.Context, prefix string) ([]engine.Entry, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []engine.Entry
	for k, e := range m.mu.entries {
		if strings.HasPrefix(k, prefix) {
			out = append(out, engine.Entry{Key: k, Value: clone(e.value), Version: e.version})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// clone copies b; a nil or empty b stays empty.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return []byte{}
	}
	return append([]byte(nil), b...)
}
