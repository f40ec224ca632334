package thirdparty

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	consumer "github.com/harlow/kinesis-consumer"
	memstore "github.com/harlow/kinesis-consumer/store/memory"
)

// TestHarlowConsumerPolling runs harlow/kinesis-consumer v0.5.0 with its
// in-memory checkpoint store. It reads every shard with GetRecords (it has
// no enhanced fan-out), starts
// new shards from TRIM_HORIZON, and hands a child shard to its scanner only
// once the scanners of its parents have returned at the end of their
// shards. Its group looks for new shards every 30 seconds, so the children
// are picked up at most that long after the resharding.
//
// The library stops scanning on any error GetRecords returns but
// ExpiredIteratorException and throttling, and the SDK's HTTP/1.1 client
// now and then breaks a call against a fast local server on its own (see
// internal/sdkclient in the runnel module), so the client gets the same
// guard runnel's tests use.
func TestHarlowConsumerPolling(t *testing.T) {
	s := newScenario(t)
	client := kinesis.New(kinesis.Options{
		Region:       region,
		BaseEndpoint: aws.String(s.srv.endpoint()),
		Credentials:  creds,
		HTTPClient:   guard{awshttp.NewBuildableClient()},
	})
	hlog := &harlowLogger{}
	store := memstore.New()
	var mu sync.Mutex
	var closed []string
	c, err := consumer.New(s.stream,
		consumer.WithClient(client),
		consumer.WithStore(store),
		consumer.WithShardIteratorType(string(types.ShardIteratorTypeTrimHorizon)),
		consumer.WithScanInterval(100*time.Millisecond),
		consumer.WithLogger(hlog),
		consumer.WithShardClosedHandler(func(_, shardID string) error {
			mu.Lock()
			closed = append(closed, shardID)
			mu.Unlock()
			return nil
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	scanned := make(chan error, 1)
	go func() {
		scanned <- c.Scan(ctx, func(r *consumer.Record) error {
			s.ledger.deliver(r.ShardID, []types.Record{r.Record})
			return nil
		})
	}()
	defer func() {
		if t.Failed() {
			t.Logf("library log (last 8 KiB):\n%s", tail(hlog.String(), 8<<10))
		}
	}()

	parents := []string{"shardId-000000000000", "shardId-000000000001"}
	s.run(func() bool { return s.ledger.read(parents[0]) && s.ledger.read(parents[1]) }, 100*time.Second)
	cancel()
	select {
	case err := <-scanned:
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Scan did not return within 30s of its context's end")
	}
	s.verify()
	mu.Lock()
	defer mu.Unlock()
	if len(closed) != len(parents) {
		t.Errorf("shards reported closed: %v, want the %d parents", closed, len(parents))
	}
	// Its checkpoints followed the records to the end of each parent.
	for _, p := range parents {
		if cp, err := store.GetCheckpoint(s.stream, p); err != nil || cp != s.ledger.lastSeq(p) {
			t.Errorf("checkpoint of %s is %q (%v), its last record %q", p, cp, err, s.ledger.lastSeq(p))
		}
	}
	t.Logf("%s; GetRecords %d", s.ledger.summary(), s.srv.requests("GetRecords"))
}

// guard hides every method of a request body but Read and Close from
// net/http, which keeps the SDK's HTTP/1.1 client from closing a connection
// under the response it is reading (the same fix as runnel's
// internal/sdkclient; this module keeps runnel's own module out of its
// dependencies).
type guard struct{ aws.HTTPClient }

func (g guard) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		r = r.WithContext(r.Context())
		r.Body = struct{ io.ReadCloser }{r.Body}
	}
	return g.HTTPClient.Do(r)
}

// harlowLogger keeps the library's log for a failed test's output.
type harlowLogger struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *harlowLogger) Log(args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, "%s %s\n", time.Now().Format("15:04:05.000"), strings.TrimSuffix(fmt.Sprintln(args...), "\n"))
}

func (l *harlowLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
