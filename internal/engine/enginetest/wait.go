package enginetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// waitResult is what a Wait returned.
type waitResult struct {
	next uint64
	err  error
}

// startWait calls l.Wait(c, next) in a goroutine the test owns and returns
// the channel its result arrives on.
func startWait(t *testing.T, c context.Context, l engine.Log, next uint64) <-chan waitResult {
	t.Helper()
	ch := make(chan waitResult, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n, err := l.Wait(c, next)
		ch <- waitResult{n, err}
	}()
	// The goroutine must end before the test does, whatever happens.
	t.Cleanup(func() {
		select {
		case <-done:
		case <-time.After(callTimeout):
			t.Errorf("Wait(%d) still blocked at the end of the test", next)
		}
	})
	return ch
}

// expectBlocked checks that a Wait has not returned yet.
func expectBlocked(t *testing.T, ch <-chan waitResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Wait returned %d, %v; want it blocked", r.next, r.err)
	case <-time.After(blockFor):
	}
}

// expectWoken waits for a Wait to return.
func expectWoken(t *testing.T, ch <-chan waitResult) waitResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(wakeTimeout):
		t.Fatalf("Wait did not return within %v", wakeTimeout)
		return waitResult{}
	}
}

// testWait covers Wait.
func (s *suite) testWait(t *testing.T) {
	t.Run("DataAvailable", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		mustAppend(t, l, recs("a", 3))
		for _, next := range []uint64{0, 1, 2} {
			got, err := l.Wait(ctx(t), next)
			if err != nil || got != 3 {
				t.Fatalf("Wait(%d) with data = %d, %v; want 3 at once", next, got, err)
			}
		}
	})

	t.Run("WakesOnAppend", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		mustAppend(t, l, recs("a", 3))
		ch := startWait(t, ctx(t), l, 3)
		expectBlocked(t, ch)
		// Appends come through another handle.
		mustAppend(t, openLog(t, e, "w"), recs("b", 2))
		if r := expectWoken(t, ch); r.err != nil || r.next != 5 {
			t.Fatalf("Wait(3) woke with %d, %v; want 5", r.next, r.err)
		}
	})

	t.Run("EmptyLog", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		ch := startWait(t, ctx(t), l, 0)
		expectBlocked(t, ch)
		mustAppend(t, l, recs("a", 1))
		if r := expectWoken(t, ch); r.err != nil || r.next != 1 {
			t.Fatalf("Wait(0) woke with %d, %v; want 1", r.next, r.err)
		}
	})

	t.Run("FarAhead", func(t *testing.T) {
		// Appends short of the wanted offset do not end the wait.
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		ch := startWait(t, ctx(t), l, 3)
		mustAppend(t, l, recs("a", 2))
		expectBlocked(t, ch)
		mustAppend(t, l, recs("b", 1))
		expectBlocked(t, ch)
		mustAppend(t, l, recs("c", 2))
		if r := expectWoken(t, ch); r.err != nil || r.next != 5 {
			t.Fatalf("Wait(3) woke with %d, %v; want 5", r.next, r.err)
		}
	})

	t.Run("ManyWaiters", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		var chs []<-chan waitResult
		for range 10 {
			chs = append(chs, startWait(t, ctx(t), l, 0))
		}
		expectBlocked(t, chs[0])
		mustAppend(t, l, recs("a", 1))
		for i, ch := range chs {
			if r := expectWoken(t, ch); r.err != nil || r.next != 1 {
				t.Fatalf("waiter %d woke with %d, %v; want 1", i, r.next, r.err)
			}
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		mustAppend(t, l, recs("a", 1))
		c, cancel := context.WithCancel(ctx(t))
		ch := startWait(t, c, l, 1)
		expectBlocked(t, ch)
		cancel()
		if r := expectWoken(t, ch); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("Wait after cancel returned %d, %v; want context.Canceled", r.next, r.err)
		}
	})

	t.Run("Deadline", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		c, cancel := context.WithTimeout(ctx(t), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := l.Wait(c, 0)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait past its deadline: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > wakeTimeout {
			t.Fatalf("Wait returned %v after its deadline", d)
		}
	})

	t.Run("AlreadyCancelled", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		c, cancel := context.WithCancel(ctx(t))
		cancel()
		if _, err := l.Wait(c, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait with a cancelled context: %v, want context.Canceled", err)
		}
	})

	t.Run("WakesOnSeal", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		mustAppend(t, l, recs("a", 2))
		ch := startWait(t, ctx(t), l, 2)
		expectBlocked(t, ch)
		if err := l.Seal(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if r := expectWoken(t, ch); r.err != nil || r.next != 2 {
			t.Fatalf("Wait(2) woke on seal with %d, %v; want 2", r.next, r.err)
		}
	})

	t.Run("ClosedOnDelete", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		ch := startWait(t, ctx(t), l, 0)
		expectBlocked(t, ch)
		if err := e.DeleteLog(ctx(t), "w"); err != nil {
			t.Fatal(err)
		}
		if r := expectWoken(t, ch); !errors.Is(r.err, engine.ErrClosed) {
			t.Fatalf("Wait on a deleted log returned %d, %v; want ErrClosed", r.next, r.err)
		}
		// A wait that starts after the delete fails too.
		if _, err := l.Wait(ctx(t), 0); !errors.Is(err, engine.ErrClosed) {
			t.Fatalf("Wait on a deleted log's handle: %v, want ErrClosed", err)
		}
	})

	t.Run("ClosedOnEngineClose", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "w", engine.LogOptions{})
		other := newLog(t, e, "w2", engine.LogOptions{})
		ch := startWait(t, ctx(t), l, 0)
		ch2 := startWait(t, ctx(t), other, 0)
		expectBlocked(t, ch)
		if err := e.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for _, c := range []<-chan waitResult{ch, ch2} {
			if r := expectWoken(t, c); !errors.Is(r.err, engine.ErrClosed) {
				t.Fatalf("Wait after Close returned %d, %v; want ErrClosed", r.next, r.err)
			}
		}
	})
}
