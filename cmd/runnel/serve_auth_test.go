package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:4567": true, "127.8.9.10:1": true, "[::1]:4567": true, "localhost:4567": true,
		"0.0.0.0:4567": false, ":4567": false, "[::]:4567": false, "10.0.0.7:4567": false,
		"runnel.internal:4567": false, "127.0.0.1": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}

// TestOpenAddressNeedsCredentials: a non-loopback address without
// credentials is refused at parse time with what to do, unless the
// insecure flag (or its variable) says so.
func TestOpenAddressNeedsCredentials(t *testing.T) {
	_, err := parseServe([]string{"--listen", "0.0.0.0:4567"}, mapEnv(nil))
	if err == nil || !strings.Contains(err.Error(), "--credentials") || !strings.Contains(err.Error(), "--insecure-no-auth") ||
		!strings.Contains(err.Error(), "RUNNEL_CREDENTIALS") {
		t.Fatalf("open address without credentials: %v", err)
	}
	for name, args := range map[string][]string{
		"insecure flag":    {"--listen", "0.0.0.0:4567", "--insecure-no-auth"},
		"credentials file": {"--listen", "0.0.0.0:4567", "--credentials", "creds.json"},
		"loopback":         {"--listen", "127.0.0.1:4567"},
	} {
		if _, err := parseServe(args, mapEnv(nil)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := parseServe([]string{"--listen", "0.0.0.0:4567"}, mapEnv(map[string]string{"RUNNEL_INSECURE_NO_AUTH": "true"})); err != nil {
		t.Errorf("RUNNEL_INSECURE_NO_AUTH: %v", err)
	}
}

// TestServeBadCredentials: a credentials file that does not load stops
// the server from starting, naming the file and the problem.
func TestServeBadCredentials(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(path, []byte(`{"users":[{"name":"a","keys":[]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseServe([]string{"--listen", "127.0.0.1:0", "--engine", "memory", "--credentials", path}, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	err = serve(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no keys") {
		t.Fatalf("serve with a bad credentials file: %v", err)
	}
}
