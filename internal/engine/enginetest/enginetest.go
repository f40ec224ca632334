// Package enginetest is the conformance suite for the engine contract: every
// implementation of engine.Engine runs the same tests, unchanged, through a
// Harness.
//
// The suite uses only what package engine documents. Where the contract
// leaves an implementation latitude (how much Trim or retention removes, when
// the background retention runs, whether an over-limit batch is refused) the
// suite asserts the weak properties every implementation must keep: a trim
// removes a prefix, never a record at or after the cut, and the trim horizon
// never moves back.
//
// A typical use, in the implementation's own tests:
//
//	func TestConformance(t *testing.T) {
//		enginetest.Run(t, enginetest.Harness{
//			New: func(t *testing.T) engine.Engine { return mem.New(mem.DefaultOptions()) },
//		})
//	}
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// Harness tells the suite how to make engines.
type Harness struct {
	// New returns a new, empty engine; the suite closes it.
	New func(t *testing.T) engine.Engine
	// Reopen closes e and opens the same store again (nil for engines that do not persist).
	Reopen func(t *testing.T, e engine.Engine) engine.Engine
	// Damage, for engines whose storage can lose records, damages the
	// records at offsets [from, to) of log name as a failing disk would, so
	// that they are lost (the suite appends them one per batch). Nil for
	// engines that cannot lose records: the suite's hole tests are skipped.
	Damage func(t *testing.T, e engine.Engine, name string, from, to uint64)
}

// Run runs the whole suite as subtests.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("enginetest: Harness.New is nil")
	}
	s := &suite{h: h}
	t.Run("Engine", s.testEngine)
	t.Run("Append", s.testAppend)
	t.Run("Read", s.testRead)
	t.Run("OffsetAt", s.testOffsetAt)
	t.Run("Info", s.testInfo)
	t.Run("Seal", s.testSeal)
	t.Run("Trim", s.testTrim)
	t.Run("Retention", s.testRetention)
	t.Run("Wait", s.testWait)
	t.Run("Meta", s.testMeta)
	t.Run("Close", s.testClose)
	t.Run("Reopen", s.testReopen)
	t.Run("Holes", s.testHoles)
	t.Run("Encryption", s.testEncryption)
}

// callTimeout bounds every call the suite makes, so that a hung
// implementation fails the test instead of stalling it.
const callTimeout = 20 * time.Second

// wakeTimeout is how long the suite waits for a blocked Wait to return after
// the event that should wake it.
const wakeTimeout = 5 * time.Second

// blockFor is how long the suite watches a Wait to check that it blocks.
const blockFor = 30 * time.Millisecond

type suite struct {
	h Harness
}

// newEngine returns a fresh engine that is closed when t ends.
func (s *suite) newEngine(t *testing.T) engine.Engine {
	t.Helper()
	e := s.h.New(t)
	if e == nil {
		t.Fatal("Harness.New returned nil")
	}
	closeAtCleanup(t, e)
	return e
}

// reopen closes e, opens its store again and closes the result when t ends.
func (s *suite) reopen(t *testing.T, e engine.Engine) engine.Engine {
	t.Helper()
	e2 := s.h.Reopen(t, e)
	if e2 == nil {
		t.Fatal("Harness.Reopen returned nil")
	}
	closeAtCleanup(t, e2)
	return e2
}

// closeAtCleanup closes e when t ends unless the test already did.
func closeAtCleanup(t *testing.T, e engine.Engine) {
	t.Cleanup(func() {
		if err := e.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
}

// ctx returns a context that ends with the test or after callTimeout.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), callTimeout)
	t.Cleanup(cancel)
	return c
}

// newLog creates a log and returns its handle.
func newLog(t *testing.T, e engine.Engine, name string, opts engine.LogOptions) engine.Log {
	t.Helper()
	if err := e.CreateLog(ctx(t), name, opts); err != nil {
		t.Fatalf("CreateLog(%q): %v", name, err)
	}
	return openLog(t, e, name)
}

// openLog returns a handle to an existing log.
func openLog(t *testing.T, e engine.Engine, name string) engine.Log {
	t.Helper()
	l, err := e.Log(ctx(t), name)
	if err != nil {
		t.Fatalf("Log(%q): %v", name, err)
	}
	return l
}

// rec makes a record from strings.
func rec(key, value string) engine.Record {
	return engine.Record{Key: []byte(key), Value: []byte(value)}
}

// recs makes n records whose values are prefix-0, prefix-1, ...
func recs(prefix string, n int) []engine.Record {
	out := make([]engine.Record, n)
	for i := range out {
		out[i] = rec("k", fmt.Sprintf("%s-%d", prefix, i))
	}
	return out
}

// mustAppend appends a batch and checks the result's shape.
func mustAppend(t *testing.T, l engine.Log, batch []engine.Record) engine.AppendResult {
	t.Helper()
	res, err := l.Append(ctx(t), batch)
	if err != nil {
		t.Fatalf("Append(%d records): %v", len(batch), err)
	}
	return res
}

// info returns l's bounds.
func info(t *testing.T, l engine.Log) engine.LogInfo {
	t.Helper()
	i, err := l.Info(ctx(t))
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return i
}

// readAll reads l from offset from to its end in pages.
func readAll(t *testing.T, l engine.Log, from uint64) []engine.StoredRecord {
	t.Helper()
	var out []engine.StoredRecord
	for {
		page, err := l.Read(ctx(t), from, 1000, 4<<20)
		if err != nil {
			t.Fatalf("Read(%d): %v", from, err)
		}
		if len(page) == 0 {
			return out
		}
		for i, r := range page {
			if r.Offset < from || (i > 0 && r.Offset != page[i-1].Offset+1) {
				t.Fatalf("Read(%d) returned offset %d at position %d", from, r.Offset, i)
			}
		}
		out = append(out, page...)
		from = page[len(page)-1].Offset + 1
	}
}

// appended is what the suite remembers of an appended record.
type appended struct {
	offset     uint64
	time       int64
	key, value string
}

// appendAll appends each batch and returns the records as they must read back.
func appendAll(t *testing.T, l engine.Log, batches ...[]engine.Record) []appended {
	t.Helper()
	var out []appended
	for _, b := range batches {
		res := mustAppend(t, l, b)
		for i, r := range b {
			out = append(out, appended{res.FirstOffset + uint64(i), res.Time, string(r.Key), string(r.Value)})
		}
	}
	return out
}

// checkRecords compares records read back with what was appended.
func checkRecords(t *testing.T, got []engine.StoredRecord, want []appended) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d records, want %d", len(got), len(want))
	}
	for i, g := range got {
		w := want[i]
		if g.Offset != w.offset || g.Time != w.time || string(g.Key) != w.key || string(g.Value) != w.value {
			t.Fatalf("record %d = {%d %d %q %q}, want {%d %d %q %q}",
				i, g.Offset, g.Time, g.Key, g.Value, w.offset, w.time, w.key, w.value)
		}
	}
}

// isAny reports whether err matches one of targets.
func isAny(err error, targets ...error) bool {
	for _, target := range targets {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// sleepPastMillisecond sleeps long enough that the next append gets a later
// millisecond from a real clock.
func sleepPastMillisecond() { time.Sleep(2 * time.Millisecond) }
