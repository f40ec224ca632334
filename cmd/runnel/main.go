// Command runnel is the runnel server and its tools in one binary:
//
//	runnel serve     run the Kinesis-compatible server
//	runnel bench     load-test a Kinesis endpoint
//	runnel consume   run a consumer worker that prints a stream's records
//	runnel tail      print a stream's records as they arrive
//	runnel top       show streams' rates and consumers' lag, refreshed
//	runnel agent     tail log files into streams
//	runnel keys      manage the keys of encryption at rest
//	runnel version   print the version
//	runnel help      list the commands
//
// Each command takes its own flags; `runnel <command> --help` lists them on
// stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/runnel/runnel/internal/bench"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3"; a
// development build reports the VCS revision it was built from.
var version = "dev"

// env reads the environment; tests substitute a map.
type env func(string) string

// command is one subcommand of the binary.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int
	// flags, for a command configured by flags that environment variables
	// may also set, defines them with their defaults taken from getenv.
	// Every one must have a variable (the tests check, and that the README
	// lists it). Nil for a command without such flags: bench's are
	// command-line only, as a load test is described by its command line.
	flags func(getenv env) *flag.FlagSet
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func commands() []command {
	return []command{
		{"serve", "run the Kinesis-compatible server", runServe, func(getenv env) *flag.FlagSet {
			var c serveConfig
			fs, _, _ := serveFlags(&c, getenv)
			return fs
		}},
		{"bench", "load-test a Kinesis endpoint (runnel's own or any other)", func(ctx context.Context, args []string, stdout, stderr io.Writer, _ env) int {
			return bench.Main(ctx, args, stdout, stderr)
		}, nil},
		{"consume", "run a consumer worker that prints a stream's records", runConsume, func(getenv env) *flag.FlagSet {
			var c consumeConfig
			fs, _, _ := consumeFlags(&c, getenv)
			return fs
		}},
		{"tail", "print a stream's records as they arrive", runTail, func(getenv env) *flag.FlagSet {
			var c tailConfig
			fs, _ := tailFlags(&c, getenv)
			return fs
		}},
		{"top", "show streams' rates and consumers' lag, refreshed in place", runTop, func(getenv env) *flag.FlagSet {
			var c topConfig
			fs, _ := topFlags(&c, getenv)
			return fs
		}},
		{"keys", "rotate the master key, create, disable or enable keys for encryption at rest", runKeys, func(getenv env) *flag.FlagSet {
			var c keysConfig
			return keysFlags(&c, getenv)
		}},
		{"agent", "tail log files into streams (Kinesis Agent configuration)", runAgent, func(getenv env) *flag.FlagSet {
			var c agentConfig
			fs, _, _ := agentFlags(&c, getenv)
			return fs
		}},
		{"version", "print the version", runVersion, nil},
		{"help", "list the commands", runHelp, nil},
	}
}

// processMain is true when the program runs as the runnel command (not in
// a test that calls run): only then may runnel serve execute itself again
// (raiseTimerSlack).
var processMain bool

func main() {
	processMain = true
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run dispatches to a subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help":
		name = "help"
	case "-version", "--version":
		name = "version"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, args[1:], stdout, stderr, getenv)
		}
	}
	fmt.Fprintf(stderr, "runnel: unknown command %q\n", args[0])
	fmt.Fprintln(stderr, `Run "runnel help" for the commands.`)
	return exitUsage
}

// usageError reports a command-line error of a command once, with a
// one-line pointer to its help, and returns the usage exit code.
func usageError(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "runnel %s: %v\n", cmd, err)
	fmt.Fprintf(stderr, "Run \"runnel %s --help\" for its flags.\n", cmd)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "runnel: a self-hosted streaming data platform that speaks the Amazon Kinesis API")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: runnel <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s  %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, `Run "runnel <command> --help" for a command's flags.`)
}

func runHelp(_ context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if len(args) > 0 && args[0] != "help" && !strings.HasPrefix(args[0], "-") {
		// "runnel help serve" is "runnel serve -h".
		return run(context.Background(), []string{args[0], "-h"}, stdout, stderr, getenv)
	}
	usage(stdout)
	return exitOK
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer, _ env) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			fmt.Fprintln(stdout, "Usage: runnel version")
			fmt.Fprintln(stdout)
			fmt.Fprintln(stdout, "Prints the version, the Go version and the platform the binary was built with.")
			return exitOK
		}
		return usageError(stderr, "version", fmt.Errorf("unexpected argument %q", args[0]))
	}
	fmt.Fprintf(stdout, "runnel %s (%s %s/%s)\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// versionString is the release version, or for a development build the VCS
// revision (with "+dirty" when built from a modified tree).
func versionString() string {
	if version != "dev" {
		return version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return version
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		if v := info.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		return version
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return strings.Join([]string{version, rev + dirty}, "-")
}

// printUsage writes a command's help: its usage line, the lines that
// describe it (an empty string for a blank line), and its flags with their
// environment variables.
func printUsage(w io.Writer, fs *flag.FlagSet, usage string, about ...string) {
	fs.SetOutput(w)
	fmt.Fprintln(w, usage)
	fmt.Fprintln(w)
	for _, l := range about {
		fmt.Fprintln(w, l)
	}
	if len(about) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, "Every flag can also be set by the environment variable named after it.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags:")
	fs.PrintDefaults()
}
