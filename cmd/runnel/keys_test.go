package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel/internal/keystore"
)

// TestKeysCommand drives `runnel keys` on a key file a server made, and on
// a missing one.
func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	code, _, stderr := runCmd("keys", "rotate", "--key-file", path)
	if code != 1 || !strings.Contains(stderr, "created by the server on first use") {
		t.Fatalf("rotate of a missing file: %d %q", code, stderr)
	}
	ks, err := keystore.Open(keystore.Options{File: path, Region: "us-east-1", Account: "000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	def, err := ks.Resolve(keystore.DefaultAlias) // creates the file
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCmd("keys", "create", "--key-file", path, "alias/app")
	if code != 0 {
		t.Fatalf("create: %d %q", code, stderr)
	}
	id := strings.TrimSpace(out)
	for _, tc := range []struct {
		args  []string
		key   string
		state string
	}{
		{[]string{"disable", "--key-file", path, "alias/app"}, id, keystore.StateDisabled},
		{[]string{"enable", "--key-file", path, id}, id, keystore.StateEnabled},
		{[]string{"schedule-deletion", "--key-file", path, def.ARN}, def.ID, keystore.StatePendingDeletion},
	} {
		if code, _, stderr := runCmd(append([]string{"keys"}, tc.args...)...); code != 0 {
			t.Fatalf("keys %v: %d %q", tc.args, code, stderr)
		}
		if err := ks.Reload(); err != nil {
			t.Fatal(err)
		}
		k, err := ks.Resolve(tc.key)
		if err != nil || k.State != tc.state {
			t.Fatalf("after keys %v: %+v %v, want state %s", tc.args, k, err, tc.state)
		}
	}
	old := ks.CurrentMaster()
	if code, out, stderr := runCmd("keys", "rotate", "--key-file", path); code != 0 || !strings.Contains(out, "is current") {
		t.Fatalf("rotate: %d %q %q", code, out, stderr)
	}
	ks.Reload()
	if ks.CurrentMaster() == old {
		t.Fatal("rotate did not change the current master key")
	}
	if code, out, _ := runCmd("keys", "retire", "--key-file", path); code != 0 || !strings.Contains(out, "removed 1") {
		t.Fatalf("retire: %d %q", code, out)
	}
	if code, _, stderr := runCmd("keys", "disable", "--key-file", path); code != exitUsage || !strings.Contains(stderr, "takes one key") {
		t.Fatalf("disable without a key: %d %q", code, stderr)
	}
	if code, _, stderr := runCmd("keys", "explode"); code != exitUsage || !strings.Contains(stderr, "unknown action") {
		t.Fatalf("unknown action: %d %q", code, stderr)
	}
	// The default file sits beside the data directory.
	if code, _, stderr := runCmd("keys", "rotate", "--data-dir", filepath.Join(dir, "data")); code != 1 || !strings.Contains(stderr, filepath.Join(dir, "data.keys")) {
		t.Fatalf("rotate of the default file: %d %q", code, stderr)
	}
}

// TestServeKeyConfig: where serve keeps its keys, and a bad master key in
// the environment refused with what to do.
func TestServeKeyConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"disk default", nil, nil, "runnel-data.keys"},
		{"data dir", []string{"--data-dir", "/var/lib/runnel/"}, nil, "/var/lib/runnel.keys"},
		{"memory", []string{"--engine", "memory"}, nil, ""},
		{"flag", []string{"--key-file", "/etc/runnel/keys.json"}, nil, "/etc/runnel/keys.json"},
		{"env", nil, map[string]string{"RUNNEL_KEY_FILE": "/k.json"}, "/k.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseServe(tc.args, mapEnv(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.keyFilePath(); got != tc.want {
				t.Fatalf("key file %q, want %q", got, tc.want)
			}
		})
	}
	good := "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=" // 32 bytes
	cfg, err := parseServe(nil, mapEnv(map[string]string{"RUNNEL_MASTER_KEY": good + "," + good}))
	if err != nil || len(cfg.masterKeys) != 2 {
		t.Fatalf("two master keys: %d, %v", len(cfg.masterKeys), err)
	}
	_, err = parseServe(nil, mapEnv(map[string]string{"RUNNEL_MASTER_KEY": "c2hvcnQ="}))
	if err == nil || !strings.Contains(err.Error(), "RUNNEL_MASTER_KEY") || !strings.Contains(err.Error(), "/dev/urandom") {
		t.Fatalf("short master key: %v", err)
	}
}
