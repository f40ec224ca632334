package bench

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ErrInvalidOptions is wrapped by every error Options.Validate returns.
var ErrInvalidOptions = errors.New("bench: invalid options")

// PutMode names the producer API.
type PutMode string

// The producer APIs.
const (
	// PutAuto uses PutRecord when the batch size is 1 and PutRecords
	// otherwise.
	PutAuto PutMode = "auto"
	// PutRecords sends batches with PutRecords.
	PutRecords PutMode = "putrecords"
	// PutRecord sends one record per PutRecord call.
	PutRecord PutMode = "putrecord"
)

// ClientKind names the HTTP client of the producers' or consumers' calls.
type ClientKind string

// The producer clients.
const (
	// ClientSDK sends puts with the AWS SDK for Go v2.
	ClientSDK ClientKind = "sdk"
	// ClientRaw builds the PutRecords or GetRecords JSON body itself into a
	// reused buffer, signs it with SigV4, posts it with net/http and scans
	// the answer into reused memory, so that the tool's own cost of
	// serialising requests and decoding responses stays small next to the
	// endpoint's. PutRecord and SubscribeToShard calls still use the SDK.
	ClientRaw ClientKind = "raw"
)

// ConsumerMode names the consumer API.
type ConsumerMode string

// The consumer APIs.
const (
	// ConsumePoll polls GetRecords (shared throughput).
	ConsumePoll ConsumerMode = "poll"
	// ConsumeEFO registers a stream consumer and reads with
	// SubscribeToShard (enhanced fan-out).
	ConsumeEFO ConsumerMode = "efo"
)

// Options describe one bench run.
type Options struct {
	// Endpoint is the Kinesis endpoint URL; empty means AWS itself, found
	// from the region like any SDK client.
	Endpoint string
	// Spread lists more endpoints of the same service, such as the other
	// gateways of a runnel cluster: producers and polling consumers take
	// Endpoint and these in turn. Stream setup, shard iterators and
	// SubscribeToShard go to Endpoint.
	Spread []string
	// Region is the signing region.
	Region string
	// AWSCredentials selects the SDK's default credential chain even with
	// an Endpoint; otherwise a local endpoint gets fixed dummy credentials.
	AWSCredentials bool

	// Stream is the stream name; empty means a fresh random name.
	Stream string
	// Create creates the stream; when false the stream must exist and
	// consumers start at LATEST, ignoring records of others.
	Create bool
	// Keep keeps a stream the run created instead of deleting it at the end.
	Keep bool
	// Shards is the shard count of a created stream.
	Shards int
	// EncryptKey, when set, turns on server-side encryption of the stream
	// with this KMS key (StartStreamEncryption) before the run.
	EncryptKey string

	// Profile names the workload profile the other fields started from
	// (informational once the options are built).
	Profile string

	// Producers is the number of concurrent producers, each with one call
	// in flight.
	Producers int
	// Mode selects PutRecords or PutRecord.
	Mode PutMode
	// ProducerClient selects the SDK or the tool's lightweight JSON client
	// for PutRecords calls.
	ProducerClient ClientKind
	// Batch is the number of records per PutRecords call (1..500).
	Batch int
	// Size is the record size in bytes (data blob; at least the 36-byte
	// header).
	Size int
	// SizeMax, when above Size, makes record sizes uniform in
	// [Size, SizeMax].
	SizeMax int
	// Shape selects the body of the records.
	Shape Shape
	// Keys is the number of distinct partition keys.
	Keys int
	// KeyPrefix starts every partition key.
	KeyPrefix string
	// KeyDist is the distribution of partition keys.
	KeyDist KeyDist
	// ZipfS is the exponent of the Zipf distribution (> 1).
	ZipfS float64
	// Rate is the target rate in records per second over all producers;
	// 0 means as fast as the endpoint allows.
	Rate float64
	// BurstOn and BurstOff, when both positive, alternate sending periods
	// and silent periods (at Rate, or flat out, while on).
	BurstOn, BurstOff time.Duration
	// Duration bounds the producing phase; 0 means no time bound.
	Duration time.Duration
	// Records bounds the number of records produced; 0 means no bound.
	Records int64
	// MaxRetries bounds the retries of a put (throttled, partially failed
	// or failed call) before its remaining records are given up.
	MaxRetries int
	// RequestTimeout bounds a single API call.
	RequestTimeout time.Duration

	// ConsumerMode selects GetRecords polling or SubscribeToShard.
	ConsumerMode ConsumerMode
	// ConsumerClient selects the SDK or the tool's lightweight JSON client
	// for GetRecords calls (SubscribeToShard always uses the SDK).
	ConsumerClient ClientKind
	// Consumers is the number of polling consumers sharing the shards; 0
	// means one per shard. Enhanced fan-out always has one subscription
	// per shard.
	Consumers int
	// GetLimit is the Limit of each GetRecords call.
	GetLimit int
	// PollInterval is the pause after an empty GetRecords response.
	PollInterval time.Duration
	// DrainTimeout bounds how long consumers keep reading after the
	// producers stopped without reading anything new.
	DrainTimeout time.Duration
	// ReadAfter keeps the consumers idle while the producers produce:
	// they read everything back once the producing phase ended, so that
	// the write throughput is measured without the cost of reading on the
	// same machine. End-to-end latency is then not measured, and the read
	// rate is over the reading phase alone.
	ReadAfter bool
	// SetupTimeout bounds waiting for the stream (and an enhanced fan-out
	// consumer) to become ACTIVE.
	SetupTimeout time.Duration

	// Verify keeps the ledgers needed to verify every record and to
	// measure the ack→receipt latency (about 60 bytes of memory per
	// record: 24 in the producer's ledger, 32 per read in the consumer's).
	Verify bool
	// Seed seeds the record generators; 0 picks a random seed.
	Seed uint64

	// ServerPID is the server's process, on this machine, whose CPU time
	// and memory the run measures (from /proc); 0 finds it from the
	// endpoint's port when the endpoint is a loopback address; -1 measures
	// nothing.
	ServerPID int
}

// DefaultOptions returns the options of a plain run: 4 shards, 4 producers
// sending PutRecords batches of 100 random 1 KiB records over 1024 uniform
// keys for 10 seconds against a local runnel, one polling consumer per shard.
func DefaultOptions() Options {
	return Options{
		Endpoint:       "http://127.0.0.1:4567",
		Region:         "us-east-1",
		Create:         true,
		Shards:         4,
		Producers:      4,
		Mode:           PutAuto,
		ProducerClient: ClientSDK,
		Batch:          100,
		Size:           1024,
		Shape:          ShapeRandom,
		Keys:           1024,
		KeyPrefix:      "key-",
		KeyDist:        KeyUniform,
		ZipfS:          1.1,
		Duration:       10 * time.Second,
		MaxRetries:     10,
		RequestTimeout: 30 * time.Second,
		ConsumerMode:   ConsumePoll,
		ConsumerClient: ClientSDK,
		GetLimit:       10000,
		PollInterval:   200 * time.Millisecond,
		DrainTimeout:   10 * time.Second,
		SetupTimeout:   60 * time.Second,
		Verify:         true,
	}
}

// Profile is a named workload shaped like one of the uses Kinesis is sold
// for.
type Profile struct {
	// Name selects the profile with --profile.
	Name string
	// Description says what the profile models.
	Description string
	// Apply sets the profile's values on o.
	Apply func(o *Options)
}

// Profiles lists the workload profiles by name.
var Profiles = map[string]Profile{
	"clickstream": {
		Name:        "clickstream",
		Description: "web/app events: JSON 500 B-1.5 KiB, 100,000 user keys, Zipf-skewed (s=1.1), PutRecords of 100 from 8 producers",
		Apply: func(o *Options) {
			o.Shape, o.Size, o.SizeMax = ShapeClickstream, 500, 1536
			o.Keys, o.KeyPrefix, o.KeyDist, o.ZipfS = 100000, "user-", KeyZipf, 1.1
			o.Producers, o.Batch = 8, 100
		},
	},
	"iot": {
		Name:        "iot",
		Description: "sensor readings: JSON 100-200 B, 10,000 device keys, uniform, steady 5,000 records/s from 16 producers in batches of 25",
		Apply: func(o *Options) {
			o.Shape, o.Size, o.SizeMax = ShapeIoT, 100, 200
			o.Keys, o.KeyPrefix, o.KeyDist = 10000, "device-", KeyUniform
			o.Producers, o.Batch, o.Rate = 16, 25, 5000
		},
	},
	"logs": {
		Name:        "logs",
		Description: "application logs: text lines 1-4 KiB, 16 host keys, bursts (2 s on, 3 s off), PutRecords of 250 from 4 producers",
		Apply: func(o *Options) {
			o.Shape, o.Size, o.SizeMax = ShapeLogs, 1024, 4096
			o.Keys, o.KeyPrefix, o.KeyDist = 16, "host-", KeyUniform
			o.Producers, o.Batch = 4, 250
			o.BurstOn, o.BurstOff = 2*time.Second, 3*time.Second
		},
	},
}

// ProfileNames returns the profile names, sorted.
func ProfileNames() []string {
	names := make([]string, 0, len(Profiles))
	for n := range Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// putMode resolves PutAuto.
func (o *Options) putMode() PutMode {
	if o.Mode == PutAuto {
		if o.Batch == 1 {
			return PutRecord
		}
		return PutRecords
	}
	return o.Mode
}

// producerClient resolves the client of the producers' calls: PutRecord
// calls always use the SDK.
func (o *Options) producerClient() ClientKind {
	if o.putMode() == PutRecord {
		return ClientSDK
	}
	return o.ProducerClient
}

// consumerClient resolves the client of the consumers' calls:
// SubscribeToShard always uses the SDK.
func (o *Options) consumerClient() ClientKind {
	if o.ConsumerMode == ConsumeEFO {
		return ClientSDK
	}
	return o.ConsumerClient
}

// Validate reports the first inconsistent option.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	for _, e := range o.Spread {
		if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
			return bad("spread endpoint %q is not an http:// or https:// URL", e)
		}
	}
	switch {
	case o.Endpoint != "" && !strings.HasPrefix(o.Endpoint, "http://") && !strings.HasPrefix(o.Endpoint, "https://"):
		return bad("endpoint %q is not an http:// or https:// URL", o.Endpoint)
	case o.Region == "":
		return bad("region is empty")
	case len(o.Spread) > 0 && o.Endpoint == "":
		return bad("spread needs an endpoint")
	case !o.Create && o.Stream == "":
		return bad("using an existing stream (create=false) needs a stream name")
	case o.Create && (o.Shards < 1 || o.Shards > 10000):
		return bad("shards %d out of range 1..10000", o.Shards)
	case o.Producers < 1:
		return bad("producers %d must be at least 1", o.Producers)
	case o.Mode != PutAuto && o.Mode != PutRecords && o.Mode != PutRecord:
		return bad("mode %q is not auto, putrecords or putrecord", o.Mode)
	case o.ProducerClient != ClientSDK && o.ProducerClient != ClientRaw:
		return bad("producer client %q is not sdk or raw", o.ProducerClient)
	case o.ConsumerClient != ClientSDK && o.ConsumerClient != ClientRaw:
		return bad("consumer client %q is not sdk or raw", o.ConsumerClient)
	case o.Batch < 1 || o.Batch > 500:
		return bad("batch %d out of range 1..500", o.Batch)
	case o.Mode == PutRecord && o.Batch != 1:
		return bad("mode putrecord sends one record per call; batch must be 1")
	case o.Size < headerSize:
		return bad("size %d below the %d-byte record header", o.Size, headerSize)
	case o.SizeMax > 10<<20 || o.Size > 10<<20:
		return bad("record size above 10 MiB")
	case !o.Shape.valid():
		return bad("shape %q is not random, clickstream, iot or logs", o.Shape)
	case o.Keys < 1:
		return bad("keys %d must be at least 1", o.Keys)
	case len(o.KeyPrefix)+len(fmt.Sprint(o.Keys-1)) > 256:
		return bad("partition keys longer than 256 characters")
	case o.KeyDist != KeyUniform && o.KeyDist != KeyZipf:
		return bad("key distribution %q is not uniform or zipf", o.KeyDist)
	case o.KeyDist == KeyZipf && o.ZipfS <= 1:
		return bad("zipf exponent %g must be above 1", o.ZipfS)
	case o.Rate < 0:
		return bad("rate %g is negative", o.Rate)
	case o.BurstOn < 0 || o.BurstOff < 0 || (o.BurstOn > 0) != (o.BurstOff > 0):
		return bad("burst needs both an on and an off period")
	case o.Duration < 0 || o.Records < 0:
		return bad("duration and records must not be negative")
	case o.Duration == 0 && o.Records == 0:
		return bad("set a duration or a record count")
	case o.MaxRetries < 0:
		return bad("max retries %d is negative", o.MaxRetries)
	case o.RequestTimeout <= 0 || o.SetupTimeout <= 0 || o.DrainTimeout <= 0:
		return bad("timeouts must be positive")
	case o.ConsumerMode != ConsumePoll && o.ConsumerMode != ConsumeEFO:
		return bad("consumer mode %q is not poll or efo", o.ConsumerMode)
	case o.Consumers < 0:
		return bad("consumers %d is negative", o.Consumers)
	case o.GetLimit < 1 || o.GetLimit > 10000:
		return bad("get limit %d out of range 1..10000", o.GetLimit)
	case o.PollInterval < 0:
		return bad("poll interval is negative")
	case o.ServerPID < -1:
		return bad("server pid %d is not a process id, 0 (find by port) or -1 (off)", o.ServerPID)
	}
	return nil
}

// sizeRange returns the smallest and largest record size.
func (o *Options) sizeRange() (lo, hi int) {
	return o.Size, max(o.Size, o.SizeMax)
}
