package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/internal/engine/mem"
)

func TestParseServeAdmin(t *testing.T) {
	cfg, err := parseServe(nil, mapEnv(nil))
	if err != nil || cfg.adminListen != defaultAdminListen || cfg.adminExplicit || cfg.console {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = parseServe([]string{"--admin-listen", "off"}, mapEnv(nil))
	if err != nil || cfg.adminListen != "" || !cfg.adminExplicit {
		t.Fatalf("--admin-listen off: %q explicit %v, %v", cfg.adminListen, cfg.adminExplicit, err)
	}
	cfg, err = parseServe(nil, mapEnv(map[string]string{"RUNNEL_ADMIN_LISTEN": "api", "RUNNEL_CONSOLE": "true"}))
	if err != nil || cfg.adminListen != adminOnAPI || !cfg.adminExplicit || !cfg.console {
		t.Fatalf("from the environment: %+v, %v", cfg, err)
	}
	if _, err := parseServe([]string{"--console", "--admin-listen", ""}, mapEnv(nil)); err == nil || !strings.Contains(err.Error(), "--console needs the admin listener") {
		t.Fatalf("--console without a listener: %v", err)
	}
}

// TestAdminListenerInUse: a taken default address turns the admin listener
// off with a warning; a taken address given explicitly is an error.
func TestAdminListenerInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := testConfig(t, "memory")
	cfg.adminListen, cfg.adminExplicit, cfg.console = l.Addr().String(), false, true
	_, stop := startServe(t, cfg)
	if err := stop(); err != nil {
		t.Fatalf("with the default address taken: %v", err)
	}
	cfg.adminExplicit = true
	err = serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), "--admin-listen "+l.Addr().String()+" is already in use") {
		t.Fatalf("with an explicit address taken: %v", err)
	}
}

// TestAdminOnAPIPort serves the console on the API port: pages by GET,
// API calls as before.
func TestAdminOnAPIPort(t *testing.T) {
	cfg := testConfig(t, "memory")
	cfg.adminListen, cfg.adminExplicit, cfg.console = adminOnAPI, true, true
	srv, stop := startServe(t, cfg)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	kc := kinesisClient(srv.Endpoint(), "us-east-1", mapEnv(nil))
	if _, err := kc.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String("on-api"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	resp, err := hc.Get(srv.Endpoint() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `data-stream="on-api"`) {
		t.Fatalf("GET / on the API port: %d %s", resp.StatusCode, body)
	}
	// Without the console the admin mux has no routes, and GET / is the API's.
	cfg = testConfig(t, "memory")
	cfg.adminListen, cfg.adminExplicit = adminOnAPI, true
	srv2, stop2 := startServe(t, cfg)
	defer stop2()
	resp, err = hc.Get(srv2.Endpoint() + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatalf("the console answered without --console")
	}
}

// TestConsoleLogin: with a credentials file the console asks for an access
// key id and its secret; without one it lets everyone in (as above).
func TestConsoleLogin(t *testing.T) {
	creds := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"users": [{"name": "ops", "keys": [{"access_key_id": "AKIDCONSOLE", "secret_access_key": "console-secret"}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "memory")
	cfg.adminListen, cfg.adminExplicit, cfg.console = adminOnAPI, true, true
	cfg.credentialsFile = creds
	srv, stop := startServe(t, cfg)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	get := func(user, pass string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, srv.Endpoint()+"/console/", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if r := get("", ""); r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("without a login: %d %q", r.StatusCode, r.Header.Get("WWW-Authenticate"))
	}
	if r := get("AKIDCONSOLE", "wrong"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("with a wrong secret: %d", r.StatusCode)
	}
	if r := get("AKIDOTHER", "console-secret"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("with an unknown key: %d", r.StatusCode)
	}
	if r := get("AKIDCONSOLE", "console-secret"); r.StatusCode != http.StatusOK {
		t.Fatalf("with the right key: %d", r.StatusCode)
	}
}

func TestHealthEndpoints(t *testing.T) {
	eng := mem.New(mem.DefaultOptions())
	h := &health{}
	mux := adminMux(nil, h)
	get := func(path string) (int, healthBody) {
		t.Helper()
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		var b healthBody
		if path != "/metrics" {
			if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
				t.Fatalf("%s: body %q: %v", path, rec.Body, err)
			}
		}
		return rec.Code, b
	}
	tests := []struct {
		name       string
		setup      func()
		path       string
		wantCode   int
		wantStatus string
	}{
		{"alive while starting", nil, "/healthz", 200, "ok"},
		{"starting", nil, "/readyz", 503, "unavailable"},
		{"ready", func() { h.setReady(eng) }, "/readyz", 200, "ready"},
		{"metrics off", nil, "/metrics", 404, ""},
		{"draining", func() { h.draining.Store(true) }, "/readyz", 503, "unavailable"},
		{"alive while draining", nil, "/healthz", 200, "ok"},
		{"engine closed", func() { h.draining.Store(false); eng.Close() }, "/readyz", 503, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup()
			}
			code, b := get(tt.path)
			if code != tt.wantCode || b.Status != tt.wantStatus {
				t.Errorf("GET %s: %d %+v, want %d %q", tt.path, code, b, tt.wantCode, tt.wantStatus)
			}
			if code == 503 && b.Error == "" {
				t.Errorf("GET %s: 503 without a reason", tt.path)
			}
		})
	}
}

func TestAdminListenFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
		bad  bool
	}{
		{nil, nil, "127.0.0.1:4568", false},
		{[]string{"--admin-listen", "api"}, nil, "api", false},
		{[]string{"--admin-listen", "off"}, nil, "", false},
		{[]string{"--admin-listen", ""}, nil, "", false},
		{nil, map[string]string{"RUNNEL_ADMIN_LISTEN": "off"}, "", false},
		{nil, map[string]string{"RUNNEL_ADMIN_LISTEN": "0.0.0.0:9100"}, "0.0.0.0:9100", false},
		{[]string{"--admin-listen", "9100"}, nil, "", true},
		{[]string{"--metrics-max-series", "0"}, nil, "", true},
	} {
		cfg, err := parseServe(tt.args, mapEnv(tt.env))
		if tt.bad {
			if err == nil {
				t.Errorf("%v %v: accepted", tt.args, tt.env)
			}
			continue
		}
		if err != nil || cfg.adminListen != tt.want {
			t.Errorf("%v %v: %q, %v; want %q", tt.args, tt.env, cfg.adminListen, err, tt.want)
		}
	}
}

// TestServeAdminListener: the admin listener serves /metrics with the
// server's counters.
func TestServeAdminListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := testConfig(t, "disk")
	cfg.adminListen = addr
	_, stop := startServe(t, cfg)
	defer stop()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "runnel_engine_open_files") || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics: %d\n%s", resp.StatusCode, body)
	}
}

func TestWithAdminRouting(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("X-Served-By", "api") })
	admin := http.NewServeMux()
	admin.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("X-Served-By", "admin") })
	admin.HandleFunc("/console/", func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("X-Served-By", "admin") })
	h := withAdmin(api, admin)
	for _, tt := range []struct {
		name, method, path, target string
		want                       string
	}{
		{"health", "GET", "/healthz", "", "admin"},
		{"console page", "POST", "/console/streams", "", "admin"},
		{"kinesis", "POST", "/", "Kinesis_20131202.ListStreams", "api"},
		{"kinesis on an admin path", "GET", "/healthz", "Kinesis_20131202.ListStreams", "api"},
		{"cors preflight", "OPTIONS", "/console/x", "", "api"},
		{"unknown path", "GET", "/nothing", "", "api"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.target != "" {
				r.Header.Set("X-Amz-Target", tt.target)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if got := rec.Header().Get("X-Served-By"); got != tt.want {
				t.Errorf("served by %q, want %q", got, tt.want)
			}
		})
	}
}
