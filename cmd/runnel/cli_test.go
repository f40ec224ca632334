package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine/disk"
)

// TestHelpOnStdout: every way of asking for help answers on stdout with exit
// 0, so that `runnel serve --help | grep tls` finds something.
func TestHelpOnStdout(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"help"}, {"help", "--help"}, {"help", "-h"}, {"help", "help"}, {"version", "--help"},
		{"serve", "--help"}, {"serve", "-h"}, {"help", "serve"},
		{"bench", "--help"}, {"bench", "-h"}, {"help", "bench"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errs := runCmd(args...)
			if code != exitOK || !strings.Contains(out, "Usage: runnel") || errs != "" {
				t.Errorf("exit %d, stdout %d bytes (usage: %v), stderr %q; want 0, the usage, nothing",
					code, len(out), strings.Contains(out, "Usage: runnel"), errs)
			}
		})
	}
}

// TestBadFlag: a command-line error is printed once, followed by a single
// line pointing to --help, on stderr with exit 2; no usage dump.
func TestBadFlag(t *testing.T) {
	tests := []struct {
		args []string
		err  string
		hint string
	}{
		{[]string{"serve", "--bogus"}, "flag provided but not defined: -bogus", `"runnel serve --help"`},
		{[]string{"serve", "--shard-limit", "many"}, "invalid value", `"runnel serve --help"`},
		{[]string{"serve", "--engine", "tape"}, "use disk, memory or jetstream", `"runnel serve --help"`},
		{[]string{"bench", "--bogus"}, "flag provided but not defined: -bogus", `"runnel bench --help"`},
		{[]string{"bench", "--shards", "0"}, "shards 0 out of range", `"runnel bench --help"`},
		{[]string{"nope"}, `unknown command "nope"`, `"runnel help"`},
		{[]string{"version", "extra"}, `unexpected argument "extra"`, `"runnel version --help"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := runCmd(tt.args...)
			lines := strings.Split(strings.TrimSuffix(errs, "\n"), "\n")
			if code != exitUsage || out != "" || len(lines) != 2 ||
				!strings.Contains(lines[0], tt.err) || !strings.Contains(lines[1], tt.hint) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2, nothing, then %q and a line with %q", code, out, errs, tt.err, tt.hint)
			}
		})
	}
}

// envName is the environment variable of a flag: RUNNEL_ and the flag's
// name in upper case with underscores.
func envName(flagName string) string {
	return "RUNNEL_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// envTestValue returns a value for f other than its default, as the
// environment would give it, and the flag's String once set to it.
func envTestValue(t *testing.T, f *flag.Flag) (env, want string) {
	t.Helper()
	g, ok := f.Value.(flag.Getter)
	if !ok {
		t.Fatalf("--%s: a %T is not a flag.Getter; teach the test its values", f.Name, f.Value)
	}
	switch v := g.Get().(type) {
	case bool:
		s := strconv.FormatBool(!v)
		return s, s
	case time.Duration:
		d := v + 3*time.Second
		return d.String(), d.String()
	case int:
		s := strconv.Itoa(v + 3)
		return s, s
	case int64:
		s := strconv.FormatInt(v+3, 10)
		return s, s
	case uint64:
		s := strconv.FormatUint(v+3, 10)
		return s, s
	case float64:
		s := strconv.FormatFloat(v+0.5, 'g', -1, 64)
		return s, s
	case string:
		return "from-env-" + f.Name, "from-env-" + f.Name
	}
	t.Fatalf("--%s: values of type %T are not known to the test", f.Name, g.Get())
	return "", ""
}

// TestEveryFlagHasEnv walks every flag of every command configured by flags
// and environment: each names its variable in its help, the variable sets
// it, and the README's configuration table lists both.
func TestEveryFlagHasEnv(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var table []string
	for line := range strings.SplitSeq(string(readme), "\n") {
		if strings.HasPrefix(line, "| `--") {
			table = append(table, line)
		}
	}
	listed := func(flagName, env string) bool {
		for _, row := range table {
			if regexp.MustCompile("`--"+regexp.QuoteMeta(flagName)+"`").MatchString(row) && strings.Contains(row, "`"+env+"`") {
				return true
			}
		}
		return false
	}
	walked := 0
	for _, c := range commands() {
		if c.flags == nil {
			continue
		}
		c.flags(mapEnv(nil)).VisitAll(func(f *flag.Flag) {
			walked++
			t.Run(c.name+" --"+f.Name, func(t *testing.T) {
				env := envName(f.Name)
				if !strings.Contains(f.Usage, "(env "+env+")") {
					t.Errorf("help of --%s does not name its variable: %q lacks \"(env %s)\"", f.Name, f.Usage, env)
				}
				val, want := envTestValue(t, f)
				got := c.flags(mapEnv(map[string]string{env: val})).Lookup(f.Name).Value.String()
				if got != want {
					t.Errorf("%s=%s: --%s is %q, want %q", env, val, f.Name, got, want)
				}
				if !listed(f.Name, env) {
					t.Errorf("README's configuration table has no row with `--%s` and `%s`", f.Name, env)
				}
			})
		})
	}
	if walked < 20 {
		t.Errorf("walked %d flags; the commands' flags were not found", walked)
	}
	// A command that takes flags but has no flags hook is caught here,
	// unless its flags are deliberately command-line only.
	cliOnly := map[string]bool{"bench": true}
	for _, c := range commands() {
		if c.flags != nil || cliOnly[c.name] {
			continue
		}
		if code, out, _ := runCmd(c.name, "--help"); code == exitOK && strings.Contains(out, "\n  -") {
			t.Errorf("runnel %s takes flags but defines no flags hook: give it one so that each flag gets an environment variable", c.name)
		}
	}
}

// TestServePortInUseCreatesNothing: the port is bound before the data
// directory is created, so a port conflict leaves the disk untouched.
func TestServePortInUseCreatesNothing(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig(t, "disk")
	cfg.listen = l.Addr().String()
	cfg.dataDir = filepath.Join(t.TempDir(), "data")
	err = serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(cfg.dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("data directory after a port conflict: %v; want it not created", err)
	}
}

// TestServeDataDirErrors: each data-directory failure names its cause and
// the way out, and the port is free again afterwards.
func TestServeDataDirErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	locked := testConfig(t, "disk")
	_, stop := startServe(t, locked)
	defer stop()

	tests := []struct {
		name    string
		dir     string
		want    []string
		notWant string
	}{
		{"file as data dir", file, []string{"is a file, not a directory", "--data-dir"}, "another process"},
		{"file as a parent", filepath.Join(file, "data"), []string{file + " is a file, not a directory", "--data-dir"}, "another process"},
		{"lock held", locked.dataDir, []string{"is in use by this process", "--data-dir"}, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t, "disk")
			cfg.dataDir = tt.dir
			err := serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
			if err == nil {
				t.Fatal("serve started")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tt.notWant) {
				t.Errorf("error %q says %q", err, tt.notWant)
			}
		})
	}
	// The listener of a failed start was closed: the port can be bound.
	cfg := testConfig(t, "disk")
	cfg.dataDir = file
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.listen = l.Addr().String()
	l.Close()
	if err := serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil); err == nil {
		t.Fatal("serve started on a file")
	}
	l, err = net.Listen("tcp", cfg.listen)
	if err != nil {
		t.Fatalf("port still held after a failed start: %v", err)
	}
	l.Close()
}

// TestServeDataDirPermission runs against a directory the process may not
// write. Root writes anywhere, so as root the test cannot provoke the
// error and skips; TestDataDirErrorPermission checks the message.
func TestServeDataDirPermission(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which ignores file permissions; TestDataDirErrorPermission covers the message")
	}
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(parent, 0o700)
	cfg := testConfig(t, "disk")
	cfg.dataDir = filepath.Join(parent, "data")
	err := serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "permission denied creating "+cfg.dataDir+" in "+parent) || !strings.Contains(err.Error(), "writable") {
		t.Errorf("got %v", err)
	}
}

// TestDataDirErrorPermission checks the messages of permission errors as
// disk.Open returns them: on a file that exists, and creating one.
func TestDataDirErrorPermission(t *testing.T) {
	dir := t.TempDir()
	meta := filepath.Join(dir, "meta.db")
	if err := os.WriteFile(meta, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := dataDirError(dir, fmt.Errorf("disk: open %s: %w", meta,
		&fs.PathError{Op: "open", Path: meta, Err: syscall.EACCES}))
	for _, w := range []string{"permission denied on " + meta, "chown -R", "--data-dir"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
	data := filepath.Join(dir, "sub", "data")
	err = dataDirError(data, fmt.Errorf("disk: create %s: %w", data,
		&fs.PathError{Op: "mkdir", Path: filepath.Join(dir, "sub"), Err: syscall.EACCES}))
	for _, w := range []string{"permission denied creating " + filepath.Join(dir, "sub") + " in " + dir, "writable", "--data-dir"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q lacks %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "another process") || strings.Contains(err.Error(), "another runnel") {
		t.Errorf("%q blames another process", err)
	}
	// An error of no known cause is passed on as it is.
	other := errors.New("disk: recover log s: bad things")
	if err := dataDirError("/d", other); !errors.Is(err, other) || strings.Contains(err.Error(), "another process") {
		t.Errorf("got %v", err)
	}
	// A lock whose holder cannot be found says how to find it.
	err = dataDirError(t.TempDir(), fmt.Errorf("%w: meta.db", disk.ErrLocked))
	if !strings.Contains(err.Error(), "fuser -v") {
		t.Errorf("got %v", err)
	}
}

func TestLockPID(t *testing.T) {
	const locks = `1: POSIX  ADVISORY  WRITE 100 fe:00:42 0 EOF
2: FLOCK  ADVISORY  WRITE 200 fe:00:43 0 EOF
2: -> FLOCK  ADVISORY  WRITE 300 fe:00:42 0 EOF
3: FLOCK  ADVISORY  WRITE 400 fe:00:42 0 EOF
4: FLOCK  ADVISORY  WRITE 500 00:1f:42 0 EOF
`
	scan := func() *bufio.Scanner { return bufio.NewScanner(strings.NewReader(locks)) }
	tests := []struct {
		name     string
		dev, ino uint64
		want     int
	}{
		{"device and inode", 0xfe00, 42, 400},
		{"other device", 0x1f, 42, 500},
		{"inode alone, ambiguous", 0x99, 42, 0},
		{"inode alone, unique", 0x99, 43, 200},
		{"none", 0xfe00, 44, 0},
	}
	for _, tt := range tests {
		if got := lockPID(scan(), tt.dev, tt.ino); got != tt.want {
			t.Errorf("%s: lockPID = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// FuzzLockPID: no /proc/locks content makes the parser panic, and a PID it
// returns comes from a FLOCK line on the inode.
func FuzzLockPID(f *testing.F) {
	f.Add("1: FLOCK  ADVISORY  WRITE 18723 fe:00:42 0 EOF\n", uint64(0xfe00), uint64(42))
	f.Add("1: -> FLOCK  ADVISORY  WRITE 1 fe:00:42 0 EOF\n2: POSIX ADVISORY READ 7 00:1f:42 0 EOF\n", uint64(0x1f), uint64(42))
	f.Add("1: FLOCK ADVISORY WRITE x ::42\n3: FLOCK a b 9 zz:yy:42 0 EOF", uint64(0), uint64(42))
	f.Add("1: FLOCK ADVISORY WRITE -5 fe:00:42 0 EOF", uint64(0xfe00), uint64(42))
	f.Fuzz(func(t *testing.T, locks string, dev, ino uint64) {
		pid := lockPID(bufio.NewScanner(strings.NewReader(locks)), dev, ino)
		if pid < 0 || pid != 0 && !strings.Contains(locks, strconv.Itoa(pid)) {
			t.Errorf("pid %d is not in the input", pid)
		}
	})
}
