package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/engine/jetstream"
)

// natsBin is the nats-server binary, built on first use from the module
// version in go.mod, so that the fault tests run the server the engine is
// built against.
var (
	natsBinOnce sync.Once
	natsBin     string
	natsBinErr  error
)

func natsServerBin(t *testing.T) string {
	t.Helper()
	natsBinOnce.Do(func() {
		bin := filepath.Join(filepath.Dir(runnelBin), "nats-server")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2")
		out, err := cmd.CombinedOutput()
		if err != nil {
			natsBinErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
			return
		}
		natsBin = bin
	})
	if natsBinErr != nil {
		t.Fatal(natsBinErr)
	}
	return natsBin
}

// natsNode is one nats-server process of a test cluster.
type natsNode struct {
	name       string
	conf       string
	clientPort int
	httpPort   int
	cmd        *exec.Cmd
	log        *logBuffer
}

// natsCluster is a JetStream cluster of nats-server processes on loopback
// ports, configured as docs/CLUSTER.md tells users to configure theirs.
type natsCluster struct {
	t     *testing.T
	bin   string
	nodes []*natsNode
}

// natsConfig is the configuration file of one node: the payload, pending
// and batch limits the jetstream engine needs, routes to every node, and the
// monitoring port whose /healthz says when the node caught up.
const natsConfig = `server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: %d
max_pending: 256MB
jetstream {
  store_dir: %q
  %s
  limits {
    batch {
      max_msgs: %d
    }
  }
}
cluster {
  name: runnel-test
  listen: 127.0.0.1:%d
  routes: [%s]
}
`

// startNATSCluster writes the configuration of n nodes under a temporary
// directory, starts them and waits until JetStream answers. syncAlways
// makes every node fsync each write before acknowledging it.
func startNATSCluster(t *testing.T, n int, syncAlways bool) *natsCluster {
	t.Helper()
	c := &natsCluster{t: t, bin: natsServerBin(t)}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			c.kill(nd)
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				if nd.log != nil {
					t.Logf("nats-server %s log (last 4 KiB):\n%s", nd.name, tail(nd.log.String(), 4096))
				}
			}
		}
	})
	// A port free a moment ago can be taken before the node binds it
	// (other tests' connections take ports from the same range): then the
	// cluster starts again on new ports.
	for attempt := 1; ; attempt++ {
		err := c.configure(t.TempDir(), n, syncAlways)
		for _, nd := range c.nodes {
			if err == nil {
				err = c.launch(nd)
			}
		}
		if err == nil {
			break
		}
		for _, nd := range c.nodes {
			c.kill(nd)
		}
		if attempt == 3 || !errors.Is(err, errPortTaken) {
			t.Fatal(err)
		}
		t.Logf("starting the NATS cluster again on other ports: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := jetstream.WaitReady(ctx, c.urls()); err != nil {
		t.Fatal(err)
	}
	return c
}

// errPortTaken is a node's failure to bind a port another process took.
var errPortTaken = errors.New("a port was taken")

// configure writes the configuration files of n nodes on fresh ports under
// dir and sets c.nodes to them (not started).
func (c *natsCluster) configure(dir string, n int, syncAlways bool) error {
	t := c.t
	ports := make([]int, 3*n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	c.nodes = nil
	var routes []string
	for i := range n {
		routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(ports[2*n+i]))
	}
	sync := ""
	if syncAlways {
		sync = "sync_interval: always"
	}
	for i := range n {
		name := "n" + strconv.Itoa(i+1)
		conf := filepath.Join(dir, name+".conf")
		text := fmt.Sprintf(natsConfig, name, ports[i], ports[n+i], jetstream.MaxPayload,
			filepath.Join(dir, name), sync, engine.MaxBatchRecords, ports[2*n+i], strings.Join(routes, ", "))
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			return err
		}
		c.nodes = append(c.nodes, &natsNode{name: name, conf: conf, clientPort: ports[i], httpPort: ports[n+i]})
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// urls returns every node's client URL, comma-separated (the --nats value).
func (c *natsCluster) urls() string {
	var us []string
	for _, nd := range c.nodes {
		us = append(us, "nats://127.0.0.1:"+strconv.Itoa(nd.clientPort))
	}
	return strings.Join(us, ",")
}

func (c *natsCluster) node(name string) *natsNode {
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	c.t.Fatalf("no NATS node %q", name)
	return nil
}

// start runs the node's process and waits until it accepts clients.
func (c *natsCluster) start(nd *natsNode) {
	c.t.Helper()
	if err := c.launch(nd); err != nil {
		c.t.Fatal(err)
	}
}

// launch runs the node's process and waits until it accepts clients; an
// error wrapping errPortTaken says that a port it was given is in use.
func (c *natsCluster) launch(nd *natsNode) error {
	nd.log = &logBuffer{}
	nd.cmd = exec.Command(c.bin, "-c", nd.conf)
	nd.cmd.Stdout, nd.cmd.Stderr = nd.log, nd.log
	if err := nd.cmd.Start(); err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(nd.clientPort)
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if strings.Contains(nd.log.String(), "address already in use") {
			return fmt.Errorf("nats-server %s: %w; log:\n%s", nd.name, errPortTaken, nd.log.String())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nats-server %s did not listen on %s; log:\n%s", nd.name, addr, nd.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and reaps the process.
func (c *natsCluster) kill(nd *natsNode) {
	if nd.cmd == nil || nd.cmd.ProcessState != nil {
		return
	}
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	_ = nd.cmd.Wait()
}

// stop stops the node gracefully, as docs/CLUSTER.md tells operators to:
// lame duck mode first (SIGUSR2), in which the node hands the leadership of
// its streams to the others and stops JetStream; once it leads no stream,
// SIGINT ends the process (SIGTERM is ignored in lame duck mode).
func (c *natsCluster) stop(nd *natsNode) {
	c.t.Helper()
	_ = nd.cmd.Process.Signal(syscall.SIGUSR2)
	deadline := time.Now().Add(30 * time.Second)
	for c.leads(nd.name) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	_ = nd.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = nd.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.kill(nd)
		c.t.Fatalf("nats-server %s did not exit within 30 s of SIGINT", nd.name)
	}
}

// waitLeaders waits until every JetStream stream of the cluster has a
// leader.
func (c *natsCluster) waitLeaders(within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for c.leaderless() != 0 {
		if time.Now().After(deadline) {
			c.t.Fatalf("JetStream streams without a leader after %s", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderless returns the number of streams without a leader, or -1 when the
// cluster does not answer.
func (c *natsCluster) leaderless() int {
	return c.count(func(info *njs.StreamInfo) bool { return info.Cluster == nil || info.Cluster.Leader == "" })
}

// leads returns the number of JetStream streams (logs and buckets) whose
// leader is the named node, or -1 when the cluster does not answer.
func (c *natsCluster) leads(name string) int {
	return c.count(func(info *njs.StreamInfo) bool { return info.Cluster != nil && info.Cluster.Leader == name })
}

// count returns the number of streams for which f is true, or -1 when the
// cluster does not answer.
func (c *natsCluster) count(f func(*njs.StreamInfo) bool) int {
	nc, err := nats.Connect(c.urls())
	if err != nil {
		return -1
	}
	defer nc.Close()
	js, err := njs.New(nc)
	if err != nil {
		return -1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n := 0
	lister := js.ListStreams(ctx)
	for info := range lister.Info() {
		if f(info) {
			n++
		}
	}
	if lister.Err() != nil {
		return -1
	}
	return n
}

// waitHealthy waits until the node's /healthz answers 200, which it does
// once JetStream on the node is up and its streams have caught up.
func (c *natsCluster) waitHealthy(nd *natsNode, within time.Duration) {
	c.t.Helper()
	url := "http://127.0.0.1:" + strconv.Itoa(nd.httpPort) + "/healthz"
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("nats-server %s not healthy within %s (last: %v)", nd.name, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jetStream connects to the cluster; done closes the connection.
func (c *natsCluster) jetStream() (js njs.JetStream, done func()) {
	c.t.Helper()
	nc, err := nats.Connect(c.urls())
	if err != nil {
		c.t.Fatal(err)
	}
	js, err = njs.New(nc)
	if err != nil {
		nc.Close()
		c.t.Fatal(err)
	}
	return js, nc.Close
}

// waitCurrent waits until every JetStream stream (shards' and metadata's)
// has a leader and all its replicas online and current as the leader sees
// them: what `nats stream report` shows before an operator takes the next
// node of a rolling restart down. A node's /healthz may say ok while the
// leaders still count it behind; taking a second node down then leaves
// such a stream without a quorum until the first catches up.
func (c *natsCluster) waitCurrent(within time.Duration) {
	c.t.Helper()
	js, done := c.jetStream()
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		behind := ""
		lister := js.ListStreams(ctx)
		for info := range lister.Info() {
			ci := info.Cluster
			switch {
			case ci == nil || ci.Leader == "":
				behind = info.Config.Name + " has no leader"
			default:
				for _, p := range ci.Replicas {
					if !p.Current || p.Offline {
						behind = fmt.Sprintf("%s: replica %s not current", info.Config.Name, p.Name)
					}
				}
			}
		}
		if behind == "" && lister.Err() == nil {
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("streams not current within %s: %s (%v)", within, behind, lister.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shardPeers returns the server names of the leader and of a follower of
// the JetStream stream holding shard index i of some Kinesis stream (the
// tests' clusters hold one Kinesis stream). The log of shard i is named
// "<stream id>.<i>", escaped in the JetStream name as "_2E<i>_".
func (c *natsCluster) shardPeers(i int) (leader, follower string) {
	c.t.Helper()
	js, done := c.jetStream()
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mark := "_2E" + strconv.Itoa(i) + "_"
	for {
		lister := js.ListStreams(ctx)
		for info := range lister.Info() {
			name := info.Config.Name
			if !strings.HasPrefix(name, "RUNNEL_L_") || !strings.Contains(name, mark) || info.Cluster == nil {
				continue
			}
			if info.Cluster.Leader != "" && len(info.Cluster.Replicas) > 0 {
				return info.Cluster.Leader, info.Cluster.Replicas[0].Name
			}
		}
		if ctx.Err() != nil {
			c.t.Fatalf("no leader found for the stream of shard %d: %v", i, lister.Err())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// streamLeader returns the server name of the leader of the named JetStream
// stream, waiting until it has one.
func (c *natsCluster) streamLeader(name string) string {
	c.t.Helper()
	js, done := c.jetStream()
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		st, err := js.Stream(ctx, name)
		if err == nil {
			if info := st.CachedInfo(); info.Cluster != nil && info.Cluster.Leader != "" {
				return info.Cluster.Leader
			}
		}
		if ctx.Err() != nil {
			c.t.Fatalf("no leader found for the stream %s: %v", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
