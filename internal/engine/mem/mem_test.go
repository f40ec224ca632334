package mem_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/enginetest"
	"github.com/runnel/runnel/internal/engine/mem"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newLog returns an engine on clk (closed at cleanup) and a fresh log in it.
func newLog(t *testing.T, opts mem.Options, retention time.Duration) (*mem.Engine, engine.Log) {
	t.Helper()
	e := mem.New(opts)
	t.Cleanup(func() { _ = e.Close() })
	ctx := context.Background()
	if err := e.CreateLog(ctx, "l", engine.LogOptions{Retention: retention}); err != nil {
		t.Fatal(err)
	}
	l, err := e.Log(ctx, "l")
	if err != nil {
		t.Fatal(err)
	}
	return e, l
}

func rec(s string) engine.Record { return engine.Record{Key: []byte("k"), Value: []byte(s)} }

func mustAppend(t *testing.T, l engine.Log, recs ...engine.Record) engine.AppendResult {
	t.Helper()
	res, err := l.Append(context.Background(), recs)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts mem.Options
		ok   bool
	}{
		{"defaults", mem.DefaultOptions(), true},
		{"zero", mem.Options{}, true},
		{"negative interval", mem.Options{RetentionInterval: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestTimeFromClockNeverDecreases(t *testing.T) {
	clk := newClock()
	opts := mem.DefaultOptions()
	opts.Now = clk.Now
	_, l := newLog(t, opts, 0)

	r1 := mustAppend(t, l, rec("a"))
	if want := clk.Now().UnixMilli(); r1.Time != want {
		t.Fatalf("time = %d, want clock %d", r1.Time, want)
	}
	clk.Add(-time.Hour) // the clock steps back
	r2 := mustAppend(t, l, rec("b"))
	if r2.Time != r1.Time {
		t.Fatalf("time after clock step back = %d, want %d", r2.Time, r1.Time)
	}
	clk.Add(2 * time.Hour)
	r3 := mustAppend(t, l, rec("c"))
	if want := clk.Now().UnixMilli(); r3.Time != want {
		t.Fatalf("time = %d, want %d", r3.Time, want)
	}
}

func TestTrimRemovesWholeBatches(t *testing.T) {
	clk := newClock()
	opts := mem.DefaultOptions()
	opts.Now = clk.Now
	_, l := newLog(t, opts, 0)
	ctx := context.Background()

	b1 := mustAppend(t, l, rec("a"), rec("b"))
	clk.Add(time.Millisecond)
	b2 := mustAppend(t, l, rec("c"), rec("d"), rec("e"))
	clk.Add(time.Millisecond)
	mustAppend(t, l, rec("f"))

	tests := []struct {
		name      string
		before    int64
		wantFirst uint64
	}{
		{"before everything", b1.Time, 0},
		{"first batch", b2.Time, 2},
		{"second batch", b2.Time + 1, 5},
		{"everything", b2.Time + 100, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Trim(ctx, tt.before); err != nil {
				t.Fatal(err)
			}
			info, err := l.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.First != tt.wantFirst || info.Next != 6 {
				t.Fatalf("First, Next = %d, %d, want %d, 6", info.First, info.Next, tt.wantFirst)
			}
			got, err := l.Read(ctx, 0, 100, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != int(6-tt.wantFirst) || (len(got) > 0 && got[0].Offset != tt.wantFirst) {
				t.Fatalf("Read(0) = %d records from %v, want %d from %d", len(got), got, 6-tt.wantFirst, tt.wantFirst)
			}
		})
	}
	// An emptied log keeps its numbering and times.
	r := mustAppend(t, l, rec("g"))
	if r.FirstOffset != 6 || r.Time < b2.Time {
		t.Fatalf("append after trimming everything = %+v", r)
	}
}

func TestBackgroundRetention(t *testing.T) {
	clk := newClock()
	opts := mem.Options{Now: clk.Now, RetentionInterval: time.Millisecond}
	_, l := newLog(t, opts, time.Minute)
	ctx := context.Background()

	mustAppend(t, l, rec("old1"), rec("old2"))
	clk.Add(30 * time.Second)
	mustAppend(t, l, rec("new"))

	// Not yet expired: nothing may go.
	time.Sleep(20 * time.Millisecond)
	if info, _ := l.Info(ctx); info.First != 0 {
		t.Fatalf("First = %d before expiry, want 0", info.First)
	}

	clk.Add(31 * time.Second) // the first batch is now 61s old, the second 31s
	waitFirst(t, l, 2)

	if err := l.SetRetention(ctx, 0); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	time.Sleep(20 * time.Millisecond)
	if info, _ := l.Info(ctx); info.First != 2 {
		t.Fatalf("First = %d with retention off, want 2", info.First)
	}
	if err := l.SetRetention(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	waitFirst(t, l, 3)
}

// waitFirst waits up to 5s for l's trim horizon to reach want.
func waitFirst(t *testing.T, l engine.Log, want uint64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, err := l.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.First == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("First = %d, want %d", info.First, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCallerOwnsSlices(t *testing.T) {
	e, l := newLog(t, mem.DefaultOptions(), 0)
	ctx := context.Background()

	in := []engine.Record{{Key: []byte("key"), Value: []byte("value")}}
	mustAppend(t, l, in...)
	in[0].Key[0], in[0].Value[0] = 'X', 'X' // the engine must have copied

	got, err := l.Read(ctx, 0, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if string(got[0].Key) != "key" || string(got[0].Value) != "value" {
		t.Fatalf("stored record changed with the caller's slices: %q %q", got[0].Key, got[0].Value)
	}
	got[0].Key[0], got[0].Value[0] = 'Y', 'Y' // the reader owns its copy
	again, _ := l.Read(ctx, 0, 1, 100)
	if string(again[0].Key) != "key" || string(again[0].Value) != "value" {
		t.Fatalf("stored record changed with a reader's slices: %q %q", again[0].Key, again[0].Value)
	}

	v := []byte("meta")
	if _, err := e.Meta().Put(ctx, "m", v, 0); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	mv, _, err := e.Meta().Get(ctx, "m")
	if err != nil {
		t.Fatal(err)
	}
	mv[1] = 'X'
	mv2, _, _ := e.Meta().Get(ctx, "m")
	if !bytes.Equal(mv2, []byte("meta")) {
		t.Fatalf("meta value = %q, want %q", mv2, "meta")
	}
}

func TestLimits(t *testing.T) {
	_, l := newLog(t, mem.DefaultOptions(), 0)
	tooMany := make([]engine.Record, engine.MaxBatchRecords+1)
	if _, err := l.Append(context.Background(), tooMany); !errors.Is(err, engine.ErrTooLarge) {
		t.Fatalf("append of %d records: %v, want ErrTooLarge", len(tooMany), err)
	}
	big := []engine.Record{{Value: make([]byte, engine.MaxBatchBytes/2)}, {Key: []byte("k"), Value: make([]byte, engine.MaxBatchBytes/2)}}
	if _, err := l.Append(context.Background(), big); !errors.Is(err, engine.ErrTooLarge) {
		t.Fatalf("append over MaxBatchBytes: %v, want ErrTooLarge", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{100, 1000} {
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("value=%d/batch=%d", size, batch), func(b *testing.B) {
				e := mem.New(mem.DefaultOptions())
				defer e.Close()
				ctx := context.Background()
				if err := e.CreateLog(ctx, "l", engine.LogOptions{}); err != nil {
					b.Fatal(err)
				}
				l, _ := e.Log(ctx, "l")
				recs := make([]engine.Record, batch)
				for i := range recs {
					recs[i] = engine.Record{Key: []byte("partition-key"), Value: make([]byte, size)}
				}
				b.SetBytes(int64(batch * (size + len("partition-key"))))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := l.Append(ctx, recs); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkRead(b *testing.B) {
	const size, n = 1000, 10000
	e := mem.New(mem.DefaultOptions())
	defer e.Close()
	ctx := context.Background()
	if err := e.CreateLog(ctx, "l", engine.LogOptions{}); err != nil {
		b.Fatal(err)
	}
	l, _ := e.Log(ctx, "l")
	recs := make([]engine.Record, n)
	for i := range recs {
		recs[i] = engine.Record{Value: make([]byte, size)}
	}
	if _, err := l.Append(ctx, recs); err != nil {
		b.Fatal(err)
	}
	for _, max := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("records=%d", max), func(b *testing.B) {
			b.SetBytes(int64(max * size))
			b.ReportAllocs()
			var from uint64
			for b.Loop() {
				got, err := l.Read(ctx, from, max, 10<<20)
				if err != nil || len(got) != max {
					b.Fatalf("read: %d records, %v", len(got), err)
				}
				from = (from + uint64(max)) % (n - uint64(max))
			}
		})
	}
}

func TestConformance(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) engine.Engine { return mem.New(mem.DefaultOptions()) },
	})
}

// TestConformanceBusyRetention runs the suite with a retention pass every
// millisecond, so that background trimming races with everything else.
func TestConformanceBusyRetention(t *testing.T) {
	enginetest.Run(t, enginetest.Harness{
		New: func(t *testing.T) engine.Engine {
			return mem.New(mem.Options{RetentionInterval: time.Millisecond})
		},
	})
}
