package streams

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/mem"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	svc   *Service
	eng   *mem.Engine
	clock *clock
	opts  Options
}

// newEnv starts a service on a fresh memory engine with a fake clock and,
// unless tune changes it, immediate transitions.
func newEnv(t *testing.T, tune ...func(*Options)) *env {
	t.Helper()
	c := newClock()
	eo := mem.DefaultOptions()
	eo.Now = c.Now
	eng := mem.New(eo)
	opts := DefaultOptions()
	opts.Now = c.Now
	opts.TransitionDelay = 0
	opts.IteratorKey = []byte("test-key")
	for _, f := range tune {
		f(&opts)
	}
	svc, err := New(context.Background(), eng, opts)
	if err != nil {
		t.Fatal(err)
	}
	waitScaler(t, svc)
	e := &env{t: t, svc: svc, eng: eng, clock: c, opts: opts}
	t.Cleanup(func() {
		e.svc.Close()
		eng.Close()
	})
	return e
}

// restart closes the service and starts a new one on the same engine.
func (e *env) restart() {
	e.t.Helper()
	e.svc.Close()
	svc, err := New(context.Background(), e.eng, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	waitScaler(e.t, svc)
	e.svc = svc
}

// waitScaler waits until the service's scaler has opened its first window.
// The scaler does that on its own goroutine once it has resealed closed
// shards; a test's own scaleTick that ran first would have its window
// restarted at the test clock's time by it, and find nothing to do.
func waitScaler(t *testing.T, s *Service) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.scale.mu.Lock()
		started := !s.scale.started.IsZero()
		s.scale.mu.Unlock()
		if started {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the scaler did not start within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func (e *env) create(name string, shards int32) {
	e.t.Helper()
	if err := e.svc.CreateStream(context.Background(), &CreateStreamInput{StreamName: &name, ShardCount: &shards}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) put(name, pk string, data string) *PutRecordOutput {
	e.t.Helper()
	out, err := e.svc.PutRecord(context.Background(), &PutRecordInput{StreamName: &name, PartitionKey: &pk, Data: []byte(data)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) iter(name, shard, typ string, seq *string) string {
	e.t.Helper()
	out, err := e.svc.GetShardIterator(context.Background(), &GetShardIteratorInput{StreamName: &name, ShardId: &shard, ShardIteratorType: &typ, StartingSequenceNumber: seq})
	if err != nil {
		e.t.Fatal(err)
	}
	return *out.ShardIterator
}

func (e *env) get(it string, limit int32) *GetRecordsOutput {
	e.t.Helper()
	in := &GetRecordsInput{ShardIterator: &it}
	if limit > 0 {
		in.Limit = &limit
	}
	out, err := e.svc.GetRecords(context.Background(), in)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// wantErr checks that err is an *Error with the code and, unless msg is
// empty, the exact message.
func wantErr(t *testing.T, err error, code Code, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v, want %s", err, code)
	}
	if e.Code != code || (msg != "" && e.Message != msg) {
		t.Fatalf("error = %s: %q\nwant    %s: %q", e.Code, e.Message, code, msg)
	}
}

func sp(s string) *string { return &s }
func ip(i int32) *int32   { return &i }
func bp(b bool) *bool     { return &b }

func engineLogOptions() engine.LogOptions { return engine.LogOptions{} }

func errorsAs(err error, target **Error) bool { return errors.As(err, target) }
