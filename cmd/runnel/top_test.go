package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/creack/pty"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// screen collects what a program writes to a pseudo-terminal.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestTopInTerminal runs `runnel top` on a pseudo-terminal against a server
// with the console: it draws on the alternate screen, shows the stream
// with its rate once the console has sampled it, and quits on q,
// restoring the screen.
func TestTopInTerminal(t *testing.T) {
	admin := freeAddr(t)
	cfg := testConfig(t, "memory")
	cfg.adminListen, cfg.adminExplicit, cfg.console = admin, true, true
	srv, stop := startServe(t, cfg)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	kc := kinesisClient(srv.Endpoint(), "us-east-1", mapEnv(nil))
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	// Records keep coming until the console has two samples with them.
	putCtx, stopPut := context.WithCancel(ctx)
	var putting sync.WaitGroup
	putting.Add(1)
	go func() {
		defer putting.Done()
		for i := 0; putCtx.Err() == nil; i++ {
			_, _ = kc.PutRecord(putCtx, &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte("0123456789")})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { stopPut(); putting.Wait() }()

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(tty, &pty.Winsize{Rows: 30, Cols: 140}); err != nil {
		t.Fatal(err)
	}
	var scr screen
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		b := make([]byte, 4096)
		for {
			n, err := ptmx.Read(b)
			scr.mu.Lock()
			scr.buf.Write(b[:n])
			scr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	top := &topper{cfg: topConfig{endpoint: srv.Endpoint(), region: "us-east-1", admin: "http://" + admin, interval: 200 * time.Millisecond},
		client: kc, http: &http.Client{Timeout: 5 * time.Second}}
	done := make(chan error, 1)
	go func() { done <- top.run(ctx, tty, tty) }()

	// A row for orders: ACTIVE, 3 shards, and a rate above zero.
	row := regexp.MustCompile(`orders\s+ACTIVE\s+PROVISIONED\s+3\s+([0-9.]+)\s+([0-9.]+ (B|KiB))`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := row.FindAllStringSubmatch(scr.String(), -1)
		if len(m) > 0 && m[len(m)-1][1] != "0.00" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no row with a rate for orders on the screen:\n%q", tail(scr.String(), 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	out := scr.String()
	for _, want := range []string{"\x1b[?1049h", "\x1b[H", "STREAM", "REC/S", "ITER AGE"} {
		if !strings.Contains(out, want) {
			t.Errorf("the screen lacks %q", want)
		}
	}
	if _, err := ptmx.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("top did not quit on q")
	}
	deadline = time.Now().Add(10 * time.Second)
	for !strings.HasSuffix(scr.String(), "\x1b[?25h\x1b[?1049l") {
		if time.Now().After(deadline) {
			t.Fatalf("the screen was not restored: ends %q", tail(scr.String(), 200))
		}
		time.Sleep(20 * time.Millisecond)
	}
	tty.Close()
	ptmx.Close()
	<-readDone
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestTopWithoutConsole prints plain tables when stdout is not a terminal
// and says how to get the rates when the admin listener does not answer.
func TestTopWithoutConsole(t *testing.T) {
	srv, stop := startServe(t, testConfig(t, "memory"))
	defer stop()
	kc := kinesisClient(srv.Endpoint(), "us-east-1", mapEnv(nil))
	if _, err := kc.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"top", "--endpoint", srv.Endpoint(), "--admin", "http://" + freeAddr(t), "--interval", "100ms"}, &out, &out, mapEnv(nil))
	}()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(out.String(), "STREAM") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	got := out.String()
	if strings.Contains(got, "\x1b[") {
		t.Errorf("escape codes in output to a pipe: %q", got)
	}
	if !regexp.MustCompile(`(?m)^s\s+ACTIVE\s+PROVISIONED\s+1\s+-\s+-\s+-`).MatchString(got) || !strings.Contains(got, "start runnel serve with --console") {
		t.Errorf("output:\n%s", got)
	}
}
