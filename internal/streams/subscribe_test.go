package streams

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func (e *env) subscribe(consumerARN, shard, typ string, seq *string) *Subscription {
	e.t.Helper()
	sub, err := e.svc.SubscribeToShard(context.Background(), &SubscribeToShardInput{
		ConsumerARN: &consumerARN, ShardId: &shard, StartingPosition: &StartingPosition{Type: &typ, SequenceNumber: seq},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(sub.Close)
	return sub
}

// next calls sub.Next with a timeout.
func next(t *testing.T, sub *Subscription) (*SubscribeToShardEvent, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return sub.Next(ctx)
}

// cont returns ev's ContinuationSequenceNumber, "" when it has none.
func cont(ev *SubscribeToShardEvent) string {
	if ev == nil || ev.ContinuationSequenceNumber == nil {
		return ""
	}
	return *ev.ContinuationSequenceNumber
}

// collect reads events until it has n records.
func collect(t *testing.T, sub *Subscription, n int) ([]string, *SubscribeToShardEvent) {
	t.Helper()
	var got []string
	var ev *SubscribeToShardEvent
	for len(got) < n {
		var err error
		if ev, err = next(t, sub); err != nil {
			t.Fatalf("after %d records: %v", len(got), err)
		}
		if (ev.ContinuationSequenceNumber == nil || *ev.ContinuationSequenceNumber == "") != (ev.ChildShards != nil) {
			t.Fatalf("continuation %v with children %v", ev.ContinuationSequenceNumber, ev.ChildShards)
		}
		for _, r := range ev.Records {
			got = append(got, string(r.Data))
		}
	}
	return got, ev
}

func TestSubscribePush(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SubscriptionHeartbeat = 50 * time.Millisecond })
	e.create("s", 1)
	c := e.register("s", "app")
	var seqs []string
	for _, d := range []string{"a", "b", "c"} {
		seqs = append(seqs, e.put("s", "k", d).SequenceNumber)
	}
	sub := e.subscribe(c.ConsumerARN, "shardId-000000000000", "TRIM_HORIZON", nil)
	got, ev := collect(t, sub, 3)
	if strings.Join(got, "") != "abc" || cont(ev) != seqs[2] || ev.Records[2].SequenceNumber != seqs[2] {
		t.Fatalf("got %v, continuation %s", got, cont(ev))
	}

	// A record put later is pushed to the waiting Next.
	type res struct {
		ev  *SubscribeToShardEvent
		err error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			ev, err := next(t, sub)
			if err != nil || len(ev.Records) > 0 {
				ch <- res{ev, err}
				return
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)
	d := e.put("s", "k", "d")
	r := <-ch
	if r.err != nil || len(r.ev.Records) != 1 || string(r.ev.Records[0].Data) != "d" || cont(r.ev) != d.SequenceNumber {
		t.Fatalf("pushed %+v %v", r.ev, r.err)
	}

	// Without records, heartbeats repeat the continuation.
	ev, err := next(t, sub)
	if err != nil || len(ev.Records) != 0 || cont(ev) != d.SequenceNumber || ev.MillisBehindLatest != 0 {
		t.Fatalf("heartbeat %+v %v", ev, err)
	}
}

func TestSubscribeStartingPositions(t *testing.T) {
	e := newEnv(t)
	e.create("s", 1)
	c := e.register("s", "app")
	const sid = "shardId-000000000000"

	// On an empty shard the continuation resumes at the first record.
	sub := e.subscribe(c.ConsumerARN, sid, "TRIM_HORIZON", nil)
	ev, err := next(t, sub)
	if err != nil || len(ev.Records) != 0 {
		t.Fatalf("first event %+v %v", ev, err)
	}
	empty := cont(ev)
	sub.Close()

	var seqs []string
	for _, d := range []string{"r0", "r1", "r2", "r3"} {
		seqs = append(seqs, e.put("s", "k", d).SequenceNumber)
	}
	e.clock.Advance(time.Second)
	tsLater := e.clock.Now()
	e.clock.Advance(time.Second)
	seqs = append(seqs, e.put("s", "k", "r4").SequenceNumber)

	tests := []struct {
		name, typ string
		seq       *string
		ts        *time.Time
		want      string
	}{
		{"trim horizon", "TRIM_HORIZON", nil, nil, "r0"},
		{"after empty-shard continuation", "AFTER_SEQUENCE_NUMBER", &empty, nil, "r0"},
		{"at sequence number", "AT_SEQUENCE_NUMBER", &seqs[2], nil, "r2"},
		{"after sequence number", "AFTER_SEQUENCE_NUMBER", &seqs[2], nil, "r3"},
		{"at timestamp", "AT_TIMESTAMP", nil, &tsLater, "r4"},
		{"latest", "LATEST", nil, nil, "r5"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := &SubscribeToShardInput{ConsumerARN: &c.ConsumerARN, ShardId: sp(sid), StartingPosition: &StartingPosition{Type: &tc.typ, SequenceNumber: tc.seq}}
			if tc.ts != nil {
				in.StartingPosition.Timestamp = &Timestamp{*tc.ts}
			}
			e.clock.Advance(6 * time.Second) // past the takeover window
			sub, err := e.svc.SubscribeToShard(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			if tc.typ == "LATEST" {
				ev, err := next(t, sub)
				// The continuation is the position just after the last
				// record (56-digit numbers compare as strings).
				if err != nil || len(ev.Records) != 0 || cont(ev) <= seqs[len(seqs)-1] {
					t.Fatalf("LATEST first event %+v %v", ev, err)
				}
				e.put("s", "k", "r5")
			}
			got, _ := collect(t, sub, 1)
			if got[0] != tc.want {
				t.Fatalf("case %d: first record %s, want %s", i, got[0], tc.want)
			}
		})
	}
}

func TestSubscribeErrors(t *testing.T) {
	e := newEnv(t)
	e.create("s", 2)
	c := e.register("s", "app")
	other := e.arn("s") + "/consumer/ghost:12"
	tests := []struct {
		name string
		in   SubscribeToShardInput
		code Code
		msg  string
	}{
		{"no consumer", SubscribeToShardInput{ShardId: sp("0"), StartingPosition: &StartingPosition{Type: sp("LATEST")}}, CodeValidation, ""},
		{"no position", SubscribeToShardInput{ConsumerARN: &c.ConsumerARN, ShardId: sp("0")}, CodeValidation, ""},
		{"bad type", SubscribeToShardInput{ConsumerARN: &c.ConsumerARN, ShardId: sp("0"), StartingPosition: &StartingPosition{Type: sp("OLDEST")}}, CodeValidation, ""},
		{"unknown consumer", SubscribeToShardInput{ConsumerARN: &other, ShardId: sp("0"), StartingPosition: &StartingPosition{Type: sp("LATEST")}}, CodeResourceNotFound, "Consumer " + other + ", account 000000000000 not found."},
		{"unknown shard", SubscribeToShardInput{ConsumerARN: &c.ConsumerARN, ShardId: sp("shardId-000000000009"), StartingPosition: &StartingPosition{Type: sp("LATEST")}}, CodeResourceNotFound, "Shard shardId-000000000009 in stream s under account 000000000000 does not exist"},
		{"sequence number missing", SubscribeToShardInput{ConsumerARN: &c.ConsumerARN, ShardId: sp("0"), StartingPosition: &StartingPosition{Type: sp("AT_SEQUENCE_NUMBER")}}, CodeInvalidArgument, ""},
		{"sequence number of another shard", SubscribeToShardInput{ConsumerARN: &c.ConsumerARN, ShardId: sp("1"), StartingPosition: &StartingPosition{Type: sp("AT_SEQUENCE_NUMBER"), SequenceNumber: sp(seqNum{created: 1, shard: 0}.String())}}, CodeInvalidArgument, "Invalid StartingSequenceNumber. It encodes shardId-000000000000, while it was used in a call to a shard with shardId-000000000001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.SubscribeToShard(context.Background(), &tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
}

func TestSubscribeTakeoverAndLifetime(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SubscriptionLifetime = time.Minute })
	e.create("s", 1)
	c := e.register("s", "app")
	first := e.subscribe(c.ConsumerARN, "0", "LATEST", nil)
	if _, err := next(t, first); err != nil {
		t.Fatal(err)
	}
	_, err := e.svc.SubscribeToShard(context.Background(), &SubscribeToShardInput{ConsumerARN: &c.ConsumerARN, ShardId: sp("0"), StartingPosition: &StartingPosition{Type: sp("LATEST")}})
	wantErr(t, err, CodeResourceInUse, "Another active subscription exists for this consumer: 000000000000:s:shardId-000000000000:app")

	// A waiting Next of the first ends when the second takes over.
	done := make(chan error, 1)
	go func() {
		_, err := next(t, first)
		done <- err
	}()
	e.clock.Advance(6 * time.Second)
	second := e.subscribe(c.ConsumerARN, "0", "LATEST", nil)
	if err := <-done; err != io.EOF {
		t.Fatalf("taken-over subscription: %v, want io.EOF", err)
	}
	if _, err := next(t, second); err != nil {
		t.Fatal(err)
	}
	// The lifetime ends the second one.
	e.clock.Advance(time.Minute)
	if _, err := next(t, second); err != io.EOF {
		t.Fatalf("expired subscription: %v, want io.EOF", err)
	}

	// Deregistering the consumer ends its subscriptions.
	e.clock.Advance(6 * time.Second)
	third := e.subscribe(c.ConsumerARN, "0", "LATEST", nil)
	if _, err := next(t, third); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := next(t, third)
		done <- err
	}()
	if err := e.svc.DeregisterStreamConsumer(context.Background(), &DeregisterStreamConsumerInput{ConsumerARN: &c.ConsumerARN}); err != nil {
		t.Fatal(err)
	}
	// Ended either by the deregistration (io.EOF) or by noticing the
	// consumer is gone (ResourceNotFoundException).
	if err := <-done; err != io.EOF {
		var ke *Error
		if !errors.As(err, &ke) || ke.Code != CodeResourceNotFound {
			t.Fatalf("after deregistration: %v", err)
		}
	}
}

func TestSubscribeBatchLimitAndStreamDeletion(t *testing.T) {
	e := newEnv(t)
	e.create("s", 1)
	c := e.register("s", "app")
	big := strings.Repeat("x", 300<<10)
	for range 5 {
		e.put("s", "k", big)
	}
	sub := e.subscribe(c.ConsumerARN, "0", "TRIM_HORIZON", nil)
	ev, err := next(t, sub)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(ev.Records); n < 1 || n > 4 || ev.MillisBehindLatest < 0 {
		t.Fatalf("first event holds %d records of 300 KiB, want at most ~1 MiB", n)
	}
	got, _ := collect(t, sub, 5-len(ev.Records))
	if len(got) != 5-len(ev.Records) {
		t.Fatalf("rest %d", len(got))
	}

	if err := e.svc.DeleteStream(context.Background(), &DeleteStreamInput{StreamName: sp("s"), EnforceConsumerDeletion: bp(true)}); err != nil {
		t.Fatal(err)
	}
	_, err = next(t, sub)
	wantErr(t, err, CodeResourceNotFound, "")
	if _, err := next(t, sub); err != io.EOF {
		t.Fatalf("after the error: %v, want io.EOF", err)
	}
}

func TestSubscribeClosedShardChildShards(t *testing.T) {
	e := newEnv(t)
	e.create("s", 1)
	c := e.register("s", "app")
	e.put("s", "k", "last")
	sub := e.subscribe(c.ConsumerARN, "0", "TRIM_HORIZON", nil)
	if got, _ := collect(t, sub, 1); got[0] != "last" {
		t.Fatal(got)
	}
	done := make(chan *SubscribeToShardEvent, 1)
	go func() {
		for {
			ev, err := next(t, sub)
			if err != nil {
				t.Error(err)
				done <- nil
				return
			}
			if ev.ChildShards != nil {
				done <- ev
				return
			}
		}
	}()
	// Close shard 0 the way resharding does: seal the log, then record the
	// end offset and the children in the metadata.
	ctx := context.Background()
	l, err := e.eng.Log(ctx, sub.sh.logName)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.update(ctx, "s", func(m *streamMeta, now int64) error {
		sm := &m.Shards[0]
		sm.Closed, sm.EndOffset = now, 1
		m.Shards = append(m.Shards,
			shardMeta{Parents: []int{0}, Start: sm.Start, End: "170141183460469231731687303715884105727", Created: now + 1000},
			shardMeta{Parents: []int{0}, Start: "170141183460469231731687303715884105728", End: sm.End, Created: now + 1000})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-done
	if ev == nil || len(ev.ChildShards) != 2 || ev.ChildShards[0].ShardId != "shardId-000000000001" || ev.ChildShards[1].ParentShards[0] != "shardId-000000000000" || ev.ContinuationSequenceNumber != nil {
		t.Fatalf("final event %+v", ev)
	}
	if _, err := next(t, sub); err != io.EOF {
		t.Fatalf("after ChildShards: %v, want io.EOF", err)
	}
}

// TestSubscribeEndOfClosedShard subscribes to closed shards at and before
// their end: every subscription must finish with one event that carries
// ChildShards and no ContinuationSequenceNumber, then io.EOF, which is what
// ends a consumer's loop on the shard.
func TestSubscribeEndOfClosedShard(t *testing.T) {
	e := newEnv(t)
	e.create("s", 1)
	e.create("empty", 1)
	c := e.register("s", "app")
	ce := e.register("empty", "app")
	a, b := e.put("s", "k", "a"), e.put("s", "k", "b")
	if err := e.splitShard("s", "shardId-000000000000", half); err != nil {
		t.Fatal(err)
	}
	if err := e.splitShard("empty", "shardId-000000000000", half); err != nil {
		t.Fatal(err)
	}
	ls, err := e.svc.ListShards(context.Background(), &ListShardsInput{StreamName: sp("s")})
	if err != nil || len(ls.Shards) != 3 || ls.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil {
		t.Fatalf("ListShards %+v %v", ls, err)
	}
	ending := ls.Shards[0].SequenceNumberRange.EndingSequenceNumber
	e.clock.Advance(time.Second)
	later := &Timestamp{e.clock.Now()}
	for _, tc := range []struct {
		name     string
		consumer string
		typ      string
		seq      *string
		want     string // the records before the end
		ts       *Timestamp
	}{
		{"after the last record", c.ConsumerARN, "AFTER_SEQUENCE_NUMBER", &b.SequenceNumber, "", nil},
		{"at the last record", c.ConsumerARN, "AT_SEQUENCE_NUMBER", &b.SequenceNumber, "b", nil},
		{"after the first record", c.ConsumerARN, "AFTER_SEQUENCE_NUMBER", &a.SequenceNumber, "b", nil},
		{"at the ending sequence number", c.ConsumerARN, "AT_SEQUENCE_NUMBER", ending, "", nil},
		{"after the ending sequence number", c.ConsumerARN, "AFTER_SEQUENCE_NUMBER", ending, "", nil},
		{"trim horizon", c.ConsumerARN, "TRIM_HORIZON", nil, "ab", nil},
		{"latest", c.ConsumerARN, "LATEST", nil, "", nil},
		{"trim horizon of an empty shard", ce.ConsumerARN, "TRIM_HORIZON", nil, "", nil},
		{"latest of an empty shard", ce.ConsumerARN, "LATEST", nil, "", nil},
		{"at a time after the last record", c.ConsumerARN, "AT_TIMESTAMP", nil, "", later},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub, err := e.svc.SubscribeToShard(context.Background(), &SubscribeToShardInput{
				ConsumerARN: &tc.consumer, ShardId: sp("shardId-000000000000"),
				StartingPosition: &StartingPosition{Type: &tc.typ, SequenceNumber: tc.seq, Timestamp: tc.ts},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			var got string
			for {
				ev, err := next(t, sub)
				if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
				for _, r := range ev.Records {
					got += string(r.Data)
				}
				if ev.ChildShards == nil {
					if ev.ContinuationSequenceNumber == nil {
						t.Fatalf("event without ChildShards or ContinuationSequenceNumber: %+v", ev)
					}
					continue
				}
				if ev.ContinuationSequenceNumber != nil {
					t.Fatalf("ContinuationSequenceNumber %s next to ChildShards", *ev.ContinuationSequenceNumber)
				}
				if len(ev.ChildShards) != 2 || ev.ChildShards[0].ParentShards[0] != "shardId-000000000000" {
					t.Fatalf("ChildShards %+v", ev.ChildShards)
				}
				break
			}
			if got != tc.want {
				t.Fatalf("records %q, want %q", got, tc.want)
			}
			if _, err := next(t, sub); err != io.EOF {
				t.Fatalf("after ChildShards: %v, want io.EOF", err)
			}
		})
	}
}
