package consumer

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// Option configures a Consumer.
type Option func(*options)

type options struct {
	leaseDuration time.Duration
	workerID      string
	initial       Position
	maxRecords    int
	idle          time.Duration
	logger        *slog.Logger
	store         LeaseStore
	retriever     Retriever
	fanOut        string
	sdkRetrieval  bool
}

func defaultOptions() options {
	return options{
		leaseDuration: 10 * time.Second,
		initial:       TrimHorizon,
		maxRecords:    10000,
		idle:          time.Second,
		logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func (o *options) validate() error {
	var errs []error
	if o.leaseDuration < 30*time.Millisecond {
		errs = append(errs, fmt.Errorf("consumer: lease duration %v is below 30ms", o.leaseDuration))
	}
	if o.maxRecords < 1 || o.maxRecords > 10000 {
		errs = append(errs, fmt.Errorf("consumer: max records %d is outside 1..10000", o.maxRecords))
	}
	if o.idle < 0 {
		errs = append(errs, fmt.Errorf("consumer: idle time %v is negative", o.idle))
	}
	switch o.initial.Type {
	case "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP":
	default:
		errs = append(errs, fmt.Errorf("consumer: initial position %q is none of TRIM_HORIZON, LATEST, AT_TIMESTAMP", o.initial.Type))
	}
	if n := len(o.workerID); n > 255 {
		errs = append(errs, fmt.Errorf("consumer: worker id of %d characters is longer than 255", n))
	}
	if o.fanOut != "" {
		if !validConsumerName(o.fanOut) {
			errs = append(errs, fmt.Errorf("consumer: fan-out consumer name %q is not 1 to 128 of a-z, A-Z, 0-9, '_', '.', '-'", o.fanOut))
		}
		if o.retriever != nil {
			errs = append(errs, errors.New("consumer: FanOut and WithRetriever exclude each other"))
		}
	}
	return errors.Join(errs...)
}

// LeaseDuration is how long a lease stays valid without renewal (default
// 10 s, the KCL's failover time). The worker renews every third of it; a
// dead worker's shards are taken over after it.
func LeaseDuration(d time.Duration) Option { return func(o *options) { o.leaseDuration = d } }

// WorkerID names the worker in the lease table (default: the host name and
// a random suffix). Two live workers must not share one.
func WorkerID(id string) Option { return func(o *options) { o.workerID = id } }

// InitialPosition is where shards created with the stream start before
// their first checkpoint (default TrimHorizon). It applies when the worker
// creates the lease table; an existing table keeps its own.
func InitialPosition(p Position) Option { return func(o *options) { o.initial = p } }

// MaxRecords is the most records one GetRecords call asks for (default
// 10000, Kinesis' limit).
func MaxRecords(n int) Option { return func(o *options) { o.maxRecords = n } }

// IdleTime is how long a shard's reader waits after an empty GetRecords
// answer (default 1 s, as the KCL's idleTimeBetweenReadsInMillis).
func IdleTime(d time.Duration) Option { return func(o *options) { o.idle = d } }

// Logger receives the worker's log (default: none).
func Logger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// Leases sets the lease store (default: runnel's built-in lease tables on
// the client's endpoint).
func Leases(s LeaseStore) Option { return func(o *options) { o.store = s } }

// WithRetriever sets how shards are read (default: polling with
// GetRecords; see also FanOut).
func WithRetriever(r Retriever) Option { return func(o *options) { o.retriever = r } }

// SDKRetrieval makes every GetRecords call of the default polling
// retriever go through the SDK client, as when the client is not a
// *kinesis.Client. By default a *kinesis.Client's GetRecords calls are
// written, signed and decoded by the worker itself (see
// NewPollingRetriever), which reads several times faster.
func SDKRetrieval() Option { return func(o *options) { o.sdkRetrieval = true } }

// FanOut reads shards by enhanced fan-out (SubscribeToShard) as the stream
// consumer name, which the worker registers unless it exists, instead of
// polling with GetRecords. Workers of one application use the same name:
// each shard has one subscription, from the worker holding its lease.
// MaxRecords and IdleTime do not apply.
func FanOut(name string) Option { return func(o *options) { o.fanOut = name } }

// validConsumerName reports whether name fits Kinesis' ConsumerName
// pattern [a-zA-Z0-9_.-]+ of up to 128 characters.
func validConsumerName(name string) bool {
	if len(name) < 1 || len(name) > 128 {
		return false
	}
	for _, c := range name {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// defaultWorkerID is the host name and 8 random hex digits.
func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
