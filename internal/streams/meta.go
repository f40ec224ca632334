package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/metrics"
)

// Stream statuses, as Kinesis names them.
const (
	statusCreating = "CREATING"
	statusActive   = "ACTIVE"
	statusUpdating = "UPDATING"
	statusDeleting = "DELETING"
)

// Stream modes.
const (
	modeProvisioned = "PROVISIONED"
	modeOnDemand    = "ON_DEMAND"
)

// metaPrefix prefixes the metadata key of every stream: "streams/<name>".
const metaPrefix = "streams/"

func metaKey(name string) string { return metaPrefix + name }

// streamMeta is everything runnel knows about a stream, stored as JSON under
// one metadata key. Every change is one compare-and-set of the whole value.
//
// Transitional statuses (CREATING, UPDATING, DELETING) carry the Unix-ms
// deadline Until at which they settle (to ACTIVE, or to "gone" for
// DELETING). The settled status is computed from the clock whenever the
// stream is read, so a crash during a transition changes nothing; the next
// write stores the settled status.
type streamMeta struct {
	Name    string `json:"name"`
	ID      string `json:"id"`      // unique per creation; prefixes the shard log names
	Created int64  `json:"created"` // Unix ms
	Status  string `json:"status"`
	Until   int64  `json:"until,omitempty"`
	Mode    string `json:"mode"`

	RetentionHours int32 `json:"retentionHours"`
	MaxRecordKiB   int32 `json:"maxRecordKiB"`
	WarmMiBps      int32 `json:"warmMiBps,omitempty"`
	// WarmPrevMiBps is the warm throughput before the last
	// UpdateStreamWarmThroughput, reported as current until WarmUntil
	// (Unix ms), the end of the UPDATING that change began.
	WarmPrevMiBps *int32 `json:"warmPrevMiBps,omitempty"`
	WarmUntil     int64  `json:"warmUntil,omitempty"`
	// Distribution is the record distribution strategy: "" for
	// USER_PARTITION_KEY, or AUTO (account.go).
	Distribution string `json:"distribution,omitempty"`

	// Shards lists every shard ever created, by index; shards are never
	// removed from the list (expired ones are skipped when listing).
	Shards []shardMeta `json:"shards"`

	Tags       map[string]string `json:"tags,omitempty"`
	Metrics    []string          `json:"metrics,omitempty"`
	Encryption string            `json:"encryption,omitempty"` // "" (NONE) or "KMS"
	KeyID      string            `json:"keyId,omitempty"`
	// DataKeys are the stream's data keys for encryption at rest, wrapped
	// (encryption.go), every one ever made: records stay encrypted under
	// theirs after encryption stops. DataKey is the current one's ID, 0
	// when new records are stored in plain text.
	DataKeys []dataKeyMeta `json:"dataKeys,omitempty"`
	DataKey  uint32        `json:"dataKey,omitempty"`
	Policy   string        `json:"policy,omitempty"`

	// Consumers are the enhanced fan-out consumers registered on the stream,
	// in registration order (consumers.go).
	Consumers []consumerMeta `json:"consumers,omitempty"`

	// Scalings holds the Unix-ms times of the UpdateShardCount calls of the
	// last 24 hours (for Options.ScalingsPerDay).
	Scalings []int64 `json:"scalings,omitempty"`

	// Pending is a change that takes effect when the stream leaves UPDATING
	// (resharding, encryption); nil when none is waiting. While it waits the
	// stream stays UPDATING, even past Until, until it is applied (pending.go).
	Pending *pendingChange `json:"pending,omitempty"`
}

// shardMeta describes one shard and its lineage.
type shardMeta struct {
	// Parents holds the parent shard index and, after a merge, the adjacent
	// parent's; empty for shards created with the stream.
	Parents []int  `json:"parents,omitempty"`
	Start   string `json:"start"` // decimal hash key
	End     string `json:"end"`
	Created int64  `json:"created"` // Unix ms
	// Closed is the Unix-ms time the shard was closed by resharding, 0
	// while open. EndOffset is then the log's Next offset at sealing.
	Closed    int64  `json:"closed,omitempty"`
	EndOffset uint64 `json:"endOffset,omitempty"`
}

// consumerMeta is an enhanced fan-out consumer registration. Like a stream,
// a CREATING or DELETING consumer carries the Unix-ms deadline Until at which
// it settles (to ACTIVE, or gone).
type consumerMeta struct {
	Name    string            `json:"name"`
	Created int64             `json:"created"` // Unix ms; its seconds appear in the ARN
	Status  string            `json:"status"`
	Until   int64             `json:"until,omitempty"`
	Tags    map[string]string `json:"tags,omitempty"`
	Policy  string            `json:"policy,omitempty"`
}

// settled returns the status at time now (Unix ms); "" means the stream is
// gone (its deletion has completed, whether or not the metadata is removed).
func (m *streamMeta) settled(now int64) string {
	if m.Until != 0 && now >= m.Until {
		if m.Status == statusDeleting {
			return ""
		}
		if m.Pending != nil {
			return statusUpdating // until the pending change is applied
		}
		return statusActive
	}
	return m.Status
}

// pendingDue reports whether the stream's pending change is due at now.
func (m *streamMeta) pendingDue(now int64) bool {
	return m.Pending != nil && now >= m.Until
}

// settle stores the settled status.
func (m *streamMeta) settle(now int64) {
	if st := m.settled(now); st != m.Status && st != "" {
		m.Status, m.Until = st, 0
	}
}

func (m *streamMeta) openShards() int {
	n := 0
	for i := range m.Shards {
		if m.Shards[i].Closed == 0 {
			n++
		}
	}
	return n
}

func shardID(i int) string { return fmt.Sprintf("shardId-%012d", i) }

func logName(streamID string, shard int) string { return streamID + "." + strconv.Itoa(shard) }

// stream is the decoded, cached form of a streamMeta plus the runtime state of
// its shards. Everything but the shards' runtime state is immutable; a change
// builds a new stream value.
type stream struct {
	meta    *streamMeta
	version uint64
	raw     []byte    // the stored JSON (versions restart when a stream is recreated)
	fetched time.Time // when meta was last confirmed against the engine
	arn     string
	shards  []*shard // by index
	routes  []route  // open shards, sorted by starting hash key
	// keys are the stream's data keys, shared like autoNext.
	keys *streamKeys
	// autoNext counts the records routed by the AUTO distribution strategy,
	// shared by the cache entries of one creation of the stream.
	autoNext *atomic.Uint64
	// metrics are the stream's counters; nil when the service has no
	// metrics registry.
	metrics *metrics.Stream
}

type route struct {
	start, end hashKey
	sh         *shard
}

// shard is the runtime state of one shard, shared between successive
// versions of its stream's cache entry.
type shard struct {
	index   int
	id      string
	logName string
	created uint64 // creation time, Unix seconds (for sequence numbers)
	start   hashKey
	end     hashKey

	mu   sync.Mutex
	log  engine.Log // opened lazily
	keys *shardKeys // set on log when opened

	limits *shardLimits // nil unless throughput is enforced

	// metrics are the shard's counters, set at creation; nil without a
	// metrics registry.
	metrics *metrics.Shard

	// gate orders appends against resharding: appends hold it shared and
	// check closed; resharding holds it exclusively while it reads the
	// shard's end and stores the shard closed (reshard.go).
	gate   sync.RWMutex
	closed atomic.Bool // closed by resharding
	sealed atomic.Bool // closed and its log known to be sealed
	// sealedNext is the log's Next once sealed (see sealedEnd).
	sealedNext atomic.Uint64
	// parents are the shards this one was split or merged from; a child's
	// first append waits until their logs are sealed (sealParents).
	parents       []*shard
	parentsSealed atomic.Bool

	// Bytes and records appended since the scaler last looked (scaler.go).
	inBytes, inRecords atomic.Int64
	// Bytes and records appended by this process, never reset (stats.go).
	totalBytes, totalRecords atomic.Int64
}

func (sh *shard) handle(ctx context.Context, eng engine.Engine) (engine.Log, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.log != nil {
		return sh.log, nil
	}
	l, err := eng.Log(ctx, sh.logName)
	if err != nil {
		return nil, err
	}
	l.SetKeys(sh.keys)
	sh.log = l
	return l, nil
}

// build decodes a stream cache entry, reusing the shard runtime state of prev
// when it belongs to the same creation of the stream.
func (s *Service) build(m *streamMeta, raw []byte, version uint64, prev *stream) *stream {
	st := &stream{
		meta:    m,
		raw:     raw,
		version: version,
		fetched: time.Now(),
		arn:     s.streamARN(m.Name),
		shards:  make([]*shard, len(m.Shards)),
	}
	if prev != nil && prev.meta.ID == m.ID && prev.autoNext != nil {
		st.autoNext = prev.autoNext
		st.keys = prev.keys
	} else {
		st.autoNext = new(atomic.Uint64)
		st.keys = newStreamKeys(s.opts.Keys)
	}
	st.keys.update(m)
	if m.Status == statusDeleting {
		// A deleted stream's series go at once, as its data-plane calls are
		// refused.
		s.opts.Metrics.Forget(m.Name, m.ID)
	} else {
		st.metrics = s.opts.Metrics.Stream(m.Name, m.ID)
		st.metrics.SetShardLevelMetrics(m.Metrics)
	}
	for i := range m.Shards {
		sm := &m.Shards[i]
		if prev != nil && prev.meta.ID == m.ID && i < len(prev.shards) {
			st.shards[i] = prev.shards[i]
			if sm.Closed != 0 {
				st.metrics.Shard(i, st.shards[i].id, false) // closed by resharding since
			}
		} else {
			start, _ := parseHashKey(sm.Start)
			end, _ := parseHashKey(sm.End)
			sh := &shard{
				index:   i,
				id:      shardID(i),
				logName: logName(m.ID, i),
				created: uint64(sm.Created / 1000),
				start:   start,
				end:     end,
			}
			sh.keys = &shardKeys{stream: st.keys, logName: sh.logName}
			// The server's own streams (delivery streams' hidden ones)
			// are not Kinesis streams a client could shard wider: they
			// take what the disk takes.
			if s.opts.EnforceThroughput && !Reserved(m.Name) {
				sh.limits = newShardLimits()
			}
			sh.metrics = st.metrics.Shard(i, sh.id, sm.Closed == 0)
			st.shards[i] = sh
		}
		if sm.Closed != 0 {
			st.shards[i].closed.Store(true)
		}
		if st.shards[i].parents == nil && len(sm.Parents) > 0 {
			ps := make([]*shard, 0, len(sm.Parents))
			for _, p := range sm.Parents {
				if p >= 0 && p < i {
					ps = append(ps, st.shards[p])
				}
			}
			st.shards[i].parents = ps
		}
		if sm.Closed == 0 {
			sh := st.shards[i]
			st.routes = append(st.routes, route{sh.start, sh.end, sh})
		}
	}
	sortRoutes(st.routes)
	return st
}

func sortRoutes(r []route) {
	// Insertion sort: shards are created in hash order, so this is nearly
	// always a single pass.
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && r[j].start.cmp(r[j-1].start) < 0; j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

// route returns the open shard whose range holds h, or nil.
func (st *stream) route(h hashKey) *shard {
	r := st.routes
	lo, hi := 0, len(r)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if r[mid].start.cmp(h) <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo == 0 {
		return nil
	}
	if c := r[lo-1]; c.end.cmp(h) >= 0 {
		return c.sh
	}
	return nil
}

// cacheTTL bounds how long the data plane trusts a cached stream description
// without checking the engine (only matters when several services share one
// engine; a single service updates its cache on every change it makes).
var cacheTTL = time.Second

func decodeMeta(b []byte) (*streamMeta, error) {
	m := new(streamMeta)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("streams: decode stream metadata: %w", err)
	}
	return m, nil
}

// fetch reads a stream's metadata from the engine and refreshes the cache.
// It returns nil, nil if the key does not exist.
func (s *Service) fetch(ctx context.Context, name string) (*stream, error) {
	// A change noticed from now on marks the entry stale again.
	s.mu.Lock()
	delete(s.mu.stale, name)
	s.mu.Unlock()
	b, ver, err := s.eng.Meta().Get(ctx, metaKey(name))
	if errors.Is(err, engine.ErrKeyNotFound) {
		s.mu.Lock()
		delete(s.mu.cache, name)
		s.mu.Unlock()
		s.opts.Metrics.Forget(name, "")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	prev := s.mu.cache[name]
	s.mu.Unlock()
	if prev != nil && prev.version == ver && bytes.Equal(prev.raw, b) {
		st := *prev
		st.fetched = time.Now()
		return s.store(name, &st), nil
	}
	m, err := decodeMeta(b)
	if err != nil {
		return nil, err
	}
	return s.store(name, s.build(m, b, ver, prev)), nil
}

// store puts st in the cache unless a newer version is already there, and
// returns the cached entry.
func (s *Service) store(name string, st *stream) *stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.mu.cache[name]; cur != nil && cur.meta.ID == st.meta.ID {
		if cur.version > st.version {
			return cur
		}
		if cur.version == st.version && !sameShards(cur, st) {
			// The same metadata built twice, by a caller that found no
			// entry to build from (a background list racing the stream's
			// creation): keep the entry callers already use, so that its
			// shards' state (throughput buckets, sealing, counters) is
			// not lost.
			return cur
		}
	}
	s.mu.cache[name] = st
	return st
}

// sameShards reports whether a and b share their shards' runtime state.
func sameShards(a, b *stream) bool {
	return len(a.shards) == 0 || len(b.shards) == 0 || a.shards[0] == b.shards[0]
}

// cached returns the stream from the cache when fresh enough, else from the
// engine. It returns nil, nil if the stream does not exist.
func (s *Service) cached(ctx context.Context, name string) (*stream, error) {
	s.mu.Lock()
	st := s.mu.cache[name]
	stale := s.mu.stale[name]
	s.mu.Unlock()
	if st != nil && !stale && time.Since(st.fetched) < cacheTTL {
		return st, nil
	}
	return s.fetch(ctx, name)
}

// errRetry asks update to retry after a concurrent change.
var errRetry = errors.New("streams: retry")

// errUnchanged, returned by an update function, ends the update without
// storing anything; update then returns the stream as stored.
var errUnchanged = errors.New("streams: unchanged")

// update applies fn to a fresh copy of the stream's metadata and stores the
// result with one compare-and-set, retrying on concurrent changes. fn sees the
// settled status; a pending change that is due is applied first, so fn never
// sees a stream that should have left UPDATING. A stream that does not exist
// (or whose deletion has completed) gives ResourceNotFoundException.
func (s *Service) update(ctx context.Context, name string, fn func(m *streamMeta, now int64) error) (*stream, error) {
	return s.updateMeta(ctx, name, true, fn)
}

// updateRaw is update without applying a due pending change: for the
// functions that hold append gates across the compare-and-set, which
// applying one would need too.
func (s *Service) updateRaw(ctx context.Context, name string, fn func(m *streamMeta, now int64) error) (*stream, error) {
	return s.updateMeta(ctx, name, false, fn)
}

func (s *Service) updateMeta(ctx context.Context, name string, applyDue bool, fn func(m *streamMeta, now int64) error) (*stream, error) {
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, ver, err := s.eng.Meta().Get(ctx, metaKey(name))
		if errors.Is(err, engine.ErrKeyNotFound) {
			return nil, s.errStreamNotFound(name)
		}
		if err != nil {
			return nil, err
		}
		m, err := decodeMeta(b)
		if err != nil {
			return nil, err
		}
		now := s.nowMs()
		if m.settled(now) == "" {
			return nil, s.errStreamNotFound(name)
		}
		if applyDue && m.pendingDue(now) {
			if _, err := s.applyPending(ctx, name); err != nil {
				return nil, err
			}
			continue
		}
		m.settle(now)
		if err := fn(m, now); err != nil {
			if errors.Is(err, errRetry) && attempt < 1000 {
				continue
			}
			if errors.Is(err, errUnchanged) {
				st, err := s.fetch(ctx, name)
				if err == nil && st == nil {
					err = s.errStreamNotFound(name)
				}
				return st, err
			}
			return nil, err
		}
		nb, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		nv, err := s.eng.Meta().Put(ctx, metaKey(name), nb, ver)
		if errors.Is(err, engine.ErrVersionMismatch) && attempt < 1000 {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		prev := s.mu.cache[name]
		s.mu.Unlock()
		return s.store(name, s.build(m, nb, nv, prev)), nil
	}
}

// listMeta returns every stream's metadata, sorted by name, reusing cached
// decodings.
func (s *Service) listMeta(ctx context.Context) ([]*stream, error) {
	ents, err := s.eng.Meta().List(ctx, metaPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*stream, 0, len(ents))
	for _, e := range ents {
		name := e.Key[len(metaPrefix):]
		s.mu.Lock()
		prev := s.mu.cache[name]
		s.mu.Unlock()
		if prev != nil && prev.version == e.Version && bytes.Equal(prev.raw, e.Value) {
			out = append(out, prev)
			continue
		}
		m, err := decodeMeta(e.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, s.store(name, s.build(m, e.Value, e.Version, prev)))
	}
	return out, nil
}
