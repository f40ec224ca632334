package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Changes that take effect at the end of UPDATING.
//
// Kinesis answers SplitShard, MergeShards, UpdateShardCount and
// Start/StopStreamEncryption at once, leaves the stream UPDATING, and makes
// the change when the stream turns ACTIVE again: until then reads and
// writes use the old shards (and the old encryption). runnel stores such a
// change in the stream's metadata as a pendingChange, in the same
// compare-and-set that puts the stream in UPDATING with its deadline
// (Until). A stream with a pending change stays UPDATING, past Until if need
// be, until the change is applied by one more compare-and-set
// (applyPending). Whoever first needs the stream after the deadline applies
// it: a read of the stream (existing, live), a control-plane change
// (update), a new reshard, or the reaper's background tick. So no one ever
// sees ACTIVE with the old shards, and the switch happens whether or not a
// client asks.
//
// Crash safety is that of resharding (reshard.go): the children's logs are
// created before the plan is stored; the plan and the switch are each one
// compare-and-set; a crash between them leaves the plan stored, applied
// when due after the restart; a crash after the switch leaves closed shards
// whose logs the start-up repair seals.

// pendingChange is a change waiting for the end of UPDATING.
type pendingChange struct {
	// First is the index the first planned shard gets: the stream's shard
	// count when the change was planned. Nothing else adds shards while a
	// change is pending.
	First int `json:"first"`
	// Shards is a resharding plan: the shards to create, in order, each
	// from one parent (a split) or two (a merge).
	Shards []plannedShard `json:"shards,omitempty"`
	// Encryption, when set, is the encryption records get from the switch
	// on ("" for none).
	Encryption *pendingEncryption `json:"encryption,omitempty"`
}

// plannedShard is one newShard of a stored plan.
type plannedShard struct {
	Parents []int  `json:"parents"`
	Start   string `json:"start"`
	End     string `json:"end"`
}

// pendingEncryption is an encryption setting waiting for the switch.
type pendingEncryption struct {
	Type  string `json:"type,omitempty"` // "" (NONE) or "KMS"
	KeyID string `json:"keyId,omitempty"`
	// DataKey is the data key new records get from the switch on (nil
	// with Type "").
	DataKey *dataKeyMeta `json:"dataKey,omitempty"`
}

func storePlan(ops []newShard) []plannedShard {
	out := make([]plannedShard, len(ops))
	for i, op := range ops {
		out[i] = plannedShard{Parents: op.parents, Start: op.start.String(), End: op.end.String()}
	}
	return out
}

func (p *pendingChange) plan() ([]newShard, error) {
	out := make([]newShard, len(p.Shards))
	for i, ps := range p.Shards {
		start, ok1 := parseHashKey(ps.Start)
		end, ok2 := parseHashKey(ps.End)
		if !ok1 || !ok2 || len(ps.Parents) == 0 || len(ps.Parents) > 2 {
			return nil, fmt.Errorf("streams: malformed pending shard %d", p.First+i)
		}
		for _, x := range ps.Parents {
			if x < 0 || x >= p.First+i {
				return nil, fmt.Errorf("streams: pending shard %d has parent %d", p.First+i, x)
			}
		}
		out[i] = newShard{parents: ps.Parents, start: start, end: end}
	}
	return out, nil
}

// beginPending stores p as m's pending change and puts m in UPDATING until
// the transition delay has passed (at once with a zero delay; the caller
// then applies it).
func (s *Service) beginPending(m *streamMeta, now int64, p *pendingChange) {
	m.Pending = p
	m.Status, m.Until = statusUpdating, now+s.opts.TransitionDelay.Milliseconds()
}

// settlePending applies the stream's pending change after a zero
// transition delay, so the call that planned it returns with it applied.
func (s *Service) settlePending(ctx context.Context, name string, st *stream) (*stream, error) {
	if s.opts.TransitionDelay > 0 {
		s.poke()
		return st, nil
	}
	return s.applyPending(ctx, name)
}

// applyDue applies the stream's pending change if it is due and returns the
// stream; st is the stream as the caller last read it.
func (s *Service) applyDue(ctx context.Context, name string, st *stream) (*stream, error) {
	if st == nil || !st.meta.pendingDue(s.nowMs()) {
		return st, nil
	}
	return s.applyPending(ctx, name)
}

// applyPending applies the stream's pending change if it is due: one
// compare-and-set closes the parents, adds the children, sets the
// encryption and turns the stream ACTIVE; then the parents' logs are
// sealed. While the compare-and-set runs the parents' append gates are
// held, so no append of this process lands in a parent after its EndOffset
// was read. It returns the stream as stored.
func (s *Service) applyPending(ctx context.Context, name string) (*stream, error) {
	// The change is the stream's, not the caller's: a request that gives
	// up (or a client that hangs up) does not leave it half done for the
	// next caller to begin again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pendingTimeout)
	defer cancel()
	var held []*shard
	release := func() {
		for _, sh := range held {
			sh.gate.Unlock()
		}
		held = held[:0]
	}
	defer release()
	var closed []int
	st, err := s.updateRaw(ctx, name, func(m *streamMeta, now int64) error {
		release() // gates of an earlier attempt
		closed = nil
		p := m.Pending
		if p == nil || now < m.Until {
			return errUnchanged // applied by someone else, or not due
		}
		if p.First != len(m.Shards) {
			return fmt.Errorf("streams: pending change of %s planned at %d shards, stream has %d", name, p.First, len(m.Shards))
		}
		ops, err := p.plan()
		if err != nil {
			return err
		}
		if len(ops) > 0 {
			// The logs exist since the plan was stored; creating them again
			// is a no-op kept for robustness.
			retention := time.Duration(m.RetentionHours) * time.Hour
			for i := range ops {
				err := s.eng.CreateLog(ctx, logName(m.ID, p.First+i), engine.LogOptions{Retention: retention})
				if err != nil && !errors.Is(err, engine.ErrLogExists) {
					return err
				}
			}
			parents := planParents(ops, p.First)
			rt, err := s.runtimeShards(ctx, name, m)
			if err != nil {
				return err
			}
			ends := make(map[int]uint64, len(parents))
			for _, x := range parents { // ascending: a fixed lock order
				sh := rt[x]
				sh.gate.Lock()
				held = append(held, sh)
				l, err := sh.handle(ctx, s.eng)
				if err != nil {
					return err
				}
				info, err := l.Info(ctx)
				if err != nil {
					return err
				}
				ends[x] = info.Next
			}
			closed = applyPlan(m, ops, now, ends)
		}
		if e := p.Encryption; e != nil {
			m.Encryption, m.KeyID = e.Type, e.KeyID
			m.DataKey = 0
			if e.DataKey != nil {
				dk := *e.DataKey
				dk.ID = nextDataKeyID(m)
				m.DataKeys = append(m.DataKeys, dk)
				m.DataKey = dk.ID
			}
		}
		m.Pending = nil
		m.Status, m.Until = statusActive, 0
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(closed) == 0 {
		return st, nil
	}
	// The new cache entry already marks the parents closed (build); appends
	// waiting on their gates now see it and route again.
	for _, i := range closed {
		st.shards[i].closed.Store(true)
	}
	release()
	s.crash(CrashReshardAfterCAS)
	if err := s.sealClosed(ctx, st); err != nil {
		return nil, err
	}
	return st, nil
}

// pendingTimeout bounds the application of a pending change.
const pendingTimeout = time.Minute

// applyAllDue applies every due pending change (the reaper's share).
func (s *Service) applyAllDue(ctx context.Context, all []*stream) error {
	now := s.nowMs()
	var errs []error
	for _, st := range all {
		if st.meta.settled(now) == "" || !st.meta.pendingDue(now) {
			continue
		}
		if _, err := s.applyPending(ctx, st.meta.Name); err != nil && !isNotFound(err) {
			errs = append(errs, fmt.Errorf("apply pending change of %s: %w", st.meta.Name, err))
		}
	}
	return errors.Join(errs...)
}

func isNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == CodeResourceNotFound
}
