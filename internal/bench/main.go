package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// Exit codes of Main.
const (
	exitOK     = 0 // the run completed and verified
	exitFailed = 1 // the run failed, or records were lost, duplicated, reordered or corrupted
	exitUsage  = 2 // bad flags
)

// choice is a flag whose value is one of a few names.
type choice[T ~string] struct {
	p       *T
	allowed []T
}

func (c choice[T]) String() string {
	if c.p == nil {
		return ""
	}
	return string(*c.p)
}

func (c choice[T]) Set(s string) error {
	for _, a := range c.allowed {
		if string(a) == s {
			*c.p = a
			return nil
		}
	}
	names := make([]string, len(c.allowed))
	for i, a := range c.allowed {
		names[i] = string(a)
	}
	return fmt.Errorf("must be one of %s", strings.Join(names, ", "))
}

// burstFlag is --burst ON/OFF, e.g. 2s/3s; "" or "0" turns bursts off.
type burstFlag struct{ on, off *time.Duration }

func (b burstFlag) String() string {
	if b.on == nil || *b.on == 0 {
		return ""
	}
	return b.on.String() + "/" + b.off.String()
}

func (b burstFlag) Set(s string) error {
	if s == "" || s == "0" || s == "off" {
		*b.on, *b.off = 0, 0
		return nil
	}
	onS, offS, ok := strings.Cut(s, "/")
	if !ok {
		return errors.New("want ON/OFF durations, e.g. 2s/3s")
	}
	on, err1 := time.ParseDuration(onS)
	off, err2 := time.ParseDuration(offS)
	if err1 != nil || err2 != nil || on <= 0 || off <= 0 {
		return errors.New("want positive ON/OFF durations, e.g. 2s/3s")
	}
	*b.on, *b.off = on, off
	return nil
}

// bindFlags defines the flags of the options on fs, with o's values as
// defaults.
func bindFlags(fs *flag.FlagSet, o *Options) {
	fs.StringVar(&o.Endpoint, "endpoint", o.Endpoint, "Kinesis endpoint `URL`; empty for AWS itself (credentials and region from the environment)")
	fs.Func("spread", "more endpoint `URLs` of the same service, comma-separated (a cluster's other gateways): producers and polling consumers take --endpoint and these in turn", func(s string) error {
		o.Spread = nil
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				o.Spread = append(o.Spread, e)
			}
		}
		return nil
	})
	fs.StringVar(&o.Region, "region", o.Region, "signing region")
	fs.BoolVar(&o.AWSCredentials, "aws-credentials", o.AWSCredentials, "use the SDK's credential chain even with --endpoint (otherwise dummy credentials)")
	fs.StringVar(&o.Stream, "stream", o.Stream, "stream `name` (default runnel-bench-<random>)")
	fs.BoolVar(&o.Create, "create", o.Create, "create the stream; with --create=false it must exist and reading starts at LATEST")
	fs.BoolVar(&o.Keep, "keep", o.Keep, "keep the stream the run created instead of deleting it")
	fs.IntVar(&o.Shards, "shards", o.Shards, "shard count of the created stream")
	fs.StringVar(&o.EncryptKey, "encrypt", o.EncryptKey, "encrypt the stream at rest with this KMS `key` (e.g. alias/aws/kinesis) before the run")
	fs.StringVar(&o.Profile, "profile", o.Profile, "workload profile: "+strings.Join(ProfileNames(), ", ")+"; explicit flags override its values")

	fs.IntVar(&o.Producers, "producers", o.Producers, "concurrent producers, one call in flight each")
	fs.Var(choice[PutMode]{&o.Mode, []PutMode{PutAuto, PutRecords, PutRecord}}, "mode", "put API: auto (PutRecord when --batch 1), putrecords or putrecord")
	fs.Var(choice[ClientKind]{&o.ProducerClient, []ClientKind{ClientSDK, ClientRaw}}, "producer-client", "client of the PutRecords calls: sdk (AWS SDK for Go v2) or raw (the tool's lightweight JSON client, SigV4-signed; PutRecord still uses the SDK)")
	fs.IntVar(&o.Batch, "batch", o.Batch, "records per PutRecords call (1-500)")
	fs.IntVar(&o.Size, "size", o.Size, "record size in `bytes` (at least 36)")
	fs.IntVar(&o.SizeMax, "size-max", o.SizeMax, "with a value above --size, sizes are uniform in [size, size-max]")
	fs.Var(choice[Shape]{&o.Shape, []Shape{ShapeRandom, ShapeClickstream, ShapeIoT, ShapeLogs}}, "shape", "record body: random, clickstream, iot or logs")
	fs.IntVar(&o.Keys, "keys", o.Keys, "distinct partition keys (1 = a single key: ordering stress)")
	fs.StringVar(&o.KeyPrefix, "key-prefix", o.KeyPrefix, "partition key prefix")
	fs.Var(choice[KeyDist]{&o.KeyDist, []KeyDist{KeyUniform, KeyZipf}}, "key-dist", "key distribution: uniform or zipf")
	fs.Float64Var(&o.ZipfS, "zipf-s", o.ZipfS, "Zipf exponent (> 1; higher is more skewed)")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "target records/s over all producers (0 = as fast as possible)")
	fs.Var(burstFlag{&o.BurstOn, &o.BurstOff}, "burst", "alternate sending and silence, `ON/OFF` (e.g. 2s/3s; off to disable)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "length of the producing phase (0 = until --records)")
	fs.Int64Var(&o.Records, "records", o.Records, "records to produce (0 = until --duration); alone, it replaces the duration")
	fs.IntVar(&o.MaxRetries, "max-retries", o.MaxRetries, "retries of a throttled or failed put before its records are given up")
	fs.DurationVar(&o.RequestTimeout, "request-timeout", o.RequestTimeout, "timeout of one API call")

	fs.Var(choice[ConsumerMode]{&o.ConsumerMode, []ConsumerMode{ConsumePoll, ConsumeEFO}}, "consumer-mode", "poll (GetRecords) or efo (RegisterStreamConsumer + SubscribeToShard)")
	fs.Var(choice[ClientKind]{&o.ConsumerClient, []ClientKind{ClientSDK, ClientRaw}}, "consumer-client", "client of the GetRecords calls: sdk (AWS SDK for Go v2) or raw (the tool's lightweight JSON client, SigV4-signed; SubscribeToShard still uses the SDK)")
	fs.IntVar(&o.Consumers, "consumers", o.Consumers, "polling consumers sharing the shards (0 = one per shard)")
	fs.IntVar(&o.GetLimit, "get-limit", o.GetLimit, "Limit of each GetRecords call")
	fs.DurationVar(&o.PollInterval, "poll-interval", o.PollInterval, "pause after an empty GetRecords response")
	fs.DurationVar(&o.DrainTimeout, "drain-timeout", o.DrainTimeout, "after producing, stop reading when nothing new arrived for this long")
	fs.BoolVar(&o.ReadAfter, "read-after", o.ReadAfter, "consumers read nothing while producers produce, then read everything back: write throughput without concurrent reading (no end-to-end latency; read rate over the reading phase)")
	fs.DurationVar(&o.SetupTimeout, "setup-timeout", o.SetupTimeout, "wait for the stream (and EFO consumer) to become ACTIVE")
	fs.BoolVar(&o.Verify, "verify", o.Verify, "verify every acknowledged record is read back once, intact, in order, and measure ack→receipt latency (about 60 B of memory per record)")
	fs.Uint64Var(&o.Seed, "seed", o.Seed, "seed of the record generators (0 = random)")
	fs.IntVar(&o.ServerPID, "server-pid", o.ServerPID, "measure this local server process's CPU per record and peak RSS (from /proc); 0 = the process listening on a loopback endpoint's port, -1 = off")
}

// newFlagSet defines every flag of the command on o and cli. It prints
// nothing itself.
func newFlagSet(o *Options, cli *cliFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("runnel bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	bindFlags(fs, o)
	fs.BoolVar(&cli.json, "json", false, "print the report as JSON on stdout")
	fs.StringVar(&cli.cpuProfile, "cpuprofile", "", "write the load tool's own CPU profile to `file` (to see what the tool costs the machine)")
	return fs
}

// usage writes the help of the command.
func usage(w io.Writer) {
	o := DefaultOptions()
	var cli cliFlags
	fs := newFlagSet(&o, &cli)
	fs.SetOutput(w)
	fmt.Fprintf(w, `Usage: runnel bench [flags]

Drives a Kinesis-compatible endpoint with producers and consumers, reports
throughput and latency, and verifies that every acknowledged record is read
back exactly once, intact and in order per partition key. By default it
creates a stream on a runnel at http://127.0.0.1:4567 (start one with
"runnel serve").

Profiles:
`)
	for _, n := range ProfileNames() {
		fmt.Fprintf(w, "  %-12s %s\n", n, Profiles[n].Description)
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs.PrintDefaults()
}

// cliFlags are the flags of the command that are not options of the run.
type cliFlags struct {
	json       bool   // print the report as JSON
	cpuProfile string // write the tool's CPU profile here
}

// parseArgs turns the command line into options: defaults, then the
// profile's values, then the flags given explicitly. It prints nothing: a
// request for help is flag.ErrHelp, for the caller to answer with usage.
func parseArgs(args []string) (Options, cliFlags, error) {
	o := DefaultOptions()
	var cli cliFlags
	fs := newFlagSet(&o, &cli)
	if err := fs.Parse(args); err != nil {
		return o, cli, err
	}
	if fs.NArg() > 0 {
		return o, cli, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.Profile != "" {
		prof, ok := Profiles[o.Profile]
		if !ok {
			return o, cli, fmt.Errorf("unknown profile %q (have %s)", o.Profile, strings.Join(ProfileNames(), ", "))
		}
		po := DefaultOptions()
		prof.Apply(&po)
		pfs := flag.NewFlagSet("profile", flag.ContinueOnError)
		pfs.SetOutput(io.Discard)
		bindFlags(pfs, &po)
		var err error
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "json" || f.Name == "cpuprofile" || err != nil {
				return
			}
			if e := pfs.Set(f.Name, f.Value.String()); e != nil {
				err = fmt.Errorf("-%s: %w", f.Name, e)
			}
		})
		if err != nil {
			return o, cli, err
		}
		o = po
	}
	if set["records"] && !set["duration"] {
		o.Duration = 0
	}
	if o.Mode == PutRecord && !set["batch"] {
		o.Batch = 1
	}
	if err := o.Validate(); err != nil {
		return o, cli, err
	}
	return o, cli, nil
}

// Main runs `runnel bench` with the arguments after "bench" and returns the
// process exit code: 0 when the run completed and verified, 1 when it
// failed or the verification found a problem, 2 for bad flags.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, cli, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "runnel bench: %v\n", err)
		fmt.Fprintln(stderr, `Run "runnel bench --help" for its flags.`)
		return exitUsage
	}
	jsonOut := cli.json
	if cli.cpuProfile != "" {
		f, err := os.Create(cli.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "runnel bench: %v\n", err)
			return exitUsage
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			fmt.Fprintf(stderr, "runnel bench: cpu profile: %v\n", err)
			return exitFailed
		}
		defer func() {
			pprof.StopCPUProfile()
			if err := f.Close(); err != nil {
				fmt.Fprintf(stderr, "runnel bench: cpu profile: %v\n", err)
			}
		}()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	tty := isTerminal(stderr)
	progressed := false
	rep, err := Run(ctx, o, func(p Progress) {
		line := formatProgress(p)
		if tty {
			fmt.Fprintf(stderr, "\r\x1b[K%s", line)
		} else {
			fmt.Fprintln(stderr, line)
		}
		progressed = true
	})
	if tty && progressed {
		fmt.Fprintln(stderr)
	}
	if rep == nil {
		// Invalid options are caught by parseArgs; anything else is a
		// failure before the run began.
		fmt.Fprintf(stderr, "runnel bench: %v\n", err)
		return exitFailed
	}
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "runnel bench: %v\n", err)
			return exitFailed
		}
	} else {
		rep.WriteText(stdout)
	}
	if err != nil && jsonOut {
		fmt.Fprintf(stderr, "runnel bench: %v\n", err)
	}
	if !rep.OK() {
		return exitFailed
	}
	return exitOK
}

// formatProgress renders one progress line, short enough for a terminal.
func formatProgress(p Progress) string {
	return fmt.Sprintf("%6.1fs %-12s put %7s/s %6.1f MiB/s  get %7s/s %6.1f MiB/s  total %s/%s throttled %s/%s retried %s errors %s",
		p.Elapsed.Seconds(), p.Phase, count(int64(p.PutRate)), p.PutMiBps, count(int64(p.GetRate)), p.GetMiBps,
		count(p.Put), count(p.Get), count(p.PutThrottled), count(p.GetThrottled), count(p.Retried), count(p.Errors))
}

// count renders n with a k or M suffix above ten thousand.
func count(n int64) string {
	switch {
	case n >= 10_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 10_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
