package consumer

import (
	"context"
	"errors"
	"time"
)

// Lease is one shard's entry in a lease table, as a LeaseStore reports it.
type Lease struct {
	// Key is the shard id.
	Key string
	// Owner is the worker holding the lease; empty when nobody does.
	Owner string
	// Counter is the fencing counter: every change to the lease adds one,
	// and every change names the counter its caller last saw.
	Counter uint64
	// Checkpoint is a sequence number, SHARD_END, or before the first
	// checkpoint the table's initial position (TRIM_HORIZON, LATEST,
	// AT_TIMESTAMP).
	Checkpoint string
	// SubSequenceNumber is the position inside a KPL aggregate at the
	// checkpoint.
	SubSequenceNumber uint64
	// Parents are the shards this one was split or merged from.
	Parents []string
	// Children are the shards that replaced this one, once it is closed.
	Children []string
}

// ShardEnd is the checkpoint of a closed shard that was processed to its end.
const ShardEnd = "SHARD_END"

// Errors a LeaseStore returns, wrapped, so the worker can tell them apart.
var (
	// ErrLeaseConflict means the lease has moved on: another worker took
	// it, or the counter named is stale. The lease is lost to the caller.
	ErrLeaseConflict = errors.New("consumer: lease conflict")
	// ErrTableNotFound means the lease table (or its stream) does not exist.
	ErrTableNotFound = errors.New("consumer: lease table not found")
)

// LeaseStore keeps one application's lease table for one stream. A worker
// calls it from several goroutines, but never concurrently for one lease.
//
// Every change names the counter the worker last saw and fails with an
// error wrapping ErrLeaseConflict when the lease has moved on; a store must
// decide that atomically, since it is what keeps a worker that lost a lease
// from writing a checkpoint. runnel's built-in lease tables implement it
// (RunnelStore), and so does a DynamoDB table in the KCL's schema, with
// conditional writes on the lease counter (DynamoDBStore).
type LeaseStore interface {
	// Prepare creates the table if it does not exist, with shards created
	// with the stream starting at initial. An existing table is kept as it
	// is. It returns the table's initial position.
	Prepare(ctx context.Context, initial Position) (Position, error)
	// List returns every lease of the table, in shard id order; the store
	// adds leases for shards that have none (children after a reshard).
	List(ctx context.Context) ([]Lease, error)
	// Take makes owner the holder of the lease at counter.
	Take(ctx context.Context, key, owner string, counter uint64) (Lease, error)
	// Renew renews owner's leases, each at the counter given. A lease that
	// has moved on comes back in lost, with its current state; the others
	// in renewed.
	Renew(ctx context.Context, owner string, leases []Lease) (renewed, lost []Lease, err error)
	// Release gives up owner's lease at counter so another worker can take
	// it at once.
	Release(ctx context.Context, key, owner string, counter uint64) (Lease, error)
	// Checkpoint records seq (a sequence number or ShardEnd) and sub as how
	// far owner, holding the lease at counter, processed the shard.
	Checkpoint(ctx context.Context, key, owner string, counter uint64, seq string, sub uint64) (Lease, error)
}

// Position is where a shard with no checkpoint starts.
type Position struct {
	// Type is TRIM_HORIZON, LATEST or AT_TIMESTAMP.
	Type string
	// Timestamp is the time of AT_TIMESTAMP.
	Timestamp time.Time
}

// The positions a table can start its shards at.
var (
	// TrimHorizon starts at the oldest record the shard holds.
	TrimHorizon = Position{Type: "TRIM_HORIZON"}
	// Latest starts after the newest record at the time the shard is first read.
	Latest = Position{Type: "LATEST"}
)

// AtTimestamp starts at the first record that arrived at or after t.
func AtTimestamp(t time.Time) Position { return Position{Type: "AT_TIMESTAMP", Timestamp: t} }
