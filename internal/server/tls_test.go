package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel/runnel/internal/testpki"
)

// serialSeen dials s and returns the serial number of the certificate it
// presents.
func serialSeen(t *testing.T, s *Server, roots *x509.CertPool) int64 {
	t.Helper()
	c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}

func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "test CA")
	cert, key := ca.Issue(t, dir, "server", 101, false)
	s := start(t, protoHandler, Options{TLSCertFile: cert, TLSKeyFile: key,
		ReadHeaderTimeout: 10e9, MaxHeaderBytes: 64 << 10, MaxConcurrentStreams: 10})
	if got := serialSeen(t, s, ca.Pool()); got != 101 {
		t.Fatalf("serial %d, want 101", got)
	}

	// A new pair in the same files is served after a reload.
	ca.Issue(t, dir, "server", 102, false)
	if leaf, err := s.ReloadTLS(); err != nil || leaf.SerialNumber.Int64() != 102 {
		t.Fatalf("reload: %v %v", leaf, err)
	}
	if got := serialSeen(t, s, ca.Pool()); got != 102 {
		t.Fatalf("serial %d after reload, want 102", got)
	}

	// A broken pair is refused and the old one kept: a key that does not
	// match, then a truncated certificate, then a missing file.
	other := t.TempDir()
	_, otherKey := ca.Issue(t, other, "other", 200, false)
	keyPEM, _ := os.ReadFile(otherKey)
	if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if leaf, err := s.ReloadTLS(); err == nil || !strings.Contains(err.Error(), "private key does not match") || leaf.SerialNumber.Int64() != 102 {
		t.Fatalf("mismatched key: %v %v", leaf, err)
	}
	if err := os.WriteFile(cert, []byte("-----BEGIN CERTIFICATE-----\nAAAA"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReloadTLS(); err == nil {
		t.Fatal("a truncated certificate was accepted")
	}
	if err := os.Remove(cert); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReloadTLS(); err == nil || !strings.Contains(err.Error(), filepath.Base(cert)) {
		t.Fatalf("missing file: %v", err)
	}
	if got := serialSeen(t, s, ca.Pool()); got != 102 {
		t.Fatalf("serial %d after failed reloads, want 102", got)
	}
}

func TestTLSOldVersionsRefused(t *testing.T) {
	s := start(t, protoHandler, Options{TLSSelfSigned: true, ReadHeaderTimeout: 10e9, MaxHeaderBytes: 64 << 10, MaxConcurrentStreams: 10})
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: roots, MinVersion: v, MaxVersion: v})
		if err == nil {
			c.Close()
			t.Fatalf("TLS version %x accepted", v)
		}
	}
	c, err := tls.Dial("tcp", s.Addr().String(), &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2 refused: %v", err)
	}
	c.Close()
	if _, err := s.ReloadTLS(); err == nil {
		t.Fatal("reloading a self-signed certificate claimed success")
	}
}

func TestTLSClientCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "server CA")
	clientCA := testpki.NewCA(t, "client CA")
	rogueCA := testpki.NewCA(t, "rogue CA")
	cert, key := ca.Issue(t, dir, "server", 1, false)
	caFile := clientCA.WriteCert(t, dir, "clients.pem")
	goodCert, goodKey := clientCA.Issue(t, dir, "alice", 10, true)
	rogueCert, rogueKey := rogueCA.Issue(t, dir, "mallory", 11, true)

	client := func(certFile, keyFile string) *http.Client {
		cfg := &tls.Config{RootCAs: ca.Pool()}
		if certFile != "" {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				t.Fatal(err)
			}
			// Sent whatever authorities the server asks for, as a
			// hostile client would.
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
		}
		tr := &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	try := func(s *Server, c *http.Client) error {
		resp, err := c.Post(s.Endpoint(), "application/x-amz-json-1.1", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	for _, mode := range []string{ClientAuthRequire, ClientAuthVerifyIfGiven} {
		t.Run(mode, func(t *testing.T) {
			s := start(t, protoHandler, Options{TLSCertFile: cert, TLSKeyFile: key, TLSClientCAFile: caFile, TLSClientAuth: mode,
				ReadHeaderTimeout: 10e9, MaxHeaderBytes: 64 << 10, MaxConcurrentStreams: 10})
			if err := try(s, client(goodCert, goodKey)); err != nil {
				t.Fatalf("a client with a good certificate: %v", err)
			}
			if err := try(s, client(rogueCert, rogueKey)); err == nil {
				t.Fatal("a client certificate of another authority was accepted")
			}
			err := try(s, client("", ""))
			if mode == ClientAuthRequire && err == nil {
				t.Fatal("a client without a certificate was accepted")
			}
			if mode == ClientAuthVerifyIfGiven && err != nil {
				t.Fatalf("a client without a certificate: %v", err)
			}
		})
	}
}

func TestTLSOptionsValidate(t *testing.T) {
	base := DefaultOptions()
	cases := []struct {
		name string
		set  func(*Options)
		want string
	}{
		{"bad mode", func(o *Options) { o.TLSSelfSigned, o.TLSClientAuth, o.TLSClientCAFile = true, "sometimes", "ca.pem" }, "client certificate mode"},
		{"mode without CA", func(o *Options) { o.TLSSelfSigned, o.TLSClientAuth = true, ClientAuthRequire }, "needs both"},
		{"CA without mode", func(o *Options) { o.TLSSelfSigned, o.TLSClientCAFile = true, "ca.pem" }, "needs both"},
		{"client certs without TLS", func(o *Options) { o.TLSClientAuth, o.TLSClientCAFile = ClientAuthRequire, "ca.pem" }, "need TLS"},
	}
	for _, c := range cases {
		o := base
		c.set(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

func TestTLSClientCAReload(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "server CA")
	first, second := testpki.NewCA(t, "first client CA"), testpki.NewCA(t, "second client CA")
	cert, key := ca.Issue(t, dir, "server", 1, false)
	caFile := first.WriteCert(t, dir, "clients.pem")
	ccert, ckey := second.Issue(t, dir, "app", 2, true)
	pair, err := tls.LoadX509KeyPair(ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	s := start(t, protoHandler, Options{TLSCertFile: cert, TLSKeyFile: key, TLSClientCAFile: caFile, TLSClientAuth: ClientAuthRequire,
		ReadHeaderTimeout: 10e9, MaxHeaderBytes: 64 << 10, MaxConcurrentStreams: 10})
	try := func() error {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Post(s.Endpoint(), "application/x-amz-json-1.1", strings.NewReader("{}"))
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if try() == nil {
		t.Fatal("a certificate of an authority not yet trusted was accepted")
	}
	second.WriteCert(t, dir, "clients.pem")
	if _, err := s.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if err := try(); err != nil {
		t.Fatalf("after the client CA file was reloaded: %v", err)
	}
}
