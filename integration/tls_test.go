package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/internal/sdkclient"
	"github.com/runnel/runnel/internal/testpki"
)

// servedSerial dials addr over TLS and returns the serial number of the
// certificate presented, or 0 when the handshake fails.
func servedSerial(addr string, roots *x509.CertPool) int64 {
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		return 0
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

// TestTLSReloadOnSIGHUP runs `runnel serve` with certificate files,
// replaces them, sends SIGHUP and sees the new certificate's serial from a
// client; a broken pair is refused with a log line and the previous one
// kept.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "runnel test CA")
	cert, key := ca.Issue(t, dir, "server", 1001, false)
	s := startServer(t, t.TempDir(), "--engine", "memory", "--tls-cert", cert, "--tls-key", key)
	// The listener is up before the certificate is known to be served.
	waitFor(t, 20*time.Second, "first certificate", func() bool { return servedSerial(s.addr, ca.Pool()) == 1001 })

	// The AWS SDK works over it.
	c := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("https://" + s.addr),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient: sdkclient.Guard(&http.Client{Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}, ForceAttemptHTTP2: true}}),
	})
	if _, err := c.ListStreams(context.Background(), &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("ListStreams over TLS: %v", err)
	}

	ca.Issue(t, dir, "server", 1002, false)
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "reloaded certificate", func() bool { return servedSerial(s.addr, ca.Pool()) == 1002 })

	// A key that does not match the certificate: refused, logged, the
	// previous pair still served.
	_, otherKey := ca.Issue(t, t.TempDir(), "other", 3000, false)
	pemKey, err := os.ReadFile(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "log of the refused reload", func() bool {
		return strings.Contains(s.log.String(), "TLS files not reloaded") && strings.Contains(s.log.String(), "private key does not match")
	})
	if got := servedSerial(s.addr, ca.Pool()); got != 1002 {
		t.Fatalf("serial %d after a refused reload, want 1002", got)
	}
	if s.cmd.ProcessState != nil {
		t.Fatal("the server exited")
	}
}

// TestTLSServeFlags drives the client-certificate and version flags of
// `runnel serve`.
func TestTLSServeFlags(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "server CA")
	clients := testpki.NewCA(t, "client CA")
	cert, key := ca.Issue(t, dir, "server", 1, false)
	caFile := clients.WriteCert(t, dir, "clients.pem")
	ccert, ckey := clients.Issue(t, dir, "app", 2, true)
	s := startServer(t, t.TempDir(), "--engine", "memory", "--tls-cert", cert, "--tls-key", key, "--tls-client-ca", caFile)

	pair, err := tls.LoadX509KeyPair(ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	post := func(cfg *tls.Config) error {
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest(http.MethodPost, "https://"+s.addr+"/", strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.ListStreams")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	waitFor(t, 20*time.Second, "a client with a certificate is served", func() bool {
		return post(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair}}) == nil
	})
	if err := post(&tls.Config{RootCAs: ca.Pool()}); err == nil {
		t.Fatal("a client without a certificate was served under --tls-client-ca (require by default)")
	}
	if err := post(&tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("TLS 1.1 was accepted")
	}
}

// TestSIGHUPDuringStart sends SIGHUP the moment the port first answers,
// while the disk engine is still being opened (the port is bound first):
// a reload sent during start must not end the process.
func TestSIGHUPDuringStart(t *testing.T) {
	for i := range 5 {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		cmd := exec.Command(runnelBin, "serve", "--listen", addr, "--data-dir", t.TempDir(), "--admin-listen", "off")
		var log logBuffer
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() { cmd.Process.Kill(); <-exited }
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Microsecond) {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("no listener on %s within 20s; log:\n%s", addr, log.String())
			}
		}
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(log.String(), "SIGHUP: nothing to reload"); time.Sleep(10 * time.Millisecond) {
			select {
			case err := <-exited:
				t.Fatalf("start %d: a SIGHUP during start ended the server (%v); log:\n%s", i, err, log.String())
			default:
			}
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("start %d: no log of the SIGHUP within 20s; log:\n%s", i, log.String())
			}
		}
		s := &server{cmd: cmd, addr: addr, log: &log}
		_, err := s.client().ListStreams(context.Background(), &kinesis.ListStreamsInput{})
		stop()
		if err != nil {
			t.Fatalf("start %d: after a SIGHUP during start: %v; log:\n%s", i, err, log.String())
		}
	}
}

// TestSIGHUPWithoutTLS: SIGHUP never ends a server, even one with nothing
// to reload.
func TestSIGHUPWithoutTLS(t *testing.T) {
	s := startServer(t, t.TempDir(), "--engine", "memory")
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "log of the SIGHUP", func() bool { return strings.Contains(s.log.String(), "SIGHUP: nothing to reload") })
	if _, err := s.client().ListStreams(context.Background(), &kinesis.ListStreamsInput{}); err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
}
