package streams

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/mem"
)

// faultyEngine wraps an engine: appends fail while fail is set, and reads
// skip the offsets in lost, as the engine contract says a log with damaged
// records does.
type faultyEngine struct {
	engine.Engine
	mu   sync.Mutex
	fail error
	lost map[uint64]bool // by offset, for every log
}

func (f *faultyEngine) Log(ctx context.Context, name string) (engine.Log, error) {
	l, err := f.Engine.Log(ctx, name)
	if err != nil {
		return nil, err
	}
	return &faultyLog{Log: l, f: f}, nil
}

type faultyLog struct {
	engine.Log
	f *faultyEngine
}

func (l *faultyLog) Append(ctx context.Context, recs []engine.Record) (engine.AppendResult, error) {
	l.f.mu.Lock()
	err := l.f.fail
	l.f.mu.Unlock()
	if err != nil {
		return engine.AppendResult{}, err
	}
	return l.Log.Append(ctx, recs)
}

func (l *faultyLog) Read(ctx context.Context, from uint64, maxRecords, maxBytes int) ([]engine.StoredRecord, error) {
	for {
		recs, err := l.Log.Read(ctx, from, maxRecords, maxBytes)
		if err != nil || len(recs) == 0 {
			return recs, err
		}
		out := recs[:0]
		l.f.mu.Lock()
		for _, r := range recs {
			if !l.f.lost[r.Offset] {
				out = append(out, r)
			}
		}
		l.f.mu.Unlock()
		if len(out) > 0 {
			return out, nil
		}
		from = recs[len(recs)-1].Offset + 1 // all lost: go on after them
	}
}

func newFaultyEnv(t *testing.T) (*Service, *faultyEngine, *clock, *bytes.Buffer) {
	t.Helper()
	c := newClock()
	eo := mem.DefaultOptions()
	eo.Now = c.Now
	m := mem.New(eo)
	f := &faultyEngine{Engine: m, lost: map[uint64]bool{}}
	var logs bytes.Buffer
	opts := DefaultOptions()
	opts.Now = c.Now
	opts.TransitionDelay = 0
	opts.IteratorKey = []byte("test-key")
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	svc, err := New(context.Background(), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		svc.Close()
		m.Close()
	})
	return svc, f, c, &logs
}

// TestAppendFailuresLogged checks that failed appends are logged with their
// count, at most once per stream per 10 s, and that clients get Kinesis'
// per-record InternalFailure for them.
func TestAppendFailuresLogged(t *testing.T) {
	ctx := context.Background()
	svc, f, c, logs := newFaultyEnv(t)
	name := "s"
	if err := svc.CreateStream(ctx, &CreateStreamInput{StreamName: &name, ShardCount: ip(2)}); err != nil {
		t.Fatal(err)
	}
	put := func() (*PutRecordsOutput, error) {
		in := &PutRecordsInput{StreamName: &name}
		for i := range 10 {
			in.Records = append(in.Records, PutRecordsRequestEntry{Data: []byte("x"), PartitionKey: sp(fmt.Sprint(i))})
		}
		return svc.PutRecords(ctx, in)
	}
	f.mu.Lock()
	f.fail = fmt.Errorf("disk: append to s.0: write: %w", syscall.ENOSPC)
	f.mu.Unlock()
	for range 5 {
		out, err := put()
		if err != nil {
			t.Fatal(err)
		}
		if out.FailedRecordCount != 10 {
			t.Fatalf("FailedRecordCount = %d, want 10", out.FailedRecordCount)
		}
		for _, r := range out.Records {
			if r.ErrorCode == nil || *r.ErrorCode != "InternalFailure" || *r.ErrorMessage != "Internal service failure." || r.SequenceNumber != nil {
				t.Fatalf("failed record = %+v", r)
			}
		}
	}
	if _, err := svc.PutRecord(ctx, &PutRecordInput{StreamName: &name, PartitionKey: sp("k"), Data: []byte("x")}); err == nil {
		t.Fatal("PutRecord succeeded with appends failing")
	}
	if n := strings.Count(logs.String(), "records failed to append"); n != 1 {
		t.Fatalf("%d lines within 10 s, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "stream=s failed_records=10 ") || !strings.Contains(logs.String(), "no space left on device") {
		t.Fatalf("first line lacks the count or the cause:\n%s", logs.String())
	}
	// Once the window has passed, the next success reports the rest.
	c.Advance(11 * time.Second)
	f.mu.Lock()
	f.fail = nil
	f.mu.Unlock()
	if out, err := put(); err != nil || out.FailedRecordCount != 0 {
		t.Fatalf("PutRecords after the fault: %v, %v", out, err)
	}
	if n := strings.Count(logs.String(), "records failed to append"); n != 2 || !strings.Contains(logs.String(), "failed_records=41 ") {
		t.Fatalf("want a second line with the 41 failed records since the first:\n%s", logs.String())
	}
}

// TestGetRecordsSkipsLostRecords reads through records the engine lost:
// GetRecords returns every other record, an iterator inside the hole goes
// on after it, and a closed shard whose last records were lost is drained.
func TestGetRecordsSkipsLostRecords(t *testing.T) {
	ctx := context.Background()
	svc, f, _, _ := newFaultyEnv(t)
	name := "s"
	if err := svc.CreateStream(ctx, &CreateStreamInput{StreamName: &name, ShardCount: ip(1)}); err != nil {
		t.Fatal(err)
	}
	var seqs []string
	for i := range 30 {
		out, err := svc.PutRecord(ctx, &PutRecordInput{StreamName: &name, PartitionKey: sp("k"), Data: []byte(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, out.SequenceNumber)
	}
	f.mu.Lock()
	for o := uint64(10); o < 15; o++ {
		f.lost[o] = true
	}
	for o := uint64(25); o < 30; o++ { // the shard's last records
		f.lost[o] = true
	}
	f.mu.Unlock()
	iter := func(typ string, seq *string) string {
		out, err := svc.GetShardIterator(ctx, &GetShardIteratorInput{StreamName: &name, ShardId: sp("shardId-000000000000"), ShardIteratorType: &typ, StartingSequenceNumber: seq})
		if err != nil {
			t.Fatal(err)
		}
		return *out.ShardIterator
	}
	get := func(it string, limit int32) *GetRecordsOutput {
		out, err := svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: &it, Limit: &limit})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	var got []string
	it := iter("TRIM_HORIZON", nil)
	for range 20 {
		out := get(it, 4)
		for _, r := range out.Records {
			got = append(got, string(r.Data))
		}
		if len(out.Records) == 0 {
			break
		}
		it = *out.NextShardIterator
	}
	want := "0 1 2 3 4 5 6 7 8 9 15 16 17 18 19 20 21 22 23 24"
	if strings.Join(got, " ") != want {
		t.Fatalf("records read: %v, want %s", got, want)
	}
	out := get(iter("AT_SEQUENCE_NUMBER", &seqs[12]), 1)
	if len(out.Records) != 1 || string(out.Records[0].Data) != "15" || out.Records[0].SequenceNumber != seqs[15] {
		t.Fatalf("AT_SEQUENCE_NUMBER of a lost record read %+v, want record 15", out.Records)
	}

	// Close the shard: its last five records are lost, so a reader past
	// record 24 is at its end and gets the children.
	if err := svc.SplitShard(ctx, &SplitShardInput{StreamName: &name, ShardToSplit: sp("shardId-000000000000"), NewStartingHashKey: sp("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	out = get(iter("AFTER_SEQUENCE_NUMBER", &seqs[24]), 10)
	if len(out.Records) != 0 || out.NextShardIterator != nil || len(out.ChildShards) != 2 {
		t.Fatalf("GetRecords at the lost end of a closed shard: %d records, next %v, %d children", len(out.Records), out.NextShardIterator, len(out.ChildShards))
	}
}
