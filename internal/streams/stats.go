package streams

import (
	"context"
	"errors"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// ShardStats is one shard's place in its stream and the bounds and write
// counters of its log, for observers (the console, metrics) that sample
// rates without speaking the Kinesis API.
type ShardStats struct {
	Shard
	// Closed reports that resharding closed the shard.
	Closed bool
	// First is the offset of the oldest record still kept and Next the
	// offset the next record will get: Next-First records are kept, and
	// Next grows by one per record written.
	First, Next uint64
	// LastArrival is the arrival time of the newest record, zero when the
	// shard holds none.
	LastArrival time.Time
	// WrittenBytes and WrittenRecords count what this process appended to
	// the shard since it started (partition keys and data), never reset.
	// They are per process: with several services on one engine each
	// counts the writes it served.
	WrittenBytes, WrittenRecords int64
}

// ShardStats returns every shard of a stream (closed ones included, as
// DescribeStream lists them) with its log's bounds and write counters, or a
// ResourceNotFoundException *Error when the stream does not exist. A shard
// whose log retention has removed reports zero bounds.
func (s *Service) ShardStats(ctx context.Context, name string) ([]ShardStats, error) {
	st, _, err := s.live(ctx, name)
	if err != nil {
		return nil, err
	}
	out := make([]ShardStats, 0, len(st.shards))
	for i, sh := range st.shards {
		ss := ShardStats{
			Shard:          s.shardOut(st, i),
			Closed:         st.meta.Shards[i].Closed != 0,
			WrittenBytes:   sh.totalBytes.Load(),
			WrittenRecords: sh.totalRecords.Load(),
		}
		l, err := sh.handle(ctx, s.eng)
		if err == nil {
			var info engine.LogInfo
			info, err = l.Info(ctx)
			if err == nil {
				ss.First, ss.Next = info.First, info.Next
				if info.LastTime != 0 {
					ss.LastArrival = time.UnixMilli(info.LastTime)
				}
			}
		}
		if err != nil && !errors.Is(err, engine.ErrLogNotFound) {
			return nil, err
		}
		out = append(out, ss)
	}
	return out, nil
}

// SequenceOffset returns the log offset of the record a sequence number
// names (the position a shard's StartingSequenceNumber names counts as the
// offset of the shard's first record). ok is false for a string that is not
// a runnel sequence number. Next minus it, less one, is how many records of
// the shard follow it.
func SequenceOffset(seq string) (offset uint64, ok bool) {
	n, ok := parseSeqNum(seq)
	if !ok {
		return 0, false
	}
	return n.offset, true
}
