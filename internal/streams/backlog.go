package streams

import (
	"context"
)

// Backlog is how far a consumer's position in a shard is behind the
// shard's newest record.
type Backlog struct {
	// Records is the number of records after the position.
	Records int64
	// Millis is how much later the newest record arrived than the record
	// at the position (to the second: sequence numbers carry arrival
	// seconds); 0 when Records is 0.
	Millis int64
}

// CheckpointBacklog returns the backlog of a consumer application's
// checkpoint on shard shardID of stream name. checkpoint is the sequence
// number of the last record processed, TRIM_HORIZON (nothing processed
// yet) or SHARD_END (a closed shard processed to its end); ok is false for
// any other checkpoint (LATEST or AT_TIMESTAMP before the first
// checkpoint: the position is not known) and for a shard or stream that is
// gone.
func (s *Service) CheckpointBacklog(ctx context.Context, name, shardID, checkpoint string) (b Backlog, ok bool, err error) {
	if checkpoint == "SHARD_END" {
		return Backlog{}, true, nil
	}
	idx, valid := parseShardIndex(shardID)
	if !valid {
		return Backlog{}, false, nil
	}
	st, err := s.cached(ctx, name)
	if err != nil || st == nil || idx >= len(st.shards) {
		return Backlog{}, false, err
	}
	sh := st.shards[idx]
	l, err := sh.handle(ctx, s.eng)
	if err != nil {
		return Backlog{}, false, nil // the log is gone: so is the shard
	}
	info, err := l.Info(ctx)
	if err != nil {
		return Backlog{}, false, nil
	}
	var next uint64
	var at int64 // arrival of the record at the position, Unix ms
	switch checkpoint {
	case "TRIM_HORIZON":
		next, at = info.First, info.FirstTime
	default:
		sn, valid := parseSeqNum(checkpoint)
		if !valid || int(sn.shard) != idx || sn.created != sh.created&mask36 {
			return Backlog{}, false, nil
		}
		next, at = sn.offset, int64(sn.arrival)*1000
		if sn.record {
			next++
		}
		next = max(next, info.First)
	}
	if info.Next <= next {
		return Backlog{}, true, nil
	}
	b.Records = int64(info.Next - next)
	if at > 0 && info.LastTime > at {
		b.Millis = info.LastTime - at
	}
	return b, true, nil
}
