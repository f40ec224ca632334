package streams

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/keystore"
	"github.com/runnel/runnel/internal/metrics"
)

// Options configure a Service.
type Options struct {
	// Region appears in ARNs. Default "us-east-1".
	Region string
	// AccountID appears in ARNs and messages. Default "000000000000".
	AccountID string
	// ShardLimit is the account's open-shard limit. Default 20000.
	ShardLimit int
	// OnDemandStreamLimit is the account's on-demand stream limit. Default 50.
	OnDemandStreamLimit int
	// TransitionDelay is how long a stream stays CREATING, UPDATING or
	// DELETING (and a consumer CREATING or DELETING) before it settles.
	// Default 500ms; zero makes transitions immediate.
	TransitionDelay time.Duration
	// EnforceThroughput turns on per-shard throughput limits (1 MiB/s and
	// 1,000 records/s in; 2 MiB/s and 5 GetRecords/s out).
	EnforceThroughput bool
	// IteratorKey signs shard iterators and NextTokens. Empty: a random key
	// created once and kept in the engine's metadata, so iterators survive a
	// restart.
	IteratorKey []byte
	// SubscriptionLifetime is how long a SubscribeToShard subscription
	// lasts before it ends and the consumer must subscribe again. Zero means
	// Kinesis' 5 minutes.
	SubscriptionLifetime time.Duration
	// SubscriptionHeartbeat is the longest a subscription goes without an
	// event: when no record arrives for this long it sends an empty one.
	// Zero means 5 seconds, as Kinesis.
	SubscriptionHeartbeat time.Duration
	// ScalingsPerDay is how many UpdateShardCount calls a stream accepts
	// per rolling 24 hours. Default 10, as Kinesis; zero means no limit.
	ScalingsPerDay int
	// Scaler configures how ON_DEMAND streams scale by themselves.
	Scaler ScalerOptions
	// Logger receives the service's decisions (resharding, on-demand
	// scaling); nil discards them.
	Logger *slog.Logger
	// CrashPoint, when set, is called at the named steps of resharding (the
	// Crash* constants), so crash tests can kill the process there.
	CrashPoint func(point string)
	// Keys is the key store standing in for KMS: StartStreamEncryption
	// resolves its KeyId there and records are encrypted at rest under
	// data keys it wraps. Nil: a key store in memory (a fresh master key
	// per process), fit only for an engine that does not persist. The
	// service reloads it when its file changes and re-wraps the streams'
	// data keys under a new master key.
	Keys *keystore.Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Metrics receives the streams' CloudWatch-named counters; nil counts
	// nothing.
	Metrics *metrics.Registry
}

// DefaultOptions returns the defaults described on each Options field.
func DefaultOptions() Options {
	return Options{
		Region:              "us-east-1",
		AccountID:           "000000000000",
		ShardLimit:          20000,
		OnDemandStreamLimit: 50,
		TransitionDelay:     500 * time.Millisecond,
		ScalingsPerDay:      10,
		Scaler:              DefaultScalerOptions(),
	}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.Region == "" {
		return errors.New("streams: empty region")
	}
	if len(o.AccountID) != 12 {
		return errors.New("streams: account id must be 12 digits")
	}
	for _, c := range o.AccountID {
		if c < '0' || c > '9' {
			return errors.New("streams: account id must be 12 digits")
		}
	}
	if o.ShardLimit < 1 {
		return errors.New("streams: shard limit must be positive")
	}
	if o.TransitionDelay < 0 {
		return errors.New("streams: negative transition delay")
	}
	if o.SubscriptionLifetime < 0 || o.SubscriptionHeartbeat < 0 {
		return errors.New("streams: negative subscription lifetime or heartbeat")
	}
	if o.ScalingsPerDay < 0 {
		return errors.New("streams: negative scalings per day")
	}
	if err := o.Scaler.withDefaults().validate(); err != nil {
		return err
	}
	return nil
}

// Service implements the Kinesis Data Streams semantics on an engine. It is
// safe for concurrent use. Every method returns either its output or an error;
// errors the client should see are *Error, anything else is an internal fault.
type Service struct {
	opts   Options
	eng    engine.Engine
	tokens tokenSigner

	appendFails appendFailures // failed appends, for the log

	mu struct {
		sync.Mutex
		cache map[string]*stream // by stream name
		stale map[string]bool    // names another service changed since they were cached
	}

	// cluster is the service's part among services sharing the engine
	// (cluster.go).
	cluster clusterState

	// The reaper finishes deletions; wake pokes it, stop ends it.
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wake   chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once

	// subs holds the live SubscribeToShard subscriptions (subscribe.go).
	subs subscriptions

	// scale is the on-demand scaler's state (scaler.go).
	scale scalerState

	// appenders runs PutRecords' appends to its other shards (data.go).
	appenders appenders
}

// New starts a service on eng. The caller owns eng and closes it after the
// service.
func New(ctx context.Context, eng engine.Engine, opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if eng == nil {
		return nil, errors.New("streams: nil engine")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Scaler = opts.Scaler.withDefaults()
	if opts.Keys == nil {
		ks, err := keystore.Open(keystore.Options{Region: opts.Region, Account: opts.AccountID})
		if err != nil {
			return nil, err
		}
		opts.Keys = ks
	}
	key := opts.IteratorKey
	if len(key) == 0 {
		var err error
		if key, err = storedIteratorKey(ctx, eng.Meta()); err != nil {
			return nil, err
		}
	}
	s := &Service{
		opts:      opts,
		eng:       eng,
		tokens:    tokenSigner{key: append([]byte(nil), key...)},
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		appenders: appenders{work: make(chan func())},
	}
	s.mu.cache = make(map[string]*stream)
	s.subs.m = make(map[subKey]*Subscription)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.scale.rescaled = make(map[string]time.Time)
	if err := s.RewrapDataKeys(ctx); err != nil {
		return nil, fmt.Errorf("streams: re-wrap data keys under the current master key: %w", err)
	}
	if opts.Metrics != nil {
		// Every stream's series from the first scrape, not only those of
		// streams used since the start.
		if _, err := s.listMeta(ctx); err != nil {
			return nil, fmt.Errorf("streams: list streams: %w", err)
		}
	}
	if err := s.startCluster(ctx); err != nil {
		s.cancel()
		s.wg.Wait()
		return nil, fmt.Errorf("streams: watch the metadata: %w", err)
	}
	s.wg.Add(3)
	go s.reaper()
	go s.scaler()
	go s.keyWatcher()
	return s, nil
}

// iteratorKeyName is the metadata key holding the key that signs shard
// iterators and NextTokens when Options.IteratorKey is empty.
const iteratorKeyName = "server/iterator-key"

// storedIteratorKey returns the signing key kept in the metadata store,
// creating a random one on first use, so that iterators and NextTokens stay
// valid across a restart (and across services sharing the engine).
func storedIteratorKey(ctx context.Context, meta engine.Meta) ([]byte, error) {
	for {
		key, _, err := meta.Get(ctx, iteratorKeyName)
		if err == nil {
			if len(key) < 16 {
				return nil, fmt.Errorf("streams: stored iterator key is %d bytes, want at least 16", len(key))
			}
			return key, nil
		}
		if !errors.Is(err, engine.ErrKeyNotFound) {
			return nil, fmt.Errorf("streams: read iterator key: %w", err)
		}
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if _, err := meta.Put(ctx, iteratorKeyName, key, 0); err == nil {
			return key, nil
		} else if !errors.Is(err, engine.ErrVersionMismatch) {
			return nil, fmt.Errorf("streams: store iterator key: %w", err)
		}
		// Another service stored one first: use that.
	}
}

// Close stops the service's background work. It does not close the engine.
func (s *Service) Close() error {
	s.once.Do(func() {
		s.cancel()
		close(s.stop)
	})
	s.wg.Wait()
	return nil
}

func (s *Service) now() time.Time { return s.opts.Now() }
func (s *Service) nowMs() int64   { return s.opts.Now().UnixMilli() }
