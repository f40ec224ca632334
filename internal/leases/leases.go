package leases

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Code names an error type as it appears on the wire ("__type").
type Code string

// The error types the service answers with.
const (
	CodeInvalidArgument  Code = "InvalidArgumentException"
	CodeResourceNotFound Code = "ResourceNotFoundException"
	CodeResourceInUse    Code = "ResourceInUseException"
	CodeLeaseConflict    Code = "LeaseConflictException"
	CodeInternalFailure  Code = "InternalFailure"
)

// Error is an error the wire layer answers with its Code and Message. A
// LeaseConflictException carries the lease as it is now in Lease.
type Error struct {
	Code    Code
	Message string
	// Lease is the current state of the lease a conflict is about.
	Lease *Lease
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// ErrorCode returns the wire name of the error's type.
func (e *Error) ErrorCode() string { return string(e.Code) }

// ErrorMessage returns the message the client sees.
func (e *Error) ErrorMessage() string { return e.Message }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrStreamNotFound is returned by a Streams implementation for a stream that
// does not exist or is not readable.
var ErrStreamNotFound = errors.New("leases: stream not found")

// Initial positions of a table: where the shards created with the stream
// start before their first checkpoint.
const (
	TrimHorizon = "TRIM_HORIZON"
	Latest      = "LATEST"
	AtTimestamp = "AT_TIMESTAMP"
	// ShardEnd is the checkpoint of a closed shard processed to its end.
	ShardEnd = "SHARD_END"
)

// Streams is what the service needs to know of streams. The streams service
// implements it; the lease service never writes stream metadata.
type Streams interface {
	// Stream returns a stream's identity and every shard it has that still
	// holds records (or is open), or ErrStreamNotFound.
	Stream(ctx context.Context, name string) (StreamInfo, error)
	// StreamIDs returns the ids of every existing stream, for the sweeper.
	StreamIDs(ctx context.Context) (map[string]bool, error)
}

// StreamInfo is one stream as the lease service sees it.
type StreamInfo struct {
	Name string
	ARN  string
	// ID is unique per creation of the stream.
	ID     string
	Shards []ShardInfo
}

// ShardInfo is one shard and its lineage.
type ShardInfo struct {
	ID      string
	Parents []string
	Closed  bool
}

// Lease is one shard's entry in a lease table.
type Lease struct {
	LeaseKey                     string   `json:"LeaseKey"`
	Owner                        string   `json:"Owner,omitempty"`
	Counter                      uint64   `json:"Counter"`
	Checkpoint                   string   `json:"Checkpoint"`
	SubSequenceNumber            uint64   `json:"SubSequenceNumber"`
	OwnerSwitchesSinceCheckpoint uint64   `json:"OwnerSwitchesSinceCheckpoint"`
	ParentShardIds               []string `json:"ParentShardIds,omitempty"`
	ChildShardIds                []string `json:"ChildShardIds,omitempty"`
}

// Table describes a lease table.
type Table struct {
	ApplicationName   string    `json:"ApplicationName"`
	StreamName        string    `json:"StreamName"`
	StreamARN         string    `json:"StreamARN"`
	InitialPosition   Position  `json:"InitialPosition"`
	CreationTimestamp time.Time `json:"CreationTimestamp"`
	LeaseCount        int       `json:"LeaseCount"`
}

// Position is a table's initial position.
type Position struct {
	Type string `json:"Type"`
	// Timestamp is set for AT_TIMESTAMP.
	Timestamp *time.Time `json:"Timestamp,omitempty"`
}

// tableMeta is a table's stored form.
type tableMeta struct {
	App       string `json:"app"`
	Stream    string `json:"stream"`
	Created   int64  `json:"created"` // Unix ms
	Initial   string `json:"initial"`
	Timestamp int64  `json:"timestamp,omitempty"` // Unix ms, AT_TIMESTAMP only
}

// Options configure a Service.
type Options struct {
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// MaxRetries bounds the compare-and-set retries of one change under
	// contention before it fails with InternalFailure. Zero means 64.
	MaxRetries int
}

// Service serves lease tables on an engine's metadata. It is safe for
// concurrent use, also by several services on one metadata store.
type Service struct {
	meta    engine.Meta
	streams Streams
	now     func() time.Time
	retries int
}

// New returns a service storing tables in meta and learning about streams
// from s.
func New(meta engine.Meta, s Streams, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 64
	}
	return &Service{meta: meta, streams: s, now: opts.Now, retries: opts.MaxRetries}
}

const keyPrefix = "leases/"

func tableKey(streamID, app string) string { return keyPrefix + streamID + "/" + app }
func leasePrefix(streamID, app string) string {
	return tableKey(streamID, app) + "/"
}

var (
	appPattern   = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,255}$`)
	shardPattern = regexp.MustCompile(`^shardId-[0-9]{12}$`)
	seqPattern   = regexp.MustCompile(`^[0-9]{1,128}$`)
)

func checkApp(app string) error {
	if !appPattern.MatchString(app) {
		return errorf(CodeInvalidArgument, "ApplicationName %q must be 1 to 255 characters of letters, digits, '_', '.' and '-'.", app)
	}
	return nil
}

func checkOwner(member, owner string) error {
	if owner == "" || len(owner) > 255 {
		return errorf(CodeInvalidArgument, "%s must be 1 to 255 characters.", member)
	}
	return nil
}

// TableRef names a table: an application on a stream.
type TableRef struct {
	App    string
	Stream string
}

// resolve checks the reference and finds the stream.
func (s *Service) resolve(ctx context.Context, ref TableRef) (StreamInfo, error) {
	if err := checkApp(ref.App); err != nil {
		return StreamInfo{}, err
	}
	st, err := s.streams.Stream(ctx, ref.Stream)
	if errors.Is(err, ErrStreamNotFound) {
		return StreamInfo{}, errorf(CodeResourceNotFound, "Stream %s not found.", ref.Stream)
	}
	return st, err
}

// CreateTable creates an application's lease table on a stream, with a
// lease for every shard.
func (s *Service) CreateTable(ctx context.Context, ref TableRef, initial Position) (*Table, error) {
	st, err := s.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	tm := tableMeta{App: ref.App, Stream: st.Name, Created: s.now().UnixMilli()}
	switch initial.Type {
	case "", TrimHorizon:
		tm.Initial = TrimHorizon
	case Latest:
		tm.Initial = Latest
	case AtTimestamp:
		if initial.Timestamp == nil {
			return nil, errorf(CodeInvalidArgument, "InitialPosition AT_TIMESTAMP needs a Timestamp.")
		}
		tm.Initial, tm.Timestamp = AtTimestamp, initial.Timestamp.UnixMilli()
	default:
		return nil, errorf(CodeInvalidArgument, "InitialPosition %q is not one of TRIM_HORIZON, LATEST, AT_TIMESTAMP.", initial.Type)
	}
	if initial.Type != AtTimestamp && initial.Timestamp != nil {
		return nil, errorf(CodeInvalidArgument, "Timestamp is only allowed with InitialPosition AT_TIMESTAMP.")
	}
	raw, err := json.Marshal(tm)
	if err != nil {
		return nil, err
	}
	if _, err := s.meta.Put(ctx, tableKey(st.ID, ref.App), raw, 0); err != nil {
		if errors.Is(err, engine.ErrVersionMismatch) {
			return nil, errorf(CodeResourceInUse, "Lease table of application %s on stream %s already exists.", ref.App, st.Name)
		}
		return nil, err
	}
	leases, err := s.sync(ctx, st, &tm)
	if err != nil {
		return nil, err
	}
	return tableOut(&tm, st, len(leases)), nil
}

func tableOut(tm *tableMeta, st StreamInfo, n int) *Table {
	t := &Table{
		ApplicationName:   tm.App,
		StreamName:        st.Name,
		StreamARN:         st.ARN,
		InitialPosition:   Position{Type: tm.Initial},
		CreationTimestamp: time.UnixMilli(tm.Created).UTC(),
		LeaseCount:        n,
	}
	if tm.Initial == AtTimestamp {
		ts := time.UnixMilli(tm.Timestamp).UTC()
		t.InitialPosition.Timestamp = &ts
	}
	return t
}

// table reads a table's stored form.
func (s *Service) table(ctx context.Context, st StreamInfo, app string) (*tableMeta, error) {
	raw, _, err := s.meta.Get(ctx, tableKey(st.ID, app))
	if errors.Is(err, engine.ErrKeyNotFound) {
		return nil, errorf(CodeResourceNotFound, "Lease table of application %s on stream %s not found.", app, st.Name)
	}
	if err != nil {
		return nil, err
	}
	var tm tableMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		return nil, fmt.Errorf("leases: decode table %s: %w", tableKey(st.ID, app), err)
	}
	return &tm, nil
}

// DescribeTable describes one table.
func (s *Service) DescribeTable(ctx context.Context, ref TableRef) (*Table, error) {
	st, err := s.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	tm, err := s.table(ctx, st, ref.App)
	if err != nil {
		return nil, err
	}
	leases, err := s.list(ctx, st.ID, ref.App)
	if err != nil {
		return nil, err
	}
	return tableOut(tm, st, len(leases)), nil
}

// ListTables lists the tables of one stream, by application name.
func (s *Service) ListTables(ctx context.Context, stream string) ([]*Table, error) {
	st, err := s.streams.Stream(ctx, stream)
	if errors.Is(err, ErrStreamNotFound) {
		return nil, errorf(CodeResourceNotFound, "Stream %s not found.", stream)
	}
	if err != nil {
		return nil, err
	}
	entries, err := s.meta.List(ctx, keyPrefix+st.ID+"/")
	if err != nil {
		return nil, err
	}
	var out []*Table
	counts := map[string]int{}
	var metas []*tableMeta
	for _, e := range entries {
		rest := strings.TrimPrefix(e.Key, keyPrefix+st.ID+"/")
		app, shard, isLease := strings.Cut(rest, "/")
		if isLease {
			if shard != "" {
				counts[app]++
			}
			continue
		}
		var tm tableMeta
		if err := json.Unmarshal(e.Value, &tm); err != nil {
			return nil, fmt.Errorf("leases: decode table %s: %w", e.Key, err)
		}
		metas = append(metas, &tm)
	}
	for _, tm := range metas {
		out = append(out, tableOut(tm, st, counts[tm.App]))
	}
	return out, nil
}

// DeleteTable removes a table and its leases.
func (s *Service) DeleteTable(ctx context.Context, ref TableRef) error {
	st, err := s.resolve(ctx, ref)
	if err != nil {
		return err
	}
	_, version, err := s.meta.Get(ctx, tableKey(st.ID, ref.App))
	if errors.Is(err, engine.ErrKeyNotFound) {
		return errorf(CodeResourceNotFound, "Lease table of application %s on stream %s not found.", ref.App, st.Name)
	}
	if err != nil {
		return err
	}
	// The table key goes first: from then on nobody sees the table, and a
	// crash before the leases are gone leaves keys the sweeper removes.
	if err := s.meta.Delete(ctx, tableKey(st.ID, ref.App), version); err != nil && !errors.Is(err, engine.ErrKeyNotFound) {
		return err
	}
	return s.deletePrefix(ctx, leasePrefix(st.ID, ref.App))
}

func (s *Service) deletePrefix(ctx context.Context, prefix string) error {
	entries, err := s.meta.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := s.meta.Delete(ctx, e.Key, e.Version); err != nil && !errors.Is(err, engine.ErrKeyNotFound) && !errors.Is(err, engine.ErrVersionMismatch) {
			return err
		}
	}
	return nil
}

// Sweep removes the tables and leases of streams that no longer exist, and
// leases left behind by a table deleted halfway.
func (s *Service) Sweep(ctx context.Context) error {
	ids, err := s.streams.StreamIDs(ctx)
	if err != nil {
		return err
	}
	entries, err := s.meta.List(ctx, keyPrefix)
	if err != nil {
		return err
	}
	tables := map[string]bool{}
	for _, e := range entries {
		rest := strings.TrimPrefix(e.Key, keyPrefix)
		if id, app, ok := strings.Cut(rest, "/"); ok && !strings.Contains(app, "/") {
			tables[id+"/"+app] = true
		}
	}
	for _, e := range entries {
		rest := strings.TrimPrefix(e.Key, keyPrefix)
		id, tail, _ := strings.Cut(rest, "/")
		app, _, isLease := strings.Cut(tail, "/")
		orphan := !ids[id] || (isLease && !tables[id+"/"+app])
		if !orphan {
			continue
		}
		if err := s.meta.Delete(ctx, e.Key, e.Version); err != nil && !errors.Is(err, engine.ErrKeyNotFound) && !errors.Is(err, engine.ErrVersionMismatch) {
			return err
		}
	}
	return nil
}

// stored is a lease with its metadata version.
type stored struct {
	lease   Lease
	version uint64
}

func (s *Service) list(ctx context.Context, streamID, app string) ([]stored, error) {
	entries, err := s.meta.List(ctx, leasePrefix(streamID, app))
	if err != nil {
		return nil, err
	}
	out := make([]stored, 0, len(entries))
	for _, e := range entries {
		var l Lease
		if err := json.Unmarshal(e.Value, &l); err != nil {
			return nil, fmt.Errorf("leases: decode lease %s: %w", e.Key, err)
		}
		out = append(out, stored{lease: l, version: e.Version})
	}
	return out, nil
}

// sync brings a table's leases in line with the stream's shards: a lease
// for every shard that has none, children recorded on closed shards. It
// returns the leases in shard id order.
func (s *Service) sync(ctx context.Context, st StreamInfo, tm *tableMeta) ([]Lease, error) {
	have, err := s.list(ctx, st.ID, tm.App)
	if err != nil {
		return nil, err
	}
	byKey := make(map[string]stored, len(have))
	for _, h := range have {
		byKey[h.lease.LeaseKey] = h
	}
	children := map[string][]string{}
	known := map[string]bool{}
	for _, sh := range st.Shards {
		known[sh.ID] = true
		for _, p := range sh.Parents {
			children[p] = append(children[p], sh.ID)
		}
	}
	for _, sh := range st.Shards {
		kids := children[sh.ID]
		if !sh.Closed {
			kids = nil
		}
		cur, ok := byKey[sh.ID]
		if ok && slices.Equal(cur.lease.ChildShardIds, kids) {
			continue
		}
		for attempt := 0; ; attempt++ {
			var next Lease
			expect := uint64(0)
			if ok {
				next, expect = cur.lease, cur.version
				next.ChildShardIds = kids
			} else {
				next = Lease{LeaseKey: sh.ID, Checkpoint: tm.Initial, ParentShardIds: sh.Parents, ChildShardIds: kids}
				// A child starts where its parents ended: at its first record.
				for _, p := range sh.Parents {
					if known[p] {
						next.Checkpoint = TrimHorizon
					}
				}
			}
			raw, err := json.Marshal(next)
			if err != nil {
				return nil, err
			}
			v, err := s.meta.Put(ctx, leasePrefix(st.ID, tm.App)+sh.ID, raw, expect)
			if err == nil {
				byKey[sh.ID] = stored{lease: next, version: v}
				break
			}
			if !errors.Is(err, engine.ErrVersionMismatch) || attempt >= s.retries {
				return nil, err
			}
			// Someone else wrote it: start again from what is stored.
			cur, ok, err = s.get(ctx, st.ID, tm.App, sh.ID)
			if err != nil {
				return nil, err
			}
			if ok && slices.Equal(cur.lease.ChildShardIds, kids) {
				break
			}
		}
	}
	out := make([]Lease, 0, len(byKey))
	for _, v := range byKey {
		out = append(out, v.lease)
	}
	slices.SortFunc(out, func(a, b Lease) int { return strings.Compare(a.LeaseKey, b.LeaseKey) })
	return out, nil
}

func (s *Service) get(ctx context.Context, streamID, app, key string) (stored, bool, error) {
	raw, v, err := s.meta.Get(ctx, leasePrefix(streamID, app)+key)
	if errors.Is(err, engine.ErrKeyNotFound) {
		return stored{}, false, nil
	}
	if err != nil {
		return stored{}, false, err
	}
	var l Lease
	if err := json.Unmarshal(raw, &l); err != nil {
		return stored{}, false, fmt.Errorf("leases: decode lease %s: %w", key, err)
	}
	return stored{lease: l, version: v}, true, nil
}

// ListLeases returns every lease of a table, in shard id order, after adding
// leases for shards that have none.
func (s *Service) ListLeases(ctx context.Context, ref TableRef) ([]Lease, error) {
	st, err := s.resolve(ctx, ref)
	if err != nil {
		return nil, err
	}
	tm, err := s.table(ctx, st, ref.App)
	if err != nil {
		return nil, err
	}
	return s.sync(ctx, st, tm)
}

// open checks a table reference and finds its stream and table.
func (s *Service) open(ctx context.Context, ref TableRef) (StreamInfo, error) {
	st, err := s.resolve(ctx, ref)
	if err != nil {
		return st, err
	}
	_, err = s.table(ctx, st, ref.App)
	return st, err
}

// change applies fn to one lease of an open table with a compare-and-set,
// re-reading and re-checking when the write loses a race. fn returns the new
// lease or an error (a conflict) judged on the lease as stored.
func (s *Service) change(ctx context.Context, st StreamInfo, app, key string, fn func(l Lease) (Lease, error)) (*Lease, error) {
	if !shardPattern.MatchString(key) {
		return nil, errorf(CodeInvalidArgument, "LeaseKey %q is not a shard id.", key)
	}
	for attempt := 0; attempt <= s.retries; attempt++ {
		cur, ok, err := s.get(ctx, st.ID, app, key)
		if err != nil {
			return nil, err
		}
		if !ok {
			e := errorf(CodeResourceNotFound, "Lease %s of application %s on stream %s not found.", key, app, st.Name)
			e.Lease = &Lease{LeaseKey: key}
			return nil, e
		}
		next, err := fn(cur.lease)
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(next)
		if err != nil {
			return nil, err
		}
		_, err = s.meta.Put(ctx, leasePrefix(st.ID, app)+key, raw, cur.version)
		if err == nil {
			return &next, nil
		}
		if !errors.Is(err, engine.ErrVersionMismatch) {
			return nil, err
		}
	}
	return nil, errorf(CodeInternalFailure, "Lease %s changed too often to update; try again.", key)
}

// changeOne opens the table and changes one lease.
func (s *Service) changeOne(ctx context.Context, ref TableRef, key string, fn func(l Lease) (Lease, error)) (*Lease, error) {
	st, err := s.open(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.change(ctx, st, ref.App, key, fn)
}

func conflict(app string, l Lease, owner string, counter uint64) *Error {
	holder := l.Owner
	if holder == "" {
		holder = "nobody"
	}
	who := "the request named counter"
	if owner != "" {
		who = "the request named " + owner + " with counter"
	}
	lc := l
	return &Error{
		Code:    CodeLeaseConflict,
		Message: fmt.Sprintf("Lease %s of application %s is held by %s with counter %d; %s %d.", l.LeaseKey, app, holder, l.Counter, who, counter),
		Lease:   &lc,
	}
}

// Take gives the lease to owner if its counter is still counter: the caller
// saw it expired, unowned, or chose to steal it.
func (s *Service) Take(ctx context.Context, ref TableRef, key, owner string, counter uint64) (*Lease, error) {
	if err := checkOwner("Owner", owner); err != nil {
		return nil, err
	}
	return s.changeOne(ctx, ref, key, func(l Lease) (Lease, error) {
		if l.Counter != counter {
			return l, conflict(ref.App, l, "", counter)
		}
		if l.Owner != owner {
			l.OwnerSwitchesSinceCheckpoint++
		}
		l.Owner = owner
		l.Counter++
		return l, nil
	})
}

// owned checks that owner holds the lease at counter.
func owned(app string, l Lease, owner string, counter uint64) error {
	if l.Owner != owner || l.Counter != counter {
		return conflict(app, l, owner, counter)
	}
	return nil
}

// Renewal names one lease to renew and the counter its owner last saw.
type Renewal struct {
	LeaseKey string
	Counter  uint64
}

// MaxRenewals is the most leases one Renew call may name.
const MaxRenewals = 1000

// Renew renews each named lease that owner still holds at the named
// counter. Leases it no longer holds come back in lost, as they are now;
// one lost lease does not fail the others.
func (s *Service) Renew(ctx context.Context, ref TableRef, owner string, rs []Renewal) (renewed, lost []Lease, err error) {
	if err := checkOwner("Owner", owner); err != nil {
		return nil, nil, err
	}
	if len(rs) > MaxRenewals {
		return nil, nil, errorf(CodeInvalidArgument, "Leases has %d entries; at most %d are allowed.", len(rs), MaxRenewals)
	}
	st, err := s.open(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range rs {
		l, err := s.change(ctx, st, ref.App, r.LeaseKey, func(l Lease) (Lease, error) {
			if err := owned(ref.App, l, owner, r.Counter); err != nil {
				return l, err
			}
			l.Counter++
			return l, nil
		})
		var le *Error
		switch {
		case err == nil:
			renewed = append(renewed, *l)
		case errors.As(err, &le) && le.Lease != nil:
			// Held by another, or gone with its table's reshaping.
			lost = append(lost, *le.Lease)
		default:
			return nil, nil, err
		}
	}
	return renewed, lost, nil
}

// HandOff passes a lease its owner holds at counter straight to newOwner.
func (s *Service) HandOff(ctx context.Context, ref TableRef, key, owner string, counter uint64, newOwner string) (*Lease, error) {
	if err := checkOwner("Owner", owner); err != nil {
		return nil, err
	}
	if err := checkOwner("NewOwner", newOwner); err != nil {
		return nil, err
	}
	return s.changeOne(ctx, ref, key, func(l Lease) (Lease, error) {
		if err := owned(ref.App, l, owner, counter); err != nil {
			return l, err
		}
		if newOwner != owner {
			l.OwnerSwitchesSinceCheckpoint++
		}
		l.Owner = newOwner
		l.Counter++
		return l, nil
	})
}

// Release gives up a lease its owner holds at counter; it is free at once.
func (s *Service) Release(ctx context.Context, ref TableRef, key, owner string, counter uint64) (*Lease, error) {
	if err := checkOwner("Owner", owner); err != nil {
		return nil, err
	}
	return s.changeOne(ctx, ref, key, func(l Lease) (Lease, error) {
		if err := owned(ref.App, l, owner, counter); err != nil {
			return l, err
		}
		l.Owner = ""
		l.Counter++
		return l, nil
	})
}

// Checkpoint records how far the owner holding the lease at counter has
// processed its shard: a sequence number and the position inside a KPL
// aggregate, or SHARD_END.
func (s *Service) Checkpoint(ctx context.Context, ref TableRef, key, owner string, counter uint64, seq string, sub uint64) (*Lease, error) {
	if err := checkOwner("Owner", owner); err != nil {
		return nil, err
	}
	switch {
	case seq == ShardEnd:
		if sub != 0 {
			return nil, errorf(CodeInvalidArgument, "SubSequenceNumber must be 0 with SHARD_END.")
		}
	case seqPattern.MatchString(seq):
	default:
		return nil, errorf(CodeInvalidArgument, "SequenceNumber %q is neither a sequence number nor SHARD_END.", seq)
	}
	st, err := s.open(ctx, ref)
	if err != nil {
		return nil, err
	}
	if seq == ShardEnd {
		// Only a closed shard has an end; an open one would be skipped
		// for good, and its children processed out of order.
		closed := false
		for _, sh := range st.Shards {
			if sh.ID == key {
				closed = sh.Closed
			}
		}
		if !closed {
			return nil, errorf(CodeInvalidArgument, "Shard %s is open: SHARD_END is the checkpoint of a closed shard.", key)
		}
	}
	return s.change(ctx, st, ref.App, key, func(l Lease) (Lease, error) {
		if err := owned(ref.App, l, owner, counter); err != nil {
			return l, err
		}
		l.Checkpoint, l.SubSequenceNumber = seq, sub
		l.OwnerSwitchesSinceCheckpoint = 0
		l.Counter++
		return l, nil
	})
}

// SweepEvery runs Sweep every d until ctx ends, logging failures.
func (s *Service) SweepEvery(ctx context.Context, d time.Duration, log *slog.Logger) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
				log.Warn("lease tables: sweep failed", slog.Any("error", err))
			}
		}
	}
}
