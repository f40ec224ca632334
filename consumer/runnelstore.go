package consumer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// leaseTarget is the X-Amz-Target service name of runnel's lease tables.
const leaseTarget = "RunnelLeases_20261206"

// RunnelStore is a LeaseStore on runnel's built-in lease tables: JSON 1.1
// requests on the Kinesis endpoint, signed with SigV4 like the Kinesis
// calls themselves (docs/LEASES.md describes the API).
type RunnelStore struct {
	endpoint string
	region   string
	creds    aws.CredentialsProvider
	http     aws.HTTPClient
	signer   *v4.Signer
	stream   string
	app      string
}

var _ LeaseStore = (*RunnelStore)(nil)

// NewRunnelStore returns the store of application app on stream, reached
// with the endpoint, region, credentials and HTTP client of the Kinesis
// client's options. The client must have a BaseEndpoint: lease tables are
// runnel's, not Amazon's.
func NewRunnelStore(opts kinesis.Options, stream, app string) (*RunnelStore, error) {
	if opts.BaseEndpoint == nil || *opts.BaseEndpoint == "" {
		return nil, errors.New("consumer: runnel lease tables need the client's BaseEndpoint")
	}
	s := &RunnelStore{
		endpoint: strings.TrimRight(*opts.BaseEndpoint, "/") + "/",
		region:   opts.Region,
		creds:    opts.Credentials,
		http:     opts.HTTPClient,
		signer:   v4.NewSigner(),
		stream:   stream,
		app:      app,
	}
	if s.region == "" {
		s.region = "us-east-1"
	}
	if s.creds == nil {
		s.creds = aws.AnonymousCredentials{}
	}
	if s.http == nil {
		s.http = http.DefaultClient
	}
	return s, nil
}

// wireLease is a lease as the API sends it.
type wireLease struct {
	LeaseKey          string   `json:"LeaseKey"`
	Owner             string   `json:"Owner"`
	Counter           uint64   `json:"Counter"`
	Checkpoint        string   `json:"Checkpoint"`
	SubSequenceNumber uint64   `json:"SubSequenceNumber"`
	ParentShardIds    []string `json:"ParentShardIds"`
	ChildShardIds     []string `json:"ChildShardIds"`
}

func (w wireLease) lease() Lease {
	return Lease{Key: w.LeaseKey, Owner: w.Owner, Counter: w.Counter, Checkpoint: w.Checkpoint,
		SubSequenceNumber: w.SubSequenceNumber, Parents: w.ParentShardIds, Children: w.ChildShardIds}
}

// APIError is an error answer of the lease API.
type APIError struct {
	// Op is the operation that failed.
	Op string
	// Status is the HTTP status.
	Status int
	// Type is the error type ("__type"), without any namespace prefix.
	Type string
	// Message is the server's explanation, for people.
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("consumer: %s: %d %s: %s", e.Op, e.Status, e.Type, e.Message)
}

// Unwrap maps the error types the worker acts on to the package's sentinels.
func (e *APIError) Unwrap() error {
	switch e.Type {
	case "LeaseConflictException":
		return ErrLeaseConflict
	case "ResourceNotFoundException":
		return ErrTableNotFound
	}
	return nil
}

// call sends one operation with the table's names added to in, and decodes
// the answer into out (when not nil).
func (s *RunnelStore) call(ctx context.Context, op string, in map[string]any, out any) error {
	if in == nil {
		in = map[string]any{}
	}
	in["StreamName"], in["ApplicationName"] = s.stream, s.app
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Amz-Target", leaseTarget+"."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("consumer: %s: credentials: %w", op, err)
	}
	sum := sha256.Sum256(body)
	if err := s.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", s.region, time.Now()); err != nil {
		return fmt.Errorf("consumer: %s: sign: %w", op, err)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return fmt.Errorf("consumer: %s: %w", op, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("consumer: %s: read answer: %w", op, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		if i := strings.LastIndexByte(e.Type, '#'); i >= 0 {
			e.Type = e.Type[i+1:]
		}
		return &APIError{Op: op, Status: resp.StatusCode, Type: e.Type, Message: e.Message}
	}
	if out == nil || len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("consumer: %s: decode answer: %w", op, err)
	}
	return nil
}

// How often, and how far apart, Prepare reads a table again that another
// worker's creation reported as existing but a read did not find.
var (
	describeRetries    = 50
	describeRetryDelay = 100 * time.Millisecond
)

// Prepare creates the table unless it exists.
func (s *RunnelStore) Prepare(ctx context.Context, initial Position) (Position, error) {
	pos := map[string]any{"Type": initial.Type}
	if initial.Type == "AT_TIMESTAMP" {
		pos["Timestamp"] = float64(initial.Timestamp.UnixMilli()) / 1000
	}
	var out struct {
		LeaseTable struct {
			InitialPosition struct {
				Type      string
				Timestamp *float64
			}
		}
	}
	err := s.call(ctx, "CreateLeaseTable", map[string]any{"InitialPosition": pos}, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Type == "ResourceInUseException" {
		// Another worker created it. On a cluster the read that follows
		// may reach a replica that has not seen the creation yet (while
		// the bucket's leader cannot be asked): look again for a while.
		for wait := describeRetries; ; wait-- {
			err = s.call(ctx, "DescribeLeaseTable", nil, &out)
			if !errors.Is(err, ErrTableNotFound) || wait == 0 || sleep(ctx, describeRetryDelay) != nil {
				break
			}
		}
	}
	if err != nil {
		return Position{}, err
	}
	p := Position{Type: out.LeaseTable.InitialPosition.Type}
	if ts := out.LeaseTable.InitialPosition.Timestamp; ts != nil {
		p.Timestamp = time.UnixMilli(int64(*ts * 1000))
	}
	if p.Type == "" {
		p = initial
	}
	return p, nil
}

// List returns the table's leases.
func (s *RunnelStore) List(ctx context.Context) ([]Lease, error) {
	var out struct{ Leases []wireLease }
	if err := s.call(ctx, "ListLeases", nil, &out); err != nil {
		return nil, err
	}
	ls := make([]Lease, len(out.Leases))
	for i, w := range out.Leases {
		ls[i] = w.lease()
	}
	return ls, nil
}

func (s *RunnelStore) change(ctx context.Context, op string, in map[string]any) (Lease, error) {
	var out struct{ Lease *wireLease }
	if err := s.call(ctx, op, in, &out); err != nil {
		return Lease{}, err
	}
	if out.Lease == nil {
		return Lease{}, fmt.Errorf("consumer: %s: answer without a lease", op)
	}
	return out.Lease.lease(), nil
}

// Take takes the lease at counter.
func (s *RunnelStore) Take(ctx context.Context, key, owner string, counter uint64) (Lease, error) {
	return s.change(ctx, "TakeLease", map[string]any{"LeaseKey": key, "Owner": owner, "Counter": counter})
}

// Release gives up the lease.
func (s *RunnelStore) Release(ctx context.Context, key, owner string, counter uint64) (Lease, error) {
	return s.change(ctx, "ReleaseLease", map[string]any{"LeaseKey": key, "Owner": owner, "Counter": counter})
}

// Checkpoint records how far the shard is processed.
func (s *RunnelStore) Checkpoint(ctx context.Context, key, owner string, counter uint64, seq string, sub uint64) (Lease, error) {
	return s.change(ctx, "Checkpoint", map[string]any{"LeaseKey": key, "Owner": owner, "Counter": counter,
		"SequenceNumber": seq, "SubSequenceNumber": sub})
}

// maxRenewals is the most leases one RenewLeases call may name.
const maxRenewals = 1000

// Renew renews leases in calls of up to 1000.
func (s *RunnelStore) Renew(ctx context.Context, owner string, leases []Lease) (renewed, lost []Lease, err error) {
	for len(leases) > 0 {
		n := min(len(leases), maxRenewals)
		rs := make([]map[string]any, n)
		for i, l := range leases[:n] {
			rs[i] = map[string]any{"LeaseKey": l.Key, "Counter": l.Counter}
		}
		leases = leases[n:]
		var out struct{ Renewed, Lost []wireLease }
		if err := s.call(ctx, "RenewLeases", map[string]any{"Owner": owner, "Leases": rs}, &out); err != nil {
			return renewed, lost, err
		}
		for _, w := range out.Renewed {
			renewed = append(renewed, w.lease())
		}
		for _, w := range out.Lost {
			lost = append(lost, w.lease())
		}
	}
	return renewed, lost, nil
}
