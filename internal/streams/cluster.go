package streams

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Several services may share one engine: the gateways of a cluster, each a
// `runnel serve` on the same NATS JetStream cluster. Every change of a
// stream is one compare-and-set, so they never corrupt each other; three
// things more make them behave as one:
//
//   - caches follow the others' changes at once: with an engine that
//     implements engine.Watcher, a change of a stream's metadata by anyone
//     marks the stream's cache entry stale;
//   - work that must be done once is done by one service, the leader,
//     elected through a metadata key with a lease (the on-demand scaler);
//   - the scaler decides from the writes of all of them: each service
//     publishes its shards' write counts under its own key every window,
//     and the leader adds them up.
//
// An engine that is not shared (no engine.Watcher) makes its only service
// the leader, and nothing is published.

// leaderKey holds the current leader: {"Owner": id, "Until": Unix ms}.
const leaderKey = "cluster/leader"

// ratesPrefix holds each service's write counts of the last window, one key
// per service: rates/<service id>.
const ratesPrefix = "cluster/rates/"

// Leader lease timing: the leader renews every leaderRenew; another service
// takes over once leaderTTL passed without a renewal.
const (
	leaderRenew = 2 * time.Second
	leaderTTL   = 10 * time.Second
)

type leaderRecord struct {
	Owner string
	Until int64 // Unix ms
}

// clusterState is the service's part in a shared engine.
type clusterState struct {
	shared bool   // the engine is shared (implements engine.Watcher)
	id     string // this service's id among those sharing the engine
	// leaderUntil is the Unix ms until which this service holds the
	// leader's lease; 0 when it does not.
	leaderUntil atomic.Int64
}

// startCluster makes the service follow the others' changes and take part
// in the leader election, when the engine is shared.
func (s *Service) startCluster(ctx context.Context) error {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	s.cluster.id = hex.EncodeToString(b)
	w, ok := s.eng.(engine.Watcher)
	if !ok {
		return nil
	}
	s.cluster.shared = true
	err := w.WatchMeta(s.ctx, metaPrefix, func(key string) {
		if key == "" {
			s.markAllStale()
			return
		}
		s.markStale(strings.TrimPrefix(key, metaPrefix))
	})
	if err != nil {
		return err
	}
	s.wg.Add(1)
	go s.campaign()
	return nil
}

// markStale makes the next use of name's cache entry read the engine.
func (s *Service) markStale(name string) {
	s.mu.Lock()
	if s.mu.stale == nil {
		s.mu.stale = make(map[string]bool)
	}
	s.mu.stale[name] = true
	s.mu.Unlock()
}

func (s *Service) markAllStale() {
	s.mu.Lock()
	for name := range s.mu.cache {
		if s.mu.stale == nil {
			s.mu.stale = make(map[string]bool)
		}
		s.mu.stale[name] = true
	}
	s.mu.Unlock()
}

// isLeader reports whether this service does the work done once.
func (s *Service) isLeader() bool {
	if !s.cluster.shared {
		return true
	}
	return s.nowMs() < s.cluster.leaderUntil.Load()
}

// campaign takes and renews the leader's lease until the service closes,
// and gives it up then.
func (s *Service) campaign() {
	defer s.wg.Done()
	t := time.NewTicker(leaderRenew)
	defer t.Stop()
	for {
		if err := s.renewLeader(s.ctx); err != nil && s.ctx.Err() == nil {
			s.logger().Warn("leader election failed", "error", err)
		}
		select {
		case <-s.stop:
			s.resign()
			return
		case <-t.C:
		}
	}
}

// renewLeader takes the lease if it is free or expired, or renews it if
// this service holds it. Each step is one compare-and-set, so two services
// never both hold it: the one whose write lands first wins, the other sees
// a version mismatch.
func (s *Service) renewLeader(ctx context.Context) error {
	meta := s.eng.Meta()
	now := s.nowMs()
	b, ver, err := meta.Get(ctx, leaderKey)
	var cur leaderRecord
	switch {
	case errors.Is(err, engine.ErrKeyNotFound):
		ver = 0
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &cur); err != nil {
			return err
		}
	}
	if ver != 0 && cur.Owner != s.cluster.id && now < cur.Until {
		s.cluster.leaderUntil.Store(0)
		return nil // someone else leads
	}
	// Our lease counts from before the write, so we stop believing in it
	// before anyone else may take it.
	next := leaderRecord{Owner: s.cluster.id, Until: now + leaderTTL.Milliseconds()}
	nb, _ := json.Marshal(next)
	if _, err := meta.Put(ctx, leaderKey, nb, ver); err != nil {
		s.cluster.leaderUntil.Store(0)
		if errors.Is(err, engine.ErrVersionMismatch) {
			return nil // another service took it or renewed it first
		}
		return err
	}
	if cur.Owner != s.cluster.id {
		s.logger().Info("this gateway now does the cluster's scaling", "gateway", s.cluster.id)
	}
	s.cluster.leaderUntil.Store(next.Until - leaderRenew.Milliseconds())
	return nil
}

// resign gives the lease up at close, so that another service takes over
// without waiting for it to expire.
func (s *Service) resign() {
	if s.cluster.leaderUntil.Swap(0) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	meta := s.eng.Meta()
	b, ver, err := meta.Get(ctx, leaderKey)
	if err != nil {
		return
	}
	var cur leaderRecord
	if json.Unmarshal(b, &cur) == nil && cur.Owner == s.cluster.id {
		_ = meta.Delete(ctx, leaderKey, ver)
	}
}

// windowRates are one service's write counts of one window, by stream id
// and shard index: [bytes, records].
type windowRates struct {
	End     int64 // Unix ms
	Secs    float64
	Streams map[string]map[int][2]int64
}

// publishRates stores this service's counts of the window just ended.
func (s *Service) publishRates(ctx context.Context, w windowRates) error {
	key := ratesPrefix + s.cluster.id
	b, _ := json.Marshal(w)
	for {
		_, ver, err := s.eng.Meta().Get(ctx, key)
		if errors.Is(err, engine.ErrKeyNotFound) {
			ver = 0
		} else if err != nil {
			return err
		}
		if _, err := s.eng.Meta().Put(ctx, key, b, ver); !errors.Is(err, engine.ErrVersionMismatch) {
			return err
		}
	}
}

// othersRates returns the other services' counts of their last windows
// that ended after since, added up by stream id and shard index.
func (s *Service) othersRates(ctx context.Context, since int64) (map[string]map[int][2]int64, error) {
	ents, err := s.eng.Meta().List(ctx, ratesPrefix)
	if err != nil {
		return nil, err
	}
	out := make(map[string]map[int][2]int64)
	for _, e := range ents {
		if e.Key == ratesPrefix+s.cluster.id {
			continue
		}
		var w windowRates
		if json.Unmarshal(e.Value, &w) != nil || w.End < since {
			continue // unreadable, or a service that stopped
		}
		for id, shards := range w.Streams {
			m := out[id]
			if m == nil {
				m = make(map[int][2]int64)
				out[id] = m
			}
			for i, c := range shards {
				m[i] = [2]int64{m[i][0] + c[0], m[i][1] + c[1]}
			}
		}
	}
	return out, nil
}
