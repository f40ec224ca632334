package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/internal/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mapEnv(m map[string]string) env { return func(k string) string { return m[k] } }

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, mapEnv(nil))
	return code, out.String(), errb.String()
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		out, err string
	}{
		{nil, exitUsage, "", "Usage: runnel <command>"},
		{[]string{"nope"}, exitUsage, "", `unknown command "nope"`},
		{[]string{"version"}, exitOK, "runnel ", ""},
		{[]string{"--version"}, exitOK, "runnel ", ""},
		{[]string{"help"}, exitOK, "bench", ""},
		{[]string{"-h"}, exitOK, "serve", ""},
		{[]string{"help", "serve"}, exitOK, "-listen address", ""},
		{[]string{"serve", "-h"}, exitOK, "RUNNEL_DATA_DIR", ""},
		{[]string{"serve", "--engine", "tape"}, exitUsage, "", "use disk, memory or jetstream"},
		{[]string{"serve", "--log-level", "loud"}, exitUsage, "", "--log-level"},
		{[]string{"serve", "--timer-slack", "-1ms"}, exitUsage, "", "--timer-slack -1ms"},
		{[]string{"serve", "extra"}, exitUsage, "", "unexpected argument"},
		{[]string{"serve", "--tls-cert", "c.pem"}, exitUsage, "", "both a cert file and a key file"},
		{[]string{"serve", "--listen", "localhost"}, exitUsage, "", "listen address"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := runCmd(tt.args...)
			if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errs, tt.err) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out, errs, tt.code, tt.out, tt.err)
			}
		})
	}
}

func TestParseServeEnvironment(t *testing.T) {
	cfg, err := parseServe(nil, mapEnv(map[string]string{
		"RUNNEL_LISTEN":           "127.0.0.1:9999",
		"RUNNEL_DATA_DIR":         "/tmp/x",
		"RUNNEL_REGION":           "eu-west-1",
		"RUNNEL_ACCOUNT_ID":       "123456789012",
		"RUNNEL_TRANSITION_DELAY": "0s",
		"RUNNEL_ENGINE":           "memory",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.listen != "127.0.0.1:9999" || cfg.dataDir != "/tmp/x" || cfg.region != "eu-west-1" ||
		cfg.accountID != "123456789012" || cfg.transitionDelay != 0 || cfg.engine != "memory" {
		t.Errorf("config %+v", cfg)
	}
	// Flags win over the environment.
	cfg, err = parseServe([]string{"--listen", "127.0.0.1:1", "--region", "ap-south-1"}, mapEnv(map[string]string{"RUNNEL_LISTEN": "127.0.0.1:9999"}))
	if err != nil || cfg.listen != "127.0.0.1:1" || cfg.region != "ap-south-1" {
		t.Errorf("config %+v, %v", cfg, err)
	}
	// Defaults.
	cfg, err = parseServe(nil, mapEnv(nil))
	if err != nil || cfg.listen != "127.0.0.1:4567" || cfg.dataDir != "./runnel-data" || cfg.engine != "disk" ||
		cfg.region != "us-east-1" || cfg.accountID != "000000000000" || cfg.transitionDelay != 500*time.Millisecond {
		t.Errorf("defaults %+v, %v", cfg, err)
	}
	if _, err := parseServe(nil, mapEnv(map[string]string{"RUNNEL_TRANSITION_DELAY": "soon"})); err == nil {
		t.Error("bad RUNNEL_TRANSITION_DELAY accepted")
	}
}

// startServe runs serve in the background and returns its server and a stop
// function that cancels it and returns serve's error.
func startServe(t *testing.T, cfg serveConfig) (*server.Server, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan *server.Server, 1)
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- serve(ctx, cfg, log, ready) }()
	select {
	case srv := <-ready:
		return srv, func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("serve did not start")
	}
	return nil, nil
}

func testConfig(t *testing.T, engine string) serveConfig {
	cfg, err := parseServe([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--engine", engine, "--data-dir", t.TempDir(), "--transition-delay", "0s"}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestServeEngines(t *testing.T) {
	for _, engine := range []string{"memory", "disk"} {
		t.Run(engine, func(t *testing.T) {
			srv, stop := startServe(t, testConfig(t, engine))
			tr := &http.Transport{}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodPost, srv.Endpoint(), strings.NewReader(`{"StreamName":"s","ShardCount":1}`))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", "Kinesis_20131202.CreateStream")
			// Any well-formed signature: no --credentials on loopback.
			req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
			req.Header.Set("X-Amz-Date", "20261206T000000Z")
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("CreateStream: %d %s", resp.StatusCode, body)
			}
			tr.CloseIdleConnections()
			if err := stop(); err != nil {
				t.Errorf("serve returned %v", err)
			}
		})
	}
}

func TestServePortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig(t, "memory")
	cfg.listen = l.Addr().String()
	err = serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "--listen") || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("got %v", err)
	}
}

func TestServeDataDirLocked(t *testing.T) {
	cfg := testConfig(t, "disk")
	_, stop := startServe(t, cfg)
	defer stop()
	cfg2 := cfg
	err := serve(context.Background(), cfg2, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Errorf("second server on one data directory: %v", err)
	}
}

func TestSchedulerProcs(t *testing.T) {
	none := func(string) string { return "" }
	set := func(k string) string {
		if k == "GOMAXPROCS" {
			return "3"
		}
		return ""
	}
	for _, tt := range []struct {
		engine string
		getenv env
		procs  int
		want   int
	}{
		{"disk", none, 2, 4},
		{"disk", none, 1, 2},
		{"memory", none, 2, 2},
		{"disk", set, 3, 3},
	} {
		if got := schedulerProcs(tt.engine, tt.getenv, tt.procs); got != tt.want {
			t.Errorf("schedulerProcs(%s, GOMAXPROCS=%q, %d) = %d, want %d", tt.engine, tt.getenv("GOMAXPROCS"), tt.procs, got, tt.want)
		}
	}
}
