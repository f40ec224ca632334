package jetstream

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/runnel/runnel/internal/engine"
)

// A notifier wakes the waiters of one log in this process. It listens, while
// anyone waits, on the subject the log's stream republishes the headers of
// each stored message to (so an append through any gateway wakes the
// waiters of every gateway), and to the events Seal and DeleteLog publish
// there.
type notifier struct {
	mu    sync.Mutex
	wake  chan struct{} // closed and replaced at each event
	next  uint64        // the highest Next offset seen
	event string        // "sealed" or "deleted", once seen
	refs  int
	sub   *nats.Subscription
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
	if event != "" && w.event != "deleted" {
		w.event = event
	}
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

func (w *notifier) stop() {
	if w.sub != nil {
		_ = w.sub.Unsubscribe()
	}
	w.notify(0, "")
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

// acquire returns the log's notifier, listening, for one more waiter.
func (e *Engine) acquire(name, subject string) (*notifier, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.waiters == nil {
		return nil, fmt.Errorf("jetstream: %w", engine.ErrClosed)
	}
	w := e.waiters[name]
	if w == nil {
		w = &notifier{wake: make(chan struct{})}
		sub, err := e.nc.Subscribe(subject, w.handle)
		if err != nil {
			return nil, e.wrap("wait on "+name, err)
		}
		w.sub = sub
		e.waiters[name] = w
	}
	w.refs++
	return w, nil
}

func (e *Engine) release(name string, w *notifier) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w.refs--
	if w.refs == 0 && e.waiters != nil && e.waiters[name] == w {
		delete(e.waiters, name)
		_ = w.sub.Unsubscribe()
	}
}

// appended tells this process's waiters on name that the log reached
// stream sequence seq (Next offset seq), without waiting for the
// republished notice.
func (e *Engine) appended(name string, seq uint64) {
	e.mu.Lock()
	w := e.waiters[name]
	e.mu.Unlock()
	if w != nil {
		w.notify(seq, "")
	}
}
