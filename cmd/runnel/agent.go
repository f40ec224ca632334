package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/internal/agent"
	"github.com/runnel/runnel/internal/sdkclient"
)

// agentConfig is everything `runnel agent` is told by flags and environment.
type agentConfig struct {
	config             string
	endpoint           string
	progress           bool
	statusInterval     time.Duration
	checkpointInterval time.Duration
	pprof              string
	logLevel           slog.Level
}

// agentFlags defines the flags of `runnel agent` on c, with defaults from
// the environment. Environment values that do not parse are collected in
// *envErr.
func agentFlags(c *agentConfig, getenv env) (fs *flag.FlagSet, logLevel *string, envErr *error) {
	fs = flag.NewFlagSet("runnel agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	envErr = new(error)
	d := envDefaults{getenv, envErr}
	envOr, dur := d.str, d.duration
	progress := false
	if v := getenv("RUNNEL_PROGRESS"); v != "" {
		switch v {
		case "1", "true", "TRUE", "yes":
			progress = true
		case "0", "false", "FALSE", "no":
		default:
			*envErr = fmt.Errorf("RUNNEL_PROGRESS=%q: use true or false", v)
		}
	}
	fs.StringVar(&c.config, "config", envOr("RUNNEL_CONFIG", "/etc/aws-kinesis/agent.json"), "the agent configuration `file`, in the Kinesis Agent's agent.json format (env RUNNEL_CONFIG)")
	fs.StringVar(&c.endpoint, "endpoint", getenv("RUNNEL_ENDPOINT"), "the Kinesis endpoint `URL`, overriding the file's kinesis.endpoint (env RUNNEL_ENDPOINT)")
	fs.BoolVar(&c.progress, "progress", progress, "print a progress line on stderr every second (env RUNNEL_PROGRESS)")
	fs.DurationVar(&c.statusInterval, "status-interval", dur("RUNNEL_STATUS_INTERVAL", 30*time.Second), "how often to log each file's progress; 0 for never (env RUNNEL_STATUS_INTERVAL)")
	fs.DurationVar(&c.checkpointInterval, "checkpoint-interval", dur("RUNNEL_CHECKPOINT_INTERVAL", 500*time.Millisecond), "how often acknowledged progress is saved to the checkpoint file (env RUNNEL_CHECKPOINT_INTERVAL)")
	fs.StringVar(&c.pprof, "pprof", getenv("RUNNEL_PPROF"), "serve Go's profiling endpoints (/debug/pprof/) on this `address`; default off (env RUNNEL_PPROF)")
	logLevel = fs.String("log-level", envOr("RUNNEL_LOG_LEVEL", "info"), "log level on stderr: debug, info, warn or error (env RUNNEL_LOG_LEVEL)")
	return fs, logLevel, envErr
}

func agentUsage(w io.Writer) {
	var c agentConfig
	fs, _, _ := agentFlags(&c, func(string) string { return "" })
	printUsage(w, fs, "Usage: runnel agent --config agent.json [flags]",
		"Tails log files into Kinesis streams until SIGINT or SIGTERM, configured by a",
		"file in the Kinesis Agent's format (docs/AGENT.md). Each file's progress is saved",
		"in the configuration's checkpointFile once its records are acknowledged, so a",
		"restart continues where the last run stopped, across rotations.",
	)
}

func parseAgent(args []string, getenv env) (agentConfig, error) {
	var c agentConfig
	fs, logLevel, envErr := agentFlags(&c, getenv)
	if err := parseFlags(fs, args, *envErr); err != nil {
		return c, err
	}
	if c.statusInterval < 0 || c.checkpointInterval <= 0 {
		return c, errors.New("--status-interval must be 0 or more and --checkpoint-interval more than 0")
	}
	if err := c.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return c, fmt.Errorf("--log-level %q: use debug, info, warn or error", *logLevel)
	}
	return c, nil
}

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	flags, err := parseAgent(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		agentUsage(stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "agent", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: flags.logLevel}))
	// As for the server: the live heap is small next to the request bodies
	// passing through, so collect less often, under a soft limit.
	applyGC(gcSettings("disk", getenv, defaultGCPercent, defaultMemoryLimit))
	cfg, err := agent.LoadConfig(flags.config)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "runnel agent: %v\n", err)
		return exitError
	}
	for _, k := range cfg.Ignored {
		log.Info("configuration key of the Kinesis Agent has no effect in runnel agent", "key", k)
	}
	for _, k := range cfg.Unknown {
		log.Warn("unknown configuration key ignored: misspelt?", "file", cfg.Path, "key", k)
	}
	if flags.endpoint != "" {
		cfg.KinesisEndpoint = flags.endpoint
	}
	if flags.pprof != "" {
		stop, err := startPprof(flags.pprof, log)
		if err != nil {
			fmt.Fprintf(stderr, "runnel agent: --pprof %s: %v\n", flags.pprof, err)
			return exitError
		}
		defer stop()
	}
	client := agentClient(cfg, getenv)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := checkStreams(ctx, client, cfg, log); err != nil {
		fmt.Fprintf(stderr, "runnel agent: %v\n", err)
		return exitError
	}
	a, err := agent.New(agent.Options{
		Config:             cfg,
		CheckpointInterval: flags.checkpointInterval,
		Logger:             log,
		NewSink: func(f *agent.Flow) (agent.Sink, error) {
			return agent.NewProducerSink(client, f.KinesisStream, agent.SinkOptions{
				MaxAge: f.MaxBufferAge, RetryInitial: f.RetryInitialBackoff, RetryMax: f.RetryMaxBackoff,
				// Amazon Kinesis throttles a shard past 1 MiB/s and 1,000
				// records/s: pace the records there; runnel has no such
				// limits unless told to, and answers throttles anyway.
				RateLimit: awsEndpoint(client),
			})
		},
	})
	if err != nil {
		fmt.Fprintf(stderr, "runnel agent: %v\n", err)
		return exitError
	}
	log.Info("agent started", "config", cfg.Path, "flows", len(cfg.Flows), "checkpoints", cfg.CheckpointFile)
	reportDone := make(chan struct{})
	go func() {
		defer close(reportDone)
		report(ctx, a, flags, stderr, log)
	}()
	err = a.Run(ctx)
	<-reportDone
	if err != nil {
		fmt.Fprintf(stderr, "runnel agent: %v\n", err)
		return exitError
	}
	log.Info("agent stopped; progress saved", "checkpoints", cfg.CheckpointFile)
	return exitOK
}

// agentClient makes the Kinesis client: the configuration's keys, else
// the environment's, else placeholder keys (runnel does not check them).
func agentClient(cfg *agent.Config, getenv env) *kinesis.Client {
	id, secret, token := cfg.AccessKeyID, cfg.SecretAccessKey, ""
	if id == "" {
		id, secret, token = getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY"), getenv("AWS_SESSION_TOKEN")
	}
	if id == "" || secret == "" {
		id, secret, token = "runnel", "runnel", ""
	}
	region := cfg.Region
	for _, k := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if region == "" {
			region = getenv(k)
		}
	}
	if region == "" {
		region = "us-east-1"
	}
	o := kinesis.Options{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, token)),
		HTTPClient:  sdkclient.Guard(awshttp.NewBuildableClient()),
	}
	if cfg.KinesisEndpoint != "" {
		o.BaseEndpoint = aws.String(cfg.KinesisEndpoint)
	}
	return kinesis.New(o)
}

// checkStreams fails early on a stream that does not exist; other errors
// (the endpoint not up yet) only warn, as sending retries.
func checkStreams(ctx context.Context, client *kinesis.Client, cfg *agent.Config, log *slog.Logger) error {
	for _, f := range cfg.Flows {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := client.DescribeStreamSummary(cctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(f.KinesisStream)})
		cancel()
		var nf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &nf):
			return fmt.Errorf("%s: flows[%d].kinesisStream: stream %q does not exist at %s: create it (aws kinesis create-stream --stream-name %s --shard-count 1) or correct the name",
				cfg.Path, f.Index, f.KinesisStream, endpointName(cfg), f.KinesisStream)
		case err != nil:
			log.Warn("cannot check the stream; sending will retry", "stream", f.KinesisStream, "error", err)
		}
	}
	return nil
}

func endpointName(cfg *agent.Config) string {
	if cfg.KinesisEndpoint != "" {
		return cfg.KinesisEndpoint
	}
	return "AWS"
}

// report prints the progress line every second with --progress and logs
// each file's progress every --status-interval, until ctx ends.
func report(ctx context.Context, a *agent.Agent, flags agentConfig, stderr io.Writer, log *slog.Logger) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastStatus := time.Now()
	var lastRecords uint64
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			if flags.progress {
				fmt.Fprintln(stderr)
			}
			return
		case now := <-tick.C:
			st := a.Status()
			if flags.progress {
				var lines, records uint64
				var behind int64
				for _, f := range st {
					lines += f.Lines
					records += f.Records
					behind += f.Behind
				}
				rate := float64(records-lastRecords) / now.Sub(last).Seconds()
				fmt.Fprintf(stderr, "\ragent: %d files, %d lines read, %d records sent (%.0f/s), %s behind   ",
					len(st), lines, records, rate, humanBytes(behind))
				lastRecords, last = records, now
			}
			if flags.statusInterval > 0 && now.Sub(lastStatus) >= flags.statusInterval {
				lastStatus = now
				for _, f := range st {
					log.Info("status", "flow", f.Flow, "file", filepath.Base(f.Path), "lines", f.Lines,
						"records_sent", f.Records, "bytes_behind", f.Behind, "detached", f.Detached)
				}
			}
		}
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// awsEndpoint reports whether the client talks to Amazon Kinesis (no
// endpoint of its own, or an amazonaws.com one).
func awsEndpoint(c *kinesis.Client) bool {
	ep := aws.ToString(c.Options().BaseEndpoint)
	if ep == "" {
		return true
	}
	u, err := url.Parse(ep)
	return err == nil && (strings.HasSuffix(u.Hostname(), ".amazonaws.com") || strings.HasSuffix(u.Hostname(), ".amazonaws.com.cn"))
}
