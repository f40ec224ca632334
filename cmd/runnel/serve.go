package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/runnel/runnel/internal/auth"
	"github.com/runnel/runnel/internal/config"
	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/disk"
	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/firehoseapi"
	"github.com/runnel/runnel/internal/iam"
	"github.com/runnel/runnel/internal/keystore"
	"github.com/runnel/runnel/internal/kinesisapi"
	"github.com/runnel/runnel/internal/leaseapi"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/metrics"
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
	tlsClientCA       string // PEM bundle client certificates must chain to
	tlsClientAuth     string // "", "require" or "verify-if-given"
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
	allowedHosts      string        // comma-separated
	corsOrigins       string        // comma-separated
	gcPercent         int           // GOGC with the disk engine
	memoryLimit       int64         // soft memory limit with the disk engine, bytes; 0: none
	tailCache         int64         // the disk engine's tail cache, bytes; 0: none
	bufferedWrites    bool          // the disk engine writes segments through the page cache
	timerSlack        time.Duration // the process's timer slack (Linux); 0: as inherited
	natsURLs          string        // jetstream engine: the NATS servers; empty: embedded
	natsReplicas      int           // jetstream engine: copies of each log; 0: 1 embedded, else 3
	clusterDev        bool          // jetstream engine on an embedded 3-node cluster
	natsSync          string        // embedded NATS nodes: auto, always or interval
	natsTimeout       time.Duration // jetstream engine: bound of each request to JetStream
	adminListen       string        // the admin listener's address, "api" or "" (off)
	adminExplicit     bool          // adminListen was given, not the default
	console           bool          // serve the web console on the admin listener
	metrics           bool          // count and serve /metrics
	metricsMaxSeries  int
	keyFile           string // the key store's file; empty: the default (keyFilePath)
	masterKeys        [][]byte
	credentialsFile   string // users and keys; empty: signatures not checked
	insecureNoAuth    bool   // allow no credentials on a non-loopback address
	auditControlPlane bool   // log every control-plane call
	bucketsDir        string // delivery streams: buckets as directories below it; empty: none
	configFile        string // runnel.yaml: connections, buckets, declared streams; empty: none
	deliveryRetryMax  time.Duration
}

// parseServe reads flags, each defaulting to its environment variable and
// then to the built-in default. It prints nothing: a request for help is
// flag.ErrHelp, for the caller to answer with serveUsage.
func parseServe(args []string, getenv env) (serveConfig, error) {
	var c serveConfig
	fs, logLevel, envErr := serveFlags(&c, getenv)
	if err := parseFlags(fs, args, *envErr); err != nil {
		return c, err
	}
	fs.Visit(func(f *flag.Flag) { c.adminExplicit = c.adminExplicit || f.Name == "admin-listen" })
	c.adminExplicit = c.adminExplicit || getenv("RUNNEL_ADMIN_LISTEN") != ""
	if c.adminListen == "off" {
		c.adminListen = ""
	}
	if c.console && c.adminListen == "" {
		return c, errors.New("--console needs the admin listener: give --admin-listen an address (or \"api\" for the API port)")
	}
	if err := c.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return c, fmt.Errorf("--log-level %q: use debug, info, warn or error", *logLevel)
	}
	if c.clusterDev && c.engine == "disk" {
		c.engine = "jetstream"
	}
	if c.timerSlack < 0 {
		return c, fmt.Errorf("--timer-slack %v: use a duration of 0 or more (0 leaves the slack as inherited)", c.timerSlack)
	}
	switch c.engine {
	case "disk", "memory", "jetstream":
	default:
		return c, fmt.Errorf("--engine %q: use disk, memory or jetstream", c.engine)
	}
	if c.engine != "jetstream" && (c.natsURLs != "" || c.clusterDev) {
		return c, fmt.Errorf("--nats and --cluster-dev need --engine jetstream, not %s", c.engine)
	}
	if c.clusterDev && c.natsURLs != "" {
		return c, errors.New("--cluster-dev starts its own NATS cluster: drop --nats")
	}
	if c.natsURLs != "" {
		if err := natsURLsValid(c.natsURLs); err != nil {
			return c, err
		}
	}
	switch c.natsSync {
	case "auto", "always", "interval":
	default:
		return c, fmt.Errorf("--nats-sync %q: use auto, always or interval", c.natsSync)
	}
	if c.natsSync != "auto" && (c.engine != "jetstream" || c.natsURLs != "") {
		return c, errors.New("--nats-sync applies to embedded NATS nodes; servers given with --nats sync as their configuration says (sync_interval, docs/CLUSTER.md)")
	}
	if c.natsTimeout < 100*time.Millisecond {
		return c, fmt.Errorf("--nats-timeout %s: use 100ms or more (default 10s)", c.natsTimeout)
	}
	if c.natsReplicas < 0 || c.natsReplicas > 5 {
		return c, fmt.Errorf("--nats-replicas %d: use 1 to 5 (0 for the default)", c.natsReplicas)
	}
	if (c.engine == "disk" || c.engine == "jetstream" && c.natsURLs == "") && c.dataDir == "" {
		return c, fmt.Errorf("--data-dir is empty: the %s engine needs a directory", c.engine)
	}
	if v := getenv("RUNNEL_MASTER_KEY"); v != "" {
		keys, err := keystore.ParseMasterKeys(v)
		if err != nil {
			return c, fmt.Errorf("RUNNEL_MASTER_KEY: %w", err)
		}
		c.masterKeys = keys
	}
	// Check the listener's and the handler's options now, before anything
	// is opened.
	if err := c.serverOptions(nil).Validate(); err != nil {
		return c, err
	}
	if err := c.handlerOptions(nil).Validate(); err != nil {
		return c, err
	}
	if c.credentialsFile == "" && !c.insecureNoAuth && !isLoopback(c.listen) {
		return c, fmt.Errorf("--listen %s is reachable from other machines, and without --credentials anyone who can "+
			"reach it could read, write and delete every stream. Give a credentials file with --credentials "+
			"(RUNNEL_CREDENTIALS; see docs/SECURITY.md), listen on 127.0.0.1, or accept any signed request with "+
			"--insecure-no-auth (RUNNEL_INSECURE_NO_AUTH=true)", c.listen)
	}
	if a := c.adminListen; a != "" && a != adminOnAPI {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return c, fmt.Errorf("--admin-listen %q: want host:port, %q (the API port) or off", a, adminOnAPI)
		}
	}
	if c.metricsMaxSeries < 1 {
		return c, fmt.Errorf("--metrics-max-series %d: must be at least 1", c.metricsMaxSeries)
	}
	return c, nil
}

// isLoopback reports whether a listen address reaches only this machine:
// localhost or a loopback IP. An empty host means every interface.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// serveUsage writes the help of `runnel serve`.
func serveUsage(w io.Writer) {
	var c serveConfig
	fs, _, _ := serveFlags(&c, func(string) string { return "" })
	printUsage(w, fs, "Usage: runnel serve [flags]",
		"Runs the Kinesis-compatible server in the foreground until SIGINT or SIGTERM",
		"(Ctrl-C); SIGHUP reloads the TLS certificate files and the credentials file.",
		"Point any AWS SDK or the AWS CLI at it:",
		"  aws --endpoint-url http://127.0.0.1:4567 kinesis list-streams",
	)
}

// serveFlags defines the flags of `runnel serve` on c, with defaults from
// the environment; the log level is parsed after the flags. Environment
// values that do not parse are collected in *envErr.
func serveFlags(c *serveConfig, getenv env) (fs *flag.FlagSet, logLevel *string, envErr *error) {
	fs = flag.NewFlagSet("runnel serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	envErr = new(error)
	d := envDefaults{getenv, envErr}
	envOr, durationEnv, intEnv, int64Env, boolEnv := d.str, d.duration, d.integer, d.int64, d.boolean
	sdef := streams.DefaultOptions()
	fs.StringVar(&c.listen, "listen", envOr("RUNNEL_LISTEN", "127.0.0.1:4567"), "`address` to listen on (env RUNNEL_LISTEN); 0.0.0.0:4567 for all interfaces")
	fs.StringVar(&c.dataDir, "data-dir", envOr("RUNNEL_DATA_DIR", "./runnel-data"), "`directory` for the disk engine's data (env RUNNEL_DATA_DIR)")
	fs.StringVar(&c.engine, "engine", envOr("RUNNEL_ENGINE", "disk"), "storage engine: disk (durable), memory (lost on exit) or jetstream (NATS JetStream; see --nats) (env RUNNEL_ENGINE)")
	fs.StringVar(&c.natsURLs, "nats", envOr("RUNNEL_NATS", ""), "jetstream engine: comma-separated NATS server `URLs`; empty: one NATS node embedded, its files under --data-dir (env RUNNEL_NATS)")
	fs.IntVar(&c.natsReplicas, "nats-replicas", intEnv("RUNNEL_NATS_REPLICAS", 0), "jetstream engine: copies JetStream keeps of each shard; 0: 1 on the embedded node, 3 on a cluster (env RUNNEL_NATS_REPLICAS)")
	fs.StringVar(&c.natsSync, "nats-sync", envOr("RUNNEL_NATS_SYNC", "auto"), "embedded NATS nodes: always (fsync before every acknowledgement), interval (JetStream's default: every 2 minutes) or auto (always on one node, interval with --cluster-dev) (env RUNNEL_NATS_SYNC)")
	fs.DurationVar(&c.natsTimeout, "nats-timeout", durationEnv("RUNNEL_NATS_TIMEOUT", 10*time.Second), "jetstream engine: how long a request to JetStream (an append, a read) may wait for its answer; an append is sent again to a stream's new leader, and fails when none stores it within this time (env RUNNEL_NATS_TIMEOUT)")
	fs.BoolVar(&c.clusterDev, "cluster-dev", boolEnv("RUNNEL_CLUSTER_DEV", false), "jetstream engine on a 3-node NATS cluster embedded on loopback ports, its files under --data-dir: for trying cluster mode on one machine (env RUNNEL_CLUSTER_DEV)")
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
	fs.StringVar(&c.configFile, "config", envOr("RUNNEL_CONFIG", ""), "configuration `file` (YAML): connections to S3-compatible stores and directories, buckets, streams and delivery streams to create (env RUNNEL_CONFIG)")
	fs.DurationVar(&c.deliveryRetryMax, "delivery-retry-max", durationEnv("RUNNEL_DELIVERY_RETRY_MAX", delivery.DefaultOptions().RetryMax), "delivery streams: longest wait between attempts to deliver an object to a failing destination (env RUNNEL_DELIVERY_RETRY_MAX)")
	fs.StringVar(&c.bucketsDir, "buckets-dir", envOr("RUNNEL_BUCKETS_DIR", ""), "delivery streams: deliver to bucket arn:aws:s3:::NAME as files in `directory`/NAME (env RUNNEL_BUCKETS_DIR)")
	fs.BoolVar(&c.enforceThroughput, "enforce-throughput", boolEnv("RUNNEL_ENFORCE_THROUGHPUT", false), "enforce per-shard throughput limits like Kinesis (env RUNNEL_ENFORCE_THROUGHPUT)")
	fs.StringVar(&c.tlsCert, "tls-cert", envOr("RUNNEL_TLS_CERT", ""), "PEM certificate `file` to serve HTTPS/h2 with (needs --tls-key) (env RUNNEL_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", envOr("RUNNEL_TLS_KEY", ""), "PEM private key `file` for --tls-cert (env RUNNEL_TLS_KEY)")
	fs.BoolVar(&c.tlsSelfSigned, "tls-self-signed", boolEnv("RUNNEL_TLS_SELF_SIGNED", false), "serve HTTPS/h2 with a certificate generated at start (env RUNNEL_TLS_SELF_SIGNED)")
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", envOr("RUNNEL_TLS_CLIENT_CA", ""), "PEM `file` of the authorities client certificates must chain to; turns on client-certificate authentication (env RUNNEL_TLS_CLIENT_CA)")
	fs.StringVar(&c.tlsClientAuth, "tls-client-auth", envOr("RUNNEL_TLS_CLIENT_AUTH", ""), "with --tls-client-ca: require (every client presents a certificate) or verify-if-given; default require (env RUNNEL_TLS_CLIENT_AUTH)")
	logLevel = fs.String("log-level", envOr("RUNNEL_LOG_LEVEL", "info"), "log level: debug (every request), info, warn or error (env RUNNEL_LOG_LEVEL)")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", durationEnv("RUNNEL_SHUTDOWN_TIMEOUT", 15*time.Second), "how long to let in-flight requests finish on SIGTERM/SIGINT (env RUNNEL_SHUTDOWN_TIMEOUT)")
	fs.Int64Var(&c.maxBodyBytes, "max-body-bytes", int64Env("RUNNEL_MAX_BODY_BYTES", kinesisapi.DefaultMaxBodyBytes), "largest request body accepted, in `bytes` (env RUNNEL_MAX_BODY_BYTES)")
	hdef := kinesisapi.DefaultOptions()
	fs.Int64Var(&c.maxBodyMemory, "max-body-memory", int64Env("RUNNEL_MAX_BODY_MEMORY", hdef.MaxBodyMemory), "`bytes` all request bodies in flight may hold together; more is answered 503 ServiceUnavailable (env RUNNEL_MAX_BODY_MEMORY)")
	fs.DurationVar(&c.bodyReadTimeout, "body-read-timeout", durationEnv("RUNNEL_BODY_READ_TIMEOUT", hdef.BodyReadTimeout), "time to receive a whole request body; 0 for no limit (env RUNNEL_BODY_READ_TIMEOUT)")
	fs.DurationVar(&c.writeTimeout, "write-timeout", durationEnv("RUNNEL_WRITE_TIMEOUT", hdef.WriteTimeout), "time to write an answer; 0 for no limit (env RUNNEL_WRITE_TIMEOUT)")
	fs.DurationVar(&c.subscribeTimeout, "subscribe-write-timeout", durationEnv("RUNNEL_SUBSCRIBE_WRITE_TIMEOUT", hdef.SubscribeWriteTimeout), "time a SubscribeToShard consumer may take to accept one event before it is cut off (env RUNNEL_SUBSCRIBE_WRITE_TIMEOUT)")
	svdef := server.DefaultOptions()
	fs.IntVar(&c.maxHeaderBytes, "max-header-bytes", intEnv("RUNNEL_MAX_HEADER_BYTES", svdef.MaxHeaderBytes), "largest request header block accepted, in `bytes` (env RUNNEL_MAX_HEADER_BYTES)")
	fs.IntVar(&c.h2MaxStreams, "h2-max-streams", intEnv("RUNNEL_H2_MAX_STREAMS", svdef.MaxConcurrentStreams), "concurrent requests one HTTP/2 connection may have (env RUNNEL_H2_MAX_STREAMS)")
	fs.StringVar(&c.allowedHosts, "allowed-hosts", envOr("RUNNEL_ALLOWED_HOSTS", ""), "comma-separated host `names` (name or name:port; * for any) accepted in the Host header besides localhost and IP addresses (env RUNNEL_ALLOWED_HOSTS)")
	fs.StringVar(&c.corsOrigins, "cors-origins", envOr("RUNNEL_CORS_ORIGINS", ""), "comma-separated web `origins` (http://localhost:3000; * for any) allowed to call the API from a browser; empty: CORS off (env RUNNEL_CORS_ORIGINS)")
	fs.StringVar(&c.pprofAddr, "pprof", envOr("RUNNEL_PPROF", ""), "serve Go profiling endpoints (/debug/pprof/) on this `address`, e.g. 127.0.0.1:6060; off when empty (env RUNNEL_PPROF)")
	fs.IntVar(&c.gcPercent, "gc-percent", intEnv("RUNNEL_GC_PERCENT", defaultGCPercent), "with the disk engine: the garbage collector's GOGC; the GOGC environment variable wins (env RUNNEL_GC_PERCENT)")
	bytesEnv := func(name string, def int64) int64 {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := parseBytes(v)
		if err != nil {
			*envErr = errors.Join(*envErr, fmt.Errorf("%s: %w", name, err))
		}
		return n
	}
	c.memoryLimit = bytesEnv("RUNNEL_MEMORY_LIMIT", defaultMemoryLimit)
	c.tailCache = bytesEnv("RUNNEL_TAIL_CACHE", disk.DefaultOptions().TailCache)
	fs.StringVar(&c.adminListen, "admin-listen", envOr("RUNNEL_ADMIN_LISTEN", defaultAdminListen), "`address` of the admin listener (console, metrics, health); \"api\" for the API port, \"\" or off for none (env RUNNEL_ADMIN_LISTEN)")
	fs.BoolVar(&c.console, "console", boolEnv("RUNNEL_CONSOLE", false), "serve the web console at /console/ on the admin listener (env RUNNEL_CONSOLE)")
	fs.StringVar(&c.keyFile, "key-file", envOr("RUNNEL_KEY_FILE", ""), "the key store's `file` (master keys and KMS keys for encryption at rest), created on first use; default: <data-dir>.keys with the disk engine, none (keys in memory) with the memory engine (env RUNNEL_KEY_FILE)")
	fs.StringVar(&c.credentialsFile, "credentials", envOr("RUNNEL_CREDENTIALS", ""), "JSON `file` of users, access keys and policies; requests must be signed by one of its keys (reloaded on SIGHUP; docs/SECURITY.md) (env RUNNEL_CREDENTIALS)")
	fs.BoolVar(&c.insecureNoAuth, "insecure-no-auth", boolEnv("RUNNEL_INSECURE_NO_AUTH", false), "without --credentials, serve a non-loopback --listen address anyway, accepting any access key and signature (env RUNNEL_INSECURE_NO_AUTH)")
	fs.BoolVar(&c.auditControlPlane, "audit-control-plane", boolEnv("RUNNEL_AUDIT_CONTROL_PLANE", false), "log every control-plane call (all but record and lease traffic) with its principal (env RUNNEL_AUDIT_CONTROL_PLANE)")
	fs.BoolVar(&c.metrics, "metrics", boolEnv("RUNNEL_METRICS", true), "count the streams' CloudWatch-named metrics and serve them at /metrics on the admin listener (env RUNNEL_METRICS)")
	fs.IntVar(&c.metricsMaxSeries, "metrics-max-series", intEnv("RUNNEL_METRICS_MAX_SERIES", metrics.DefaultOptions().MaxSeries), "most stream and shard time series /metrics exports; past it shard series go first, with a warning in the log (env RUNNEL_METRICS_MAX_SERIES)")
	fs.DurationVar(&c.timerSlack, "timer-slack", durationEnv("RUNNEL_TIMER_SLACK", defaultTimerSlack), "how late the process's timers may fire (Linux), so that the Go runtime's monitor thread wakes less often; 0 leaves it as inherited (env RUNNEL_TIMER_SLACK)")
	fs.Var(bytesFlag{&c.memoryLimit}, "memory-limit", "with the disk engine: the garbage collector's soft memory `limit` (e.g. 512MiB, 2GiB, off); the GOMEMLIMIT environment variable wins (env RUNNEL_MEMORY_LIMIT)")
	fs.BoolVar(&c.bufferedWrites, "buffered-writes", boolEnv("RUNNEL_BUFFERED_WRITES", false), "with the disk engine: write the shards' segment files through the page cache; by default each write bypasses it (O_DIRECT), since it is fdatasynced at once anyway (env RUNNEL_BUFFERED_WRITES)")
	fs.Var(bytesFlag{&c.tailCache}, "tail-cache", "with the disk engine: `bytes` of the shards' newest records kept in memory for consumers that follow the producers (at most 16MiB a shard; off for none) (env RUNNEL_TAIL_CACHE)")
	return fs, logLevel, envErr
}

// keyFilePath is the key store's file: --key-file, or beside the disk
// engine's data directory (never inside it: a copy of the data directory
// must not carry the key), or none for the memory engine.
func (c serveConfig) keyFilePath() string {
	if c.keyFile != "" || c.engine == "memory" {
		return c.keyFile
	}
	return keystore.DefaultFile(c.dataDir)
}

// serverOptions are the listener's options for c.
func (c serveConfig) serverOptions(log *slog.Logger) server.Options {
	sv := server.DefaultOptions()
	sv.Addr = c.listen
	sv.TLSCertFile, sv.TLSKeyFile, sv.TLSSelfSigned = c.tlsCert, c.tlsKey, c.tlsSelfSigned
	sv.TLSClientCAFile, sv.TLSClientAuth = c.tlsClientCA, c.tlsClientAuth
	if sv.TLSClientCAFile != "" && sv.TLSClientAuth == "" {
		sv.TLSClientAuth = server.ClientAuthRequire
	}
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
	cfg, err := parseServe(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		serveUsage(stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "serve", err)
	}
	var slackErr error
	if processMain && cfg.timerSlack > 0 {
		// Before anything is started or logged: on success it does not
		// return, and the process starts again.
		slackErr = raiseTimerSlack(cfg.timerSlack, getenv)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	if slackErr != nil {
		log.Warn("timer slack not applied; set --timer-slack 0 to skip it", slog.Any("error", slackErr))
	}
	if n := schedulerProcs(cfg.engine, getenv, runtime.GOMAXPROCS(0)); n != runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
		log.Debug("scheduler", slog.Int("gomaxprocs", n))
	}
	applyGC(gcSettings(cfg.engine, getenv, cfg.gcPercent, cfg.memoryLimit))
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
	// Catch SIGHUP before the port answers: one sent as soon as it does
	// (a reload during start) then waits for the server to be up instead
	// of ending the process, as an uncaught SIGHUP would.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// Bind the ports first, so that a port in use is reported before
	// anything is created on disk. The handler is set before Serve.
	var handler lateHandler
	srv, err := server.Listen(ctx, &handler, cfg.serverOptions(log))
	if errors.Is(err, server.ErrAddrInUse) {
		return fmt.Errorf("%s is already in use (another runnel?): stop that process or choose another address with --listen or RUNNEL_LISTEN", cfg.listen)
	}
	if err != nil {
		return err
	}
	served := false
	defer func() {
		if !served {
			_ = srv.Close()
		}
	}()
	var admin *adminServer
	if cfg.adminListen != "" && cfg.adminListen != adminOnAPI {
		admin, err = listenAdmin(ctx, cfg.adminListen)
		switch {
		case errors.Is(err, syscall.EADDRINUSE) && !cfg.adminExplicit:
			// The default address is taken (another runnel on this
			// machine): serve without the admin listener rather than not
			// at all.
			log.Warn("admin listener off: its default address is in use (another runnel?); choose one with --admin-listen",
				slog.String("address", cfg.adminListen))
			admin = nil
		case errors.Is(err, syscall.EADDRINUSE):
			return fmt.Errorf("--admin-listen %s is already in use: choose another address, \"api\" for the API port, or off for none", cfg.adminListen)
		case err != nil:
			return fmt.Errorf("--admin-listen %s: %w", cfg.adminListen, err)
		default:
			defer admin.close()
		}
	}
	var reg *metrics.Registry
	if cfg.metrics {
		mopts := metrics.DefaultOptions()
		mopts.MaxSeries = cfg.metricsMaxSeries
		mopts.Logger = log
		if reg, err = metrics.New(mopts); err != nil {
			return err
		}
		defer reg.Close()
	}
	// The admin listener serves from now on, so that probes get an answer
	// (/readyz: 503 until the service is ready) while a large data
	// directory is recovered. Other admin pages register on its mux.
	hl := &health{}
	amux := adminMux(reg, hl)
	if admin != nil {
		admin.serve(amux, log)
		log.Info("admin listening", slog.String("url", admin.URL()), slog.Bool("metrics", reg != nil))
	}
	if cfg.pprofAddr != "" {
		stopPprof, perr := startPprof(cfg.pprofAddr, log)
		if perr != nil {
			return fmt.Errorf("--pprof %s: %w", cfg.pprofAddr, perr)
		}
		defer stopPprof()
	}

	var eng engine.Engine
	switch cfg.engine {
	case "memory":
		eng = mem.New(mem.DefaultOptions())
	case "jetstream":
		js, stopNATS, jerr := openJetStream(ctx, cfg, log)
		if jerr != nil {
			return jerr
		}
		defer stopNATS()
		eng = js
	default:
		dopts := disk.DefaultOptions()
		dopts.Logger = log
		dopts.TailCache = cfg.tailCache
		dopts.BufferedWrites = cfg.bufferedWrites
		if reg != nil {
			dopts.Observer = reg.EngineObserver()
		}
		d, oerr := disk.Open(cfg.dataDir, dopts)
		if oerr != nil {
			return dataDirError(cfg.dataDir, oerr)
		}
		eng = d
		if reg != nil {
			reg.SetEngineStats(func() metrics.EngineStats { return engineStats(d.Stats()) })
		}
	}
	defer func() {
		if cerr := eng.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close engine: %w", cerr))
		}
	}()

	keys, err := keystore.Open(keystore.Options{File: cfg.keyFilePath(), MasterKeys: cfg.masterKeys, Region: cfg.region, Account: cfg.accountID})
	if err != nil {
		return fmt.Errorf("%w (--key-file or RUNNEL_KEY_FILE names the file; RUNNEL_MASTER_KEY gives the master key)", err)
	}

	sopts := streams.DefaultOptions()
	sopts.Keys = keys
	sopts.Region = cfg.region
	sopts.AccountID = cfg.accountID
	sopts.TransitionDelay = cfg.transitionDelay
	sopts.ShardLimit = cfg.shardLimit
	sopts.EnforceThroughput = cfg.enforceThroughput
	sopts.ScalingsPerDay = cfg.scalingsPerDay
	sopts.Scaler = cfg.scaler
	sopts.Logger = log
	sopts.Metrics = reg
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

	// Lease tables of consumer applications, on the same metadata; the
	// sweeper removes the tables of deleted streams.
	lsvc := leases.New(eng.Meta(), leases.OnStreams(svc), leases.Options{})
	if reg != nil {
		reg.SetConsumerLag(func(ctx context.Context) []metrics.ConsumerLag { return consumerLag(ctx, lsvc, svc, log) })
	}
	sweepCtx, stopSweep := context.WithCancel(context.WithoutCancel(ctx))
	sweepDone := make(chan struct{})
	go func() {
		defer close(sweepDone)
		lsvc.SweepEvery(sweepCtx, time.Minute, log)
	}()
	defer func() { stopSweep(); <-sweepDone }()

	// Delivery streams: workers on the same streams and leases, writing
	// to the buckets of the configuration file and --buckets-dir.
	var conf *config.File
	if cfg.configFile != "" {
		if conf, err = config.Load(cfg.configFile); err != nil {
			return fmt.Errorf("--config %s: %w", cfg.configFile, err)
		}
	}
	dopts := delivery.DefaultOptions()
	dopts.Region, dopts.AccountID = cfg.region, cfg.accountID
	dopts.TransitionDelay = cfg.transitionDelay
	dopts.Logger = log
	dopts.Metrics = reg
	dopts.RetryMax = max(cfg.deliveryRetryMax, dopts.RetryMin)
	if conf != nil || cfg.bucketsDir != "" {
		dopts.Resolver = config.NewResolver(conf, cfg.bucketsDir)
	}
	if p := cfg.crashPoint; p != "" {
		dopts.CrashPoint = sopts.CrashPoint
	}
	dsvc, err := delivery.New(eng.Meta(), svc, lsvc, dopts)
	if err != nil {
		return fmt.Errorf("start delivery: %w", err)
	}
	defer func() { _ = dsvc.Close() }()
	if conf != nil {
		if err := conf.Apply(ctx, svc, dsvc, cfg.region, cfg.accountID, log); err != nil {
			return fmt.Errorf("--config %s: %w", cfg.configFile, err)
		}
	}

	verifier, err := newVerifier(cfg, log)
	if err != nil {
		return err
	}
	hopts := cfg.handlerOptions(log)
	hopts.APIs = []kinesisapi.API{leaseapi.New(lsvc), firehoseapi.New(dsvc)}
	// Policies are evaluated for requests whose context carries an
	// authenticated principal; others pass.
	authz, err := iam.NewAuthorizer(iam.AuthorizerOptions{
		Region: cfg.region, AccountID: cfg.accountID, Resources: svc, Logger: log,
	})
	if err != nil {
		return err
	}
	hopts.Authorize = kinesisapi.IAMAuthorizer(authz)
	hopts.Auth = verifier
	hopts.Audit = auth.NewAudit(log, cfg.auditControlPlane)
	h, err := kinesisapi.NewHandler(svc, hopts)
	if err != nil {
		return err
	}
	handler.h = h
	stopConsole, err := addConsole(amux, cfg, reg, svc, lsvc, dsvc, verifier, log)
	if err != nil {
		return err
	}
	defer stopConsole()
	if cfg.adminListen == adminOnAPI {
		handler.h = withAdmin(h, amux)
	}
	hl.setReady(eng)
	log.Info("runnel listening",
		slog.String("endpoint", srv.Endpoint()),
		slog.String("engine", cfg.engine),
		slog.String("data_dir", dataDirAttr(cfg)),
		slog.String("key_file", keyFileAttr(cfg)),
		slog.String("region", cfg.region),
		slog.String("tls", tlsAttr(cfg)),
		slog.String("version", versionString()))
	if ready != nil {
		ready <- srv
	}

	served = true
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve() }()
	stopReload := reloadOnHangup(hup, srv, cfg, verifier, log)
	defer stopReload()
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", slog.Duration("timeout", cfg.shutdownTimeout))
	hl.draining.Store(true)
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
	if err := <-serveErr; err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// lateHandler lets the listener be bound before the handler exists. h is
// set once, before Serve starts, and never changed after.
type lateHandler struct{ h http.Handler }

func (l *lateHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) { l.h.ServeHTTP(w, r) }

// consumerLag is the lag of every lease-table application on every shard
// whose checkpoint names a position, for the metrics.
func consumerLag(ctx context.Context, lsvc *leases.Service, svc *streams.Service, log *slog.Logger) []metrics.ConsumerLag {
	cps, err := lsvc.Checkpoints(ctx)
	if err != nil {
		log.Warn("metrics: cannot list lease checkpoints", slog.Any("error", err))
		return nil
	}
	out := make([]metrics.ConsumerLag, 0, len(cps))
	for _, cp := range cps {
		b, ok, err := svc.CheckpointBacklog(ctx, cp.Stream, cp.Shard, cp.Checkpoint)
		if err != nil {
			log.Warn("metrics: cannot read a shard's backlog", slog.String("stream", cp.Stream), slog.String("shard", cp.Shard), slog.Any("error", err))
			return out
		}
		if ok {
			out = append(out, metrics.ConsumerLag{Stream: cp.Stream, Application: cp.Application, Shard: cp.Shard, Records: b.Records, Millis: b.Millis})
		}
	}
	return out
}

// engineStats converts the disk engine's statistics for the metrics.
func engineStats(st disk.Stats) metrics.EngineStats {
	out := metrics.EngineStats{OpenFiles: st.OpenFiles, TailCacheBytes: st.TailCacheBytes,
		ReadsFromCache: st.ReadsFromCache, ReadsFromSegments: st.ReadsFromSegments, Logs: make([]metrics.LogStats, len(st.Logs))}
	for i, l := range st.Logs {
		out.Logs[i] = metrics.LogStats{Name: l.Name, Segments: l.Segments, Bytes: l.Bytes}
	}
	return out
}

func dataDirAttr(cfg serveConfig) string {
	if cfg.engine == "memory" {
		return "(none: memory engine)"
	}
	return strings.TrimSpace(cfg.dataDir)
}

// newVerifier builds the request authenticator: the credentials file's
// users, or, without one, any access key with a well-formed signature (the
// local development default, said at start).
func newVerifier(cfg serveConfig, log *slog.Logger) (*auth.Verifier, error) {
	opts := auth.Options{Region: cfg.region, Account: cfg.accountID}
	if cfg.credentialsFile != "" {
		creds, err := auth.LoadCredentials(cfg.credentialsFile, cfg.accountID)
		if err != nil {
			return nil, fmt.Errorf("--credentials: %w (fix the file; docs/SECURITY.md describes it)", err)
		}
		opts.Credentials = creds
		log.Info("signatures checked",
			slog.String("credentials", cfg.credentialsFile),
			slog.Int("users", creds.Users()), slog.Int("keys", creds.Keys()))
	} else {
		log.Warn("signatures not checked: no --credentials, so any access key and signature is accepted " +
			"(requests must still be signed); give a credentials file to require real keys")
	}
	return auth.New(opts)
}

// reloadOnHangup reloads, on each SIGHUP received on hup until the
// returned function is called, the server's TLS files and the credentials
// file. A reload that fails keeps what is in use and logs why. SIGHUP is
// caught even with nothing to reload, so that it never ends the process.
func reloadOnHangup(hup <-chan os.Signal, srv *server.Server, cfg serveConfig, v *auth.Verifier, log *slog.Logger) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		for {
			select {
			case <-done:
				return
			case <-hup:
			}
			if srv.Certificate() == nil && cfg.credentialsFile == "" {
				log.Info("SIGHUP: nothing to reload (no TLS files, no --credentials)")
				continue
			}
			if srv.Certificate() != nil {
				leaf, err := srv.ReloadTLS()
				if err != nil {
					log.Warn("SIGHUP: TLS files not reloaded; still serving the previous certificate",
						slog.Any("error", err), slog.String("serial", leaf.SerialNumber.String()))
				} else {
					log.Info("SIGHUP: TLS certificate reloaded",
						slog.String("subject", leaf.Subject.String()),
						slog.String("serial", leaf.SerialNumber.String()),
						slog.Time("not_after", leaf.NotAfter))
				}
			}
			if cfg.credentialsFile != "" {
				creds, err := auth.LoadCredentials(cfg.credentialsFile, cfg.accountID)
				if err != nil {
					log.Error("SIGHUP: credentials not reloaded, the previous ones stay in use", slog.Any("error", err))
					continue
				}
				v.SetCredentials(creds)
				log.Info("credentials reloaded",
					slog.String("credentials", cfg.credentialsFile),
					slog.Int("users", creds.Users()), slog.Int("keys", creds.Keys()))
			}
		}
	}()
	return func() {
		close(done)
		<-ended
	}
}

// tlsAttr says how the listener serves TLS, for the start-up line.
func tlsAttr(cfg serveConfig) string {
	var mode string
	switch {
	case cfg.tlsCert != "":
		mode = "certificate " + cfg.tlsCert + " (SIGHUP reloads)"
	case cfg.tlsSelfSigned:
		mode = "self-signed"
	default:
		return "off"
	}
	if cfg.tlsClientCA != "" {
		auth := cfg.tlsClientAuth
		if auth == "" {
			auth = server.ClientAuthRequire
		}
		mode += ", client certificates: " + auth
	}
	return mode
}

// keyFileAttr describes where the key store's keys live, for the start line.
func keyFileAttr(cfg serveConfig) string {
	p := cfg.keyFilePath()
	switch {
	case p == "":
		return "(none: keys in memory)"
	case len(cfg.masterKeys) > 0:
		return p + " (master key from RUNNEL_MASTER_KEY)"
	}
	return p
}
