package natscompare

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/disk"
)

// The workload: appenders concurrent appenders, each appending batches of
// batch records of size bytes to its own log (JetStream: its own stream).
// One benchmark op is one batch.
const (
	appenders = 16
	batch     = 100
	size      = 1024
)

func BenchmarkCompare(b *testing.B) {
	b.Run("runnel/durability=always", func(b *testing.B) { benchRunnel(b, disk.SyncAlways) })
	b.Run("runnel/durability=interval", func(b *testing.B) { benchRunnel(b, disk.SyncInterval) })
	b.Run("jetstream/default", func(b *testing.B) { benchJetStream(b, false) })
	b.Run("jetstream/sync_always", func(b *testing.B) { benchJetStream(b, true) })
}

// run calls appendBatch(appender) b.N times in all, from appenders
// goroutines, and reports records/s.
func run(b *testing.B, appendBatch func(a int) error) {
	b.SetBytes(batch * size)
	b.ReportAllocs()
	b.ResetTimer()
	var left atomic.Int64
	left.Store(int64(b.N))
	var wg sync.WaitGroup
	for a := range appenders {
		wg.Go(func() {
			for left.Add(-1) >= 0 {
				if err := appendBatch(a); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "records/s")
}

func benchRunnel(b *testing.B, d disk.Durability) {
	opts := disk.DefaultOptions()
	opts.Durability = d
	e, err := disk.Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	logs := make([]engine.Log, appenders)
	for i := range logs {
		name := fmt.Sprintf("stream.%d", i)
		if err := e.CreateLog(ctx, name, engine.LogOptions{}); err != nil {
			b.Fatal(err)
		}
		logs[i], _ = e.Log(ctx, name)
	}
	recs := make([]engine.Record, batch)
	for i := range recs {
		recs[i] = engine.Record{Key: []byte("partition-key"), Value: make([]byte, size)}
	}
	run(b, func(a int) error {
		_, err := logs[a].Append(ctx, recs)
		return err
	})
}

func benchJetStream(b *testing.B, syncAlways bool) {
	s, err := server.NewServer(&server.Options{
		JetStream:  true,
		StoreDir:   b.TempDir(),
		DontListen: true,
		NoLog:      true,
		NoSigs:     true,
		SyncAlways: syncAlways,
	})
	if err != nil {
		b.Fatal(err)
	}
	go s.Start()
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	if !s.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats server not ready")
	}
	type client struct {
		nc *nats.Conn
		js nats.JetStreamContext
	}
	clients := make([]client, appenders)
	for i := range clients {
		nc, err := nats.Connect("", nats.InProcessServer(s))
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		js, err := nc.JetStream(nats.PublishAsyncMaxPending(4 * batch))
		if err != nil {
			b.Fatal(err)
		}
		_, err = js.AddStream(&nats.StreamConfig{
			Name:     fmt.Sprintf("S%d", i),
			Subjects: []string{fmt.Sprintf("stream.%d", i)},
			Storage:  nats.FileStorage,
		})
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = client{nc, js}
	}
	data := make([]byte, size)
	run(b, func(a int) error {
		c := clients[a]
		subj := fmt.Sprintf("stream.%d", a)
		futs := make([]nats.PubAckFuture, batch)
		for i := range futs {
			f, err := c.js.PublishAsync(subj, data)
			if err != nil {
				return err
			}
			futs[i] = f
		}
		for _, f := range futs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			}
		}
		return nil
	})
}
