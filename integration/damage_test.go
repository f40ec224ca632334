package integration

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/runneltest"
)

// lockedBuffer collects a server's log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestGetRecordsThroughDamage damages one stored batch of a shard on disk
// and reads the shard with the SDK after a restart: GetRecords returns every
// other record with the sequence numbers PutRecords gave, moves past the lost
// ones, and an iterator positioned inside them continues after them.
func TestGetRecordsThroughDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	srv, err := runneltest.Start(runneltest.WithDataDir(dir), runneltest.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	c := srv.NewClient()
	name := "damaged"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	const batches, per = 40, 50
	var seqs []string
	for b := range batches {
		in := &kinesis.PutRecordsInput{StreamName: aws.String(name)}
		for i := range per {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{
				PartitionKey: aws.String("k"), Data: []byte(fmt.Sprintf("record-%05d-%s", b*per+i, strings.Repeat("x", 80))),
			})
		}
		out, err := c.PutRecords(ctx, in)
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: %v", err)
		}
		for _, r := range out.Records {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	// Each PutRecords is one frame of the shard's segment: flip a byte in
	// the records of the eleventh (records 500..549).
	segs, _ := filepath.Glob(filepath.Join(dir, "logs", "*", "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %v, want one", segs)
	}
	seg, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	pos := 32 // the segment header
	for range 10 {
		pos += int(binary.LittleEndian.Uint32(seg[pos:]))
	}
	seg[pos+100] ^= 0x01
	if err := os.WriteFile(segs[0], seg, 0o600); err != nil {
		t.Fatal(err)
	}

	srv, err = runneltest.Start(runneltest.WithDataDir(dir), runneltest.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c = srv.NewClient()
	iter := func(typ types.ShardIteratorType, seq *string) *string {
		out, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: typ, StartingSequenceNumber: seq})
		if err != nil {
			t.Fatal(err)
		}
		return out.ShardIterator
	}
	var got []int
	it := iter(types.ShardIteratorTypeTrimHorizon, nil)
	for range 100 {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it, Limit: aws.Int32(120)})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		if len(out.Records) == 0 {
			break
		}
		for _, r := range out.Records {
			var n int
			fmt.Sscanf(string(r.Data), "record-%05d-", &n)
			if aws.ToString(r.SequenceNumber) != seqs[n] {
				t.Fatalf("record %d has sequence number %s, PutRecords gave %s", n, aws.ToString(r.SequenceNumber), seqs[n])
			}
			got = append(got, n)
		}
		it = out.NextShardIterator
	}
	if len(got) != batches*per-per {
		t.Fatalf("read %d records, want %d", len(got), batches*per-per)
	}
	for i, n := range got {
		want := i
		if i >= 500 {
			want = i + per
		}
		if n != want {
			t.Fatalf("record %d read is %d, want %d", i, n, want)
		}
	}
	out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter(types.ShardIteratorTypeAtSequenceNumber, &seqs[520]), Limit: aws.Int32(1)})
	if err != nil || len(out.Records) != 1 || aws.ToString(out.Records[0].SequenceNumber) != seqs[550] {
		t.Fatalf("GetRecords AT_SEQUENCE_NUMBER of a lost record: %v, %v; want record 550", out, err)
	}
	if !strings.Contains(logs.String(), "disk: damaged records skipped") || !strings.Contains(logs.String(), "first_offset=500 last_offset=549") {
		t.Fatalf("the loss is not logged:\n%s", logs.String())
	}
}
