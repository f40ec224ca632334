package integration

import (
	"bufio"
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// vmRSS is the resident set size of process pid, in bytes.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// peakRSS samples pid's RSS every 50 ms for d and returns the largest.
func peakRSS(t *testing.T, pid int, d time.Duration) int64 {
	t.Helper()
	var peak int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		peak = max(peak, vmRSS(t, pid))
	}
	return peak
}

// settledRSS waits up to d for pid's RSS to fall below limit and returns
// the last sample.
func settledRSS(t *testing.T, pid int, limit int64, d time.Duration) int64 {
	t.Helper()
	var rss int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if rss = vmRSS(t, pid); rss < limit {
			break
		}
	}
	return rss
}

const mib = 1 << 20

// TestDeclaredLengthAttack: clients that each declare a 16 MiB body and send
// one byte cost the server what arrived, not what was declared, over
// HTTP/1.1 and over h2c.
func TestDeclaredLengthAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 800 connections and streams")
	}
	s := startServer(t, t.TempDir(), "--engine", "memory")
	pid := s.cmd.Process.Pid
	// A little traffic first, so the baseline includes a warm server.
	c := s.client()
	if _, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{}); err != nil {
		t.Fatal(err)
	}
	base := vmRSS(t, pid)
	t.Logf("baseline RSS %d MiB", base/mib)
	const declared = 16 << 20
	head := "POST / HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Type: application/x-amz-json-1.1\r\n" +
		unverifiedAuthLines + "X-Amz-Target: Kinesis_20131202.PutRecords\r\nContent-Length: " + strconv.Itoa(declared) + "\r\n\r\n{"

	t.Run("http1.1 300 connections", func(t *testing.T) {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for range 300 {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
			if _, err := c.Write([]byte(head)); err != nil {
				t.Fatal(err)
			}
		}
		peak := peakRSS(t, pid, 2*time.Second)
		t.Logf("peak RSS %d MiB under 300 connections declaring 16 MiB", peak/mib)
		if peak > 400*mib {
			t.Errorf("peak RSS %d MiB, want under 400 MiB", peak/mib)
		}
		// The connections are still being served, not refused.
		for _, c := range conns[:3] {
			_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, err := c.Read(make([]byte, 1)); n != 0 || !isTimeout(err) {
				t.Fatalf("connection answered early: %v", err)
			}
		}
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		after := settledRSS(t, pid, base+64*mib, 10*time.Second)
		t.Logf("RSS %d MiB after the connections closed", after/mib)
		if after > base+64*mib {
			t.Errorf("RSS %d MiB after closing, baseline %d MiB", after/mib, base/mib)
		}
	})

	t.Run("h2c 500 streams", func(t *testing.T) {
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		tr := &http.Transport{Protocols: &protos}
		defer tr.CloseIdleConnections()
		var wg sync.WaitGroup
		var pipes []*io.PipeWriter
		defer func() {
			for _, pw := range pipes {
				pw.CloseWithError(io.ErrUnexpectedEOF)
			}
			wg.Wait()
		}()
		for range 500 {
			pr, pw := io.Pipe()
			pipes = append(pipes, pw)
			req, _ := http.NewRequest(http.MethodPost, s.endpoint()+"/", pr)
			req.ContentLength = declared
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
			setUnverifiedAuth(req.Header)
			wg.Go(func() {
				if resp, err := tr.RoundTrip(req); err == nil {
					resp.Body.Close()
				}
			})
			go func() { _, _ = pw.Write([]byte("{")) }()
		}
		peak := peakRSS(t, pid, 3*time.Second)
		t.Logf("peak RSS %d MiB under 500 h2c streams declaring 16 MiB", peak/mib)
		if peak > 400*mib {
			t.Errorf("peak RSS %d MiB, want under 400 MiB", peak/mib)
		}
		for _, pw := range pipes {
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}
		pipes = nil
		wg.Wait()
		tr.CloseIdleConnections()
		after := settledRSS(t, pid, base+64*mib, 10*time.Second)
		t.Logf("RSS %d MiB after the streams ended", after/mib)
		if after > base+64*mib {
			t.Errorf("RSS %d MiB after the streams ended, baseline %d MiB", after/mib, base/mib)
		}
	})

	// The server still works.
	if _, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{}); err != nil {
		t.Fatal(err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestHTTPFront checks, on the wire of a real `runnel serve`, the answers
// that no SDK call shows: the Host check, CORS, the 403 to other methods,
// the plain-JSON envelope and x-amz-id-2.
func TestHTTPFront(t *testing.T) {
	s := startServer(t, t.TempDir(), "--engine", "memory",
		"--cors-origins", "http://localhost:3000", "--allowed-hosts", "runnel.test")
	_, port, _ := net.SplitHostPort(s.addr)

	do := func(t *testing.T, method, host string, hdr map[string]string, body string) (*http.Response, string) {
		t.Helper()
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req := method + " / HTTP/1.1\r\nHost: " + host + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
		for k, v := range hdr {
			req += k + ": " + v + "\r\n"
		}
		if _, err := c.Write([]byte(req + "\r\n" + body)); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	api := map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListStreams",
		"Authorization": unverifiedAuthorization, "X-Amz-Date": unverifiedDate}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}

	t.Run("host", func(t *testing.T) {
		for _, tt := range []struct {
			host string
			want int
		}{
			{"127.0.0.1:" + port, 200},
			{"localhost:" + port, 200},
			{"[::1]:" + port, 200},
			{"runnel.test:" + port, 200},
			{"evil.example:" + port, 403}, // DNS rebinding: a name of the attacker's resolving to 127.0.0.1
			{"evil.example", 403},
		} {
			resp, body := do(t, "POST", tt.host, api, "{}")
			if resp.StatusCode != tt.want {
				t.Errorf("Host %s: %d %s", tt.host, resp.StatusCode, body)
			}
			if tt.want == 403 && (resp.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" || !strings.Contains(body, "--allowed-hosts")) {
				t.Errorf("Host %s: %q %s", tt.host, resp.Header.Get("X-Amzn-ErrorType"), body)
			}
		}
	})

	t.Run("cors", func(t *testing.T) {
		preflight := map[string]string{"Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "content-type,x-amz-target,x-amz-date,authorization"}
		resp, body := do(t, "OPTIONS", s.addr, with(preflight, "Origin", "http://localhost:3000"), "")
		want := map[string]string{
			"Access-Control-Allow-Origin":  "http://localhost:3000",
			"Access-Control-Allow-Headers": "content-type,x-amz-target,x-amz-date,authorization",
			"Access-Control-Allow-Methods": "POST",
			"Access-Control-Max-Age":       "172800",
			"Content-Length":               "0",
		}
		if resp.StatusCode != 200 || body != "" {
			t.Errorf("preflight: %d %q", resp.StatusCode, body)
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("preflight %s %q, want %q", k, got, v)
			}
		}
		if resp.Header.Get("x-amz-id-2") != "" || resp.Header.Get("x-amzn-RequestId") == "" {
			t.Errorf("preflight ids: %v", resp.Header)
		}

		resp, _ = do(t, "OPTIONS", s.addr, with(preflight, "Origin", "http://evil.example"), "")
		if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Headers") != "" {
			t.Errorf("preflight from another origin: %d %v", resp.StatusCode, resp.Header)
		}

		resp, _ = do(t, "POST", s.addr, with(api, "Origin", "http://localhost:3000"), "{}")
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
			!strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "x-amzn-RequestId") {
			t.Errorf("request from the listed origin: %d %v", resp.StatusCode, resp.Header)
		}
		resp, _ = do(t, "POST", s.addr, with(api, "Origin", "http://evil.example"), "{}")
		for k := range resp.Header {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("request from another origin carries %s", k)
			}
		}
	})

	t.Run("non-POST 403 XML", func(t *testing.T) {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			resp, body := do(t, m, s.addr, api, "")
			const want = "<AccessDeniedException>\n  <Message>Unable to determine service/operation name to be authorized</Message>\n</AccessDeniedException>\n"
			if resp.StatusCode != 403 || body != want {
				t.Errorf("%s: %d %q", m, resp.StatusCode, body)
			}
			if ct, ok := resp.Header["Content-Type"]; ok {
				t.Errorf("%s: Content-Type %q; Kinesis sends none", m, ct)
			}
		}
	})

	t.Run("plain JSON envelope", func(t *testing.T) {
		resp, body := do(t, "POST", s.addr, with(api, "Content-Type", "application/json"), "{}")
		if resp.StatusCode != 200 || body != `{"Output":{"__type":"com.amazon.coral.service#UnknownOperationException","message":null},"Version":"1.0"}` {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
		resp, body = do(t, "POST", s.addr, api, `{"Limit":0}`)
		if resp.StatusCode != 400 || strings.Contains(body, "null") {
			t.Errorf("validation error: %d %s", resp.StatusCode, body)
		}
		resp, body = do(t, "POST", s.addr, with(api, "X-Amz-Target", "Kinesis_20131202.Nope"), "{}")
		if body != `{"__type":"UnknownOperationException"}` {
			t.Errorf("unknown operation: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("x-amz-id-2", func(t *testing.T) {
		resp, _ := do(t, "POST", s.addr, api, "{}")
		id := resp.Header.Get("x-amz-id-2")
		b, err := base64.StdEncoding.DecodeString(id)
		if err != nil || len(b) < 72 || len(b) > 80 {
			t.Errorf("x-amz-id-2 %q: %d bytes, %v", id, len(b), err)
		}
	})

	t.Run("invalid UTF-8 partition key", func(t *testing.T) {
		c := s.client()
		ctx := context.Background()
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("u"), ShardCount: aws.Int32(1)}); err != nil {
			t.Fatal(err)
		}
		resp, body := do(t, "POST", s.addr, with(api, "X-Amz-Target", "Kinesis_20131202.PutRecord"),
			`{"StreamName":"u","PartitionKey":"k\xff","Data":"eA=="}`)
		if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "SerializationException" {
			t.Errorf("%d %s", resp.StatusCode, body)
		}
	})
}

// TestSlowSubscribersMemory: SubscribeToShard consumers that never read
// hold one event each at most, and are cut off at --subscribe-write-timeout.
func TestSlowSubscribersMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("80 subscriptions over 32 MiB of records")
	}
	if os.Getenv("RUNNEL_TEST_ENGINE") != "" {
		// The process's RSS would count the embedded NATS servers' buffers.
		t.Skip("measures the RSS of a server on the disk engine")
	}
	const (
		shards    = 4
		consumers = 20
		timeout   = 3 * time.Second
	)
	s := startServer(t, t.TempDir(), "--transition-delay", "0s", "--subscribe-write-timeout", timeout.String())
	pid := s.cmd.Process.Pid
	c := s.client()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("slow"), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, "slow")
	desc, err := c.DescribeStream(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String("slow")})
	if err != nil {
		t.Fatal(err)
	}
	streamARN := *desc.StreamDescription.StreamARN
	data := make([]byte, 1000<<10)
	for _, sh := range desc.StreamDescription.Shards {
		// More than the kernel's socket buffers take (4 MiB here), so that
		// the server is left holding an event.
		for range 8 {
			if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("slow"), Data: data,
				PartitionKey: aws.String("k"), ExplicitHashKey: sh.HashKeyRange.StartingHashKey}); err != nil {
				t.Fatal(err)
			}
		}
	}
	var arns []string
	for i := range consumers {
		out, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &streamARN, ConsumerName: aws.String("c" + strconv.Itoa(i))})
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, *out.Consumer.ConsumerARN)
	}
	time.Sleep(200 * time.Millisecond) // ACTIVE after the transition delay
	base := vmRSS(t, pid)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, arn := range arns {
		for _, sh := range desc.StreamDescription.Shards {
			conn := dialSmallWindow(t, s.addr)
			conns = append(conns, conn)
			body := `{"ConsumerARN":"` + arn + `","ShardId":"` + *sh.ShardId + `","StartingPosition":{"Type":"TRIM_HORIZON"}}`
			req := "POST / HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Type: application/x-amz-json-1.1\r\n" +
				unverifiedAuthLines + "X-Amz-Target: Kinesis_20131202.SubscribeToShard\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
			if _, err := conn.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
		}
	}
	peak := peakRSS(t, pid, timeout-500*time.Millisecond)
	n := int64(len(conns))
	t.Logf("%d subscriptions that do not read: RSS %d -> peak %d MiB, %.2f MiB each", n, base/mib, peak/mib, float64(peak-base)/float64(n)/mib)
	if per := (peak - base) / n; per > 4*mib {
		t.Errorf("%.2f MiB per stalled subscription", float64(per)/mib)
	}
	// Cut off at the timeout: every connection ends (a subscription lasts
	// five minutes otherwise). Reading before the timeout would let the
	// server go on.
	time.Sleep(timeout)
	deadline := time.Now().Add(5 * time.Second)
	for i, conn := range conns {
		// A larger window, so that what the kernel already holds drains.
		_ = conn.(*net.TCPConn).SetReadBuffer(4 << 20)
		_ = conn.SetReadDeadline(deadline)
		if n, err := io.Copy(io.Discard, conn); err != nil && isTimeout(err) {
			t.Fatalf("subscription %d still open %s after the write timeout (%d bytes read)", i, 5*time.Second, n)
		}
	}
}

// dialSmallWindow connects with a 4 KiB receive buffer, set before the
// handshake so that the window offered stays small.
func dialSmallWindow(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
