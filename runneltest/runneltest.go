// Package runneltest starts an in-process runnel server for Go tests, so that
// code written against the AWS SDK's Kinesis client can be tested without AWS,
// Docker or a network:
//
//	func TestProducer(t *testing.T) {
//		srv := runneltest.NewServer(t)
//		client := srv.Client(t)
//		// ... use client as a *kinesis.Client ...
//	}
//
// The server listens on a free loopback port, keeps its data in memory unless
// asked for the disk engine, and makes stream transitions (CREATING, UPDATING,
// DELETING) immediate so tests need not wait. It is stopped when the test
// ends.
package runneltest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/internal/auth"
	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/delivery/file"
	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/disk"
	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/firehoseapi"
	"github.com/runnel/runnel/internal/keystore"
	"github.com/runnel/runnel/internal/kinesisapi"
	"github.com/runnel/runnel/internal/leaseapi"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/sdkclient"
	"github.com/runnel/runnel/internal/server"
	"github.com/runnel/runnel/internal/streams"
)

// config is what the Options set.
type config struct {
	disk              bool
	dataDir           string
	transitionDelay   time.Duration
	region            string
	accountID         string
	enforceThroughput bool
	tls               bool
	logger            *slog.Logger
	subLifetime       time.Duration
	subHeartbeat      time.Duration
	keyFile           string
	bucketsDir        string
	retryMin          time.Duration
	retryMax          time.Duration
}

// Option configures a Server.
type Option func(*config)

// WithDisk stores the server's data with the durable disk engine, in a
// temporary directory removed when the server stops (t.TempDir() under
// NewServer), instead of in memory.
func WithDisk() Option { return func(c *config) { c.disk = true } }

// WithDataDir stores the server's data with the disk engine in dir, which is
// kept when the server stops: a second server on the same dir sees the data.
func WithDataDir(dir string) Option {
	return func(c *config) { c.disk, c.dataDir = true, dir }
}

// WithKeyFile keeps the keys of encryption at rest (StartStreamEncryption)
// in the key file path, created on first use. By default a disk server
// keeps them in "<data dir>.keys", beside its data directory, and a memory
// server in memory.
func WithKeyFile(path string) Option { return func(c *config) { c.keyFile = path } }

// WithTransitionDelay sets how long streams stay CREATING, UPDATING or
// DELETING. The default is zero: transitions are immediate.
func WithTransitionDelay(d time.Duration) Option { return func(c *config) { c.transitionDelay = d } }

// WithSubscriptionTimings shortens how long a SubscribeToShard
// subscription lasts (Kinesis: 5 minutes) and how long it waits before an
// event without records (Kinesis: 5 s), so tests see subscriptions end and
// heartbeats arrive. Zero keeps Kinesis' value.
func WithSubscriptionTimings(lifetime, heartbeat time.Duration) Option {
	return func(c *config) { c.subLifetime, c.subHeartbeat = lifetime, heartbeat }
}

// WithRegion sets the region in ARNs and of the clients. Default "us-east-1".
func WithRegion(region string) Option { return func(c *config) { c.region = region } }

// WithAccountID sets the 12-digit account id in ARNs. Default "000000000000".
func WithAccountID(id string) Option { return func(c *config) { c.accountID = id } }

// WithThroughputLimits enforces Kinesis' per-shard throughput limits, to test
// how code handles ProvisionedThroughputExceededException.
func WithThroughputLimits() Option { return func(c *config) { c.enforceThroughput = true } }

// WithTLS serves HTTPS (HTTP/2 by ALPN and HTTP/1.1) with a self-signed
// certificate, which the server's clients trust.
func WithTLS() Option { return func(c *config) { c.tls = true } }

// WithLogger sends the server's logs (one debug record per request, the
// service's and the storage engine's reports) to l.
// By default they are discarded.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithBucketsDir lets delivery streams deliver to buckets: bucket
// arn:aws:s3:::NAME is the directory dir/NAME (runnel serve --buckets-dir).
func WithBucketsDir(dir string) Option { return func(c *config) { c.bucketsDir = dir } }

// WithDeliveryRetry sets the back-off between attempts to deliver an
// object (default 1s doubling to 60s), so tests of a failing destination
// need not wait long.
func WithDeliveryRetry(first, most time.Duration) Option {
	return func(c *config) { c.retryMin, c.retryMax = first, most }
}

// Server is a running in-process runnel server.
type Server struct {
	cfg       config
	srv       *server.Server
	svc       *streams.Service
	dsvc      *delivery.Service
	eng       engine.Engine
	transport *http.Transport
	tempDir   string // removed on Close, when Start made it
	served    chan error
	closeOnce sync.Once
	closeErr  error
}

// NewServer starts a server for the test t and stops it when the test ends.
// It fails the test if the server cannot start.
func NewServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var c config
	for _, o := range opts {
		o(&c)
	}
	if c.disk && c.dataDir == "" {
		opts = append(opts, WithDataDir(t.TempDir()))
	}
	s, err := Start(opts...)
	if err != nil {
		t.Fatalf("runneltest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("runneltest: close: %v", err)
		}
	})
	return s
}

// Start starts a server outside a test (in an example, a TestMain or a
// benchmark harness). The caller must Close it.
func Start(opts ...Option) (_ *Server, err error) {
	c := config{region: "us-east-1", accountID: "000000000000"}
	for _, o := range opts {
		o(&c)
	}
	if c.logger == nil {
		c.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: c, served: make(chan error, 1)}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	var dataDir string
	if c.disk {
		dir := c.dataDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "runneltest-"); err != nil {
				return nil, err
			}
			s.tempDir = dir
		}
		dataDir = dir
		dopts := disk.DefaultOptions()
		dopts.Logger = c.logger
		d, err := disk.Open(dir, dopts)
		if err != nil {
			return nil, err
		}
		s.eng = d
	} else {
		s.eng = mem.New(mem.DefaultOptions())
	}
	kopts := keystore.Options{File: c.keyFile, Region: c.region, Account: c.accountID}
	if kopts.File == "" && c.disk {
		kopts.File = keystore.DefaultFile(dataDir)
	}
	keys, err := keystore.Open(kopts)
	if err != nil {
		return nil, err
	}
	sopts := streams.DefaultOptions()
	sopts.Keys = keys
	sopts.Region, sopts.AccountID = c.region, c.accountID
	sopts.TransitionDelay = c.transitionDelay
	sopts.SubscriptionLifetime, sopts.SubscriptionHeartbeat = c.subLifetime, c.subHeartbeat
	sopts.EnforceThroughput = c.enforceThroughput
	sopts.Logger = c.logger
	if s.svc, err = streams.New(context.Background(), s.eng, sopts); err != nil {
		return nil, err
	}
	hopts := kinesisapi.DefaultOptions()
	hopts.Logger = c.logger
	// As `runnel serve` on loopback without credentials: any key, but
	// requests must be signed.
	if hopts.Auth, err = auth.New(auth.Options{Region: c.region, Account: c.accountID}); err != nil {
		return nil, err
	}
	lsvc := leases.New(s.eng.Meta(), leases.OnStreams(s.svc), leases.Options{})
	dopts := delivery.DefaultOptions()
	dopts.Region, dopts.AccountID = c.region, c.accountID
	dopts.TransitionDelay = c.transitionDelay
	dopts.Logger = c.logger
	if c.bucketsDir != "" {
		dopts.Resolver = file.NewBuckets(c.bucketsDir)
	}
	if c.retryMin > 0 {
		dopts.RetryMin, dopts.RetryMax = c.retryMin, max(c.retryMin, c.retryMax)
	}
	if s.dsvc, err = delivery.New(s.eng.Meta(), s.svc, lsvc, dopts); err != nil {
		return nil, err
	}
	hopts.APIs = []kinesisapi.API{leaseapi.New(lsvc), firehoseapi.New(s.dsvc)}
	h, err := kinesisapi.NewHandler(s.svc, hopts)
	if err != nil {
		return nil, err
	}
	sv := server.DefaultOptions()
	sv.Addr = "127.0.0.1:0"
	sv.TLSSelfSigned = c.tls
	sv.Logger = c.logger
	if s.srv, err = server.Listen(context.Background(), h, sv); err != nil {
		return nil, err
	}
	s.transport = &http.Transport{ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 64}
	if c.tls {
		roots := x509.NewCertPool()
		roots.AddCert(s.srv.Certificate())
		s.transport.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	go func() { s.served <- s.srv.Serve() }()
	return s, nil
}

// Endpoint is the server's URL, "http://127.0.0.1:port" (https with WithTLS).
func (s *Server) Endpoint() string { return s.srv.Endpoint() }

// Region is the region the server reports and its clients use.
func (s *Server) Region() string { return s.cfg.region }

// HTTPClient returns an HTTP client that reaches the server (and trusts its
// certificate under WithTLS). Its connections are closed with the server.
func (s *Server) HTTPClient() *http.Client { return &http.Client{Transport: s.transport} }

// Client returns a Kinesis client for the server: static credentials, the
// server's region and BaseEndpoint. optFns adjust it further.
func (s *Server) Client(t testing.TB, optFns ...func(*kinesis.Options)) *kinesis.Client {
	t.Helper()
	return s.NewClient(optFns...)
}

// NewClient is Client for use outside a test.
func (s *Server) NewClient(optFns ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       s.cfg.region,
		BaseEndpoint: aws.String(s.Endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDRUNNELTEST", "runneltest-secret", ""),
		// Guarded against an SDK race that a server this fast exposes over
		// HTTP/1.1 (see package internal/sdkclient).
		HTTPClient: sdkclient.Guard(s.HTTPClient()),
	}, optFns...)
}

// FirehoseClient returns a Firehose client for the server, configured as
// Client is. optFns adjust it further.
func (s *Server) FirehoseClient(t testing.TB, optFns ...func(*firehose.Options)) *firehose.Client {
	t.Helper()
	return firehose.New(firehose.Options{
		Region:       s.cfg.region,
		BaseEndpoint: aws.String(s.Endpoint()),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDRUNNELTEST", "runneltest-secret", ""),
		HTTPClient:   sdkclient.Guard(s.HTTPClient()),
	}, optFns...)
}

// Close stops the server: in-flight requests finish, then the service and
// the engine close. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// SubscribeToShard responses last minutes; end them so that the
		// shutdown does not wait for them.
		s.svc.EndSubscriptions()
		err := s.srv.Shutdown(ctx)
		if serr := <-s.served; serr != nil {
			err = errors.Join(err, fmt.Errorf("serve: %w", serr))
		}
		s.closeErr = errors.Join(err, s.release())
	})
	return s.closeErr
}

// release closes what Start opened, in reverse order.
func (s *Server) release() error {
	var err error
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
	if s.dsvc != nil {
		err = errors.Join(err, s.dsvc.Close())
	}
	if s.svc != nil {
		err = errors.Join(err, s.svc.Close())
	}
	if s.eng != nil {
		err = errors.Join(err, s.eng.Close())
	}
	if s.tempDir != "" {
		err = errors.Join(err, os.RemoveAll(s.tempDir), os.RemoveAll(keystore.DefaultFile(s.tempDir)))
	}
	return err
}
