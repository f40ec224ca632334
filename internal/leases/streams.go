package leases

import (
	"context"
	"errors"

	"github.com/runnel/runnel/internal/streams"
)

// OnStreams adapts the streams service to what the lease service needs.
func OnStreams(s *streams.Service) Streams { return streamsView{s} }

type streamsView struct{ s *streams.Service }

func (v streamsView) Stream(ctx context.Context, name string) (StreamInfo, error) {
	l, err := v.s.Lineage(ctx, name)
	var se *streams.Error
	if errors.As(err, &se) && se.Code == streams.CodeResourceNotFound {
		return StreamInfo{}, ErrStreamNotFound
	}
	if err != nil {
		return StreamInfo{}, err
	}
	out := StreamInfo{Name: l.Name, ARN: l.ARN, ID: l.ID, Shards: make([]ShardInfo, len(l.Shards))}
	for i, sh := range l.Shards {
		out.Shards[i] = ShardInfo{ID: sh.ID, Parents: sh.Parents, Closed: sh.Closed}
	}
	return out, nil
}

func (v streamsView) StreamIDs(ctx context.Context) (map[string]bool, error) {
	return v.s.StreamIDs(ctx)
}
