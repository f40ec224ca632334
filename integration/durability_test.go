package integration

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// ackedRecord is one record whose PutRecords call returned success.
type ackedRecord struct {
	shard string
	seq   string
	data  string
}

// TestDurabilityKill9 puts records from concurrent producers, kills the
// server with SIGKILL while they run, restarts it on the same data directory
// and reads every acknowledged record back, intact and in order per shard.
func TestDurabilityKill9(t *testing.T) { durabilityKill9(t, false) }

// TestDurabilityKill9Encrypted is TestDurabilityKill9 on a stream encrypted
// at rest: recovery cuts torn encrypted frames as plain ones, and every
// acknowledged record decrypts after the restart.
func TestDurabilityKill9Encrypted(t *testing.T) { durabilityKill9(t, true) }

func durabilityKill9(t *testing.T, encrypt bool) {
	if testing.Short() {
		t.Skip("starts and kills a server process")
	}
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, "--transition-delay", "0s")
	ctx := context.Background()
	setup := srv.client()
	const stream = "durable"
	if _, err := setup.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(4)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, setup, stream)
	if encrypt {
		if _, err := setup.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String(stream), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
			t.Fatal(err)
		}
		waitActive(t, setup, stream)
	}

	var (
		mu    sync.Mutex
		acked []ackedRecord
		wg    sync.WaitGroup
	)
	stop := make(chan struct{})
	const producers = 8
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := srv.client()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				entries := make([]types.PutRecordsRequestEntry, 50)
				for i := range entries {
					entries[i] = types.PutRecordsRequestEntry{
						PartitionKey: aws.String(fmt.Sprintf("p%d-k%d", p, i%7)),
						Data:         fmt.Appendf(nil, "producer %d batch %d record %d", p, n, i),
					}
				}
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				out, err := c.PutRecords(cctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
				cancel()
				if err != nil {
					return // the server is gone
				}
				mu.Lock()
				for i, r := range out.Records {
					if r.ErrorCode == nil {
						acked = append(acked, ackedRecord{shard: *r.ShardId, seq: *r.SequenceNumber, data: string(entries[i].Data)})
					}
				}
				mu.Unlock()
			}
		}()
	}
	// Let the producers get going, then kill the server under load.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 5000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv.kill()
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no record was acknowledged before the kill")
	}
	t.Logf("%d records acknowledged before SIGKILL", len(acked))

	srv2 := startServer(t, dataDir, "--transition-delay", "0s")
	c := srv2.client()
	waitActive(t, c, stream)
	stored := readAll(t, c, stream)

	// Every acknowledged record is present with its data, and acknowledged
	// records appear in sequence-number order within their shard.
	bySeq := map[string]map[string]string{}
	for shard, recs := range stored {
		m := map[string]string{}
		var prev *big.Int
		for _, r := range recs {
			seq, ok := new(big.Int).SetString(*r.SequenceNumber, 10)
			if !ok {
				t.Fatalf("bad sequence number %q", *r.SequenceNumber)
			}
			if prev != nil && seq.Cmp(prev) <= 0 {
				t.Fatalf("shard %s: sequence numbers out of order: %s after %s", shard, seq, prev)
			}
			prev = seq
			m[*r.SequenceNumber] = string(r.Data)
			if encrypt && r.EncryptionType != types.EncryptionTypeKms {
				t.Fatalf("shard %s: record %s reports EncryptionType %q on an encrypted stream", shard, seq, r.EncryptionType)
			}
		}
		bySeq[shard] = m
	}
	for _, a := range acked {
		got, ok := bySeq[a.shard][a.seq]
		if !ok {
			t.Fatalf("acknowledged record %s/%s (%q) lost after SIGKILL", a.shard, a.seq, a.data)
		}
		if got != a.data {
			t.Fatalf("record %s/%s: data %q, want %q", a.shard, a.seq, got, a.data)
		}
	}
}

// readAll reads every shard of a stream from TRIM_HORIZON to its current end.
func readAll(t *testing.T, c *kinesis.Client, stream string) map[string][]types.Record {
	t.Helper()
	ctx := context.Background()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]types.Record{}
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			res, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			if err != nil {
				t.Fatal(err)
			}
			out[*sh.ShardId] = append(out[*sh.ShardId], res.Records...)
			if len(res.Records) == 0 && aws.ToInt64(res.MillisBehindLatest) == 0 {
				break
			}
			iter = res.NextShardIterator
		}
	}
	return out
}

// TestGracefulShutdown stops the server with SIGTERM, expects a clean exit,
// and finds the stream and its records after a restart.
func TestGracefulShutdown(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, "--transition-delay", "0s")
	ctx := context.Background()
	c := srv.client()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("kept"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, "kept")
	put, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("kept"), PartitionKey: aws.String("k"), Data: []byte("still here")})
	if err != nil {
		t.Fatal(err)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("kept"), ShardId: aws.String("shardId-000000000000"),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	srv.stop(t)

	srv2 := startServer(t, dataDir, "--transition-delay", "0s")
	c2 := srv2.client()
	recs := readAll(t, c2, "kept")["shardId-000000000000"]
	if len(recs) != 1 || string(recs[0].Data) != "still here" || aws.ToString(recs[0].SequenceNumber) != aws.ToString(put.SequenceNumber) {
		t.Fatalf("after restart: %+v", recs)
	}
	// An iterator issued before the restart is still good after it.
	res, err := c2.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatalf("iterator from before the restart: %v", err)
	}
	if len(res.Records) != 1 || string(res.Records[0].Data) != "still here" {
		t.Fatalf("iterator from before the restart read %+v", res.Records)
	}
}

// TestShutdownEndsSubscriptions: SIGTERM with a SubscribeToShard response
// open still exits promptly, and the subscriber sees its stream end.
func TestShutdownEndsSubscriptions(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--transition-delay", "0s", "--shutdown-timeout", "30s")
	c := srv.h2cClient()
	name := newStream(t, c, 1)
	consumer := registerConsumer(t, c, streamARNOf(t, c, name), "stopper")
	es := subscribe(t, c, consumer, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	defer es.Close()
	start := time.Now()
	srv.stop(t)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("shutdown with an open subscription took %v", d)
	}
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-es.Events():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the subscription did not end when the server stopped")
		}
	}
}
