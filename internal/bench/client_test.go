package bench

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestClientsSurviveEarlyResponse replays, deterministically, the race that
// made about one GetRecords or PutRecords call in a few hundred fail with
// "use of closed network connection" against a fast endpoint: the response
// headers arrive while net/http's write loop has sent the request body but
// has not yet returned from writing it; the SDK closes the request body as
// soon as the headers are in; the write loop's last step reads that closed
// body, gets io.EOF from it, takes the request write for failed and closes
// the connection under the response body being read.
//
// The connection below holds the write of the request body until the
// client is reading the response body (so the SDK has closed the request
// body), and the server sends the second half of that body only once the
// client has closed the connection or has left it open for a while.
func TestClientsSurviveEarlyResponse(t *testing.T) {
	data := strings.Repeat("r", 48<<10)
	resp := `{"Records":[{"Data":"` + base64.StdEncoding.EncodeToString([]byte(data)) +
		`","PartitionKey":"k","SequenceNumber":"1"}],"NextShardIterator":"next","MillisBehindLatest":0}`
	half := len(resp) / 2

	var (
		mu   sync.Mutex
		conn *holdConn
	)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
		_, _ = io.WriteString(w, resp[:half])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, resp[half:])
	}))
	defer srv.Close()

	o := DefaultOptions()
	o.Endpoint = srv.URL
	c, err := newClients(context.Background(), &o)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var d net.Dialer
	c.transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		hc := &holdConn{Conn: nc, closed: make(chan struct{})}
		mu.Lock()
		conn = hc
		mu.Unlock()
		return hc, nil
	}

	// Let the server finish its response once the client closed the
	// connection or, when it does not, after a pause long enough for it to
	// have done so.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(release)
		deadline := time.After(5 * time.Second)
		for {
			mu.Lock()
			hc := conn
			mu.Unlock()
			if hc != nil && hc.bodyWritten.Load() {
				select {
				case <-hc.closed:
				case <-time.After(200 * time.Millisecond):
				case <-deadline:
				}
				return
			}
			select {
			case <-time.After(time.Millisecond):
			case <-deadline:
				return
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := c.data.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: aws.String("it")})
	wg.Wait()
	if err != nil {
		t.Fatalf("GetRecords: %v", err)
	}
	if len(out.Records) != 1 || string(out.Records[0].Data) != data {
		t.Fatalf("GetRecords returned %d records, want the one sent", len(out.Records))
	}
	mu.Lock()
	hc := conn
	mu.Unlock()
	select {
	case <-hc.closed:
		t.Error("the client closed the connection after a successful exchange")
	default:
	}
}

// holdConn is the client end of a connection. Its second write (the
// request body; the first carries the headers) returns only once the
// client has read more of the response than net/http's 4 KiB read buffer
// holds, that is, once the caller is reading the response body.
type holdConn struct {
	net.Conn
	writes      atomic.Int32
	read        atomic.Int64
	bodyWritten atomic.Bool
	closeOnce   sync.Once
	closed      chan struct{}
}

func (c *holdConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *holdConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if c.writes.Add(1) == 2 {
		deadline := time.Now().Add(5 * time.Second)
		for c.read.Load() <= 8<<10 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		c.bodyWritten.Store(true)
	}
	return n, err
}

func (c *holdConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
