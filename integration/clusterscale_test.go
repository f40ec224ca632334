package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/nats-io/nats.go"
	njs "github.com/nats-io/nats.go/jetstream"
)

// The on-demand fault tests run an ON_DEMAND stream on the fault tests'
// cluster (clusterfault_test.go) with scaler thresholds low enough for the
// writers to make it split within seconds. The writers first write slowly,
// below the thresholds; the fault happens; then they write as fast as the
// gateways answer, and the stream must grow while the fault lasts: the
// scaling decisions, made by the gateway that holds the leader's lease from
// the write counts every gateway publishes, keep being made and applied.

// onDemandFlags make a gateway split an ON_DEMAND shard that writes more
// than 250 records/s over a 1 s window, up to 8 open shards, and never
// merge within a test.
var onDemandFlags = []string{
	"--scale-window", "1s", "--scale-cooldown", "10m",
	"--scale-split-records", "250", "--scale-split-bytes", "100000000",
	"--scale-merge-records", "1", "--scale-merge-bytes", "1",
	"--scale-max-shards", "8",
}

const (
	onDemandStart = 4 // the shards of a new ON_DEMAND stream
	onDemandMax   = 8 // --scale-max-shards above
)

// slowPause keeps the writers below the split threshold: four writers each
// sending 25 records every 250 ms or more write at most 400 records/s, and
// the writers' 20 partition keys put at most 7 of 20 on one of the 4 first
// shards, 140 records/s.
const slowPause = 250 * time.Millisecond

// onDemandCluster starts three nodes, two gateways with onDemandFlags, an
// ON_DEMAND stream, and the load, writing slowly.
func onDemandCluster(t *testing.T) (*natsCluster, []*server, *faultLoad) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a 3-node nats-server cluster and two gateways")
	}
	c := startNATSCluster(t, 3, false)
	gws := faultGateways(t, c, onDemandFlags...)
	const stream = "ondemand"
	sdk := gws[0].client()
	_, err := sdk.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(stream),
		StreamModeDetails: &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}})
	if err != nil {
		t.Fatal(err)
	}
	waitActive(t, sdk, stream)
	waitActive(t, gws[1].client(), stream)
	l := startPacedLoad(t, gws, stream, onDemandStart, slowPause)
	return c, gws, l
}

// openShards returns the stream's open shard count as the first gateway
// that answers tells it.
func (l *faultLoad) openShards() (int, error) {
	var err error
	for g := range l.gws {
		_, s := l.gateway(g)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var out *kinesis.DescribeStreamSummaryOutput
		out, err = s.client().DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(l.stream)})
		cancel()
		if err == nil {
			return int(aws.ToInt32(out.StreamDescriptionSummary.OpenShardCount)), nil
		}
	}
	return 0, err
}

// waitGrowth waits until the stream has more than from open shards and
// returns how many it has then.
func (l *faultLoad) waitGrowth(from int, within time.Duration) int {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		n, err := l.openShards()
		if err == nil && n > from {
			return n
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("the stream did not grow past %d open shards within %s (now %d, %v)", from, within, n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitFollowed waits until the readers on every gateway reached the end of
// every closed shard and moved on to its children.
func (l *faultLoad) waitFollowed(within time.Duration) {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		missing, err := l.unfollowed()
		if err == nil && len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("readers did not move on to every child shard within %s: missing %v (%v)", within, missing, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// unfollowed returns the child shards, as shard@gateway, that the readers
// of a gateway have not started reading.
func (l *faultLoad) unfollowed() ([]string, error) {
	_, s := l.gateway(0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := s.client().ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(l.stream)})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var missing []string
	for _, sh := range out.Shards {
		if sh.ParentShardId == nil {
			continue
		}
		for g := range l.gws {
			if key := fmt.Sprintf("%s@%d", *sh.ShardId, g); !l.follow[key] {
				missing = append(missing, key)
			}
		}
	}
	return missing, nil
}

// checkLineage reads the stream back parents before children
// (readLineage checks that children's sequence numbers follow their
// parents') and checks that each writer's records of one partition key are
// in the order they were acknowledged, across the splits.
func (l *faultLoad) checkLineage(c *kinesis.Client) {
	t := l.t
	t.Helper()
	got := readLineage(t, c, l.stream)
	pos := map[string]int{} // data -> its first place in its key's records
	for _, recs := range got {
		for i, r := range recs {
			if _, ok := pos[string(r.Data)]; !ok {
				pos[string(r.Data)] = i
			}
		}
	}
	last := map[string]int{}
	bad := 0
	for _, a := range l.acked {
		key := l.writer[a.data]
		p, ok := pos[a.data]
		if !ok {
			t.Errorf("acknowledged record %q not read back through the shards' lineage", a.data)
			continue
		}
		if q, seen := last[key]; seen && p <= q {
			if bad++; bad <= 5 {
				t.Errorf("key %s: record %q read before an earlier acknowledged one", key, a.data)
			}
		}
		last[key] = p
	}
	children := map[int]int{}
	for key := range l.follow {
		var i, g int
		if _, err := fmt.Sscanf(key, "shardId-%d@%d", &i, &g); err != nil {
			t.Fatalf("reader key %q: %v", key, err)
		}
		if i >= onDemandStart {
			children[g]++
		}
	}
	t.Logf("%d partition keys read back in acknowledgement order across the splits; child shards the readers moved on to, by gateway: %v", len(last), children)
}

// logScaling logs the gateways' lines about the lease and the scaler, which
// tell where the time to the first split after a fault went.
func logScaling(t *testing.T, gws []*server) {
	t.Helper()
	for i, g := range gws {
		for line := range strings.SplitSeq(g.log.String(), "\n") {
			if strings.Contains(line, "scaling") || strings.Contains(line, "leader election") {
				t.Logf("gateway %d: %s", i, line)
			}
		}
	}
}

// leaseHolder returns the index of the gateway holding the leader's lease
// (the metadata key cluster/leader), found by the id the gateway logged
// when it took the lease.
func leaseHolder(t *testing.T, c *natsCluster, gws []*server) int {
	t.Helper()
	nc, err := nats.Connect(c.urls())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := njs.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		owner, err := leaseOwner(ctx, js)
		if err == nil {
			for g, s := range gws {
				if strings.Contains(s.log.String(), owner) {
					return g
				}
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("no gateway holds the leader's lease (owner %q, %v)", owner, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leaseOwner reads the owner's id from the lease key. The metadata bucket
// stores cluster/leader as the subject token path cluster.leader, behind
// the key's 8-byte version (docs/CLUSTER.md, "How streams are stored").
func leaseOwner(ctx context.Context, js njs.JetStream) (string, error) {
	kv, err := js.KeyValue(ctx, "RUNNEL_META")
	if err != nil {
		return "", err
	}
	ent, err := kv.Get(ctx, "cluster.leader")
	if err != nil {
		return "", err
	}
	if len(ent.Value()) < 8 {
		return "", fmt.Errorf("lease value of %d bytes", len(ent.Value()))
	}
	var lease struct{ Owner string }
	if err := json.Unmarshal(ent.Value()[8:], &lease); err != nil {
		return "", err
	}
	if lease.Owner == "" {
		return "", fmt.Errorf("lease without an owner")
	}
	return lease.Owner, nil
}

// TestClusterOnDemandNodeLoss kills with SIGKILL the node leading the
// metadata bucket's stream and requires the ON_DEMAND stream to split
// while the node is down.
//
// That node, rather than the leader of one shard's stream, is the harder
// loss for scaling: every step of the scaler goes through the metadata
// bucket (the lease's renewal, the write counts each gateway publishes, the
// reading of the streams' metadata, the compare-and-set of a reshard),
// while a shard's leader holds up the writes of that shard only. The test
// logs how many JetStream streams the node led in all: when they include a
// shard's, the writers also wait out the request timeout.
func TestClusterOnDemandNodeLoss(t *testing.T) {
	c, gws, l := onDemandCluster(t)
	l.waitAcks(500, 60*time.Second)
	victim := c.streamLeader("KV_RUNNEL_META")
	leads := c.leads(victim)
	before, err := l.openShards()
	if err != nil {
		t.Fatal(err)
	}
	if before >= onDemandMax {
		t.Fatalf("%d open shards before the fault: the slow writers split the stream", before)
	}
	c.kill(c.node(victim))
	killed := time.Now()
	l.pause.Store(0)
	t.Logf("SIGKILL %s, the leader of the metadata bucket's stream (and of %d JetStream streams in all), at %d open shards; writers at full speed", victim, leads, before)
	grown := l.waitGrowth(before, 40*time.Second)
	t.Logf("%d open shards %s after the node's loss, while it is down", grown, time.Since(killed).Round(time.Millisecond))
	l.waitAcks(2000, 60*time.Second)
	c.start(c.node(victim))
	c.waitHealthy(c.node(victim), 60*time.Second)
	l.waitAcks(1000, 60*time.Second)
	l.waitFollowed(30 * time.Second)
	final, _ := l.openShards()
	sdk := gws[0].client()
	gap := l.finish(sdk)
	l.checkLineage(sdk)
	logScaling(t, gws)
	t.Logf("open shards: %d at the kill, %d after it, %d at the end", before, grown, final)
	checkGap(t, gap, 10*time.Second, 30*time.Second)
}

// TestClusterOnDemandLeaderGatewayLoss kills with SIGKILL the gateway that
// holds the leader's lease, so that the other gateway must take the lease
// over (once it expires) and split the stream from both gateways' counts.
func TestClusterOnDemandLeaderGatewayLoss(t *testing.T) {
	c, gws, l := onDemandCluster(t)
	l.waitAcks(500, 60*time.Second)
	g := leaseHolder(t, c, gws)
	other := gws[1-g]
	before, err := l.openShards()
	if err != nil {
		t.Fatal(err)
	}
	if before >= onDemandMax {
		t.Fatalf("%d open shards before the fault: the slow writers split the stream", before)
	}
	logged := len(other.log.String())
	gws[g].kill()
	killed := time.Now()
	l.pause.Store(0)
	t.Logf("SIGKILL gateway %d, the holder of the leader's lease, at %d open shards; writers at full speed", g, before)
	grown := l.waitGrowth(before, 40*time.Second)
	t.Logf("%d open shards %s after the lease holder's loss", grown, time.Since(killed).Round(time.Millisecond))
	// The split is logged once it is applied, a moment after the shard
	// count shows it.
	for _, want := range []string{"this gateway now does the cluster's scaling", "on-demand scaling: split hot shards"} {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(other.log.String()[logged:], want) {
			if time.Now().After(deadline) {
				t.Errorf("gateway %d did not log %q after the other's loss", 1-g, want)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// A new gateway in the dead one's place, as an operator would start.
	l.replaceGateway(g, faultGateway(t, c, onDemandFlags...))
	l.waitAcks(1000, 60*time.Second)
	l.waitFollowed(30 * time.Second)
	final, _ := l.openShards()
	sdk := other.client()
	gap := l.finish(sdk)
	l.checkLineage(sdk)
	logScaling(t, gws)
	t.Logf("open shards: %d at the kill, %d after it, %d at the end", before, grown, final)
	checkGap(t, gap, time.Second, 10*time.Second)
}
