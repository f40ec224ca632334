package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/aws/smithy-go"
	"github.com/runnel/runnel/internal/sdkclient"
)

// Enhanced fan-out through the AWS SDK for Go v2 against a `runnel serve`
// process. Every subscription has its own SDK client: sharing one between
// concurrent subscriptions is a data race inside the SDK. The subscriptions
// run over h2c, as Kinesis consumers use HTTP/2: over HTTP/1.1 the Go SDK
// now and then closes a subscription's connection itself while several are
// open ("use of closed network connection" on the client side; raw HTTP/1.1
// clients reading the same responses are unaffected), so HTTP/1.1 is covered
// by one subscription in TestFanoutTransports.

// h2cClient is an SDK client that speaks HTTP/2 without TLS (prior
// knowledge); on an http:// endpoint the SDK otherwise uses HTTP/1.1.
func (s *server) h2cClient() *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:   sdkclient.Guard(&http.Client{Transport: h2cTransport()}),
	})
}

// h2cTransport speaks HTTP/2 with prior knowledge on http:// URLs (the
// standard library's equivalent of x/net/http2.Transport with AllowHTTP and
// a plain-TCP DialTLSContext).
func h2cTransport() *http.Transport {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Transport{Protocols: &p}
}

// registerConsumer registers a consumer and waits until it is ACTIVE.
func registerConsumer(t *testing.T, c *kinesis.Client, streamARN, name string) string {
	t.Helper()
	ctx := context.Background()
	out, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &streamARN, ConsumerName: &name})
	if err != nil {
		t.Fatal(err)
	}
	arn := *out.Consumer.ConsumerARN
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: &arn})
		if err != nil {
			t.Fatal(err)
		}
		if d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
			return arn
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer %s not ACTIVE", name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func streamARNOf(t *testing.T, c *kinesis.Client, name string) string {
	t.Helper()
	d, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: &name})
	if err != nil {
		t.Fatal(err)
	}
	return *d.StreamDescriptionSummary.StreamARN
}

// subscribe starts a subscription, retrying while an earlier subscription of
// the same consumer and shard still holds the slot.
func subscribe(t *testing.T, c *kinesis.Client, consumerARN, shardID string, pos types.StartingPosition) *kinesis.SubscribeToShardEventStream {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := c.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: &consumerARN, ShardId: &shardID, StartingPosition: &pos})
		var inUse *types.ResourceInUseException
		if errors.As(err, &inUse) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("SubscribeToShard %s: %v", shardID, err)
		}
		return out.GetStream()
	}
}

// received is what one subscription read.
type received struct {
	records      []types.Record
	continuation string
	children     []types.ChildShard
	ended        bool // the server ended the stream
	err          error
}

// readRecords reads events until n records arrived, the stream ends, or the
// timeout passes.
func readRecords(es *kinesis.SubscribeToShardEventStream, n int, timeout time.Duration) received {
	var r received
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for len(r.records) < n {
		select {
		case ev, ok := <-es.Events():
			if !ok {
				r.ended, r.err = true, es.Err()
				return r
			}
			m, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
			if !ok {
				r.err = fmt.Errorf("unexpected event %T", ev)
				return r
			}
			r.records = append(r.records, m.Value.Records...)
			// The end of a closed shard is ChildShards with no
			// continuation; every other event has a continuation.
			if (m.Value.ContinuationSequenceNumber == nil) != (len(m.Value.ChildShards) > 0) {
				r.err = fmt.Errorf("event with ContinuationSequenceNumber %v and ChildShards %v", aws.ToString(m.Value.ContinuationSequenceNumber), m.Value.ChildShards)
				return r
			}
			if m.Value.ContinuationSequenceNumber != nil {
				r.continuation = *m.Value.ContinuationSequenceNumber
			}
			if len(m.Value.ChildShards) > 0 {
				r.children = m.Value.ChildShards
			}
		case <-timer.C:
			r.err = fmt.Errorf("timeout with %d of %d records", len(r.records), n)
			return r
		}
	}
	return r
}

// firstEvent waits for a subscription's first event, which the server sends
// at once.
func firstEvent(es *kinesis.SubscribeToShardEventStream) error {
	select {
	case _, ok := <-es.Events():
		if !ok {
			return fmt.Errorf("stream ended: %v", es.Err())
		}
		return nil
	case <-time.After(5 * time.Second):
		return errors.New("no first event within 5s")
	}
}

func TestFanoutConsumersShardsExactlyOnce(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := newStream(t, c, 3)
	sarn := streamARNOf(t, c, name)
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &name})
	if err != nil {
		t.Fatal(err)
	}
	consumers := []string{
		registerConsumer(t, c, sarn, "alpha"),
		registerConsumer(t, c, sarn, "beta"),
		registerConsumer(t, c, sarn, "gamma"),
	}

	// Every consumer subscribes to every shard (over h2c) before the
	// records are written (LATEST): they must all be pushed.
	type slot struct {
		consumer, shard string
		client          *kinesis.Client
		es              *kinesis.SubscribeToShardEventStream
	}
	var slots []*slot
	for _, carn := range consumers {
		for _, sh := range shards.Shards {
			cl := srv.h2cClient()
			s := &slot{consumer: carn, shard: *sh.ShardId, client: cl}
			s.es = subscribe(t, cl, carn, s.shard, types.StartingPosition{Type: types.ShardIteratorTypeLatest})
			slots = append(slots, s)
		}
	}
	defer func() {
		for _, s := range slots {
			s.es.Close()
			runtime.KeepAlive(s.client)
		}
	}()
	// The first event of each subscription (LATEST) precedes any record.
	for _, s := range slots {
		if err := firstEvent(s.es); err != nil {
			t.Fatal(err)
		}
	}

	want := map[string][]string{} // shard -> sequence numbers in order
	for b := range 3 {
		entries := make([]types.PutRecordsRequestEntry, 100)
		for i := range entries {
			entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("pk-%d-%d", b, i)), Data: []byte(fmt.Sprintf("rec-%d-%d", b, i))}
		}
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &name, Records: entries})
		if err != nil || out.FailedRecordCount != nil && *out.FailedRecordCount != 0 {
			t.Fatalf("PutRecords: %v %v", err, out)
		}
		for _, r := range out.Records {
			want[*r.ShardId] = append(want[*r.ShardId], *r.SequenceNumber)
		}
	}

	var wg sync.WaitGroup
	errs := make(chan error, len(slots))
	for _, s := range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := readRecords(s.es, len(want[s.shard]), 10*time.Second)
			if r.err != nil {
				errs <- fmt.Errorf("%s on %s: %w", s.consumer, s.shard, r.err)
				return
			}
			got := make([]string, len(r.records))
			for i, rec := range r.records {
				got[i] = *rec.SequenceNumber
			}
			if !slices.Equal(got, want[s.shard]) {
				errs <- fmt.Errorf("%s on %s: got %d records, want %d, in order, exactly once", s.consumer, s.shard, len(got), len(want[s.shard]))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestFanoutResubscribeFromContinuation(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := newStream(t, c, 1)
	carn := registerConsumer(t, c, streamARNOf(t, c, name), "resume")
	put := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &name, PartitionKey: aws.String("k"), Data: []byte(strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, 30)
	var got []string
	pos := types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}
	for round := range 3 {
		cl := srv.h2cClient()
		es := subscribe(t, cl, carn, "shardId-000000000000", pos)
		r := readRecords(es, 30, 10*time.Second)
		es.Close()
		runtime.KeepAlive(cl)
		if r.err != nil {
			t.Fatalf("round %d: %v", round, r.err)
		}
		for _, rec := range r.records {
			got = append(got, string(rec.Data))
		}
		put(30*(round+1), 30*(round+2))
		pos = types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: &r.continuation}
	}
	// Each round read exactly 30 records; 90 of the 120 written.
	if len(got) != 90 {
		t.Fatalf("read %d records", len(got))
	}
	for i, d := range got {
		if d != strconv.Itoa(i) {
			t.Fatalf("record %d is %s: lost or repeated", i, d)
		}
	}
}

func TestFanoutSplitEndsWithChildShards(t *testing.T) {
	srv := sharedServer(t)
	c := srv.client()
	ctx := context.Background()
	name := newStream(t, c, 1)
	carn := registerConsumer(t, c, streamARNOf(t, c, name), "split")
	sub := srv.h2cClient()
	es := subscribe(t, sub, carn, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	defer func() { es.Close(); runtime.KeepAlive(sub) }()
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &name, PartitionKey: aws.String("k"), Data: []byte("before")}); err != nil {
		t.Fatal(err)
	}
	_, err := c.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: &name, ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "UnknownOperationException" {
		t.Skipf("SplitShard is not implemented by this server yet (%s)", ae.ErrorMessage())
	}
	if err != nil {
		t.Fatal(err)
	}
	r := readRecords(es, 1<<30, 15*time.Second)
	if !r.ended || r.err != nil {
		t.Fatalf("subscription did not end cleanly after the split: ended %v, err %v", r.ended, r.err)
	}
	if len(r.records) != 1 || string(r.records[0].Data) != "before" {
		t.Fatalf("records before the end: %d", len(r.records))
	}
	if len(r.children) != 2 {
		t.Fatalf("ChildShards %v, want 2", r.children)
	}
	for _, ch := range r.children {
		if len(ch.ParentShards) != 1 || ch.ParentShards[0] != "shardId-000000000000" {
			t.Fatalf("child %s parents %v", *ch.ShardId, ch.ParentShards)
		}
	}

	// A consumer that comes back after the last record (from its
	// checkpoint) is told at once that the shard ended, over either
	// transport, so its resubscribe loop ends.
	for _, tc := range []struct {
		name   string
		client *kinesis.Client
	}{{"http1", srv.client()}, {"h2c", srv.h2cClient()}} {
		es := subscribe(t, tc.client, carn, "shardId-000000000000", types.StartingPosition{
			Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: r.records[0].SequenceNumber})
		again := readRecords(es, 1<<30, 15*time.Second)
		es.Close()
		runtime.KeepAlive(tc.client)
		if !again.ended || again.err != nil || len(again.records) != 0 || len(again.children) != 2 {
			t.Fatalf("%s: after the last record: ended %v, err %v, %d records, children %v",
				tc.name, again.ended, again.err, len(again.records), again.children)
		}
	}
}

// TestFanoutTransports checks the raw response of SubscribeToShard over
// HTTP/1.1, h2c and TLS h2 (ALPN): status 200, the event-stream content
// type, no Content-Length, and the protocol used.
func TestFanoutTransports(t *testing.T) {
	plain := sharedServer(t)
	tlsSrv := startServer(t, t.TempDir(), "--tls-self-signed", "--transition-delay", "0s")
	tlsEndpoint := "https://" + tlsSrv.addr
	h2c := h2cTransport()
	defer h2c.CloseIdleConnections()
	h2 := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	defer h2.CloseIdleConnections()
	cases := []struct {
		name      string
		endpoint  string
		transport http.RoundTripper
		proto     int
	}{
		{"http1.1", plain.endpoint(), http.DefaultTransport, 1},
		{"h2c", plain.endpoint(), h2c, 2},
		{"h2 over TLS", tlsEndpoint, h2, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sdk := kinesis.New(kinesis.Options{Region: "us-east-1", BaseEndpoint: &tc.endpoint,
				Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
				HTTPClient:  sdkclient.Guard(&http.Client{Transport: tc.transport})})
			name := newStream(t, sdk, 1)
			carn := registerConsumer(t, sdk, streamARNOf(t, sdk, name), "raw")
			body := `{"ConsumerARN":"` + carn + `","ShardId":"shardId-000000000000","StartingPosition":{"Type":"TRIM_HORIZON"}}`
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, tc.endpoint+"/", strings.NewReader(body))
			req.Header.Set("X-Amz-Target", "Kinesis_20131202.SubscribeToShard")
			setUnverifiedAuth(req.Header)
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			resp, err := (&http.Client{Transport: tc.transport}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.ProtoMajor != tc.proto || resp.ContentLength != -1 ||
				resp.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" {
				t.Fatalf("status %d proto %s length %d type %q", resp.StatusCode, resp.Proto, resp.ContentLength, resp.Header.Get("Content-Type"))
			}
			// The initial-response message, flushed before any record exists.
			buf := make([]byte, 512)
			n, err := resp.Body.Read(buf)
			if err != nil || !bytes.Contains(buf[:n], []byte("initial-response")) {
				t.Fatalf("first bytes %q, %v", buf[:n], err)
			}
			// And the SDK consumes it over the same transport, once the raw
			// subscription is gone.
			resp.Body.Close()
			es := subscribe(t, sdk, carn, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
			defer es.Close()
			if _, err := sdk.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &name, PartitionKey: aws.String("k"), Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			if r := readRecords(es, 1, 5*time.Second); r.err != nil || string(r.records[0].Data) != "x" {
				t.Fatalf("SDK read: %v", r.err)
			}
			runtime.KeepAlive(sdk)
		})
	}
}

// TestFanoutLatency measures how long a record takes from the PutRecord
// acknowledgement to its delivery on subscribed consumers, with 1 and with
// 20 consumers on one shard. It runs when RUNNEL_FANOUT_LATENCY is set:
//
//	RUNNEL_FANOUT_LATENCY=1 go test -run TestFanoutLatency -v ./integration/
func TestFanoutLatency(t *testing.T) {
	if os.Getenv("RUNNEL_FANOUT_LATENCY") == "" {
		t.Skip("set RUNNEL_FANOUT_LATENCY=1 to measure fan-out latency")
	}
	srv := startServer(t, t.TempDir(), "--transition-delay", "0s")
	const records = 2000
	for _, consumers := range []int{1, 20} {
		t.Run(fmt.Sprintf("consumers-%d", consumers), func(t *testing.T) {
			c := srv.client()
			ctx := context.Background()
			name := newStream(t, c, 1)
			sarn := streamARNOf(t, c, name)
			type delivery struct {
				seq string
				at  time.Time
			}
			var (
				wg        sync.WaitGroup
				mu        sync.Mutex
				delivered []delivery
				clients   []*kinesis.Client
			)
			for i := range consumers {
				carn := registerConsumer(t, c, sarn, fmt.Sprint("lat", i))
				cl := srv.h2cClient()
				clients = append(clients, cl)
				es := subscribe(t, cl, carn, "shardId-000000000000", types.StartingPosition{Type: types.ShardIteratorTypeLatest})
				if err := firstEvent(es); err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer es.Close()
					n := 0
					timeout := time.After(60 * time.Second)
					for n < records {
						select {
						case ev, ok := <-es.Events():
							if !ok {
								return
							}
							now := time.Now()
							m := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
							mu.Lock()
							for _, r := range m.Value.Records {
								delivered = append(delivered, delivery{*r.SequenceNumber, now})
							}
							mu.Unlock()
							n += len(m.Value.Records)
						case <-timeout:
							return
						}
					}
				}()
			}
			acked := make(map[string]time.Time, records)
			sent := make(map[string]time.Time, records)
			for i := range records {
				start := time.Now()
				out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &name, PartitionKey: aws.String("k"), Data: []byte(strconv.Itoa(i))})
				if err != nil {
					t.Fatal(err)
				}
				acked[*out.SequenceNumber] = time.Now()
				sent[*out.SequenceNumber] = start
				time.Sleep(2 * time.Millisecond)
			}
			wg.Wait()
			runtime.KeepAlive(clients)
			if len(delivered) != records*consumers {
				t.Fatalf("delivered %d, want %d", len(delivered), records*consumers)
			}
			var fromAck, fromSend []time.Duration
			for _, d := range delivered {
				fromAck = append(fromAck, max(0, d.at.Sub(acked[d.seq])))
				fromSend = append(fromSend, d.at.Sub(sent[d.seq]))
			}
			q := func(l []time.Duration, p float64) time.Duration {
				sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
				return l[min(len(l)-1, int(p*float64(len(l))))]
			}
			t.Logf("%d consumers, %d records each: ack->delivery p50 %v p99 %v max %v; put start->delivery p50 %v p99 %v",
				consumers, records, q(fromAck, 0.5), q(fromAck, 0.99), q(fromAck, 1), q(fromSend, 0.5), q(fromSend, 0.99))
		})
	}
}
