package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/runnel/runnel/internal/engine"
)

// Events a notifier reports.
const (
	evSealed  = "sealed"
	evDeleted = "deleted"
	evCheck   = "check" // the stream's configuration changed: ask the leader
)

// A notifier wakes the waiters of one log in this process. It listens, while
// anyone waits and for a while after, on the subject the log's stream
// republishes the headers of each stored message to (so an append through
// any gateway wakes the waiters of every gateway), to the events Seal and
// DeleteLog publish there, and to JetStream's advisories of the stream's
// updates and deletion.
type notifier struct {
	name string

	// subs, like the fields below, is guarded by mu.
	subs []*nats.Subscription

	mu       sync.Mutex
	wake     chan struct{} // closed and replaced at each event
	next     uint64        // the highest Next offset seen
	event    string        // the last event, "" once handled
	refs     int
	lastUsed time.Time
	fresh    bool // no backstop look done yet since the subscriptions began
	stopped  bool

	// ready is closed once the first waiter started the notifier, with
	// startErr set if that failed.
	ready    chan struct{}
	startErr error
}

func (w *notifier) snapshot() (<-chan struct{}, uint64, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wake, w.next, w.event
}

// saw records that the log's Next offset is at least next.
func (w *notifier) saw(next uint64) {
	w.mu.Lock()
	if next > w.next {
		w.next = next
	}
	w.mu.Unlock()
}

func (w *notifier) notify(next uint64, event string) {
	w.mu.Lock()
	if next > w.next {
		w.next = next
	}
	// A deletion and a seal are final; a check may be superseded by one.
	if event != "" && w.event != evDeleted && !(w.event == evSealed && event == evCheck) {
		w.event = event
	}
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

// firstBackstop is how long a waiter waits before its first look without
// a notice: short while the subscriptions are new.
func (w *notifier) firstBackstop() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fresh {
		w.fresh = false
		return 250 * time.Millisecond
	}
	return backstop
}

// refresh asks the stream's leader for the log's state and records it.
func (w *notifier) refresh(ctx context.Context, l *log) error {
	sctx, cancel := l.e.ctx(ctx)
	s, err := l.state(sctx)
	cancel()
	if errors.Is(err, engine.ErrLogNotFound) {
		w.notify(0, evDeleted)
		return nil
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	if s.next > w.next {
		w.next = s.next
	}
	switch {
	case s.sealed:
		w.event = evSealed
	case w.event == evCheck:
		w.event = ""
	}
	w.mu.Unlock()
	return nil
}

func (w *notifier) handle(m *nats.Msg) {
	if ev := m.Header.Get(hdrEvent); ev != "" {
		w.notify(0, ev)
		return
	}
	if seq, err := strconv.ParseUint(m.Header.Get(hdrSequence), 10, 64); err == nil {
		w.notify(seq, "")
	}
}

// stop ends the subscriptions, those a start still makes included.
func (w *notifier) stop() {
	w.mu.Lock()
	subs := w.subs
	w.subs, w.stopped = nil, true
	w.mu.Unlock()
	for _, s := range subs {
		_ = s.Unsubscribe()
	}
	w.notify(0, "")
}

// notifierIdle is how long a notifier nobody waits on keeps listening, so
// that a reader that waits again and again does not subscribe each time.
const notifierIdle = 30 * time.Second

// acquire returns the log's notifier, listening, for one more waiter. The
// first waiter of a log starts its notifier (subscriptions, a flush, a look
// at the log's state: round trips) without holding the engine's lock, so
// that waiters of other logs are not held up; later ones wait for it.
func (e *Engine) acquire(ctx context.Context, l *log) (*notifier, error) {
	key := l.n.stream
	e.mu.Lock()
	if e.waiters == nil {
		e.mu.Unlock()
		return nil, fmt.Errorf("jetstream: %w", engine.ErrClosed)
	}
	if w := e.waiters[key]; w != nil {
		w.mu.Lock()
		w.refs++
		w.mu.Unlock()
		e.mu.Unlock()
		select {
		case <-w.ready:
		case <-ctx.Done():
			e.release(w)
			return nil, ctx.Err()
		}
		if w.startErr != nil {
			e.release(w)
			return nil, w.startErr
		}
		return w, nil
	}
	w := &notifier{name: key, wake: make(chan struct{}), fresh: true, refs: 1, ready: make(chan struct{})}
	e.waiters[key] = w
	if e.janitor == nil {
		e.janitor = time.AfterFunc(notifierIdle, e.sweepNotifiers)
	}
	e.mu.Unlock()
	if err := w.start(ctx, e, l); err != nil {
		w.startErr = err
		e.mu.Lock()
		if e.waiters != nil && e.waiters[key] == w {
			delete(e.waiters, key)
		}
		e.mu.Unlock()
		w.stop()
		close(w.ready)
		return nil, err
	}
	close(w.ready)
	return w, nil
}

// start subscribes to the log's notices, makes sure the server has the
// subscriptions, and learns whether the log is sealed already; from then
// on the notices tell.
func (w *notifier) start(ctx context.Context, e *Engine, l *log) error {
	for _, sub := range []struct {
		subject string
		handle  nats.MsgHandler
	}{
		{l.n.notify, w.handle},
		{"$JS.EVENT.ADVISORY.STREAM.UPDATED." + l.n.stream, func(*nats.Msg) { w.notify(0, evCheck) }},
		{"$JS.EVENT.ADVISORY.STREAM.DELETED." + l.n.stream, func(*nats.Msg) { w.notify(0, evDeleted) }},
	} {
		s, err := e.nc.Subscribe(sub.subject, sub.handle)
		if err != nil {
			return e.wrap("wait on "+l.name, err)
		}
		w.mu.Lock()
		stopped := w.stopped
		if !stopped {
			w.subs = append(w.subs, s)
		}
		w.mu.Unlock()
		if stopped { // the engine closed meanwhile
			_ = s.Unsubscribe()
			return fmt.Errorf("jetstream: %w", engine.ErrClosed)
		}
	}
	if err := e.nc.FlushWithContext(ctx); err != nil {
		return e.wrap("wait on "+l.name, err)
	}
	return w.refresh(ctx, l)
}

func (e *Engine) release(w *notifier) {
	w.mu.Lock()
	w.refs--
	w.lastUsed = time.Now()
	w.mu.Unlock()
}

// sweepNotifiers stops the notifiers nobody waited on for notifierIdle.
func (e *Engine) sweepNotifiers() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.waiters == nil {
		return
	}
	for k, w := range e.waiters {
		w.mu.Lock()
		idle := w.refs == 0 && time.Since(w.lastUsed) >= notifierIdle
		w.mu.Unlock()
		if idle {
			delete(e.waiters, k)
			w.stop()
		}
	}
	e.janitor = time.AfterFunc(notifierIdle, e.sweepNotifiers)
}

// appended tells this process's waiters on the log that it reached stream
// sequence seq (Next offset seq), without waiting for the republished
// notice.
func (e *Engine) appended(stream string, seq uint64) {
	v, _ := e.acked.LoadOrStore(stream, new(atomic.Uint64))
	for last := v.(*atomic.Uint64); ; {
		old := last.Load()
		if old >= seq || last.CompareAndSwap(old, seq) {
			break
		}
	}
	e.mu.Lock()
	w := e.waiters[stream]
	e.mu.Unlock()
	if w != nil {
		w.notify(seq, "")
	}
}

// ackedSeq returns the highest stream sequence acknowledged to this engine
// on the stream, 0 if none.
func (e *Engine) ackedSeq(stream string) uint64 {
	if v, ok := e.acked.Load(stream); ok {
		return v.(*atomic.Uint64).Load()
	}
	return 0
}
