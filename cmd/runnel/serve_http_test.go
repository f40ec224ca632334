package main

import (
	"reflect"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/kinesisapi"
	"github.com/runnel/runnel/internal/server"
)

func TestParseServeHTTPFront(t *testing.T) {
	// Defaults.
	cfg, err := parseServe(nil, mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	h, sv := cfg.handlerOptions(nil), cfg.serverOptions(nil)
	hd, svd := kinesisapi.DefaultOptions(), server.DefaultOptions()
	if h.MaxBodyMemory != hd.MaxBodyMemory || h.BodyReadTimeout != hd.BodyReadTimeout || h.WriteTimeout != hd.WriteTimeout ||
		h.SubscribeWriteTimeout != hd.SubscribeWriteTimeout || h.AllowedHosts != nil || h.CORSOrigins != nil ||
		sv.MaxHeaderBytes != svd.MaxHeaderBytes || sv.MaxConcurrentStreams != svd.MaxConcurrentStreams {
		t.Errorf("defaults %+v %+v", h, sv)
	}

	// The environment.
	cfg, err = parseServe(nil, mapEnv(map[string]string{
		"RUNNEL_MAX_BODY_MEMORY":         "33554432",
		"RUNNEL_BODY_READ_TIMEOUT":       "5s",
		"RUNNEL_WRITE_TIMEOUT":           "6s",
		"RUNNEL_SUBSCRIBE_WRITE_TIMEOUT": "7s",
		"RUNNEL_ALLOWED_HOSTS":           "runnel, kinesis.internal:4567",
		"RUNNEL_CORS_ORIGINS":            "http://localhost:3000,https://app.example",
		"RUNNEL_MAX_HEADER_BYTES":        "16384",
		"RUNNEL_H2_MAX_STREAMS":          "100",
	}))
	if err != nil {
		t.Fatal(err)
	}
	h, sv = cfg.handlerOptions(nil), cfg.serverOptions(nil)
	if h.MaxBodyMemory != 32<<20 || h.BodyReadTimeout != 5*time.Second || h.WriteTimeout != 6*time.Second ||
		h.SubscribeWriteTimeout != 7*time.Second ||
		!reflect.DeepEqual(h.AllowedHosts, []string{"runnel", "kinesis.internal:4567"}) ||
		!reflect.DeepEqual(h.CORSOrigins, []string{"http://localhost:3000", "https://app.example"}) ||
		sv.MaxHeaderBytes != 16384 || sv.MaxConcurrentStreams != 100 {
		t.Errorf("from the environment %+v %+v", h, sv)
	}

	// Flags win.
	cfg, err = parseServe([]string{"--cors-origins", "*", "--allowed-hosts", "*", "--write-timeout", "0s"},
		mapEnv(map[string]string{"RUNNEL_CORS_ORIGINS": "http://localhost:3000", "RUNNEL_WRITE_TIMEOUT": "6s"}))
	if err != nil {
		t.Fatal(err)
	}
	h = cfg.handlerOptions(nil)
	if !reflect.DeepEqual(h.CORSOrigins, []string{"*"}) || !reflect.DeepEqual(h.AllowedHosts, []string{"*"}) || h.WriteTimeout != 0 {
		t.Errorf("flags %+v", h)
	}

	// Unusable values are refused before anything starts.
	for _, args := range [][]string{
		{"--max-body-memory", "1024"}, // below --max-body-bytes
		{"--cors-origins", "localhost:3000"},
		{"--subscribe-write-timeout", "0s"},
		{"--body-read-timeout", "-1s"},
		{"--max-header-bytes", "100"},
		{"--h2-max-streams", "0"},
	} {
		if _, err := parseServe(args, mapEnv(nil)); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
