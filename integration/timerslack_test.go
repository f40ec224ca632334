//go:build linux

package integration

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"golang.org/x/sys/unix"
)

// threadSlacks returns the timer slack (ns) of every thread of process pid.
func threadSlacks(t *testing.T, pid int) []int64 {
	t.Helper()
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join("/proc", task.Name(), "timerslack_ns"))
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func ownSlack(t *testing.T) int64 {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

// TestServeTimerSlack: runnel serve runs every thread, the Go runtime's
// included, with its timer slack (it executes itself again to get it onto
// threads that start before its code runs), keeps its process id doing so,
// and leaves a slack alone when told to or when it is already larger.
func TestServeTimerSlack(t *testing.T) {
	inherited := ownSlack(t)
	if inherited >= 1e6 {
		t.Fatalf("this test needs to run with a timer slack under 1ms, not %dns", inherited)
	}
	check := func(t *testing.T, s *server, want int64) {
		t.Helper()
		if _, err := s.client().ListStreams(context.Background(), &kinesis.ListStreamsInput{}); err != nil {
			t.Fatal(err)
		}
		slacks := threadSlacks(t, s.cmd.Process.Pid)
		if len(slacks) < 3 {
			t.Fatalf("%d threads; want the runtime's threads too", len(slacks))
		}
		for _, n := range slacks {
			if n != want {
				t.Fatalf("thread timer slacks %v; want %d everywhere", slacks, want)
			}
		}
	}
	t.Run("default", func(t *testing.T) {
		check(t, startServer(t, t.TempDir()), 4e6)
	})
	t.Run("flag", func(t *testing.T) {
		check(t, startServer(t, t.TempDir(), "--timer-slack", "3ms"), 3e6)
	})
	t.Run("off", func(t *testing.T) {
		check(t, startServer(t, t.TempDir(), "--timer-slack", "0"), inherited)
	})
	t.Run("already larger", func(t *testing.T) {
		// A child inherits the slack of the thread that starts it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 5e6, 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		s := startServer(t, t.TempDir())
		if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(inherited), 0, 0, 0); err != nil {
			t.Fatal(err)
		}
		check(t, s, 5e6)
	})
}
