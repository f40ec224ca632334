// Package storetest is the conformance suite of consumer.LeaseStore: every
// implementation (runnel's lease tables, a DynamoDB table in the KCL's
// schema) must pass it, since the worker's guarantees rest on it.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/runnel/runnel/consumer"
)

// NewStore returns a store of a fresh application on a fresh stream with
// the given number of open shards.
type NewStore func(t *testing.T, shards int) consumer.LeaseStore

// Run runs the suite.
func Run(t *testing.T, newStore NewStore) {
	ctx := context.Background()
	t.Run("PrepareIsIdempotent", func(t *testing.T) {
		s := newStore(t, 2)
		p, err := s.Prepare(ctx, consumer.Latest)
		if err != nil || p.Type != "LATEST" {
			t.Fatalf("Prepare = %+v, %v", p, err)
		}
		if p, err = s.Prepare(ctx, consumer.TrimHorizon); err != nil || p.Type != "LATEST" {
			t.Fatalf("second Prepare = %+v, %v; want the table's own LATEST", p, err)
		}
		ls, err := s.List(ctx)
		if err != nil || len(ls) != 2 {
			t.Fatalf("List = %+v, %v", ls, err)
		}
		for _, l := range ls {
			if l.Owner != "" || l.Checkpoint != "LATEST" {
				t.Fatalf("new lease %+v", l)
			}
		}
		if ls[0].Key >= ls[1].Key {
			t.Fatalf("leases not in shard id order: %s, %s", ls[0].Key, ls[1].Key)
		}
	})
	t.Run("OneTakeWinsACounter", func(t *testing.T) {
		s := newStore(t, 1)
		ls := prepare(t, s)
		a, err := s.Take(ctx, ls[0].Key, "a", ls[0].Counter)
		if err != nil || a.Owner != "a" || a.Counter == ls[0].Counter {
			t.Fatalf("Take = %+v, %v", a, err)
		}
		if _, err := s.Take(ctx, ls[0].Key, "b", ls[0].Counter); !errors.Is(err, consumer.ErrLeaseConflict) {
			t.Fatalf("second Take at the same counter: %v", err)
		}
		b, err := s.Take(ctx, ls[0].Key, "b", a.Counter)
		if err != nil || b.Owner != "b" {
			t.Fatalf("Take at the current counter = %+v, %v", b, err)
		}
	})
	t.Run("ConcurrentTakesOneWins", func(t *testing.T) {
		s := newStore(t, 1)
		ls := prepare(t, s)
		const takers = 8
		var wg sync.WaitGroup
		errs := make([]error, takers)
		for i := range takers {
			wg.Go(func() {
				_, errs[i] = s.Take(ctx, ls[0].Key, fmt.Sprint("w", i), ls[0].Counter)
			})
		}
		wg.Wait()
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, consumer.ErrLeaseConflict):
				t.Fatalf("take by w%d: %v", i, err)
			}
		}
		if won != 1 {
			t.Fatalf("%d of %d concurrent takes of one counter won; want 1", won, takers)
		}
	})
	t.Run("CheckpointIsFenced", func(t *testing.T) {
		s := newStore(t, 1)
		ls := prepare(t, s)
		key := ls[0].Key
		a, err := s.Take(ctx, key, "a", ls[0].Counter)
		if err != nil {
			t.Fatal(err)
		}
		const seq = "49000000000000000000000000000000000000000000000000000001"
		cp, err := s.Checkpoint(ctx, key, "a", a.Counter, seq, 3)
		if err != nil || cp.Checkpoint != seq || cp.SubSequenceNumber != 3 {
			t.Fatalf("Checkpoint = %+v, %v", cp, err)
		}
		// Another worker takes the lease; a's next checkpoint is refused.
		if _, err := s.Take(ctx, key, "b", cp.Counter); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Checkpoint(ctx, key, "a", cp.Counter, seq, 4); !errors.Is(err, consumer.ErrLeaseConflict) {
			t.Fatalf("checkpoint of a lost lease: %v", err)
		}
		ls, err = s.List(ctx)
		if err != nil || ls[0].Owner != "b" || ls[0].SubSequenceNumber != 3 {
			t.Fatalf("after the refused checkpoint: %+v, %v", ls, err)
		}
	})
	t.Run("RenewReportsLost", func(t *testing.T) {
		s := newStore(t, 2)
		ls := prepare(t, s)
		a0, err := s.Take(ctx, ls[0].Key, "a", ls[0].Counter)
		if err != nil {
			t.Fatal(err)
		}
		a1, err := s.Take(ctx, ls[1].Key, "a", ls[1].Counter)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Take(ctx, ls[1].Key, "b", a1.Counter); err != nil {
			t.Fatal(err)
		}
		renewed, lost, err := s.Renew(ctx, "a", []consumer.Lease{a0, a1})
		if err != nil || len(renewed) != 1 || len(lost) != 1 || renewed[0].Key != a0.Key || lost[0].Owner != "b" {
			t.Fatalf("Renew = %+v, %+v, %v", renewed, lost, err)
		}
		if renewed[0].Counter == a0.Counter {
			t.Fatalf("renewal kept the counter %d", a0.Counter)
		}
	})
	t.Run("ReleaseFreesTheLease", func(t *testing.T) {
		s := newStore(t, 1)
		ls := prepare(t, s)
		a, err := s.Take(ctx, ls[0].Key, "a", ls[0].Counter)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Release(ctx, a.Key, "b", a.Counter); !errors.Is(err, consumer.ErrLeaseConflict) {
			t.Fatalf("release by another worker: %v", err)
		}
		r, err := s.Release(ctx, a.Key, "a", a.Counter)
		if err != nil || r.Owner != "" {
			t.Fatalf("Release = %+v, %v", r, err)
		}
		if _, err := s.Take(ctx, a.Key, "b", r.Counter); err != nil {
			t.Fatalf("take after release: %v", err)
		}
	})
}

func prepare(t *testing.T, s consumer.LeaseStore) []consumer.Lease {
	t.Helper()
	if _, err := s.Prepare(context.Background(), consumer.TrimHorizon); err != nil {
		t.Fatal(err)
	}
	ls, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}
