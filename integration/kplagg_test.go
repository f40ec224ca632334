package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/kpl"
)

// kplUserRecord is a user record as kplagg/kplagg.js reads and writes it.
type kplUserRecord struct {
	PartitionKey      string  `json:"partitionKey"`
	ExplicitHashKey   string  `json:"explicitHashKey,omitempty"`
	SequenceNumber    string  `json:"sequenceNumber,omitempty"`
	SubSequenceNumber *uint64 `json:"subSequenceNumber,omitempty"`
	Data              []byte  `json:"data"` // base64 in JSON, as the script expects
}

// kplAggregate is an aggregate kplagg.js built.
type kplAggregate struct {
	PartitionKey    string `json:"partitionKey"`
	ExplicitHashKey string `json:"explicitHashKey,omitempty"`
	Data            []byte `json:"data"`
	Records         int    `json:"records"`
}

// TestKPLAggregationInterop checks package kpl against aws-kinesis-agg, an
// independent implementation of the KPL aggregated-record format (the npm
// package, run by kplagg/kplagg.js), through a server: aggregates built by
// one are put, read back with GetRecords and expanded by the other. It needs
// `node` on PATH and the package installed in kplagg/node_modules (`npm ci`
// there; `make setup` does it).
func TestKPLAggregationInterop(t *testing.T) {
	missing := t.Skip
	if os.Getenv("CI") != "" {
		missing = t.Fatal
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not on PATH; the KPL aggregation interop test needs Node.js")
	}
	if _, err := os.Stat(filepath.Join("kplagg", "node_modules", "aws-kinesis-agg")); err != nil {
		missing("aws-kinesis-agg not installed; `make setup` runs `npm ci` in integration/kplagg")
	}
	c := sharedServer(t).client()
	recs := kplTestRecords(3000)

	t.Run("same bytes", func(t *testing.T) {
		few := recs[:200]
		var js struct{ Aggregates []kplAggregate }
		runKPLAgg(t, node, "aggregate", map[string]any{"records": few}, &js)
		a := kpl.NewAggregator()
		for _, r := range few {
			if err := a.Add(r.PartitionKey, r.ExplicitHashKey, r.Data); err != nil {
				t.Fatal(err)
			}
		}
		ours := a.Drain()
		if len(js.Aggregates) != 1 {
			t.Fatalf("aws-kinesis-agg built %d aggregates of 200 small records, want 1", len(js.Aggregates))
		}
		theirs := js.Aggregates[0]
		if !bytes.Equal(ours.Data, theirs.Data) || ours.PartitionKey != theirs.PartitionKey || ours.ExplicitHashKey != theirs.ExplicitHashKey {
			t.Fatalf("aggregates differ: ours %d bytes put with %q/%q, aws-kinesis-agg's %d bytes put with %q/%q",
				len(ours.Data), ours.PartitionKey, ours.ExplicitHashKey, len(theirs.Data), theirs.PartitionKey, theirs.ExplicitHashKey)
		}
	})

	t.Run("go aggregates and aws-kinesis-agg expands", func(t *testing.T) {
		stream := newStream(t, c, 1)
		a := kpl.NewAggregator()
		var aggs []kpl.Aggregate
		for _, r := range recs {
			err := a.Add(r.PartitionKey, r.ExplicitHashKey, r.Data)
			if errors.Is(err, kpl.ErrFull) {
				aggs = append(aggs, a.Drain())
				err = a.Add(r.PartitionKey, r.ExplicitHashKey, r.Data)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		aggs = append(aggs, a.Drain())
		if len(aggs) < 3 {
			t.Fatalf("%d aggregates; the records should fill at least 3", len(aggs))
		}
		for _, agg := range aggs {
			if n := len(agg.Data) + len(agg.PartitionKey); n > kpl.DefaultMaxSize {
				t.Fatalf("aggregate of %d bytes", n)
			}
			putKPL(t, c, stream, agg.PartitionKey, agg.ExplicitHashKey, agg.Data)
		}
		putKPL(t, c, stream, "plain", "", []byte("not an aggregate"))
		stored := readAllKPL(t, c, stream, len(aggs)+1)
		in := make([]kplUserRecord, len(stored))
		for i, r := range stored {
			in[i] = kplUserRecord{PartitionKey: aws.ToString(r.PartitionKey), SequenceNumber: aws.ToString(r.SequenceNumber), Data: r.Data}
		}
		var out struct{ Records []kplUserRecord }
		runKPLAgg(t, node, "deaggregate", map[string]any{"records": in}, &out)
		if len(out.Records) != len(recs)+1 {
			t.Fatalf("aws-kinesis-agg expanded %d records, want %d", len(out.Records), len(recs)+1)
		}
		i := 0
		for ai := range aggs {
			for sub := 0; sub < aggs[ai].Records; sub, i = sub+1, i+1 {
				got, want := out.Records[i], recs[i]
				// aws-kinesis-agg reports explicit_hash_key_table[0] for a
				// record without an explicit hash key (protobufjs's default
				// of 0 for an absent index), so only set keys are compared.
				if got.PartitionKey != want.PartitionKey || !bytes.Equal(got.Data, want.Data) ||
					want.ExplicitHashKey != "" && got.ExplicitHashKey != want.ExplicitHashKey ||
					got.SequenceNumber != aws.ToString(stored[ai].SequenceNumber) || got.SubSequenceNumber == nil || *got.SubSequenceNumber != uint64(sub) {
					t.Fatalf("user record %d (aggregate %d, sub-record %d): %+v, want %+v", i, ai, sub, got, want)
				}
			}
		}
		if plain := out.Records[i]; plain.PartitionKey != "plain" || string(plain.Data) != "not an aggregate" || plain.SubSequenceNumber != nil {
			t.Fatalf("plain record expanded to %+v", plain)
		}
	})

	t.Run("aws-kinesis-agg aggregates and go expands", func(t *testing.T) {
		stream := newStream(t, c, 1)
		var js struct{ Aggregates []kplAggregate }
		runKPLAgg(t, node, "aggregate", map[string]any{"records": recs}, &js)
		if len(js.Aggregates) < 3 {
			t.Fatalf("%d aggregates; the records should fill at least 3", len(js.Aggregates))
		}
		for _, agg := range js.Aggregates {
			putKPL(t, c, stream, agg.PartitionKey, agg.ExplicitHashKey, agg.Data)
		}
		i := 0
		for ai, r := range readAllKPL(t, c, stream, len(js.Aggregates)) {
			got, ok := kpl.Deaggregate(kpl.Record{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data})
			if !ok || len(got) != js.Aggregates[ai].Records {
				t.Fatalf("aggregate %d: %d records (aggregated %v), want %d", ai, len(got), ok, js.Aggregates[ai].Records)
			}
			for sub, g := range got {
				want := recs[i]
				if g.PartitionKey != want.PartitionKey || g.ExplicitHashKey != want.ExplicitHashKey || !bytes.Equal(g.Data, want.Data) || g.SubSequenceNumber != uint64(sub) {
					t.Fatalf("user record %d: %+v, want %+v", i, g, want)
				}
				i++
			}
		}
		if i != len(recs) {
			t.Fatalf("%d user records, want %d", i, len(recs))
		}
	})
}

// kplTestRecords makes n user records of mixed keys and sizes, a quarter
// with explicit hash keys.
func kplTestRecords(n int) []kplUserRecord {
	rng := rand.New(rand.NewPCG(7, 11))
	recs := make([]kplUserRecord, n)
	for i := range recs {
		r := kplUserRecord{PartitionKey: fmt.Sprintf("key-%d-ü", rng.IntN(50))}
		if rng.IntN(4) == 0 {
			r.ExplicitHashKey = fmt.Sprint(rng.Uint64())
		}
		r.Data = make([]byte, 1+rng.IntN(2000))
		for j := range r.Data {
			r.Data[j] = byte(rng.Uint32())
		}
		recs[i] = r
	}
	return recs
}

// runKPLAgg runs kplagg.js in mode with in as its JSON input and decodes its
// JSON output into out.
func runKPLAgg(t *testing.T, node, mode string, in, out any) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "kplagg.js", mode)
	cmd.Dir = "kplagg"
	cmd.Stdin = bytes.NewReader(body)
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("kplagg.js %s: %v\n%s", mode, err, stderr.Bytes())
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		t.Fatalf("kplagg.js %s output: %v", mode, err)
	}
}

// putKPL puts one record.
func putKPL(t *testing.T, c *kinesis.Client, stream, pk, ehk string, data []byte) {
	t.Helper()
	in := &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(pk), Data: data}
	if ehk != "" {
		in.ExplicitHashKey = aws.String(ehk)
	}
	if _, err := c.PutRecord(context.Background(), in); err != nil {
		t.Fatalf("put %d bytes with key %q: %v", len(data), pk, err)
	}
}

// readAllKPL reads the one shard of stream from its start until it has n
// records.
func readAllKPL(t *testing.T, c *kinesis.Client, stream string, n int) []types.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	var recs []types.Record
	iter := it.ShardIterator
	for len(recs) < n {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			t.Fatalf("get records after %d of %d: %v", len(recs), n, err)
		}
		recs = append(recs, out.Records...)
		iter = out.NextShardIterator
	}
	return recs
}
