package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/runnel/runnel/internal/streams"
)

// The data viewer's endpoint:
//
//	GET /console/api/streams/{name}/records?shard=all|<id>&type=<position>[&seq=..][&ts=..][&limit=n]
//	GET /console/api/streams/{name}/records?cursor=<cursor>[&limit=n]
//
// The first form starts reading at a position (TRIM_HORIZON, LATEST,
// AT_SEQUENCE_NUMBER with seq, AT_TIMESTAMP with ts in RFC 3339); the
// second continues where an answer's cursor points. An answer is
//
//	{"records": [{"shardId", "sequenceNumber", "partitionKey",
//	              "arrival" (RFC 3339, ms), "data" (base64)}],
//	 "cursor": "...", "millisBehindLatest": n, "ended": bool}
//
// and an error {"error": {"type", "message"}} with the Kinesis error type.
// The cursor holds a shard iterator per shard being read (iterators are
// signed by the service, so a cursor cannot reach another stream) and
// expires with them, after five minutes. Reading all shards follows
// resharding: a child shard is read from its start once all its parents
// being read have ended.

// recordOut is one record of an answer.
type recordOut struct {
	ShardID        string `json:"shardId"`
	SequenceNumber string `json:"sequenceNumber"`
	PartitionKey   string `json:"partitionKey"`
	Arrival        string `json:"arrival"`
	Data           []byte `json:"data"`
}

type recordsOut struct {
	Records            []recordOut `json:"records"`
	Cursor             string      `json:"cursor"`
	MillisBehindLatest int64       `json:"millisBehindLatest"`
	// Ended is true when every shard read has ended (closed shards read
	// to their end): nothing more will come.
	Ended bool `json:"ended"`
}

// cursor is the state of a reading, carried by the client between pages.
type cursor struct {
	// All is set when all shards are read: children are then followed.
	All bool `json:"a,omitempty"`
	// Iters holds an iterator per shard being read, "" for a shard read
	// to its end.
	Iters map[string]string `json:"i"`
	// TS, when not zero, is the AT_TIMESTAMP time (Unix ms) a child shard
	// found while reading all shards starts at; zero starts it at its
	// oldest record.
	TS int64 `json:"t,omitempty"`
}

const (
	defaultLimit = 25
	maxLimit     = 1000
)

// apiError writes a JSON error with a Kinesis error type.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"type": typ, "message": msg}})
}

func apiServiceError(w http.ResponseWriter, err error) {
	var e *streams.Error
	if errors.As(err, &e) {
		status := http.StatusBadRequest
		if e.Code == streams.CodeResourceNotFound {
			status = http.StatusNotFound
		}
		apiError(w, status, string(e.Code), e.Message)
		return
	}
	apiError(w, http.StatusInternalServerError, "InternalFailure", err.Error())
}

func (c *Console) apiRecords(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	q := r.URL.Query()
	limit := defaultLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			apiError(w, http.StatusBadRequest, "InvalidArgumentException", "limit must be a number from 1 to 1000")
			return
		}
		limit = n
	}
	stats, err := c.opts.Streams.ShardStats(ctx, name)
	if err != nil {
		apiServiceError(w, err)
		return
	}
	var cur cursor
	if v := q.Get("cursor"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		if err == nil {
			err = json.Unmarshal(raw, &cur)
		}
		if err != nil || len(cur.Iters) == 0 || len(cur.Iters) > len(stats) {
			apiError(w, http.StatusBadRequest, "InvalidArgumentException", "the cursor is not one this console gave: start reading again")
			return
		}
	} else {
		cur, err = c.startCursor(ctx, name, stats, q.Get("shard"), q.Get("type"), q.Get("seq"), q.Get("ts"))
		if err != nil {
			apiServiceError(w, err)
			return
		}
	}
	out, err := c.readCursor(ctx, name, stats, &cur, limit)
	if err != nil {
		apiServiceError(w, err)
		return
	}
	raw, _ := json.Marshal(cur)
	out.Cursor = base64.RawURLEncoding.EncodeToString(raw)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// invalid is an InvalidArgumentException for the data viewer's inputs.
func invalid(msg string) error {
	return &streams.Error{Code: streams.CodeInvalidArgument, Message: msg}
}

// startCursor opens iterators at a position.
func (c *Console) startCursor(ctx context.Context, name string, stats []streams.ShardStats, shard, typ, seq, ts string) (cursor, error) {
	cur := cursor{Iters: map[string]string{}}
	if typ == "" {
		typ = "TRIM_HORIZON"
	}
	in := streams.GetShardIteratorInput{StreamName: &name, ShardIteratorType: &typ}
	switch typ {
	case "TRIM_HORIZON", "LATEST":
	case "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER":
		if shard == "" || shard == "all" {
			return cur, invalid("a sequence number belongs to one shard: choose the shard to start at " + typ)
		}
		in.StartingSequenceNumber = &seq
	case "AT_TIMESTAMP":
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return cur, invalid("the timestamp " + strconv.Quote(ts) + " is not in RFC 3339 form, e.g. 2026-01-02T15:04:05Z")
		}
		stamp := streams.Timestamp{Time: t}
		in.Timestamp = &stamp
		cur.TS = t.UnixMilli()
	default:
		return cur, invalid("unknown starting position " + strconv.Quote(typ) + ": use TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER or AT_TIMESTAMP")
	}
	var start []string
	if shard == "" || shard == "all" {
		cur.All = true
		known := make(map[string]bool, len(stats))
		for _, s := range stats {
			known[s.ShardId] = true
		}
		for _, s := range stats {
			switch {
			case typ == "LATEST" && !s.Closed:
				start = append(start, s.ShardId)
			case typ != "LATEST" && !anyKnown(parentsOf(s), known):
				start = append(start, s.ShardId) // a root: children follow it
			}
		}
	} else {
		start = []string{shard}
	}
	for _, id := range start {
		in.ShardId = &id
		it, err := c.opts.Streams.GetShardIterator(ctx, &in)
		if err != nil {
			if cur.All && isNotFound(err) {
				cur.Iters[id] = "" // trimmed away: go on with its children
				continue
			}
			return cur, err
		}
		cur.Iters[id] = *it.ShardIterator
	}
	return cur, nil
}

func anyKnown(ids []string, known map[string]bool) bool {
	for _, id := range ids {
		if known[id] {
			return true
		}
	}
	return false
}

// readCursor reads up to about limit records from the cursor's shards and
// moves it on.
func (c *Console) readCursor(ctx context.Context, name string, stats []streams.ShardStats, cur *cursor, limit int) (*recordsOut, error) {
	out := &recordsOut{Records: []recordOut{}}
	for round := 0; round < 4; round++ {
		if cur.All {
			if err := c.addChildren(ctx, name, stats, cur); err != nil {
				return nil, err
			}
		}
		var live []string
		for id, it := range cur.Iters {
			if it != "" {
				live = append(live, id)
			}
		}
		sort.Strings(live)
		if len(live) == 0 {
			out.Ended = true
			break
		}
		per := int32(max(1, limit/len(live)))
		for _, id := range live {
			it := cur.Iters[id]
			res, err := c.opts.Streams.GetRecords(ctx, &streams.GetRecordsInput{ShardIterator: &it, Limit: &per})
			if err != nil {
				return nil, err
			}
			for _, rec := range res.Records {
				out.Records = append(out.Records, recordOut{
					ShardID: id, SequenceNumber: rec.SequenceNumber, PartitionKey: rec.PartitionKey,
					Arrival: rec.ApproximateArrivalTimestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Data: rec.Data,
				})
			}
			out.MillisBehindLatest = max(out.MillisBehindLatest, res.MillisBehindLatest)
			if res.NextShardIterator == nil {
				cur.Iters[id] = ""
			} else {
				cur.Iters[id] = *res.NextShardIterator
			}
		}
		// Another round only when a shard ended and its children may have
		// records now.
		if len(out.Records) > 0 || !cur.All || !anyEnded(cur, live) {
			break
		}
	}
	sort.SliceStable(out.Records, func(i, j int) bool { return out.Records[i].Arrival < out.Records[j].Arrival })
	return out, nil
}

func anyEnded(cur *cursor, ids []string) bool {
	for _, id := range ids {
		if cur.Iters[id] == "" {
			return true
		}
	}
	return false
}

// addChildren starts, in a cursor reading all shards, the children all of
// whose parents being read have ended.
func (c *Console) addChildren(ctx context.Context, name string, stats []streams.ShardStats, cur *cursor) error {
	for _, s := range stats {
		if _, ok := cur.Iters[s.ShardId]; ok {
			continue
		}
		ps := parentsOf(s)
		ready := false
		for _, p := range ps {
			it, reading := cur.Iters[p]
			if reading && it != "" {
				ready = false
				break
			}
			ready = ready || reading
		}
		if !ready {
			continue
		}
		id, typ := s.ShardId, "TRIM_HORIZON"
		in := &streams.GetShardIteratorInput{StreamName: &name, ShardId: &id, ShardIteratorType: &typ}
		if cur.TS != 0 {
			typ = "AT_TIMESTAMP"
			stamp := streams.TimestampMillis(cur.TS)
			in.Timestamp = &stamp
		}
		it, err := c.opts.Streams.GetShardIterator(ctx, in)
		switch {
		case err == nil:
			cur.Iters[id] = *it.ShardIterator
		case isNotFound(err):
			cur.Iters[id] = ""
		default:
			return err
		}
	}
	return nil
}

// streamOut is one stream in the overview endpoint, for `runnel top` and
// scripts.
type streamOut struct {
	Name              string    `json:"name"`
	Status            string    `json:"status"`
	Mode              string    `json:"mode"`
	OpenShards        int32     `json:"openShards"`
	RetentionHours    int32     `json:"retentionHours"`
	IncomingRecords   float64   `json:"incomingRecords"`
	IncomingBytes     float64   `json:"incomingBytes"`
	IteratorAgeMillis int64     `json:"iteratorAgeMillis"`
	SampledAt         time.Time `json:"sampledAt,omitzero"`
	Consumers         []appOut  `json:"consumers"`
}

type appOut struct {
	Application string `json:"application"`
	Records     int64  `json:"records"`
	Millis      int64  `json:"millis"`
}

// apiStreams answers GET /console/api/streams: every stream with its
// latest rates and its consumer applications' lag.
func (c *Console) apiStreams(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	names, err := listStreams(ctx, c.opts.Streams)
	if err != nil {
		apiServiceError(w, err)
		return
	}
	out := []streamOut{}
	for _, n := range names {
		sum, err := c.opts.Streams.DescribeStreamSummary(ctx, &streams.DescribeStreamSummaryInput{StreamName: &n})
		if err != nil {
			continue
		}
		d := sum.StreamDescriptionSummary
		s := streamOut{Name: n, Status: d.StreamStatus, Mode: mode(d.StreamModeDetails), OpenShards: d.OpenShardCount,
			RetentionHours: d.RetentionPeriodHours, Consumers: []appOut{}}
		if samples := c.rates.StreamRates(n); len(samples) > 0 {
			last := samples[len(samples)-1]
			s.IncomingRecords, s.IncomingBytes, s.IteratorAgeMillis, s.SampledAt = last.IncomingRecords, last.IncomingBytes, last.IteratorAgeMillis, last.Time
		}
		// The sampler's last look at the lag, when it has one: reading
		// it anew for every poll of `runnel top` would cost reads.
		apps, sampled := []AppLag(nil), false
		if sm, ok := c.rates.(*Sampler); ok {
			apps, sampled = sm.LastLag(n)
		}
		if !sampled && c.lag != nil {
			apps, _ = c.lag.ConsumerLag(ctx, n)
		}
		for _, a := range apps {
			s.Consumers = append(s.Consumers, appOut{a.Application, a.Records, a.MaxMillis})
		}
		out = append(out, s)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"streams": out})
}
