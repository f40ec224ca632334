package jetstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/runnel/runnel/internal/engine"
)

// meta is the engine's metadata store: a JetStream key-value bucket.
//
// The contract's versions count the writes of one key (1 on creation, +1 per
// write), while the bucket's revisions are sequence numbers shared by all
// keys. Each value is therefore stored behind an 8-byte big-endian version,
// and a compare-and-set on the version is done as a compare-and-set on the
// revision the version was read at: two writers that read the same version
// race on the same revision, and the loser sees ErrVersionMismatch.
type meta struct {
	e  *Engine
	kv jetstream.KeyValue
}

func encodeValue(version uint64, value []byte) []byte {
	b := make([]byte, 8+len(value))
	binary.BigEndian.PutUint64(b, version)
	copy(b[8:], value)
	return b
}

func decodeValue(b []byte) (uint64, []byte, error) {
	if len(b) < 8 {
		return 0, nil, errors.New("jetstream: metadata value shorter than its version")
	}
	return binary.BigEndian.Uint64(b), b[8:], nil
}

// current returns key's entry: its version, value and bucket revision, or
// ErrKeyNotFound.
func (m *meta) current(ctx context.Context, key string) (uint64, []byte, uint64, error) {
	if err := m.e.check(); err != nil {
		return 0, nil, 0, err
	}
	b, rev, err := m.e.kvGet(ctx, m.kv, encodeKey(key))
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return 0, nil, 0, fmt.Errorf("jetstream: meta %q: %w", key, engine.ErrKeyNotFound)
	}
	if err != nil {
		return 0, nil, 0, m.e.wrap("meta get", err)
	}
	v, val, err := decodeValue(b)
	if err != nil {
		return 0, nil, 0, err
	}
	return v, val, rev, nil
}

func (m *meta) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	v, val, _, err := m.current(ctx, key)
	if err != nil {
		return nil, 0, err
	}
	return val, v, nil
}

func (m *meta) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	if err := m.e.check(); err != nil {
		return 0, err
	}
	k := encodeKey(key)
	for {
		if expect == 0 {
			_, err := m.kv.Create(ctx, k, encodeValue(1, value))
			if err == nil {
				return 1, nil
			}
			if errors.Is(err, jetstream.ErrKeyExists) {
				return 0, fmt.Errorf("jetstream: meta %q exists: %w", key, engine.ErrVersionMismatch)
			}
			return 0, m.e.wrap("meta create", err)
		}
		v, _, rev, err := m.current(ctx, key)
		if errors.Is(err, engine.ErrKeyNotFound) {
			return 0, fmt.Errorf("jetstream: meta %q absent, want version %d: %w", key, expect, engine.ErrVersionMismatch)
		}
		if err != nil {
			return 0, err
		}
		if v != expect {
			return 0, fmt.Errorf("jetstream: meta %q at version %d, want %d: %w", key, v, expect, engine.ErrVersionMismatch)
		}
		_, err = m.kv.Update(ctx, k, encodeValue(v+1, value), rev)
		if err == nil {
			return v + 1, nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return 0, m.e.wrap("meta update", err)
		}
		// The revision moved: another write came in between. Look again;
		// the version decides.
	}
}

func (m *meta) Delete(ctx context.Context, key string, expect uint64) error {
	k := encodeKey(key)
	for {
		v, _, rev, err := m.current(ctx, key)
		if err != nil {
			return err
		}
		if v != expect {
			return fmt.Errorf("jetstream: meta %q at version %d, want %d: %w", key, v, expect, engine.ErrVersionMismatch)
		}
		err = m.kv.Purge(ctx, k, jetstream.LastRevision(rev))
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
			return m.e.wrap("meta delete", err)
		}
	}
}

func (m *meta) List(ctx context.Context, prefix string) ([]engine.Entry, error) {
	if err := m.e.check(); err != nil {
		return nil, err
	}
	filter := ">"
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		filter = encodeKey(prefix[:i]) + ".>"
	}
	for attempt := 1; ; attempt++ {
		out, complete, err := m.list(ctx, prefix, filter)
		if err != nil || complete || attempt == listAttempts {
			return out, err
		}
		// The replica that answered had not applied the newest writes
		// yet: ask again, a few times (a replica catches up within
		// milliseconds; one that does not is no worse than one list).
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return nil, m.e.wrap("meta list", ctx.Err())
		}
	}
}

// WatchMeta implements engine.Watcher with a watch of the bucket: JetStream
// delivers every change in order; if the watch ends (the connection was
// lost for longer than the client waits), it is started again and fn("")
// says that changes may have been missed.
func (e *Engine) WatchMeta(ctx context.Context, prefix string, fn func(key string)) error {
	if err := e.check(); err != nil {
		return err
	}
	filter := ">"
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		filter = encodeKey(prefix[:i]) + ".>"
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	start := func() (jetstream.KeyWatcher, error) {
		return e.meta.kv.Watch(wctx, filter, jetstream.UpdatesOnly(), jetstream.MetaOnly())
	}
	w, err := start()
	if err != nil {
		stop()
		cancel()
		return e.wrap("watch metadata", err)
	}
	go func() {
		defer cancel()
		defer stop()
		for {
			select {
			case ent, ok := <-w.Updates():
				if !ok {
					// The watch ended under us: start another, and say
					// that changes may have been missed meanwhile.
					_ = w.Stop()
					for {
						select {
						case <-wctx.Done():
							return
						case <-e.done:
							return
						case <-time.After(time.Second):
						}
						if nw, err := start(); err == nil {
							w = nw
							break
						}
					}
					fn("")
					continue
				}
				if ent == nil {
					continue
				}
				if key, err := decodeKey(ent.Key()); err == nil && strings.HasPrefix(key, prefix) {
					fn(key)
				}
			case <-wctx.Done():
				_ = w.Stop()
				return
			case <-e.done:
				_ = w.Stop()
				return
			}
		}
	}()
	return nil
}

// listAttempts bounds how often List reads again a list that missed the
// leader's last write.
const listAttempts = 10

// list reads the keys under filter that start with prefix, through a watch
// of their latest values. The watch may be served by a replica that lags:
// complete reports whether it reached the last write under filter that the
// bucket's leader knows of (in a cluster; on one node always).
func (m *meta) list(ctx context.Context, prefix, filter string) (out []engine.Entry, complete bool, err error) {
	complete, err = m.e.listKV(ctx, m.kv, filter, func(ent jetstream.KeyValueEntry) error {
		key, err := decodeKey(ent.Key())
		if err != nil || !strings.HasPrefix(key, prefix) {
			return nil
		}
		v, val, err := decodeValue(ent.Value())
		if err != nil {
			return err
		}
		out = append(out, engine.Entry{Key: key, Value: val, Version: v})
		return nil
	})
	if err != nil {
		return nil, false, m.e.wrap("meta list", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, complete, nil
}

// listKV calls fn with the present entry of every key of a bucket under
// filter, as a watch of the bucket gives them, and reports whether the
// list is complete: whether it reached the bucket leader's last write (a
// replica may answer before it has applied the newest writes; the caller
// then lists again). Without replicas every list is complete.
func (e *Engine) listKV(ctx context.Context, kv jetstream.KeyValue, filter string, fn func(jetstream.KeyValueEntry) error) (complete bool, err error) {
	var last uint64 // 0 when there is no leader to ask: the watch's answer stands
	if e.opts.Replicas > 1 {
		last, _, _, _ = e.leaderLastMsg(ctx, kv.Bucket(), filter)
	}
	w, err := kv.Watch(ctx, filter)
	if err != nil {
		return false, err
	}
	defer w.Stop()
	var seen uint64 // the newest revision the watch gave, deletions included
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case ent, ok := <-w.Updates():
			if !ok {
				return false, errors.New("watch ended")
			}
			if ent == nil {
				return seen >= last, nil
			}
			seen = max(seen, ent.Revision())
			if ent.Operation() != jetstream.KeyValuePut {
				continue
			}
			if err := fn(ent); err != nil {
				return false, err
			}
		}
	}
}
