package enginetest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/runnel/runnel/internal/engine"
)

// TestKeys is an engine.Keys for tests: AES-256-GCM keys by id, a current
// one for new batches (0: plain text) and errors to return on demand.
type TestKeys struct {
	mu       sync.Mutex
	keys     map[uint32]cipher.AEAD
	current  uint32
	sealErr  error
	openErr  error
	opened   map[uint32]int
	sealings int
}

// NewTestKeys returns keys with ids 1..n, none current.
func NewTestKeys(n int) *TestKeys {
	k := &TestKeys{keys: make(map[uint32]cipher.AEAD), opened: make(map[uint32]int)}
	for id := 1; id <= n; id++ {
		key := make([]byte, 32)
		for i := range key {
			key[i] = byte(id*31 + i)
		}
		b, err := aes.NewCipher(key)
		if err != nil {
			panic(err)
		}
		a, err := cipher.NewGCM(b)
		if err != nil {
			panic(err)
		}
		k.keys[uint32(id)] = a
	}
	return k
}

// Use makes id the key of new batches (0: plain text).
func (k *TestKeys) Use(id uint32) { k.mu.Lock(); k.current = id; k.mu.Unlock() }

// FailSeal makes SealKey return err (nil: succeed again).
func (k *TestKeys) FailSeal(err error) { k.mu.Lock(); k.sealErr = err; k.mu.Unlock() }

// FailOpen makes OpenKey return err (nil: succeed again).
func (k *TestKeys) FailOpen(err error) { k.mu.Lock(); k.openErr = err; k.mu.Unlock() }

// SealKey implements engine.Keys.
func (k *TestKeys) SealKey(ctx context.Context) (uint32, cipher.AEAD, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.sealErr != nil {
		return 0, nil, k.sealErr
	}
	if k.current == 0 {
		return 0, nil, nil
	}
	k.sealings++
	return k.current, k.keys[k.current], nil
}

// OpenKey implements engine.Keys.
func (k *TestKeys) OpenKey(ctx context.Context, id uint32) (cipher.AEAD, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.openErr != nil {
		return nil, k.openErr
	}
	a, ok := k.keys[id]
	if !ok {
		return nil, fmt.Errorf("test keys: no key %d", id)
	}
	k.opened[id]++
	return a, nil
}

// Opened reports how often OpenKey returned key id.
func (k *TestKeys) Opened(id uint32) int { k.mu.Lock(); defer k.mu.Unlock(); return k.opened[id] }

var (
	errKeyDisabled = errors.New("enginetest: key disabled")
	errKeyGone     = errors.New("enginetest: key not found")
)

// testEncryption covers Log.SetKeys: batches stored under the current key
// read back intact with their key id, plain and encrypted batches mix, and
// the keys' errors reach the caller.
func (s *suite) testEncryption(t *testing.T) {
	t.Run("MixedBatches", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		keys := NewTestKeys(2)
		want := appendAll(t, l, recs("plain", 2))
		l.SetKeys(keys)
		want = append(want, appendAll(t, l, recs("still-plain", 1))...) // no current key
		keys.Use(1)
		want = append(want, appendAll(t, l, recs("one", 3), recs("one-b", 1))...)
		keys.Use(2)
		want = append(want, appendAll(t, l, recs("two", 2))...)
		keys.Use(0)
		want = append(want, appendAll(t, l, recs("plain-again", 1))...)
		got := readAll(t, l, 0)
		checkRecords(t, got, want)
		wantIDs := []uint32{0, 0, 0, 1, 1, 1, 1, 2, 2, 0}
		for i, r := range got {
			if r.KeyID != wantIDs[i] {
				t.Fatalf("record %d has KeyID %d, want %d", i, r.KeyID, wantIDs[i])
			}
		}
		if keys.Opened(1) == 0 || keys.Opened(2) == 0 {
			t.Fatalf("reading encrypted batches asked for keys 1 and 2 %d and %d times", keys.Opened(1), keys.Opened(2))
		}
		// A read from the middle of an encrypted batch.
		checkRecords(t, readAll(t, l, 4), want[4:])
	})

	t.Run("SealError", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		keys := NewTestKeys(1)
		keys.Use(1)
		l.SetKeys(keys)
		want := appendAll(t, l, recs("a", 2))
		keys.FailSeal(errKeyDisabled)
		if _, err := l.Append(ctx(t), recs("refused", 3)); !errors.Is(err, errKeyDisabled) {
			t.Fatalf("Append with a failing SealKey: %v, want %v", err, errKeyDisabled)
		}
		if n := info(t, l).Next; n != 2 {
			t.Fatalf("Next = %d after a refused append, want 2", n)
		}
		keys.FailSeal(nil)
		want = append(want, appendAll(t, l, recs("b", 1))...)
		checkRecords(t, readAll(t, l, 0), want)
	})

	t.Run("OpenError", func(t *testing.T) {
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		keys := NewTestKeys(1)
		l.SetKeys(keys)
		want := appendAll(t, l, recs("plain", 2))
		keys.Use(1)
		appendAll(t, l, recs("secret", 2))
		keys.FailOpen(errKeyGone)
		if _, err := l.Read(ctx(t), 2, 10, 1<<20); !errors.Is(err, errKeyGone) {
			t.Fatalf("Read of encrypted records with a failing OpenKey: %v, want %v", err, errKeyGone)
		}
		// Plain records before them stay readable on their own.
		got, err := l.Read(ctx(t), 0, 2, 1<<20)
		if err != nil {
			t.Fatalf("Read of plain records: %v", err)
		}
		checkRecords(t, got, want)
		keys.FailOpen(nil)
		l.SetKeys(nil)
		if _, err := l.Read(ctx(t), 2, 10, 1<<20); !errors.Is(err, engine.ErrNoKeys) {
			t.Fatalf("Read of encrypted records without keys: %v, want ErrNoKeys", err)
		}
		if _, err := l.Append(ctx(t), recs("plain", 1)); err != nil {
			t.Fatalf("Append without keys: %v", err)
		}
	})

	t.Run("Reopen", func(t *testing.T) {
		if s.h.Reopen == nil {
			t.Skip("engine does not persist")
		}
		e := s.newEngine(t)
		l := newLog(t, e, "a", engine.LogOptions{})
		keys := NewTestKeys(1)
		keys.Use(1)
		l.SetKeys(keys)
		want := appendAll(t, l, recs("secret", 3), recs("more", 2))
		e = s.reopen(t, e)
		l = openLog(t, e, "a")
		l.SetKeys(keys)
		want = append(want, appendAll(t, l, recs("after", 1))...)
		checkRecords(t, readAll(t, l, 0), want)
	})
}
