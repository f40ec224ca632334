package integration

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	dto "github.com/prometheus/client_model/go"
)

// cloudWatchFirehoseMetrics are the metrics of the AWS/Firehose namespace
// (DeliveryStreamName dimension) runnel exports for a DirectPut delivery
// stream into S3, as listed in the Firehose developer guide's "Monitoring
// with CloudWatch metrics" (data ingestion, API-level and S3 delivery
// metrics).
var cloudWatchFirehoseMetrics = []string{
	"IncomingBytes",
	"IncomingRecords",
	"IncomingPutRequests",
	"PutRecord.Bytes",
	"PutRecord.Latency",
	"PutRecord.Requests",
	"PutRecordBatch.Bytes",
	"PutRecordBatch.Latency",
	"PutRecordBatch.Records",
	"PutRecordBatch.Requests",
	"ThrottledRecords",
	"DeliveryToS3.Bytes",
	"DeliveryToS3.DataFreshness",
	"DeliveryToS3.ObjectCount",
	"DeliveryToS3.Records",
	"DeliveryToS3.Success",
}

// countFiles counts the regular files below dir.
func countFiles(t *testing.T, dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return n
}

func TestMetricsDeliveryStreams(t *testing.T) {
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	buckets := t.TempDir()
	s := startServer(t, t.TempDir(), "--transition-delay", "0s", "--admin-listen", admin, "--buckets-dir", buckets, "--console")
	base := "http://" + admin
	fh, kc := s.firehose(), s.client()
	ctx := context.Background()
	value := func(fams map[string]*dto.MetricFamily, cw, ds string) float64 {
		t.Helper()
		v, ok := metricValue(fams, promName("firehose_", cw), "delivery_stream", ds)
		if !ok {
			t.Fatalf("/metrics has no %s for %s", promName("firehose_", cw), ds)
		}
		return v
	}
	create := func(name string, interval int32, tune func(*firehose.CreateDeliveryStreamInput)) {
		t.Helper()
		in := &firehose.CreateDeliveryStreamInput{
			DeliveryStreamName: aws.String(name),
			ExtendedS3DestinationConfiguration: s3Dest(name, func(d *types.ExtendedS3DestinationConfiguration) {
				d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(interval), SizeInMBs: aws.Int32(1)}
			}),
		}
		if tune != nil {
			tune(in)
		}
		if _, err := fh.CreateDeliveryStream(ctx, in); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, name+" ACTIVE", func() bool {
			d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: aws.String(name)})
			return err == nil && d.DeliveryStreamDescription.DeliveryStreamStatus == types.DeliveryStreamStatusActive
		})
	}

	// A delivery stream's series appear when it is created, at zero.
	create("metered", 1, nil)
	var fams map[string]*dto.MetricFamily
	waitFor(t, 30*time.Second, "series of a new delivery stream", func() bool {
		fams = scrapeMetrics(t, base)
		_, ok := metricValue(fams, "firehose_IncomingRecords", "delivery_stream", "metered")
		return ok
	})
	for _, cw := range cloudWatchFirehoseMetrics {
		if v := value(fams, cw, "metered"); v != 0 {
			t.Errorf("%s is %v before any traffic", cw, v)
		}
	}
	if _, ok := metricValue(fams, "firehose_DataReadFromKinesisStream_Records", "delivery_stream", "metered"); ok {
		t.Error("a DirectPut delivery stream has DataReadFromKinesisStream series")
	}

	// Traffic: 3 PutRecord of 10 bytes, 2 PutRecordBatch of 50 records of
	// 20 bytes.
	for i := range 3 {
		if _, err := fh.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("metered"), Record: &types.Record{Data: fmt.Appendf(nil, "single-%04d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	for b := range 2 {
		recs := make([]types.Record, 50)
		for i := range recs {
			recs[i] = types.Record{Data: fmt.Appendf(nil, "batch-%d-record-%05d", b, i)}
		}
		out, err := fh.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("metered"), Records: recs})
		if err != nil || aws.ToInt32(out.FailedPutCount) != 0 {
			t.Fatalf("PutRecordBatch: %v %v", out, err)
		}
	}
	const wantRecords, wantBytes = 103, 3*11 + 100*20

	// Everything is delivered: the records and bytes, and the objects
	// written are the files in the bucket.
	waitFor(t, 60*time.Second, "DeliveryToS3.Records reaching the records put", func() bool {
		fams = scrapeMetrics(t, base)
		return value(fams, "DeliveryToS3.Records", "metered") >= wantRecords && value(fams, "DeliveryToS3.DataFreshness", "metered") == 0
	})
	want := map[string]float64{
		"IncomingRecords":         wantRecords,
		"IncomingBytes":           wantBytes,
		"IncomingPutRequests":     5,
		"PutRecord.Requests":      3,
		"PutRecord.Bytes":         3 * 11,
		"PutRecord.Latency":       3, // histogram count
		"PutRecordBatch.Requests": 2,
		"PutRecordBatch.Records":  100,
		"PutRecordBatch.Bytes":    100 * 20,
		"PutRecordBatch.Latency":  2,
		"ThrottledRecords":        0,
		"DeliveryToS3.Records":    wantRecords,
		"DeliveryToS3.Bytes":      wantBytes,
	}
	for cw, v := range want {
		if got := value(fams, cw, "metered"); got != v {
			t.Errorf("%s = %v, want %v", cw, got, v)
		}
	}
	files := countFiles(t, filepath.Join(buckets, "metered"))
	if files == 0 {
		t.Fatal("no object in the bucket")
	}
	if got := value(fams, "DeliveryToS3.Success", "metered"); got != float64(files) {
		t.Errorf("DeliveryToS3.Success = %v, want the %d objects in the bucket", got, files)
	}
	if got := value(fams, "DeliveryToS3.ObjectCount", "metered"); got != float64(files) {
		t.Errorf("DeliveryToS3.ObjectCount = %v, want the %d objects in the bucket", got, files)
	}
	if v, ok := metricValue(fams, "runnel_delivery_failed_puts", "delivery_stream", "metered"); !ok || v != 0 {
		t.Errorf("runnel_delivery_failed_puts = %v (%v), want 0", v, ok)
	}
	// Every name is a CloudWatch name with dots as underscores.
	for name, f := range fams {
		if cw, ok := strings.CutPrefix(name, "firehose_"); ok {
			cw = strings.Replace(cw, "_", ".", 1)
			known := cw == "DataReadFromKinesisStream.Records" || cw == "DataReadFromKinesisStream.Bytes"
			for _, c := range cloudWatchFirehoseMetrics {
				known = known || c == cw
			}
			if !known {
				t.Errorf("%s (%s) is not a Firehose CloudWatch metric", name, f.GetType())
			}
		}
	}

	// Freshness grows while a record waits in a buffer of 900 s.
	create("slow", 900, nil)
	if _, err := fh.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("slow"), Record: &types.Record{Data: []byte("waiting")}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "DeliveryToS3.DataFreshness of a waiting record past 1 s", func() bool {
		return value(scrapeMetrics(t, base), "DeliveryToS3.DataFreshness", "slow") >= 1
	})
	fams = scrapeMetrics(t, base)
	if got := value(fams, "DeliveryToS3.Records", "slow"); got != 0 {
		t.Errorf("slow: DeliveryToS3.Records = %v before its buffer is due", got)
	}

	// A Kinesis-sourced delivery stream counts what it reads.
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("events"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, kc, "events")
	sum, err := kc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	create("from-events", 1, func(in *firehose.CreateDeliveryStreamInput) {
		in.DeliveryStreamType = types.DeliveryStreamTypeKinesisStreamAsSource
		in.KinesisStreamSourceConfiguration = &types.KinesisStreamSourceConfiguration{
			KinesisStreamARN: sum.StreamDescriptionSummary.StreamARN, RoleARN: aws.String("arn:aws:iam::000000000000:role/r")}
	})
	entries := make([]kinesistypes.PutRecordsRequestEntry, 7)
	for i := range entries {
		entries[i] = kinesistypes.PutRecordsRequestEntry{Data: fmt.Appendf(nil, "event-%d", i), PartitionKey: aws.String("k")}
	}
	if out, err := kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("events"), Records: entries}); err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords: %v %v", out, err)
	}
	waitFor(t, 60*time.Second, "the Kinesis-sourced records delivered", func() bool {
		fams = scrapeMetrics(t, base)
		return value(fams, "DeliveryToS3.Records", "from-events") >= 7
	})
	if v, _ := metricValue(fams, "firehose_DataReadFromKinesisStream_Records", "delivery_stream", "from-events"); v != 7 {
		t.Errorf("DataReadFromKinesisStream.Records = %v, want 7", v)
	}
	if v, _ := metricValue(fams, "firehose_DataReadFromKinesisStream_Bytes", "delivery_stream", "from-events"); v != 7*7 {
		t.Errorf("DataReadFromKinesisStream.Bytes = %v, want 49", v)
	}
	if got := value(fams, "IncomingRecords", "from-events"); got != 0 {
		t.Errorf("from-events: IncomingRecords = %v; nothing was put to it directly", got)
	}

	// The console shows the delivery streams, and the source stream's page
	// the one that reads it.
	page := func(path string) string {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	body := page("/console/delivery-streams/")
	for _, want := range []string{`data-delivery-stream="metered"`, `data-delivery-stream="slow"`, `data-delivery-stream="from-events"`,
		`<td class="num records-delivered">103</td>`, `<a href="/console/streams/events">events</a>`} {
		if !strings.Contains(body, want) {
			t.Errorf("console's delivery streams page lacks %q", want)
		}
	}
	if body := page("/console/streams/events"); !strings.Contains(body, `data-delivery-stream="from-events"`) || strings.Contains(body, `data-delivery-stream="metered"`) {
		t.Error("the stream page of events does not list exactly the delivery stream reading it")
	}
	if body := page("/console/delivery-streams/slow"); !strings.Contains(body, `id="chart-freshness"`) || strings.Contains(body, `id="freshness">0 ms<`) {
		t.Error("the page of slow has no freshness chart, or shows no freshness while its record waits")
	}

	// Deleted, its series go.
	if _, err := fh.DeleteDeliveryStream(ctx, &firehose.DeleteDeliveryStreamInput{DeliveryStreamName: aws.String("metered")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the deleted delivery stream's series gone", func() bool {
		_, ok := metricValue(scrapeMetrics(t, base), "firehose_IncomingRecords", "delivery_stream", "metered")
		return !ok
	})
	if _, ok := metricValue(scrapeMetrics(t, base), "firehose_IncomingRecords", "delivery_stream", "slow"); !ok {
		t.Error("deleting one delivery stream removed another's series")
	}
}
