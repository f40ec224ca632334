package enginetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/runnel/runnel/internal/engine"
)

// testAppend covers Append: offsets, times, atomicity, order, limits.
func (s *suite) testAppend(t *testing.T) {
	t.Run("DenseOffsets", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		var next uint64
		for i, n := range []int{1, 3, 1, 7, 2} {
			res := mustAppend(t, l, recs(fmt.Sprint(i), n))
			if res.FirstOffset != next {
				t.Fatalf("batch %d got FirstOffset %d, want %d", i, res.FirstOffset, next)
			}
			next += uint64(n)
			if got := info(t, l).Next; got != next {
				t.Fatalf("after batch %d Next = %d, want %d", i, got, next)
			}
		}
	})

	t.Run("TimesNonDecreasing", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		var batches [][]engine.Record
		for i := range 20 {
			batches = append(batches, recs(fmt.Sprint(i), 1+i%3))
		}
		want := appendAll(t, l, batches...)
		for i := 1; i < len(want); i++ {
			if want[i].time < want[i-1].time {
				t.Fatalf("record %d has time %d before record %d's %d", i, want[i].time, i-1, want[i-1].time)
			}
		}
		// Every record carries its batch's time.
		checkRecords(t, readAll(t, l, 0), want)
	})

	t.Run("EmptyBatch", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		mustAppend(t, l, recs("a", 1))
		for _, batch := range [][]engine.Record{nil, {}} {
			if _, err := l.Append(ctx(t), batch); err == nil {
				t.Fatalf("Append(%#v) succeeded, want an error", batch)
			}
		}
		if i := info(t, l); i.Next != 1 {
			t.Fatalf("Next = %d after rejected empty batches, want 1", i.Next)
		}
		if res := mustAppend(t, l, recs("b", 1)); res.FirstOffset != 1 {
			t.Fatalf("FirstOffset = %d after rejected empty batches, want 1", res.FirstOffset)
		}
	})

	t.Run("EmptyKeyOrValue", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		batch := []engine.Record{
			{Key: []byte("k"), Value: nil},
			{Key: nil, Value: []byte("v")},
			{Key: []byte("k"), Value: []byte{}},
			{Key: []byte{0, 0xff}, Value: []byte{0, 1, 0}},
		}
		want := appendAll(t, l, batch)
		checkRecords(t, readAll(t, l, 0), want)
	})

	t.Run("CallerOwnsSlices", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		batch := []engine.Record{rec("key", "value"), rec("key2", "value2")}
		want := appendAll(t, l, batch)
		// The engine does not retain the appended slices.
		for _, r := range batch {
			r.Key[0], r.Value[0] = '!', '!'
		}
		checkRecords(t, readAll(t, l, 0), want)
		// (What a reader gets is read-only: engine.StoredRecord.)
	})

	t.Run("MaxBatchRecords", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		batch := make([]engine.Record, engine.MaxBatchRecords)
		for i := range batch {
			batch[i] = engine.Record{Key: []byte("k"), Value: binary.BigEndian.AppendUint32(nil, uint32(i))}
		}
		res := mustAppend(t, l, batch)
		got := readAll(t, l, 0)
		if len(got) != len(batch) {
			t.Fatalf("read %d records, want %d", len(got), len(batch))
		}
		for i, r := range got {
			if r.Offset != res.FirstOffset+uint64(i) || !bytes.Equal(r.Value, batch[i].Value) {
				t.Fatalf("record %d = offset %d value %x", i, r.Offset, r.Value)
			}
		}
	})

	t.Run("OverLimitIsAtomic", func(t *testing.T) {
		// Limits are what every engine accepts at least: a larger batch may
		// be taken whole or refused with ErrTooLarge, never in part.
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		mustAppend(t, l, recs("first", 1))
		batch := recs("big", engine.MaxBatchRecords+1)
		_, err := l.Append(ctx(t), batch)
		switch next := info(t, l).Next; {
		case err == nil && next != uint64(1+len(batch)):
			t.Fatalf("accepted over-limit batch left Next = %d, want %d", next, 1+len(batch))
		case err != nil && !errors.Is(err, engine.ErrTooLarge):
			t.Fatalf("over-limit batch: %v, want nil or ErrTooLarge", err)
		case err != nil && next != 1:
			t.Fatalf("refused over-limit batch left Next = %d, want 1", next)
		}
	})

	t.Run("MaxBatchBytes", func(t *testing.T) {
		if testing.Short() {
			t.Skip("64 MiB batch skipped in short mode")
		}
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		const n = 64
		size := engine.MaxBatchBytes / n
		pattern := randomBytes(size - 1)
		batch := make([]engine.Record, n)
		for i := range batch {
			v := bytes.Clone(pattern)
			binary.BigEndian.PutUint32(v, uint32(i))
			batch[i] = engine.Record{Key: []byte("k"), Value: v}
		}
		res := mustAppend(t, l, batch)
		from := res.FirstOffset
		for from < res.FirstOffset+n {
			page, err := l.Read(ctx(t), from, 100, 8<<20)
			if err != nil || len(page) == 0 {
				t.Fatalf("Read(%d) = %d records, %v", from, len(page), err)
			}
			for _, r := range page {
				if !bytes.Equal(r.Value, batch[r.Offset-res.FirstOffset].Value) {
					t.Fatalf("record %d does not round-trip", r.Offset)
				}
			}
			from = page[len(page)-1].Offset + 1
		}
	})

	t.Run("LargeValues", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		const mib = 1 << 20
		key := bytes.Repeat([]byte("k"), 256)
		batch := []engine.Record{
			{Key: key, Value: randomBytes(mib)},
			{Key: key, Value: randomBytes(mib)},
			{Key: []byte("small"), Value: []byte("x")},
		}
		mustAppend(t, l, []engine.Record{rec("k", "before")})
		res := mustAppend(t, l, batch)
		last := engine.Record{Key: key, Value: randomBytes(mib)}
		mustAppend(t, l, []engine.Record{last})

		// One huge record per read when the byte limit is small.
		for i := range 2 {
			off := res.FirstOffset + uint64(i)
			got, err := l.Read(ctx(t), off, 10, 1)
			if err != nil || len(got) != 1 {
				t.Fatalf("Read(%d, maxBytes 1) = %d records, %v; want 1", off, len(got), err)
			}
			if got[0].Offset != off || !bytes.Equal(got[0].Key, key) || !bytes.Equal(got[0].Value, batch[i].Value) {
				t.Fatalf("1 MiB record %d does not round-trip", off)
			}
		}
		// Two fit in a limit of exactly their size, the third does not.
		got, err := l.Read(ctx(t), res.FirstOffset, 10, 2*(mib+256))
		if err != nil || len(got) != 2 {
			t.Fatalf("Read with room for two = %d records, %v; want 2", len(got), err)
		}
		all := readAll(t, l, 0)
		wantAll := append([]engine.Record{rec("k", "before")}, append(batch, last)...)
		if len(all) != len(wantAll) {
			t.Fatalf("read back %d records, want %d", len(all), len(wantAll))
		}
		for i, r := range all {
			if !bytes.Equal(r.Key, wantAll[i].Key) || !bytes.Equal(r.Value, wantAll[i].Value) {
				t.Fatalf("record %d does not round-trip", i)
			}
		}
	})

	t.Run("ConcurrentOneLog", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "c", engine.LogOptions{})
		checkConcurrentAppends(t, []engine.Log{l}, 8, 25)
	})

	t.Run("ConcurrentManyLogs", func(t *testing.T) {
		e := s.newEngine(t)
		var logs []engine.Log
		for i := range 4 {
			logs = append(logs, newLog(t, e, fmt.Sprintf("c.%d", i), engine.LogOptions{}))
		}
		checkConcurrentAppends(t, logs, 8, 20)
	})
}

// readOne reads the record at off.
func readOne(t *testing.T, l engine.Log, off uint64) engine.StoredRecord {
	t.Helper()
	got, err := l.Read(ctx(t), off, 1, 0)
	if err != nil || len(got) != 1 || got[0].Offset != off {
		t.Fatalf("Read(%d, 1) = %v, %v", off, got, err)
	}
	return got[0]
}

// randomBytes returns n pseudo-random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], rand.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

// batchID names one batch of the concurrency tests.
type batchID struct{ appender, batch int }

// checkConcurrentAppends runs appenders goroutines, each appending batches
// batches to logs[(appender+batch)%len(logs)], then checks that every log
// holds every record exactly once, each batch contiguous and in its own
// order, each appender's batches in the order it appended them, and times
// that never decrease.
func checkConcurrentAppends(t *testing.T, logs []engine.Log, appenders, batches int) {
	t.Helper()
	type result struct {
		log int
		res engine.AppendResult
		n   int
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results = make(map[batchID]result)
		errs    = make(chan error, appenders)
	)
	c := ctx(t)
	for a := range appenders {
		wg.Go(func() {
			for b := range batches {
				li := (a + b) % len(logs)
				n := 1 + (a*7+b*3)%5
				batch := make([]engine.Record, n)
				for i := range batch {
					batch[i] = rec(fmt.Sprintf("a%d", a), fmt.Sprintf("%d/%d/%d", a, b, i))
				}
				res, err := logs[li].Append(c, batch)
				if err != nil {
					errs <- fmt.Errorf("appender %d batch %d: %w", a, b, err)
					return
				}
				mu.Lock()
				results[batchID{a, b}] = result{li, res, n}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// What each log must hold, offset by offset.
	want := make([]map[uint64]appended, len(logs))
	for i := range want {
		want[i] = make(map[uint64]appended)
	}
	for id, r := range results {
		for i := range r.n {
			off := r.res.FirstOffset + uint64(i)
			if prev, dup := want[r.log][off]; dup {
				t.Fatalf("log %d offset %d given to both %q and batch %v", r.log, off, prev.value, id)
			}
			want[r.log][off] = appended{off, r.res.Time, fmt.Sprintf("a%d", id.appender), fmt.Sprintf("%d/%d/%d", id.appender, id.batch, i)}
		}
		// An appender's later batch lands after its earlier one.
		if id.batch > 0 {
			prev := results[batchID{id.appender, id.batch - 1}]
			if prev.log == r.log && prev.res.FirstOffset >= r.res.FirstOffset {
				t.Fatalf("appender %d: batch %d at offset %d, before batch %d at %d",
					id.appender, id.batch, r.res.FirstOffset, id.batch-1, prev.res.FirstOffset)
			}
		}
	}
	for li, l := range logs {
		got := readAll(t, l, 0)
		if len(got) != len(want[li]) {
			t.Fatalf("log %d holds %d records, want %d", li, len(got), len(want[li]))
		}
		if i := info(t, l); i.First != 0 || i.Next != uint64(len(got)) {
			t.Fatalf("log %d: First, Next = %d, %d, want 0, %d", li, i.First, i.Next, len(got))
		}
		for i, g := range got {
			w, ok := want[li][uint64(i)]
			if !ok || g.Offset != uint64(i) || g.Time != w.time || string(g.Key) != w.key || string(g.Value) != w.value {
				t.Fatalf("log %d record %d = {%d %d %q %q}, want %+v", li, i, g.Offset, g.Time, g.Key, g.Value, w)
			}
			if i > 0 && g.Time < got[i-1].Time {
				t.Fatalf("log %d: time goes back at offset %d", li, i)
			}
		}
	}
}
