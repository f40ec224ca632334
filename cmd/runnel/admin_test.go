package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
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
