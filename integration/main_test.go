// Package integration drives a real `runnel serve` process on a loopback port
// with real clients: the AWS SDK for Go v2 and the AWS CLI.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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

	"github.com/runnel/runnel/internal/sdkclient"
)

// runnelBin is the server binary built once for the package's tests.
var runnelBin string

// sharedDir holds the shared server's data.
var sharedDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runnel-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runnelBin = filepath.Join(dir, "runnel")
	build := exec.Command("go", "build", "-o", runnelBin, "github.com/runnel/runnel/cmd/runnel")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build runnel:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	sharedDir = filepath.Join(dir, "shared-data")
	code := m.Run()
	if sharedSrv != nil {
		sharedSrv.kill()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// engineArgs are the flags that choose the engine of every server the tests
// start: RUNNEL_TEST_ENGINE=jetstream runs them on an embedded NATS node,
// cluster on an embedded 3-node NATS cluster; unset, on the disk engine.
func engineArgs() []string {
	switch os.Getenv("RUNNEL_TEST_ENGINE") {
	case "jetstream":
		return []string{"--engine", "jetstream"}
	case "cluster":
		return []string{"--cluster-dev"}
	}
	return nil
}

// diskOnly skips a test of the disk engine's own files when the tests run
// on another engine.
func diskOnly(t *testing.T) {
	t.Helper()
	if e := os.Getenv("RUNNEL_TEST_ENGINE"); e != "" {
		t.Skipf("a test of the disk engine's files; RUNNEL_TEST_ENGINE=%s", e)
	}
}

// server is one `runnel serve` child process.
type server struct {
	cmd     *exec.Cmd
	addr    string
	dataDir string
	log     *logBuffer
}

// logBuffer collects a process's output; tests may read it while the
// process writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer runs `runnel serve` on a free port over dataDir and waits until
// it accepts connections. The process is killed at the end of the test.
func startServer(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	return startServerAt(t, addr, dataDir, args...)
}

func startServerAt(t *testing.T, addr, dataDir string, args ...string) *server {
	t.Helper()
	s := launch(t, addr, dataDir, args...)
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server log:\n%s", s.log.String())
		}
	})
	return s
}

// launch starts the process and waits for its port; the caller kills it.
func launch(t testing.TB, addr, dataDir string, args ...string) *server {
	t.Helper()
	// The admin listener on a free port of its own: servers run side by side.
	full := append([]string{"serve", "--listen", addr, "--data-dir", dataDir, "--admin-listen", "127.0.0.1:0"}, args...)
	if !slices.Contains(args, "--engine") {
		full = append(full, engineArgs()...)
	}
	cmd := exec.Command(runnelBin, full...)
	var log logBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, addr: addr, dataDir: dataDir, log: &log}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			s.kill()
			t.Fatalf("runnel serve did not listen on %s within 20s; log:\n%s", addr, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
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

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runnel serve exited with %v after SIGTERM; log:\n%s", err, s.log.String())
		}
	case <-time.After(15 * time.Second):
		s.kill()
		t.Fatalf("runnel serve did not exit within 15s of SIGTERM")
	}
}

// client returns an SDK client for the server. Each concurrent user should
// have its own client.
func (s *server) client() *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:   sdkclient.Guard(awshttp.NewBuildableClient()),
	})
}

// waitActive polls DescribeStreamSummary until the stream is ACTIVE.
func waitActive(t *testing.T, c *kinesis.Client, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w := kinesis.NewStreamExistsWaiter(c, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = 200 * time.Millisecond
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(name)}, 20*time.Second); err != nil {
		t.Fatalf("stream %s not ACTIVE: %v", name, err)
	}
}

// newRawRequest builds a hand-made API request, for what the SDK cannot send.
func newRawRequest(s *server, target, contentType, body string) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, s.endpoint()+"/", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", contentType)
	setUnverifiedAuth(req.Header)
	return req, nil
}

// A well-formed SigV4 signature whose value is not checked: a server
// without --credentials accepts any, but only on a request that is signed.
const (
	unverifiedDate          = "20261206T000000Z"
	unverifiedAuthorization = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261206/us-east-1/kinesis/aws4_request, " +
		"SignedHeaders=host;x-amz-date, Signature=0000000000000000000000000000000000000000000000000000000000000000"
	// unverifiedAuthLines are the same as raw HTTP/1.1 header lines.
	unverifiedAuthLines = "Authorization: " + unverifiedAuthorization + "\r\nX-Amz-Date: " + unverifiedDate + "\r\n"
)

// setUnverifiedAuth gives a hand-made request the unverified signature.
func setUnverifiedAuth(h http.Header) {
	h.Set("Authorization", unverifiedAuthorization)
	h.Set("X-Amz-Date", unverifiedDate)
}

// doRaw sends req and returns the status and body.
func doRaw(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}
