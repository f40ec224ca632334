package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/disk"
	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/kinesisapi"
	"github.com/runnel/runnel/internal/server"
	"github.com/runnel/runnel/internal/streams"
)

// serveConfig is everything `runnel serve` is told by flags and environment.
type serveConfig struct {
	listen            string
	dataDir           string
	engine            string
	region            string
	accountID         string
	transitionDelay   time.Duration
	shardLimit        int
	enforceThroughput bool
	scalingsPerDay    int
	scaler            streams.ScalerOptions
	crashPoint        string // test hook: SIGKILL self at this resharding step
	tlsCert, tlsKey   string
	tlsSelfSigned     bool
	logLevel          slog.Level
	shutdownTimeout   time.Duration
	maxBodyBytes      int64
	pprofAddr         string // where to serve /debug/pprof/; empty: off
	maxBodyMemory     int64
	bodyReadTimeout   time.Duration
	writeTimeout      time.Duration
	subscribeTimeout  time.Duration
	maxHeaderBytes    int
	h2MaxStreams      int
	allowedHosts      string // comma-separated
	corsOrigins       string // comma-separated
}

// parseServe reads flags, each defaulting to its environment variable and
// then to the built-in default.
func parseServe(args []string, stderr io.Writer, getenv env) (serveConfig, error) {
	var c serveConfig
	fs := flag.NewFlagSet("runnel serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	var envErr error
	durationEnv := func(key string, def time.Duration) time.Duration {
		v := getenv(key)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			envErr = errors.Join(envErr, fmt.Errorf("%s=%q: %w", key, v, err))
			return def
		}
		return d
	}
	intEnv := func(key string, def int) int {
		v := getenv(key)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			envErr = errors.Join(envErr, fmt.Errorf("%s=%q: not a number", key, v))
			return def
		}
		return n
	}
	boolEnv := func(key string, def bool) bool {
		v := getenv(key)
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErr = errors.Join(envErr, fmt.Errorf("%s=%q: not a boolean", key, v))
			return def
		}
		return b
	}
	sdef := streams.DefaultOptions()
	fs.StringVar(&c.listen, "listen", envOr("RUNNEL_LISTEN", "127.0.0.1:4567"), "`address` to listen on (env RUNNEL_LISTEN); 0.0.0.0:4567 for all interfaces")
	fs.StringVar(&c.dataDir, "data-dir", envOr("RUNNEL_DATA_DIR", "./runnel-data"), "`directory` for the disk engine's data (env RUNNEL_DATA_DIR)")
	fs.StringVar(&c.engine, "engine", envOr("RUNNEL_ENGINE", "disk"), "storage engine: disk (durable) or memory (lost on exit) (env RUNNEL_ENGINE)")
	fs.StringVar(&c.region, "region", envOr("RUNNEL_REGION", sdef.Region), "AWS region shown in ARNs (env RUNNEL_REGION)")
	fs.StringVar(&c.accountID, "account-id", envOr("RUNNEL_ACCOUNT_ID", sdef.AccountID), "12-digit account id shown in ARNs and messages (env RUNNEL_ACCOUNT_ID)")
	fs.DurationVar(&c.transitionDelay, "transition-delay", durationEnv("RUNNEL_TRANSITION_DELAY", sdef.TransitionDelay), "how long streams stay CREATING/UPDATING/DELETING; 0s for immediate (env RUNNEL_TRANSITION_DELAY)")
	fs.IntVar(&c.shardLimit, "shard-limit", intEnv("RUNNEL_SHARD_LIMIT", sdef.ShardLimit), "the account's open-shard limit (env RUNNEL_SHARD_LIMIT)")
	fs.IntVar(&c.scalingsPerDay, "scalings-per-day", intEnv("RUNNEL_SCALINGS_PER_DAY", sdef.ScalingsPerDay), "UpdateShardCount calls a stream accepts per rolling 24 hours; 0 for no limit (env RUNNEL_SCALINGS_PER_DAY)")
	sc := sdef.Scaler
	fs.DurationVar(&c.scaler.Window, "scale-window", durationEnv("RUNNEL_SCALE_WINDOW", sc.Window), "ON_DEMAND streams: how often write rates are sampled and averaged (env RUNNEL_SCALE_WINDOW)")
	fs.DurationVar(&c.scaler.Cooldown, "scale-cooldown", durationEnv("RUNNEL_SCALE_COOLDOWN", sc.Cooldown), "ON_DEMAND streams: wait after a rescaling before merging cold shards (env RUNNEL_SCALE_COOLDOWN)")
	fs.Int64Var(&c.scaler.SplitBytesPerSec, "scale-split-bytes", int64(intEnv("RUNNEL_SCALE_SPLIT_BYTES", int(sc.SplitBytesPerSec))), "ON_DEMAND streams: split a shard writing more bytes/s than this (env RUNNEL_SCALE_SPLIT_BYTES)")
	fs.Int64Var(&c.scaler.SplitRecordsPerSec, "scale-split-records", int64(intEnv("RUNNEL_SCALE_SPLIT_RECORDS", int(sc.SplitRecordsPerSec))), "ON_DEMAND streams: split a shard writing more records/s than this (env RUNNEL_SCALE_SPLIT_RECORDS)")
	fs.Int64Var(&c.scaler.MergeBytesPerSec, "scale-merge-bytes", int64(intEnv("RUNNEL_SCALE_MERGE_BYTES", int(sc.MergeBytesPerSec))), "ON_DEMAND streams: merge two neighbours writing together fewer bytes/s than this (env RUNNEL_SCALE_MERGE_BYTES)")
	fs.Int64Var(&c.scaler.MergeRecordsPerSec, "scale-merge-records", int64(intEnv("RUNNEL_SCALE_MERGE_RECORDS", int(sc.MergeRecordsPerSec))), "ON_DEMAND streams: merge two neighbours writing together fewer records/s than this (env RUNNEL_SCALE_MERGE_RECORDS)")
	fs.IntVar(&c.scaler.MinShards, "scale-min-shards", intEnv("RUNNEL_SCALE_MIN_SHARDS", sc.MinShards), "ON_DEMAND streams: fewest open shards (env RUNNEL_SCALE_MIN_SHARDS)")
	fs.IntVar(&c.scaler.MaxShards, "scale-max-shards", intEnv("RUNNEL_SCALE_MAX_SHARDS", sc.MaxShards), "ON_DEMAND streams: most open shards (env RUNNEL_SCALE_MAX_SHARDS)")
	c.crashPoint = getenv("RUNNEL_CRASHPOINT")
	fs.BoolVar(&c.enforceThroughput, "enforce-throughput", boolEnv("RUNNEL_ENFORCE_THROUGHPUT", false), "enforce per-shard throughput limits like Kinesis (env RUNNEL_ENFORCE_THROUGHPUT)")
	fs.StringVar(&c.tlsCert, "tls-cert", envOr("RUNNEL_TLS_CERT", ""), "PEM certificate `file` to serve HTTPS/h2 with (needs --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", envOr("RUNNEL_TLS_KEY", ""), "PEM private key `file` for --tls-cert")
	fs.BoolVar(&c.tlsSelfSigned, "tls-self-signed", boolEnv("RUNNEL_TLS_SELF_SIGNED", false), "serve HTTPS/h2 with a certificate generated at start")
	logLevel := fs.String("log-level", envOr("RUNNEL_LOG_LEVEL", "info"), "log level: debug (every request), info, warn or error (env RUNNEL_LOG_LEVEL)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long to let in-flight requests finish on SIGTERM/SIGINT")
	fs.Int64Var(&c.maxBodyBytes, "max-body-bytes", kinesisapi.DefaultMaxBodyBytes, "largest request body accepted")
	hdef := kinesisapi.DefaultOptions()
	fs.Int64Var(&c.maxBodyMemory, "max-body-memory", int64(intEnv("RUNNEL_MAX_BODY_MEMORY", int(hdef.MaxBodyMemory))), "bytes all request bodies in flight may hold together; more is answered 503 ServiceUnavailable (env RUNNEL_MAX_BODY_MEMORY)")
	fs.DurationVar(&c.bodyReadTimeout, "body-read-timeout", durationEnv("RUNNEL_BODY_READ_TIMEOUT", hdef.BodyReadTimeout), "time to receive a whole request body; 0 for no limit (env RUNNEL_BODY_READ_TIMEOUT)")
	fs.DurationVar(&c.writeTimeout, "write-timeout", durationEnv("RUNNEL_WRITE_TIMEOUT", hdef.WriteTimeout), "time to write an answer; 0 for no limit (env RUNNEL_WRITE_TIMEOUT)")
	fs.DurationVar(&c.subscribeTimeout, "subscribe-write-timeout", durationEnv("RUNNEL_SUBSCRIBE_WRITE_TIMEOUT", hdef.SubscribeWriteTimeout), "time a SubscribeToShard consumer may take to accept one event before it is cut off (env RUNNEL_SUBSCRIBE_WRITE_TIMEOUT)")
	svdef := server.DefaultOptions()
	fs.IntVar(&c.maxHeaderBytes, "max-header-bytes", intEnv("RUNNEL_MAX_HEADER_BYTES", svdef.MaxHeaderBytes), "largest request header block accepted (env RUNNEL_MAX_HEADER_BYTES)")
	fs.IntVar(&c.h2MaxStreams, "h2-max-streams", intEnv("RUNNEL_H2_MAX_STREAMS", svdef.MaxConcurrentStreams), "concurrent requests one HTTP/2 connection may have (env RUNNEL_H2_MAX_STREAMS)")
	fs.StringVar(&c.allowedHosts, "allowed-hosts", envOr("RUNNEL_ALLOWED_HOSTS", ""), "comma-separated host names (name or name:port; * for any) accepted in the Host header besides localhost and IP addresses (env RUNNEL_ALLOWED_HOSTS)")
	fs.StringVar(&c.corsOrigins, "cors-origins", envOr("RUNNEL_CORS_ORIGINS", ""), "comma-separated web origins (http://localhost:3000; * for any) allowed to call the API from a browser; empty: CORS off (env RUNNEL_CORS_ORIGINS)")
	fs.StringVar(&c.pprofAddr, "pprof", envOr("RUNNEL_PPROF", ""), "serve Go profiling endpoints (/debug/pprof/) on this `address`, e.g. 127.0.0.1:6060; off when empty (env RUNNEL_PPROF)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: runnel serve [flags]")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Runs the Kinesis-compatible server. Point any AWS SDK or the AWS CLI at it:")
		fmt.Fprintln(stderr, "  aws --endpoint-url http://127.0.0.1:4567 kinesis list-streams")
		fmt.Fprintln(stderr)
		fmt.Fprintln(stderr, "Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if envErr != nil {
		return c, fmt.Errorf("bad environment: %w", envErr)
	}
	if err := c.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return c, fmt.Errorf("--log-level %q: use debug, info, warn or error", *logLevel)
	}
	switch c.engine {
	case "disk", "memory":
	default:
		return c, fmt.Errorf("--engine %q: use disk or memory", c.engine)
	}
	if c.engine == "disk" && c.dataDir == "" {
		return c, errors.New("--data-dir is empty: the disk engine needs a directory")
	}
	// Check the listener's and the handler's options now, before anything
	// is opened.
	if err := c.serverOptions(nil).Validate(); err != nil {
		return c, err
	}
	if err := c.handlerOptions(nil).Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// serverOptions are the listener's options for c.
func (c serveConfig) serverOptions(log *slog.Logger) server.Options {
	sv := server.DefaultOptions()
	sv.Addr = c.listen
	sv.TLSCertFile, sv.TLSKeyFile, sv.TLSSelfSigned = c.tlsCert, c.tlsKey, c.tlsSelfSigned
	sv.MaxHeaderBytes = c.maxHeaderBytes
	sv.MaxConcurrentStreams = c.h2MaxStreams
	sv.Logger = log
	return sv
}

// handlerOptions are the API handler's options for c.
func (c serveConfig) handlerOptions(log *slog.Logger) kinesisapi.Options {
	h := kinesisapi.DefaultOptions()
	h.Logger = log
	h.MaxBodyBytes = c.maxBodyBytes
	h.MaxBodyMemory = c.maxBodyMemory
	h.BodyReadTimeout = c.bodyReadTimeout
	h.WriteTimeout = c.writeTimeout
	h.SubscribeWriteTimeout = c.subscribeTimeout
	h.AllowedHosts = splitList(c.allowedHosts)
	h.CORSOrigins = splitList(c.corsOrigins)
	return h
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	cfg, err := parseServe(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "runnel serve: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if n := schedulerProcs(cfg.engine, getenv, runtime.GOMAXPROCS(0)); n != runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
		log.Debug("scheduler", slog.Int("gomaxprocs", n))
	}
	if err := serve(ctx, cfg, log, nil); err != nil {
		fmt.Fprintf(stderr, "runnel serve: %v\n", err)
		return exitError
	}
	return exitOK
}

// schedulerProcs returns the GOMAXPROCS runnel serve runs with, given the
// default: twice it with the disk engine, unless the environment sets
// GOMAXPROCS. The disk engine's commit loops block their threads in pwrite
// and fdatasync, and the Go scheduler hands such a thread's P to another
// thread only after a while; with one P per core, runnable request
// goroutines then wait while a core sits idle. Measured on 2 cores under
// durable 1 KiB PutRecords load (docs/BENCHMARKS.md), twice the Ps wrote
// 15-20% more records per second.
func schedulerProcs(engineName string, getenv env, procs int) int {
	if engineName != "disk" || getenv("GOMAXPROCS") != "" {
		return procs
	}
	return 2 * procs
}

// serve runs the server until ctx ends, then shuts down in order: stop
// accepting, finish in-flight requests, close the service, close the engine.
// ready, when not nil, receives the server once it listens.
func serve(ctx context.Context, cfg serveConfig, log *slog.Logger, ready chan<- *server.Server) (err error) {
	var eng engine.Engine
	switch cfg.engine {
	case "memory":
		eng = mem.New(mem.DefaultOptions())
	default:
		d, oerr := disk.Open(cfg.dataDir, disk.DefaultOptions())
		if oerr != nil {
			return fmt.Errorf("open data directory %s: %w (is another runnel using it? choose another with --data-dir or RUNNEL_DATA_DIR)", cfg.dataDir, oerr)
		}
		eng = d
	}
	defer func() {
		if cerr := eng.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close engine: %w", cerr))
		}
	}()

	sopts := streams.DefaultOptions()
	sopts.Region = cfg.region
	sopts.AccountID = cfg.accountID
	sopts.TransitionDelay = cfg.transitionDelay
	sopts.ShardLimit = cfg.shardLimit
	sopts.EnforceThroughput = cfg.enforceThroughput
	sopts.ScalingsPerDay = cfg.scalingsPerDay
	sopts.Scaler = cfg.scaler
	sopts.Logger = log
	if p := cfg.crashPoint; p != "" {
		// A test hook (RUNNEL_CRASHPOINT): die like a power cut at that step.
		sopts.CrashPoint = func(at string) {
			if at == p {
				log.Warn("crash point reached: killing the process", slog.String("point", at))
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			}
		}
	}
	// The service outlives the signal: it is closed only after the server
	// has drained.
	svc, err := streams.New(context.WithoutCancel(ctx), eng, sopts)
	if err != nil {
		return fmt.Errorf("start service: %w", err)
	}
	defer func() {
		if cerr := svc.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close service: %w", cerr))
		}
	}()

	h, err := kinesisapi.NewHandler(svc, cfg.handlerOptions(log))
	if err != nil {
		return err
	}
	if cfg.pprofAddr != "" {
		stopPprof, perr := startPprof(cfg.pprofAddr, log)
		if perr != nil {
			return fmt.Errorf("--pprof %s: %w", cfg.pprofAddr, perr)
		}
		defer stopPprof()
	}
	srv, err := server.Listen(ctx, h, cfg.serverOptions(log))
	if errors.Is(err, server.ErrAddrInUse) {
		return fmt.Errorf("%s is already in use (another runnel?): stop that process or choose another address with --listen or RUNNEL_LISTEN", cfg.listen)
	}
	if err != nil {
		return err
	}
	log.Info("runnel listening",
		slog.String("endpoint", srv.Endpoint()),
		slog.String("engine", cfg.engine),
		slog.String("data_dir", dataDirAttr(cfg)),
		slog.String("region", cfg.region),
		slog.String("version", versionString()))
	if ready != nil {
		ready <- srv
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", slog.Duration("timeout", cfg.shutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	// SubscribeToShard responses last minutes: end them (and any that
	// start while the listener closes) so the shutdown need not wait.
	drained, ended := make(chan struct{}), make(chan struct{})
	defer func() { close(drained); <-ended }()
	go func() {
		defer close(ended)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			svc.EndSubscriptions()
			select {
			case <-drained:
				return
			case <-t.C:
			}
		}
	}()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("in-flight requests cut short", slog.Any("error", err))
	}
	if err := <-served; err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

func dataDirAttr(cfg serveConfig) string {
	if cfg.engine == "memory" {
		return "(none: memory engine)"
	}
	return strings.TrimSpace(cfg.dataDir)
}
