package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/runneltest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, o Options)
		err   bool
	}{
		{
			name: "defaults",
			check: func(t *testing.T, o Options) {
				want := DefaultOptions()
				if !reflect.DeepEqual(o, want) {
					t.Errorf("options = %+v, want defaults", o)
				}
			},
		},
		{
			name: "spread over endpoints",
			args: []string{"--endpoint", "http://a:1", "--spread", "http://b:2, http://c:3"},
			check: func(t *testing.T, o Options) {
				if o.Endpoint != "http://a:1" || !reflect.DeepEqual(o.Spread, []string{"http://b:2", "http://c:3"}) {
					t.Errorf("endpoint %q, spread %q", o.Endpoint, o.Spread)
				}
			},
		},
		{
			name: "spread endpoint not a URL",
			args: []string{"--spread", "b:2"},
			err:  true,
		},
		{
			name: "profile values",
			args: []string{"--profile", "clickstream"},
			check: func(t *testing.T, o Options) {
				if o.Shape != ShapeClickstream || o.KeyDist != KeyZipf || o.Keys != 100000 || o.Size != 500 || o.SizeMax != 1536 {
					t.Errorf("clickstream options = %+v", o)
				}
			},
		},
		{
			name: "explicit flags override the profile, before or after it",
			args: []string{"--keys", "7", "--profile", "iot", "--rate=0", "--batch", "500"},
			check: func(t *testing.T, o Options) {
				if o.Keys != 7 || o.Rate != 0 || o.Batch != 500 || o.Shape != ShapeIoT || o.Producers != 16 {
					t.Errorf("iot with overrides = %+v", o)
				}
			},
		},
		{
			name: "logs bursts and override",
			args: []string{"--profile", "logs", "--burst", "off"},
			check: func(t *testing.T, o Options) {
				if o.BurstOn != 0 || o.BurstOff != 0 || o.Shape != ShapeLogs {
					t.Errorf("logs without bursts = %+v", o)
				}
			},
		},
		{
			name: "burst",
			args: []string{"--burst", "500ms/1.5s"},
			check: func(t *testing.T, o Options) {
				if o.BurstOn != 500*time.Millisecond || o.BurstOff != 1500*time.Millisecond {
					t.Errorf("burst = %v/%v", o.BurstOn, o.BurstOff)
				}
			},
		},
		{
			name: "records alone replace the duration",
			args: []string{"--records", "1000"},
			check: func(t *testing.T, o Options) {
				if o.Records != 1000 || o.Duration != 0 {
					t.Errorf("records/duration = %d/%v", o.Records, o.Duration)
				}
			},
		},
		{
			name: "records and duration",
			args: []string{"--records", "1000", "--duration", "5s"},
			check: func(t *testing.T, o Options) {
				if o.Records != 1000 || o.Duration != 5*time.Second {
					t.Errorf("records/duration = %d/%v", o.Records, o.Duration)
				}
			},
		},
		{
			name: "putrecord mode sends one record per call",
			args: []string{"--mode", "putrecord"},
			check: func(t *testing.T, o Options) {
				if o.Batch != 1 || o.putMode() != PutRecord {
					t.Errorf("batch/mode = %d/%s", o.Batch, o.putMode())
				}
			},
		},
		{
			name: "batch 1 means PutRecord",
			args: []string{"--batch", "1"},
			check: func(t *testing.T, o Options) {
				if o.putMode() != PutRecord {
					t.Errorf("mode = %s", o.putMode())
				}
			},
		},
		{name: "unknown profile", args: []string{"--profile", "nope"}, err: true},
		{name: "bad mode", args: []string{"--mode", "fast"}, err: true},
		{name: "batch too big", args: []string{"--batch", "501"}, err: true},
		{name: "size below header", args: []string{"--size", "10"}, err: true},
		{name: "putrecord with a batch", args: []string{"--mode", "putrecord", "--batch", "10"}, err: true},
		{name: "existing stream without a name", args: []string{"--create=false"}, err: true},
		{name: "no bound", args: []string{"--duration", "0"}, err: true},
		{name: "zipf exponent", args: []string{"--key-dist", "zipf", "--zipf-s", "1"}, err: true},
		{name: "bad burst", args: []string{"--burst", "2s"}, err: true},
		{name: "bad endpoint", args: []string{"--endpoint", "localhost:4567"}, err: true},
		{name: "stray argument", args: []string{"now"}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _, err := parseArgs(tt.args)
			if (err != nil) != tt.err {
				t.Fatalf("parseArgs(%q) error = %v, want error %v", tt.args, err, tt.err)
			}
			if err == nil && tt.check != nil {
				tt.check(t, o)
			}
		})
	}
}

func TestProfilesValid(t *testing.T) {
	for _, name := range ProfileNames() {
		o := DefaultOptions()
		Profiles[name].Apply(&o)
		if err := o.Validate(); err != nil {
			t.Errorf("profile %s: %v", name, err)
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"-h"}, &stdout, &stderr); code != exitOK {
		t.Errorf("Main -h = %d", code)
	}
	for _, want := range []string{"clickstream", "-consumer-mode", "-profile"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("usage on stdout lacks %q", want)
		}
	}
	if stderr.Len() > 0 {
		t.Errorf("help wrote to stderr: %q", stderr.String())
	}
	if _, _, err := parseArgs([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("parseArgs -h error = %v", err)
	}
}

func TestPacer(t *testing.T) {
	// 400 records at 2,000 records/s take about 0.2 s.
	start := time.Now()
	p := &pacer{rate: 2000, start: start}
	for range 40 {
		if !p.wait(context.Background(), 10, time.Time{}) {
			t.Fatal("wait refused without a deadline")
		}
	}
	if el := time.Since(start); el < 190*time.Millisecond || el > 2*time.Second {
		t.Errorf("400 records at 2000/s took %v", el)
	}
	// A batch scheduled past the deadline is refused: the 41st batch is due
	// 200 ms after the start, so a deadline then refuses it, however late
	// a loaded machine ran the loop above.
	if p.wait(context.Background(), 10, start.Add(200*time.Millisecond)) {
		t.Error("wait accepted a batch past the deadline")
	}
	// Bursts: nothing is sent during the off period.
	b := &pacer{on: 50 * time.Millisecond, off: 100 * time.Millisecond, start: time.Now().Add(-60 * time.Millisecond)}
	t0 := time.Now()
	b.wait(context.Background(), 1, time.Time{})
	if w := time.Since(t0); w < 70*time.Millisecond {
		t.Errorf("wait in the off period returned after %v", w)
	}
}

// runMain runs Main with --json against endpoint and decodes the report.
func runMain(t *testing.T, endpoint string, args ...string) (int, Report, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append([]string{"--endpoint", endpoint, "--json", "--drain-timeout", "500ms", "--setup-timeout", "20s"}, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := Main(ctx, args, &stdout, &stderr)
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("Main %q: exit %d, report not JSON: %v\nstdout: %s\nstderr: %s", args, code, err, stdout.String(), stderr.String())
	}
	return code, rep, stderr.String()
}

// TestMainFaults runs the whole tool against an in-process fake Kinesis
// that misbehaves in known ways, and checks that the report tells.
func TestMainFaults(t *testing.T) {
	short := []string{"--duration", "300ms", "--shards", "3", "--producers", "3", "--batch", "20", "--size", "100", "--poll-interval", "10ms"}
	tests := []struct {
		name  string
		f     faults
		args  []string
		code  int
		check func(t *testing.T, r Report)
	}{
		{
			name: "clean",
			code: exitOK,
			check: func(t *testing.T, r Report) {
				if r.Written.Records == 0 || r.Read.Records != r.Written.Records || r.Verification.ReadOnce != r.Written.Records {
					t.Errorf("written %d, read %d, verified %d", r.Written.Records, r.Read.Records, r.Verification.ReadOnce)
				}
				if r.PutLatency.Count == 0 || r.EndToEnd == nil || r.EndToEnd.Count != uint64(r.Read.Records) || r.PutLatency.P99Ms <= 0 {
					t.Errorf("latencies %+v %+v", r.PutLatency, r.EndToEnd)
				}
				checkAckToReceipt(t, r)
				if r.ReadAfter || r.ReadSeconds <= 0 || r.ReadSeconds > r.TotalSeconds {
					t.Errorf("read after %v, read seconds %g of %g", r.ReadAfter, r.ReadSeconds, r.TotalSeconds)
				}
			},
		},
		{
			name: "single key, PutRecord, shared consumer, record count",
			args: []string{"--records", "150", "--duration", "0", "--batch", "1", "--keys", "1", "--consumers", "1", "--profile", "iot", "--rate", "0"},
			code: exitOK,
			check: func(t *testing.T, r Report) {
				if r.Written.Records != 150 || r.Workload.Mode != PutRecord || r.Consumers != 1 || !r.Verification.OK {
					t.Errorf("report %+v", r)
				}
			},
		},
		{
			name: "throttled records are retried",
			f:    faults{throttle: 7},
			code: exitOK,
			check: func(t *testing.T, r Report) {
				if r.ThrottledRecords == 0 || r.RetriedRecords == 0 || r.FailedRecords != 0 {
					t.Errorf("throttled %d, retried %d, failed %d", r.ThrottledRecords, r.RetriedRecords, r.FailedRecords)
				}
				checkAckToReceipt(t, r)
			},
		},
		{
			name: "lost",
			f:    faults{drop: 50},
			code: exitFailed,
			check: func(t *testing.T, r Report) {
				if r.Verification.Lost == 0 || r.Verification.OK {
					t.Errorf("verification %+v", r.Verification)
				}
			},
		},
		{
			name: "duplicated",
			f:    faults{dup: 50},
			code: exitFailed,
			check: func(t *testing.T, r Report) {
				if r.Verification.Duplicated == 0 || r.Verification.Lost != 0 {
					t.Errorf("verification %+v", r.Verification)
				}
			},
		},
		{
			name: "corrupted",
			f:    faults{corrupt: 50},
			code: exitFailed,
			check: func(t *testing.T, r Report) {
				if r.Verification.Corrupted == 0 {
					t.Errorf("verification %+v", r.Verification)
				}
			},
		},
		{
			name: "reordered",
			f:    faults{reverse: true},
			args: []string{"--keys", "2"},
			code: exitFailed,
			check: func(t *testing.T, r Report) {
				if r.Verification.Reordered == 0 || r.Verification.Lost != 0 {
					t.Errorf("verification %+v", r.Verification)
				}
			},
		},
		{
			name: "enhanced fan-out unsupported",
			args: []string{"--consumer-mode", "efo"},
			code: exitFailed,
			check: func(t *testing.T, r Report) {
				if !strings.Contains(r.Error, "does not support enhanced fan-out") || r.Started {
					t.Errorf("error %q, started %v", r.Error, r.Started)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			endpoint := newFakeKinesis(t, tt.f)
			code, rep, stderr := runMain(t, endpoint, append(append([]string{}, short...), tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; error %q; verification %+v\nstderr: %s", code, tt.code, rep.Error, rep.Verification, stderr)
			}
			tt.check(t, rep)
		})
	}
}

// checkAckToReceipt checks that a run which read every record it wrote
// reports the ack→receipt latency over the same reads as the end-to-end
// one, and never above it: each record was acknowledged after it was first
// sent.
func checkAckToReceipt(t *testing.T, r Report) {
	t.Helper()
	a, e := r.AckToReceipt, r.EndToEnd
	if a == nil || e == nil {
		t.Fatalf("ack→receipt %+v, end-to-end %+v", a, e)
	}
	if a.Count == 0 || a.Count != e.Count || a.Count != uint64(r.Verification.ReadOnce+r.Verification.Duplicated+r.Verification.RetryDuplicates) {
		t.Errorf("ack→receipt n=%d, end-to-end n=%d, verification %+v", a.Count, e.Count, r.Verification)
	}
	for _, q := range []struct {
		name string
		a, e float64
	}{
		{"mean", a.MeanMs, e.MeanMs}, {"p50", a.P50Ms, e.P50Ms}, {"p90", a.P90Ms, e.P90Ms},
		{"p99", a.P99Ms, e.P99Ms}, {"p99.9", a.P999Ms, e.P999Ms}, {"max", a.MaxMs, e.MaxMs},
	} {
		if q.a > q.e {
			t.Errorf("ack→receipt %s %.3f ms above end-to-end %.3f ms", q.name, q.a, q.e)
		}
	}
}

// TestMainExistingStream runs on a stream kept by an earlier run: reading
// starts at its tip, so the earlier records are neither read nor lost.
func TestMainExistingStream(t *testing.T) {
	endpoint := newFakeKinesis(t, faults{})
	args := []string{"--duration", "200ms", "--shards", "2", "--producers", "2", "--batch", "10", "--poll-interval", "10ms", "--stream", "kept"}
	if code, rep, stderr := runMain(t, endpoint, append(args, "--keep")...); code != exitOK || !rep.StreamCreated {
		t.Fatalf("first run: exit %d, created %v, error %q\n%s", code, rep.StreamCreated, rep.Error, stderr)
	}
	code, rep, stderr := runMain(t, endpoint, append(args, "--create=false")...)
	if code != exitOK || rep.StreamCreated || rep.Written.Records == 0 || rep.Verification.ReadOnce != rep.Written.Records || rep.Verification.Foreign != 0 {
		t.Errorf("second run: exit %d, created %v, written %d, verification %+v, error %q\n%s", code, rep.StreamCreated, rep.Written.Records, rep.Verification, rep.Error, stderr)
	}
}

// TestMainReadAfter runs with --read-after against the fake: no read call
// may come before the last put, the verification works as without it, and
// the report has no end-to-end latency.
func TestMainReadAfter(t *testing.T) {
	short := []string{"--duration", "300ms", "--shards", "3", "--producers", "3", "--batch", "20", "--size", "100", "--poll-interval", "10ms", "--read-after"}
	tests := []struct {
		name  string
		f     faults
		args  []string
		code  int
		check func(t *testing.T, r Report)
	}{
		{
			name: "clean",
			code: exitOK,
			check: func(t *testing.T, r Report) {
				if !r.Verification.OK || r.Written.Records == 0 || r.Verification.ReadOnce != r.Written.Records || r.Read.Records != r.Written.Records {
					t.Errorf("written %d, read %d, verification %+v", r.Written.Records, r.Read.Records, r.Verification)
				}
				// Reading starts when producing ends: its rate is over the
				// rest of the run only.
				if r.ReadSeconds <= 0 || r.ReadSeconds > r.TotalSeconds-r.ProduceSeconds+0.001 || r.Read.RecordsPerSec < float64(r.Read.Records)/r.TotalSeconds {
					t.Errorf("read %d records in %g s at %g/s; produced %g s of %g s", r.Read.Records, r.ReadSeconds, r.Read.RecordsPerSec, r.ProduceSeconds, r.TotalSeconds)
				}
			},
		},
		{
			name: "PutRecord, single key, record count",
			args: []string{"--records", "100", "--duration", "0", "--batch", "1", "--keys", "1", "--consumers", "1"},
			code: exitOK,
			check: func(t *testing.T, r Report) {
				if !r.Verification.OK || r.Written.Records != 100 || r.Verification.ReadOnce != 100 {
					t.Errorf("written %d, verification %+v", r.Written.Records, r.Verification)
				}
			},
		},
		{
			name: "lost",
			f:    faults{drop: 50},
			code: exitFailed,
			check: func(t *testing.T, r Report) {
				if r.Verification.Lost == 0 || r.Verification.OK || r.Verification.Duplicated != 0 {
					t.Errorf("verification %+v", r.Verification)
				}
			},
		},
		{
			name: "reordered",
			f:    faults{reverse: true},
			args: []string{"--keys", "2"},
			code: exitFailed,
			check: func(t *testing.T, r Report) {
				if r.Verification.Reordered == 0 || r.Verification.Lost != 0 {
					t.Errorf("verification %+v", r.Verification)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fk, endpoint := newFake(t, tt.f)
			code, rep, stderr := runMain(t, endpoint, append(append([]string{}, short...), tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; error %q; verification %+v\nstderr: %s", code, tt.code, rep.Error, rep.Verification, stderr)
			}
			if !rep.ReadAfter || rep.EndToEnd != nil || rep.AckToReceipt != nil {
				t.Errorf("read after %v, end-to-end %+v, ack→receipt %+v", rep.ReadAfter, rep.EndToEnd, rep.AckToReceipt)
			}
			if gets, late := fk.calls(); gets == 0 || late != 0 {
				t.Errorf("%d GetRecords calls, %d put calls after the first", gets, late)
			}
			tt.check(t, rep)
		})
	}
	t.Run("without it consumers read while producers produce", func(t *testing.T) {
		fk, endpoint := newFake(t, faults{})
		if code, rep, stderr := runMain(t, endpoint, short[:len(short)-1]...); code != exitOK {
			t.Fatalf("exit %d, error %q\n%s", code, rep.Error, stderr)
		}
		if _, late := fk.calls(); late == 0 {
			t.Error("no put call after the first GetRecords call")
		}
	})
	t.Run("JSON and text", func(t *testing.T) {
		endpoint := newFakeKinesis(t, faults{})
		args := []string{"--endpoint", endpoint, "--drain-timeout", "500ms", "--setup-timeout", "20s", "--records", "200"}
		args = append(args, short[2:]...)
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), append(args, "--json"), &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		if string(raw["end_to_end_latency"]) != "null" || string(raw["ack_to_receipt_latency"]) != "null" || string(raw["read_after"]) != "true" {
			t.Errorf("end_to_end_latency %s, ack_to_receipt_latency %s, read_after %s", raw["end_to_end_latency"], raw["ack_to_receipt_latency"], raw["read_after"])
		}
		stdout.Reset()
		if code := Main(context.Background(), args, &stdout, &stderr); code != exitOK {
			t.Fatalf("exit %d\n%s", code, stderr.String())
		}
		text := stdout.String()
		if !strings.Contains(text, "end-to-end       not measured") || strings.Contains(text, "end-to-end       p50") ||
			!strings.Contains(text, "ack→receipt      not measured") || strings.Contains(text, "ack→receipt      p50") ||
			!strings.Contains(text, "--read-after") || !strings.Contains(text, "verification OK") {
			t.Errorf("text report:\n%s", text)
		}
	})
}

// TestLatencyReport checks how the two end-to-end measures are reported:
// the ack→receipt line right under the end-to-end one and the JSON object
// next to it, and no ack→receipt figure without the verification's ledgers.
func TestLatencyReport(t *testing.T) {
	endpoint := newFakeKinesis(t, faults{})
	base := []string{"--endpoint", endpoint, "--drain-timeout", "500ms", "--setup-timeout", "20s", "--records", "200",
		"--shards", "2", "--producers", "2", "--batch", "10", "--size", "100", "--poll-interval", "10ms"}
	run := func(args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), append(append([]string{}, base...), args...), &stdout, &stderr); code != exitOK {
			t.Fatalf("%q: exit %d\n%s", args, code, stderr.String())
		}
		return stdout.String()
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(run("--json")), &raw); err != nil {
		t.Fatal(err)
	}
	var a, e Latency
	if err := json.Unmarshal(raw["ack_to_receipt_latency"], &a); err != nil || a.Count == 0 {
		t.Errorf("ack_to_receipt_latency %s: %v", raw["ack_to_receipt_latency"], err)
	}
	if err := json.Unmarshal(raw["end_to_end_latency"], &e); err != nil || e.Count != a.Count {
		t.Errorf("end_to_end_latency %s: %v", raw["end_to_end_latency"], err)
	}
	lines := strings.Split(run(), "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "end-to-end       p50 ") })
	if i < 0 || i+1 == len(lines) || !strings.HasPrefix(lines[i+1], "ack→receipt      p50 ") || !strings.HasSuffix(lines[i+1], "(n=200)") {
		t.Errorf("text report:\n%s", strings.Join(lines, "\n"))
	}
	if err := json.Unmarshal([]byte(run("--json", "--verify=false")), &raw); err != nil {
		t.Fatal(err)
	}
	if string(raw["ack_to_receipt_latency"]) != "null" || string(raw["end_to_end_latency"]) == "null" {
		t.Errorf("without verification: ack_to_receipt_latency %s, end_to_end_latency %s", raw["ack_to_receipt_latency"], raw["end_to_end_latency"])
	}
	if text := run("--verify=false"); !strings.Contains(text, "ack→receipt      not measured") {
		t.Errorf("text report without verification:\n%s", text)
	}
	if runtime.GOOS != "linux" {
		return
	}
	// The fake endpoint is served by this process, found from its port.
	if text := run(); !strings.Contains(text, fmt.Sprintf("server    pid %d: ", os.Getpid())) || !strings.Contains(text, "us CPU per record written and read back once") {
		t.Errorf("text report without the server's usage:\n%s", text)
	}
	if err := json.Unmarshal([]byte(run("--json")), &raw); err != nil {
		t.Fatal(err)
	}
	var su ServerUsage
	if err := json.Unmarshal(raw["server"], &su); err != nil || su.PID != os.Getpid() || su.PeakRSSMiB <= 0 {
		t.Errorf("server %s: %v", raw["server"], err)
	}
	if text := run("--server-pid", "-1"); strings.Contains(text, "server    ") {
		t.Errorf("--server-pid -1 still measured:\n%s", text)
	}
	if text := run("--server-pid", "999999999"); !strings.Contains(text, "server    not measured: process 999999999: ") {
		t.Errorf("a process that does not exist:\n%s", text)
	}
}

// TestMainExistingStreamReadAfter reads back after producing on a stream
// kept by an earlier run: the earlier records are ignored, this run's are
// all read.
func TestMainExistingStreamReadAfter(t *testing.T) {
	endpoint := newFakeKinesis(t, faults{})
	args := []string{"--duration", "200ms", "--shards", "2", "--producers", "2", "--batch", "10", "--poll-interval", "10ms", "--stream", "kept"}
	if code, rep, stderr := runMain(t, endpoint, append(args, "--keep")...); code != exitOK {
		t.Fatalf("first run: exit %d, error %q\n%s", code, rep.Error, stderr)
	}
	code, rep, stderr := runMain(t, endpoint, append(args, "--create=false", "--read-after")...)
	if code != exitOK || rep.Written.Records == 0 || rep.Verification.ReadOnce != rep.Written.Records || rep.EndToEnd != nil {
		t.Errorf("second run: exit %d, written %d, verification %+v, error %q\n%s", code, rep.Written.Records, rep.Verification, rep.Error, stderr)
	}
}

func TestFormatProgress(t *testing.T) {
	line := formatProgress(Progress{Elapsed: 1500 * time.Millisecond, Phase: "producing", PutRate: 123456, PutMiBps: 120.5, Put: 12_345_678, Get: 9999})
	for _, want := range []string{"1.5s", "producing", "123.5k/s", "120.5 MiB/s", "total 12.3M/9999"} {
		if !strings.Contains(line, want) {
			t.Errorf("progress line %q lacks %q", line, want)
		}
	}
	long := formatProgress(Progress{Elapsed: 100 * time.Second, Phase: "reading back", GetRate: 123456, GetMiBps: 120.5,
		Put: 12_345_678, Get: 9_876_543, PutThrottled: 12345, GetThrottled: 123, Retried: 12345, Errors: 12})
	if !strings.Contains(long, "reading back") {
		t.Errorf("progress line %q lacks its phase", long)
	}
	for _, l := range []string{line, long} {
		if len(l) > 140 {
			t.Errorf("progress line %q is %d characters long", l, len(l))
		}
	}
}

// TestMainRunnel runs the tool against an in-process runnel server.
func TestMainRunnel(t *testing.T) {
	tests := []struct {
		name string
		opts []runneltest.Option
		args []string
	}{
		{
			name: "disk engine, PutRecords, clickstream",
			opts: []runneltest.Option{runneltest.WithDisk(), runneltest.WithTransitionDelay(0)},
			args: []string{"--duration", "1s", "--profile", "clickstream", "--producers", "4", "--shards", "3"},
		},
		{
			name: "memory engine, PutRecord, single key, shared consumer",
			opts: []runneltest.Option{runneltest.WithTransitionDelay(0)},
			args: []string{"--records", "300", "--batch", "1", "--keys", "1", "--shards", "2", "--consumers", "1"},
		},
		{
			name: "disk engine, PutRecords, reading back after producing",
			opts: []runneltest.Option{runneltest.WithDisk(), runneltest.WithTransitionDelay(0)},
			args: []string{"--duration", "1s", "--producers", "4", "--shards", "4", "--batch", "500", "--size", "1024", "--read-after"},
		},
		{
			name: "disk engine, PutRecords with the raw client, reading back after producing",
			opts: []runneltest.Option{runneltest.WithDisk(), runneltest.WithTransitionDelay(0)},
			args: []string{"--duration", "1s", "--producers", "4", "--shards", "4", "--batch", "500", "--size", "1024", "--keys", "1024", "--read-after", "--producer-client", "raw"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := runneltest.NewServer(t, tt.opts...)
			code, rep, stderr := runMain(t, srv.Endpoint(), append([]string{"--poll-interval", "20ms"}, tt.args...)...)
			if code != exitOK || rep.Written.Records == 0 || !rep.Verification.OK || rep.Verification.ReadOnce != rep.Written.Records {
				t.Errorf("exit %d, written %d, verification %+v, error %q\nstderr: %s", code, rep.Written.Records, rep.Verification, rep.Error, stderr)
			}
			if rep.ReadAfter != (rep.EndToEnd == nil) || rep.ReadAfter != (rep.AckToReceipt == nil) {
				t.Errorf("read after %v, end-to-end %+v, ack→receipt %+v", rep.ReadAfter, rep.EndToEnd, rep.AckToReceipt)
			}
			if !rep.ReadAfter {
				checkAckToReceipt(t, rep)
			}
			// The server runs in this process, found from the port (on
			// Linux, where /proc tells). A short run may use less CPU than
			// one 10 ms tick; TestServerMeter checks that CPU is counted.
			if s := rep.Server; runtime.GOOS == "linux" && (s == nil || s.PID != os.Getpid() || s.CPUSeconds < 0 || s.CPUPerRecordUs < 0 || s.PeakRSSMiB <= 0 || s.HWMMiB <= 0) {
				t.Errorf("server usage %+v, note %q", rep.Server, rep.ServerNote)
			}
		})
	}
	for _, extra := range [][]string{nil, {"--read-after"}} {
		t.Run("enhanced fan-out works or fails clearly "+strings.Join(extra, " "), func(t *testing.T) {
			srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
			code, rep, stderr := runMain(t, srv.Endpoint(), append([]string{"--duration", "1s", "--consumer-mode", "efo", "--shards", "2", "--producers", "2", "--drain-timeout", "5s"}, extra...)...)
			switch {
			case code == exitOK && rep.Verification.OK && rep.Written.Records > 0 && rep.Verification.ReadOnce == rep.Written.Records:
				if !rep.ReadAfter {
					checkAckToReceipt(t, rep)
				}
			case code == exitFailed && strings.Contains(rep.Error, "does not support enhanced fan-out"):
				// With --read-after the subscriptions start after producing.
				if !rep.Started == rep.ReadAfter {
					t.Errorf("started %v, read after %v", rep.Started, rep.ReadAfter)
				}
				t.Logf("runnel: %s", rep.Error)
			default:
				t.Errorf("exit %d, started %v, verification %+v, error %q\nstderr: %s", code, rep.Started, rep.Verification, rep.Error, stderr)
			}
		})
	}
}

// TestMainEndpoint runs the tool against a real endpoint given in
// RUNNEL_BENCH_ENDPOINT (a runnel server, kinesalite, kinesis-local).
func TestMainEndpoint(t *testing.T) {
	endpoint := os.Getenv("RUNNEL_BENCH_ENDPOINT")
	if endpoint == "" {
		t.Skip("RUNNEL_BENCH_ENDPOINT not set")
	}
	for _, args := range [][]string{
		{"--duration", "1s", "--shards", "2", "--producers", "2", "--batch", "50", "--poll-interval", "50ms"},
		{"--records", "100", "--batch", "1", "--keys", "1", "--shards", "1", "--poll-interval", "50ms"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, rep, stderr := runMain(t, endpoint, args...)
			if code != exitOK || rep.Written.Records == 0 || !rep.Verification.OK {
				t.Errorf("exit %d, written %d, verification %+v, error %q\nstderr: %s", code, rep.Written.Records, rep.Verification, rep.Error, stderr)
			}
		})
	}
}

// TestNoServer: against an endpoint where nothing listens the run ends at
// once, says so and suggests `runnel serve`, and claims no stream.
func TestNoServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "http://" + l.Addr().String()
	l.Close()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := Main(context.Background(), []string{"--endpoint", endpoint}, &stdout, &stderr)
	out := stdout.String()
	if code != exitFailed || !strings.Contains(out, "(4 shards, not set up)") || strings.Contains(out, "existing") ||
		!strings.Contains(out, endpoint+" refused the connection") || !strings.Contains(out, "runnel serve") {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
	// The SDK's standard retryer would back off for seconds.
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("took %v: the refused connection was retried", el)
	}
	code, rep, _ := runMain(t, endpoint)
	if code != exitFailed || !strings.Contains(rep.Error, ErrNoEndpoint.Error()) || rep.StreamReady || rep.StreamCreated {
		t.Errorf("--json: exit %d, report %+v", code, rep)
	}
}

// TestMissingStream: a stream that does not exist is not called existing.
func TestMissingStream(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"--endpoint", srv.Endpoint(), "--create=false", "--stream", "absent"}, &stdout, &stderr)
	if out := stdout.String(); code != exitFailed || !strings.Contains(out, "stream absent (4 shards, not set up)") || !strings.Contains(out, "ResourceNotFoundException") {
		t.Errorf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, stderr.String())
	}
}

// TestMainSpread runs the tool over two endpoints of one server, the second
// a proxy that counts the calls it passes on: producers and consumers take
// the endpoints in turn, and the run still reads back every record.
func TestMainSpread(t *testing.T) {
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
	target, err := url.Parse(srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	calls := map[string]int{}
	rp := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "Kinesis_20131202.")]++
		mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	defer proxy.CloseClientConnections()
	for _, client := range []string{"sdk", "raw"} {
		t.Run(client, func(t *testing.T) {
			mu.Lock()
			clear(calls)
			mu.Unlock()
			code, rep, stderr := runMain(t, srv.Endpoint(), "--spread", proxy.URL, "--duration", "500ms", "--producers", "2", "--shards", "2",
				"--batch", "50", "--poll-interval", "20ms", "--producer-client", client, "--consumer-client", client)
			if code != exitOK || rep.Written.Records == 0 || !rep.Verification.OK || rep.Verification.ReadOnce != rep.Written.Records {
				t.Errorf("exit %d, written %d, verification %+v, error %q\nstderr: %s", code, rep.Written.Records, rep.Verification, rep.Error, stderr)
			}
			mu.Lock()
			defer mu.Unlock()
			if calls["PutRecords"] == 0 || calls["GetRecords"] == 0 {
				t.Errorf("calls through the second endpoint: %v, want PutRecords and GetRecords", calls)
			}
		})
	}
}
