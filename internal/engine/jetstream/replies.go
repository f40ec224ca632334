package jetstream

import (
	"strconv"
	"strings"
	"sync"

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

// open returns a reply subject and the channel its answer will arrive on.
func (r *replies) open() (string, chan *nats.Msg) {
	ch := make(chan *nats.Msg, 1)
	r.mu.Lock()
	r.next++
	tok := strconv.FormatUint(r.next, 36)
	r.wait[tok] = ch
	r.mu.Unlock()
	return r.prefix + tok, ch
}

// close forgets a reply subject whose answer is no longer awaited.
func (r *replies) close(subject string) {
	r.mu.Lock()
	delete(r.wait, strings.TrimPrefix(subject, r.prefix))
	r.mu.Unlock()
}

func (r *replies) handle(m *nats.Msg) {
	tok := strings.TrimPrefix(m.Subject, r.prefix)
	r.mu.Lock()
	ch := r.wait[tok]
	delete(r.wait, tok)
	r.mu.Unlock()
	if ch != nil {
		ch <- m
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
