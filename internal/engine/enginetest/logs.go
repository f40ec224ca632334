package enginetest

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// testEngine covers CreateLog, Log, DeleteLog and ListLogs.
func (s *suite) testEngine(t *testing.T) {
	t.Run("CreateAndOpen", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "stream.0", engine.LogOptions{Retention: 24 * time.Hour})
		got := info(t, l)
		want := engine.LogInfo{Name: "stream.0", Retention: 24 * time.Hour}
		if got != want {
			t.Fatalf("Info of a new log = %+v, want %+v", got, want)
		}
	})

	t.Run("CreateExisting", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "x", engine.LogOptions{})
		mustAppend(t, l, recs("a", 2))
		err := e.CreateLog(ctx(t), "x", engine.LogOptions{Retention: time.Hour})
		if !errors.Is(err, engine.ErrLogExists) {
			t.Fatalf("CreateLog of an existing name: %v, want ErrLogExists", err)
		}
		if i := info(t, l); i.Next != 2 || i.Retention != 0 {
			t.Fatalf("failed CreateLog changed the log: %+v", i)
		}
	})

	t.Run("InvalidNames", func(t *testing.T) {
		e := s.newEngine(t)
		for _, name := range []string{
			"", ".", "..", "a/b", "../a", `a\b`, "a b", "a\x00b", "a*", "a>", "ü", strings.Repeat("a", 201),
		} {
			if err := e.CreateLog(ctx(t), name, engine.LogOptions{}); !errors.Is(err, engine.ErrInvalidName) {
				t.Errorf("CreateLog(%q): %v, want ErrInvalidName", name, err)
			}
			if _, err := e.Log(ctx(t), name); !isAny(err, engine.ErrInvalidName, engine.ErrLogNotFound) {
				t.Errorf("Log(%q): %v, want ErrInvalidName or ErrLogNotFound", name, err)
			}
			if err := e.DeleteLog(ctx(t), name); !isAny(err, engine.ErrInvalidName, engine.ErrLogNotFound) {
				t.Errorf("DeleteLog(%q): %v, want ErrInvalidName or ErrLogNotFound", name, err)
			}
		}
		if names, err := e.ListLogs(ctx(t), ""); err != nil || len(names) != 0 {
			t.Fatalf("ListLogs after invalid creates = %q, %v, want none", names, err)
		}
	})

	t.Run("ValidNames", func(t *testing.T) {
		e := s.newEngine(t)
		valid := []string{"a", "Z", "0", "A-b_c.9", "...", ".a", "a..b", "-", "_", strings.Repeat("z", 200)}
		for _, name := range valid {
			if !engine.ValidLogName(name) {
				t.Fatalf("test bug: %q is not a valid name", name)
			}
			l := newLog(t, e, name, engine.LogOptions{})
			mustAppend(t, l, []engine.Record{rec("k", name)})
		}
		for _, name := range valid {
			got := readAll(t, openLog(t, e, name), 0)
			if len(got) != 1 || string(got[0].Value) != name {
				t.Fatalf("log %q holds %d records, want its one record", name, len(got))
			}
		}
		names, err := e.ListLogs(ctx(t), "")
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(valid)
		sort.Strings(want)
		if !slices.Equal(names, want) {
			t.Fatalf("ListLogs = %q, want %q", names, want)
		}
	})

	t.Run("LogNotFound", func(t *testing.T) {
		e := s.newEngine(t)
		if _, err := e.Log(ctx(t), "missing"); !errors.Is(err, engine.ErrLogNotFound) {
			t.Fatalf("Log of a missing name: %v, want ErrLogNotFound", err)
		}
		if err := e.DeleteLog(ctx(t), "missing"); !errors.Is(err, engine.ErrLogNotFound) {
			t.Fatalf("DeleteLog of a missing name: %v, want ErrLogNotFound", err)
		}
	})

	t.Run("ListLogsPrefix", func(t *testing.T) {
		e := s.newEngine(t)
		all := []string{"b-", "a.10", "a.2", "a.1", "A", "a", "a_", "ab.0", "s1.0", "s10.0", "s2.0"}
		for _, name := range all {
			newLog(t, e, name, engine.LogOptions{})
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			{"", []string{"A", "a", "a.1", "a.10", "a.2", "a_", "ab.0", "b-", "s1.0", "s10.0", "s2.0"}},
			{"a", []string{"a", "a.1", "a.10", "a.2", "a_", "ab.0"}},
			{"a.", []string{"a.1", "a.10", "a.2"}},
			{"a.1", []string{"a.1", "a.10"}},
			{"s1", []string{"s1.0", "s10.0"}},
			{"s1.", []string{"s1.0"}},
			{"A", []string{"A"}},
			{"c", nil},
			{"a.100", nil},
		}
		for _, tt := range tests {
			got, err := e.ListLogs(ctx(t), tt.prefix)
			if err != nil {
				t.Fatalf("ListLogs(%q): %v", tt.prefix, err)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && !slices.Equal(got, tt.want)) {
				t.Errorf("ListLogs(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "d.0", engine.LogOptions{})
		newLog(t, e, "d.1", engine.LogOptions{})
		mustAppend(t, l, recs("a", 3))
		if err := e.DeleteLog(ctx(t), "d.0"); err != nil {
			t.Fatalf("DeleteLog: %v", err)
		}
		if _, err := e.Log(ctx(t), "d.0"); !errors.Is(err, engine.ErrLogNotFound) {
			t.Fatalf("Log after DeleteLog: %v, want ErrLogNotFound", err)
		}
		if err := e.DeleteLog(ctx(t), "d.0"); !errors.Is(err, engine.ErrLogNotFound) {
			t.Fatalf("second DeleteLog: %v, want ErrLogNotFound", err)
		}
		names, err := e.ListLogs(ctx(t), "d.")
		if err != nil || !slices.Equal(names, []string{"d.1"}) {
			t.Fatalf("ListLogs after DeleteLog = %q, %v, want [d.1]", names, err)
		}
	})

	t.Run("RecreateAfterDelete", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "r", engine.LogOptions{Retention: time.Hour})
		mustAppend(t, l, recs("old", 5))
		if err := l.Seal(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := e.DeleteLog(ctx(t), "r"); err != nil {
			t.Fatal(err)
		}
		l2 := newLog(t, e, "r", engine.LogOptions{Retention: 2 * time.Hour})
		got := info(t, l2)
		want := engine.LogInfo{Name: "r", Retention: 2 * time.Hour}
		if got != want {
			t.Fatalf("Info of the recreated log = %+v, want %+v", got, want)
		}
		if rs := readAll(t, l2, 0); len(rs) != 0 {
			t.Fatalf("recreated log holds %d records, want none", len(rs))
		}
		res := mustAppend(t, l2, recs("new", 1))
		if res.FirstOffset != 0 {
			t.Fatalf("first append to the recreated log got offset %d, want 0", res.FirstOffset)
		}
	})

	t.Run("StaleHandleAfterDelete", func(t *testing.T) {
		// A handle stays valid only until its log is deleted: it must not
		// reach a new log of the same name.
		e := s.newEngine(t)
		old := newLog(t, e, "h", engine.LogOptions{})
		mustAppend(t, old, recs("old", 2))
		if err := e.DeleteLog(ctx(t), "h"); err != nil {
			t.Fatal(err)
		}
		if _, err := old.Append(ctx(t), recs("stale", 1)); !isAny(err, engine.ErrLogNotFound, engine.ErrClosed) {
			t.Fatalf("Append on a deleted log's handle: %v, want ErrLogNotFound or ErrClosed", err)
		}
		if _, err := old.Read(ctx(t), 0, 10, 1<<20); !isAny(err, engine.ErrLogNotFound, engine.ErrClosed) {
			t.Fatalf("Read on a deleted log's handle: %v, want ErrLogNotFound or ErrClosed", err)
		}
		fresh := newLog(t, e, "h", engine.LogOptions{})
		if _, err := old.Append(ctx(t), recs("stale", 1)); !isAny(err, engine.ErrLogNotFound, engine.ErrClosed) {
			t.Fatalf("Append on a stale handle after recreation: %v, want ErrLogNotFound or ErrClosed", err)
		}
		if i := info(t, fresh); i.Next != 0 {
			t.Fatalf("stale handle wrote into the recreated log: %+v", i)
		}
	})
}
