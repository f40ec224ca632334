package enginetest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// testClose covers every call after Close.
func (s *suite) testClose(t *testing.T) {
	e := s.newEngine(t)
	l := newLog(t, e, "c", engine.LogOptions{})
	mustAppend(t, l, recs("a", 2))
	if _, err := e.Meta().Put(ctx(t), "k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	m := e.Meta()
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateLog", func() error { return e.CreateLog(ctx(t), "new", engine.LogOptions{}) }},
		{"Log", func() error { _, err := e.Log(ctx(t), "c"); return err }},
		{"DeleteLog", func() error { return e.DeleteLog(ctx(t), "c") }},
		{"ListLogs", func() error { _, err := e.ListLogs(ctx(t), ""); return err }},
		{"Append", func() error { _, err := l.Append(ctx(t), recs("b", 1)); return err }},
		{"Read", func() error { _, err := l.Read(ctx(t), 0, 10, 1<<20); return err }},
		{"OffsetAt", func() error { _, err := l.OffsetAt(ctx(t), 0); return err }},
		{"Info", func() error { _, err := l.Info(ctx(t)); return err }},
		{"Seal", func() error { return l.Seal(ctx(t)) }},
		{"SetRetention", func() error { return l.SetRetention(ctx(t), time.Hour) }},
		{"Trim", func() error { return l.Trim(ctx(t), time.Now().UnixMilli()) }},
		{"Wait", func() error { _, err := l.Wait(ctx(t), 0); return err }},
		{"Meta.Get", func() error { _, _, err := m.Get(ctx(t), "k"); return err }},
		{"Meta.Put", func() error { _, err := m.Put(ctx(t), "k", []byte("w"), 1); return err }},
		{"Meta.Delete", func() error { return m.Delete(ctx(t), "k", 1) }},
		{"Meta.List", func() error { _, err := m.List(ctx(t), ""); return err }},
		{"Meta() after Close", func() error { _, _, err := e.Meta().Get(ctx(t), "k"); return err }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, engine.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", c.name, err)
		}
	}
	if err := e.Close(); err != nil && !errors.Is(err, engine.ErrClosed) {
		t.Errorf("second Close: %v, want nil or ErrClosed", err)
	}
}

// testReopen covers what survives closing and opening the store again.
func (s *suite) testReopen(t *testing.T) {
	if s.h.Reopen == nil {
		t.Skip("engine does not persist (Harness.Reopen is nil)")
	}

	// snapshot is what must survive of one log.
	type snapshot struct {
		info engine.LogInfo
		recs []engine.StoredRecord
	}
	take := func(t *testing.T, e engine.Engine) map[string]snapshot {
		t.Helper()
		names, err := e.ListLogs(ctx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		out := make(map[string]snapshot)
		for _, n := range names {
			l := openLog(t, e, n)
			out[n] = snapshot{info(t, l), readAll(t, l, 0)}
		}
		return out
	}
	compare := func(t *testing.T, before, after map[string]snapshot) {
		t.Helper()
		if len(after) != len(before) {
			t.Fatalf("%d logs after reopen, want %d", len(after), len(before))
		}
		for name, b := range before {
			a, ok := after[name]
			if !ok {
				t.Fatalf("log %q lost on reopen", name)
			}
			// Retention may have moved the horizon on, never back.
			bi, ai := b.info, a.info
			if ai.First < bi.First {
				t.Fatalf("log %q: First went back from %d to %d on reopen", name, bi.First, ai.First)
			}
			skip := int(ai.First - bi.First)
			bi.First, bi.FirstTime = ai.First, ai.FirstTime
			if ai != bi {
				t.Fatalf("log %q: Info after reopen = %+v, want %+v", name, a.info, bi)
			}
			if skip > len(b.recs) || len(a.recs) != len(b.recs)-skip {
				t.Fatalf("log %q: %d records after reopen, want %d", name, len(a.recs), len(b.recs)-skip)
			}
			for i, r := range a.recs {
				w := b.recs[skip+i]
				if r.Offset != w.Offset || r.Time != w.Time || string(r.Key) != string(w.Key) || string(r.Value) != string(w.Value) {
					t.Fatalf("log %q record %d changed on reopen: %+v, want %+v", name, r.Offset, r, w)
				}
			}
		}
	}

	t.Run("Survives", func(t *testing.T) {
		e := s.newEngine(t)
		open := newLog(t, e, "s.0", engine.LogOptions{Retention: 48 * time.Hour})
		appendAll(t, open, recs("a", 3), recs("b", 1))
		sleepPastMillisecond()
		appendAll(t, open, []engine.Record{rec("", ""), {Key: []byte{0}, Value: randomBytes(100 << 10)}})
		sealed := newLog(t, e, "s.1", engine.LogOptions{})
		appendAll(t, sealed, recs("c", 2))
		if err := sealed.Seal(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := sealed.SetRetention(ctx(t), 72*time.Hour); err != nil {
			t.Fatal(err)
		}
		newLog(t, e, "s.empty", engine.LogOptions{})
		gone := newLog(t, e, "s.gone", engine.LogOptions{})
		appendAll(t, gone, recs("d", 2))
		if err := e.DeleteLog(ctx(t), "s.gone"); err != nil {
			t.Fatal(err)
		}
		m := e.Meta()
		for _, kv := range []struct {
			key    string
			writes int
		}{{"m/one", 1}, {"m/three", 3}, {"m/deleted", 2}} {
			var ver uint64
			for range kv.writes {
				var err error
				if ver, err = m.Put(ctx(t), kv.key, []byte(kv.key), ver); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := m.Delete(ctx(t), "m/deleted", 2); err != nil {
			t.Fatal(err)
		}
		before := take(t, e)
		metaBefore, err := m.List(ctx(t), "")
		if err != nil {
			t.Fatal(err)
		}

		e = s.reopen(t, e)
		compare(t, before, take(t, e))
		if _, err := e.Log(ctx(t), "s.gone"); !errors.Is(err, engine.ErrLogNotFound) {
			t.Fatalf("deleted log after reopen: %v, want ErrLogNotFound", err)
		}
		metaAfter, err := e.Meta().List(ctx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(metaBefore, metaAfter, func(a, b engine.Entry) bool {
			return a.Key == b.Key && a.Version == b.Version && string(a.Value) == string(b.Value)
		}) {
			t.Fatalf("meta after reopen = %v, want %v", metaAfter, metaBefore)
		}

		// The logs carry on where they were.
		if _, err := openLog(t, e, "s.1").Append(ctx(t), recs("late", 1)); !errors.Is(err, engine.ErrSealed) {
			t.Fatalf("Append to a sealed log after reopen: %v, want ErrSealed", err)
		}
		open = openLog(t, e, "s.0")
		res := mustAppend(t, open, recs("after", 2))
		if bi := before["s.0"].info; res.FirstOffset != bi.Next || res.Time < bi.LastTime {
			t.Fatalf("append after reopen = %+v, want offset %d and time >= %d", res, bi.Next, bi.LastTime)
		}
		if ver, err := e.Meta().Put(ctx(t), "m/three", []byte("x"), 3); err != nil || ver != 4 {
			t.Fatalf("Put(expect 3) after reopen = %d, %v; want 4", ver, err)
		}
		if ver, err := e.Meta().Put(ctx(t), "m/deleted", []byte("x"), 0); err != nil || ver != 1 {
			t.Fatalf("Put(expect 0) of a deleted key after reopen = %d, %v; want 1", ver, err)
		}
		if err := e.CreateLog(ctx(t), "s.gone", engine.LogOptions{}); err != nil {
			t.Fatalf("CreateLog of a deleted name after reopen: %v", err)
		}
		if i := info(t, openLog(t, e, "s.gone")); i.Next != 0 {
			t.Fatalf("recreated log after reopen = %+v, want empty", i)
		}

		// And what was written after the first reopen survives a second.
		before = take(t, e)
		e = s.reopen(t, e)
		compare(t, before, take(t, e))
		if v, ver, err := e.Meta().Get(ctx(t), "m/three"); err != nil || ver != 4 || string(v) != "x" {
			t.Fatalf("Get after second reopen = %q, %d, %v; want x, 4", v, ver, err)
		}
	})

	t.Run("TrimSurvives", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "t", engine.LogOptions{})
		var want []appended
		for i := range 5 {
			if i > 0 {
				sleepPastMillisecond()
			}
			want = append(want, appendAll(t, l, recs("a", 2))...)
		}
		if err := l.Trim(ctx(t), want[6].time); err != nil {
			t.Fatal(err)
		}
		first := checkTrimmed(t, l, want, 0, want[6].time, false)
		e = s.reopen(t, e)
		checkTrimmed(t, openLog(t, e, "t"), want, first, want[6].time, false)
	})

	t.Run("WaitAfterReopen", func(t *testing.T) {
		e := s.newEngine(t)
		appendAll(t, newLog(t, e, "w", engine.LogOptions{}), recs("a", 2))
		e = s.reopen(t, e)
		l := openLog(t, e, "w")
		if n, err := l.Wait(ctx(t), 1); err != nil || n != 2 {
			t.Fatalf("Wait(1) after reopen = %d, %v; want 2", n, err)
		}
		ch := startWait(t, ctx(t), l, 2)
		expectBlocked(t, ch)
		mustAppend(t, l, recs("b", 1))
		if r := expectWoken(t, ch); r.err != nil || r.next != 3 {
			t.Fatalf("Wait(2) after reopen woke with %d, %v; want 3", r.next, r.err)
		}
	})
}
