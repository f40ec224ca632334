package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	dto "github.com/prometheus/client_model/go"

	"github.com/runnel/runnel/internal/metrics/metricstest"
)

// cloudWatchStreamMetrics are the stream-level metrics of Kinesis Data
// Streams in CloudWatch (AWS/Kinesis namespace, StreamName dimension), as
// listed in the developer guide's "Monitoring the Amazon Kinesis Data
// Streams Service with Amazon CloudWatch".
var cloudWatchStreamMetrics = []string{
	"GetRecords.Bytes",
	"GetRecords.IteratorAgeMilliseconds",
	"GetRecords.Latency",
	"GetRecords.Records",
	"GetRecords.Success",
	"IncomingBytes",
	"IncomingRecords",
	"PutRecord.Bytes",
	"PutRecord.Latency",
	"PutRecord.Success",
	"PutRecords.Bytes",
	"PutRecords.Latency",
	"PutRecords.Records",
	"PutRecords.Success",
	"PutRecords.TotalRecords",
	"PutRecords.SuccessfulRecords",
	"PutRecords.FailedRecords",
	"PutRecords.ThrottledRecords",
	"ReadProvisionedThroughputExceeded",
	"SubscribeToShard.RateExceeded",
	"SubscribeToShard.Success",
	"SubscribeToShardEvent.Bytes",
	"SubscribeToShardEvent.MillisBehindLatest",
	"SubscribeToShardEvent.Records",
	"SubscribeToShardEvent.Success",
	"WriteProvisionedThroughputExceeded",
}

// cloudWatchShardMetrics are the enhanced (shard-level) metrics, the
// ShardLevelMetrics of EnableEnhancedMonitoring.
var cloudWatchShardMetrics = []string{
	"IncomingBytes",
	"IncomingRecords",
	"IteratorAgeMilliseconds",
	"OutgoingBytes",
	"OutgoingRecords",
	"ReadProvisionedThroughputExceeded",
	"WriteProvisionedThroughputExceeded",
}

// promName is a CloudWatch metric's name on /metrics.
func promName(prefix, cw string) string { return prefix + strings.ReplaceAll(cw, ".", "_") }

// metricValue is the value of a scraped series (metricstest.Value).
var metricValue = metricstest.Value

// scrapeMetrics fetches and parses base+"/metrics" with Prometheus' parser.
func scrapeMetrics(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
	}
	fams, err := metricstest.Parse(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// shardFamilies lists the kinesis_shard_ families with a series of stream.
func shardFamilies(fams map[string]*dto.MetricFamily, stream string) map[string]bool {
	out := map[string]bool{}
	for name := range fams {
		if !strings.HasPrefix(name, "kinesis_shard_") {
			continue
		}
		if _, ok := metricValue(fams, name, "stream", stream); ok {
			out[name] = true
		}
	}
	return out
}

// TestMetricsAfterTraffic drives known traffic through a real server with
// the SDK and checks the scrape against CloudWatch's metric list.
func TestMetricsAfterTraffic(t *testing.T) {
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	s := startServer(t, t.TempDir(), "--transition-delay", "0s", "--admin-listen", admin)
	base := "http://" + admin
	c := s.client()
	ctx := context.Background()
	const name = "metered"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)

	// Writes: 3 PutRecord of 10+2 bytes, 2 PutRecords of 50 records of
	// 20+3 bytes.
	for i := range 3 {
		if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String(fmt.Sprintf("k%d", i)), Data: []byte("0123456789")}); err != nil {
			t.Fatal(err)
		}
	}
	for b := range 2 {
		var recs []types.PutRecordsRequestEntry
		for i := range 50 {
			recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("p%02d", i)), Data: []byte(fmt.Sprintf("record-%d-%011d", b, i))})
		}
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(name), Records: recs})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: %v, %v failed", err, out)
		}
	}
	const wantRecords, wantBytes = 103, 3*12 + 100*23

	// Reads: each shard from its start until an empty answer.
	getCalls, perShard := 0, map[string][2]int{} // records, bytes
	for _, sid := range []string{"shardId-000000000000", "shardId-000000000001"} {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(name), ShardId: aws.String(sid), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(40)})
			if err != nil {
				t.Fatal(err)
			}
			getCalls++
			if len(out.Records) == 0 {
				break
			}
			n := perShard[sid]
			for _, r := range out.Records {
				n[0]++
				n[1] += len(r.Data) + len(aws.ToString(r.PartitionKey))
			}
			perShard[sid] = n
			iter = out.NextShardIterator
		}
	}
	if got := perShard["shardId-000000000000"][0] + perShard["shardId-000000000001"][0]; got != wantRecords {
		t.Fatalf("read %d records, want %d", got, wantRecords)
	}

	// Enhanced fan-out: one subscription reads shard 0; a second one at
	// once is refused.
	arn := registerConsumer(t, c, streamARNOf(t, c, name), "watcher")
	es := subscribe(t, c, arn, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	defer es.Close()
	got := readRecords(es, perShard["shardId-000000000000"][0], 20*time.Second)
	if got.err != nil {
		t.Fatal(got.err)
	}
	_, err := c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: &arn, ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	var inUse *types.ResourceInUseException
	if !errors.As(err, &inUse) {
		t.Fatalf("second SubscribeToShard within 5 s: %v, want ResourceInUseException", err)
	}

	fams := scrapeMetrics(t, base)
	for _, cw := range cloudWatchStreamMetrics {
		if _, ok := metricValue(fams, promName("kinesis_", cw), "stream", name); !ok {
			t.Errorf("CloudWatch metric %s: no %s{stream=%q} on /metrics", cw, promName("kinesis_", cw), name)
		}
	}
	for _, w := range []struct {
		cw   string
		want float64
	}{
		{"IncomingRecords", wantRecords},
		{"IncomingBytes", wantBytes},
		{"PutRecord.Bytes", 36},
		{"PutRecord.Success", 3},
		{"PutRecord.Latency", 3},
		{"PutRecords.Bytes", 2300},
		{"PutRecords.Records", 100},
		{"PutRecords.TotalRecords", 100},
		{"PutRecords.SuccessfulRecords", 100},
		{"PutRecords.FailedRecords", 0},
		{"PutRecords.ThrottledRecords", 0},
		{"PutRecords.Success", 2},
		{"PutRecords.Latency", 2},
		{"GetRecords.Records", wantRecords},
		{"GetRecords.Bytes", wantBytes},
		{"GetRecords.Success", float64(getCalls)},
		{"GetRecords.Latency", float64(getCalls)},
		{"GetRecords.IteratorAgeMilliseconds", 0}, // both shards read to their end
		{"SubscribeToShard.Success", 1},
		{"SubscribeToShard.RateExceeded", 1},
		{"SubscribeToShardEvent.Records", float64(perShard["shardId-000000000000"][0])},
		{"SubscribeToShardEvent.Bytes", float64(perShard["shardId-000000000000"][1])},
		{"WriteProvisionedThroughputExceeded", 0},
		{"ReadProvisionedThroughputExceeded", 0},
	} {
		if v, _ := metricValue(fams, promName("kinesis_", w.cw), "stream", name); v != w.want {
			t.Errorf("%s = %v, want %v", w.cw, v, w.want)
		}
	}
	if v, _ := metricValue(fams, "kinesis_SubscribeToShardEvent_Success", "stream", name); v < 1 {
		t.Errorf("SubscribeToShardEvent.Success = %v, want at least 1", v)
	}
	if len(shardFamilies(fams, name)) != 0 {
		t.Errorf("shard series without enhanced monitoring: %v", shardFamilies(fams, name))
	}
	// The engine's and the process's metrics.
	if v, _ := metricValue(fams, "runnel_engine_stream_bytes", "stream", name); v < wantBytes {
		t.Errorf("runnel_engine_stream_bytes = %v, want at least %d", v, wantBytes)
	}
	if v, _ := metricValue(fams, "runnel_engine_append_seconds"); v < 5 {
		t.Errorf("runnel_engine_append_seconds count %v, want at least 5 appends", v)
	}
	for _, f := range []string{"runnel_engine_sync_seconds", "runnel_engine_segments", "runnel_engine_open_files", "runnel_engine_tail_cache_bytes", "runnel_engine_reads_total", "go_goroutines", "process_resident_memory_bytes"} {
		if fams[f] == nil {
			t.Errorf("%s missing", f)
		}
	}

	// Enhanced monitoring adds the shard series, disabling removes them.
	for _, step := range []struct {
		enable  bool
		metrics []types.MetricsName
		want    []string // CloudWatch names exported after the step
	}{
		{true, []types.MetricsName{types.MetricsNameIncomingRecords}, []string{"IncomingRecords"}},
		{true, []types.MetricsName{types.MetricsNameAll}, cloudWatchShardMetrics},
		{false, []types.MetricsName{types.MetricsNameIncomingBytes, types.MetricsNameOutgoingBytes}, []string{"IncomingRecords", "IteratorAgeMilliseconds", "OutgoingRecords", "ReadProvisionedThroughputExceeded", "WriteProvisionedThroughputExceeded"}},
		{false, []types.MetricsName{types.MetricsNameAll}, nil},
	} {
		var err error
		if step.enable {
			_, err = c.EnableEnhancedMonitoring(ctx, &kinesis.EnableEnhancedMonitoringInput{StreamName: aws.String(name), ShardLevelMetrics: step.metrics})
		} else {
			_, err = c.DisableEnhancedMonitoring(ctx, &kinesis.DisableEnhancedMonitoringInput{StreamName: aws.String(name), ShardLevelMetrics: step.metrics})
		}
		if err != nil {
			t.Fatal(err)
		}
		fams := scrapeMetrics(t, base)
		have := shardFamilies(fams, name)
		if len(have) != len(step.want) {
			t.Errorf("after %v %v: shard families %v, want %v", map[bool]string{true: "enable", false: "disable"}[step.enable], step.metrics, have, step.want)
		}
		for _, cw := range step.want {
			for sid, n := range perShard {
				v, ok := metricValue(fams, promName("kinesis_shard_", cw), "stream", name, "shard", sid)
				if !ok {
					t.Errorf("%s{shard=%s} missing", promName("kinesis_shard_", cw), sid)
				}
				if cw == "IncomingRecords" && v != float64(n[0]) {
					t.Errorf("%s IncomingRecords = %v, want %d", sid, v, n[0])
				}
			}
		}
	}

	// Health.
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Status string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || body.Status == "" {
			t.Errorf("%s: %d %+v %v", path, resp.StatusCode, body, err)
		}
	}

	// A deleted stream's series go.
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, ok := metricValue(scrapeMetrics(t, base), "kinesis_IncomingRecords", "stream", name); ok {
		t.Error("deleted stream still on /metrics")
	}
}

// TestMetricsThrottled: with Kinesis' limits enforced, the records refused
// are counted as throttled, and every record of a PutRecords is either
// successful or throttled.
func TestMetricsThrottled(t *testing.T) {
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	s := startServer(t, t.TempDir(), "--transition-delay", "0s", "--admin-listen", admin, "--enforce-throughput")
	c := s.client()
	ctx := context.Background()
	const name = "throttled"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)
	// 1 MiB/s per shard: PutRecords of 1000 KiB in a row overflow it (on
	// any machine that sends two within a second or so).
	throttled, total := 0, 0
	for calls := 0; throttled == 0; calls++ {
		if calls == 20 {
			t.Fatal("no record throttled after 20 calls")
		}
		var recs []types.PutRecordsRequestEntry
		for range 10 {
			recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: make([]byte, 100<<10)})
		}
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(name), Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		throttled += int(aws.ToInt32(out.FailedRecordCount))
		total += len(recs)
	}
	fams := scrapeMetrics(t, "http://"+admin)
	v := func(cw string) float64 {
		x, _ := metricValue(fams, promName("kinesis_", cw), "stream", name)
		return x
	}
	if v("PutRecords.ThrottledRecords") != float64(throttled) || v("WriteProvisionedThroughputExceeded") != float64(throttled) {
		t.Errorf("ThrottledRecords %v, WriteProvisionedThroughputExceeded %v; the answers said %d", v("PutRecords.ThrottledRecords"), v("WriteProvisionedThroughputExceeded"), throttled)
	}
	if v("PutRecords.TotalRecords") != float64(total) || v("PutRecords.SuccessfulRecords") != float64(total-throttled) || v("IncomingRecords") != float64(total-throttled) {
		t.Errorf("TotalRecords %v, SuccessfulRecords %v, IncomingRecords %v; want %d, %d, %d",
			v("PutRecords.TotalRecords"), v("PutRecords.SuccessfulRecords"), v("IncomingRecords"), total, total-throttled, total-throttled)
	}
	if v("PutRecords.FailedRecords") != 0 {
		t.Errorf("FailedRecords %v, want 0: throttled records are not failures", v("PutRecords.FailedRecords"))
	}
}

// TestAdminOnAPIPort: --admin-listen api serves the admin routes on the
// API port beside Kinesis; --metrics=false leaves /metrics out.
func TestAdminOnAPIPort(t *testing.T) {
	for _, tt := range []struct {
		name        string
		args        []string
		wantMetrics int
	}{
		{"metrics", []string{"--admin-listen", "api"}, 200},
		{"metrics off", []string{"--admin-listen", "api", "--metrics=false"}, 404},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, t.TempDir(), tt.args...)
			ctx := context.Background()
			if _, err := s.client().ListStreams(ctx, &kinesis.ListStreamsInput{}); err != nil {
				t.Fatalf("Kinesis beside the admin routes: %v", err)
			}
			for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/metrics": tt.wantMetrics} {
				resp, err := http.Get(s.endpoint() + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != want {
					t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
				}
			}
		})
	}
}

// TestMetricsConsumerLag: a lease table's checkpoints show as records and
// milliseconds behind per shard.
func TestMetricsConsumerLag(t *testing.T) {
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	s := startServer(t, t.TempDir(), "--transition-delay", "0s", "--admin-listen", admin)
	c := s.client()
	ctx := context.Background()
	const name = "lagging"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)
	var seqs []string
	for i := range 10 {
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(name), PartitionKey: aws.String("k"), Data: []byte(strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, *out.SequenceNumber)
	}
	table := map[string]any{"StreamName": name, "ApplicationName": "billing"}
	if status, out := leaseCall(t, s, "CreateLeaseTable", table); status != 200 {
		t.Fatalf("CreateLeaseTable: %d %v", status, out)
	}
	const shard = "shardId-000000000000"
	behind := func() (records, millis float64) {
		t.Helper()
		fams := scrapeMetrics(t, "http://"+admin)
		labels := []string{"stream", name, "application", "billing", "shard", shard}
		r, ok := metricValue(fams, "runnel_lease_records_behind", labels...)
		if !ok {
			t.Fatalf("no runnel_lease_records_behind for %v", labels)
		}
		m, _ := metricValue(fams, "runnel_lease_millis_behind", labels...)
		return r, m
	}
	// A new table at TRIM_HORIZON has processed nothing.
	if r, m := behind(); r != 10 || m < 0 {
		t.Errorf("at TRIM_HORIZON: %v records, %v ms behind; want 10", r, m)
	}
	with := func(kv ...any) map[string]any {
		m := map[string]any{"StreamName": name, "ApplicationName": "billing"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	if status, out := leaseCall(t, s, "TakeLease", with("LeaseKey", shard, "Owner", "w", "Counter", 0)); status != 200 {
		t.Fatalf("TakeLease: %d %v", status, out)
	}
	if status, out := leaseCall(t, s, "Checkpoint", with("LeaseKey", shard, "Owner", "w", "Counter", 1, "SequenceNumber", seqs[4])); status != 200 {
		t.Fatalf("Checkpoint: %d %v", status, out)
	}
	if r, _ := behind(); r != 5 {
		t.Errorf("checkpoint at the 5th record: %v records behind, want 5", r)
	}
	if status, out := leaseCall(t, s, "Checkpoint", with("LeaseKey", shard, "Owner", "w", "Counter", 2, "SequenceNumber", seqs[9])); status != 200 {
		t.Fatalf("Checkpoint: %d %v", status, out)
	}
	if r, m := behind(); r != 0 || m != 0 {
		t.Errorf("checkpoint at the last record: %v records, %v ms behind; want 0", r, m)
	}
}

// TestMetricsAWSCLI: the AWS CLI's enable-enhanced-monitoring and
// disable-enhanced-monitoring turn the shard series on and off.
func TestMetricsAWSCLI(t *testing.T) {
	aws := awsCLI(t)
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	srv := startServer(t, t.TempDir(), "--transition-delay", "0s", "--admin-listen", admin)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(aws, append([]string{"--endpoint-url", srv.endpoint(), "--region", "us-east-1", "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("kinesis", "create-stream", "--stream-name", "cli-metrics", "--shard-count", "1")
	run("kinesis", "wait", "stream-exists", "--stream-name", "cli-metrics")
	run("kinesis", "put-record", "--stream-name", "cli-metrics", "--partition-key", "k", "--data", "aGVsbG8=")
	out := run("kinesis", "enable-enhanced-monitoring", "--stream-name", "cli-metrics", "--shard-level-metrics", "ALL")
	if !strings.Contains(out, "IteratorAgeMilliseconds") {
		t.Errorf("enable-enhanced-monitoring answered %s", out)
	}
	fams := scrapeMetrics(t, "http://"+admin)
	if v, _ := metricValue(fams, "kinesis_PutRecord_Success", "stream", "cli-metrics"); v != 1 {
		t.Errorf("PutRecord.Success = %v, want 1", v)
	}
	if v, ok := metricValue(fams, "kinesis_shard_IncomingRecords", "stream", "cli-metrics", "shard", "shardId-000000000000"); !ok || v != 1 {
		t.Errorf("shard IncomingRecords = %v (present %v), want 1", v, ok)
	}
	run("kinesis", "disable-enhanced-monitoring", "--stream-name", "cli-metrics", "--shard-level-metrics", "ALL")
	if have := shardFamilies(scrapeMetrics(t, "http://"+admin), "cli-metrics"); len(have) != 0 {
		t.Errorf("shard series after disable-enhanced-monitoring: %v", have)
	}
}
