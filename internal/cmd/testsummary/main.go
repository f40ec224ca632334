// Command testsummary runs `go test -json` and prints what a plain `go test`
// prints (an "ok" or "FAIL" line per package, the output of failed tests and
// of failed builds, a closing FAIL), followed by every skipped test and the
// reason it gave, so that a test skipped for want of a tool is seen rather
// than lost among the passes. `make test` runs the tests through it:
//
//	go run ./internal/cmd/testsummary go test -json -race ./...
//
// The arguments are the command to run; its standard output must be the
// JSON event stream of `go test -json`. Lines that are not events are
// printed as they are. The exit code is the command's.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testsummary go test -json [flags] [packages]")
		os.Exit(2)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command and summarises its events on stdout.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin, cmd.Stderr = os.Stdin, stderr
	events, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(stderr, "testsummary:", err)
		return 1
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(stderr, "testsummary:", err)
		return 1
	}
	s := newSummary(stdout)
	if err := s.read(events); err != nil {
		fmt.Fprintln(stderr, "testsummary: reading the events:", err)
	}
	code := 0
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fmt.Fprintln(stderr, "testsummary:", err)
			return 1
		}
		code = exit.ExitCode()
	}
	s.finish(code != 0)
	return code
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// skipped is a skipped test and the reason it logged.
type skipped struct {
	pkg, test, reason string
}

// summary turns events into the report.
type summary struct {
	w       io.Writer
	running map[string][]string // package + "\x00" + test -> output lines so far
	skips   []skipped
}

func newSummary(w io.Writer) *summary {
	return &summary{w: w, running: make(map[string][]string)}
}

// read consumes the event stream until its end.
func (s *summary) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			fmt.Fprintf(s.w, "%s\n", line)
			continue
		}
		s.handle(e)
	}
	return sc.Err()
}

func (s *summary) handle(e event) {
	key := e.Package + "\x00" + e.Test
	switch {
	case e.Action == "build-output":
		fmt.Fprint(s.w, e.Output)
	case e.Test == "" && e.Action == "output":
		// The package's own lines: "ok  pkg 1.2s", "FAIL", "?  pkg [no
		// test files]", panics. A plain go test prints no "PASS", and
		// no warning that -run matched nothing (the "ok" line says so).
		if e.Output != "PASS\n" && e.Output != "testing: warning: no tests to run\n" {
			fmt.Fprint(s.w, e.Output)
		}
	case e.Test == "" && e.Action == "fail":
		// Tests still running when the package failed (a timeout, a
		// panic, os.Exit) have their output shown.
		for k, lines := range s.running {
			if pkg, test, _ := strings.Cut(k, "\x00"); pkg == e.Package {
				fmt.Fprintf(s.w, "--- UNFINISHED: %s\n", test)
				s.printLines(lines)
				delete(s.running, k)
			}
		}
	case e.Test == "":
	case e.Action == "output":
		s.running[key] = append(s.running[key], e.Output)
	case e.Action == "fail":
		lines := s.running[key]
		delete(s.running, key)
		// The "--- FAIL" line first, then what the test logged, as a
		// plain go test shows it.
		for _, l := range lines {
			if strings.HasPrefix(strings.TrimSpace(l), "--- FAIL") {
				fmt.Fprint(s.w, strings.TrimLeft(l, " "))
			}
		}
		s.printLines(lines)
	case e.Action == "skip":
		s.skips = append(s.skips, skipped{pkg: e.Package, test: e.Test, reason: reason(s.running[key])})
		delete(s.running, key)
	case e.Action == "pass":
		delete(s.running, key)
	}
}

// printLines prints a test's output without the framing lines of verbose
// mode.
func (s *summary) printLines(lines []string) {
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- FAIL") {
			continue
		}
		fmt.Fprint(s.w, l)
	}
}

// reason is what a skipped test logged, on one line.
func reason(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no reason given)"
	}
	return strings.Join(parts, " ")
}

// finish prints the closing FAIL of a failed run and the skipped tests.
func (s *summary) finish(failed bool) {
	if failed {
		fmt.Fprintln(s.w, "FAIL")
	}
	if len(s.skips) == 0 {
		return
	}
	sort.Slice(s.skips, func(i, j int) bool {
		a, b := s.skips[i], s.skips[j]
		return a.pkg < b.pkg || a.pkg == b.pkg && a.test < b.test
	})
	fmt.Fprintf(s.w, "\nskipped tests (%d):\n", len(s.skips))
	for _, k := range s.skips {
		fmt.Fprintf(s.w, "  %s %s: %s\n", k.pkg, k.test, k.reason)
	}
}
