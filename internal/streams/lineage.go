package streams

import (
	"context"
)

// Lineage is a stream's identity and the lineage of its listed shards, for
// services built on streams (lease tables, delivery streams) that must
// follow resharding without speaking the Kinesis API.
type Lineage struct {
	Name string
	ARN  string
	// ID is unique per creation of the stream.
	ID     string
	Shards []ShardLineage
}

// ShardLineage is one shard and its parents.
type ShardLineage struct {
	ID string
	// Parents holds the parent and, after a merge, the adjacent parent.
	Parents []string
	// Closed reports that the shard takes no more records.
	Closed bool
}

// Lineage returns the stream's shards as ListShards lists them (so the
// same rules decide which shards are visible), or a ResourceNotFoundException
// *Error when the stream does not exist.
func (s *Service) Lineage(ctx context.Context, name string) (Lineage, error) {
	st, _, err := s.existing(ctx, name)
	if err != nil {
		return Lineage{}, err
	}
	out := Lineage{Name: name, ARN: st.arn, ID: st.meta.ID}
	in := &ListShardsInput{StreamName: &name}
	for {
		page, err := s.ListShards(ctx, in)
		if err != nil {
			return Lineage{}, err
		}
		for _, sh := range page.Shards {
			l := ShardLineage{ID: sh.ShardId, Closed: sh.SequenceNumberRange.EndingSequenceNumber != nil}
			if sh.ParentShardId != nil {
				l.Parents = append(l.Parents, *sh.ParentShardId)
			}
			if sh.AdjacentParentShardId != nil {
				l.Parents = append(l.Parents, *sh.AdjacentParentShardId)
			}
			out.Shards = append(out.Shards, l)
		}
		if page.NextToken == nil {
			return out, nil
		}
		in = &ListShardsInput{NextToken: page.NextToken}
	}
}

// StreamIDs returns the ids of every stream that exists, deleting ones
// included until their deletion settles.
func (s *Service) StreamIDs(ctx context.Context) (map[string]bool, error) {
	all, err := s.listMeta(ctx)
	if err != nil {
		return nil, err
	}
	now := s.nowMs()
	ids := make(map[string]bool, len(all))
	for _, st := range all {
		if st.meta.settled(now) != "" {
			ids[st.meta.ID] = true
		}
	}
	return ids, nil
}

// ReservedStreams returns the names of the reserved streams (see
// ReservedPrefix) that exist and are not being deleted, in name order, so
// that their owners can remove the ones they no longer need.
func (s *Service) ReservedStreams(ctx context.Context) ([]string, error) {
	all, err := s.listMeta(ctx)
	if err != nil {
		return nil, err
	}
	now := s.nowMs()
	var names []string
	for _, st := range all {
		if status := st.meta.settled(now); Reserved(st.meta.Name) && status != "" && status != statusDeleting {
			names = append(names, st.meta.Name)
		}
	}
	return names, nil
}
