package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Processor is the application's code. A worker calls it from one goroutine
// per shard it holds, so calls for different shards run concurrently while
// the calls for one shard never overlap: Initialize, then ProcessRecords for
// every batch, then ShardEnded or LeaseLost, or nothing more when the worker
// shuts down.
//
// An error or a panic in any method is logged and the shard is restarted
// from its last checkpoint (Initialize again), so records since that
// checkpoint are delivered again.
type Processor interface {
	// Initialize is called before the first batch of a shard.
	Initialize(ctx context.Context, in InitInput) error
	// ProcessRecords handles one batch. The processor checkpoints through
	// in.Checkpointer when it has durably handled records; records after
	// the last checkpoint are delivered again after a failover.
	ProcessRecords(ctx context.Context, in ProcessInput) error
	// ShardEnded is called once a closed shard was read to its end and
	// every record was passed to ProcessRecords. If the processor does not
	// checkpoint, the worker checkpoints SHARD_END itself on return, which
	// lets the shard's children be processed.
	ShardEnded(ctx context.Context, cp *Checkpointer) error
	// LeaseLost is called when another worker took the shard. No further
	// checkpoint for it from this worker will be accepted.
	LeaseLost(ctx context.Context, shardID string) error
}

// InitInput tells a processor where its shard starts.
type InitInput struct {
	ShardID string
	// Checkpoint is the shard's checkpoint: a sequence number, or the
	// initial position (TRIM_HORIZON, LATEST, AT_TIMESTAMP) before the first.
	Checkpoint string
	// SubSequenceNumber is the position inside a KPL aggregate at Checkpoint.
	SubSequenceNumber uint64
}

// ProcessInput is one batch of records of a shard.
type ProcessInput struct {
	ShardID string
	// Records are in sequence number order. The slice is the processor's.
	Records []Record
	// MillisBehindLatest is how far the batch is behind the shard's tip.
	MillisBehindLatest int64
	// Checkpointer records progress through this batch.
	Checkpointer *Checkpointer
}

// Record is one user record. Records of KPL aggregates are delivered one by
// one, each with the aggregate's sequence number and its own
// SubSequenceNumber; plain records have SubSequenceNumber 0.
type Record struct {
	// Data is the record's payload; the slice is the processor's.
	Data []byte
	// PartitionKey is the key the producer wrote the record with.
	PartitionKey string
	// ExplicitHashKey is a KPL user record's explicit hash key, "" when
	// it has none. (GetRecords does not return a plain record's.)
	ExplicitHashKey string
	// SequenceNumber is the record's (or its aggregate's) position in the
	// shard, a decimal number of up to 128 bits.
	SequenceNumber string
	// SubSequenceNumber is the record's position inside a KPL aggregate.
	SubSequenceNumber uint64
	// ApproximateArrivalTimestamp is when the stream accepted the record.
	ApproximateArrivalTimestamp time.Time
}

// ErrLeaseLost is returned by a Checkpointer whose lease the worker no longer
// holds: another worker took it. The checkpoint was not written.
var ErrLeaseLost = errors.New("consumer: lease lost")

// Checkpointer writes a shard's checkpoint under the worker's current lease.
// It is valid during the call it was passed to.
type Checkpointer struct {
	s    *shard
	last Record // the batch's last record
	end  bool   // at the end of a closed shard
}

// Checkpoint records that everything delivered so far is processed: the last
// record of the batch, or SHARD_END when called from ShardEnded.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	if c.end {
		return c.s.checkpoint(ctx, ShardEnd, 0)
	}
	if c.last.SequenceNumber == "" {
		return nil
	}
	return c.s.checkpoint(ctx, c.last.SequenceNumber, c.last.SubSequenceNumber)
}

// CheckpointAt records that everything up to and including the record at
// seq and sub is processed.
func (c *Checkpointer) CheckpointAt(ctx context.Context, seq string, sub uint64) error {
	if seq == "" || seq == ShardEnd {
		return fmt.Errorf("consumer: checkpoint at %q: not a sequence number", seq)
	}
	return c.s.checkpoint(ctx, seq, sub)
}

// ShardID returns the shard the checkpointer writes to.
func (c *Checkpointer) ShardID() string { return c.s.id }
