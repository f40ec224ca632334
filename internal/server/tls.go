package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// Client-certificate modes of Options.TLSClientAuth.
const (
	// ClientAuthRequire refuses a handshake without a client certificate
	// signed by one of TLSClientCAFile's authorities.
	ClientAuthRequire = "require"
	// ClientAuthVerifyIfGiven accepts clients without a certificate, and
	// refuses those whose certificate does not verify.
	ClientAuthVerifyIfGiven = "verify-if-given"
)

// tlsMaterial is what one TLS configuration serves: the certificate and
// the authorities client certificates must chain to. It is replaced whole.
type tlsMaterial struct {
	cert      *tls.Certificate
	clientCAs *x509.CertPool // nil without client authentication
}

// tlsSource serves the current tlsMaterial to handshakes and reloads it
// from files. Handshakes read it without locks; a reload swaps it.
type tlsSource struct {
	certFile, keyFile string // "" for a self-signed certificate
	clientCAFile      string
	clientAuth        tls.ClientAuthType
	cur               atomic.Pointer[tlsMaterial]
}

func newTLSSource(o Options, now time.Time) (*tlsSource, error) {
	s := &tlsSource{certFile: o.TLSCertFile, keyFile: o.TLSKeyFile, clientCAFile: o.TLSClientCAFile}
	switch o.TLSClientAuth {
	case ClientAuthRequire:
		s.clientAuth = tls.RequireAndVerifyClientCert
	case ClientAuthVerifyIfGiven:
		s.clientAuth = tls.VerifyClientCertIfGiven
	default:
		s.clientAuth = tls.NoClientCert
	}
	if o.TLSSelfSigned {
		c, err := selfSigned(now)
		if err != nil {
			return nil, err
		}
		m := &tlsMaterial{cert: &c}
		if s.clientCAFile != "" {
			if m.clientCAs, err = loadCAs(s.clientCAFile); err != nil {
				return nil, err
			}
		}
		s.cur.Store(m)
		return s, nil
	}
	m, err := s.load(now)
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	return s, nil
}

// load reads the certificate, key and client authorities from their files.
func (s *tlsSource) load(now time.Time) (*tlsMaterial, error) {
	m := &tlsMaterial{cert: s.cur.Load().certOrNil()}
	if s.certFile != "" {
		c, err := tls.LoadX509KeyPair(s.certFile, s.keyFile)
		if err != nil {
			return nil, fmt.Errorf("certificate %s and key %s: %w", s.certFile, s.keyFile, err)
		}
		if c.Leaf == nil {
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("certificate %s: %w", s.certFile, err)
			}
		}
		if now.After(c.Leaf.NotAfter) {
			return nil, fmt.Errorf("certificate %s expired on %s", s.certFile, c.Leaf.NotAfter.UTC().Format(time.RFC3339))
		}
		m.cert = &c
	}
	if s.clientCAFile != "" {
		pool, err := loadCAs(s.clientCAFile)
		if err != nil {
			return nil, err
		}
		m.clientCAs = pool
	}
	return m, nil
}

func (m *tlsMaterial) certOrNil() *tls.Certificate {
	if m == nil {
		return nil
	}
	return m.cert
}

// loadCAs reads a PEM bundle of certificate authorities.
func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("client CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("client CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// reload re-reads the files and swaps the material in; on any error the
// current material stays and the error says why.
func (s *tlsSource) reload(now time.Time) (*x509.Certificate, error) {
	if s.certFile == "" && s.clientCAFile == "" {
		return nil, errors.New("nothing to reload: the certificate is self-signed and generated at start")
	}
	m, err := s.load(now)
	if err != nil {
		return nil, err
	}
	s.cur.Store(m)
	return m.cert.Leaf, nil
}

// config returns the tls.Config the server listens with: TLS 1.2 at
// least, the certificate and client authorities read per handshake.
func (s *tlsSource) config() *tls.Config {
	base := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.cur.Load().cert, nil
		},
	}
	if s.clientAuth == tls.NoClientCert {
		return base
	}
	cfg := base.Clone()
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.ClientAuth = s.clientAuth
		c.ClientCAs = s.cur.Load().clientCAs
		return c, nil
	}
	return cfg
}

// selfSigned returns a fresh ECDSA P-256 certificate for localhost, 127.0.0.1
// and ::1, valid for a year from now.
func selfSigned(now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"runnel"}, CommonName: "localhost"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}
