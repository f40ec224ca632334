package streams

import (
	"context"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/metrics"
)

func TestCheckpointBacklog(t *testing.T) {
	e := newEnv(t)
	e.create("s", 2)
	ctx := context.Background()
	var last *PutRecordOutput
	var seqs []string
	for range 6 {
		// Explicit hash key 0: every record to shard 0.
		out, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("k"), ExplicitHashKey: sp("0"), Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		last = out
		seqs = append(seqs, out.SequenceNumber)
		e.clock.Advance(2 * time.Second)
	}
	if last.ShardId != "shardId-000000000000" {
		t.Fatalf("records went to %s", last.ShardId)
	}
	tests := []struct {
		name      string
		shard, cp string
		want      Backlog
		wantOK    bool
	}{
		{"nothing processed", "shardId-000000000000", "TRIM_HORIZON", Backlog{Records: 6, Millis: 10000}, true},
		{"after the second", "shardId-000000000000", seqs[1], Backlog{Records: 4, Millis: 8000}, true},
		{"after the last", "shardId-000000000000", seqs[5], Backlog{}, true},
		{"empty shard", "shardId-000000000001", "TRIM_HORIZON", Backlog{}, true},
		{"shard end", "shardId-000000000001", "SHARD_END", Backlog{}, true},
		{"latest: unknown position", "shardId-000000000000", "LATEST", Backlog{}, false},
		{"another shard's number", "shardId-000000000001", seqs[1], Backlog{}, false},
		{"no such shard", "shardId-000000000009", "TRIM_HORIZON", Backlog{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, ok, err := e.svc.CheckpointBacklog(ctx, "s", tt.shard, tt.cp)
			if err != nil || ok != tt.wantOK || b != tt.want {
				t.Errorf("got %+v, %v, %v; want %+v, %v", b, ok, err, tt.want, tt.wantOK)
			}
		})
	}
	if _, ok, err := e.svc.CheckpointBacklog(ctx, "nope", "shardId-000000000000", "TRIM_HORIZON"); ok || err != nil {
		t.Errorf("unknown stream: %v, %v", ok, err)
	}
}

// TestServiceMetrics: the service counts on its stream's counters, tells
// the wire layer's Call which stream a request acted on, and follows
// enhanced monitoring and deletion.
func TestServiceMetrics(t *testing.T) {
	reg, err := metrics.New(metrics.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	e := newEnv(t, func(o *Options) { o.Metrics = reg })
	e.create("s", 1)
	ctx := context.Background()

	var call metrics.Call
	call.Reset(ctx)
	if _, err := e.svc.PutRecords(&call, &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{
		{PartitionKey: sp("ab"), Data: []byte("12345")},
		{PartitionKey: sp("c"), Data: []byte("1")},
	}}); err != nil {
		t.Fatal(err)
	}
	st := call.Stream()
	if st == nil || st.Name() != "s" || st != reg.Stream("s", e.meta("s").ID) {
		t.Fatalf("PutRecords set stream %v on the call", st)
	}
	call.Reset(ctx)
	got := e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 10)
	if len(got.Records) != 2 {
		t.Fatalf("read %d records", len(got.Records))
	}
	call.Reset(ctx)
	if _, err := e.svc.GetRecords(&call, &GetRecordsInput{ShardIterator: got.NextShardIterator}); err != nil {
		t.Fatal(err)
	}
	if call.Stream() != st {
		t.Error("GetRecords did not name its stream")
	}

	// The counters, as a scrape shows them.
	for name, want := range map[string]float64{
		"kinesis_IncomingRecords":              2,
		"kinesis_IncomingBytes":                9,
		"kinesis_PutRecords_SuccessfulRecords": 2,
		"kinesis_GetRecords_Records":           2,
		"kinesis_GetRecords_Bytes":             9,
		"kinesis_GetRecords_Success":           2,
	} {
		if v, ok := gathered(t, reg, name, "s"); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if _, err := e.svc.EnableEnhancedMonitoring(ctx, &EnhancedMonitoringInput{StreamName: sp("s"), ShardLevelMetrics: []string{"IncomingBytes"}}); err != nil {
		t.Fatal(err)
	}
	if set := reg.Stream("s", e.meta("s").ID).ShardLevelMetrics(); set != metrics.ShardIncomingBytes {
		t.Errorf("after EnableEnhancedMonitoring: set %b", set)
	}
	if _, err := e.svc.DisableEnhancedMonitoring(ctx, &EnhancedMonitoringInput{StreamName: sp("s"), ShardLevelMetrics: []string{"ALL"}}); err != nil {
		t.Fatal(err)
	}
	if set := st.ShardLevelMetrics(); set != 0 {
		t.Errorf("after DisableEnhancedMonitoring: set %b", set)
	}
	// Resharding: the children get counters, the parent is marked closed.
	if err := e.splitShard("s", "shardId-000000000000", half); err != nil {
		t.Fatal(err)
	}
	e.put("s", "after-split", "x") // applies the split
	var open []string
	for _, r := range reg.ShardRates("s") {
		if r.Open {
			open = append(open, r.Shard)
		}
	}
	if len(reg.ShardRates("s")) != 3 || len(open) != 2 || open[0] != "shardId-000000000001" {
		t.Errorf("after a split: shards %+v", reg.ShardRates("s"))
	}
	if err := e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamName: sp("s")}); err != nil {
		t.Fatal(err)
	}
	if _, ok := gathered(t, reg, "kinesis_IncomingRecords", "s"); ok {
		t.Error("a deleted stream is still exported")
	}
}

// gathered returns the value of the counter name of stream from reg.
func gathered(t *testing.T, reg *metrics.Registry, name, stream string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "stream" && l.GetValue() == stream {
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}
