package streams

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/runnel/runnel/internal/engine"
)

// Resharding.
//
// SplitShard, MergeShards, UpdateShardCount and the on-demand scaler all
// reduce to a plan: a list of new shards, each with one parent (a split) or
// two (a merge), whose parents are open shards or shards created earlier in
// the same plan. As on Kinesis a plan takes effect when the stream leaves
// UPDATING (pending.go):
//
//  1. create the new shards' logs (together, and idempotently: a log left
//     over by an attempt that never reached step 2 is reused), then one
//     compare-and-set of the stream's metadata stores the plan as its
//     pending change and puts the stream in UPDATING;
//  2. at the deadline, one compare-and-set closes the parents (Closed,
//     EndOffset) and appends the children; while it runs, the parents'
//     append gates are held, so no append of this process lands in a
//     parent after its EndOffset was read;
//  3. seal the closed shards' logs.
//
// A crash before step 1's compare-and-set leaves only unused, empty logs of
// a known stream (reused by the next reshard, deleted with the stream). A
// crash between 1 and 2 leaves the plan stored; it is applied when due. A
// crash between 2 and 3 leaves closed shards whose logs are not sealed:
// appends are refused anyway, because routing and the append gate follow
// the metadata, and the service seals them when it starts (resealAll).
// Either the change happened or it did not; no hash range is ever owned
// twice or by no one.
//
// Sequence numbers: a child's creation time is at least one whole second
// after each parent's (see childCreated), so every number of a child sorts
// above every number of its parents. A parent's Closed time equals its
// children's creation time, so with lifetimes [Created, Closed) the shards
// open at any instant tile the hash space exactly once (ListShards' AT_*
// filters, whose ends are inclusive as Kinesis documents them, list both
// generations at the very instant of a reshard). Both may lie up to a few
// seconds in the future after resharding faster than once a second.

// errShardClosed reports an append that reached a shard closed by
// resharding after the record was routed; the caller routes it again.
var errShardClosed = errors.New("streams: shard closed by resharding")

// maxStreamShards is Kinesis' limit of open shards per stream for
// UpdateShardCount.
const maxStreamShards = 10000

// newShard is one step of a plan: a shard created from its parents.
type newShard struct {
	parents    []int // shard indices, existing or created earlier in the plan
	start, end hashKey
}

// openRange is an open shard during plan computation.
type openRange struct {
	idx        int
	start, end hashKey
}

// openRanges returns the stream's open shards sorted by starting hash key.
func openRanges(m *streamMeta) []openRange {
	var out []openRange
	for i := range m.Shards {
		sm := &m.Shards[i]
		if sm.Closed != 0 {
			continue
		}
		start, _ := parseHashKey(sm.Start)
		end, _ := parseHashKey(sm.End)
		out = append(out, openRange{i, start, end})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].start.cmp(out[b].start) < 0 })
	return out
}

// planner builds a plan over a stream's open shards, tracking the shards
// the plan creates and closes.
type planner struct {
	next int // index the next created shard gets
	open []openRange
	ops  []newShard
}

func newPlanner(m *streamMeta) *planner {
	return &planner{next: len(m.Shards), open: openRanges(m)}
}

// split replaces open shard i (position in p.open) by two children, the
// second starting at at (start < at <= end).
func (p *planner) split(i int, at hashKey) {
	r := p.open[i]
	lo := openRange{p.next, r.start, at.sub(1)}
	hi := openRange{p.next + 1, at, r.end}
	p.ops = append(p.ops, newShard{[]int{r.idx}, lo.start, lo.end}, newShard{[]int{r.idx}, hi.start, hi.end})
	p.next += 2
	p.open = slices.Replace(p.open, i, i+1, lo, hi)
}

// merge replaces open shards i and i+1 (positions in p.open) by one child.
// first says which of them is the ParentShardId (the other is the adjacent
// parent).
func (p *planner) merge(i int, firstLow bool) {
	a, b := p.open[i], p.open[i+1]
	parents := []int{a.idx, b.idx}
	if !firstLow {
		parents = []int{b.idx, a.idx}
	}
	c := openRange{p.next, a.start, b.end}
	p.ops = append(p.ops, newShard{parents, c.start, c.end})
	p.next++
	p.open = slices.Replace(p.open, i, i+2, c)
}

// uniformPlan returns the splits and merges that turn the stream's open
// shards into target shards with the even ranges of a stream created with
// target shards. Every target boundary that is not a shard boundary yet
// splits the shard holding it; then the pieces of each target range merge
// pairwise, level by level.
func uniformPlan(m *streamMeta, target int) []newShard {
	p := newPlanner(m)
	ranges := evenRanges(target)
	for _, r := range ranges[1:] {
		b := r[0]
		for i, o := range p.open {
			if o.start.cmp(b) < 0 && o.end.cmp(b) >= 0 {
				p.split(i, b)
				break
			}
		}
	}
	for _, r := range ranges {
		for {
			first := -1
			n := 0
			for i, o := range p.open {
				if o.start.cmp(r[0]) >= 0 && o.end.cmp(r[1]) <= 0 {
					if first < 0 {
						first = i
					}
					n++
				}
			}
			if n <= 1 {
				break
			}
			// One level: merge pairs (first, first+1), (first+2, first+3)...
			for k := 0; k+1 < n; k += 2 {
				p.merge(first+k/2, true)
			}
		}
	}
	return p.ops
}

// childCreated is the creation time (Unix ms) of a shard made from parents
// created at parentCreated: now, but at least one whole second after every
// parent's creation second, so the child's sequence numbers (which lead with
// the creation second) sort above the parents'.
func childCreated(now int64, parentCreated ...int64) int64 {
	t := now
	for _, p := range parentCreated {
		t = max(t, (p/1000+1)*1000)
	}
	return t
}

// applyPlan adds the plan's shards to m and closes their parents. ends
// gives the EndOffset of each pre-existing shard the plan closes. It returns
// the indices of every shard the plan closes.
func applyPlan(m *streamMeta, ops []newShard, now int64, ends map[int]uint64) []int {
	var closed []int
	for _, op := range ops {
		var pc []int64
		for _, p := range op.parents {
			pc = append(pc, m.Shards[p].Created)
		}
		created := childCreated(now, pc...)
		for _, p := range op.parents {
			if m.Shards[p].Closed == 0 {
				m.Shards[p].Closed = created
				m.Shards[p].EndOffset = ends[p]
				closed = append(closed, p)
			}
		}
		m.Shards = append(m.Shards, shardMeta{
			Parents: slices.Clone(op.parents),
			Start:   op.start.String(),
			End:     op.end.String(),
			Created: created,
		})
	}
	return closed
}

// planParents returns the pre-existing shards (index < existing) a plan
// closes, sorted.
func planParents(ops []newShard, existing int) []int {
	var out []int
	for _, op := range ops {
		for _, p := range op.parents {
			if p < existing && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	slices.Sort(out)
	return out
}

// reshard plans the change that check computes from the stream's current
// metadata and stores it as the stream's pending change, putting the stream
// in UPDATING; the change takes effect when UPDATING ends (pending.go). check
// validates the request against the settled metadata and returns the plan
// (nil: nothing to change). It returns the stream as stored.
func (s *Service) reshard(ctx context.Context, name string, check func(m *streamMeta, now int64) ([]newShard, error)) (*stream, error) {
	// A change already due is applied first, so check sees the stream as a
	// client that waited for ACTIVE does.
	st, err := s.fetch(ctx, name)
	if err != nil {
		return nil, err
	}
	if _, err := s.applyDue(ctx, name, st); err != nil {
		return nil, err
	}
	var planned bool
	st, err = s.updateRaw(ctx, name, func(m *streamMeta, now int64) error {
		planned = false
		ops, err := check(m, now)
		if err != nil || len(ops) == 0 {
			return err
		}
		if m.Pending != nil { // check functions refuse an UPDATING stream
			return s.errNotActive(name, statusUpdating)
		}
		first := len(m.Shards)
		retention := time.Duration(m.RetentionHours) * time.Hour
		if err := s.createLogs(ctx, m.ID, first, len(ops), retention); err != nil {
			return err
		}
		s.crash(CrashReshardBeforeCAS)
		s.beginPending(m, now, &pendingChange{First: first, Shards: storePlan(ops)})
		planned = true
		return nil
	})
	if err != nil || !planned {
		return st, err
	}
	s.crash(CrashReshardPending)
	return s.settlePending(ctx, name, st)
}

// createLogsAtOnce is how many new shards' logs one reshard creates at the
// same time.
const createLogsAtOnce = 16

// createLogs creates the logs of n new shards from index first, reusing
// those that exist. It creates them concurrently: on a cluster with a node
// down, a new JetStream stream whose first leader was to be the lost node
// answers only after a Raft election timeout (seconds), and the waits of a
// reshard's new shards then overlap instead of adding up. Every creation
// runs to its end, so that none is cut off half-way by another's failure.
func (s *Service) createLogs(ctx context.Context, id string, first, n int, retention time.Duration) error {
	var g errgroup.Group
	g.SetLimit(createLogsAtOnce)
	for i := first; i < first+n; i++ {
		g.Go(func() error {
			err := s.eng.CreateLog(ctx, logName(id, i), engine.LogOptions{Retention: retention})
			if err != nil && !errors.Is(err, engine.ErrLogExists) {
				return err
			}
			return nil
		})
	}
	return g.Wait()
}

// runtimeShards returns the runtime shard objects of m's shards, shared with
// the data plane's cache.
func (s *Service) runtimeShards(ctx context.Context, name string, m *streamMeta) ([]*shard, error) {
	s.mu.Lock()
	st := s.mu.cache[name]
	s.mu.Unlock()
	if st == nil || st.meta.ID != m.ID || len(st.shards) < len(m.Shards) {
		var err error
		if st, err = s.fetch(ctx, name); err != nil {
			return nil, err
		}
		if st == nil || st.meta.ID != m.ID || len(st.shards) < len(m.Shards) {
			return nil, errRetry
		}
	}
	return st.shards, nil
}

// sealClosed seals the logs of st's closed shards that are not sealed yet,
// and corrects a closed shard's EndOffset should an append of another
// service sharing the engine have landed after it was read.
func (s *Service) sealClosed(ctx context.Context, st *stream) error {
	fix := map[int]uint64{}
	for i := range st.meta.Shards {
		sm := &st.meta.Shards[i]
		if sm.Closed == 0 {
			continue
		}
		end, err := s.sealedEnd(ctx, st, i)
		if errors.Is(err, engine.ErrLogNotFound) {
			continue // expired and deleted with its stream
		}
		if err != nil {
			return err
		}
		if end > sm.EndOffset {
			fix[i] = end
		}
	}
	if len(fix) == 0 {
		return nil
	}
	_, err := s.update(ctx, st.meta.Name, func(m *streamMeta, now int64) error {
		if m.ID != st.meta.ID {
			return nil
		}
		for i, end := range fix {
			if i < len(m.Shards) && m.Shards[i].Closed != 0 && m.Shards[i].EndOffset < end {
				m.Shards[i].EndOffset = end
			}
		}
		return nil
	})
	return err
}

// sealedEnd seals the log of closed shard idx, unless this process knows it
// sealed, and returns where the shard ends: its EndOffset, or the sealed
// log's Next if larger. Until the log is sealed a gateway that has not yet
// seen the shard close may still append to it, after the closing
// compare-and-set read EndOffset (sealClosed then corrects the metadata);
// so readers learn the end of a closed shard from here, never from
// EndOffset alone, and are not told it is drained before its last record.
// Sealing is idempotent: whichever gateway reads the end first seals.
func (s *Service) sealedEnd(ctx context.Context, st *stream, idx int) (uint64, error) {
	sh, sm := st.shards[idx], &st.meta.Shards[idx]
	if err := s.sealShard(ctx, sh); err != nil {
		return 0, err
	}
	return max(sm.EndOffset, sh.sealedNext.Load()), nil
}

// sealShard seals a closed shard's log (idempotent) and notes its end, once
// per shard in this process.
func (s *Service) sealShard(ctx context.Context, sh *shard) error {
	if sh.sealed.Load() {
		return nil
	}
	sh.closed.Store(true)
	l, err := sh.handle(ctx, s.eng)
	if err != nil {
		return err
	}
	if err := l.Seal(ctx); err != nil {
		return err
	}
	info, err := l.Info(ctx)
	if err != nil {
		return err
	}
	sh.sealedNext.Store(info.Next)
	sh.sealed.Store(true)
	return nil
}

// sealParents seals the logs of a child shard's parents before its first
// append in this process. With several gateways, one that has not yet seen
// a reshard's switch may still append to a parent until its log is sealed
// (see sealedEnd); were a child written first, a writer whose calls go to
// both gateways could have a later record of a key stored in the parent,
// read before an earlier one stored in the child. A child written only
// after its parents are sealed keeps every key's records in order across
// the reshard. A parent whose log is gone (expired) takes nothing.
func (s *Service) sealParents(ctx context.Context, child *shard) error {
	for _, p := range child.parents {
		if err := s.sealShard(ctx, p); err != nil && !errors.Is(err, engine.ErrLogNotFound) {
			return fmt.Errorf("streams: seal %s, parent of %s, before writing to it: %w", p.logName, child.logName, err)
		}
	}
	child.parentsSealed.Store(true)
	return nil
}

// resealAll seals every closed shard's log and gives every shard log its
// stream's retention; run when the service starts, it finishes what a crash
// interrupted between a metadata change and its application to the logs
// (resharding's seal, a retention change).
func (s *Service) resealAll(ctx context.Context) error {
	all, err := s.listMeta(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, st := range all {
		if st.meta.settled(s.nowMs()) == "" {
			continue
		}
		if err := s.sealClosed(ctx, st); err != nil {
			errs = append(errs, fmt.Errorf("seal closed shards of %s: %w", st.meta.Name, err))
		}
		if err := s.reconcileRetention(ctx, st); err != nil {
			errs = append(errs, fmt.Errorf("retention of %s: %w", st.meta.Name, err))
		}
	}
	return errors.Join(errs...)
}

// reconcileRetention sets the stream's retention on each shard log whose
// own retention differs (logs already removed by expiry are skipped).
func (s *Service) reconcileRetention(ctx context.Context, st *stream) error {
	want := time.Duration(st.meta.RetentionHours) * time.Hour
	for _, sh := range st.shards {
		l, err := sh.handle(ctx, s.eng)
		if errors.Is(err, engine.ErrLogNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		info, err := l.Info(ctx)
		if err != nil {
			return err
		}
		if info.Retention != want {
			if err := l.SetRetention(ctx, want); err != nil {
				return err
			}
		}
	}
	return nil
}

// Messages of the resharding operations, worded as Kinesis words them.

func (s *Service) errNoShard(id, name string) *Error {
	return errorf(CodeResourceNotFound, "Could not find shard %s in stream %s under account %s.", id, name, s.opts.AccountID)
}

func (s *Service) errNotEligible(id, name string) *Error {
	return errorf(CodeInvalidArgument, "Shard %s in stream %s under account %s has already been merged or split, and thus is not eligible for merging or splitting.", id, name, s.opts.AccountID)
}

func (s *Service) errOnDemand(name string) *Error {
	return errorf(CodeValidation, "Request is invalid. Stream %s under account %s is in On-Demand mode.", name, s.opts.AccountID)
}

func (s *Service) errShardLimit(open, more int) *Error {
	return errorf(CodeLimitExceeded, "This request would exceed the shard limit for the account %s in %s. Current shard count for the account: %d. Limit: %d. Number of additional shards that would have resulted from this request: %d. Refer to the AWS Service Limits page (http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for current limits and how to request higher limits.",
		s.opts.AccountID, s.opts.Region, open, s.opts.ShardLimit, more)
}

// accountOpenShards counts the account's open shards.
func (s *Service) accountOpenShards(ctx context.Context) (int, error) {
	all, err := s.listMeta(ctx)
	if err != nil {
		return 0, err
	}
	open, _ := s.accountCounts(all)
	return open, nil
}

// lookupShard resolves a shard id of a resharding request against m.
func (s *Service) lookupShard(m *streamMeta, id, name string) (int, error) {
	idx, ok := parseShardIndex(id)
	if !ok {
		return 0, s.errNoShard(id, name)
	}
	if idx >= len(m.Shards) {
		return 0, s.errNoShard(shardID(idx), name) // normalised, as Kinesis prints it
	}
	return idx, nil
}

// SplitShard closes a shard and creates two children that divide its hash
// range at NewStartingHashKey. The stream is UPDATING for the transition
// delay, at the end of which the split takes effect.
func (s *Service) SplitShard(ctx context.Context, in *SplitShardInput) error {
	if in == nil {
		in = &SplitShardInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	if in.ShardToSplit == nil {
		return errNull("shardToSplit")
	}
	if in.NewStartingHashKey == nil {
		return errNull("newStartingHashKey")
	}
	id := *in.ShardToSplit
	if _, ok := parseShardIndex(id); !ok {
		return s.errNoShard(id, name)
	}
	open, err := s.accountOpenShards(ctx)
	if err != nil {
		return err
	}
	_, err = s.reshard(ctx, name, func(m *streamMeta, now int64) ([]newShard, error) {
		idx, err := s.lookupShard(m, id, name)
		if err != nil {
			return nil, err
		}
		sid := shardID(idx)
		if m.Mode == modeOnDemand {
			return nil, s.errOnDemand(name)
		}
		if open+1 > s.opts.ShardLimit {
			return nil, s.errShardLimit(open, 1)
		}
		sm := &m.Shards[idx]
		if sm.Closed != 0 {
			return nil, s.errNotEligible(sid, name)
		}
		start, _ := parseHashKey(sm.Start)
		end, _ := parseHashKey(sm.End)
		at, ok := parseHashKey(*in.NewStartingHashKey)
		if !ok || at.cmp(start.add(1)) <= 0 || at.cmp(end) >= 0 {
			return nil, errorf(CodeInvalidArgument, "NewStartingHashKey %s used in SplitShard() on shard %s in stream %s under account %s is not both greater than one plus the shard's StartingHashKey %s and less than the shard's EndingHashKey %s.",
				*in.NewStartingHashKey, sid, name, s.opts.AccountID, sm.Start, sm.End)
		}
		if m.Status != statusActive {
			return nil, s.errNotActive(name, m.Status)
		}
		p := newPlanner(m)
		for i, o := range p.open {
			if o.idx == idx {
				p.split(i, at)
			}
		}
		return p.ops, nil
	})
	if err == nil {
		s.logger().Info("shard split", "stream", name, "shard", shardID(mustIndex(id)), "at", *in.NewStartingHashKey)
	}
	return err
}

func mustIndex(id string) int {
	i, _ := parseShardIndex(id)
	return i
}

// MergeShards closes two adjacent shards and creates one child covering
// both ranges. The stream is UPDATING for the transition delay, at the end
// of which the merge takes effect.
func (s *Service) MergeShards(ctx context.Context, in *MergeShardsInput) error {
	if in == nil {
		in = &MergeShardsInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	if in.ShardToMerge == nil {
		return errNull("shardToMerge")
	}
	if in.AdjacentShardToMerge == nil {
		return errNull("adjacentShardToMerge")
	}
	ids := [2]string{*in.ShardToMerge, *in.AdjacentShardToMerge}
	for _, id := range ids {
		if _, ok := parseShardIndex(id); !ok {
			return s.errNoShard(id, name)
		}
	}
	_, err = s.reshard(ctx, name, func(m *streamMeta, now int64) ([]newShard, error) {
		var idx [2]int
		for i, id := range ids {
			x, err := s.lookupShard(m, id, name)
			if err != nil {
				return nil, err
			}
			idx[i] = x
		}
		if m.Mode == modeOnDemand {
			return nil, s.errOnDemand(name)
		}
		for _, x := range idx {
			if m.Shards[x].Closed != 0 {
				return nil, s.errNotEligible(shardID(x), name)
			}
		}
		// ShardToMerge must be the lower of the pair: Kinesis refuses the
		// pair named the other way round (kinesalite records it, and tools
		// that merged on Kinesis had to order their pairs).
		aEnd, _ := parseHashKey(m.Shards[idx[0]].End)
		bStart, _ := parseHashKey(m.Shards[idx[1]].Start)
		if idx[0] == idx[1] || aEnd == maxHashKey || aEnd.add(1) != bStart {
			return nil, errorf(CodeInvalidArgument, "Shards %s and %s in stream %s under account %s are not an adjacent pair of shards eligible for merging",
				shardID(idx[0]), shardID(idx[1]), name, s.opts.AccountID)
		}
		if m.Status != statusActive {
			return nil, s.errNotActive(name, m.Status)
		}
		p := newPlanner(m)
		for i := 0; i+1 < len(p.open); i++ {
			if p.open[i].idx == idx[0] && p.open[i+1].idx == idx[1] {
				p.merge(i, true)
				break
			}
		}
		return p.ops, nil
	})
	if err == nil {
		s.logger().Info("shards merged", "stream", name, "shard", shardID(mustIndex(ids[0])), "adjacent", shardID(mustIndex(ids[1])))
	}
	return err
}

// scalingWindow is the rolling period of the UpdateShardCount limit.
const scalingWindow = 24 * 3600_000 // ms

// UpdateShardCount rescales a provisioned stream to TargetShardCount open
// shards with even hash ranges, through the splits and merges Kinesis would
// make, applied as one atomic change at the end of UPDATING.
func (s *Service) UpdateShardCount(ctx context.Context, in *UpdateShardCountInput) (*UpdateShardCountOutput, error) {
	if in == nil {
		in = &UpdateShardCountInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	if in.TargetShardCount == nil {
		return nil, errNull("targetShardCount")
	}
	if in.ScalingType == nil {
		return nil, errNull("scalingType")
	}
	if *in.ScalingType != "UNIFORM_SCALING" {
		return nil, errorf(CodeValidation, "1 validation error detected: Value '%s' at 'scalingType' failed to satisfy constraint: Member must satisfy enum value set: [UNIFORM_SCALING]", *in.ScalingType)
	}
	target := int(*in.TargetShardCount)
	if target < 1 {
		return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'targetShardCount' failed to satisfy constraint: Member must have value greater than or equal to 1", target)
	}
	account, err := s.accountOpenShards(ctx)
	if err != nil {
		return nil, err
	}
	var current int
	st, err := s.reshard(ctx, name, func(m *streamMeta, now int64) ([]newShard, error) {
		if m.Mode == modeOnDemand {
			return nil, s.errOnDemand(name)
		}
		if m.Status != statusActive {
			return nil, s.errNotActive(name, m.Status)
		}
		current = m.openShards()
		if target > s.opts.ShardLimit || account-current+target > s.opts.ShardLimit {
			return nil, errorf(CodeLimitExceeded, "Target shard count or number of open shards cannot be greater than %d. Current open shard count: %d, Target shard count: %d", s.opts.ShardLimit, current, target)
		}
		if target > maxStreamShards && target > current {
			return nil, errorf(CodeLimitExceeded, "UpdateShardCount cannot scale up over %d shards in a stream. Current open shard count: %d, Target shard count: %d", maxStreamShards, current, target)
		}
		if target > 2*current {
			return nil, errorf(CodeLimitExceeded, "UpdateShardCount cannot scale up over double your current open shard count. Current open shard count: %d, Target shard count: %d", current, target)
		}
		if 2*target < current {
			return nil, errorf(CodeLimitExceeded, "UpdateShardCount cannot scale down below half your current open shard count. Current open shard count: %d, Target shard count: %d", current, target)
		}
		if lim := s.opts.ScalingsPerDay; lim > 0 {
			recent := m.Scalings[:0]
			for _, t := range m.Scalings {
				if now-t < scalingWindow {
					recent = append(recent, t)
				}
			}
			m.Scalings = recent
			if len(recent) >= lim {
				return nil, errorf(CodeLimitExceeded, "Stream %s under account %s has been scaled %d times in the last 24 hours; the limit is %d per rolling 24-hour period.", name, s.opts.AccountID, len(recent), lim)
			}
		}
		ops := uniformPlan(m, target)
		if len(ops) > 0 {
			m.Scalings = append(m.Scalings, now)
		}
		return ops, nil
	})
	if err != nil {
		return nil, err
	}
	s.logger().Info("shard count updated", "stream", name, "from", current, "to", target)
	return &UpdateShardCountOutput{
		StreamName:        name,
		StreamARN:         st.arn,
		CurrentShardCount: int32(current),
		TargetShardCount:  int32(target),
	}, nil
}

// UpdateStreamMode switches a stream between PROVISIONED and ON_DEMAND
// capacity. The stream keeps its shards; an ON_DEMAND stream is then scaled
// by the service (scaler.go).
func (s *Service) UpdateStreamMode(ctx context.Context, in *UpdateStreamModeInput) error {
	if in == nil {
		in = &UpdateStreamModeInput{}
	}
	if in.StreamARN == nil {
		return errNull("streamARN")
	}
	name, err := s.streamFromARN(*in.StreamARN)
	if err != nil {
		return err
	}
	if in.StreamModeDetails == nil {
		return errNull("streamModeDetails")
	}
	if in.StreamModeDetails.StreamMode == nil {
		return errNull("streamModeDetails.streamMode")
	}
	mode := *in.StreamModeDetails.StreamMode
	if mode != modeProvisioned && mode != modeOnDemand {
		return errorf(CodeValidation, "1 validation error detected: Value '%s' at 'streamModeDetails.streamMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, ON_DEMAND]", mode)
	}
	var onDemand int
	if mode == modeOnDemand {
		all, err := s.listMeta(ctx)
		if err != nil {
			return err
		}
		_, onDemand = s.accountCounts(all)
	}
	_, err = s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status != statusActive {
			return s.errNotActive(name, m.Status)
		}
		if m.Mode == mode {
			return nil
		}
		if mode == modeOnDemand && onDemand >= s.opts.OnDemandStreamLimit {
			return errorf(CodeLimitExceeded, "This request would exceed the on-demand stream count limit for the account %s in %s. Current on-demand stream count for the account: %d. Limit: %d.",
				s.opts.AccountID, s.opts.Region, onDemand, s.opts.OnDemandStreamLimit)
		}
		m.Mode = mode
		if mode == modeProvisioned {
			m.WarmMiBps = 0
		}
		s.startUpdating(m, now)
		return nil
	})
	if err == nil {
		s.logger().Info("stream mode updated", "stream", name, "mode", mode)
	}
	return err
}

// Crash points: named steps of resharding at which Options.CrashPoint is
// called, so tests can kill the process there.
const (
	// CrashReshardBeforeCAS is after the children's logs are created and
	// before the plan is stored.
	CrashReshardBeforeCAS = "reshard-before-cas"
	// CrashReshardPending is after the plan is stored (the stream UPDATING)
	// and before it is applied.
	CrashReshardPending = "reshard-pending"
	// CrashReshardAfterCAS is after the plan was applied (the parents
	// closed, the children added) and before the parents' logs are sealed.
	CrashReshardAfterCAS = "reshard-after-cas"
)

func (s *Service) crash(point string) {
	if s.opts.CrashPoint != nil {
		s.opts.CrashPoint(point)
	}
}

// rerouteClosed routes again, with the stream's current shards, the
// records of a PutRecords request whose shard was closed by resharding
// between routing and appending, and fills in their outcomes; it takes them
// out of groupOf so the caller skips them, and returns their positions.
func (s *Service) rerouteClosed(ctx context.Context, in *PutRecordsInput, out *PutRecordsOutput, groups []putGroup, groupOf []int32) (rerouted []int) {
	var redo []int
	for i, g := range groupOf {
		if g >= 0 && errors.Is(groups[g].err, errShardClosed) {
			redo = append(redo, i)
		}
	}
	if len(redo) == 0 || !canReroute(ctx) {
		return nil
	}
	for _, i := range redo {
		groupOf[i] = -1
	}
	sub := &PutRecordsInput{StreamName: in.StreamName, StreamARN: in.StreamARN, Records: make([]PutRecordsRequestEntry, len(redo))}
	for j, i := range redo {
		sub.Records[j] = in.Records[i]
	}
	s.refresh(ctx, in.StreamName, in.StreamARN)
	res, err := s.putRecords(withReroute(ctx), sub, false)
	for j, i := range redo {
		e := &out.Records[i]
		if err != nil {
			internal, msg := string(CodeInternalFailure), errInternal
			e.ErrorCode, e.ErrorMessage = &internal, &msg
			out.FailedRecordCount++
			continue
		}
		*e = res.Records[j]
		if e.ErrorCode != nil {
			out.FailedRecordCount++
		}
	}
	return redo
}

// putRecordAgain retries a PutRecord whose shard was closed by resharding
// between routing and appending.
func (s *Service) putRecordAgain(ctx context.Context, in *PutRecordInput) (*PutRecordOutput, error) {
	s.refresh(ctx, in.StreamName, in.StreamARN)
	return s.PutRecord(withReroute(ctx), in)
}

// refresh reloads a stream's cache entry from the engine, so that a
// reshard by another service sharing the engine is seen at once.
func (s *Service) refresh(ctx context.Context, name, arn *string) {
	if n, err := s.streamName(name, arn); err == nil {
		_, _ = s.fetch(ctx, n)
	}
}

type rerouteKey struct{}

// maxReroutes bounds how often one request follows resharding.
const maxReroutes = 8

// withReroute counts a reroute in ctx.
func withReroute(ctx context.Context) context.Context {
	n, _ := ctx.Value(rerouteKey{}).(int)
	return context.WithValue(ctx, rerouteKey{}, n+1)
}

// canReroute reports whether a request may still follow resharding.
func canReroute(ctx context.Context) bool {
	n, _ := ctx.Value(rerouteKey{}).(int)
	return n < maxReroutes
}

// splitPoint returns the starting hash key of the upper half of [start,
// end], or false if the range holds a single key.
func splitPoint(start, end hashKey) (hashKey, bool) {
	if start == end {
		return hashKey{}, false
	}
	// width = end - start, at = start + width/2 + 1
	lo, b := bits.Sub64(end.lo, start.lo, 0)
	w := hashKey{end.hi - start.hi - b, lo}
	half, _ := w.divmod(2)
	lo, c := bits.Add64(start.lo, half.lo, 0)
	at := hashKey{start.hi + half.hi + c, lo}
	return at.add(1), true
}
