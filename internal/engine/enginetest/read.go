package enginetest

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// testRead covers Read's bounds and limits.
func (s *suite) testRead(t *testing.T) {
	t.Run("EmptyLog", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		for _, from := range []uint64{0, 1, math.MaxUint64} {
			got, err := l.Read(ctx(t), from, 10, 1<<20)
			if err != nil || len(got) != 0 {
				t.Fatalf("Read(%d) of an empty log = %d records, %v; want none", from, len(got), err)
			}
		}
	})

	t.Run("Limits", func(t *testing.T) {
		// Ten records of 10 bytes each (1-byte key, 9-byte value), in three
		// batches so that limits cut across batch boundaries.
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		var batches [][]engine.Record
		for _, n := range []int{4, 3, 3} {
			var b []engine.Record
			for range n {
				b = append(b, rec("k", fmt.Sprintf("value-%03d", len(batches)*10+len(b))))
			}
			batches = append(batches, b)
		}
		want := appendAll(t, l, batches...)
		tests := []struct {
			name                 string
			from                 uint64
			maxRecords, maxBytes int
			wantFrom, wantN      int
		}{
			{"all", 0, 100, 1 << 20, 0, 10},
			{"maxRecords 1", 0, 1, 1 << 20, 0, 1},
			{"maxRecords 3", 0, 3, 1 << 20, 0, 3},
			{"maxRecords across batches", 2, 5, 1 << 20, 2, 5},
			{"maxRecords exact", 0, 10, 1 << 20, 0, 10},
			{"maxBytes 0 still gives the first", 0, 100, 0, 0, 1},
			{"maxBytes below first record", 0, 100, 9, 0, 1},
			{"maxBytes one record", 0, 100, 10, 0, 1},
			{"maxBytes just under two", 0, 100, 19, 0, 1},
			{"maxBytes two", 0, 100, 20, 0, 2},
			{"maxBytes between", 0, 100, 25, 0, 2},
			{"maxBytes across batches", 3, 100, 45, 3, 4},
			{"maxBytes exact all", 0, 100, 100, 0, 10},
			{"both, records binds", 0, 2, 100, 0, 2},
			{"both, bytes binds", 0, 5, 30, 0, 3},
			{"from middle", 7, 100, 1 << 20, 7, 3},
			{"from last", 9, 100, 1 << 20, 9, 1},
			{"from end", 10, 100, 1 << 20, 10, 0},
			{"past end", 11, 100, 1 << 20, 10, 0},
			{"far past end", math.MaxUint64, 100, 1 << 20, 10, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := l.Read(ctx(t), tt.from, tt.maxRecords, tt.maxBytes)
				if err != nil {
					t.Fatalf("Read: %v", err)
				}
				checkRecords(t, got, want[tt.wantFrom:tt.wantFrom+tt.wantN])
			})
		}
	})

	t.Run("FirstRecordWhole", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		big := strings.Repeat("v", 1000)
		want := appendAll(t, l, []engine.Record{rec("key", big), rec("k", "small")}, []engine.Record{rec("k", big)})
		for _, tt := range []struct {
			from     uint64
			maxBytes int
			want     []appended
		}{
			{0, 0, want[:1]},
			{0, 10, want[:1]},
			{0, 1003, want[:1]},
			{0, 1009, want[:2]},
			{1, 10, want[1:2]},
			{1, 100, want[1:2]},
			{1, 1007, want[1:3]},
			{2, 1, want[2:3]},
		} {
			got, err := l.Read(ctx(t), tt.from, 10, tt.maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, got, tt.want)
		}
	})

	t.Run("FromBelowHorizon", func(t *testing.T) {
		// Whatever a trim removed, a read from below the horizon starts at
		// the oldest kept record.
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		want := appendAll(t, l, recs("a", 3))
		sleepPastMillisecond()
		want = append(want, appendAll(t, l, recs("b", 3))...)
		if err := l.Trim(ctx(t), want[3].time); err != nil {
			t.Fatal(err)
		}
		first := info(t, l).First
		if first > 3 {
			t.Fatalf("Trim before the second batch's time moved First to %d, past it", first)
		}
		for from := range first + 1 {
			got, err := l.Read(ctx(t), from, 100, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, got, want[first:])
		}
	})
}

// testOffsetAt covers OffsetAt at, between and after batches.
func (s *suite) testOffsetAt(t *testing.T) {
	t.Run("EmptyLog", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		for _, ts := range []int64{math.MinInt64, 0, time.Now().UnixMilli(), math.MaxInt64} {
			if got, err := l.OffsetAt(ctx(t), ts); err != nil || got != 0 {
				t.Fatalf("OffsetAt(%d) of an empty log = %d, %v; want 0", ts, got, err)
			}
		}
	})

	t.Run("Batches", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		var want []appended
		for i, n := range []int{2, 3, 1, 4} {
			if i > 0 {
				sleepPastMillisecond()
			}
			want = append(want, appendAll(t, l, recs(fmt.Sprint(i), n))...)
		}
		next := uint64(len(want))
		// The expected answer, from the times the engine reported.
		expect := func(ts int64) uint64 {
			for _, w := range want {
				if w.time >= ts {
					return w.offset
				}
			}
			return next
		}
		probes := []int64{math.MinInt64, 0, math.MaxInt64}
		for _, w := range want {
			probes = append(probes, w.time-1, w.time, w.time+1)
		}
		for _, ts := range probes {
			got, err := l.OffsetAt(ctx(t), ts)
			if err != nil {
				t.Fatalf("OffsetAt(%d): %v", ts, err)
			}
			if w := expect(ts); got != w {
				t.Errorf("OffsetAt(%d) = %d, want %d (times %v)", ts, got, w, want)
			}
		}
		if got, _ := l.OffsetAt(ctx(t), want[len(want)-1].time+1); got != next {
			t.Fatalf("OffsetAt after the last batch = %d, want Next %d", got, next)
		}
	})
}

// testInfo covers Info's bounds and times.
func (s *suite) testInfo(t *testing.T) {
	e := s.newEngine(t)
	l := newLog(t, e, "info.0", engine.LogOptions{Retention: 36 * time.Hour})
	if got, want := info(t, l), (engine.LogInfo{Name: "info.0", Retention: 36 * time.Hour}); got != want {
		t.Fatalf("Info of an empty log = %+v, want %+v", got, want)
	}
	want := appendAll(t, l, recs("a", 2))
	sleepPastMillisecond()
	want = append(want, appendAll(t, l, recs("b", 3))...)
	got := info(t, l)
	exp := engine.LogInfo{
		Name: "info.0", First: 0, Next: 5,
		FirstTime: want[0].time, LastTime: want[4].time,
		Retention: 36 * time.Hour,
	}
	if got != exp {
		t.Fatalf("Info = %+v, want %+v", got, exp)
	}
}

// testSeal covers Seal.
func (s *suite) testSeal(t *testing.T) {
	t.Run("StopsAppends", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		want := appendAll(t, l, recs("a", 3))
		if err := l.Seal(ctx(t)); err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if _, err := l.Append(ctx(t), recs("late", 1)); !errors.Is(err, engine.ErrSealed) {
			t.Fatalf("Append after Seal: %v, want ErrSealed", err)
		}
		i := info(t, l)
		if !i.Sealed || i.Next != 3 || i.First != 0 {
			t.Fatalf("Info after Seal = %+v, want Sealed with Next 3", i)
		}
		checkRecords(t, readAll(t, l, 0), want)
		if got, err := l.OffsetAt(ctx(t), want[0].time); err != nil || got != 0 {
			t.Fatalf("OffsetAt on a sealed log = %d, %v", got, err)
		}
	})

	t.Run("Idempotent", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		for i := range 3 {
			if err := l.Seal(ctx(t)); err != nil {
				t.Fatalf("Seal #%d: %v", i+1, err)
			}
		}
		if i := info(t, l); !i.Sealed || i.Next != 0 {
			t.Fatalf("Info = %+v, want an empty sealed log", i)
		}
		// Another handle sees the seal too.
		if _, err := openLog(t, e, "a").Append(ctx(t), recs("x", 1)); !errors.Is(err, engine.ErrSealed) {
			t.Fatalf("Append through a new handle: %v, want ErrSealed", err)
		}
	})

	t.Run("WaitReturns", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		mustAppend(t, l, recs("a", 2))
		if err := l.Seal(ctx(t)); err != nil {
			t.Fatal(err)
		}
		for _, next := range []uint64{0, 2, 3, 100} {
			got, err := l.Wait(ctx(t), next)
			if err != nil || got != 2 {
				t.Fatalf("Wait(%d) on a sealed log = %d, %v; want 2 at once", next, got, err)
			}
		}
	})

	t.Run("DeleteSealed", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		mustAppend(t, l, recs("a", 2))
		if err := l.Seal(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := e.DeleteLog(ctx(t), "a"); err != nil {
			t.Fatalf("DeleteLog of a sealed log: %v", err)
		}
		if i := info(t, newLog(t, e, "a", engine.LogOptions{})); i.Sealed || i.Next != 0 {
			t.Fatalf("recreated log = %+v, want empty and open", i)
		}
	})
}
