package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/runnel/runnel/internal/sdkclient"
)

// ErrEFOUnsupported reports an endpoint that does not support enhanced
// fan-out (RegisterStreamConsumer and SubscribeToShard).
var ErrEFOUnsupported = errors.New("bench: endpoint does not support enhanced fan-out")

// ErrNoEndpoint reports an endpoint that refuses connections: nothing
// listens there.
var ErrNoEndpoint = errors.New("bench: nothing answers at the endpoint")

// noEndpointError is the error of a run whose endpoint refused the
// connection, with what to do about it.
func noEndpointError(endpoint string, err error) error {
	if endpoint == "" {
		return fmt.Errorf("%w: AWS refused the connection: %w", ErrNoEndpoint, err)
	}
	return fmt.Errorf("%w: %s refused the connection; start a server there with `runnel serve` (in another terminal) or point --endpoint at a running one", ErrNoEndpoint, endpoint)
}

// refusedIsFinal makes a refused connection final for the SDK's retryer:
// nothing listens, and retrying for a minute would only hide that.
var refusedIsFinal = retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
})

// ErrSetup wraps failures to create, find or wait for the stream.
var ErrSetup = errors.New("bench: stream setup failed")

// clients are the SDK clients of a run, sharing one HTTP client.
type clients struct {
	// data has the SDK's retries turned off: producers and consumers retry
	// themselves, so that throttles and failures are seen and counted.
	data *kinesis.Client
	// control retries like any SDK client; it runs the control plane
	// (create, describe, delete, register).
	control *kinesis.Client
	// raw, with --producer-client raw or --consumer-client raw, sends the
	// producers' PutRecords or the consumers' GetRecords calls without the
	// SDK, on the same HTTP client.
	raw *rawClient
	// spread and spreadRaw are data and raw for the endpoints of
	// Options.Spread, in order.
	spread    []*kinesis.Client
	spreadRaw []*rawClient
	// transport is closed at the end of the run, so that no connection
	// goroutine outlives it.
	transport *http.Transport
}

// dataFor returns the data client of the i-th producer or consumer: the
// endpoints take them in turn.
func (c *clients) dataFor(i int) *kinesis.Client {
	if n := len(c.spread) + 1; i%n != 0 {
		return c.spread[i%n-1]
	}
	return c.data
}

// rawFor is dataFor for the raw client.
func (c *clients) rawFor(i int) *rawClient {
	if n := len(c.spreadRaw) + 1; i%n != 0 {
		return c.spreadRaw[i%n-1]
	}
	return c.raw
}

// close releases the idle connections.
func (c *clients) close() {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
}

func newClients(ctx context.Context, o *Options) (*clients, error) {
	conns := o.Producers + max(o.Consumers, o.Shards) + 16
	var cfg aws.Config
	var tr *http.Transport
	if o.Endpoint != "" && !o.AWSCredentials {
		// A local endpoint: fixed dummy credentials and nothing from the
		// environment, on a transport the run closes at its end.
		tr = http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns = 2 * conns
		tr.MaxIdleConnsPerHost = conns
		cfg = aws.Config{
			Region:      o.Region,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("runnelbench", "runnelbench", "")),
			HTTPClient:  &http.Client{Transport: tr},
		}
	} else {
		hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConns = 2 * conns
			t.MaxIdleConnsPerHost = conns
		})
		var err error
		cfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(o.Region), config.WithHTTPClient(hc))
		if err != nil {
			return nil, fmt.Errorf("load AWS config: %w", err)
		}
	}
	newRaw := func(endpoint string) *rawClient {
		if o.producerClient() != ClientRaw && o.consumerClient() != ClientRaw {
			return nil
		}
		// The raw client closes no request body early: it needs no guard.
		return &rawClient{
			http:   cfg.HTTPClient,
			url:    endpointURL(endpoint, o.Region),
			region: o.Region,
			creds:  cmp.Or[aws.CredentialsProvider](cfg.Credentials, aws.AnonymousCredentials{}),
			signer: v4.NewSigner(),
		}
	}
	raw := newRaw(o.Endpoint)
	cfg.HTTPClient = sdkclient.Guard(cfg.HTTPClient) // see package sdkclient
	endpoint := func(k *kinesis.Options) {
		if o.Endpoint != "" {
			k.BaseEndpoint = aws.String(o.Endpoint)
		}
	}
	noRetry := func(k *kinesis.Options) { k.Retryer = aws.NopRetryer{} }
	var spread []*kinesis.Client
	var spreadRaw []*rawClient
	for _, e := range o.Spread {
		spread = append(spread, kinesis.NewFromConfig(cfg, func(k *kinesis.Options) { k.BaseEndpoint = aws.String(e) }, noRetry))
		spreadRaw = append(spreadRaw, newRaw(e))
	}
	return &clients{
		spread:    spread,
		spreadRaw: spreadRaw,
		data:      kinesis.NewFromConfig(cfg, endpoint, noRetry),
		control: kinesis.NewFromConfig(cfg, endpoint, func(k *kinesis.Options) {
			k.Retryer = retry.NewStandard(func(s *retry.StandardOptions) {
				s.MaxAttempts = 8
				s.Retryables = append([]retry.IsErrorRetryable{refusedIsFinal}, s.Retryables...)
			})
		}),
		raw:       raw,
		transport: tr,
	}, nil
}

// streamInfo is the stream a run uses.
type streamInfo struct {
	name    string
	arn     string
	created bool
	shards  []string         // shard ids, in ListShards order
	index   map[string]int32 // shard id -> index in shards
}

// setupStream creates the stream (or finds the existing one), waits until
// it is ACTIVE and lists its shards.
func setupStream(ctx context.Context, c *kinesis.Client, o *Options, name string) (*streamInfo, error) {
	si := &streamInfo{name: name}
	if o.Create {
		_, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{
			StreamName: aws.String(name),
			ShardCount: aws.Int32(int32(o.Shards)),
		})
		if err != nil {
			return nil, fmt.Errorf("%w: create stream %s: %w", ErrSetup, name, err)
		}
		si.created = true
	}
	deadline := time.Now().Add(o.SetupTimeout)
	for active := false; !active; {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		var notFound *types.ResourceNotFoundException
		switch {
		case err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive:
			si.arn = aws.ToString(out.StreamDescriptionSummary.StreamARN)
			active = true
			continue
		case err == nil, errors.As(err, &notFound) && si.created:
			// Still creating (or not yet visible).
		default:
			return si, fmt.Errorf("%w: describe stream %s: %w", ErrSetup, name, err)
		}
		if time.Now().After(deadline) {
			return si, fmt.Errorf("%w: stream %s not ACTIVE after %v", ErrSetup, name, o.SetupTimeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return si, err
		}
	}
	in := &kinesis.ListShardsInput{StreamName: aws.String(name)}
	for {
		out, err := c.ListShards(ctx, in)
		if err != nil {
			return si, fmt.Errorf("%w: list shards of %s: %w", ErrSetup, name, err)
		}
		for _, s := range out.Shards {
			si.shards = append(si.shards, aws.ToString(s.ShardId))
		}
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	if len(si.shards) == 0 {
		return si, fmt.Errorf("%w: stream %s has no shards", ErrSetup, name)
	}
	if o.EncryptKey != "" {
		if err := encryptStream(ctx, c, o, name); err != nil {
			return si, err
		}
	}
	si.index = make(map[string]int32, len(si.shards))
	for i, id := range si.shards {
		si.index[id] = int32(i)
	}
	return si, nil
}

// deleteStream deletes a stream the run created. It uses its own context so
// that an interrupted run still cleans up.
func deleteStream(c *kinesis.Client, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{
		StreamName:              aws.String(name),
		EnforceConsumerDeletion: aws.Bool(true),
	})
	if err != nil {
		return fmt.Errorf("delete stream %s: %w", name, err)
	}
	return nil
}

// registerConsumer registers an enhanced fan-out consumer and waits until
// it is ACTIVE.
func registerConsumer(ctx context.Context, c *kinesis.Client, o *Options, si *streamInfo, name string) (string, error) {
	out, err := c.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{
		StreamARN:    aws.String(si.arn),
		ConsumerName: aws.String(name),
	})
	if err != nil {
		if unsupported(err) {
			return "", fmt.Errorf("%w: RegisterStreamConsumer: %w", ErrEFOUnsupported, err)
		}
		return "", fmt.Errorf("register stream consumer: %w", err)
	}
	arn := aws.ToString(out.Consumer.ConsumerARN)
	deadline := time.Now().Add(o.SetupTimeout)
	for out.Consumer.ConsumerStatus != types.ConsumerStatusActive {
		d, err := c.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)})
		if err != nil {
			return arn, fmt.Errorf("describe stream consumer: %w", err)
		}
		if d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
			break
		}
		if time.Now().After(deadline) {
			return arn, fmt.Errorf("stream consumer %s not ACTIVE after %v", name, o.SetupTimeout)
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return arn, err
		}
	}
	return arn, nil
}

func deregisterConsumer(c *kinesis.Client, arn string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: aws.String(arn)}); err != nil {
		return fmt.Errorf("deregister stream consumer: %w", err)
	}
	return nil
}

// unsupported reports whether err says the endpoint does not implement the
// operation.
func unsupported(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "UnknownOperationException", "InvalidAction", "NotImplemented", "UnsupportedOperation":
			return true
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusNotFound, http.StatusNotImplemented, http.StatusMethodNotAllowed:
			return true
		}
	}
	return false
}

// errClass is how a producer or consumer reacts to a failed call.
type errClass int

const (
	// errFatal: the call will not succeed by retrying (validation, missing
	// stream, access denied); the run stops.
	errFatal errClass = iota
	// errThrottled: the service refused the call for capacity; nothing was
	// written. Retry after a backoff.
	errThrottled
	// errRetryable: a server error, a transport error or a timeout; the
	// outcome of a write is unknown. Retry after a backoff.
	errRetryable
	// errStopped: the run is ending.
	errStopped
)

var (
	isThrottle  = retry.IsErrorThrottles(retry.DefaultThrottles)
	isRetryable = retry.IsErrorRetryables(retry.DefaultRetryables)
)

// classify tells how to react to err, returned by a call made with a
// context derived from run.
func classify(run context.Context, err error) errClass {
	switch {
	case run.Err() != nil:
		return errStopped
	case isThrottle.IsErrorThrottle(err) == aws.TrueTernary:
		return errThrottled
	case errors.Is(err, context.DeadlineExceeded), isRetryable.IsErrorRetryable(err) == aws.TrueTernary:
		return errRetryable
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "InternalFailure" {
		return errRetryable
	}
	return errFatal
}

// backoff returns a full-jitter exponential delay for the given attempt
// (1, 2, ...): uniform in [0, min(1s, 20ms * 2^attempt)).
func backoff(rng *rand.Rand, attempt int) time.Duration {
	ceiling := 20 * time.Millisecond << min(attempt, 6)
	ceiling = min(ceiling, time.Second)
	return time.Duration(rng.Int64N(int64(ceiling))) + time.Millisecond
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// encryptStream turns on server-side encryption and waits until the
// stream is ACTIVE again, when new records are encrypted.
func encryptStream(ctx context.Context, c *kinesis.Client, o *Options, name string) error {
	_, err := c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{
		StreamName:     aws.String(name),
		EncryptionType: types.EncryptionTypeKms,
		KeyId:          aws.String(o.EncryptKey),
	})
	if err != nil {
		return fmt.Errorf("%w: start encryption of %s with %s: %w", ErrSetup, name, o.EncryptKey, err)
	}
	deadline := time.Now().Add(o.SetupTimeout)
	for {
		out, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			return fmt.Errorf("%w: describe stream %s: %w", ErrSetup, name, err)
		}
		if out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: stream %s not ACTIVE %v after StartStreamEncryption", ErrSetup, name, o.SetupTimeout)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}
