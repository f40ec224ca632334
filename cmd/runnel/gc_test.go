package main

import (
	"testing"
)

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{in: "512MiB", want: 512 << 20},
		{in: "2GiB", want: 2 << 30},
		{in: "1TiB", want: 1 << 40},
		{in: "64KiB", want: 64 << 10},
		{in: "1000B", want: 1000},
		{in: "123456", want: 123456},
		{in: "0", want: 0},
		{in: "off", want: 0},
		{in: "", err: true},
		{in: "MiB", err: true},
		{in: "-1MiB", err: true},
		{in: "1.5GiB", err: true},
		{in: "512MB", err: true},
		{in: "99999999999TiB", err: true},
	}
	for _, tt := range tests {
		got, err := parseBytes(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseBytes(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	for _, n := range []int64{0, 256 << 20, 3 << 30, 1000, 1 << 40} {
		v := n
		f := bytesFlag{&v}
		back, err := parseBytes(f.String())
		if err != nil || back != n {
			t.Errorf("bytesFlag(%d).String() = %q, parses back to %d, %v", n, f.String(), back, err)
		}
	}
}

func TestGCSettings(t *testing.T) {
	tests := []struct {
		name        string
		engine      string
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{name: "disk engine", engine: "disk", wantPercent: 400, wantLimit: 256 << 20},
		{name: "memory engine keeps Go's defaults", engine: "memory", wantPercent: -1, wantLimit: -1},
		{name: "GOGC wins", engine: "disk", env: map[string]string{"GOGC": "50"}, wantPercent: -1, wantLimit: 256 << 20},
		{name: "GOMEMLIMIT wins", engine: "disk", env: map[string]string{"GOMEMLIMIT": "1GiB"}, wantPercent: 400, wantLimit: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, l := gcSettings(tt.engine, mapEnv(tt.env), defaultGCPercent, defaultMemoryLimit)
			if p != tt.wantPercent || l != tt.wantLimit {
				t.Errorf("gcSettings = %d, %d; want %d, %d", p, l, tt.wantPercent, tt.wantLimit)
			}
		})
	}
}

func TestParseServeGC(t *testing.T) {
	cfg, err := parseServe(nil, mapEnv(nil))
	if err != nil || cfg.gcPercent != defaultGCPercent || cfg.memoryLimit != defaultMemoryLimit {
		t.Errorf("defaults: gc percent %d, memory limit %d, %v", cfg.gcPercent, cfg.memoryLimit, err)
	}
	cfg, err = parseServe(nil, mapEnv(map[string]string{"RUNNEL_GC_PERCENT": "200", "RUNNEL_MEMORY_LIMIT": "1GiB"}))
	if err != nil || cfg.gcPercent != 200 || cfg.memoryLimit != 1<<30 {
		t.Errorf("environment: gc percent %d, memory limit %d, %v", cfg.gcPercent, cfg.memoryLimit, err)
	}
	cfg, err = parseServe([]string{"--gc-percent", "100", "--memory-limit", "off"}, mapEnv(map[string]string{"RUNNEL_MEMORY_LIMIT": "1GiB"}))
	if err != nil || cfg.gcPercent != 100 || cfg.memoryLimit != 0 {
		t.Errorf("flags: gc percent %d, memory limit %d, %v", cfg.gcPercent, cfg.memoryLimit, err)
	}
	if _, err := parseServe(nil, mapEnv(map[string]string{"RUNNEL_MEMORY_LIMIT": "lots"})); err == nil {
		t.Error("bad RUNNEL_MEMORY_LIMIT accepted")
	}
	if _, err := parseServe([]string{"--memory-limit", "lots"}, mapEnv(nil)); err == nil {
		t.Error("bad --memory-limit accepted")
	}
}

func TestParseServeTailCache(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want int64
	}{
		{nil, nil, 64 << 20},
		{nil, map[string]string{"RUNNEL_TAIL_CACHE": "8MiB"}, 8 << 20},
		{[]string{"--tail-cache", "off"}, map[string]string{"RUNNEL_TAIL_CACHE": "8MiB"}, 0},
		{[]string{"--tail-cache", "1GiB"}, nil, 1 << 30},
	} {
		cfg, err := parseServe(tt.args, mapEnv(tt.env))
		if err != nil || cfg.tailCache != tt.want {
			t.Errorf("%v %v: tail cache %d, %v; want %d", tt.args, tt.env, cfg.tailCache, err, tt.want)
		}
	}
	if _, err := parseServe(nil, mapEnv(map[string]string{"RUNNEL_TAIL_CACHE": "lots"})); err == nil {
		t.Error("bad RUNNEL_TAIL_CACHE accepted")
	}
	if _, err := parseServe([]string{"--tail-cache", "-1MiB"}, mapEnv(nil)); err == nil {
		t.Error("negative --tail-cache accepted")
	}
}

func TestParseServeBufferedWrites(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want bool
	}{
		{nil, nil, false},
		{nil, map[string]string{"RUNNEL_BUFFERED_WRITES": "true"}, true},
		{[]string{"--buffered-writes=false"}, map[string]string{"RUNNEL_BUFFERED_WRITES": "true"}, false},
		{[]string{"--buffered-writes"}, nil, true},
	} {
		cfg, err := parseServe(tt.args, mapEnv(tt.env))
		if err != nil || cfg.bufferedWrites != tt.want {
			t.Errorf("%v %v: buffered writes %v, %v; want %v", tt.args, tt.env, cfg.bufferedWrites, err, tt.want)
		}
	}
}
