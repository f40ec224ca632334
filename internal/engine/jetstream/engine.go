package jetstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/runnel/runnel/internal/engine"
)

// Options configure an Engine.
type Options struct {
	// Prefix starts the name of every JetStream stream, subject and bucket
	// the engine makes, so that several runnel installations (or tests) can
	// share one NATS cluster. Letters, digits, '-' and '_'. Default "RUNNEL".
	Prefix string
	// Replicas is the number of copies JetStream keeps of each log and of
	// the metadata: 1 on a single node, 3 (the default) in a cluster.
	Replicas int
	// Memory keeps logs in memory instead of files (tests only: nothing
	// survives a restart of the NATS servers).
	Memory bool
	// RequestTimeout bounds each request to JetStream when the caller's
	// context has no earlier deadline. Default 10 s.
	RequestTimeout time.Duration
	// ResendAfter is how long an append waits for JetStream's answer
	// before it sends its batch again (a leader change drops publishes
	// without an answer), plus 100 ns per byte of the batch; each resend
	// waits twice as long as the one before, up to 1 s (or the first wait,
	// if longer). A new leader for the stream makes it resend at once.
	// Resends cannot store a batch twice. Default 500 ms.
	ResendAfter time.Duration
	// Now is the clock that gives records their arrival time. Default
	// time.Now.
	Now func() time.Time
}

// DefaultOptions returns the defaults described on each Options field.
func DefaultOptions() Options {
	return Options{Prefix: "RUNNEL", Replicas: 3, RequestTimeout: 10 * time.Second, ResendAfter: 500 * time.Millisecond, Now: time.Now}
}

// Engine is the engine contract on a NATS JetStream cluster (or a single
// node): one JetStream stream per log and a key-value bucket for the
// metadata. It is safe for concurrent use, and any number of Engines (one per
// gateway process) may share one cluster.
type Engine struct {
	opts Options
	nc   *nats.Conn
	js   jetstream.JetStream
	meta *meta
	logs jetstream.KeyValue // log name -> the incarnation id of its stream

	closed atomic.Bool
	done   chan struct{}

	mu      sync.Mutex
	waiters map[string]*notifier // by stream: the logs someone waits on
	janitor *time.Timer          // sweeps idle notifiers

	stamps sync.Map // log name -> *atomic.Int64: the last arrival time given
	acked  sync.Map // stream -> *atomic.Uint64: the highest sequence acknowledged to this engine

	leaders sync.Map           // stream -> *epoch: ends when the stream elects a leader
	elected *nats.Subscription // JetStream's leader-elected advisories

	resent  atomic.Int64 // batches sent again
	located atomic.Int64 // batches found by their message id
	crypts  sync.Map     // stream -> *cryptLog: keys and nonces of encrypted logs
	locks   logLocks
	replies *replies
}

// Open returns an Engine on the NATS connection nc, creating the metadata
// bucket if it does not exist. The caller keeps ownership of nc: Close does
// not close it.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Engine, error) {
	if opts.Prefix == "" {
		opts.Prefix = "RUNNEL"
	}
	for _, c := range opts.Prefix {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("jetstream: prefix %q: use letters, digits, '-' and '_' only", opts.Prefix)
		}
	}
	if opts.Replicas <= 0 {
		opts.Replicas = 3
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = 10 * time.Second
	}
	if opts.ResendAfter <= 0 {
		opts.ResendAfter = 500 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	e := &Engine{opts: opts, nc: nc, js: js, done: make(chan struct{}), waiters: make(map[string]*notifier)}
	storage := jetstream.FileStorage
	if opts.Memory {
		storage = jetstream.MemoryStorage
	}
	octx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	kv, err := ensureBucket(octx, js, jetstream.KeyValueConfig{
		Bucket:      opts.Prefix + "_META",
		Description: "runnel metadata",
		History:     1,
		Storage:     storage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream: the metadata bucket %s_META: %w (is JetStream enabled on the NATS servers, with %d or more nodes for %d replicas?)", opts.Prefix, err, opts.Replicas, opts.Replicas)
	}
	e.meta = &meta{e: e, kv: kv}
	if e.logs, err = ensureBucket(octx, js, jetstream.KeyValueConfig{
		Bucket:      opts.Prefix + "_LOGS",
		Description: "runnel logs: the stream of each log",
		History:     1,
		Storage:     storage,
		Replicas:    opts.Replicas,
	}); err != nil {
		return nil, fmt.Errorf("jetstream: the log bucket %s_LOGS: %w", opts.Prefix, err)
	}
	// A bucket just created by another gateway may not have elected its
	// leader yet: wait until both answer a read.
	for _, kv := range []jetstream.KeyValue{kv, e.logs} {
		if err := waitAnswers(octx, kv); err != nil {
			return nil, fmt.Errorf("jetstream: the bucket %s does not answer: %w", kv.Bucket(), err)
		}
	}
	if e.replies, err = newReplies(nc); err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	if e.elected, err = nc.Subscribe("$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED.*", e.leaderElected); err != nil {
		e.replies.stop()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	// Appends in flight resend when the connection comes back; the
	// owner's own handler still runs.
	prev := nc.Opts.ReconnectedCB
	nc.SetReconnectHandler(func(c *nats.Conn) {
		e.endEpoch(reconnects)
		if prev != nil {
			prev(c)
		}
	})
	return e, nil
}

// ensureBucket returns the key-value bucket of cfg, creating it if it does
// not exist. It retries until ctx ends: after a restart of the cluster the
// bucket's stream may take a while to elect its leader.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err := js.KeyValue(actx, cfg.Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(actx, cfg)
		}
		cancel()
		if err == nil {
			return kv, nil
		}
		select {
		case <-ctx.Done():
			return nil, errors.Join(err, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitAnswers waits until the bucket answers a read (of a key that need
// not exist), retrying while its stream has no leader.
func waitAnswers(ctx context.Context, kv jetstream.KeyValue) error {
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := kv.Get(actx, "runnel-probe")
		cancel()
		if err == nil || errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (e *Engine) check() error {
	if e.closed.Load() {
		return fmt.Errorf("jetstream: %w", engine.ErrClosed)
	}
	return nil
}

// wrap adds context to an error of the NATS client, mapping a closed
// connection or engine to ErrClosed.
func (e *Engine) wrap(what string, err error) error {
	if e.closed.Load() || errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("jetstream: %s: %w", what, engine.ErrClosed)
	}
	return fmt.Errorf("jetstream: %s: %w", what, err)
}

// ctx bounds a request by RequestTimeout unless ctx ends earlier.
func (e *Engine) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < e.opts.RequestTimeout {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, e.opts.RequestTimeout)
}

// Stream metadata keys.
const (
	mdLog       = "runnel-log"       // the log's name
	mdRetention = "runnel-retention" // the retention asked for, in nanoseconds
	mdSealed    = "runnel-sealed"    // "true" once sealed
)

// minMaxAge is the shortest MaxAge JetStream accepts; a shorter retention is
// stored as asked and enforced at this bound.
const minMaxAge = 100 * time.Millisecond

func (e *Engine) streamConfig(name string, n logNames, retention time.Duration, sealed bool) jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if e.opts.Memory {
		storage = jetstream.MemoryStorage
	}
	cfg := jetstream.StreamConfig{
		Name:               n.stream,
		Description:        "runnel log " + name,
		Subjects:           n.subjects(),
		Storage:            storage,
		Replicas:           e.opts.Replicas,
		Retention:          jetstream.LimitsPolicy,
		Discard:            jetstream.DiscardOld,
		MaxAge:             maxAge(retention),
		AllowDirect:        true,
		AllowAtomicPublish: true,
		Duplicates:         duplicates(retention),
		DenyDelete:         true,
		RePublish:          &jetstream.RePublish{Source: n.subject, Destination: n.notify, HeadersOnly: true},
		Metadata: map[string]string{
			mdLog:       name,
			mdRetention: strconv.FormatInt(int64(retention), 10),
		},
	}
	if sealed {
		// A sealed log listens on a subject nobody publishes to: appends
		// find no stream, while retention and trimming go on. (JetStream's
		// own Sealed flag would stop retention too.)
		cfg.Subjects = []string{n.sealed}
		cfg.RePublish = nil
		cfg.Metadata[mdSealed] = "true"
	}
	return cfg
}

// duplicates is the window in which the stream stores a message id once:
// dupWindow, or the retention if shorter (JetStream requires it).
func duplicates(retention time.Duration) time.Duration {
	if a := maxAge(retention); a > 0 && a < dupWindow {
		return a
	}
	return dupWindow
}

func maxAge(retention time.Duration) time.Duration {
	if retention <= 0 {
		return 0
	}
	return max(retention, minMaxAge)
}

func (e *Engine) CreateLog(ctx context.Context, name string, opts engine.LogOptions) error {
	if err := e.check(); err != nil {
		return err
	}
	if !engine.ValidLogName(name) {
		return fmt.Errorf("jetstream: %q: %w", name, engine.ErrInvalidName)
	}
	if opts.Retention < 0 {
		return fmt.Errorf("jetstream: negative retention %v", opts.Retention)
	}
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	// Most calls for a log that exists (callers repeat creations to finish
	// what a crash interrupted) end here, without making a stream.
	if old, _, err := e.lookup(ctx, name); err == nil {
		if _, err := e.js.Stream(ctx, old.stream); err == nil {
			return fmt.Errorf("jetstream: log %q: %w", name, engine.ErrLogExists)
		}
	}
	n := e.names(name, nuid.Next()+batchEnds)
	if _, err := e.js.CreateStream(ctx, e.streamConfig(name, n, opts.Retention, false)); err != nil {
		return e.wrap("create log "+name, err)
	}
	// The registry entry decides which of two concurrent creators made
	// the log; the other removes its stream.
	key := encodeSegment(name)
	_, err := e.logs.Create(ctx, key, []byte(n.id))
	if errors.Is(err, jetstream.ErrKeyExists) {
		err = e.replaceOrphan(ctx, name, n.id)
	}
	if err != nil {
		_ = e.js.DeleteStream(context.WithoutCancel(ctx), n.stream)
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, engine.ErrLogExists) {
			return fmt.Errorf("jetstream: log %q: %w", name, engine.ErrLogExists)
		}
		return e.wrap("create log "+name, err)
	}
	return nil
}

// replaceOrphan takes over the registry entry of name for incarnation id if
// the entry names a stream that does not exist (its creator or deleter
// stopped half-way), or fails with ErrLogExists.
func (e *Engine) replaceOrphan(ctx context.Context, name, id string) error {
	id0, rev, err := e.kvGet(ctx, e.logs, encodeSegment(name))
	if err != nil {
		return err
	}
	old := e.names(name, string(id0))
	if _, err := e.js.Stream(ctx, old.stream); !errors.Is(err, jetstream.ErrStreamNotFound) {
		if err != nil {
			return err
		}
		return engine.ErrLogExists
	}
	_, err = e.logs.Update(ctx, encodeSegment(name), []byte(id), rev)
	return err
}

// lookup returns the names of the current incarnation of log name.
func (e *Engine) lookup(ctx context.Context, name string) (logNames, uint64, error) {
	if !engine.ValidLogName(name) {
		return logNames{}, 0, fmt.Errorf("jetstream: log %q: %w", name, engine.ErrLogNotFound)
	}
	id, rev, err := e.kvGet(ctx, e.logs, encodeSegment(name))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return logNames{}, 0, fmt.Errorf("jetstream: log %q: %w", name, engine.ErrLogNotFound)
	}
	if err != nil {
		return logNames{}, 0, e.wrap("log "+name, err)
	}
	return e.names(name, string(id)), rev, nil
}

func (e *Engine) Log(ctx context.Context, name string) (engine.Log, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	n, _, err := e.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	if _, err := e.js.Stream(ctx, n.stream); err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("jetstream: log %q: %w", name, engine.ErrLogNotFound)
		}
		return nil, e.wrap("log "+name, err)
	}
	return &log{e: e, name: name, n: n}, nil
}

func (e *Engine) DeleteLog(ctx context.Context, name string) error {
	if err := e.check(); err != nil {
		return err
	}
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	n, rev, err := e.lookup(ctx, name)
	if err != nil {
		return err
	}
	err = e.js.DeleteStream(ctx, n.stream)
	e.acked.Delete(n.stream)
	e.leaders.Delete(n.stream)
	if err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return e.wrap("delete log "+name, err)
	}
	err = e.logs.Purge(ctx, encodeSegment(name), jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		// Deleted and created again meanwhile by someone else.
		return fmt.Errorf("jetstream: log %q: %w", name, engine.ErrLogNotFound)
	}
	if err != nil {
		return e.wrap("delete log "+name, err)
	}
	// Wake the waiters of every gateway: they find the log gone.
	_ = e.nc.PublishMsg(&nats.Msg{Subject: n.notify, Header: nats.Header{hdrEvent: []string{"deleted"}}})
	return nil
}

func (e *Engine) ListLogs(ctx context.Context, prefix string) ([]string, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	ctx, cancel := e.ctx(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		var out []string
		complete, err := e.listKV(ctx, e.logs, ">", func(ent jetstream.KeyValueEntry) error {
			if name, err := decodeKey(ent.Key()); err == nil && strings.HasPrefix(name, prefix) {
				out = append(out, name)
			}
			return nil
		})
		if err != nil {
			return nil, e.wrap("list logs", err)
		}
		if complete || attempt == listAttempts {
			sort.Strings(out)
			return slices.Compact(out), nil
		}
		// A replica that had not applied the newest creations and
		// deletions answered (as for Meta().List): ask again.
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return nil, e.wrap("list logs", ctx.Err())
		}
	}
}

func (e *Engine) Meta() engine.Meta { return e.meta }

// Close stops the engine's waiters. It does not close the NATS connection,
// which belongs to the caller; JetStream has made every acknowledged record
// as durable as its configuration promises already.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("jetstream: %w", engine.ErrClosed)
	}
	close(e.done)
	e.replies.stop()
	_ = e.elected.Unsubscribe()
	e.mu.Lock()
	if e.janitor != nil {
		e.janitor.Stop()
	}
	for _, w := range e.waiters {
		w.stop()
	}
	e.waiters = nil
	e.mu.Unlock()
	return nil
}
