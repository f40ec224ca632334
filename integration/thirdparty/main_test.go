package thirdparty

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// runnelBin is the server binary, built once from the repository root.
var runnelBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runnel-thirdparty-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runnelBin = filepath.Join(dir, "runnel")
	build := exec.Command("go", "build", "-o", runnelBin, "./cmd/runnel")
	build.Dir = filepath.Join("..", "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build runnel:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Credentials and region every client uses; runnel only checks the form.
const region = "us-east-1"

var creds = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")

// server is one `runnel serve` child process with request logging on.
type server struct {
	cmd  *exec.Cmd
	addr string
	log  syncBuffer
}

// syncBuffer is the process's output, written by exec's copying goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs `runnel serve` over a fresh data directory on a free
// loopback port and waits until it accepts connections. The process is
// killed at the end of the test.
func startServer(t *testing.T) *server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &server{addr: addr}
	s.cmd = exec.Command(runnelBin, "serve", "--listen", addr, "--admin-listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-level", "debug")
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server log (last 8 KiB):\n%s", tail(s.log.String(), 8<<10))
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("runnel serve did not listen on %s within 20s; log:\n%s", addr, s.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (s *server) endpoint() string { return "http://" + s.addr }

// kill sends SIGKILL and reaps the process.
func (s *server) kill() {
	if s.cmd.ProcessState != nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
}

// stop sends SIGTERM and waits for a clean exit, which ends every open
// subscription first.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runnel serve exited with %v after SIGTERM", err)
		}
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Signal(syscall.SIGKILL)
		<-done
		t.Errorf("runnel serve did not exit within 20s of SIGTERM")
	}
}

// requests counts the requests for op the server has logged so far.
func (s *server) requests(op string) int {
	return strings.Count(s.log.String(), " op="+op+" ")
}

// client returns an SDK client over HTTP/1.1, the SDK's default transport
// on an http:// endpoint.
func (s *server) client() *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       region,
		BaseEndpoint: aws.String(s.endpoint()),
		Credentials:  creds,
		HTTPClient:   awshttp.NewBuildableClient(),
	})
}

// h2cClient returns an SDK client that speaks HTTP/2 without TLS (prior
// knowledge), as Kinesis consumers use HTTP/2 for SubscribeToShard.
func (s *server) h2cClient() *kinesis.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return kinesis.New(kinesis.Options{
		Region:       region,
		BaseEndpoint: aws.String(s.endpoint()),
		Credentials:  creds,
		HTTPClient:   &http.Client{Transport: &http.Transport{Protocols: &p}},
	})
}

// The workload: total records over keys partition keys; record i has key
// i%keys and is that key's (i/keys)th record, which its data spells out.
const (
	total      = 10000
	keys       = 40
	batch      = 250
	startCount = 2
	endCount   = 4
)

func recordKey(i int) string  { return fmt.Sprintf("pk-%02d", i%keys) }
func recordData(i int) string { return fmt.Sprintf("%s/%06d", recordKey(i), i/keys) }

// scenario is one stream on one server, resharded while records are
// written, and the ledger of what a library delivered from it.
type scenario struct {
	t      *testing.T
	srv    *server
	admin  *kinesis.Client
	stream string
	ledger *ledger
}

// newScenario starts a server and creates an ACTIVE stream of startCount
// shards.
func newScenario(t *testing.T) *scenario {
	t.Helper()
	if testing.Short() {
		t.Skip("a library run takes 5-35 s")
	}
	s := &scenario{t: t, srv: startServer(t), stream: "thirdparty", ledger: newLedger()}
	// The test's own calls go over h2c, where the SDK's HTTP/1.1
	// request-body race (see harlow_test.go) cannot fail a PutRecords.
	s.admin = s.srv.h2cClient()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := s.admin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: &s.stream, ShardCount: aws.Int32(startCount)}); err != nil {
		t.Fatal(err)
	}
	s.waitActive(ctx)
	return s
}

// waitActive polls DescribeStreamSummary until the stream is ACTIVE, as a
// client does after CreateStream or UpdateShardCount.
func (s *scenario) waitActive(ctx context.Context) {
	s.t.Helper()
	for {
		out, err := s.admin.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: &s.stream})
		if err != nil {
			s.t.Fatal(err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("stream not ACTIVE: %v", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// produce writes records [from, to) in PutRecords batches. A failed record
// fails the test: retrying it after later records of its key would break
// the per-key order the test checks.
func (s *scenario) produce(ctx context.Context, from, to int) {
	s.t.Helper()
	for i := from; i < to; i += batch {
		var entries []types.PutRecordsRequestEntry
		for j := i; j < min(i+batch, to); j++ {
			entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(recordKey(j)), Data: []byte(recordData(j))})
		}
		out, err := s.admin.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &s.stream, Records: entries})
		if err != nil {
			s.t.Fatalf("PutRecords at %d: %v", i, err)
		}
		if n := aws.ToInt32(out.FailedRecordCount); n > 0 {
			s.t.Fatalf("PutRecords at %d: %d records failed", i, n)
		}
	}
}

// run writes half the records, waits for ready (the library reads both
// parent shards), scales the stream to endCount shards while writing a
// quarter more, waits for it to be ACTIVE again, writes the rest, and waits
// until the ledger holds every record.
func (s *scenario) run(ready func() bool, timeout time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s.produce(ctx, 0, total/2)
	s.waitFor(ctx, "the library to read both parent shards", ready)
	if _, err := s.admin.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: &s.stream,
		TargetShardCount: aws.Int32(endCount), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
		s.t.Fatal(err)
	}
	s.produce(ctx, total/2, total*3/4)
	s.waitActive(ctx)
	s.produce(ctx, total*3/4, total)
	s.waitFor(ctx, "every record", func() bool { return s.ledger.distinct() == total })
}

// waitFor polls cond until it holds or ctx ends.
func (s *scenario) waitFor(ctx context.Context, what string, cond func() bool) {
	s.t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			s.t.Fatalf("waiting for %s: %v; %s", what, ctx.Err(), s.ledger.summary())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// verify checks the ledger once the library has stopped: no record twice,
// each key's records in the order written, every shard of the final
// topology read, and no record of a child shard delivered before the last
// record of one of its parents.
func (s *scenario) verify() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := s.admin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: &s.stream})
	if err != nil {
		s.t.Fatal(err)
	}
	if len(out.Shards) != startCount+endCount {
		s.t.Fatalf("%d shards listed, want %d", len(out.Shards), startCount+endCount)
	}
	l := s.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.dups) > 0 {
		s.t.Errorf("%d records delivered more than once, first %q", len(l.dups), l.dups[0])
	}
	if len(l.bad) > 0 {
		s.t.Errorf("%d records that were not written, first %q", len(l.bad), l.bad[0])
	}
	if len(l.seen) != total {
		s.t.Errorf("%d distinct records delivered, want %d", len(l.seen), total)
	}
	for k, got := range l.byKey {
		for i, n := range got {
			if n != i {
				s.t.Errorf("key %s: delivery %d is its record %d (order %v...)", k, i, n, got[:min(len(got), i+3)])
				break
			}
		}
	}
	for _, sh := range out.Shards {
		id := aws.ToString(sh.ShardId)
		span, ok := l.shards[id]
		if !ok {
			s.t.Errorf("no record delivered from shard %s", id)
			continue
		}
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if p == nil {
				continue
			}
			if ps, ok := l.shards[*p]; ok && ps.last > span.first {
				s.t.Errorf("child %s delivered its first record (#%d) before parent %s its last (#%d)", id, span.first, *p, ps.last)
			}
		}
	}
}

// ledger records what a library delivered, in delivery order.
type ledger struct {
	mu     sync.Mutex
	n      int              // deliveries so far
	seen   map[string]bool  // data of records delivered
	dups   []string         // data delivered again
	byKey  map[string][]int // per key, its record numbers in delivery order
	shards map[string]*span // per shard, its first and last delivery
	bad    []string         // records that are not the workload's
}

// span is the first and last delivery number of a shard's records, how
// many there were, and the sequence number of the last one.
type span struct {
	first, last, count int
	lastSeq            string
}

func newLedger() *ledger {
	return &ledger{seen: map[string]bool{}, byKey: map[string][]int{}, shards: map[string]*span{}}
}

// deliver notes records a library handed its application from shard.
func (l *ledger) deliver(shard string, recs []types.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		d := string(r.Data)
		k, num, ok := strings.Cut(d, "/")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || k != aws.ToString(r.PartitionKey) {
			l.bad = append(l.bad, d)
			continue
		}
		if l.seen[d] {
			l.dups = append(l.dups, d)
		}
		l.seen[d] = true
		l.byKey[k] = append(l.byKey[k], n)
		sp := l.shards[shard]
		if sp == nil {
			sp = &span{first: l.n}
			l.shards[shard] = sp
		}
		sp.last = l.n
		sp.count++
		sp.lastSeq = aws.ToString(r.SequenceNumber)
		l.n++
	}
}

func (l *ledger) distinct() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// read reports whether a record of shard was delivered.
func (l *ledger) read(shard string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.shards[shard] != nil
}

// lastSeq returns the sequence number of the last record delivered from
// shard.
func (l *ledger) lastSeq(shard string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if sp := l.shards[shard]; sp != nil {
		return sp.lastSeq
	}
	return ""
}

func (l *ledger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	per := map[string]int{}
	for id, sp := range l.shards {
		per[id] = sp.count
	}
	return fmt.Sprintf("%d deliveries, %d distinct, %d duplicates, %d foreign; shards %v", l.n, len(l.seen), len(l.dups), len(l.bad), per)
}
