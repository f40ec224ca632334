package disk

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// The crash test runs the engine in a child process (this test binary run
// again with crashChildEnv set), kills it with SIGKILL while appenders run,
// and checks after reopening that every acknowledged record is there.
const (
	crashChildEnv = "RUNNEL_DISK_CRASH_CHILD"
	crashLogs     = 4
	crashWriters  = 8
)

func crashOptions(d Durability) Options {
	o := DefaultOptions()
	o.Durability = d
	o.SegmentSize = 64 << 10 // rolls often
	o.IndexInterval = 1024
	return o
}

// crashChild appends until killed, printing one line per acknowledged
// batch: log, first offset, count, writer, batch number.
func crashChild() {
	dir := os.Getenv(crashChildEnv)
	d := SyncAlways
	if os.Getenv(crashChildEnv+"_INTERVAL") != "" {
		d = SyncInterval
	}
	e, err := Open(dir, crashOptions(d))
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var out sync.Mutex
	for w := range crashWriters {
		go func() {
			name := fmt.Sprintf("c.%d", w%crashLogs)
			e.CreateLog(ctx, name, engine.LogOptions{})
			l, err := e.Log(ctx, name)
			if err != nil {
				fmt.Fprintln(os.Stderr, "log:", err)
				os.Exit(2)
			}
			rnd := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for b := 0; ; b++ {
				n := 1 + rnd.IntN(40)
				recs := make([]engine.Record, n)
				for i := range recs {
					v := fmt.Appendf(nil, "w%d.b%d.r%d.", w, b, i)
					v = append(v, make([]byte, rnd.IntN(600))...)
					recs[i] = engine.Record{Key: []byte{byte(w)}, Value: v}
				}
				res, err := l.Append(ctx, recs)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "%s %d %d %d %d\n", name, res.FirstOffset, n, w, b)
				out.Unlock()
			}
		}()
	}
	select {}
}

type crashAck struct {
	log         string
	first       uint64
	count, w, b int
}

// TestCrashKill9 kills the engine's process: under either durability an
// acknowledged record survives a process crash (interval durability risks
// only a machine crash).
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	for _, d := range []Durability{SyncAlways, SyncInterval} {
		t.Run(d.String(), func(t *testing.T) { testCrashKill9(t, d) })
	}
}

func testCrashKill9(t *testing.T, d Durability) {
	dir := t.TempDir()
	var acks []crashAck
	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		if d == SyncInterval {
			cmd.Env = append(cmd.Env, crashChildEnv+"_INTERVAL=1")
		}
		cmd.Stderr = os.Stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan crashAck, 1024)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var a crashAck
				if _, err := fmt.Sscanf(sc.Text(), "%s %d %d %d %d", &a.log, &a.first, &a.count, &a.w, &a.b); err == nil {
					lines <- a
				}
			}
		}()
		// Let it run a while after the first acknowledgement, then kill it
		// mid-flight.
		kill := time.After(10 * time.Second)
		n := 0
	collect:
		for {
			select {
			case a, ok := <-lines:
				if !ok {
					break collect
				}
				acks = append(acks, a)
				n++
				if n == 1 {
					kill = time.After(time.Duration(300+100*round) * time.Millisecond)
				}
			case <-kill:
				cmd.Process.Signal(syscall.SIGKILL)
				kill = nil
			}
		}
		cmd.Wait()
		if n == 0 {
			t.Fatalf("round %d: child acknowledged nothing", round)
		}
		t.Logf("round %d: %d batches acknowledged before SIGKILL", round, n)
		checkCrashAcks(t, dir, d, acks)
	}
}

// checkCrashAcks reopens the store and checks every acknowledged batch is
// present, intact and in order, and that each log is dense.
func checkCrashAcks(t *testing.T, dir string, d Durability, acks []crashAck) {
	t.Helper()
	e, err := Open(dir, crashOptions(d))
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer e.Close()
	ctx := context.Background()
	logs := map[string][]engine.StoredRecord{}
	for i := range crashLogs {
		name := fmt.Sprintf("c.%d", i)
		l, err := e.Log(ctx, name)
		if errors.Is(err, engine.ErrLogNotFound) && !slices.ContainsFunc(acks, func(a crashAck) bool { return a.log == name }) {
			continue // killed before its writer created it (a loaded machine)
		}
		if err != nil {
			t.Fatal(err)
		}
		var all []engine.StoredRecord
		for from := uint64(0); ; {
			recs, err := l.Read(ctx, from, 5000, 8<<20)
			if err != nil {
				t.Fatalf("%s: Read(%d): %v", name, from, err)
			}
			if len(recs) == 0 {
				break
			}
			for _, r := range recs {
				if r.Offset != from {
					t.Fatalf("%s: offset %d where %d expected", name, r.Offset, from)
				}
				from++
			}
			all = append(all, recs...)
		}
		logs[name] = all
	}
	for _, a := range acks {
		recs := logs[a.log]
		if a.first+uint64(a.count) > uint64(len(recs)) {
			t.Fatalf("acknowledged batch %+v lost: %s holds %d records", a, a.log, len(recs))
		}
		for i := range a.count {
			r := recs[a.first+uint64(i)]
			want := fmt.Sprintf("w%d.b%d.r%d.", a.w, a.b, i)
			if len(r.Value) < len(want) || string(r.Value[:len(want)]) != want || r.Key[0] != byte(a.w) {
				t.Fatalf("acknowledged batch %+v: record %d is %q", a, i, r.Value[:min(len(r.Value), 20)])
			}
		}
	}
}
