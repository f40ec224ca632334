package disk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"github.com/runnel/runnel/internal/engine"
)

// Engine is the embedded storage engine: one directory per log holding its
// segment files, and a bbolt file for metadata. It is safe for concurrent
// use. Open one Engine per data directory (a lock file enforces it).
type Engine struct {
	dir   string
	opts  Options
	fs    FS
	db    *bolt.DB
	files *fileCache
	com   *committer
	log   *slog.Logger

	damage damageCounters
	faults faultLog

	// opMu is held shared by every call in progress (except Wait) and
	// exclusively by Close, which thereby waits for them.
	opMu    sync.RWMutex
	closed  atomic.Bool
	closing chan struct{} // closed when Close starts; wakes waiters

	janitorStop chan struct{}
	janitorDone chan struct{}

	mu struct {
		sync.Mutex
		logs map[string]*log
	}
	nlogs atomic.Int64 // len(mu.logs), for the tail cache's shares
	// noDirect is set once the filesystem refused a direct write.
	noDirect atomic.Bool
	// tailReads counts the reads served by the tail cache (hits) and by
	// the segments (misses).
	tailReads struct{ hits, misses atomic.Uint64 }
}

var _ engine.Engine = (*Engine)(nil)

// ErrFailed is returned by Append on a log whose periodic sync failed under
// SyncInterval durability: the sync may have lost records that were already
// acknowledged, so appends are refused until the engine is reopened, which
// recovers the log from what is really on disk. (Other write and sync
// failures are undone in place; the log takes appends again once the cause
// is gone.)
var ErrFailed = errors.New("disk: log failed; reopen the engine")

// Open opens (creating if needed) the store in dir and recovers every log:
// a torn or corrupt tail is cut, a missing or stale index rebuilt. Only the
// tail of each log's last segment is read, so opening is fast whatever the
// amount stored.
func Open(dir string, opts Options) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{
		dir:         dir,
		opts:        opts,
		fs:          opts.fs(),
		log:         opts.logger(),
		closing:     make(chan struct{}),
		janitorStop: make(chan struct{}),
		janitorDone: make(chan struct{}),
	}
	e.mu.logs = make(map[string]*log)
	if err := e.fs.MkdirAll(e.logsDir(), dirPerm); err != nil {
		return nil, fmt.Errorf("disk: create %s: %w", dir, err)
	}
	db, err := openBolt(filepath.Join(dir, "meta.db"))
	if err != nil {
		return nil, err
	}
	e.db = db
	e.files = newFileCache(e.fs, opts.MaxOpenFiles)
	if err := e.recover(); err != nil {
		e.files.closeAll()
		db.Close()
		return nil, err
	}
	e.com = newCommitter(e)
	go e.janitor()
	return e, nil
}

func (e *Engine) logsDir() string { return filepath.Join(e.dir, "logs") }

// recover opens every registered log, in parallel, and removes the
// directories of logs whose creation or deletion was cut short.
func (e *Engine) recover() error {
	recs, err := loadLogRecords(e.db)
	if err != nil {
		return fmt.Errorf("disk: read log registry: %w", err)
	}
	ents, err := e.fs.ReadDir(e.logsDir())
	if err != nil {
		return fmt.Errorf("disk: list logs: %w", err)
	}
	removed := false
	for _, d := range ents {
		if _, ok := recs[d.Name()]; !ok {
			if err := e.fs.RemoveAll(filepath.Join(e.logsDir(), d.Name())); err != nil {
				return fmt.Errorf("disk: remove orphan %s: %w", d.Name(), err)
			}
			removed = true
		}
	}
	if removed {
		if err := e.fs.SyncDir(e.logsDir()); err != nil {
			return fmt.Errorf("disk: sync %s: %w", e.logsDir(), err)
		}
	}
	var g errgroup.Group
	g.SetLimit(8)
	var mu sync.Mutex
	for name, rec := range recs {
		g.Go(func() error {
			l, err := e.openLog(name, rec)
			if err != nil {
				return fmt.Errorf("disk: recover log %s: %w", name, err)
			}
			mu.Lock()
			e.mu.logs[name] = l
			e.nlogs.Store(int64(len(e.mu.logs)))
			mu.Unlock()
			return nil
		})
	}
	return g.Wait()
}

// enter registers a call in progress; false once the engine is closed.
func (e *Engine) enter() bool {
	e.opMu.RLock()
	if e.closed.Load() {
		e.opMu.RUnlock()
		return false
	}
	return true
}

func (e *Engine) leave() { e.opMu.RUnlock() }

// CreateLog implements engine.Engine.
func (e *Engine) CreateLog(ctx context.Context, name string, opts engine.LogOptions) error {
	if !engine.ValidLogName(name) {
		return fmt.Errorf("%w: %q", engine.ErrInvalidName, name)
	}
	if opts.Retention < 0 {
		return fmt.Errorf("disk: negative retention %v", opts.Retention)
	}
	if !e.enter() {
		return engine.ErrClosed
	}
	defer e.leave()
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.mu.logs[name]; ok {
		return fmt.Errorf("%w: %s", engine.ErrLogExists, name)
	}
	dir := filepath.Join(e.logsDir(), name)
	if err := e.fs.RemoveAll(dir); err != nil { // leftovers of a failed delete
		return fmt.Errorf("disk: create log %s: %w", name, err)
	}
	if err := e.fs.MkdirAll(dir, dirPerm); err != nil {
		return fmt.Errorf("disk: create log %s: %w", name, err)
	}
	if err := e.createSegmentFiles(dir, segmentHeader{Base: 0}); err != nil {
		return fmt.Errorf("disk: create log %s: %w", name, err)
	}
	if err := e.fs.SyncDir(e.logsDir()); err != nil {
		return fmt.Errorf("disk: create log %s: %w", name, err)
	}
	rec := logRecord{Retention: opts.Retention}
	if err := putLogRecord(e.db, name, rec, true); err != nil {
		return fmt.Errorf("disk: create log %s: %w", name, err)
	}
	e.mu.logs[name] = e.newLog(name, rec, []*segment{emptySegment(dir, segmentHeader{Base: 0})})
	e.nlogs.Store(int64(len(e.mu.logs)))
	return nil
}

// createSegmentFiles creates an empty segment and its index, durably.
func (e *Engine) createSegmentFiles(dir string, h segmentHeader) error {
	s := newSegment(dir, h.Base)
	for _, p := range []struct {
		path string
		data []byte
	}{{s.path, encodeSegmentHeader(h)}, {s.idxPath, encodeIndexHeader(h.Base)}} {
		f, err := e.fs.OpenFile(p.path, osCreateTrunc, filePerm)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(p.data, 0)
		if err == nil && p.path == s.path {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return e.fs.SyncDir(dir)
}

// Log implements engine.Engine.
func (e *Engine) Log(ctx context.Context, name string) (engine.Log, error) {
	if !e.enter() {
		return nil, engine.ErrClosed
	}
	defer e.leave()
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.mu.logs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %s", engine.ErrLogNotFound, name)
	}
	return l, nil
}

// DeleteLog implements engine.Engine.
func (e *Engine) DeleteLog(ctx context.Context, name string) error {
	if !e.enter() {
		return engine.ErrClosed
	}
	defer e.leave()
	e.mu.Lock()
	defer e.mu.Unlock()
	l, ok := e.mu.logs[name]
	if !ok {
		return fmt.Errorf("%w: %s", engine.ErrLogNotFound, name)
	}
	l.gate.Lock() // wait for appends in flight
	defer l.gate.Unlock()
	if err := deleteLogRecord(e.db, name); err != nil {
		return fmt.Errorf("disk: delete log %s: %w", name, err)
	}
	delete(e.mu.logs, name)
	e.nlogs.Store(int64(len(e.mu.logs)))
	l.mu.Lock()
	l.deleted = true
	l.tail.reset()
	close(l.notify)
	l.mu.Unlock()
	// The registry entry is gone, so the log is deleted even if removing its
	// files fails now: the next Open removes the orphaned directory.
	e.files.forget(l.dir+string(filepath.Separator), true)
	if err := e.fs.RemoveAll(l.dir); err == nil {
		e.fs.SyncDir(e.logsDir())
	}
	return nil
}

// ListLogs implements engine.Engine.
func (e *Engine) ListLogs(ctx context.Context, prefix string) ([]string, error) {
	if !e.enter() {
		return nil, engine.ErrClosed
	}
	defer e.leave()
	e.mu.Lock()
	defer e.mu.Unlock()
	names := []string{}
	for n := range e.mu.logs {
		if strings.HasPrefix(n, prefix) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Meta implements engine.Engine.
func (e *Engine) Meta() engine.Meta { return meta{e} }

// Close implements engine.Engine. It waits for calls in progress, writes
// and syncs everything acknowledged, and releases files and goroutines.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return engine.ErrClosed
	}
	close(e.closing)
	close(e.janitorStop)
	<-e.janitorDone
	e.opMu.Lock() // wait for calls in progress
	defer e.opMu.Unlock()
	err := e.com.close()
	e.mu.Lock()
	for _, l := range e.mu.logs {
		if l.w.seg != nil && l.w.broken == nil {
			e.com.writeIndex(&l.w) // best effort: Open rebuilds what it lacks
		}
		l.w.cutPadding(e.files)
	}
	e.mu.Unlock()
	e.files.closeAll()
	if cerr := e.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// janitor applies retention in the background until Close.
func (e *Engine) janitor() {
	defer close(e.janitorDone)
	t := time.NewTicker(e.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-e.janitorStop:
			return
		case <-t.C:
			e.applyRetention()
		}
	}
}

func (e *Engine) applyRetention() {
	e.mu.Lock()
	logs := make([]*log, 0, len(e.mu.logs))
	for _, l := range e.mu.logs {
		logs = append(logs, l)
	}
	e.mu.Unlock()
	now := e.opts.now()
	for _, l := range logs {
		select {
		case <-e.janitorStop:
			return
		default:
		}
		l.mu.RLock()
		r := l.retention
		l.mu.RUnlock()
		if r > 0 {
			l.trim(now - r.Milliseconds()) // errors resurface on the next pass
		}
	}
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
