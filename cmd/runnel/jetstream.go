package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/jetstream"
)

// openJetStream opens the jetstream engine as cfg says: on the NATS servers
// of --nats; on an embedded three-node cluster under the data directory with
// --cluster-dev; else on one embedded node under the data directory. The
// returned stop closes the connection and the embedded servers, after the
// engine.
func openJetStream(ctx context.Context, cfg serveConfig, log *slog.Logger) (eng engine.Engine, stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	urls, replicas := cfg.natsURLs, cfg.natsReplicas
	switch {
	case cfg.clusterDev:
		plan, perr := devClusterPlan(filepath.Join(cfg.dataDir, "cluster-dev"))
		if perr != nil {
			return nil, stop, perr
		}
		for i := range plan {
			plan[i].SyncAlways = cfg.natsSync == "always"
		}
		log.Info("starting an embedded 3-node NATS cluster (--cluster-dev)", slog.String("dir", filepath.Join(cfg.dataDir, "cluster-dev")), slog.Bool("sync_always", cfg.natsSync == "always"))
		c, cerr := jetstream.StartCluster(ctx, plan)
		if cerr != nil {
			return nil, stop, fmt.Errorf("--cluster-dev: %w", cerr)
		}
		stops = append(stops, c.Shutdown)
		urls = c.URLs()
		if replicas == 0 {
			replicas = 3
		}
		log.Info("NATS cluster ready", slog.String("urls", urls))
	case urls == "":
		s, serr := jetstream.StartNode(jetstream.NodeOptions{Name: "runnel", Dir: filepath.Join(cfg.dataDir, "nats"), SyncAlways: cfg.natsSync != "interval"})
		if serr != nil {
			return nil, stop, serr
		}
		stops = append(stops, func() { s.Shutdown(); s.WaitForShutdown() })
		urls = s.ClientURL()
		if replicas == 0 {
			replicas = 1
		}
		log.Info("embedded NATS node ready", slog.String("url", urls), slog.String("dir", filepath.Join(cfg.dataDir, "nats")))
	default:
		if replicas == 0 {
			replicas = 3
		}
	}
	nc, err := nats.Connect(urls, nats.Name("runnel serve"), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS", slog.Any("err", err))
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to NATS", slog.String("url", nc.ConnectedUrl())) }))
	if err != nil {
		return nil, stop, fmt.Errorf("--nats %s: %w (is nats-server running there?)", urls, err)
	}
	stops = append(stops, nc.Close)
	opts := jetstream.DefaultOptions()
	opts.Replicas = replicas
	opts.RequestTimeout = cfg.natsTimeout
	if err := jetstream.WaitReady(ctx, urls); err != nil {
		return nil, stop, err
	}
	e, err := jetstream.Open(ctx, nc, opts)
	if err != nil {
		return nil, stop, err
	}
	return e, stop, nil
}

// devClusterPlan returns the plan of the --cluster-dev cluster under dir:
// the one written there by an earlier start (so a restart finds its data on
// the same ports), or a new one on free ports.
func devClusterPlan(dir string) ([]jetstream.NodeOptions, error) {
	file := filepath.Join(dir, "plan.json")
	b, err := os.ReadFile(file)
	if err == nil {
		var plan []jetstream.NodeOptions
		if err := json.Unmarshal(b, &plan); err != nil {
			return nil, fmt.Errorf("--cluster-dev: %s: %v (remove the directory to start a new cluster)", file, err)
		}
		return plan, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--cluster-dev: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--cluster-dev: %w", err)
	}
	plan, err := jetstream.ClusterPlan(dir, 3, false)
	if err != nil {
		return nil, err
	}
	b, _ = json.MarshalIndent(plan, "", "  ")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return nil, fmt.Errorf("--cluster-dev: %w", err)
	}
	return plan, nil
}

// natsURLsValid reports a --nats value with an empty element.
func natsURLsValid(s string) error {
	for _, u := range strings.Split(s, ",") {
		if strings.TrimSpace(u) == "" {
			return fmt.Errorf("--nats %q: an empty URL in the list", s)
		}
	}
	return nil
}
