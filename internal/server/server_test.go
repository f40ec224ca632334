package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// protoHandler answers with the request's protocol version.
var protoHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = io.WriteString(w, r.Proto)
})

// start listens on a free loopback port and serves h until the test ends.
func start(t *testing.T, h http.Handler, opts Options) *Server {
	t.Helper()
	opts.Addr = "127.0.0.1:0"
	s, err := Listen(context.Background(), h, opts)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

func get(t *testing.T, c *http.Client, url string) string {
	t.Helper()
	resp, err := c.Post(url, "application/x-amz-json-1.1", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProtocolsCleartext(t *testing.T) {
	s := start(t, protoHandler, DefaultOptions())
	if !strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:") {
		t.Errorf("endpoint %s", s.Endpoint())
	}

	h1 := &http.Client{Transport: &http.Transport{}}
	defer h1.CloseIdleConnections()
	if got := get(t, h1, s.Endpoint()); got != "HTTP/1.1" {
		t.Errorf("HTTP/1.1 client saw %s", got)
	}

	// h2c with prior knowledge, as the AWS SDKs for Java and JavaScript do.
	// (The standard library's bundled HTTP/2 client; golang.org/x/net/http2's
	// Transport with AllowHTTP and a plain dialer is the same code.)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	h2c := &http.Transport{Protocols: &p}
	if got := get(t, &http.Client{Transport: h2c}, s.Endpoint()); got != "HTTP/2.0" {
		t.Errorf("h2c client saw %s", got)
	}
}

func TestProtocolsTLSSelfSigned(t *testing.T) {
	opts := DefaultOptions()
	opts.TLSSelfSigned = true
	s := start(t, protoHandler, opts)
	if !strings.HasPrefix(s.Endpoint(), "https://") || s.Certificate() == nil {
		t.Fatalf("endpoint %s cert %v", s.Endpoint(), s.Certificate())
	}
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())

	h2 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer h2.CloseIdleConnections()
	if got := get(t, &http.Client{Transport: h2}, s.Endpoint()); got != "HTTP/2.0" {
		t.Errorf("h2 client saw %s", got)
	}
	h1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}}
	defer h1.CloseIdleConnections()
	if got := get(t, &http.Client{Transport: h1}, s.Endpoint()); got != "HTTP/1.1" {
		t.Errorf("HTTP/1.1 over TLS client saw %s", got)
	}
	// The certificate names localhost too.
	port := s.Addr().(*net.TCPAddr).Port
	if got := get(t, &http.Client{Transport: h2}, "https://localhost:"+strconv.Itoa(port)); got != "HTTP/2.0" {
		t.Errorf("localhost: %s", got)
	}
}

func TestTLSFromFiles(t *testing.T) {
	cert, err := selfSigned(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.TLSCertFile, opts.TLSKeyFile = certFile, keyFile
	s := start(t, protoHandler, opts)
	roots := x509.NewCertPool()
	roots.AddCert(cert.Leaf)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	if got := get(t, &http.Client{Transport: tr}, s.Endpoint()); got != "HTTP/2.0" {
		t.Errorf("saw %s", got)
	}

	// A missing key file is reported before listening.
	opts.TLSKeyFile = filepath.Join(dir, "missing.pem")
	opts.Addr = "127.0.0.1:0"
	if _, err := Listen(context.Background(), protoHandler, opts); err == nil {
		t.Error("missing key file accepted")
	}
}

func TestGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	})
	opts := DefaultOptions()
	opts.Addr = "127.0.0.1:0"
	s, err := Listen(context.Background(), h, opts)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	got := make(chan string, 1)
	go func() {
		resp, err := c.Get(s.Endpoint())
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-entered

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	// The listener closes while the request is still running.
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.Addr().String(), 100*time.Millisecond)
		if err != nil {
			break
		}
		conn.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after Shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	if g := <-got; g != "done" {
		t.Errorf("in-flight request got %q", g)
	}
	if err := <-shut; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("serve: %v", err)
	}
}

func TestAddrInUse(t *testing.T) {
	s := start(t, protoHandler, DefaultOptions())
	opts := DefaultOptions()
	opts.Addr = s.Addr().String()
	_, err := Listen(context.Background(), protoHandler, opts)
	if !errors.Is(err, ErrAddrInUse) {
		t.Errorf("got %v, want ErrAddrInUse", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
		ok   bool
	}{
		{"defaults", func(*Options) {}, true},
		{"no addr", func(o *Options) { o.Addr = "" }, false},
		{"bad addr", func(o *Options) { o.Addr = "localhost" }, false},
		{"cert without key", func(o *Options) { o.TLSCertFile = "c.pem" }, false},
		{"cert and self-signed", func(o *Options) { o.TLSCertFile, o.TLSKeyFile, o.TLSSelfSigned = "c", "k", true }, false},
		{"negative timeout", func(o *Options) { o.IdleTimeout = -1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.mod(&o)
			if err := o.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
