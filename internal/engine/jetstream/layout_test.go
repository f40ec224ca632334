package jetstream

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/runnel/runnel/internal/engine"
)

func openTestEngine(t *testing.T) *Engine {
	t.Helper()
	s, err := StartNode(NodeOptions{Name: "layout", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	opts := DefaultOptions()
	opts.Replicas = 1
	e, err := Open(context.Background(), nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// countNotices counts the notices the log's stream republishes.
func countNotices(t *testing.T, e *Engine, n logNames) *atomic.Int64 {
	t.Helper()
	var count atomic.Int64
	sub, err := e.nc.Subscribe(n.notify, func(*nats.Msg) { count.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &count
}

func appendAndRead(t *testing.T, e *Engine, name string, batches ...int) {
	t.Helper()
	ctx := context.Background()
	l, err := e.Log(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i, size := range batches {
		recs := make([]engine.Record, size)
		for j := range recs {
			v := fmt.Sprintf("b%d-r%d", i, j)
			recs[j] = engine.Record{Key: []byte("k"), Value: []byte(v)}
			want = append(want, v)
		}
		if _, err := l.Append(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.Read(ctx, 0, 1000, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("read %d records, appended %d", len(got), len(want))
	}
	for i, r := range got {
		if string(r.Value) != want[i] || r.Offset != uint64(i) {
			t.Fatalf("record %d: offset %d %q, want %q", i, r.Offset, r.Value, want[i])
		}
	}
	next, err := engine.Next(ctx, l)
	if err != nil || next != uint64(len(want)) {
		t.Fatalf("Next = %d, %v; want %d", next, err, len(want))
	}
	// A waiter for the next record wakes when it comes.
	woke := make(chan error, 1)
	go func() {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := l.Wait(wctx, next)
		woke <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if _, err := l.Append(ctx, []engine.Record{{Key: []byte("k"), Value: []byte("last")}, {Key: []byte("k"), Value: []byte("last2")}}); err != nil {
		t.Fatal(err)
	}
	if err := <-woke; err != nil {
		t.Fatalf("Wait: %v", err)
	}
}

// A new log's batches end on its subject and their other records go to its
// body subject: one notice per batch, and the stream's last message is on
// the subject.
func TestLayoutOneNoticePerBatch(t *testing.T) {
	e := openTestEngine(t)
	ctx := context.Background()
	if err := e.CreateLog(ctx, "new", engine.LogOptions{}); err != nil {
		t.Fatal(err)
	}
	n, _, err := e.lookup(ctx, "new")
	if err != nil {
		t.Fatal(err)
	}
	if n.body == "" {
		t.Fatalf("a new log has no body subject: %+v", n)
	}
	notices := countNotices(t, e, n)
	appendAndRead(t, e, "new", 10, 1, 7)
	time.Sleep(100 * time.Millisecond)
	// Three batches, the waiter's batch, and nothing per record.
	if got := notices.Load(); got != 4 {
		t.Fatalf("%d notices for 4 batches of 20 records", got)
	}
}

// A log made before bodies existed (an incarnation id without the suffix)
// keeps every record on its subject, and works as before.
func TestLayoutFirstLogsStillWork(t *testing.T) {
	e := openTestEngine(t)
	ctx := context.Background()
	n := e.names("old", nuid.Next())
	if n.body != "" {
		t.Fatalf("an id without the suffix got a body subject: %+v", n)
	}
	if _, err := e.js.CreateStream(ctx, e.streamConfig("old", n, 0, false)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.logs.Create(ctx, encodeSegment("old"), []byte(n.id)); err != nil {
		t.Fatal(err)
	}
	notices := countNotices(t, e, n)
	appendAndRead(t, e, "old", 10, 1, 7)
	time.Sleep(100 * time.Millisecond)
	if got := notices.Load(); got != 20 {
		t.Fatalf("%d notices for 20 records on a first-layout log", got)
	}
}
