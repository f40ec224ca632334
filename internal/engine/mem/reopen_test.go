package mem_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/enginetest"
	"github.com/runnel/runnel/internal/engine/mem"
)

// TestConformanceReopen runs the suite, including its Reopen tests, on views
// of one memory engine: closing a view and opening a new one on the same
// engine behaves like reopening a persistent store. This checks the suite's
// persistence tests themselves before a persistent engine runs them.
func TestConformanceReopen(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) engine.Engine {
			store := mem.New(mem.DefaultOptions())
			t.Cleanup(func() { _ = store.Close() })
			return newView(store)
		},
		Reopen: func(t *testing.T, e engine.Engine) engine.Engine {
			v := e.(*view)
			if err := v.Close(); err != nil {
				t.Fatalf("close view: %v", err)
			}
			return newView(v.store)
		},
	})
}

// view is an engine.Engine over a shared store that can be closed on its own.
type view struct {
	store *mem.Engine
	done  chan struct{}
	once  sync.Once
}

func newView(store *mem.Engine) *view { return &view{store: store, done: make(chan struct{})} }

func (v *view) closed() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

func (v *view) CreateLog(ctx context.Context, name string, opts engine.LogOptions) error {
	if v.closed() {
		return engine.ErrClosed
	}
	return v.store.CreateLog(ctx, name, opts)
}

func (v *view) Log(ctx context.Context, name string) (engine.Log, error) {
	if v.closed() {
		return nil, engine.ErrClosed
	}
	l, err := v.store.Log(ctx, name)
	if err != nil {
		return nil, err
	}
	return &viewLog{v: v, l: l}, nil
}

func (v *view) DeleteLog(ctx context.Context, name string) error {
	if v.closed() {
		return engine.ErrClosed
	}
	return v.store.DeleteLog(ctx, name)
}

func (v *view) ListLogs(ctx context.Context, prefix string) ([]string, error) {
	if v.closed() {
		return nil, engine.ErrClosed
	}
	return v.store.ListLogs(ctx, prefix)
}

func (v *view) Meta() engine.Meta { return &viewMeta{v: v, m: v.store.Meta()} }

func (v *view) Close() error {
	err := engine.ErrClosed
	v.once.Do(func() { close(v.done); err = nil })
	return err
}

type viewLog struct {
	v *view
	l engine.Log
}

func (l *viewLog) Append(ctx context.Context, recs []engine.Record) (engine.AppendResult, error) {
	if l.v.closed() {
		return engine.AppendResult{}, engine.ErrClosed
	}
	return l.l.Append(ctx, recs)
}

func (l *viewLog) Read(ctx context.Context, from uint64, maxRecords, maxBytes int) ([]engine.StoredRecord, error) {
	if l.v.closed() {
		return nil, engine.ErrClosed
	}
	return l.l.Read(ctx, from, maxRecords, maxBytes)
}

func (l *viewLog) OffsetAt(ctx context.Context, t int64) (uint64, error) {
	if l.v.closed() {
		return 0, engine.ErrClosed
	}
	return l.l.OffsetAt(ctx, t)
}

func (l *viewLog) Info(ctx context.Context) (engine.LogInfo, error) {
	if l.v.closed() {
		return engine.LogInfo{}, engine.ErrClosed
	}
	return l.l.Info(ctx)
}

func (l *viewLog) Seal(ctx context.Context) error {
	if l.v.closed() {
		return engine.ErrClosed
	}
	return l.l.Seal(ctx)
}

func (l *viewLog) SetRetention(ctx context.Context, d time.Duration) error {
	if l.v.closed() {
		return engine.ErrClosed
	}
	return l.l.SetRetention(ctx, d)
}

func (l *viewLog) Trim(ctx context.Context, before int64) error {
	if l.v.closed() {
		return engine.ErrClosed
	}
	return l.l.Trim(ctx, before)
}

func (l *viewLog) SetKeys(k engine.Keys) { l.l.SetKeys(k) }

func (l *viewLog) Wait(ctx context.Context, next uint64) (uint64, error) {
	if l.v.closed() {
		return 0, engine.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-l.v.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	n, err := l.l.Wait(ctx, next)
	if err != nil && l.v.closed() {
		return 0, engine.ErrClosed
	}
	return n, err
}

type viewMeta struct {
	v *view
	m engine.Meta
}

func (m *viewMeta) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	if m.v.closed() {
		return nil, 0, engine.ErrClosed
	}
	return m.m.Get(ctx, key)
}

func (m *viewMeta) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if m.v.closed() {
		return 0, engine.ErrClosed
	}
	return m.m.Put(ctx, key, value, expect)
}

func (m *viewMeta) Delete(ctx context.Context, key string, expect uint64) error {
	if m.v.closed() {
		return engine.ErrClosed
	}
	return m.m.Delete(ctx, key, expect)
}

func (m *viewMeta) List(ctx context.Context, prefix string) ([]engine.Entry, error) {
	if m.v.closed() {
		return nil, engine.ErrClosed
	}
	return m.m.List(ctx, prefix)
}
