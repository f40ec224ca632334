package jetstream

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// replies routes the answers to the engine's appends: one subscription on
// a wildcard inbox, and a channel per request waiting for its answer. An
// append publishes its records under its log's lock (so batches reach the
// stream in the order they were stamped) and waits for the answer after
// letting go of it.
type replies struct {
	prefix string
	sub    *nats.Subscription

	// drop, when set (tests), loses the answers it returns true for.
	drop func() bool

	mu   sync.Mutex
	next uint64
	wait map[string]chan *nats.Msg
}

func newReplies(nc *nats.Conn) (*replies, error) {
	r := &replies{prefix: nc.NewRespInbox() + ".", wait: make(map[string]chan *nats.Msg)}
	sub, err := nc.Subscribe(r.prefix+"*", r.handle)
	if err != nil {
		return nil, err
	}
	r.sub = sub
	return r, nil
}

// open returns a reply subject whose answer will arrive on ch. Several
// subjects may share a channel; an answer that finds it full is dropped.
func (r *replies) open(ch chan *nats.Msg) string {
	r.mu.Lock()
	r.next++
	tok := strconv.FormatUint(r.next, 36)
	r.wait[tok] = ch
	r.mu.Unlock()
	return r.prefix + tok
}

// close forgets a reply subject whose answer is no longer awaited.
func (r *replies) close(subject string) {
	r.mu.Lock()
	delete(r.wait, strings.TrimPrefix(subject, r.prefix))
	r.mu.Unlock()
}

func (r *replies) handle(m *nats.Msg) {
	if r.drop != nil && r.drop() {
		return
	}
	tok := strings.TrimPrefix(m.Subject, r.prefix)
	r.mu.Lock()
	ch := r.wait[tok]
	delete(r.wait, tok)
	r.mu.Unlock()
	if ch != nil {
		select {
		case ch <- m:
		default:
		}
	}
}

func (r *replies) stop() { _ = r.sub.Unsubscribe() }

// logLocks are the per-log locks appends take while they stamp and publish.
type logLocks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

func (l *logLocks) get(name string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = make(map[string]*sync.Mutex)
	}
	mu := l.m[name]
	if mu == nil {
		mu = new(sync.Mutex)
		l.m[name] = mu
	}
	return mu
}

// epoch is the time between two leader elections of a stream: done is
// closed when the next is reported.
type epoch struct{ done chan struct{} }

// leaderEpoch returns the channel closed at the stream's next leader
// election. Appends waiting for an answer send again then: the old leader
// may have dropped their batch without one.
func (e *Engine) leaderEpoch(stream string) <-chan struct{} {
	v, ok := e.leaders.Load(stream)
	if !ok {
		v, _ = e.leaders.LoadOrStore(stream, &atomic.Pointer[epoch]{})
	}
	p := v.(*atomic.Pointer[epoch])
	for {
		if ep := p.Load(); ep != nil {
			return ep.done
		}
		p.CompareAndSwap(nil, &epoch{done: make(chan struct{})})
	}
}

// leaderElected ends the current epoch of the stream a leader-elected
// advisory names.
func (e *Engine) leaderElected(m *nats.Msg) {
	e.endEpoch(m.Subject[strings.LastIndexByte(m.Subject, '.')+1:])
}

// reconnects is the epoch key that ends when the engine's connection to
// NATS comes back (no stream is named so).
const reconnects = ""

func (e *Engine) endEpoch(key string) {
	if v, ok := e.leaders.Load(key); ok {
		if ep := v.(*atomic.Pointer[epoch]).Swap(nil); ep != nil {
			close(ep.done)
		}
	}
}
