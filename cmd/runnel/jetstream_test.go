package main

import (
	"strings"
	"testing"
	"time"
)

func TestNATSSyncFlag(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // the parsed value, or the start of the error
		err  bool
	}{
		{name: "default", args: []string{"--engine", "jetstream"}, want: "auto"},
		{name: "always on the embedded node", args: []string{"--engine", "jetstream", "--nats-sync", "always"}, want: "always"},
		{name: "interval on --cluster-dev", args: []string{"--cluster-dev", "--nats-sync", "interval"}, want: "interval"},
		{name: "from the environment", args: []string{"--cluster-dev"}, env: map[string]string{"RUNNEL_NATS_SYNC": "always"}, want: "always"},
		{name: "unknown value", args: []string{"--engine", "jetstream", "--nats-sync", "sometimes"}, want: `--nats-sync "sometimes": use auto, always or interval`, err: true},
		{name: "external servers", args: []string{"--engine", "jetstream", "--nats", "nats://a:4222", "--nats-sync", "always"}, want: "--nats-sync applies to embedded NATS nodes", err: true},
		{name: "disk engine", args: []string{"--nats-sync", "always"}, want: "--nats-sync applies to embedded NATS nodes", err: true},
	}
	for _, tt := range tests {
		if tt.err {
			continue
		}
		t.Run(tt.name+", default request timeout", func(t *testing.T) {
			cfg, err := parseServe(tt.args, mapEnv(tt.env))
			if err != nil || cfg.natsTimeout != 10*time.Second {
				t.Errorf("natsTimeout %s, error %v; want 10s", cfg.natsTimeout, err)
			}
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseServe(tt.args, mapEnv(tt.env))
			switch {
			case tt.err && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("error %v, want one starting %q", err, tt.want)
			case !tt.err && err != nil:
				t.Errorf("error %v", err)
			case !tt.err && cfg.natsSync != tt.want:
				t.Errorf("natsSync %q, want %q", cfg.natsSync, tt.want)
			}
		})
	}
}

func TestNATSTimeoutFlag(t *testing.T) {
	cfg, err := parseServe([]string{"--engine", "jetstream", "--nats-timeout", "3s"}, mapEnv(nil))
	if err != nil || cfg.natsTimeout != 3*time.Second {
		t.Errorf("--nats-timeout 3s: %s, %v", cfg.natsTimeout, err)
	}
	cfg, err = parseServe([]string{"--engine", "jetstream"}, mapEnv(map[string]string{"RUNNEL_NATS_TIMEOUT": "2500ms"}))
	if err != nil || cfg.natsTimeout != 2500*time.Millisecond {
		t.Errorf("RUNNEL_NATS_TIMEOUT=2500ms: %s, %v", cfg.natsTimeout, err)
	}
	if _, err := parseServe([]string{"--engine", "jetstream", "--nats-timeout", "10ms"}, mapEnv(nil)); err == nil || !strings.Contains(err.Error(), "use 100ms or more") {
		t.Errorf("--nats-timeout 10ms: error %v", err)
	}
}
