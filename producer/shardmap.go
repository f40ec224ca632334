package producer

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// shardRange is one open shard and the pipeline that puts its records.
type shardRange struct {
	id     string
	lo, hi hashKey // inclusive
	pl     *pipeline
}

// shardMap is the stream's open shards in hash key order. It is
// immutable once published; a refresh publishes a new one.
type shardMap struct {
	shards []shardRange
}

// lookup returns the index of the shard whose range holds h, or -1 when
// no open shard does (a map taken in the middle of a reshard).
func (m *shardMap) lookup(h hashKey) int {
	i := sort.Search(len(m.shards), func(i int) bool { return h.less(m.shards[i].lo) }) - 1
	if i < 0 || m.shards[i].hi.less(h) {
		return -1
	}
	return i
}

// byID returns the shard with id, or nil.
func (m *shardMap) byID(id string) *shardRange {
	for i := range m.shards {
		if m.shards[i].id == id {
			return &m.shards[i]
		}
	}
	return nil
}

// listOpenShards lists the stream's open shards (those without an ending
// sequence number), sorted by hash key.
func listOpenShards(ctx context.Context, c Client, stream string) ([]shardRange, error) {
	var (
		out   []shardRange
		token *string
	)
	for {
		in := &kinesis.ListShardsInput{NextToken: token}
		if token == nil {
			in.StreamName = aws.String(stream)
		}
		res, err := c.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, s := range res.Shards {
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue
			}
			if s.HashKeyRange == nil || s.ShardId == nil {
				return nil, fmt.Errorf("list shards: shard without id or hash key range")
			}
			lo, err := parseHashKey(aws.ToString(s.HashKeyRange.StartingHashKey))
			if err != nil {
				return nil, fmt.Errorf("list shards: shard %s: starting hash key: %w", *s.ShardId, err)
			}
			hi, err := parseHashKey(aws.ToString(s.HashKeyRange.EndingHashKey))
			if err != nil {
				return nil, fmt.Errorf("list shards: shard %s: ending hash key: %w", *s.ShardId, err)
			}
			out = append(out, shardRange{id: *s.ShardId, lo: lo, hi: hi})
		}
		if res.NextToken == nil || *res.NextToken == "" {
			break
		}
		token = res.NextToken
	}
	sort.Slice(out, func(i, j int) bool { return out[i].lo.less(out[j].lo) })
	for i := 1; i < len(out); i++ {
		if !out[i-1].hi.less(out[i].lo) {
			return nil, fmt.Errorf("list shards: open shards %s and %s overlap", out[i-1].id, out[i].id)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("list shards: stream %s has no open shard", stream)
	}
	return out, nil
}
