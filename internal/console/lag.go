package console

import (
	"context"
	"errors"
	"time"

	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/streams"
)

// Lag reports how far consumer applications are behind a stream.
type Lag interface {
	// ConsumerLag returns one entry per consumer application of the
	// stream, by application name.
	ConsumerLag(ctx context.Context, stream string) ([]AppLag, error)
}

// AppLag is one consumer application's lag on a stream.
type AppLag struct {
	Application string
	Shards      []ShardLag
	// MaxMillis is the largest Millis of its shards and Records the sum of
	// their Records.
	MaxMillis int64
	Records   int64
}

// ShardLag is an application's lag on one shard.
type ShardLag struct {
	ShardID    string
	Owner      string
	Checkpoint string
	// Records is how many records of the shard follow the checkpoint.
	Records int64
	// Millis is the age of the oldest record not yet processed (0 when
	// none is left): the IteratorAgeMilliseconds a consumer at the
	// checkpoint would report.
	Millis int64
}

// LeaseLag computes lag from the lease tables of internal/leases: each
// lease's checkpoint against the end of its shard. It implements Lag.
type LeaseLag struct {
	// Streams gives the shards' ends and reads the first record after a
	// checkpoint.
	Streams *streams.Service
	// Leases holds the tables; nil means no application has lag.
	Leases *leases.Service
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var _ Lag = (*LeaseLag)(nil)

// ConsumerLag implements Lag. It reads, for each lease with records left,
// the first of them, to learn its age.
func (l *LeaseLag) ConsumerLag(ctx context.Context, stream string) ([]AppLag, error) {
	if l.Leases == nil {
		return nil, nil
	}
	tables, err := l.Leases.ListTables(ctx, stream)
	if err != nil {
		var le *leases.Error
		if errors.As(err, &le) && le.Code == leases.CodeResourceNotFound {
			return nil, nil
		}
		return nil, err
	}
	if len(tables) == 0 {
		return nil, nil
	}
	stats, err := l.Streams.ShardStats(ctx, stream)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]streams.ShardStats, len(stats))
	for _, s := range stats {
		byID[s.ShardId] = s
	}
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	var out []AppLag
	for _, t := range tables {
		ls, err := l.Leases.ListLeases(ctx, leases.TableRef{App: t.ApplicationName, Stream: stream})
		if err != nil {
			return out, err
		}
		app := AppLag{Application: t.ApplicationName}
		for _, ls := range ls {
			sl := ShardLag{ShardID: ls.LeaseKey, Owner: ls.Owner, Checkpoint: ls.Checkpoint}
			st, ok := byID[ls.LeaseKey]
			if ok {
				// A Kinesis error (the shard trimmed meanwhile, reads
				// throttled) leaves this shard's age unknown, shown as 0.
				var kerr *streams.Error
				if err := l.shardLag(ctx, stream, st, &sl, now()); err != nil && !errors.As(err, &kerr) {
					return out, err
				}
			}
			app.Shards = append(app.Shards, sl)
			app.MaxMillis = max(app.MaxMillis, sl.Millis)
			app.Records += sl.Records
		}
		out = append(out, app)
	}
	return out, nil
}

// shardLag fills sl's Records and Millis for a shard in state st.
func (l *LeaseLag) shardLag(ctx context.Context, stream string, st streams.ShardStats, sl *ShardLag, now time.Time) error {
	in := &streams.GetShardIteratorInput{StreamName: &stream, ShardId: &st.ShardId}
	switch cp := sl.Checkpoint; cp {
	case leases.ShardEnd, leases.Latest, leases.AtTimestamp, "":
		// Done, or not started: a worker starting now begins at the end
		// (LATEST) or where its timestamp says; nothing is behind yet.
		return nil
	case leases.TrimHorizon:
		sl.Records = int64(st.Next - st.First)
		typ := "TRIM_HORIZON"
		in.ShardIteratorType = &typ
	default:
		off, ok := streams.SequenceOffset(cp)
		if !ok {
			return nil
		}
		if st.Next > off+1 {
			sl.Records = int64(st.Next - off - 1)
		}
		typ := "AFTER_SEQUENCE_NUMBER"
		in.ShardIteratorType, in.StartingSequenceNumber = &typ, &cp
	}
	if sl.Records == 0 {
		return nil
	}
	it, err := l.Streams.GetShardIterator(ctx, in)
	if err != nil {
		return err
	}
	one := int32(1)
	recs, err := l.Streams.GetRecords(ctx, &streams.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: &one})
	if err != nil {
		return err
	}
	if len(recs.Records) > 0 {
		sl.Millis = max(0, now.Sub(recs.Records[0].ApproximateArrivalTimestamp.Time).Milliseconds())
	}
	return nil
}
