package jetstream_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/enginetest"
	"github.com/runnel/runnel/internal/engine/jetstream"
)

var prefixes atomic.Int64

// harness returns a conformance harness on the NATS servers at urls: each
// engine gets a prefix of its own, so tests share the servers.
func harness(t *testing.T, urls string, replicas int) enginetest.Harness {
	open := func(t *testing.T, prefix string) engine.Engine {
		nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		opts := jetstream.DefaultOptions()
		opts.Prefix = prefix
		opts.Replicas = replicas
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		e, err := jetstream.Open(ctx, nc, opts)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	names := map[engine.Engine]string{}
	return enginetest.Harness{
		New: func(t *testing.T) engine.Engine {
			p := fmt.Sprintf("T%d", prefixes.Add(1))
			e := open(t, p)
			names[e] = p
			return e
		},
		Reopen: func(t *testing.T, e engine.Engine) engine.Engine {
			p := names[e]
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e2 := open(t, p)
			names[e2] = p
			return e2
		},
	}
}

func TestConformanceSingleNode(t *testing.T) {
	s, err := jetstream.StartNode(jetstream.NodeOptions{Name: "single", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	enginetest.Run(t, harness(t, s.ClientURL(), 1))
}

func TestConformanceCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster: not in -short")
	}
	c := startCluster(t)
	enginetest.Run(t, harness(t, c.URLs(), 3))
}

// startCluster starts a 3-node cluster in-process, stopped when the test
// ends. Such tests run without -race: three NATS servers built with the
// race detector move a 64 MiB batch through Raft too slowly for the
// conformance suite's 20 s per call (`make test` runs them without -race
// too).
func startCluster(t *testing.T) *jetstream.Cluster {
	t.Helper()
	if raceEnabled {
		t.Skip("the 3-node cluster tests run without -race (make test-cluster)")
	}
	plan, err := jetstream.ClusterPlan(t.TempDir(), 3, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := jetstream.StartCluster(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Shutdown)
	return c
}
