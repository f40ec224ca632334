package enginetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// testHoles checks what readers see where an implementation lost records to
// damage on its storage (the contract's holes). It runs only for engines
// whose Harness can damage records.
func (s *suite) testHoles(t *testing.T) {
	if s.h.Damage == nil {
		t.Skip("the engine cannot lose records")
	}
	e := s.newEngine(t)
	l := newLog(t, e, "holes", engine.LogOptions{})
	for i := range 50 {
		if _, err := l.Append(ctx(t), []engine.Record{rec("k", fmt.Sprintf("v%02d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	s.h.Damage(t, e, "holes", 20, 25)
	// readFrom reads to the end from offset from, in reads of per records.
	readFrom := func(from uint64, per int) []uint64 {
		var got []uint64
		for range 100 {
			recs, err := l.Read(ctx(t), from, per, 1<<20)
			if err != nil {
				t.Fatalf("Read(%d): %v", from, err)
			}
			if len(recs) == 0 {
				return got
			}
			for _, r := range recs {
				if r.Offset < from || string(r.Value) != fmt.Sprintf("v%02d", r.Offset) {
					t.Fatalf("Read(%d) returned offset %d = %q", from, r.Offset, r.Value)
				}
				got = append(got, r.Offset)
				from = r.Offset + 1
			}
		}
		t.Fatal("reading does not end")
		return nil
	}
	for _, per := range []int{100, 3, 1} {
		got := readFrom(0, per)
		if len(got) != 45 || got[19] != 19 || got[20] != 25 {
			t.Fatalf("reads of %d: offsets %v, want 0..19 and 25..49", per, got)
		}
	}
	if got := readFrom(22, 2); len(got) != 25 || got[0] != 25 {
		t.Fatalf("Read from inside the hole: %v, want 25..49", got)
	}
	info, err := l.Info(ctx(t))
	if err != nil || info.First != 0 || info.Next != 50 {
		t.Fatalf("Info with a hole: %+v, %v; want [0, 50)", info, err)
	}

	// A hole at the end reads like the end of the log, and Wait does not
	// wake for it, until a record is appended after it.
	s.h.Damage(t, e, "holes", 45, 50)
	if got := readFrom(45, 10); len(got) != 0 {
		t.Fatalf("Read from a hole at the end: %v, want none", got)
	}
	wctx, cancel := context.WithTimeout(ctx(t), blockFor)
	defer cancel()
	if n, err := l.Wait(wctx, 45); err == nil {
		t.Fatalf("Wait(45) in a hole at the end returned %d", n)
	}
	done := make(chan error, 1)
	go func() {
		_, err := l.Wait(ctx(t), 45)
		done <- err
	}()
	if _, err := l.Append(ctx(t), []engine.Record{rec("k", "v50")}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait after an append past the hole: %v", err)
		}
	case <-time.After(wakeTimeout):
		t.Fatal("Wait not woken by an append past the hole")
	}
	if got := readFrom(45, 10); len(got) != 1 || got[0] != 50 {
		t.Fatalf("Read from the hole after an append: %v, want [50]", got)
	}
}
