package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/runneltest"
)

// tailProc is a `runnel tail` running in the background.
type tailProc struct {
	out, errb syncBuffer
	cancel    context.CancelFunc
	done      chan int
}

func startTail(args ...string) *tailProc {
	ctx, cancel := context.WithCancel(context.Background())
	p := &tailProc{cancel: cancel, done: make(chan int, 1)}
	go func() {
		p.done <- run(ctx, append([]string{"tail", "--poll-interval", "50ms"}, args...), &p.out, &p.errb, mapEnv(nil))
	}()
	return p
}

// lines waits until the output has n lines and returns them.
func (p *tailProc) lines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(p.out.String(), "\n") < n {
		select {
		case code := <-p.done:
			t.Fatalf("tail exited %d early: %s", code, p.errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail printed %d lines, want %d:\n%s\nstderr: %s", strings.Count(p.out.String(), "\n"), n, p.out.String(), p.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return strings.Split(strings.TrimSuffix(p.out.String(), "\n"), "\n")
}

func (p *tailProc) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	if code := <-p.done; code != exitOK {
		t.Fatalf("tail exited %d: %s", code, p.errb.String())
	}
}

type tailRecord struct {
	ShardId, SequenceNumber, PartitionKey string
	ApproximateArrivalTimestamp           float64
	Data                                  string
}

func decodeTail(t *testing.T, lines []string) []tailRecord {
	t.Helper()
	var out []tailRecord
	for _, l := range lines {
		var r tailRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, r)
	}
	return out
}

func TestTailFollowsResharding(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	put := func(prefix string, n int) {
		for i := range n {
			if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(fmt.Sprint(prefix, i)), Data: []byte(fmt.Sprint(prefix, i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("before", 6)
	p := startTail("--endpoint", srv.Endpoint(), "--from", "trim-horizon", "--format", "json", "s")
	defer p.cancel()
	decodeTail(t, p.lines(t, 6))

	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String("s"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
		t.Fatal(err)
	}
	waitStreamActive(t, kc, "s")
	put("after", 12)
	decodeTail(t, p.lines(t, 18))
	// Merge the children back: their records come before the merged
	// shard's.
	if _, err := kc.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String("s"), ShardToMerge: aws.String("shardId-000000000002"),
		AdjacentShardToMerge: aws.String("shardId-000000000003")}); err != nil {
		t.Fatal(err)
	}
	waitStreamActive(t, kc, "s")
	put("merged", 12)
	recs := decodeTail(t, p.lines(t, 30))
	p.stop(t)
	seen := map[string]bool{}
	parentDone, mergedStarted := false, false
	for i, r := range recs {
		data, _ := base64.StdEncoding.DecodeString(r.Data)
		if seen[string(data)] {
			t.Errorf("record %q printed twice", data)
		}
		seen[string(data)] = true
		if r.PartitionKey != string(data) || len(r.SequenceNumber) != 56 || r.ApproximateArrivalTimestamp == 0 {
			t.Errorf("line %d: %+v", i, r)
		}
		switch r.ShardId {
		case "shardId-000000000004":
			mergedStarted = true
		case "shardId-000000000002", "shardId-000000000003":
			parentDone = true
			if mergedStarted {
				t.Errorf("a record of a merged parent after the merged shard's: %+v", r)
			}
		case "shardId-000000000000":
			if parentDone {
				t.Errorf("a record of the parent after its children's: %+v", r)
			}
		}
	}
	if len(seen) != 30 || !mergedStarted {
		t.Errorf("%d distinct records, want 30 (merged shard read: %v)", len(seen), mergedStarted)
	}
	if !strings.Contains(p.errb.String(), "shardId-000000000000 ended; following shardId-000000000002, shardId-000000000003") {
		t.Errorf("no notice of the split on stderr: %q", p.errb.String())
	}
	if !strings.Contains(p.errb.String(), "ended; following shardId-000000000004") {
		t.Errorf("no notice of the merge on stderr: %q", p.errb.String())
	}
}

func waitStreamActive(t *testing.T, kc *kinesis.Client, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && d.StreamDescriptionSummary.StreamStatus == "ACTIVE" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream %s not ACTIVE: %v", name, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTailPositionsAndFormats(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	var seqs []string
	var times []time.Time
	for i, d := range []string{"zero", "one\nline-two", `{"n":2}`, "three"} {
		if i == 2 {
			time.Sleep(20 * time.Millisecond) // a time between records 1 and 2
			times = append(times, time.Now())
			time.Sleep(20 * time.Millisecond)
		}
		out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(d)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}

	// text: quoted, one line per record, from a sequence number.
	p := startTail("s", "--endpoint", srv.Endpoint(), "--from", seqs[1])
	lines := p.lines(t, 3)
	p.stop(t)
	f := strings.Fields(lines[0])
	if len(lines) != 3 || len(f) != 5 || f[1] != "shardId-000000000000" || f[2] != seqs[1] || f[3] != `"k1"` || f[4] != strconv.Quote("one\nline-two") {
		t.Errorf("text from %s:\n%s", seqs[1], strings.Join(lines, "\n"))
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", f[0]); err != nil {
		t.Errorf("arrival time %q: %v", f[0], err)
	}

	// hex, from a time.
	p = startTail("--endpoint", srv.Endpoint(), "--format", "hex", "--from", times[0].UTC().Format(time.RFC3339Nano), "s")
	lines = p.lines(t, 2)
	p.stop(t)
	if len(lines) != 2 || !strings.HasSuffix(lines[0], " "+hex.EncodeToString([]byte(`{"n":2}`))) || !strings.Contains(lines[1], seqs[3]) {
		t.Errorf("hex from %s:\n%s", times[0], strings.Join(lines, "\n"))
	}

	// latest: only what comes after the start.
	p = startTail("--endpoint", srv.Endpoint(), "--format", "json", "s")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.errb.String(), "following s") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("new"), Data: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	recs := decodeTail(t, p.lines(t, 1))
	p.stop(t)
	if len(recs) != 1 || recs[0].PartitionKey != "new" {
		t.Errorf("latest: %+v", recs)
	}
}

func TestTailErrors(t *testing.T) {
	srv := runneltest.NewServer(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"tail"}, exitUsage, "name the stream"},
		{[]string{"tail", "s", "--format", "xml"}, exitUsage, "use text, json or hex"},
		{[]string{"tail", "s", "--from", "yesterday"}, exitUsage, "RFC 3339"},
		{[]string{"tail", "a", "b"}, exitUsage, "give one stream"},
		{[]string{"tail", "--endpoint", srv.Endpoint(), "missing"}, exitError, "ResourceNotFoundException"},
	} {
		code, _, errs := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.msg)
		}
	}
}
