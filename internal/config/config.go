// Package config reads runnel's configuration file (`runnel serve --config
// runnel.yaml`): named connections to S3-compatible stores and
// directories, the buckets delivery streams may name and where each one
// is, and streams and delivery streams to create at start. Credentials
// live here, never in what the API shows.
//
//	connections:
//	  minio:
//	    s3:
//	      endpoint: http://127.0.0.1:9000
//	      region: us-east-1
//	      access_key_id: runnel
//	      secret_access_key: change-me
//	      path_style: true
//	  archive:
//	    directory: /srv/archive
//	buckets:
//	  lake:                 # arn:aws:s3:::lake
//	    connection: minio
//	    name: datalake      # the bucket's name on the store (default: lake)
//	  logs:
//	    connection: archive # the directory /srv/archive/logs
//	streams:
//	  - name: orders
//	    shards: 2
//	delivery_streams:
//	  - name: orders-to-lake
//	    source_stream: orders   # omitted: DirectPut
//	    bucket: lake
//	    prefix: orders/
//	    compression: GZIP
//	    buffer_size_mb: 5
//	    buffer_interval_seconds: 60
//	    append_newline: true
package config

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/goccy/go-yaml"

	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/delivery/file"
	"github.com/runnel/runnel/internal/delivery/s3"
	"github.com/runnel/runnel/internal/streams"
)

// File is the configuration file.
type File struct {
	Connections     map[string]Connection `yaml:"connections"`
	Buckets         map[string]Bucket     `yaml:"buckets"`
	Streams         []Stream              `yaml:"streams"`
	DeliveryStreams []DeliveryStream      `yaml:"delivery_streams"`
}

// Connection is one store: S3-compatible or a directory.
type Connection struct {
	S3        *S3Connection `yaml:"s3"`
	Directory string        `yaml:"directory"`
}

// S3Connection reaches an S3-compatible store.
type S3Connection struct {
	Endpoint        string `yaml:"endpoint"`
	Region          string `yaml:"region"`
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	PathStyle       bool   `yaml:"path_style"`
}

// Bucket maps a bucket ARN's name to a connection.
type Bucket struct {
	Connection string `yaml:"connection"`
	// Name is the bucket's name on an S3 store, or the directory's name
	// below a directory connection. Default: the bucket's own name.
	Name string `yaml:"name"`
}

// Stream is a stream to create at start when missing.
type Stream struct {
	Name   string `yaml:"name"`
	Shards int32  `yaml:"shards"`
}

// DeliveryStream is a delivery stream to create at start when missing.
type DeliveryStream struct {
	Name string `yaml:"name"`
	// SourceStream makes it KinesisStreamAsSource on that stream;
	// empty: DirectPut.
	SourceStream          string `yaml:"source_stream"`
	Bucket                string `yaml:"bucket"`
	Prefix                string `yaml:"prefix"`
	ErrorOutputPrefix     string `yaml:"error_output_prefix"`
	Compression           string `yaml:"compression"`
	BufferSizeMB          int32  `yaml:"buffer_size_mb"`
	BufferIntervalSeconds *int32 `yaml:"buffer_interval_seconds"`
	AppendNewline         bool   `yaml:"append_newline"`
}

// Load reads and checks a configuration file.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse reads and checks a configuration. Unknown keys are errors, so
// that a misspelt key is not silently ignored.
func Parse(b []byte) (*File, error) {
	var f File
	if err := yaml.UnmarshalWithOptions(b, &f, yaml.Strict()); err != nil {
		return nil, fmt.Errorf("config: %s", yaml.FormatError(err, false, true))
	}
	return &f, f.Validate()
}

// Validate reports the first inconsistency.
func (f *File) Validate() error {
	for name, c := range f.Connections {
		switch {
		case c.S3 != nil && c.Directory != "":
			return fmt.Errorf("config: connection %s: give s3 or directory, not both", name)
		case c.S3 == nil && c.Directory == "":
			return fmt.Errorf("config: connection %s: give s3 (endpoint, credentials) or directory", name)
		case c.S3 != nil && (c.S3.AccessKeyID == "") != (c.S3.SecretAccessKey == ""):
			return fmt.Errorf("config: connection %s: give both access_key_id and secret_access_key, or neither for the AWS SDK's default credentials", name)
		}
	}
	for name, b := range f.Buckets {
		if _, ok := f.Connections[b.Connection]; !ok {
			return fmt.Errorf("config: bucket %s: no connection named %q", name, b.Connection)
		}
	}
	seen := map[string]bool{}
	for i, s := range f.Streams {
		if s.Name == "" || s.Shards < 1 {
			return fmt.Errorf("config: streams[%d]: needs a name and shards >= 1", i)
		}
		if seen[s.Name] {
			return fmt.Errorf("config: stream %s declared twice", s.Name)
		}
		seen[s.Name] = true
	}
	seen = map[string]bool{}
	for i, d := range f.DeliveryStreams {
		if d.Name == "" || d.Bucket == "" {
			return fmt.Errorf("config: delivery_streams[%d]: needs a name and a bucket", i)
		}
		if seen[d.Name] {
			return fmt.Errorf("config: delivery stream %s declared twice", d.Name)
		}
		seen[d.Name] = true
	}
	return nil
}

// Resolver maps bucket ARNs to destinations: the configured buckets, then,
// when fallback is set, every other bucket as a directory below it
// (--buckets-dir).
type Resolver struct {
	file     *File
	fallback *file.Buckets

	mu    sync.Mutex
	cache map[string]delivery.Destination
}

var _ delivery.Resolver = (*Resolver)(nil)

// NewResolver returns the resolver of f (which may be nil) and the
// directory of unlisted buckets (empty: none).
func NewResolver(f *File, bucketsDir string) *Resolver {
	r := &Resolver{file: f, cache: map[string]delivery.Destination{}}
	if bucketsDir != "" {
		r.fallback = file.NewBuckets(bucketsDir)
	}
	return r
}

// Resolve returns the destination of a bucket ARN.
func (r *Resolver) Resolve(ctx context.Context, arn string) (delivery.Destination, error) {
	name, ok := strings.CutPrefix(arn, "arn:aws:s3:::")
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, &delivery.Error{Code: delivery.CodeInvalidArgument, Message: fmt.Sprintf("BucketARN %s is not an S3 bucket ARN (arn:aws:s3:::bucket).", arn)}
	}
	var b Bucket
	listed := false
	if r.file != nil {
		b, listed = r.file.Buckets[name]
	}
	if !listed {
		if r.fallback != nil {
			return r.fallback.Resolve(ctx, arn)
		}
		return nil, &delivery.Error{Code: delivery.CodeInvalidArgument, Message: fmt.Sprintf(
			"Bucket %s is not configured on this server: map it under buckets: in the configuration file (--config), or start runnel with --buckets-dir.", name)}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := r.cache[name]; d != nil {
		return d, nil
	}
	target := b.Name
	if target == "" {
		target = name
	}
	c := r.file.Connections[b.Connection]
	var d delivery.Destination
	if c.Directory != "" {
		d = file.NewDir(filepath.Join(c.Directory, target))
	} else {
		bk, err := s3.New(ctx, s3.Connection{Endpoint: c.S3.Endpoint, Region: c.S3.Region, AccessKeyID: c.S3.AccessKeyID,
			SecretAccessKey: c.S3.SecretAccessKey, PathStyle: c.S3.PathStyle}, target)
		if err != nil {
			return nil, fmt.Errorf("config: bucket %s: %w", name, err)
		}
		d = bk
	}
	r.cache[name] = d
	return d, nil
}

// Apply creates the declared streams and delivery streams that do not
// exist, and gives declared delivery streams that exist the declared
// destination (a new version, as UpdateDestination). Existing streams are
// kept as they are: their shards change through the API.
func (f *File) Apply(ctx context.Context, st *streams.Service, ds *delivery.Service, region, account string, log *slog.Logger) error {
	for _, s := range f.Streams {
		err := st.CreateStream(ctx, &streams.CreateStreamInput{StreamName: ptr(s.Name), ShardCount: ptr(s.Shards)})
		var se *streams.Error
		switch {
		case err == nil:
			log.Info("config: stream created", slog.String("stream", s.Name), slog.Int("shards", int(s.Shards)))
		case errors.As(err, &se) && se.Code == streams.CodeResourceInUse:
			log.Info("config: stream exists, kept as it is", slog.String("stream", s.Name))
		default:
			return fmt.Errorf("config: stream %s: %w", s.Name, err)
		}
	}
	for _, d := range f.DeliveryStreams {
		action, err := ds.Reconcile(ctx, d.input(region, account))
		if err != nil {
			return fmt.Errorf("config: delivery stream %s: %w", d.Name, err)
		}
		log.Info("config: delivery stream "+action, slog.String("delivery_stream", d.Name), slog.String("bucket", d.Bucket))
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// input is the CreateDeliveryStream request a declaration stands for.
func (d DeliveryStream) input(region, account string) *delivery.CreateDeliveryStreamInput {
	dest := &delivery.ExtendedS3DestinationConfiguration{
		RoleARN:   ptr("arn:aws:iam::" + account + ":role/runnel-config"),
		BucketARN: ptr("arn:aws:s3:::" + d.Bucket),
	}
	if d.Prefix != "" {
		dest.Prefix = ptr(d.Prefix)
	}
	if d.ErrorOutputPrefix != "" {
		dest.ErrorOutputPrefix = ptr(d.ErrorOutputPrefix)
	}
	if d.Compression != "" {
		dest.CompressionFormat = ptr(d.Compression)
	}
	if d.BufferSizeMB != 0 || d.BufferIntervalSeconds != nil {
		dest.BufferingHints = &delivery.BufferingHints{IntervalInSeconds: d.BufferIntervalSeconds}
		if d.BufferSizeMB != 0 {
			dest.BufferingHints.SizeInMBs = ptr(d.BufferSizeMB)
		}
	}
	if d.AppendNewline {
		dest.ProcessingConfiguration = &delivery.ProcessingConfiguration{Enabled: ptr(true),
			Processors: []delivery.Processor{{Type: ptr("AppendDelimiterToRecord")}}}
	}
	in := &delivery.CreateDeliveryStreamInput{DeliveryStreamName: ptr(d.Name), ExtendedS3DestinationConfiguration: dest}
	if d.SourceStream != "" {
		in.DeliveryStreamType = ptr(delivery.TypeKinesis)
		in.KinesisStreamSourceConfiguration = &delivery.KinesisStreamSourceConfiguration{
			KinesisStreamARN: ptr("arn:aws:kinesis:" + region + ":" + account + ":stream/" + d.SourceStream),
			RoleARN:          ptr("arn:aws:iam::" + account + ":role/runnel-config"),
		}
	}
	return in
}
