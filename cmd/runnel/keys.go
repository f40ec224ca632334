package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"

	"github.com/runnel/runnel/internal/keystore"
)

// keysConfig is what `runnel keys` is told by flags and environment.
type keysConfig struct {
	keyFile string
	dataDir string
}

func keysFlags(c *keysConfig, getenv env) *flag.FlagSet {
	fs := flag.NewFlagSet("runnel keys", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	envOr := func(key, def string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return def
	}
	fs.StringVar(&c.keyFile, "key-file", envOr("RUNNEL_KEY_FILE", ""), "the key store's `file`; default: <data-dir>.keys (env RUNNEL_KEY_FILE)")
	fs.StringVar(&c.dataDir, "data-dir", envOr("RUNNEL_DATA_DIR", "./runnel-data"), "the disk engine's `directory`, to find the default key file (env RUNNEL_DATA_DIR)")
	return fs
}

func keysUsage(w io.Writer) {
	var c keysConfig
	fs := keysFlags(&c, func(string) string { return "" })
	fs.SetOutput(w)
	fmt.Fprintln(w, "Usage: runnel keys <action> [flags] [arguments]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Edits the key store behind encryption at rest. A running server sees the")
	fmt.Fprintln(w, "change within a second.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Actions:")
	fmt.Fprintln(w, "  rotate                      add a new master key and make it current; the server")
	fmt.Fprintln(w, "                              re-wraps every data key under it (no data is rewritten)")
	fmt.Fprintln(w, "  retire                      remove the master keys older than the current one")
	fmt.Fprintln(w, "                              (only after the server logged that it re-wrapped)")
	fmt.Fprintln(w, "  create [alias/NAME...]      add a KMS key, print its id")
	fmt.Fprintln(w, "  disable|enable KEY          set a KMS key's state (key id, ARN or alias)")
	fmt.Fprintln(w, "  schedule-deletion KEY       set it PendingDeletion (KMSInvalidStateException)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Flags (before the arguments):")
	fs.PrintDefaults()
}

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		keysUsage(stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	action := args[0]
	var c keysConfig
	fs := keysFlags(&c, getenv)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			keysUsage(stdout)
			return 0
		}
		return usageError(stderr, "keys", err)
	}
	path := c.keyFile
	if path == "" {
		path = keystore.DefaultFile(c.dataDir)
	}
	rest := fs.Args()
	var err error
	switch action {
	case "rotate":
		var id string
		if id, err = keystore.RotateFile(path); err == nil {
			fmt.Fprintf(stdout, "master key %s is current in %s; a running server re-wraps the data keys under it within a second (or at its next start)\n", id, path)
		}
	case "retire":
		var n int
		if n, err = keystore.RetireFile(path); err == nil {
			fmt.Fprintf(stdout, "removed %d older master key(s) from %s\n", n, path)
		}
	case "create":
		var id string
		if id, err = keystore.CreateKeyFile(path, rest...); err == nil {
			fmt.Fprintln(stdout, id)
		}
	case "disable", "enable", "schedule-deletion":
		if len(rest) != 1 {
			return usageError(stderr, "keys", fmt.Errorf("%s takes one key (id, ARN or alias)", action))
		}
		state := map[string]string{"disable": keystore.StateDisabled, "enable": keystore.StateEnabled, "schedule-deletion": keystore.StatePendingDeletion}[action]
		if err = keystore.SetStateFile(path, rest[0], state); err == nil {
			fmt.Fprintf(stdout, "%s is %s\n", rest[0], state)
		}
	default:
		return usageError(stderr, "keys", fmt.Errorf("unknown action %q: use rotate, retire, create, disable, enable or schedule-deletion", action))
	}
	if err != nil {
		fmt.Fprintf(stderr, "runnel keys %s: %v\n", action, err)
		if errors.Is(err, iofs.ErrNotExist) {
			fmt.Fprintln(stderr, "The key file is created by the server on first use of encryption; name it with --key-file or RUNNEL_KEY_FILE.")
		}
		return 1
	}
	return 0
}
