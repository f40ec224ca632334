// Command firehose measures delivery streams end to end: producers put
// 1 KiB JSON records with PutRecordBatch into a DirectPut delivery stream
// that partitions them by three keys with a jq query, compresses them with
// GZIP and writes them to a bucket; it reports the records per second
// accepted and delivered, the freshness of the destination (the age of the
// oldest record not yet delivered, sampled from DescribeDeliveryStream),
// and the server's CPU per record when the server runs on this machine.
//
// Start a runnel whose configuration maps the bucket (--bucket, default
// lake) to a store, for example versitygw, then:
//
//	go run ./bench/firehose --duration 20s --producers 4
//
// By default producers send pre-encoded, SigV4-signed requests (--client
// raw), so that on a machine the tool shares with the server most of the
// CPU goes to the server; --client sdk uses the AWS SDK's client.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"

	"github.com/runnel/runnel/internal/bench"
)

// The credentials the tool signs with: AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY when set, else any (a server that does not check
// signatures).
var accessKey, secretKey = envOr("AWS_ACCESS_KEY_ID", "bench"), envOr("AWS_SECRET_ACCESS_KEY", "bench")

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "firehose bench:", err)
		os.Exit(1)
	}
}

type stats struct {
	RecordsDelivered int64
	ObjectsDelivered int64
	FreshnessMillis  int64
}

func run() error {
	endpoint := flag.String("endpoint", "http://127.0.0.1:4567", "runnel's URL")
	bucket := flag.String("bucket", "lake", "the bucket (arn:aws:s3:::NAME) the server's configuration maps")
	name := flag.String("name", fmt.Sprintf("bench-%d", time.Now().Unix()), "the delivery stream to create")
	duration := flag.Duration("duration", 20*time.Second, "how long producers put records")
	producers := flag.Int("producers", 4, "concurrent PutRecordBatch callers")
	size := flag.Int("size", 1024, "bytes per JSON record")
	interval := flag.Int("interval", 5, "the buffer interval, seconds")
	compression := flag.String("compression", "GZIP", "UNCOMPRESSED, GZIP, ZIP, Snappy or HADOOP_SNAPPY")
	rate := flag.Int("rate", 0, "records per second all producers together put at most (0: as fast as they can), to measure freshness at a rate delivery keeps up with")
	client := flag.String("client", "raw", "how producers send: raw (bodies encoded once, each request SigV4-signed; leaves the server more of a shared machine) or sdk (the AWS SDK's Firehose client)")
	flag.Parse()
	if *client != "raw" && *client != "sdk" {
		return fmt.Errorf("--client %q: use raw or sdk", *client)
	}

	ctx := context.Background()
	fh := firehose.New(firehose.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(*endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
	_, err := fh.CreateDeliveryStream(ctx, &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: name,
		ExtendedS3DestinationConfiguration: &types.ExtendedS3DestinationConfiguration{
			BucketARN:                        aws.String("arn:aws:s3:::" + *bucket),
			RoleARN:                          aws.String("arn:aws:iam::000000000000:role/bench"),
			Prefix:                           aws.String(*name + "/region=!{partitionKeyFromQuery:region}/kind=!{partitionKeyFromQuery:kind}/tier=!{partitionKeyFromQuery:tier}/!{timestamp:yyyy/MM/dd/HH}/"),
			ErrorOutputPrefix:                aws.String(*name + "-errors/!{firehose:error-output-type}/"),
			CompressionFormat:                types.CompressionFormat(*compression),
			BufferingHints:                   &types.BufferingHints{SizeInMBs: aws.Int32(64), IntervalInSeconds: aws.Int32(int32(*interval))},
			DynamicPartitioningConfiguration: &types.DynamicPartitioningConfiguration{Enabled: aws.Bool(true)},
			ProcessingConfiguration: &types.ProcessingConfiguration{Enabled: aws.Bool(true), Processors: []types.Processor{
				{Type: types.ProcessorTypeMetadataExtraction, Parameters: []types.ProcessorParameter{
					{ParameterName: types.ProcessorParameterNameMetadataExtractionQuery, ParameterValue: aws.String("{region: .region, kind: .kind, tier: .tier}")},
					{ParameterName: types.ProcessorParameterNameJsonParsingEngine, ParameterValue: aws.String("JQ-1.6")}}},
				{Type: types.ProcessorTypeAppendDelimiterToRecord},
			}},
		},
	})
	if err != nil {
		return fmt.Errorf("create delivery stream: %w", err)
	}
	for {
		d, err := fh.DescribeDeliveryStream(ctx, &firehose.DescribeDeliveryStreamInput{DeliveryStreamName: name})
		if err != nil {
			return err
		}
		if d.DeliveryStreamDescription.DeliveryStreamStatus == types.DeliveryStreamStatusActive {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	pid := 0
	if u, err := url.Parse(*endpoint); err == nil {
		if port, err := strconv.Atoi(u.Port()); err == nil {
			pid, _ = bench.PIDListeningOn(port)
		}
	}
	var cpu0 time.Duration
	if pid != 0 {
		cpu0, _ = bench.ProcessCPU(pid)
	}

	// Batches of 500 records, built once: 4 regions x 3 kinds x 2 tiers.
	batches := make([][]types.Record, 8)
	for b := range batches {
		recs := make([]types.Record, 500)
		for i := range recs {
			head := fmt.Sprintf(`{"region":"r%d","kind":"k%d","tier":"t%d","n":%d,"pad":"`, rand.IntN(4), rand.IntN(3), rand.IntN(2), b*500+i)
			pad := max(*size-len(head)-3, 0)
			recs[i] = types.Record{Data: []byte(head + strings.Repeat("x", pad) + "\"}\n")}
		}
		batches[b] = recs
	}
	// The raw client's bodies, encoded and hashed once.
	type rawBody struct {
		body []byte
		hash string
	}
	raws := make([]rawBody, len(batches))
	for i, recs := range batches {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"DeliveryStreamName":%q,"Records":[`, *name)
		for j, r := range recs {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"Data":"`)
			b.WriteString(base64.StdEncoding.EncodeToString(r.Data))
			b.WriteString(`"}`)
		}
		b.WriteString("]}")
		sum := sha256.Sum256(b.Bytes())
		raws[i] = rawBody{body: b.Bytes(), hash: hex.EncodeToString(sum[:])}
	}
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *producers * 2}}
	putRaw := func(rb rawBody) (int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*endpoint, "/")+"/", bytes.NewReader(rb.body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Firehose_20150804.PutRecordBatch")
		if err := signer.SignHTTP(ctx, creds, req, rb.hash, "firehose", "us-east-1", time.Now()); err != nil {
			return 0, err
		}
		resp, err := httpc.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var out struct{ FailedPutCount int64 }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("PutRecordBatch: HTTP %d (%v)", resp.StatusCode, err)
		}
		return out.FailedPutCount, nil
	}

	var acked, failed atomic.Int64
	start := time.Now()
	stop := start.Add(*duration)
	var wg sync.WaitGroup
	for p := range *producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := p; time.Now().Before(stop); i++ {
				if *rate > 0 {
					// Each producer puts its share of the rate: its k-th
					// batch of 500 is due k * producers * 500 / rate
					// seconds after the start.
					due := start.Add(time.Duration(float64(i-p) * float64(*producers) * 500 / float64(*rate) * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				}
				var bad int64
				if *client == "raw" {
					n, err := putRaw(raws[i%len(raws)])
					if err != nil {
						fmt.Fprintln(os.Stderr, "put:", err)
						failed.Add(500)
						continue
					}
					bad = n
				} else {
					out, err := fh.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: name, Records: batches[i%len(batches)]})
					if err != nil {
						fmt.Fprintln(os.Stderr, "put:", err)
						failed.Add(500)
						continue
					}
					bad = int64(aws.ToInt32(out.FailedPutCount))
				}
				acked.Add(500 - bad)
				failed.Add(bad)
			}
		}()
	}
	produced := make(chan struct{})
	go func() { wg.Wait(); close(produced) }()

	describe := func() (stats, error) { return describeStats(ctx, *endpoint, *name) }
	var maxFresh int64
	var putDone time.Time
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastPrint := time.Now()
	for {
		<-tick.C
		st, err := describe()
		if err != nil {
			return err
		}
		maxFresh = max(maxFresh, st.FreshnessMillis)
		select {
		case <-produced:
			if putDone.IsZero() {
				putDone = time.Now()
			}
		default:
		}
		if time.Since(lastPrint) >= time.Second {
			lastPrint = time.Now()
			fmt.Printf("%5.1fs  accepted %9d  delivered %9d  objects %5d  freshness %6d ms\n",
				time.Since(start).Seconds(), acked.Load(), st.RecordsDelivered, st.ObjectsDelivered, st.FreshnessMillis)
		}
		if !putDone.IsZero() && st.RecordsDelivered >= acked.Load() {
			end := time.Now()
			var cpu time.Duration
			if pid != 0 {
				c, _ := bench.ProcessCPU(pid)
				cpu = c - cpu0
			}
			n := acked.Load()
			fmt.Printf("\nrecords accepted   %d (%d refused)\n", n, failed.Load())
			fmt.Printf("put rate           %.0f records/s over %.1fs\n", float64(n)/putDone.Sub(start).Seconds(), putDone.Sub(start).Seconds())
			fmt.Printf("end to end         %.0f records/s (first put to last record delivered, %.1fs)\n", float64(n)/end.Sub(start).Seconds(), end.Sub(start).Seconds())
			fmt.Printf("freshness          max %d ms (buffer interval %d s)\n", maxFresh, *interval)
			fmt.Printf("objects            %d\n", st.ObjectsDelivered)
			if pid != 0 && n > 0 {
				fmt.Printf("server CPU         %.1fs, %.2f µs/record (pid %d)\n", cpu.Seconds(), float64(cpu.Microseconds())/float64(n), pid)
			}
			return nil
		}
	}
}

// describeStats reads RunnelDeliveryStats, a member of the description
// the SDK does not know, with a request of its own, signed as the
// producers' are.
func describeStats(ctx context.Context, endpoint, name string) (stats, error) {
	body, _ := json.Marshal(map[string]string{"DeliveryStreamName": name})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", bytes.NewReader(body))
	if err != nil {
		return stats{}, err
	}
	req.Header.Set("X-Amz-Target", "Firehose_20150804.DescribeDeliveryStream")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "firehose", "us-east-1", time.Now()); err != nil {
		return stats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return stats{}, err
	}
	defer resp.Body.Close()
	var out struct {
		DeliveryStreamDescription struct {
			RunnelDeliveryStats *stats
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return stats{}, err
	}
	if out.DeliveryStreamDescription.RunnelDeliveryStats == nil {
		return stats{}, fmt.Errorf("no RunnelDeliveryStats in the description (HTTP %d)", resp.StatusCode)
	}
	return *out.DeliveryStreamDescription.RunnelDeliveryStats, nil
}
