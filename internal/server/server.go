// Package server runs an http.Handler on one TCP port for every protocol the
// AWS SDKs speak: HTTP/1.1, HTTP/2 over cleartext with prior knowledge (h2c)
// and, when TLS is configured, HTTP/2 negotiated by ALPN (h2) alongside
// HTTP/1.1 over TLS. The certificate is either given (a PEM cert and key
// file, which ReloadTLS reads again without dropping a connection) or
// generated at start: a self-signed certificate for localhost, 127.0.0.1
// and ::1. TLS 1.2 is the oldest version served. Clients may be required
// to present a certificate of a given authority (TLSClientCAFile).
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/runnel/runnel/internal/netconn"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"
)

// Options configure a Server.
type Options struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:4567". Port 0
	// picks a free port (see Server.Addr).
	Addr string
	// TLSCertFile and TLSKeyFile name a PEM certificate (chain) and its key.
	// Both or neither must be set.
	TLSCertFile string
	TLSKeyFile  string
	// TLSSelfSigned serves TLS with a certificate generated at start for
	// localhost, 127.0.0.1 and ::1. Exclusive with TLSCertFile.
	TLSSelfSigned bool
	// TLSClientCAFile names a PEM bundle of the authorities client
	// certificates must chain to. It needs TLS; TLSClientAuth says
	// whether a certificate is required (the default when this is set).
	TLSClientCAFile string
	// TLSClientAuth is "" (no client certificates), ClientAuthRequire or
	// ClientAuthVerifyIfGiven.
	TLSClientAuth string
	// ReadHeaderTimeout bounds how long a client may take to send request
	// headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long. Default 2m.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the size of a request's headers (HTTP/1.1 and
	// HTTP/2 alike); larger ones get 431. AWS SDK requests carry a few KiB,
	// a session token included. Default 64 KiB.
	MaxHeaderBytes int
	// MaxConcurrentStreams bounds the requests one HTTP/2 connection may
	// have in flight; each holds a goroutine and its body buffer. Default
	// 250.
	MaxConcurrentStreams int
	// Logger receives the http.Server's own error messages (TLS handshake
	// failures and the like) at debug level. Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns the defaults described on each Options field.
func DefaultOptions() Options {
	return Options{
		Addr:                 "127.0.0.1:4567",
		ReadHeaderTimeout:    10 * time.Second,
		IdleTimeout:          2 * time.Minute,
		MaxHeaderBytes:       64 << 10,
		MaxConcurrentStreams: 250,
	}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.Addr == "" {
		return errors.New("server: empty listen address")
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return fmt.Errorf("server: listen address %q: %w", o.Addr, err)
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return errors.New("server: a TLS certificate needs both a cert file and a key file")
	}
	if o.TLSSelfSigned && o.TLSCertFile != "" {
		return errors.New("server: choose either a TLS certificate file or a self-signed certificate, not both")
	}
	switch o.TLSClientAuth {
	case "", ClientAuthRequire, ClientAuthVerifyIfGiven:
	default:
		return fmt.Errorf("server: client certificate mode %q: use %s or %s", o.TLSClientAuth, ClientAuthRequire, ClientAuthVerifyIfGiven)
	}
	if (o.TLSClientAuth != "") != (o.TLSClientCAFile != "") {
		return errors.New("server: client certificate authentication needs both a mode and a client CA file")
	}
	if o.TLSClientCAFile != "" && !o.tlsEnabled() {
		return errors.New("server: client certificates need TLS: give a certificate and key, or a self-signed certificate")
	}
	if o.ReadHeaderTimeout < 0 || o.IdleTimeout < 0 {
		return errors.New("server: negative timeout")
	}
	if o.MaxHeaderBytes < 4<<10 {
		return errors.New("server: MaxHeaderBytes below 4 KiB")
	}
	if o.MaxConcurrentStreams < 1 {
		return errors.New("server: MaxConcurrentStreams below 1")
	}
	return nil
}

// tlsEnabled reports whether the options ask for TLS.
func (o Options) tlsEnabled() bool { return o.TLSCertFile != "" || o.TLSSelfSigned }

// ErrAddrInUse is returned by Listen when another process holds the port.
var ErrAddrInUse = errors.New("server: address already in use")

// Server is one listening socket serving a handler. Create it with Listen,
// run it with Serve, stop it with Shutdown.
type Server struct {
	http *http.Server
	ln   net.Listener
	tls  *tlsSource // nil without TLS
}

// Listen binds the listening socket, so that the address is known (and a port
// conflict reported) before Serve starts.
func Listen(ctx context.Context, h http.Handler, opts Options) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var src *tlsSource
	if opts.tlsEnabled() {
		var err error
		if src, err = newTLSSource(opts, time.Now()); err != nil {
			return nil, fmt.Errorf("server: tls: %w", err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", opts.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("%w: %s", ErrAddrInUse, opts.Addr)
		}
		return nil, fmt.Errorf("server: listen on %s: %w", opts.Addr, err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	s := &Server{
		ln: ln,
		http: &http.Server{
			Handler:           h,
			Protocols:         &protos,
			ReadHeaderTimeout: opts.ReadHeaderTimeout,
			IdleTimeout:       opts.IdleTimeout,
			MaxHeaderBytes:    opts.MaxHeaderBytes,
			HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: opts.MaxConcurrentStreams},
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
			ConnContext:       netconn.With,
		},
	}
	if src != nil {
		s.tls = src
		s.http.TLSConfig = src.config()
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Endpoint is the URL clients use: "http://host:port" or "https://host:port".
func (s *Server) Endpoint() string {
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	return scheme + "://" + s.ln.Addr().String()
}

// Certificate is the TLS leaf certificate served now, nil without TLS.
// Clients of a self-signed server add it to their trusted roots.
func (s *Server) Certificate() *x509.Certificate {
	if s.tls == nil {
		return nil
	}
	return s.tls.cur.Load().cert.Leaf
}

// ReloadTLS re-reads the certificate, key and client CA files, for new
// handshakes; connections already open keep what they negotiated. When a
// file is missing, malformed, or the pair does not match, the server keeps
// serving what it had and the error says why. It returns the certificate
// now served.
func (s *Server) ReloadTLS() (*x509.Certificate, error) {
	if s.tls == nil {
		return nil, errors.New("server: no TLS to reload")
	}
	leaf, err := s.tls.reload(time.Now())
	if err != nil {
		return s.Certificate(), fmt.Errorf("server: tls reload: %w", err)
	}
	return leaf, nil
}

// Serve accepts connections until Shutdown. It returns nil after a graceful
// shutdown and the accept error otherwise.
func (s *Server) Serve() error {
	var err error
	if s.tls != nil {
		err = s.http.ServeTLS(s.ln, "", "")
	} else {
		err = s.http.Serve(s.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close closes the listening socket of a server that will not be served,
// such as one whose handler could not be built after Listen. A served server
// is stopped with Shutdown instead.
func (s *Server) Close() error { return s.ln.Close() }

// Shutdown stops accepting connections, closes idle ones and waits for
// in-flight requests to finish or ctx to end, whichever comes first; then
// it closes the remaining connections.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if err != nil {
		_ = s.http.Close()
	}
	return err
}
