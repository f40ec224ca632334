package kinesisapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"

	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/server"
	"github.com/runnel/runnel/internal/streams"
)

// liveServer is a handler on a real service (memory engine) behind the real
// listener (HTTP/1.1 and h2c on one port).
type liveServer struct {
	h    *Handler
	svc  *streams.Service
	addr string
}

func startLive(t *testing.T, tune func(*Options)) *liveServer {
	t.Helper()
	eng := mem.New(mem.DefaultOptions())
	sopts := streams.DefaultOptions()
	sopts.TransitionDelay = 0
	svc, err := streams.New(context.Background(), eng, sopts)
	if err != nil {
		t.Fatal(err)
	}
	hopts := DefaultOptions()
	hopts.Logger = slog.New(slog.DiscardHandler)
	if tune != nil {
		tune(&hopts)
	}
	h, err := NewHandler(svc, hopts)
	if err != nil {
		t.Fatal(err)
	}
	sv := server.DefaultOptions()
	sv.Addr = "127.0.0.1:0"
	sv.Logger = slog.New(slog.DiscardHandler)
	srv, err := server.Listen(context.Background(), h, sv)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	t.Cleanup(func() {
		svc.EndSubscriptions()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
		_ = svc.Close()
		_ = eng.Close()
	})
	return &liveServer{h: h, svc: svc, addr: srv.Addr().String()}
}

// call posts a JSON request and decodes the answer into out (when not nil).
func (s *liveServer) call(t *testing.T, op string, in, out any) {
	t.Helper()
	b, _ := json.Marshal(in)
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/", bytes.NewReader(b))
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("X-Amz-Target", TargetPrefix+"."+op)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", op, resp.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatal(err)
		}
	}
}

// rawRequest is an HTTP/1.1 request head for op with the given extra
// headers.
func (s *liveServer) rawRequest(op string, extra ...string) string {
	h := "POST / HTTP/1.1\r\nHost: " + s.addr + "\r\nContent-Type: " + contentTypeJSON +
		"\r\nX-Amz-Target: " + TargetPrefix + "." + op + "\r\n"
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h + "\r\n"
}

// dialSmall connects with a small receive buffer, so that an answer the
// client does not read stays in the server's hands instead of the kernel's.
func (s *liveServer) dialSmall(t *testing.T) *net.TCPConn {
	t.Helper()
	// Set before connecting, so that the window offered is small from the
	// start.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := c.(*net.TCPConn)
	t.Cleanup(func() { tc.Close() })
	return tc
}

// readUntilClosed reads c until the server closes it, or fails the test at
// the deadline. It returns what was read.
func readUntilClosed(t *testing.T, c net.Conn, within time.Duration) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s (%d bytes read)", within, buf.Len())
	}
	return buf.Bytes()
}

func TestStalledBodyTimesOut(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s := startLive(t, func(o *Options) { o.BodyReadTimeout = timeout })
	tests := []struct {
		name  string
		head  string
		trick func(c net.Conn) // what the client sends of the body
	}{
		{"content-length stalled", s.rawRequest("ListStreams", "Content-Length: 1000"), func(c net.Conn) {
			_, _ = c.Write([]byte(`{"Limit":`))
		}},
		{"chunked stalled", s.rawRequest("ListStreams", "Transfer-Encoding: chunked"), func(c net.Conn) {
			_, _ = c.Write([]byte("2\r\n{}\r\n"))
		}},
		{"content-length trickled", s.rawRequest("ListStreams", "Content-Length: 100"), func(c net.Conn) {
			go func() {
				for range 100 {
					if _, err := c.Write([]byte(" ")); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			if _, err := c.Write([]byte(tt.head)); err != nil {
				t.Fatal(err)
			}
			tt.trick(c)
			got := readUntilClosed(t, c, 5*time.Second)
			if el := time.Since(start); el < timeout || el > timeout+2*time.Second {
				t.Errorf("closed after %s, want about %s", el, timeout)
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(got)), nil)
			if err != nil {
				t.Fatalf("answer %q: %v", got, err)
			}
			if resp.StatusCode != http.StatusRequestTimeout || resp.Header.Get("X-Amzn-ErrorType") != "RequestTimeoutException" {
				t.Errorf("answer %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
			}
		})
	}
	if n := s.h.budget.used.Load(); n != 0 {
		t.Errorf("%d body bytes still charged", n)
	}
}

func TestStalledBodyTimesOutH2C(t *testing.T) {
	const timeout = 500 * time.Millisecond
	s := startLive(t, func(o *Options) { o.BodyReadTimeout = timeout })
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/", pr)
	req.ContentLength = 1000
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("X-Amz-Target", TargetPrefix+".ListStreams")
	go func() { _, _ = pw.Write([]byte("{")) }()
	start := time.Now()
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			err = fmt.Errorf("protocol %s", resp.Proto)
		}
		done <- result{status: resp.StatusCode, err: err}
	}()
	select {
	case r := <-done:
		// The 408 answer, or the stream reset that may overtake it.
		if r.err == nil && r.status != http.StatusRequestTimeout {
			t.Fatalf("status %d", r.status)
		}
		if r.err != nil && !strings.Contains(r.err.Error(), "stream error") {
			t.Fatalf("round trip: %v", r.err)
		}
		if el := time.Since(start); el > timeout+2*time.Second {
			t.Errorf("answered after %s", el)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stalled h2 stream still open after 5s")
	}
}

// putBig writes n records of size bytes each to a new one-shard stream.
func (s *liveServer) putBig(t *testing.T, stream string, n, size int) {
	t.Helper()
	s.call(t, "CreateStream", map[string]any{"StreamName": stream, "ShardCount": 1}, nil)
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), size))
	for range n {
		s.call(t, "PutRecord", map[string]any{"StreamName": stream, "PartitionKey": "k", "Data": data}, nil)
	}
}

func TestUnreadAnswerReleased(t *testing.T) {
	const timeout = time.Second
	s := startLive(t, func(o *Options) { o.WriteTimeout = timeout })
	s.putBig(t, "big", 8, 1<<20-64)
	var it struct{ ShardIterator string }
	s.call(t, "GetShardIterator", map[string]any{"StreamName": "big", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}, &it)

	c := s.dialSmall(t)
	body := `{"ShardIterator":"` + it.ShardIterator + `"}`
	if _, err := c.Write([]byte(s.rawRequest("GetRecords", "Content-Length: "+strconv.Itoa(len(body))) + body)); err != nil {
		t.Fatal(err)
	}
	// The client reads nothing while the deadline passes...
	time.Sleep(timeout + time.Second)
	// ...then finds the answer cut short and the connection closed.
	got := readUntilClosed(t, c, 5*time.Second)
	head, rest, ok := bytes.Cut(got, []byte("\r\n\r\n"))
	if !ok || !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) {
		t.Fatalf("answer starts %q", got[:min(len(got), 200)])
	}
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(append(head, "\r\n\r\n"...))), nil)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(rest)) >= resp.ContentLength {
		t.Fatalf("whole answer (%d bytes) delivered: the write deadline did not cut it", len(rest))
	}
	t.Logf("%d of %d answer bytes sent before the cut", len(rest), resp.ContentLength)
}

func TestSlowSubscriberCut(t *testing.T) {
	const timeout = time.Second
	s := startLive(t, func(o *Options) { o.SubscribeWriteTimeout = timeout })
	s.putBig(t, "efo", 8, 1<<20-64)
	var reg struct{ Consumer struct{ ConsumerARN string } }
	s.call(t, "RegisterStreamConsumer", map[string]any{
		"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/efo", "ConsumerName": "slow"}, &reg)

	c := s.dialSmall(t)
	body, _ := json.Marshal(map[string]any{"ConsumerARN": reg.Consumer.ConsumerARN, "ShardId": "shardId-000000000000",
		"StartingPosition": map[string]any{"Type": "TRIM_HORIZON"}})
	if _, err := c.Write([]byte(s.rawRequest("SubscribeToShard", "Content-Length: "+strconv.Itoa(len(body))) + string(body))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(timeout + time.Second)
	// A subscription lasts 5 minutes; one that ends now was cut.
	got := readUntilClosed(t, c, 5*time.Second)
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 200")) {
		t.Fatalf("answer starts %q", got[:min(len(got), 200)])
	}
	if len(got) > 6<<20 {
		t.Errorf("%d bytes delivered, most of the 8 MiB in base64: not cut", len(got))
	}
	t.Logf("%d bytes delivered before the cut", len(got))
}

func TestBodyMemoryBudget(t *testing.T) {
	const limit = 64 << 10
	s := startLive(t, func(o *Options) { o.MaxBodyBytes = limit; o.MaxBodyMemory = limit })
	// A first request holds the whole budget: 40 KiB arrived of 64 KiB.
	hog, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	if _, err := hog.Write([]byte(s.rawRequest("ListStreams", "Content-Length: "+strconv.Itoa(limit)) + `{"Limit":1` + strings.Repeat(" ", 40<<10))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.h.budget.used.Load() < limit && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := s.h.budget.used.Load(); got != limit {
		t.Fatalf("budget used %d, want %d", got, limit)
	}
	// A second request finds no room: 503 ServiceUnavailable, retryable.
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/", strings.NewReader(`{"Limit":1}`+strings.Repeat(" ", 8<<10)))
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("X-Amz-Target", TargetPrefix+".ListStreams")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Amzn-ErrorType") != "ServiceUnavailable" {
		t.Fatalf("over budget: %d %q %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b)
	}
	// The first one completes, gives its memory back, and requests pass again.
	if _, err := hog.Write([]byte("}" + strings.Repeat(" ", limit-(40<<10)-len(`{"Limit":1}`)))); err != nil {
		t.Fatal(err)
	}
	r, err := http.ReadResponse(bufio.NewReader(hog), nil)
	if err != nil || r.StatusCode != 200 {
		t.Fatalf("first request: %v %v", r, err)
	}
	r.Body.Close()
	s.call(t, "ListStreams", map[string]any{}, nil)
	if n := s.h.budget.used.Load(); n != 0 {
		t.Errorf("%d body bytes still charged", n)
	}
}

func TestReadBodyGrowsWithArrival(t *testing.T) {
	budget := &bodyBudget{limit: 1 << 30}
	// 16 MiB declared, one byte sent, then the client is gone.
	r := io.MultiReader(strings.NewReader("{"), iotestErrReader{io.ErrUnexpectedEOF})
	bd, err := readBody(r, 16<<20, 16<<20, budget)
	if !errors.Is(err, errBodyBroken) {
		t.Fatalf("err %v", err)
	}
	if cap(bd.b) > minBodyBuffer || bd.held > minBodyBuffer || budget.used.Load() != bd.held {
		t.Errorf("one byte holds a %d-byte buffer, %d charged", cap(bd.b), bd.held)
	}
	bd.release()
	if budget.used.Load() != 0 {
		t.Errorf("%d still charged", budget.used.Load())
	}
	// A whole body of n bytes holds at most growFactor times n, and less
	// than twice n when its length is declared.
	for _, n := range []int{0, 1, 4 << 10, 5000, 1 << 20, 3<<20 + 7} {
		for _, declared := range []int64{int64(n), -1} {
			bd, err := readBody(bytes.NewReader(bytes.Repeat([]byte("a"), n)), declared, 16<<20, budget)
			if err != nil || len(bd.b) != n {
				t.Fatalf("n=%d: %d bytes, %v", n, len(bd.b), err)
			}
			if bd.held > int64(max(growFactor*n, minBodyBuffer)) || declared >= 0 && bd.held > int64(max(2*n, minBodyBuffer)) {
				t.Errorf("n=%d declared=%d: %d bytes held", n, declared, bd.held)
			}
			bd.release()
		}
	}
	// Undeclared: exactly the limit passes, one byte more does not.
	for _, tt := range []struct {
		n, max int
		err    error
	}{
		{4096, 4096, nil},
		{4097, 4096, errBodyTooLarge},
		{5000, 4096, errBodyTooLarge},
		{16 << 20, 16 << 20, nil},
		{16<<20 + 1, 16 << 20, errBodyTooLarge},
	} {
		bd, err = readBody(bytes.NewReader(make([]byte, tt.n)), -1, int64(tt.max), budget)
		if !errors.Is(err, tt.err) || tt.err == nil && len(bd.b) != tt.n {
			t.Errorf("%d bytes, limit %d: %d read, %v", tt.n, tt.max, len(bd.b), err)
		}
		if bd.held > int64(tt.max) {
			t.Errorf("%d bytes, limit %d: %d held", tt.n, tt.max, bd.held)
		}
		bd.release()
	}
	if budget.used.Load() != 0 {
		t.Errorf("%d still charged", budget.used.Load())
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

func TestUnreadAnswerReleasedH2C(t *testing.T) {
	const timeout = time.Second
	s := startLive(t, func(o *Options) { o.WriteTimeout = timeout })
	s.putBig(t, "big", 8, 1<<20-64)
	var it struct{ ShardIterator string }
	s.call(t, "GetShardIterator", map[string]any{"StreamName": "big", "ShardId": "shardId-000000000000", "ShardIteratorType": "TRIM_HORIZON"}, &it)

	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/", strings.NewReader(`{"ShardIterator":"`+it.ShardIterator+`"}`))
	req.Header.Set("Content-Type", contentTypeJSON)
	req.Header.Set("X-Amz-Target", TargetPrefix+".GetRecords")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 {
		t.Fatalf("%s %d", resp.Proto, resp.StatusCode)
	}
	time.Sleep(timeout + time.Second)
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n >= resp.ContentLength {
		t.Fatalf("read %d of %d bytes, %v: the stream was not cut", n, resp.ContentLength, err)
	}
	t.Logf("%d of %d bytes before the stream was reset: %v", n, resp.ContentLength, err)
}

// The AWS SDK for Go v2 retries the 503 of a full body budget and, when
// the budget stays full, reports ServiceUnavailable.
func TestBodyBudgetSDKRetries(t *testing.T) {
	const limit = 64 << 10
	s := startLive(t, func(o *Options) { o.MaxBodyBytes = limit; o.MaxBodyMemory = limit })
	hog, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	if _, err := hog.Write([]byte(s.rawRequest("ListStreams", "Content-Length: "+strconv.Itoa(limit)) + `{` + strings.Repeat(" ", 40<<10))); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); s.h.budget.used.Load() < limit && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	c := kinesis.New(kinesis.Options{
		Region:           "us-east-1",
		BaseEndpoint:     aws.String("http://" + s.addr),
		Credentials:      credentials.NewStaticCredentialsProvider("AKID", "secret", ""),
		RetryMaxAttempts: 3,
	})
	_, err = c.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("s"),
		PartitionKey: aws.String("k"), Data: bytes.Repeat([]byte("x"), 8<<10)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "ServiceUnavailable" {
		t.Fatalf("error %v, want ServiceUnavailable", err)
	}
	var maxed *retry.MaxAttemptsError
	if !errors.As(err, &maxed) || maxed.Attempt != 3 {
		t.Fatalf("error %v: the SDK did not retry it", err)
	}
}
