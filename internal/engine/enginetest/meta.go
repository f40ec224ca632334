package enginetest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/runnel/runnel/internal/engine"
)

// testMeta covers the metadata store's versioned compare-and-set.
func (s *suite) testMeta(t *testing.T) {
	t.Run("GetMissing", func(t *testing.T) {
		m := s.newEngine(t).Meta()
		if _, _, err := m.Get(ctx(t), "missing"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Get of a missing key: %v, want ErrKeyNotFound", err)
		}
	})

	t.Run("Versions", func(t *testing.T) {
		m := s.newEngine(t).Meta()
		steps := []struct {
			name    string
			value   string
			expect  uint64
			wantVer uint64 // 0: the put must fail with ErrVersionMismatch
		}{
			{"create", "v1", 0, 1},
			{"create again", "x", 0, 0},
			{"future version", "x", 2, 0},
			{"update", "v2", 1, 2},
			{"stale version", "x", 1, 0},
			{"update again", "v3", 2, 3},
			{"empty value", "", 3, 4},
			{"after empty", "v5", 4, 5},
		}
		current, version := "", uint64(0)
		for _, st := range steps {
			got, err := m.Put(ctx(t), "k", []byte(st.value), st.expect)
			if st.wantVer == 0 {
				if !errors.Is(err, engine.ErrVersionMismatch) {
					t.Fatalf("%s: Put(expect %d) = %d, %v; want ErrVersionMismatch", st.name, st.expect, got, err)
				}
			} else {
				if err != nil || got != st.wantVer {
					t.Fatalf("%s: Put(expect %d) = %d, %v; want version %d", st.name, st.expect, got, err, st.wantVer)
				}
				current, version = st.value, got
			}
			v, ver, err := m.Get(ctx(t), "k")
			if err != nil || string(v) != current || ver != version {
				t.Fatalf("%s: Get = %q, %d, %v; want %q, %d", st.name, v, ver, err, current, version)
			}
		}
	})

	t.Run("PutMissingWithVersion", func(t *testing.T) {
		m := s.newEngine(t).Meta()
		if _, err := m.Put(ctx(t), "k", []byte("v"), 1); !errors.Is(err, engine.ErrVersionMismatch) {
			t.Fatalf("Put(expect 1) of a missing key: %v, want ErrVersionMismatch", err)
		}
		if _, _, err := m.Get(ctx(t), "k"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("failed Put created the key: %v", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		m := s.newEngine(t).Meta()
		if err := m.Delete(ctx(t), "k", 0); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Delete(expect 0) of a missing key: %v, want ErrKeyNotFound", err)
		}
		if err := m.Delete(ctx(t), "k", 1); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Delete(expect 1) of a missing key: %v, want ErrKeyNotFound", err)
		}
		for expect := range uint64(2) {
			if _, err := m.Put(ctx(t), "k", []byte("v"), expect); err != nil {
				t.Fatal(err)
			}
		}
		for _, expect := range []uint64{0, 1, 3} {
			if err := m.Delete(ctx(t), "k", expect); !errors.Is(err, engine.ErrVersionMismatch) {
				t.Fatalf("Delete(expect %d) of version 2: %v, want ErrVersionMismatch", expect, err)
			}
		}
		if _, ver, err := m.Get(ctx(t), "k"); err != nil || ver != 2 {
			t.Fatalf("after failed deletes Get = version %d, %v; want 2", ver, err)
		}
		if err := m.Delete(ctx(t), "k", 2); err != nil {
			t.Fatalf("Delete(expect 2): %v", err)
		}
		if _, _, err := m.Get(ctx(t), "k"); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("Get after Delete: %v, want ErrKeyNotFound", err)
		}
		if err := m.Delete(ctx(t), "k", 2); !errors.Is(err, engine.ErrKeyNotFound) {
			t.Fatalf("second Delete: %v, want ErrKeyNotFound", err)
		}
		// A key created again is a new key: its version starts at 1.
		if _, err := m.Put(ctx(t), "k", []byte("again"), 2); !errors.Is(err, engine.ErrVersionMismatch) {
			t.Fatalf("Put(expect 2) after Delete: %v, want ErrVersionMismatch", err)
		}
		if ver, err := m.Put(ctx(t), "k", []byte("again"), 0); err != nil || ver != 1 {
			t.Fatalf("Put(expect 0) after Delete = %d, %v; want version 1", ver, err)
		}
	})

	t.Run("ValueRoundTrip", func(t *testing.T) {
		m := s.newEngine(t).Meta()
		values := map[string][]byte{
			"binary": {0, 1, 2, 0xfe, 0xff, 0},
			"json":   []byte(`{"StreamName":"s","Shards":[{"ShardId":"shardId-000000000000"}]}`),
			"large":  randomBytes(64 << 10),
		}
		for k, v := range values {
			if _, err := m.Put(ctx(t), k, v, 0); err != nil {
				t.Fatalf("Put(%q): %v", k, err)
			}
		}
		for k, v := range values {
			got, ver, err := m.Get(ctx(t), k)
			if err != nil || ver != 1 || !bytes.Equal(got, v) {
				t.Fatalf("Get(%q) = %d bytes, version %d, %v; want %d bytes, version 1", k, len(got), ver, err, len(v))
			}
		}
	})

	t.Run("List", func(t *testing.T) {
		m := s.newEngine(t).Meta()
		keys := []string{"stream/b", "stream/a", "stream/a/shard/2", "stream/a/shard/10", "streams", "consumer/x", "a"}
		for i, k := range keys {
			// Give each key a different version: i+1 writes.
			var ver uint64
			for j := range i + 1 {
				var err error
				if ver, err = m.Put(ctx(t), k, []byte(fmt.Sprintf("%s#%d", k, j)), ver); err != nil {
					t.Fatal(err)
				}
			}
		}
		version := func(k string) uint64 {
			for i, kk := range keys {
				if kk == k {
					return uint64(i + 1)
				}
			}
			return 0
		}
		tests := []struct {
			prefix string
			want   []string
		}{
			{"", []string{"a", "consumer/x", "stream/a", "stream/a/shard/10", "stream/a/shard/2", "stream/b", "streams"}},
			{"stream/", []string{"stream/a", "stream/a/shard/10", "stream/a/shard/2", "stream/b"}},
			{"stream", []string{"stream/a", "stream/a/shard/10", "stream/a/shard/2", "stream/b", "streams"}},
			{"stream/a/shard/", []string{"stream/a/shard/10", "stream/a/shard/2"}},
			{"stream/a/shard/1", []string{"stream/a/shard/10"}},
			{"consumer/x", []string{"consumer/x"}},
			{"nothing", nil},
		}
		for _, tt := range tests {
			got, err := m.List(ctx(t), tt.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", tt.prefix, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("List(%q) = %d entries, want %q", tt.prefix, len(got), tt.want)
			}
			for i, en := range got {
				k := tt.want[i]
				v := version(k)
				if en.Key != k || en.Version != v || string(en.Value) != fmt.Sprintf("%s#%d", k, v-1) {
					t.Fatalf("List(%q)[%d] = {%q %q %d}, want key %q version %d", tt.prefix, i, en.Key, en.Value, en.Version, k, v)
				}
			}
		}
		if err := m.Delete(ctx(t), "stream/b", version("stream/b")); err != nil {
			t.Fatal(err)
		}
		if got, err := m.List(ctx(t), "stream/b"); err != nil || len(got) != 0 {
			t.Fatalf("List after Delete = %v, %v; want none", got, err)
		}
	})

	t.Run("ConcurrentIncrements", func(t *testing.T) {
		// N goroutines each add one K times with read-modify-CAS loops: no
		// increment may be lost or applied twice.
		const goroutines, increments = 8, 20
		m := s.newEngine(t).Meta()
		if _, err := m.Put(ctx(t), "counter", []byte("0"), 0); err != nil {
			t.Fatal(err)
		}
		c := ctx(t)
		var wg sync.WaitGroup
		errs := make(chan error, goroutines)
		for range goroutines {
			wg.Go(func() {
				for done := 0; done < increments; {
					v, ver, err := m.Get(c, "counter")
					if err != nil {
						errs <- err
						return
					}
					n, err := strconv.Atoi(string(v))
					if err != nil {
						errs <- fmt.Errorf("counter holds %q", v)
						return
					}
					switch newVer, err := m.Put(c, "counter", []byte(strconv.Itoa(n+1)), ver); {
					case err == nil:
						if newVer != ver+1 {
							errs <- fmt.Errorf("Put(expect %d) returned version %d", ver, newVer)
							return
						}
						done++
					case !errors.Is(err, engine.ErrVersionMismatch):
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		v, ver, err := m.Get(ctx(t), "counter")
		if err != nil || string(v) != strconv.Itoa(goroutines*increments) || ver != goroutines*increments+1 {
			t.Fatalf("counter = %q version %d, %v; want %d version %d", v, ver, err, goroutines*increments, goroutines*increments+1)
		}
	})

	t.Run("ConcurrentCreate", func(t *testing.T) {
		const goroutines = 8
		m := s.newEngine(t).Meta()
		c := ctx(t)
		var wg sync.WaitGroup
		results := make([]error, goroutines)
		for i := range goroutines {
			wg.Go(func() {
				_, results[i] = m.Put(c, "once", []byte(strconv.Itoa(i)), 0)
			})
		}
		wg.Wait()
		winner := -1
		for i, err := range results {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("both %d and %d created the key", winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, engine.ErrVersionMismatch):
				t.Fatalf("creator %d: %v, want nil or ErrVersionMismatch", i, err)
			}
		}
		if winner < 0 {
			t.Fatal("no creator succeeded")
		}
		v, ver, err := m.Get(ctx(t), "once")
		if err != nil || string(v) != strconv.Itoa(winner) || ver != 1 {
			t.Fatalf("Get = %q version %d, %v; want %q version 1", v, ver, err, strconv.Itoa(winner))
		}
	})
}
