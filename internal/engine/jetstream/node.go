package jetstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/runnel/runnel/internal/engine"
)

// MaxPayload is the largest NATS message the embedded servers accept: a
// record of the engine's largest size with its key and framing. Servers
// started from a configuration file need `max_payload` at least this large
// for records over NATS' default of 1 MiB.
const MaxPayload = 16 << 20

// NodeOptions configure a NATS server embedded in the process.
type NodeOptions struct {
	// Name is the server's name in its cluster.
	Name string
	// Dir holds the server's JetStream files.
	Dir string
	// Host is the address clients and routes listen on. Default 127.0.0.1.
	Host string
	// Port is the client port; 0 picks a free one.
	Port int
	// ClusterName, ClusterPort and Routes make the server a member of a
	// cluster: it listens for routes on ClusterPort (0 picks a free one)
	// and connects to the routes given. Empty ClusterName: a single node.
	ClusterName string
	ClusterPort int
	Routes      []string
	// SyncAlways makes the server fsync every write before acknowledging
	// it, instead of every two minutes (JetStream's default).
	SyncAlways bool
}

// StartNode starts an embedded NATS server with JetStream and waits until it
// accepts connections.
func StartNode(o NodeOptions) (*server.Server, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	opts := &server.Options{
		ServerName: o.Name,
		Host:       o.Host,
		Port:       port,
		JetStream:  true,
		StoreDir:   o.Dir,
		MaxPayload: MaxPayload,
		// A busy gateway reads many shards at once: below this much
		// unsent data the node does not cut it off as a slow consumer.
		MaxPending: 256 << 20,
		SyncAlways: o.SyncAlways,
		NoSigs:     true,
		NoLog:      true,
		JetStreamLimits: server.JSLimitOpts{
			MaxBatchSize: engine.MaxBatchRecords,
		},
	}
	if o.ClusterName != "" {
		cport := o.ClusterPort
		if cport == 0 {
			cport = server.RANDOM_PORT
		}
		opts.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: o.Host, Port: cport}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("jetstream: route %q: %v", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("jetstream: NATS server %s: %w", o.Name, err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("jetstream: NATS server %s did not start listening within 30 s", o.Name)
	}
	return s, nil
}

// Cluster is a set of embedded NATS servers forming one JetStream cluster on
// loopback ports: for trying cluster mode on one machine, and for tests.
type Cluster struct {
	Servers []*server.Server
	nodes   []NodeOptions
}

// freePorts returns n TCP ports free on host now.
func freePorts(host string, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var out []int
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// ClusterPlan returns the options of n nodes of a loopback cluster whose
// files live under dir (one directory per node), on free ports.
func ClusterPlan(dir string, n int, syncAlways bool) ([]NodeOptions, error) {
	ports, err := freePorts("127.0.0.1", 2*n)
	if err != nil {
		return nil, fmt.Errorf("jetstream: no free ports for a %d-node cluster: %w", n, err)
	}
	var routes []string
	for i := range n {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(ports[n+i]))
	}
	nodes := make([]NodeOptions, n)
	for i := range n {
		nodes[i] = NodeOptions{
			Name:        "n" + strconv.Itoa(i+1),
			Dir:         filepath.Join(dir, "n"+strconv.Itoa(i+1)),
			Port:        ports[i],
			ClusterName: "runnel",
			ClusterPort: ports[n+i],
			Routes:      routes,
			SyncAlways:  syncAlways,
		}
	}
	return nodes, nil
}

// StartCluster starts the nodes of a plan and waits until JetStream has a
// meta leader and answers.
func StartCluster(ctx context.Context, nodes []NodeOptions) (*Cluster, error) {
	c := &Cluster{nodes: nodes}
	for _, o := range nodes {
		s, err := StartNode(o)
		if err != nil {
			c.Shutdown()
			return nil, err
		}
		c.Servers = append(c.Servers, s)
	}
	if err := c.WaitReady(ctx); err != nil {
		c.Shutdown()
		return nil, err
	}
	return c, nil
}

// URLs returns the client URLs of the running servers, comma-separated.
func (c *Cluster) URLs() string {
	var out string
	for _, s := range c.Servers {
		if s == nil {
			continue
		}
		if out != "" {
			out += ","
		}
		out += s.ClientURL()
	}
	return out
}

// WaitReady waits until JetStream in the cluster answers an account
// request, which needs an elected meta leader.
func (c *Cluster) WaitReady(ctx context.Context) error {
	return WaitReady(ctx, c.URLs())
}

// WaitReady connects to urls and waits until JetStream answers.
func WaitReady(ctx context.Context, urls string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("jetstream: connect to %s: %w", urls, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		acancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("jetstream: JetStream at %s not ready: %w", urls, errors.Join(err, ctx.Err()))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Restart shuts node i down and starts it again on the same ports and files.
func (c *Cluster) Restart(i int) error {
	if s := c.Servers[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
	}
	s, err := StartNode(c.nodes[i])
	if err != nil {
		c.Servers[i] = nil
		return err
	}
	c.Servers[i] = s
	return nil
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for _, s := range c.Servers {
		if s != nil {
			s.Shutdown()
			s.WaitForShutdown()
		}
	}
}
