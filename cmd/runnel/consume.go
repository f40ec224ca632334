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
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/consumer"
)

// consumeConfig is everything `runnel consume` is told by flags and
// environment.
type consumeConfig struct {
	stream, app   string
	endpoint      string
	region        string
	format        string
	workerID      string
	initial       string
	fanOut        string
	leaseDuration time.Duration
	logLevel      slog.Level
}

// consumeFlags defines the flags of `runnel consume` on c, with defaults
// from the environment; the log level is parsed after the flags.
// Environment values that do not parse are collected in *envErr.
func consumeFlags(c *consumeConfig, getenv env) (fs *flag.FlagSet, logLevel *string, envErr *error) {
	fs = flag.NewFlagSet("runnel consume", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	envErr = new(error)
	d := envDefaults{getenv, envErr}
	envOr := d.str
	leaseDef := d.duration("RUNNEL_LEASE_DURATION", 10*time.Second)
	fs.StringVar(&c.stream, "stream", getenv("RUNNEL_STREAM"), "`name` of the stream to read; required (env RUNNEL_STREAM)")
	fs.StringVar(&c.app, "app", getenv("RUNNEL_APP"), "application `name`: workers of one application share its shards and checkpoints; required (env RUNNEL_APP)")
	fs.StringVar(&c.endpoint, "endpoint", envOr("RUNNEL_ENDPOINT", "http://127.0.0.1:4567"), "runnel's `URL` (env RUNNEL_ENDPOINT)")
	fs.StringVar(&c.region, "region", envOr("RUNNEL_REGION", "us-east-1"), "signing region (env RUNNEL_REGION)")
	fs.StringVar(&c.format, "format", envOr("RUNNEL_FORMAT", "text"), "how records are printed: text, json or hex (env RUNNEL_FORMAT)")
	fs.StringVar(&c.workerID, "worker-id", getenv("RUNNEL_WORKER_ID"), "this worker's `name` in the lease table; default: host name and a random suffix (env RUNNEL_WORKER_ID)")
	fs.StringVar(&c.initial, "initial-position", envOr("RUNNEL_INITIAL_POSITION", "TRIM_HORIZON"), "where shards start before their first checkpoint, for a new application: TRIM_HORIZON or LATEST (env RUNNEL_INITIAL_POSITION)")
	fs.StringVar(&c.fanOut, "fan-out", getenv("RUNNEL_FAN_OUT"), "read by enhanced fan-out (SubscribeToShard) as the stream consumer `name`, registered unless it exists; default: poll with GetRecords (env RUNNEL_FAN_OUT)")
	fs.DurationVar(&c.leaseDuration, "lease-duration", leaseDef, "how long a dead worker's shards wait before another takes them (env RUNNEL_LEASE_DURATION)")
	logLevel = fs.String("log-level", envOr("RUNNEL_LOG_LEVEL", "info"), "log level on stderr: debug, info, warn or error (env RUNNEL_LOG_LEVEL)")
	return fs, logLevel, envErr
}

// consumeUsage writes the help of `runnel consume`.
func consumeUsage(w io.Writer) {
	var c consumeConfig
	fs, _, _ := consumeFlags(&c, func(string) string { return "" })
	printUsage(w, fs, "Usage: runnel consume --stream NAME --app NAME [flags]",
		"Runs one worker of a consumer application (the Go library in package consumer)",
		"until SIGINT or SIGTERM: it takes its share of the stream's shards, prints each",
		"record with its shard and sequence number on stdout, and checkpoints after each",
		"batch. Start more workers with the same --app and they share the shards; stop",
		"one and the others take over.",
	)
}

func parseConsume(args []string, getenv env) (consumeConfig, error) {
	var c consumeConfig
	fs, logLevel, envErr := consumeFlags(&c, getenv)
	if err := parseFlags(fs, args, *envErr); err != nil {
		return c, err
	}
	if c.stream == "" || c.app == "" {
		return c, errors.New("--stream and --app are required")
	}
	switch c.format {
	case "text", "json", "hex":
	default:
		return c, fmt.Errorf("--format %q: use text, json or hex", c.format)
	}
	switch c.initial {
	case "TRIM_HORIZON", "LATEST":
	default:
		return c, fmt.Errorf("--initial-position %q: use TRIM_HORIZON or LATEST", c.initial)
	}
	if err := c.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return c, fmt.Errorf("--log-level %q: use debug, info, warn or error", *logLevel)
	}
	return c, nil
}

func runConsume(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	cfg, err := parseConsume(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		consumeUsage(stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "consume", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	// Dummy credentials unless the environment has real ones: runnel
	// checks the signature's shape, not the key.
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		id, secret = "runnel", "runnel"
	}
	client := kinesis.New(kinesis.Options{
		Region:       cfg.region,
		BaseEndpoint: aws.String(cfg.endpoint),
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))),
	})
	opts := []consumer.Option{
		consumer.LeaseDuration(cfg.leaseDuration),
		consumer.InitialPosition(consumer.Position{Type: cfg.initial}),
		consumer.Logger(log),
	}
	if cfg.workerID != "" {
		opts = append(opts, consumer.WorkerID(cfg.workerID))
	}
	if cfg.fanOut != "" {
		opts = append(opts, consumer.FanOut(cfg.fanOut))
	}
	c, err := consumer.New(client, cfg.stream, cfg.app, &printer{w: stdout, format: cfg.format}, opts...)
	if err != nil {
		return usageError(stderr, "consume", err)
	}
	if err := c.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "runnel consume: %v\n", err)
		return exitError
	}
	return exitOK
}

// printer is the processor of `runnel consume`: it prints records and
// checkpoints after each batch.
type printer struct {
	mu     sync.Mutex // one line at a time from the shards' goroutines
	w      io.Writer
	format string
}

func (p *printer) Initialize(ctx context.Context, in consumer.InitInput) error { return nil }

func (p *printer) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	var buf []byte
	for _, r := range in.Records {
		buf = p.appendRecord(buf, in.ShardID, r)
	}
	p.mu.Lock()
	_, err := p.w.Write(buf)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *printer) ShardEnded(ctx context.Context, cp *consumer.Checkpointer) error {
	return cp.Checkpoint(ctx)
}

func (p *printer) LeaseLost(ctx context.Context, shardID string) error { return nil }

// appendRecord formats one record as a line.
func (p *printer) appendRecord(buf []byte, shard string, r consumer.Record) []byte {
	switch p.format {
	case "json":
		line, _ := json.Marshal(struct {
			ShardId        string
			SequenceNumber string
			// Only for the user records of a KPL aggregate.
			SubSequenceNumber           uint64 `json:",omitempty"`
			PartitionKey                string
			ExplicitHashKey             string `json:",omitempty"`
			ApproximateArrivalTimestamp float64
			Data                        string
		}{shard, r.SequenceNumber, r.SubSequenceNumber, r.PartitionKey, r.ExplicitHashKey,
			float64(r.ApproximateArrivalTimestamp.UnixMilli()) / 1000, base64.StdEncoding.EncodeToString(r.Data)})
		buf = append(buf, line...)
	case "hex":
		buf = fmt.Appendf(buf, "%s %s %s %s", shard, r.SequenceNumber, strconv.Quote(r.PartitionKey), hex.EncodeToString(r.Data))
	default:
		// Quoted, so that a record with a newline stays on its line.
		buf = fmt.Appendf(buf, "%s %s %s %s", shard, r.SequenceNumber, strconv.Quote(r.PartitionKey), strconv.Quote(string(r.Data)))
	}
	return append(buf, '\n')
}
