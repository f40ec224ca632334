package leases

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// ShardCheckpoint is one shard's checkpoint in one application's table.
type ShardCheckpoint struct {
	Stream      string
	Application string
	Shard       string
	// Checkpoint is the lease's: a sequence number, TRIM_HORIZON, LATEST,
	// AT_TIMESTAMP or SHARD_END.
	Checkpoint string
}

// Checkpoints lists every lease of every table of an existing stream, in
// key order (stream id, application, shard), for the consumer-lag metrics.
// It reads the metadata once; the tables of deleted streams, which the
// sweeper has not removed yet, are left out.
func (s *Service) Checkpoints(ctx context.Context) ([]ShardCheckpoint, error) {
	live, err := s.streams.StreamIDs(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := s.meta.List(ctx, keyPrefix)
	if err != nil {
		return nil, err
	}
	streamOf := map[string]string{} // table key -> stream name
	var out []ShardCheckpoint
	for _, e := range entries {
		parts := strings.Split(strings.TrimPrefix(e.Key, keyPrefix), "/")
		if len(parts) < 2 || !live[parts[0]] {
			continue
		}
		switch len(parts) {
		case 2: // a table; it sorts before its leases
			var tm tableMeta
			if err := json.Unmarshal(e.Value, &tm); err != nil {
				return nil, fmt.Errorf("leases: decode table %s: %w", e.Key, err)
			}
			streamOf[e.Key] = tm.Stream
		case 3:
			stream, ok := streamOf[tableKey(parts[0], parts[1])]
			if !ok {
				continue
			}
			var l Lease
			if err := json.Unmarshal(e.Value, &l); err != nil {
				return nil, fmt.Errorf("leases: decode lease %s: %w", e.Key, err)
			}
			out = append(out, ShardCheckpoint{Stream: stream, Application: parts[1], Shard: l.LeaseKey, Checkpoint: l.Checkpoint})
		}
	}
	return out, nil
}
