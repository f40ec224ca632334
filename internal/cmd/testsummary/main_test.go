package main

import (
	"bytes"
	"strings"
	"testing"
)

// stream is the event stream of a package with a passing, a skipped and a
// failing test (with a failing and a skipped subtest), a package that
// passes, one that does not build and a line that is not an event.
const stream = `{"Action":"build-output","ImportPath":"m/bad [m/bad.test]","Output":"# m/bad [m/bad.test]\n"}
{"Action":"build-output","ImportPath":"m/bad [m/bad.test]","Output":"bad/bad_test.go:3:29: undefined: x\n"}
{"Action":"build-fail","ImportPath":"m/bad [m/bad.test]"}
{"Action":"start","Package":"m"}
{"Action":"run","Package":"m","Test":"TestA"}
{"Action":"output","Package":"m","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Package":"m","Test":"TestA","Output":"    a_test.go:3: quiet when passing\n"}
{"Action":"output","Package":"m","Test":"TestA","Output":"--- PASS: TestA (0.00s)\n"}
{"Action":"pass","Package":"m","Test":"TestA"}
{"Action":"output","Package":"m","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Package":"m","Test":"TestB","Output":"    a_test.go:4: AWS CLI v2 not installed\n"}
{"Action":"output","Package":"m","Test":"TestB","Output":"--- SKIP: TestB (0.00s)\n"}
{"Action":"skip","Package":"m","Test":"TestB"}
{"Action":"output","Package":"m","Test":"TestC","Output":"=== RUN   TestC\n"}
{"Action":"output","Package":"m","Test":"TestC/x","Output":"=== RUN   TestC/x\n"}
{"Action":"output","Package":"m","Test":"TestC/x","Output":"    a_test.go:5: bad value\n"}
{"Action":"output","Package":"m","Test":"TestC/x","Output":"    --- FAIL: TestC/x (0.00s)\n"}
{"Action":"fail","Package":"m","Test":"TestC/x"}
{"Action":"output","Package":"m","Test":"TestC/y","Output":"=== RUN   TestC/y\n"}
{"Action":"output","Package":"m","Test":"TestC/y","Output":"    --- SKIP: TestC/y (0.00s)\n"}
{"Action":"skip","Package":"m","Test":"TestC/y"}
{"Action":"output","Package":"m","Test":"TestC","Output":"--- FAIL: TestC (0.00s)\n"}
{"Action":"fail","Package":"m","Test":"TestC"}
{"Action":"output","Package":"m","Test":"TestD","Output":"=== RUN   TestD\n"}
{"Action":"output","Package":"m","Test":"TestD","Output":"    still running\n"}
{"Action":"output","Package":"m","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"m","Output":"FAIL\n"}
{"Action":"output","Package":"m","Output":"FAIL\tm\t0.003s\n"}
{"Action":"fail","Package":"m"}
{"Action":"output","Package":"m/bad","Output":"FAIL\tm/bad [build failed]\n"}
{"Action":"fail","Package":"m/bad"}
{"Action":"output","Package":"m/ok","Output":"testing: warning: no tests to run\n"}
{"Action":"output","Package":"m/ok","Output":"PASS\n"}
{"Action":"output","Package":"m/ok","Output":"ok  \tm/ok\t0.004s\n"}
{"Action":"pass","Package":"m/ok"}
go: some message that is not JSON
`

func TestSummary(t *testing.T) {
	var out bytes.Buffer
	s := newSummary(&out)
	if err := s.read(strings.NewReader(stream)); err != nil {
		t.Fatal(err)
	}
	s.finish(true)
	want := `# m/bad [m/bad.test]
bad/bad_test.go:3:29: undefined: x
--- FAIL: TestC/x (0.00s)
    a_test.go:5: bad value
--- FAIL: TestC (0.00s)
panic: test timed out after 1s
FAIL
FAIL	m	0.003s
--- UNFINISHED: TestD
    still running
FAIL	m/bad [build failed]
ok  	m/ok	0.004s
go: some message that is not JSON
FAIL

skipped tests (2):
  m TestB: a_test.go:4: AWS CLI v2 not installed
  m TestC/y: (no reason given)
`
	if got := out.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestRunExitCode: the command's exit code and its non-event lines come
// through.
func TestRunExitCode(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"sh", "-c", `printf '%s\n' '{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}'; echo oops >&2; exit 3`}, &out, &errb)
	if code != 3 || out.String() != "ok  \tp\t0.1s\nFAIL\n" || errb.String() != "oops\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
