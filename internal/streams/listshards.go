package streams

import (
	"context"
	"time"
)

// ShardFilter types, in the order their index is stored in NextTokens
// (index 0 means no filter).
var shardFilterTypes = [...]string{"", "AFTER_SHARD_ID", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON", "AT_LATEST", "AT_TIMESTAMP", "FROM_TIMESTAMP"}

const (
	filterNone byte = iota
	filterAfterShardID
	filterAtTrimHorizon
	filterFromTrimHorizon
	filterAtLatest
	filterAtTimestamp
	filterFromTimestamp
)

// ListShards lists a stream's shards, filtered and paged.
func (s *Service) ListShards(ctx context.Context, in *ListShardsInput) (*ListShardsOutput, error) {
	if in == nil {
		in = &ListShardsInput{}
	}
	maxResults := 1000
	if in.MaxResults != nil {
		if *in.MaxResults < 1 {
			return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.MaxResults)
		}
		maxResults = min(int(*in.MaxResults), 1000)
	}
	var (
		name       string
		streamID   string
		filter     byte
		filterTime int64
		after      string
		err        error
	)
	if in.NextToken != nil {
		switch {
		case in.StreamName != nil:
			return nil, errorf(CodeInvalidArgument, "NextToken and StreamName cannot be provided together.")
		case in.StreamARN != nil:
			return nil, errorf(CodeInvalidArgument, "NextToken and StreamARN cannot be provided together.")
		case in.ExclusiveStartShardId != nil:
			return nil, errorf(CodeInvalidArgument, "NextToken and ExclusiveStartShardId cannot be provided together.")
		case in.StreamCreationTimestamp != nil:
			return nil, errorf(CodeInvalidArgument, "NextToken and StreamCreationTimestamp cannot be provided together.")
		case in.ShardFilter != nil:
			return nil, errorf(CodeInvalidArgument, "NextToken and ShardFilter cannot be provided together.")
		}
		pt, err := s.openPageToken(*in.NextToken)
		if err != nil {
			return nil, err
		}
		if pt.streamID == "" || int(pt.filter) >= len(shardFilterTypes) || !validStreamName(pt.stream) {
			return nil, errorf(CodeInvalidArgument, "Invalid NextToken.")
		}
		name, streamID, filter, filterTime, after = pt.stream, pt.streamID, pt.filter, pt.filterTime, pt.after
		if in.MaxResults == nil && pt.maxResults > 0 {
			maxResults = min(int(pt.maxResults), 1000)
		}
	} else {
		if in.StreamName == nil && in.StreamARN == nil {
			return nil, errorf(CodeInvalidArgument, "Either NextToken or StreamName should be provided.")
		}
		if name, err = s.streamName(in.StreamName, in.StreamARN); err != nil {
			return nil, err
		}
		if in.ExclusiveStartShardId != nil {
			after = normalShardID(*in.ExclusiveStartShardId)
		}
		if f := in.ShardFilter; f != nil {
			if f.Type == nil {
				return nil, errNull("shardFilter.type")
			}
			for i, t := range shardFilterTypes[1:] {
				if *f.Type == t {
					filter = byte(i + 1)
				}
			}
			switch filter {
			case filterNone:
				return nil, errorf(CodeValidation, "1 validation error detected: Value '%s' at 'shardFilter.type' failed to satisfy constraint: Member must satisfy enum value set: [AFTER_SHARD_ID, AT_TRIM_HORIZON, FROM_TRIM_HORIZON, AT_LATEST, AT_TIMESTAMP, FROM_TIMESTAMP]", *f.Type)
			case filterAfterShardID:
				if f.ShardId == nil {
					return nil, errorf(CodeInvalidArgument, "ShardId must be specified in ShardFilter of type AFTER_SHARD_ID.")
				}
				if id := normalShardID(*f.ShardId); id > after {
					after = id
				}
			case filterAtTimestamp, filterFromTimestamp:
				if f.Timestamp == nil {
					return nil, errorf(CodeInvalidArgument, "Timestamp must be specified in ShardFilter of type %s.", *f.Type)
				}
				filterTime = f.Timestamp.Millis()
			}
		}
	}

	st, status, err := s.existing(ctx, name)
	if err != nil {
		return nil, err
	}
	m := st.meta
	if streamID != "" && streamID != m.ID {
		return nil, s.errStreamNotFound(name) // recreated since the token was issued
	}
	if in.StreamCreationTimestamp != nil && in.StreamCreationTimestamp.Millis() != m.Created {
		return nil, s.errStreamNotFound(name)
	}

	now := s.nowMs()
	// at is the instant the AT_ and FROM_TIMESTAMP filters ask about. An
	// instant before the stream existed selects every listed shard, as
	// Kinesis answers AT_TRIM_HORIZON on a stream younger than its
	// retention period (every shard, closed parents included).
	var at int64
	switch filter {
	case filterAtTrimHorizon:
		at = now - int64(m.RetentionHours)*int64(time.Hour/time.Millisecond)
	case filterAtTimestamp, filterFromTimestamp:
		at = filterTime
	}
	all := at < m.Created

	out := &ListShardsOutput{Shards: []Shard{}}
	if status == statusCreating {
		return out, nil // Kinesis lists a stream's shards once it is ACTIVE
	}
	for i := range m.Shards {
		sm := &m.Shards[i]
		if !m.shardVisible(i, now) || (after != "" && st.shards[i].id <= after) {
			continue
		}
		// Both ends inclusive, as the ShardFilter reference words it: a
		// shard closed at the instant and its children created then both
		// count as open at it.
		openAt := sm.Created <= at && (sm.Closed == 0 || sm.Closed >= at)
		switch filter {
		case filterAtLatest:
			if sm.Closed != 0 {
				continue
			}
		case filterAtTrimHorizon, filterAtTimestamp:
			if !all && !openAt {
				continue
			}
		case filterFromTimestamp:
			// Shards closed before the trim horizon are not listed at all,
			// which is the correction of an earlier Timestamp to it.
			if sm.Closed != 0 && sm.Closed < at {
				continue
			}
		}
		if len(out.Shards) == maxResults {
			tok := s.tokens.encodePage(pageToken{
				issued: now, filter: filter, filterTime: filterTime, maxResults: int32(maxResults),
				stream: name, streamID: m.ID, after: out.Shards[len(out.Shards)-1].ShardId,
			})
			out.NextToken = &tok
			break
		}
		out.Shards = append(out.Shards, s.shardOut(st, i))
	}
	return out, nil
}
