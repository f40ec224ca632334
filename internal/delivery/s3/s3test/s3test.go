// Package s3test runs a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw, Apache-2.0) serving a temporary directory
// on a loopback port, with real SigV4 checks. `make setup` installs it in
// $(go env GOPATH)/bin; a test without it skips, or fails under CI.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials of the servers this package starts.
const (
	AccessKey = "runneltestaccess"
	SecretKey = "runneltestsecret"
)

// Binary returns the path of versitygw, or skips t (fails it under CI).
func Binary(t testing.TB) string {
	t.Helper()
	var candidates []string
	if p, err := exec.LookPath("versitygw"); err == nil {
		candidates = append(candidates, p)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			candidates = append(candidates, filepath.Join(dir, "bin", "versitygw"))
		}
	}
	for _, p := range candidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("versitygw not found: `make setup` installs it (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
	}
	t.Skip("versitygw not installed: go install github.com/versity/versitygw/cmd/versitygw@v1.8.0")
	return ""
}

// Server is a running versitygw.
type Server struct {
	t    testing.TB
	bin  string
	addr string
	// Root is the directory served: bucket NAME is Root/NAME.
	Root string

	mu  sync.Mutex
	cmd *exec.Cmd
	log *bytes.Buffer
}

// Start runs versitygw over a new temporary directory and stops it when
// the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{t: t, bin: Binary(t), addr: addr, Root: t.TempDir()}
	s.Restart()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			s.mu.Lock()
			t.Logf("versitygw log:\n%s", s.log.String())
			s.mu.Unlock()
		}
	})
	return s
}

// Endpoint is the server's URL.
func (s *Server) Endpoint() string { return "http://" + s.addr }

// Client returns an S3 client for the server.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(s.Endpoint()),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

// CreateBucket creates bucket name with the S3 API.
func (s *Server) CreateBucket(name string) {
	s.t.Helper()
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		s.t.Fatalf("create bucket %s: %v", name, err)
	}
}

// Stop kills the server; Restart starts it again on the same port.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server (again) and waits until it accepts
// connections.
func (s *Server) Restart() {
	s.t.Helper()
	s.mu.Lock()
	cmd := exec.Command(s.bin, "--access", AccessKey, "--secret", SecretKey, "--port", s.addr, "--quiet", "posix", s.Root)
	log := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatal(err)
	}
	s.cmd, s.log = cmd, log
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("versitygw did not listen on %s within 30s: %v", s.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// String describes the server for messages.
func (s *Server) String() string { return fmt.Sprintf("versitygw at %s over %s", s.addr, s.Root) }
