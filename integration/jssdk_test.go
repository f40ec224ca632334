package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestJSSDKRoundTrip runs jssdk/roundtrip.mjs, a round trip with the AWS SDK
// for JavaScript v3 Kinesis client, against a server. That client sends every
// operation over HTTP/2 (NodeHttp2Handler), so this covers h2c with prior
// knowledge on an http:// endpoint and h2 via ALPN on an https:// one,
// including SubscribeToShard's event stream. It needs `node` on PATH and the
// SDK installed in jssdk/node_modules (`npm ci` there; `make setup` does it).
func TestJSSDKRoundTrip(t *testing.T) {
	// In CI (make setup installs both) a missing part is a failure.
	missing := t.Skip
	if os.Getenv("CI") != "" {
		missing = t.Fatal
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not on PATH; the JS SDK round trip needs Node.js")
	}
	if _, err := os.Stat(filepath.Join("jssdk", "node_modules", "@aws-sdk", "client-kinesis")); err != nil {
		missing("AWS SDK for JavaScript not installed; `make setup` runs `npm ci` in integration/jssdk")
	}
	script, err := filepath.Abs(filepath.Join("jssdk", "roundtrip.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	// The script signs with AKIDEXAMPLE/secret; with this file the server
	// checks those signatures (over h2, where host is :authority).
	creds := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(creds, []byte(`{"users":[{"name":"js","keys":[{"access_key_id":"AKIDEXAMPLE","secret_access_key":"secret"}],"policies":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		scheme string
		env    []string
	}{
		{name: "h2c", scheme: "http://"},
		{
			name:   "h2 over TLS",
			args:   []string{"--tls-self-signed"},
			scheme: "https://",
			env:    []string{"NODE_TLS_REJECT_UNAUTHORIZED=0"},
		},
		{name: "h2c, signatures checked", args: []string{"--credentials", creds}, scheme: "http://"},
		{
			name:   "h2 over TLS, signatures checked",
			args:   []string{"--tls-self-signed", "--credentials", creds},
			scheme: "https://",
			env:    []string{"NODE_TLS_REJECT_UNAUTHORIZED=0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t, t.TempDir(), append([]string{"--transition-delay", "0s"}, tt.args...)...)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, script)
			cmd.Dir = filepath.Dir(script)
			cmd.Env = append(os.Environ(), "RUNNEL_ENDPOINT="+tt.scheme+srv.addr, "NODE_NO_WARNINGS=1")
			cmd.Env = append(cmd.Env, tt.env...)
			cmd.WaitDelay = 5 * time.Second
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				t.Fatalf("roundtrip.mjs did not finish within 60s; output:\n%s\nstderr:\n%s", out, stderr.Bytes())
			}
			if err != nil {
				t.Fatalf("roundtrip.mjs: %v; output:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
			}
			var summary struct {
				OK      bool   `json:"ok"`
				Handler string `json:"handler"`
				TotalMs int    `json:"totalMs"`
			}
			if err := json.Unmarshal(out, &summary); err != nil || !summary.OK {
				t.Fatalf("roundtrip.mjs summary not ok (%v); output:\n%s", err, out)
			}
			if summary.Handler != "h2" {
				t.Fatalf("SDK request handler %q, want h2; output:\n%s", summary.Handler, out)
			}
			t.Logf("JS SDK round trip over %s in %d ms", tt.name, summary.TotalMs)
		})
	}
}
