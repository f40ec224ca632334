package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// tailConfig is everything `runnel tail` is told by flags and environment.
type tailConfig struct {
	stream   string
	from     string
	format   string
	endpoint string
	region   string
	poll     time.Duration
}

// tailFlags defines the flags of `runnel tail` on c, with defaults from the
// environment. Environment values that do not parse are collected in
// *envErr.
func tailFlags(c *tailConfig, getenv env) (fs *flag.FlagSet, envErr *error) {
	fs = flag.NewFlagSet("runnel tail", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	envErr = new(error)
	d := envDefaults{getenv, envErr}
	envOr := d.str
	poll := d.duration("RUNNEL_POLL_INTERVAL", time.Second)
	fs.StringVar(&c.from, "from", envOr("RUNNEL_FROM", "latest"), "where to start: trim-horizon, latest, a sequence number or an RFC 3339 time (env RUNNEL_FROM)")
	fs.StringVar(&c.format, "format", envOr("RUNNEL_FORMAT", "text"), "how records are printed: text, json or hex (env RUNNEL_FORMAT)")
	fs.StringVar(&c.endpoint, "endpoint", envOr("RUNNEL_ENDPOINT", "http://127.0.0.1:4567"), "runnel's `URL` (env RUNNEL_ENDPOINT)")
	fs.StringVar(&c.region, "region", envOr("RUNNEL_REGION", "us-east-1"), "signing region (env RUNNEL_REGION)")
	fs.DurationVar(&c.poll, "poll-interval", poll, "how long to wait before reading a shard again when it had no new records (env RUNNEL_POLL_INTERVAL)")
	return fs, envErr
}

func tailUsage(w io.Writer) {
	var c tailConfig
	fs, _ := tailFlags(&c, func(string) string { return "" })
	printUsage(w, fs, "Usage: runnel tail [flags] STREAM",
		"Prints a stream's records as they arrive, from every shard, until Ctrl-C. When",
		"shards are split or merged it goes on with the children once their parents",
		"are read to their end. It reads with GetRecords through the Kinesis API, so it",
		"works against any Kinesis endpoint. One line per record on stdout:",
		"  text: arrival time, shard, sequence number, quoted partition key, quoted data",
		"  hex:  the same with the data in hex",
		"  json: one object per record, Data in base64",
		"Notices (shards ending, children followed) go to stderr.",
	)
}

// parseTail reads the stream name and the flags, which may come before or
// after it.
func parseTail(args []string, getenv env) (tailConfig, error) {
	var c tailConfig
	fs, envErr := tailFlags(&c, getenv)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		c.stream = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return c, err
		}
		if fs.NArg() > 0 {
			return c, fmt.Errorf("unexpected argument %q: give one stream", fs.Arg(0))
		}
	}
	if *envErr != nil {
		return c, fmt.Errorf("bad environment: %w", *envErr)
	}
	if c.stream == "" {
		return c, errors.New("name the stream to follow: runnel tail STREAM")
	}
	switch c.format {
	case "text", "json", "hex":
	default:
		return c, fmt.Errorf("--format %q: use text, json or hex", c.format)
	}
	if _, err := parseFrom(c.from); err != nil {
		return c, err
	}
	if c.poll <= 0 {
		return c, fmt.Errorf("--poll-interval %s: must be positive", c.poll)
	}
	return c, nil
}

// startPos is where tail starts: an iterator type, with its sequence
// number or time.
type startPos struct {
	typ types.ShardIteratorType
	seq string
	at  time.Time
}

func parseFrom(s string) (startPos, error) {
	switch strings.ToLower(s) {
	case "trim-horizon", "trim_horizon":
		return startPos{typ: types.ShardIteratorTypeTrimHorizon}, nil
	case "latest":
		return startPos{typ: types.ShardIteratorTypeLatest}, nil
	}
	if s != "" && strings.Trim(s, "0123456789") == "" {
		return startPos{typ: types.ShardIteratorTypeAtSequenceNumber, seq: s}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return startPos{typ: types.ShardIteratorTypeAtTimestamp, at: t}, nil
	}
	return startPos{}, fmt.Errorf("--from %q: use trim-horizon, latest, a sequence number or an RFC 3339 time such as 2026-01-02T15:04:05Z", s)
}

func runTail(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	cfg, err := parseTail(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		tailUsage(stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "tail", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	t := &tailer{cfg: cfg, client: kinesisClient(cfg.endpoint, cfg.region, getenv), out: stdout, notes: stderr}
	if err := t.run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "runnel tail: %v\n", err)
		return exitError
	}
	return exitOK
}

// kinesisClient is an SDK client for endpoint. Dummy credentials unless the
// environment has real ones: runnel checks the signature's shape, not the
// key.
func kinesisClient(endpoint, region string, getenv env) *kinesis.Client {
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		id, secret = "runnel", "runnel"
	}
	return kinesis.New(kinesis.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))),
	})
}

// tailer follows one stream.
type tailer struct {
	cfg    tailConfig
	client *kinesis.Client
	out    io.Writer
	notes  io.Writer

	shards map[string]*tailShard
	// parents of every listed shard, by shard id, and whether it is closed.
	parents map[string][]string
	closed  map[string]bool
	order   []string // shard ids in ListShards order
}

// tailShard is the reading state of one shard.
type tailShard struct {
	iter    *string
	lastSeq string
	ended   bool
	idle    time.Time // not read again before this
}

func (t *tailer) run(ctx context.Context) error {
	from, _ := parseFrom(t.cfg.from)
	t.shards = map[string]*tailShard{}
	if err := t.list(ctx); err != nil {
		return err
	}
	// Which shards start, and where.
	var starts []string
	skip := map[string]bool{}
	switch from.typ {
	case types.ShardIteratorTypeLatest:
		for _, id := range t.order {
			if !t.closed[id] {
				starts = append(starts, id)
			}
		}
	case types.ShardIteratorTypeAtSequenceNumber:
		shard, arrival, err := t.findSequence(ctx, from.seq)
		if err != nil {
			return err
		}
		// That shard from the record on; the others from its arrival
		// time, leaving out the shard's ancestors, read already.
		if err := t.open(ctx, shard, from); err != nil {
			return err
		}
		for _, a := range t.ancestors(shard) {
			skip[a] = true
		}
		from = startPos{typ: types.ShardIteratorTypeAtTimestamp, at: arrival}
		for _, id := range t.roots() {
			if !skip[id] && id != shard {
				starts = append(starts, id)
			}
		}
	default:
		starts = t.roots()
	}
	for _, id := range starts {
		if err := t.open(ctx, id, from); err != nil {
			return err
		}
	}
	fmt.Fprintf(t.notes, "runnel tail: following %s (%d shards) from %s; Ctrl-C to stop\n", t.cfg.stream, len(t.shards), t.cfg.from)
	child := from
	if child.typ != types.ShardIteratorTypeAtTimestamp {
		child = startPos{typ: types.ShardIteratorTypeTrimHorizon}
	}
	var buf []byte
	for ctx.Err() == nil {
		read := false
		next := time.Now().Add(t.cfg.poll)
		for _, id := range t.order {
			s := t.shards[id]
			if s == nil || s.ended || time.Now().Before(s.idle) {
				if s != nil && !s.ended && s.idle.Before(next) {
					next = s.idle
				}
				continue
			}
			out, err := t.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: s.iter, Limit: aws.Int32(1000)})
			var expired *types.ExpiredIteratorException
			switch {
			case errors.As(err, &expired):
				// Idle for five minutes: continue after the last record.
				pos := startPos{typ: types.ShardIteratorTypeAfterSequenceNumber, seq: s.lastSeq}
				if s.lastSeq == "" {
					pos = startPos{typ: types.ShardIteratorTypeLatest}
				}
				if err := t.open(ctx, id, pos); err != nil {
					return err
				}
				continue
			case err != nil:
				return err
			}
			buf = buf[:0]
			for _, r := range out.Records {
				buf = t.appendRecord(buf, id, r)
				s.lastSeq = aws.ToString(r.SequenceNumber)
			}
			if len(buf) > 0 {
				if _, err := t.out.Write(buf); err != nil {
					return err
				}
				read = true
			}
			if aws.ToInt64(out.MillisBehindLatest) == 0 {
				// Caught up: wait before asking this shard again.
				s.idle = time.Now().Add(t.cfg.poll)
			}
			s.iter = out.NextShardIterator
			if s.iter == nil {
				s.ended = true
				if err := t.follow(ctx, id, child); err != nil {
					return err
				}
				read = true
			}
		}
		if !read {
			if !t.anyOpen() {
				return errors.New("every shard followed has ended and none follows them")
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(next)):
			}
		}
	}
	return nil
}

// list reads the stream's shards.
func (t *tailer) list(ctx context.Context) error {
	t.parents = map[string][]string{}
	t.closed = map[string]bool{}
	t.order = t.order[:0]
	in := &kinesis.ListShardsInput{StreamName: &t.cfg.stream}
	for {
		page, err := t.client.ListShards(ctx, in)
		if err != nil {
			return err
		}
		for _, sh := range page.Shards {
			id := aws.ToString(sh.ShardId)
			t.order = append(t.order, id)
			for _, pid := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
				if pid != nil {
					t.parents[id] = append(t.parents[id], *pid)
				}
			}
			t.closed[id] = sh.SequenceNumberRange != nil && sh.SequenceNumberRange.EndingSequenceNumber != nil
		}
		if page.NextToken == nil {
			return nil
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}

// roots are the listed shards none of whose parents is listed.
func (t *tailer) roots() []string {
	var out []string
	for _, id := range t.order {
		root := true
		for _, p := range t.parents[id] {
			if slices.Contains(t.order, p) {
				root = false
			}
		}
		if root {
			out = append(out, id)
		}
	}
	return out
}

func (t *tailer) ancestors(id string) []string {
	var out []string
	for _, p := range t.parents[id] {
		out = append(out, p)
		out = append(out, t.ancestors(p)...)
	}
	return out
}

func (t *tailer) anyOpen() bool {
	for _, s := range t.shards {
		if !s.ended {
			return true
		}
	}
	return false
}

// open gets an iterator for a shard at pos.
func (t *tailer) open(ctx context.Context, id string, pos startPos) error {
	in := &kinesis.GetShardIteratorInput{StreamName: &t.cfg.stream, ShardId: aws.String(id), ShardIteratorType: pos.typ}
	switch pos.typ {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		in.StartingSequenceNumber = aws.String(pos.seq)
	case types.ShardIteratorTypeAtTimestamp:
		in.Timestamp = aws.Time(pos.at)
	}
	out, err := t.client.GetShardIterator(ctx, in)
	if err != nil {
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) && len(t.parents[id]) > 0 {
			// A closed shard retention removed: go on with its children.
			t.shards[id] = &tailShard{ended: true}
			return nil
		}
		return fmt.Errorf("%s: %w", id, err)
	}
	s := t.shards[id]
	if s == nil {
		s = &tailShard{}
		t.shards[id] = s
	}
	s.iter, s.ended = out.ShardIterator, false
	return nil
}

// follow starts the children of an ended shard whose parents have all
// ended.
func (t *tailer) follow(ctx context.Context, ended string, pos startPos) error {
	if err := t.list(ctx); err != nil {
		return err
	}
	var kids []string
	for _, id := range t.order {
		if _, started := t.shards[id]; started || !slices.Contains(t.parents[id], ended) {
			continue
		}
		ready := true
		for _, p := range t.parents[id] {
			if s, ok := t.shards[p]; ok && !s.ended {
				ready = false
			}
		}
		if !ready {
			continue
		}
		if err := t.open(ctx, id, pos); err != nil {
			return err
		}
		kids = append(kids, id)
	}
	if len(kids) > 0 {
		fmt.Fprintf(t.notes, "runnel tail: %s ended; following %s\n", ended, strings.Join(kids, ", "))
	} else {
		fmt.Fprintf(t.notes, "runnel tail: %s ended\n", ended)
	}
	return nil
}

// findSequence finds the shard a sequence number belongs to and the
// arrival time of its record.
func (t *tailer) findSequence(ctx context.Context, seq string) (string, time.Time, error) {
	for _, id := range t.order {
		it, err := t.client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: &t.cfg.stream, ShardId: aws.String(id),
			ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(seq)})
		if err != nil {
			var inv *types.InvalidArgumentException
			var nf *types.ResourceNotFoundException
			if errors.As(err, &inv) || errors.As(err, &nf) {
				continue
			}
			return "", time.Time{}, err
		}
		out, err := t.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
		if err != nil {
			return "", time.Time{}, err
		}
		if len(out.Records) == 0 {
			continue
		}
		if aws.ToString(out.Records[0].SequenceNumber) != seq {
			continue
		}
		return id, aws.ToTime(out.Records[0].ApproximateArrivalTimestamp), nil
	}
	return "", time.Time{}, fmt.Errorf("--from %s: no shard of %s holds a record with this sequence number (retention may have removed it)", seq, t.cfg.stream)
}

// appendRecord formats one record as a line.
func (t *tailer) appendRecord(buf []byte, shard string, r types.Record) []byte {
	at := aws.ToTime(r.ApproximateArrivalTimestamp)
	seq, pk := aws.ToString(r.SequenceNumber), aws.ToString(r.PartitionKey)
	switch t.cfg.format {
	case "json":
		line, _ := json.Marshal(struct {
			ShardId                     string
			SequenceNumber              string
			PartitionKey                string
			ApproximateArrivalTimestamp float64
			Data                        string
		}{shard, seq, pk, float64(at.UnixMilli()) / 1000, base64.StdEncoding.EncodeToString(r.Data)})
		buf = append(buf, line...)
	case "hex":
		buf = fmt.Appendf(buf, "%s %s %s %s %s", at.UTC().Format("2006-01-02T15:04:05.000Z"), shard, seq, strconv.Quote(pk), hex.EncodeToString(r.Data))
	default:
		// Quoted, so that a record with a newline stays on its line.
		buf = fmt.Appendf(buf, "%s %s %s %s %s", at.UTC().Format("2006-01-02T15:04:05.000Z"), shard, seq, strconv.Quote(pk), strconv.Quote(string(r.Data)))
	}
	return append(buf, '\n')
}
