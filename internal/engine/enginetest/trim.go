package enginetest

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// checkTrimmed checks the weak properties every trim must keep, given every
// record ever appended to l (want, by offset from 0), the horizon before the
// trim and the newest cut applied so far: only a prefix is gone, the horizon
// did not move back, no record at or after the cut is gone, and the log reads
// from its new horizon. If background is set, retention may trim further
// while the check runs. It returns the new horizon.
func checkTrimmed(t *testing.T, l engine.Log, want []appended, prevFirst uint64, cut int64, background bool) uint64 {
	t.Helper()
	i := info(t, l)
	next := uint64(len(want))
	if i.Next != next {
		t.Fatalf("Next = %d after trim, want %d", i.Next, next)
	}
	if i.First < prevFirst {
		t.Fatalf("First went back from %d to %d", prevFirst, i.First)
	}
	if i.First > next {
		t.Fatalf("First %d is past Next %d", i.First, next)
	}
	for _, w := range want[:i.First] {
		if w.time >= cut {
			t.Fatalf("trim before %d removed record %d of time %d (First = %d)", cut, w.offset, w.time, i.First)
		}
	}
	if i.First < next {
		if i.FirstTime != want[i.First].time || i.LastTime != want[next-1].time {
			t.Fatalf("FirstTime, LastTime = %d, %d, want %d, %d", i.FirstTime, i.LastTime, want[i.First].time, want[next-1].time)
		}
	} else if i.FirstTime != 0 || i.LastTime != 0 {
		t.Fatalf("emptied log has FirstTime, LastTime = %d, %d, want 0, 0", i.FirstTime, i.LastTime)
	}
	got := readAll(t, l, 0)
	from := i.First
	if background && len(got) > 0 && got[0].Offset > from {
		from = got[0].Offset
	} else if background && len(got) == 0 {
		from = next
	}
	checkRecords(t, got, want[from:])
	off, err := l.OffsetAt(ctx(t), math.MinInt64)
	if err != nil || off < i.First || (!background && off != i.First) {
		t.Fatalf("OffsetAt(min) = %d, %v; want First %d", off, err, i.First)
	}
	return i.First
}

// testTrim covers Trim through its implementation-independent properties.
func (s *suite) testTrim(t *testing.T) {
	// appendSpread appends batches of the given sizes a millisecond or more
	// apart.
	appendSpread := func(t *testing.T, l engine.Log, sizes ...int) []appended {
		var want []appended
		for i, n := range sizes {
			if i > 0 {
				sleepPastMillisecond()
			}
			want = append(want, appendAll(t, l, recs(fmt.Sprint(i), n))...)
		}
		return want
	}

	for _, sealed := range []bool{false, true} {
		t.Run(fmt.Sprintf("PrefixOnly/sealed=%v", sealed), func(t *testing.T) {
			e := s.newEngine(t)
			l := newLog(t, e, "t", engine.LogOptions{})
			want := appendSpread(t, l, 2, 1, 3, 2, 1)
			if sealed {
				if err := l.Seal(ctx(t)); err != nil {
					t.Fatal(err)
				}
			}
			cuts := []int64{math.MinInt64, 0}
			for _, w := range want {
				cuts = append(cuts, w.time, w.time+1)
			}
			cuts = append(cuts, math.MaxInt64)
			var first uint64
			var maxCut int64 = math.MinInt64
			for _, cut := range cuts {
				if err := l.Trim(ctx(t), cut); err != nil {
					t.Fatalf("Trim(%d): %v", cut, err)
				}
				maxCut = max(maxCut, cut)
				first = checkTrimmed(t, l, want, first, maxCut, false)
			}
			// An earlier cut after a later one changes nothing.
			if err := l.Trim(ctx(t), want[0].time); err != nil {
				t.Fatal(err)
			}
			first = checkTrimmed(t, l, want, first, maxCut, false)
			if sealed {
				return
			}
			// Numbering and time carry on after any trim.
			more := appendAll(t, l, recs("after", 2))
			if more[0].offset != uint64(len(want)) || more[0].time < want[len(want)-1].time {
				t.Fatalf("append after trim got offset %d time %d, want %d and >= %d",
					more[0].offset, more[0].time, len(want), want[len(want)-1].time)
			}
			checkTrimmed(t, l, append(want, more...), first, maxCut, false)
		})
	}

	t.Run("ConcurrentWithAppends", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "t", engine.LogOptions{})
		var (
			want     []appended
			lastTime atomic.Int64 // time of the newest acknowledged batch
			maxCut   atomic.Int64
			done     = make(chan struct{})
			wg       sync.WaitGroup
			trimErr  error
		)
		lastTime.Store(math.MinInt64)
		maxCut.Store(math.MinInt64)
		c := ctx(t)
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				cut := lastTime.Load()
				if err := l.Trim(c, cut); err != nil {
					trimErr = err
					return
				}
				if cut > maxCut.Load() {
					maxCut.Store(cut)
				}
				time.Sleep(time.Millisecond)
			}
		})
		for i := range 100 {
			batch := recs(fmt.Sprint(i), 1+i%4)
			res, err := l.Append(c, batch)
			if err != nil {
				close(done)
				wg.Wait()
				t.Fatalf("Append: %v", err)
			}
			for j, r := range batch {
				want = append(want, appended{res.FirstOffset + uint64(j), res.Time, string(r.Key), string(r.Value)})
			}
			lastTime.Store(res.Time)
			if i%10 == 9 {
				sleepPastMillisecond()
			}
		}
		close(done)
		wg.Wait()
		if trimErr != nil {
			t.Fatalf("Trim: %v", trimErr)
		}
		checkTrimmed(t, l, want, 0, maxCut.Load(), false)
	})
}

// testRetention covers retention settings and that the background retention
// only removes what it may.
func (s *suite) testRetention(t *testing.T) {
	t.Run("SetRetention", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "r", engine.LogOptions{Retention: 24 * time.Hour})
		for _, d := range []time.Duration{7 * 24 * time.Hour, 0, time.Hour, 8760 * time.Hour} {
			if err := l.SetRetention(ctx(t), d); err != nil {
				t.Fatalf("SetRetention(%v): %v", d, err)
			}
			if got := info(t, l).Retention; got != d {
				t.Fatalf("Retention = %v after SetRetention(%v)", got, d)
			}
			if got := info(t, openLog(t, e, "r")).Retention; got != d {
				t.Fatalf("a new handle sees Retention %v after SetRetention(%v)", got, d)
			}
		}
	})

	t.Run("KeepsRecent", func(t *testing.T) {
		// Records far younger than the retention are never removed, and
		// retention zero keeps everything.
		e := s.newEngine(t)
		hour := newLog(t, e, "r.0", engine.LogOptions{Retention: time.Hour})
		forever := newLog(t, e, "r.1", engine.LogOptions{})
		wantHour := appendAll(t, hour, recs("a", 3), recs("b", 2))
		wantForever := appendAll(t, forever, recs("a", 3), recs("b", 2))
		if err := forever.SetRetention(ctx(t), 0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		checkRecords(t, readAll(t, hour, 0), wantHour)
		checkRecords(t, readAll(t, forever, 0), wantForever)
		if i := info(t, hour); i.First != 0 {
			t.Fatalf("First = %d under a 1h retention, want 0", i.First)
		}
	})

	t.Run("ShortRetentionPrefix", func(t *testing.T) {
		// With a tiny retention the background may remove anything old, but
		// only a prefix, and the log stays readable and appendable.
		e := s.newEngine(t)
		l := newLog(t, e, "r", engine.LogOptions{Retention: time.Millisecond})
		var want []appended
		var first uint64
		for i := range 10 {
			want = append(want, appendAll(t, l, recs(fmt.Sprint(i), 2))...)
			sleepPastMillisecond()
			first = checkTrimmed(t, l, want, first, math.MaxInt64, true)
		}
	})
}
