package jetstream_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/jetstream"
)

func openEngine(t *testing.T, urls string, opts jetstream.Options) engine.Engine {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts.Prefix = fmt.Sprintf("T%d", prefixes.Add(1))
	e, err := jetstream.Open(ctx, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// appended is one acknowledged append: its first offset and the values of
// its records.
type appended struct {
	first  uint64
	values []string
}

// appendLoad runs writers appending batches of 1 to maxBatch records, each
// value unique, until stop is closed or each wrote n batches, and returns
// what was acknowledged and the longest Append call.
func appendLoad(t *testing.T, l engine.Log, writers, n, maxBatch int, stop <-chan struct{}) ([]appended, time.Duration) {
	var (
		mu      sync.Mutex
		acked   []appended
		longest time.Duration
		wg      sync.WaitGroup
	)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				select {
				case <-stop:
					return
				default:
				}
				size := 1 + (i*7+w)%maxBatch
				recs := make([]engine.Record, size)
				values := make([]string, size)
				for j := range recs {
					values[j] = fmt.Sprintf("w%d-b%d-r%d", w, i, j)
					recs[j] = engine.Record{Key: []byte(fmt.Sprint(w)), Value: []byte(values[j])}
				}
				start := time.Now()
				res, err := l.Append(context.Background(), recs)
				took := time.Since(start)
				if err != nil {
					t.Errorf("writer %d batch %d: %v", w, i, err)
					return
				}
				mu.Lock()
				acked = append(acked, appended{res.FirstOffset, values})
				longest = max(longest, took)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acked, longest
}

// checkStoredOnce reads the whole log and checks that it holds exactly the
// acknowledged batches, each once, at the offsets acknowledged, with
// arrival times that never go back.
func checkStoredOnce(t *testing.T, l engine.Log, acked []appended) {
	t.Helper()
	want := map[uint64]string{}
	total := 0
	for _, a := range acked {
		for j, v := range a.values {
			want[a.first+uint64(j)] = v
		}
		total += len(a.values)
	}
	if len(want) != total {
		t.Fatalf("acknowledged batches overlap: %d offsets for %d records", len(want), total)
	}
	seen := map[string]uint64{}
	var next uint64
	var lastTime int64
	for {
		recs, err := l.Read(context.Background(), next, 1000, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Offset != next {
				t.Fatalf("offset %d after %d: offsets are not dense", r.Offset, next-1)
			}
			if r.Time < lastTime {
				t.Fatalf("offset %d: arrival time %d before the previous record's %d", r.Offset, r.Time, lastTime)
			}
			lastTime = r.Time
			v := string(r.Value)
			if prev, dup := seen[v]; dup {
				t.Fatalf("%s stored twice, at offsets %d and %d", v, prev, r.Offset)
			}
			seen[v] = r.Offset
			if w, ok := want[r.Offset]; ok && w != v {
				t.Fatalf("offset %d holds %s, acknowledged for %s", r.Offset, v, w)
			}
			next++
		}
	}
	for off, v := range want {
		if got, ok := seen[v]; !ok || got != off {
			t.Fatalf("%s acknowledged at offset %d, found at %d (present %v)", v, off, got, ok)
		}
	}
	// Appends that failed may have been stored, but none failed here.
	if len(seen) != total {
		t.Fatalf("%d records stored, %d acknowledged", len(seen), total)
	}
}

// Resends of batches whose answers were lost must not store them twice,
// whether JetStream holds the batch already or is still storing it.
func TestAppendResendsStoreOnce(t *testing.T) {
	s, err := jetstream.StartNode(jetstream.NodeOptions{Name: "resend", Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	opts := jetstream.DefaultOptions()
	opts.Replicas = 1
	opts.ResendAfter = time.Microsecond // nearly every append is sent twice
	e := openEngine(t, s.ClientURL(), opts)
	var answers atomic.Int64
	jetstream.DropAnswers(e, func() bool { return answers.Add(1)%5 == 0 })
	ctx := context.Background()
	if err := e.CreateLog(ctx, "resend", engine.LogOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := e.Log(ctx, "resend")
	if err != nil {
		t.Fatal(err)
	}
	acked, longest := appendLoad(t, l, 4, 25, 6, nil)
	checkStoredOnce(t, l, acked)
	resent, located := jetstream.Resends(e)
	t.Logf("%d batches acknowledged, %d sent again, %d found by message id; longest append %v", len(acked), resent, located, longest)
	if resent == 0 || located == 0 {
		t.Fatalf("resent %d, located %d: the resend paths were not taken", resent, located)
	}
}

// Appends go on through changes of their stream's leader without waiting
// out the request timeout, and store every batch once.
func TestAppendThroughLeaderChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster: not in -short")
	}
	c := startCluster(t)
	opts := jetstream.DefaultOptions()
	opts.Replicas = 3
	opts.RequestTimeout = 30 * time.Second
	e := openEngine(t, c.URLs(), opts)
	ctx := context.Background()
	if err := e.CreateLog(ctx, "failover", engine.LogOptions{}); err != nil {
		t.Fatal(err)
	}
	l, err := e.Log(ctx, "failover")
	if err != nil {
		t.Fatal(err)
	}
	stream, err := jetstream.StreamOf(ctx, e, "failover")
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stop := make(chan struct{})
	stepped := make(chan int)
	go func() {
		n := 0
		defer func() { stepped <- n }()
		for range 6 {
			select {
			case <-stop:
				return
			case <-time.After(700 * time.Millisecond):
			}
			if _, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, nil, 5*time.Second); err == nil {
				n++
			}
		}
		close(stop)
	}()
	acked, longest := appendLoad(t, l, 4, 1<<30, 20, stop)
	n := <-stepped
	checkStoredOnce(t, l, acked)
	resent, located := jetstream.Resends(e)
	t.Logf("%d leader changes; %d batches acknowledged, %d sent again, %d found by message id; longest append %v", n, len(acked), resent, located, longest)
	if n == 0 {
		t.Fatal("no leader stepped down")
	}
	// Without resends, a publish a stepping-down leader drops waits out
	// the 30 s request timeout.
	if longest >= 10*time.Second {
		t.Fatalf("an append took %v through a leader change", longest)
	}
}
