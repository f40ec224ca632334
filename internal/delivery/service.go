package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/metrics"
	"github.com/runnel/runnel/internal/streams"
)

// Options configure a Service.
type Options struct {
	// Region and AccountID appear in ARNs and messages. Defaults
	// "us-east-1" and "000000000000".
	Region    string
	AccountID string
	// TransitionDelay is how long a delivery stream stays CREATING or
	// DELETING. Default 500ms; zero makes transitions immediate.
	TransitionDelay time.Duration
	// Resolver maps bucket ARNs to destinations. Nil: no bucket is
	// known, and CreateDeliveryStream refuses every destination.
	Resolver Resolver
	// WorkerID names this server in the lease tables of delivery. It must
	// stay the same across restarts, so that a restarted server takes its
	// own leases back at once. Default "runnel".
	WorkerID string
	// LeaseDuration is how long a lease another worker holds must go
	// unrenewed before this one takes it. Default 10s.
	LeaseDuration time.Duration
	// PollInterval is how often an idle source shard is read. Default
	// 200ms.
	PollInterval time.Duration
	// RetryMin and RetryMax bound the back-off between attempts to
	// deliver an object. Defaults 1s and 60s.
	RetryMin, RetryMax time.Duration
	// MaxDeliveryStreams is the account's limit. Default 5000, Firehose's.
	MaxDeliveryStreams int
	// Logger receives delivery's reports; nil discards them.
	Logger *slog.Logger
	// Metrics receives the delivery streams' CloudWatch-named counters;
	// nil counts nothing.
	Metrics *metrics.Registry
	// CrashPoint, when set, is called at the named steps of a delivery
	// (the Crash* constants), so crash tests can kill the process there.
	CrashPoint func(point string)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Steps of a delivery where Options.CrashPoint is called.
const (
	CrashAfterPlan       = "delivery-after-plan"
	CrashAfterObject     = "delivery-after-object"
	CrashAfterCheckpoint = "delivery-after-checkpoint"
)

// DefaultOptions returns the defaults described on each Options field.
func DefaultOptions() Options {
	return Options{
		Region:             "us-east-1",
		AccountID:          "000000000000",
		TransitionDelay:    500 * time.Millisecond,
		WorkerID:           "runnel",
		LeaseDuration:      10 * time.Second,
		PollInterval:       200 * time.Millisecond,
		RetryMin:           time.Second,
		RetryMax:           time.Minute,
		MaxDeliveryStreams: 5000,
	}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	switch {
	case o.Region == "" || len(o.AccountID) != 12:
		return errors.New("delivery: region and 12-digit account id required")
	case o.TransitionDelay < 0:
		return errors.New("delivery: negative transition delay")
	case o.WorkerID == "":
		return errors.New("delivery: empty worker id")
	case o.LeaseDuration <= 0 || o.PollInterval <= 0:
		return errors.New("delivery: lease duration and poll interval must be positive")
	case o.RetryMin <= 0 || o.RetryMax < o.RetryMin:
		return errors.New("delivery: retry back-off must be positive, RetryMin <= RetryMax")
	case o.MaxDeliveryStreams < 1:
		return errors.New("delivery: MaxDeliveryStreams must be positive")
	}
	return nil
}

// Delivery stream states and types.
const (
	StatusCreating = "CREATING"
	StatusActive   = "ACTIVE"
	StatusDeleting = "DELETING"

	TypeDirectPut   = "DirectPut"
	TypeKinesis     = "KinesisStreamAsSource"
	destinationID   = "destinationId-000000000001"
	maxRecordBytes  = 1000 << 10 // 1,000 KiB
	maxBatchRecords = 500
	maxBatchBytes   = 4 << 20
	maxTags         = 50
)

// Service runs delivery streams: their API and their delivery. It is
// safe for concurrent use.
type Service struct {
	opts    Options
	meta    engine.Meta
	streams *streams.Service
	leases  *leases.Service
	log     *slog.Logger

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wake   chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	// lastSweep is when run last looked for orphan hidden streams; only
	// run's goroutine touches it.
	lastSweep time.Time

	// lastID is the last creation id given (Unix ms, base 36 when
	// written): ids are unique among delivery streams, also for two
	// created in the same millisecond.
	lastID atomic.Int64

	// counters caches each delivery stream's metrics by id, so that a
	// request finds them without a lock.
	counters sync.Map // id -> *metrics.DeliveryStream

	mu struct {
		sync.Mutex
		workers map[string]*worker // by delivery stream id
	}
}

// newID returns a creation id: the time now, or later when an id of that
// time was given already or is used by a delivery stream of used.
func (s *Service) newID(now int64, used map[string]bool) string {
	for {
		last := s.lastID.Load()
		id := max(now, last+1)
		if !s.lastID.CompareAndSwap(last, id) {
			continue
		}
		if v := strconv.FormatInt(id, 36); !used[v] {
			return v
		}
		now = id + 1
	}
}

// counted returns the metrics of delivery stream name of creation id, nil
// without metrics.
func (s *Service) counted(name, id string) *metrics.DeliveryStream {
	if s.opts.Metrics == nil {
		return nil
	}
	if v, ok := s.counters.Load(id); ok {
		return v.(*metrics.DeliveryStream)
	}
	d := s.opts.Metrics.DeliveryStream(name, id)
	s.counters.Store(id, d)
	return d
}

// forgetCounted drops the metrics of a delivery stream being deleted.
func (s *Service) forgetCounted(name, id string) {
	if s.opts.Metrics == nil {
		return
	}
	s.counters.Delete(id)
	s.opts.Metrics.ForgetDeliveryStream(name, id)
}

// New starts a service on the engine's metadata, the streams service that
// holds its sources and the lease service that shares their shards. The
// caller closes the service before them.
func New(meta engine.Meta, st *streams.Service, ls *leases.Service, opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if meta == nil || st == nil || ls == nil {
		return nil, errors.New("delivery: nil metadata, streams or leases")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Service{opts: opts, meta: meta, streams: st, leases: ls, log: log, wake: make(chan struct{}, 1)}
	s.mu.workers = map[string]*worker{}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// Close stops delivery. Batches in flight are abandoned; they are
// delivered again, under the same object keys, when delivery resumes.
func (s *Service) Close() error {
	s.once.Do(s.cancel)
	s.wg.Wait()
	return nil
}

func (s *Service) now() time.Time { return s.opts.Now() }

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Service) crash(point string) {
	if s.opts.CrashPoint != nil {
		s.opts.CrashPoint(point)
	}
}

// streamMeta is a delivery stream's stored form, one metadata key.
type streamMeta struct {
	Name    string `json:"name"`
	ID      string `json:"id"` // unique per creation
	Type    string `json:"type"`
	Created int64  `json:"created"` // Unix ms
	Updated int64  `json:"updated,omitempty"`
	Status  string `json:"status"`
	// Until is when CREATING turns ACTIVE, or DELETING ends.
	Until   int64                              `json:"until,omitempty"`
	Version int64                              `json:"version"`
	Dest    ExtendedS3DestinationConfiguration `json:"dest"`
	// Source names the stream of a KinesisStreamAsSource delivery stream.
	Source     *KinesisStreamSourceConfiguration `json:"source,omitempty"`
	DirectPut  *DirectPutSourceConfiguration     `json:"directPut,omitempty"`
	Tags       []Tag                             `json:"tags,omitempty"` // sorted by key
	Encryption *EncryptionDescription            `json:"encryption,omitempty"`
	Failure    *FailureDescription               `json:"failure,omitempty"`
}

const metaPrefix = "delivery/streams/"

func metaKey(name string) string { return metaPrefix + name }

// hiddenStream names the stream that holds a DirectPut delivery stream's
// accepted records.
func hiddenStream(name, id string) string {
	return streams.ReservedPrefix + "firehose." + name + "." + id
}

// leaseApp names the lease table of a delivery stream on its source.
func leaseApp(name, id string) string { return streams.ReservedPrefix + "firehose." + name + "." + id }

// sourceStream returns the name of the stream the delivery stream reads.
func (m *streamMeta) sourceStream() string {
	if m.Type == TypeKinesis && m.Source != nil && m.Source.KinesisStreamARN != nil {
		name, _ := streamNameFromARN(*m.Source.KinesisStreamARN)
		return name
	}
	return hiddenStream(m.Name, m.ID)
}

// settled returns the status at now: CREATING turns ACTIVE at Until,
// DELETING ends (""), at Until.
func (m *streamMeta) settled(now int64) string {
	switch {
	case m.Status == StatusCreating && now >= m.Until:
		return StatusActive
	case m.Status == StatusDeleting && now >= m.Until:
		return ""
	}
	return m.Status
}

func (s *Service) arn(name string) string {
	return "arn:aws:firehose:" + s.opts.Region + ":" + s.opts.AccountID + ":deliverystream/" + name
}

func (s *Service) errNotFound(name string) *Error {
	return errorf(CodeResourceNotFound, "Firehose %s under account %s not found.", name, s.opts.AccountID)
}

// get returns the delivery stream as stored, or ResourceNotFoundException
// when it does not exist (or its deletion has settled).
func (s *Service) get(ctx context.Context, name string) (*streamMeta, uint64, error) {
	b, ver, err := s.meta.Get(ctx, metaKey(name))
	if errors.Is(err, engine.ErrKeyNotFound) {
		return nil, 0, s.errNotFound(name)
	}
	if err != nil {
		return nil, 0, err
	}
	var m streamMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, 0, fmt.Errorf("delivery: decode %s: %w", name, err)
	}
	if m.settled(s.now().UnixMilli()) == "" {
		return nil, 0, s.errNotFound(name)
	}
	return &m, ver, nil
}

// update applies fn to the stored delivery stream with compare-and-set,
// retrying when another change won the race.
func (s *Service) update(ctx context.Context, name string, fn func(m *streamMeta) error) (*streamMeta, error) {
	for range 64 {
		m, ver, err := s.get(ctx, name)
		if err != nil {
			return nil, err
		}
		if err := fn(m); err != nil {
			return nil, err
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		if _, err := s.meta.Put(ctx, metaKey(name), b, ver); err == nil {
			s.poke()
			return m, nil
		} else if !errors.Is(err, engine.ErrVersionMismatch) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("delivery: %s: too much contention", name)
}

// list returns every stored delivery stream, in name order.
func (s *Service) list(ctx context.Context) ([]*streamMeta, error) {
	es, err := s.meta.List(ctx, metaPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]*streamMeta, 0, len(es))
	for _, e := range es {
		var m streamMeta
		if err := json.Unmarshal(e.Value, &m); err != nil {
			return nil, fmt.Errorf("delivery: decode %s: %w", e.Key, err)
		}
		out = append(out, &m)
	}
	return out, nil
}

func checkName(name *string, member string) error {
	if name == nil {
		return validation("null", member, "Member must not be null")
	}
	n := *name
	if len(n) < 1 || len(n) > 64 {
		return validation(n, member, "Member must have length less than or equal to 64")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return validation(n, member, "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+")
		}
	}
	return nil
}

// streamNameFromARN returns the stream name of a Kinesis stream ARN.
func streamNameFromARN(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kinesis" {
		return "", false
	}
	name, ok := strings.CutPrefix(parts[5], "stream/")
	return name, ok && name != "" && !strings.Contains(name, "/")
}

// bucketName returns the bucket of arn:aws:s3:::bucket.
func bucketName(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "s3" ||
		parts[3] != "" || parts[4] != "" || parts[5] == "" || strings.Contains(parts[5], "/") {
		return "", false
	}
	return parts[5], true
}

// CreateDeliveryStream creates a delivery stream in CREATING status; it
// turns ACTIVE after Options.TransitionDelay.
func (s *Service) CreateDeliveryStream(ctx context.Context, in *CreateDeliveryStreamInput) (*CreateDeliveryStreamOutput, error) {
	if err := checkName(in.DeliveryStreamName, "deliveryStreamName"); err != nil {
		return nil, err
	}
	name := *in.DeliveryStreamName
	typ := TypeDirectPut
	if in.DeliveryStreamType != nil {
		typ = *in.DeliveryStreamType
		if typ != TypeDirectPut && typ != TypeKinesis {
			return nil, validation(typ, "deliveryStreamType", "Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource]")
		}
	}
	for member, raw := range map[string]json.RawMessage{
		"RedshiftDestinationConfiguration":                   in.RedshiftDestinationConfiguration,
		"ElasticsearchDestinationConfiguration":              in.ElasticsearchDestinationConfiguration,
		"AmazonopensearchserviceDestinationConfiguration":    in.AmazonopensearchserviceDestinationConfiguration,
		"AmazonOpenSearchServerlessDestinationConfiguration": in.AmazonOpenSearchServerlessDestinationConfiguration,
		"SplunkDestinationConfiguration":                     in.SplunkDestinationConfiguration,
		"HttpEndpointDestinationConfiguration":               in.HttpEndpointDestinationConfiguration,
		"SnowflakeDestinationConfiguration":                  in.SnowflakeDestinationConfiguration,
		"IcebergDestinationConfiguration":                    in.IcebergDestinationConfiguration,
		"MSKSourceConfiguration":                             in.MSKSourceConfiguration,
		"DatabaseSourceConfiguration":                        in.DatabaseSourceConfiguration,
	} {
		if isSet(raw) {
			return nil, errorf(CodeInvalidArgument, "%s is not supported by runnel: use ExtendedS3DestinationConfiguration.", member)
		}
	}
	dest := in.ExtendedS3DestinationConfiguration
	if dest == nil {
		dest = in.S3DestinationConfiguration
	} else if in.S3DestinationConfiguration != nil {
		return nil, errorf(CodeInvalidArgument, "Only one destination configuration may be given: ExtendedS3DestinationConfiguration or S3DestinationConfiguration.")
	}
	if dest == nil {
		return nil, errorf(CodeInvalidArgument, "A destination configuration is required: runnel delivers to ExtendedS3DestinationConfiguration.")
	}
	d, err := s.normalizeDest(ctx, dest, "extendedS3DestinationConfiguration")
	if err != nil {
		return nil, err
	}
	m := &streamMeta{Name: name, Type: typ, Version: 1, Dest: *d}
	switch typ {
	case TypeKinesis:
		src := in.KinesisStreamSourceConfiguration
		if src == nil {
			return nil, errorf(CodeInvalidArgument, "KinesisStreamSourceConfiguration is required when DeliveryStreamType is KinesisStreamAsSource.")
		}
		if src.KinesisStreamARN == nil {
			return nil, validation("null", "kinesisStreamSourceConfiguration.kinesisStreamARN", "Member must not be null")
		}
		if src.RoleARN == nil {
			return nil, validation("null", "kinesisStreamSourceConfiguration.roleARN", "Member must not be null")
		}
		sname, ok := streamNameFromARN(*src.KinesisStreamARN)
		if !ok {
			return nil, errorf(CodeInvalidArgument, "KinesisStreamARN %s is not a Kinesis stream ARN.", *src.KinesisStreamARN)
		}
		if _, err := s.streams.Lineage(ctx, sname); err != nil {
			var se *streams.Error
			if errors.As(err, &se) && se.Code == streams.CodeResourceNotFound {
				return nil, errorf(CodeInvalidArgument, "Kinesis stream %s under account %s not found.", sname, s.opts.AccountID)
			}
			return nil, err
		}
		if in.DeliveryStreamEncryptionConfigurationInput != nil {
			return nil, errorf(CodeInvalidArgument, "Server-side encryption cannot be enabled on a delivery stream of type KinesisStreamAsSource.")
		}
		m.Source = src
	default:
		if in.KinesisStreamSourceConfiguration != nil {
			return nil, errorf(CodeInvalidArgument, "KinesisStreamSourceConfiguration is allowed only when DeliveryStreamType is KinesisStreamAsSource.")
		}
		m.DirectPut = in.DirectPutSourceConfiguration
		if m.DirectPut == nil {
			m.DirectPut = &DirectPutSourceConfiguration{ThroughputHintInMBs: ptr(int32(5))}
		}
	}
	if len(in.Tags) > maxTags {
		return nil, validation(len(in.Tags), "tags", "Member must have length less than or equal to 50")
	}
	tags, err := mergeTags(nil, in.Tags)
	if err != nil {
		return nil, err
	}
	m.Tags = tags
	enc, err := encryptionFor(in.DeliveryStreamEncryptionConfigurationInput, true)
	if err != nil {
		return nil, err
	}
	m.Encryption = enc

	all, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	live := 0
	for _, o := range all {
		if o.settled(now) == "" {
			continue
		}
		live++
		if o.Name == name {
			return nil, errorf(CodeResourceInUse, "Firehose %s under account %s already exists with status %s.", name, s.opts.AccountID, o.settled(now))
		}
	}
	if live >= s.opts.MaxDeliveryStreams {
		return nil, errorf(CodeLimitExceeded, "You have already consumed your firehose quota of %d hoses. Firehose names: %s", s.opts.MaxDeliveryStreams, name)
	}
	// The key of a deletion that settled is removed first.
	var expect uint64
	if _, ver, err := s.meta.Get(ctx, metaKey(name)); err == nil {
		expect = ver
	} else if !errors.Is(err, engine.ErrKeyNotFound) {
		return nil, err
	}

	used := make(map[string]bool, len(all))
	for _, o := range all {
		used[o.ID] = true
	}
	m.ID = s.newID(now, used)
	m.Created = now
	m.Status, m.Until = StatusCreating, now+s.opts.TransitionDelay.Milliseconds()
	if s.opts.TransitionDelay == 0 {
		m.Status, m.Until = StatusActive, 0
	}
	// The hidden stream first, the delivery stream last: a crash in
	// between leaves a reserved stream no delivery stream names, which the
	// service's loop deletes.
	if typ == TypeDirectPut {
		hidden := hiddenStream(name, m.ID)
		if err := s.streams.CreateReservedStream(ctx, &streams.CreateStreamInput{StreamName: &hidden, ShardCount: ptr(int32(1))}); err != nil {
			return nil, fmt.Errorf("delivery: create the stream of %s: %w", name, err)
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if _, err := s.meta.Put(ctx, metaKey(name), b, expect); err != nil {
		if errors.Is(err, engine.ErrVersionMismatch) {
			return nil, errorf(CodeResourceInUse, "Firehose %s under account %s already exists.", name, s.opts.AccountID)
		}
		return nil, err
	}
	s.log.Info("delivery stream created", slog.String("delivery_stream", name), slog.String("type", typ),
		slog.String("bucket", deref(m.Dest.BucketARN)))
	s.poke()
	return &CreateDeliveryStreamOutput{DeliveryStreamARN: s.arn(name)}, nil
}

func isSet(raw json.RawMessage) bool {
	t := strings.TrimSpace(string(raw))
	return t != "" && t != "null"
}

func ptr[T any](v T) *T { return &v }

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// DeleteDeliveryStream starts the deletion of a delivery stream: it is
// DELETING for Options.TransitionDelay, then gone with its hidden stream
// and progress. Records not yet delivered are dropped, as on Firehose.
func (s *Service) DeleteDeliveryStream(ctx context.Context, in *NameInput) error {
	if err := checkName(in.DeliveryStreamName, "deliveryStreamName"); err != nil {
		return err
	}
	now := s.now().UnixMilli()
	_, err := s.update(ctx, *in.DeliveryStreamName, func(m *streamMeta) error {
		if m.settled(now) == StatusDeleting {
			return errorf(CodeResourceInUse, "Firehose %s under account %s is already being deleted.", m.Name, s.opts.AccountID)
		}
		m.Status, m.Until = StatusDeleting, now+s.opts.TransitionDelay.Milliseconds()
		return nil
	})
	if err == nil {
		s.log.Info("delivery stream deleting", slog.String("delivery_stream", *in.DeliveryStreamName))
		s.poke() // its worker and series go at once
	}
	return err
}

// DescribeDeliveryStream describes a delivery stream.
func (s *Service) DescribeDeliveryStream(ctx context.Context, in *NameInput) (*DescribeDeliveryStreamOutput, error) {
	if err := checkName(in.DeliveryStreamName, "deliveryStreamName"); err != nil {
		return nil, err
	}
	if in.Limit != nil && (*in.Limit < 1 || *in.Limit > 10000) {
		return nil, validation(*in.Limit, "limit", "Member must have value between 1 and 10000")
	}
	m, _, err := s.get(ctx, *in.DeliveryStreamName)
	if err != nil {
		return nil, err
	}
	d := &DeliveryStreamDescription{
		DeliveryStreamName:   m.Name,
		DeliveryStreamARN:    s.arn(m.Name),
		DeliveryStreamStatus: m.settled(s.now().UnixMilli()),
		FailureDescription:   m.Failure,
		DeliveryStreamType:   m.Type,
		VersionId:            strconv.FormatInt(m.Version, 10),
		CreateTimestamp:      streams.TimestampMillis(m.Created),
		Destinations:         []DestinationDescription{},
	}
	if m.Updated != 0 {
		d.LastUpdateTimestamp = ptr(streams.TimestampMillis(m.Updated))
	}
	if m.Encryption != nil {
		d.DeliveryStreamEncryptionConfiguration = m.Encryption
	} else {
		d.DeliveryStreamEncryptionConfiguration = &EncryptionDescription{Status: "DISABLED"}
	}
	switch m.Type {
	case TypeKinesis:
		d.Source = &SourceDescription{KinesisStreamSourceDescription: &KinesisStreamSourceDescription{
			KinesisStreamARN:       deref(m.Source.KinesisStreamARN),
			RoleARN:                deref(m.Source.RoleARN),
			DeliveryStartTimestamp: ptr(streams.TimestampMillis(m.Created)),
		}}
	default:
		d.Source = &SourceDescription{DirectPutSourceDescription: m.DirectPut}
	}
	// ExclusiveStartDestinationId past the only destination lists none.
	if in.ExclusiveStartDestinationId == nil || *in.ExclusiveStartDestinationId < destinationID {
		dest := m.Dest
		d.Destinations = append(d.Destinations, DestinationDescription{
			DestinationId:                    destinationID,
			ExtendedS3DestinationDescription: &dest,
			S3DestinationDescription:         s3Description(&dest),
		})
	}
	if st := s.stats(m.ID); st != nil {
		d.RunnelDeliveryStats = st
	}
	return &DescribeDeliveryStreamOutput{DeliveryStreamDescription: d}, nil
}

// s3Description is the plain S3 view of an extended destination, which
// Firehose lists beside it.
func s3Description(d *ExtendedS3DestinationConfiguration) *ExtendedS3DestinationConfiguration {
	return &ExtendedS3DestinationConfiguration{
		RoleARN: d.RoleARN, BucketARN: d.BucketARN, Prefix: d.Prefix, ErrorOutputPrefix: d.ErrorOutputPrefix,
		BufferingHints: d.BufferingHints, CompressionFormat: d.CompressionFormat,
		EncryptionConfiguration: d.EncryptionConfiguration, CloudWatchLoggingOptions: d.CloudWatchLoggingOptions,
	}
}

// ListDeliveryStreams lists delivery streams in name order.
func (s *Service) ListDeliveryStreams(ctx context.Context, in *ListDeliveryStreamsInput) (*ListDeliveryStreamsOutput, error) {
	limit := 10
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > 10000 {
			return nil, validation(*in.Limit, "limit", "Member must have value between 1 and 10000")
		}
		limit = int(*in.Limit)
	}
	if in.DeliveryStreamType != nil && *in.DeliveryStreamType != TypeDirectPut && *in.DeliveryStreamType != TypeKinesis {
		return nil, validation(*in.DeliveryStreamType, "deliveryStreamType", "Member must satisfy enum value set: [DirectPut, KinesisStreamAsSource]")
	}
	if in.ExclusiveStartDeliveryStreamName != nil {
		if err := checkName(in.ExclusiveStartDeliveryStreamName, "exclusiveStartDeliveryStreamName"); err != nil {
			return nil, err
		}
	}
	all, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	out := &ListDeliveryStreamsOutput{DeliveryStreamNames: []string{}}
	for _, m := range all {
		if m.settled(now) == "" || (in.DeliveryStreamType != nil && m.Type != *in.DeliveryStreamType) ||
			(in.ExclusiveStartDeliveryStreamName != nil && m.Name <= *in.ExclusiveStartDeliveryStreamName) {
			continue
		}
		if len(out.DeliveryStreamNames) == limit {
			out.HasMoreDeliveryStreams = true
			break
		}
		out.DeliveryStreamNames = append(out.DeliveryStreamNames, m.Name)
	}
	return out, nil
}

// UpdateDestination changes the destination of a delivery stream whose
// version is still CurrentDeliveryStreamVersionId, and adds one to the
// version. Members not given keep their values.
func (s *Service) UpdateDestination(ctx context.Context, in *UpdateDestinationInput) error {
	if err := checkName(in.DeliveryStreamName, "deliveryStreamName"); err != nil {
		return err
	}
	if in.CurrentDeliveryStreamVersionId == nil {
		return validation("null", "currentDeliveryStreamVersionId", "Member must not be null")
	}
	cur, err := strconv.ParseInt(*in.CurrentDeliveryStreamVersionId, 10, 64)
	if err != nil || len(*in.CurrentDeliveryStreamVersionId) > 50 {
		return validation(*in.CurrentDeliveryStreamVersionId, "currentDeliveryStreamVersionId", "Member must satisfy regular expression pattern: [0-9]+")
	}
	if in.DestinationId == nil {
		return validation("null", "destinationId", "Member must not be null")
	}
	for member, raw := range map[string]json.RawMessage{
		"RedshiftDestinationUpdate":                   in.RedshiftDestinationUpdate,
		"ElasticsearchDestinationUpdate":              in.ElasticsearchDestinationUpdate,
		"AmazonopensearchserviceDestinationUpdate":    in.AmazonopensearchserviceDestinationUpdate,
		"AmazonOpenSearchServerlessDestinationUpdate": in.AmazonOpenSearchServerlessDestinationUpdate,
		"SplunkDestinationUpdate":                     in.SplunkDestinationUpdate,
		"HttpEndpointDestinationUpdate":               in.HttpEndpointDestinationUpdate,
		"SnowflakeDestinationUpdate":                  in.SnowflakeDestinationUpdate,
		"IcebergDestinationUpdate":                    in.IcebergDestinationUpdate,
	} {
		if isSet(raw) {
			return errorf(CodeInvalidArgument, "%s is not supported by runnel: use ExtendedS3DestinationUpdate.", member)
		}
	}
	upd := in.ExtendedS3DestinationUpdate
	if upd == nil {
		upd = in.S3DestinationUpdate
	} else if in.S3DestinationUpdate != nil {
		return errorf(CodeInvalidArgument, "Only one destination update may be given: ExtendedS3DestinationUpdate or S3DestinationUpdate.")
	}
	name := *in.DeliveryStreamName
	now := s.now()
	var next *ExtendedS3DestinationConfiguration
	_, err = s.update(ctx, name, func(m *streamMeta) error {
		if st := m.settled(now.UnixMilli()); st != StatusActive {
			return errorf(CodeResourceInUse, "Firehose %s under account %s is not ACTIVE, instead in state %s.", name, s.opts.AccountID, st)
		}
		if m.Version != cur {
			return errorf(CodeConcurrentModification, "Cannot update firehose: %s since the current version id: %d and specified version id: %d do not match", name, m.Version, cur)
		}
		if *in.DestinationId != destinationID {
			return errorf(CodeInvalidArgument, "Destination Id %s not found for firehose %s.", *in.DestinationId, name)
		}
		if next == nil {
			merged := mergeDest(m.Dest, upd)
			d, err := s.normalizeDest(ctx, &merged, "extendedS3DestinationUpdate")
			if err != nil {
				return err
			}
			next = d
		}
		m.Dest = *next
		m.Version++
		m.Updated = now.UnixMilli()
		m.Failure = nil
		return nil
	})
	return err
}

// mergeDest returns d with the members upd sets replaced.
func mergeDest(d ExtendedS3DestinationConfiguration, upd *ExtendedS3DestinationConfiguration) ExtendedS3DestinationConfiguration {
	if upd == nil {
		return d
	}
	if upd.RoleARN != nil {
		d.RoleARN = upd.RoleARN
	}
	if upd.BucketARN != nil {
		d.BucketARN = upd.BucketARN
	}
	if upd.Prefix != nil {
		d.Prefix = upd.Prefix
	}
	if upd.ErrorOutputPrefix != nil {
		d.ErrorOutputPrefix = upd.ErrorOutputPrefix
	}
	if upd.BufferingHints != nil {
		bh := *d.BufferingHints
		if upd.BufferingHints.SizeInMBs != nil {
			bh.SizeInMBs = upd.BufferingHints.SizeInMBs
		}
		if upd.BufferingHints.IntervalInSeconds != nil {
			bh.IntervalInSeconds = upd.BufferingHints.IntervalInSeconds
		}
		d.BufferingHints = &bh
	}
	if upd.CompressionFormat != nil {
		d.CompressionFormat = upd.CompressionFormat
	}
	if upd.EncryptionConfiguration != nil {
		d.EncryptionConfiguration = upd.EncryptionConfiguration
	}
	if upd.CloudWatchLoggingOptions != nil {
		d.CloudWatchLoggingOptions = upd.CloudWatchLoggingOptions
	}
	if upd.ProcessingConfiguration != nil {
		d.ProcessingConfiguration = upd.ProcessingConfiguration
	}
	if upd.S3BackupMode != nil {
		d.S3BackupMode = upd.S3BackupMode
	}
	if upd.DynamicPartitioningConfiguration != nil {
		d.DynamicPartitioningConfiguration = upd.DynamicPartitioningConfiguration
	}
	if upd.FileExtension != nil {
		d.FileExtension = upd.FileExtension
	}
	if upd.CustomTimeZone != nil {
		d.CustomTimeZone = upd.CustomTimeZone
	}
	d.S3BackupConfiguration = upd.S3BackupConfiguration
	d.S3BackupUpdate = upd.S3BackupUpdate
	d.DataFormatConversionConfiguration = upd.DataFormatConversionConfiguration
	return d
}

// Tags.

var tagPattern = func(s string) bool {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r > 127,
			strings.ContainsRune(" _.:/=+-@%", r):
		default:
			return false
		}
	}
	return true
}

func checkTag(t Tag, i int) error {
	if t.Key == nil {
		return validation("null", fmt.Sprintf("tags.%d.member.key", i+1), "Member must not be null")
	}
	k := *t.Key
	if len(k) < 1 || len(k) > 128 || !tagPattern(k) || strings.HasPrefix(k, "aws:") {
		return validation(k, fmt.Sprintf("tags.%d.member.key", i+1), `Member must satisfy regular expression pattern: ^(?!aws:)[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$`)
	}
	if t.Value != nil && (len(*t.Value) > 256 || !tagPattern(*t.Value)) {
		return validation(*t.Value, fmt.Sprintf("tags.%d.member.value", i+1), `Member must satisfy regular expression pattern: ^[\p{L}\p{Z}\p{N}_.:\/=+\-@%]*$`)
	}
	return nil
}

// mergeTags returns have with add applied (a key given again takes the
// new value), sorted by key, or an error when the result has more than 50.
func mergeTags(have, add []Tag) ([]Tag, error) {
	byKey := map[string]*string{}
	for _, t := range have {
		byKey[*t.Key] = t.Value
	}
	for i, t := range add {
		if err := checkTag(t, i); err != nil {
			return nil, err
		}
		v := t.Value
		if v == nil {
			v = ptr("")
		}
		byKey[*t.Key] = v
	}
	if len(byKey) > maxTags {
		return nil, errorf(CodeLimitExceeded, "A delivery stream cannot have more than %d tags.", maxTags)
	}
	out := make([]Tag, 0, len(byKey))
	for k, v := range byKey {
		out = append(out, Tag{Key: ptr(k), Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return *out[i].Key < *out[j].Key })
	return out, nil
}

// TagDeliveryStream adds or replaces tags.
func (s *Service) TagDeliveryStream(ctx context.Context, in *TagDeliveryStreamInput) error {
	if err := checkName(in.DeliveryStreamName, "deliveryStreamName"); err != nil {
		return err
	}
	if len(in.Tags) < 1 || len(in.Tags) > maxTags {
		return validation(len(in.Tags), "tags", "Member must have length between 1 and 50")
	}
	_, err := s.update(ctx, *in.DeliveryStreamName, func(m *streamMeta) error {
		if st := m.settled(s.now().UnixMilli()); st == StatusDeleting {
			return errorf(CodeResourceInUse, "Firehose %s under account %s is being deleted.", m.Name, s.opts.AccountID)
		}
		tags, err := mergeTags(m.Tags, in.Tags)
		if err != nil {
			return err
		}
		m.Tags = tags
		return nil
	})
	return err
}

// UntagDeliveryStream removes tags by key; absent keys are ignored.
func (s *Service) UntagDeliveryStream(ctx context.Context, in *UntagDeliveryStreamInput) error {
	if err := checkName(in.DeliveryStreamName, "deliveryStreamName"); err != nil {
		return err
	}
	if len(in.TagKeys) < 1 || len(in.TagKeys) > maxTags {
		return validation(len(in.TagKeys), "tagKeys", "Member must have length between 1 and 50")
	}
	drop := map[string]bool{}
	for i, k := range in.TagKeys {
		if err := checkTag(Tag{Key: ptr(k)}, i); err != nil {
			return err
		}
		drop[k] = true
	}
	_, err := s.update(ctx, *in.DeliveryStreamName, func(m *streamMeta) error {
		if st := m.settled(s.now().UnixMilli()); st == StatusDeleting {
			return errorf(CodeResourceInUse, "Firehose %s under account %s is being deleted.", m.Name, s.opts.AccountID)
		}
		kept := m.Tags[:0:0]
		for _, t := range m.Tags {
			if !drop[*t.Key] {
				kept = append(kept, t)
			}
		}
		m.Tags = kept
		return nil
	})
	return err
}

// ListTagsForDeliveryStream lists tags in key order.
func (s *Service) ListTagsForDeliveryStream(ctx context.Context, in *ListTagsForDeliveryStreamInput) (*ListTagsForDeliveryStreamOutput, error) {
	if err := checkName(in.DeliveryStreamName, "deliveryStreamName"); err != nil {
		return nil, err
	}
	limit := maxTags
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > maxTags {
			return nil, validation(*in.Limit, "limit", "Member must have value between 1 and 50")
		}
		limit = int(*in.Limit)
	}
	m, _, err := s.get(ctx, *in.DeliveryStreamName)
	if err != nil {
		return nil, err
	}
	out := &ListTagsForDeliveryStreamOutput{Tags: []Tag{}}
	for _, t := range m.Tags {
		if in.ExclusiveStartTagKey != nil && *t.Key <= *in.ExclusiveStartTagKey {
			continue
		}
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, t)
	}
	return out, nil
}

// Encryption. runnel's hidden streams are on the server's own disk; the
// setting is kept and described so that tools that manage it work.

func encryptionFor(in *EncryptionInput, enable bool) (*EncryptionDescription, error) {
	if !enable {
		return &EncryptionDescription{Status: "DISABLED"}, nil
	}
	if in == nil {
		return nil, nil
	}
	kt := "AWS_OWNED_CMK"
	if in.KeyType != nil {
		kt = *in.KeyType
	}
	switch kt {
	case "AWS_OWNED_CMK":
		if in.KeyARN != nil {
			return nil, errorf(CodeInvalidArgument, "KeyARN must not be specified when KeyType is AWS_OWNED_CMK.")
		}
	case "CUSTOMER_MANAGED_CMK":
		if in.KeyARN == nil {
			return nil, errorf(CodeInvalidArgument, "KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK.")
		}
		if !strings.HasPrefix(*in.KeyARN, "arn:") {
			return nil, validation(*in.KeyARN, "deliveryStreamEncryptionConfigurationInput.keyARN", "Member must satisfy regular expression pattern: arn:.*")
		}
	default:
		return nil, validation(kt, "deliveryStreamEncryptionConfigurationInput.keyType", "Member must satisfy enum value set: [AWS_OWNED_CMK, CUSTOMER_MANAGED_CMK]")
	}
	return &EncryptionDescription{Status: "ENABLED", KeyType: &kt, KeyARN: in.KeyARN}, nil
}

// StartDeliveryStreamEncryption turns server-side encryption on.
func (s *Service) StartDeliveryStreamEncryption(ctx context.Context, in *StartEncryptionInput) error {
	return s.setEncryption(ctx, in.DeliveryStreamName, in.DeliveryStreamEncryptionConfigurationInput, true)
}

// StopDeliveryStreamEncryption turns server-side encryption off.
func (s *Service) StopDeliveryStreamEncryption(ctx context.Context, in *NameInput) error {
	return s.setEncryption(ctx, in.DeliveryStreamName, nil, false)
}

func (s *Service) setEncryption(ctx context.Context, name *string, in *EncryptionInput, enable bool) error {
	if err := checkName(name, "deliveryStreamName"); err != nil {
		return err
	}
	if enable && in == nil {
		in = &EncryptionInput{}
	}
	enc, err := encryptionFor(in, enable)
	if err != nil {
		return err
	}
	_, err = s.update(ctx, *name, func(m *streamMeta) error {
		if st := m.settled(s.now().UnixMilli()); st != StatusActive {
			return errorf(CodeResourceInUse, "Firehose %s under account %s is not ACTIVE, instead in state %s.", m.Name, s.opts.AccountID, st)
		}
		if m.Type == TypeKinesis {
			return errorf(CodeInvalidArgument, "Server-side encryption cannot be enabled on a delivery stream of type KinesisStreamAsSource.")
		}
		m.Encryption = enc
		return nil
	})
	return err
}

// PutRecord writes one record to a DirectPut delivery stream's hidden
// stream; once it returns, the record is durable and will be delivered.
func (s *Service) PutRecord(ctx context.Context, in *PutRecordInput) (*PutRecordOutput, error) {
	if err := checkName(in.DeliveryStreamName, "deliveryStreamName"); err != nil {
		return nil, err
	}
	if in.Record == nil {
		return nil, validation("null", "record", "Member must not be null")
	}
	if in.Record.Data == nil {
		return nil, validation("null", "record.data", "Member must not be null")
	}
	if len(in.Record.Data) > maxRecordBytes {
		return nil, validation("java.nio.HeapByteBuffer[pos=0 lim="+strconv.Itoa(len(in.Record.Data))+"]", "record.data", "Member must have length less than or equal to 1024000")
	}
	out, err := s.putBatch(ctx, &PutRecordBatchInput{DeliveryStreamName: in.DeliveryStreamName, Records: []Record{*in.Record}}, false)
	if err != nil {
		return nil, err
	}
	r := out.RequestResponses[0]
	if r.ErrorCode != nil {
		return nil, errorf(Code(*r.ErrorCode), "%s", deref(r.ErrorMessage))
	}
	return &PutRecordOutput{RecordId: *r.RecordId, Encrypted: out.Encrypted}, nil
}

// PutRecordBatch writes up to 500 records (4 MiB) in one call. Each
// record succeeds or fails on its own; RecordId is the record's sequence
// number in the hidden stream.
func (s *Service) PutRecordBatch(ctx context.Context, in *PutRecordBatchInput) (*PutRecordBatchOutput, error) {
	return s.putBatch(ctx, in, true)
}

// putBatch is PutRecordBatch, counted as PutRecordBatch (batch) or
// PutRecord.
func (s *Service) putBatch(ctx context.Context, in *PutRecordBatchInput, batch bool) (*PutRecordBatchOutput, error) {
	start := time.Now()
	if err := checkName(in.DeliveryStreamName, "deliveryStreamName"); err != nil {
		return nil, err
	}
	if in.Records == nil {
		return nil, validation("null", "records", "Member must not be null")
	}
	if len(in.Records) < 1 || len(in.Records) > maxBatchRecords {
		return nil, validation("[...]", "records", "Member must have length between 1 and 500")
	}
	total := 0
	for i, r := range in.Records {
		if r.Data == nil {
			return nil, validation("null", fmt.Sprintf("records.%d.member.data", i+1), "Member must not be null")
		}
		if len(r.Data) > maxRecordBytes {
			return nil, validation("java.nio.HeapByteBuffer[pos=0 lim="+strconv.Itoa(len(r.Data))+"]", fmt.Sprintf("records.%d.member.data", i+1), "Member must have length less than or equal to 1024000")
		}
		total += len(r.Data)
	}
	if total > maxBatchBytes {
		return nil, errorf(CodeInvalidArgument, "Records size exceeds 4 MiB limit: the batch holds %d bytes.", total)
	}
	name := *in.DeliveryStreamName
	m, _, err := s.get(ctx, name)
	if err != nil {
		return nil, err
	}
	if m.Type != TypeDirectPut {
		return nil, errorf(CodeInvalidArgument, "This operation is not permitted on KinesisStreamAsSource firehose %s under account %s.", name, s.opts.AccountID)
	}
	if st := m.settled(s.now().UnixMilli()); st != StatusActive {
		return nil, errorf(CodeResourceNotFound, "Firehose %s under account %s is not ACTIVE, instead in state %s.", name, s.opts.AccountID, st)
	}
	dm := s.counted(m.Name, m.ID)
	if dm != nil {
		op := metrics.OpFirehosePutRecord
		if batch {
			op = metrics.OpFirehosePutRecordBatch
		}
		defer func() { dm.ObserveLatency(op, time.Since(start)) }()
	}
	hidden := hiddenStream(m.Name, m.ID)
	entries := make([]streams.PutRecordsRequestEntry, len(in.Records))
	for i, r := range in.Records {
		entries[i] = streams.PutRecordsRequestEntry{Data: r.Data, PartitionKey: &hiddenPartitionKey}
	}
	res, err := s.streams.PutRecords(ctx, &streams.PutRecordsInput{StreamName: &hidden, Records: entries})
	if err != nil {
		var se *streams.Error
		if errors.As(err, &se) {
			switch se.Code {
			case streams.CodeResourceNotFound, streams.CodeResourceInUse:
				return nil, errorf(CodeServiceUnavailable, "Firehose %s under account %s cannot accept records yet; retry later.", name, s.opts.AccountID)
			case streams.CodeProvisionedThroughputExceeded, streams.CodeLimitExceeded:
				dm.Throttled(len(in.Records))
				return nil, errorf(CodeServiceUnavailable, "Slow down.")
			}
		}
		return nil, err
	}
	out := &PutRecordBatchOutput{RequestResponses: make([]PutRecordBatchResponseEntry, len(res.Records)),
		Encrypted: m.Encryption != nil && m.Encryption.Status == "ENABLED"}
	for i, r := range res.Records {
		if r.ErrorCode != nil {
			out.FailedPutCount++
			out.RequestResponses[i] = PutRecordBatchResponseEntry{ErrorCode: ptr(string(CodeServiceUnavailable)), ErrorMessage: ptr("Slow down.")}
			continue
		}
		out.RequestResponses[i] = PutRecordBatchResponseEntry{RecordId: r.SequenceNumber}
	}
	if dm != nil {
		accepted := total
		if out.FailedPutCount > 0 {
			accepted = 0
			for i, r := range res.Records {
				if r.ErrorCode == nil {
					accepted += len(in.Records[i].Data)
				}
			}
		}
		dm.Put(batch, len(in.Records)-int(out.FailedPutCount), accepted, int(out.FailedPutCount))
	}
	return out, nil
}

// hiddenPartitionKey is the partition key of every record of a hidden
// stream: it has one shard, which keeps the order of acceptance.
var hiddenPartitionKey = "firehose"

// Reconcile makes a delivery stream match a declaration (the server's
// configuration file): it creates it when missing, and when it exists
// with another destination, changes the destination as UpdateDestination
// does. A delivery stream whose type or source differs from the
// declaration is left alone with an error, since neither can change
// without deleting it.
func (s *Service) Reconcile(ctx context.Context, in *CreateDeliveryStreamInput) (action string, err error) {
	_, err = s.CreateDeliveryStream(ctx, in)
	var de *Error
	if err == nil {
		return "created", nil
	}
	if !errors.As(err, &de) || de.Code != CodeResourceInUse {
		return "", err
	}
	name := *in.DeliveryStreamName
	want := in.ExtendedS3DestinationConfiguration
	if want == nil {
		want = in.S3DestinationConfiguration
	}
	d, err := s.normalizeDest(ctx, want, "extendedS3DestinationConfiguration")
	if err != nil {
		return "", err
	}
	wantJSON, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	typ := TypeDirectPut
	if in.DeliveryStreamType != nil {
		typ = *in.DeliveryStreamType
	}
	action = "kept"
	_, err = s.update(ctx, name, func(m *streamMeta) error {
		if m.Type != typ || (typ == TypeKinesis && deref(m.Source.KinesisStreamARN) != deref(in.KinesisStreamSourceConfiguration.KinesisStreamARN)) {
			return errorf(CodeResourceInUse, "Firehose %s exists with another source; delete it to declare it anew.", name)
		}
		have, err := json.Marshal(m.Dest)
		if err != nil {
			return err
		}
		if string(have) == string(wantJSON) {
			return errUnchanged
		}
		if st := m.settled(s.now().UnixMilli()); st != StatusActive && st != StatusCreating {
			return errorf(CodeResourceInUse, "Firehose %s under account %s is not ACTIVE, instead in state %s.", name, s.opts.AccountID, st)
		}
		m.Dest = *d
		m.Version++
		m.Updated = s.now().UnixMilli()
		action = "updated"
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return "kept", nil
	}
	return action, err
}

// errUnchanged ends an update that has nothing to change.
var errUnchanged = errors.New("delivery: unchanged")
