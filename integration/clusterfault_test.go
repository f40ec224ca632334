package integration

import (
	"context"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// The fault tests run a JetStream cluster of three nats-server processes
// behind two `runnel serve --engine jetstream --nats ...` gateways, with
// writers and readers on both gateways through the AWS SDK for Go v2, and
// break something under load: the node that leads a shard's stream, a
// follower, a gateway, or each node in turn. Each run checks that every
// acknowledged record is stored once at its sequence number, in order per
// shard, that what readers saw during the fault is what is stored, and
// measures the longest time without any acknowledgement.

// faultGateways starts two gateways on the cluster, with extra flags.
func faultGateways(t *testing.T, c *natsCluster, extra ...string) []*server {
	t.Helper()
	var gws []*server
	for range 2 {
		gws = append(gws, faultGateway(t, c, extra...))
		// The first gateway creates the metadata buckets; a gateway started
		// before they have leaders fails to start.
		c.waitLeaders(30 * time.Second)
	}
	return gws
}

// faultGateway starts one gateway on the cluster, with extra flags.
func faultGateway(t *testing.T, c *natsCluster, extra ...string) *server {
	t.Helper()
	args := append([]string{"--engine", "jetstream", "--nats", c.urls(), "--transition-delay", "0s"}, extra...)
	return startServer(t, t.TempDir(), args...)
}

// faultLoad is the writers and readers of one run.
type faultLoad struct {
	t      *testing.T
	stream string

	gwMu sync.Mutex
	gws  []*server
	down []time.Time // gateway i is avoided until down[i]

	// pause is how long each writer waits between two calls, in
	// nanoseconds: 0 (the default) writes as fast as the gateways answer.
	pause atomic.Int64

	mu       sync.Mutex
	acked    []ackedRecord
	ackTimes []time.Time
	writer   map[string]string         // acked data -> its writer and key, for order checks
	failed   int                       // PutRecords calls that failed after the SDK's retries
	refused  map[string]int            // records refused in successful calls, by ErrorCode
	seen     map[string][]types.Record // shard@gateway -> records readers saw, in order
	follow   map[string]bool           // shard@gateway -> a reader was started
	ended    map[string]bool           // shard@gateway -> its reader reached the closed shard's end

	stop chan struct{}
	wg   sync.WaitGroup
}

const (
	faultWriters = 4
	faultBatch   = 25
)

// startFaultLoad starts the writers, each sending PutRecords calls
// alternately to the gateways and avoiding for a second a gateway whose call
// failed, and one reader per shard on each gateway. A reader that reaches
// the end of a closed shard starts readers of its children on its gateway,
// each once all of the child's parents were read to their ends there.
func startFaultLoad(t *testing.T, gws []*server, stream string, shards int) *faultLoad {
	return startPacedLoad(t, gws, stream, shards, 0)
}

// startPacedLoad is startFaultLoad with writers pausing between calls
// until pause is changed.
func startPacedLoad(t *testing.T, gws []*server, stream string, shards int, pause time.Duration) *faultLoad {
	l := &faultLoad{t: t, stream: stream, gws: gws, down: make([]time.Time, len(gws)),
		writer: map[string]string{}, refused: map[string]int{}, seen: map[string][]types.Record{},
		follow: map[string]bool{}, ended: map[string]bool{}, stop: make(chan struct{})}
	l.pause.Store(int64(pause))
	for w := range faultWriters {
		l.wg.Add(1)
		go l.write(w)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range shards {
		for g := range gws {
			l.followLocked(fmt.Sprintf("shardId-%012d", i), g)
		}
	}
	return l
}

// followLocked starts a reader of shard on gateway g unless one was started.
func (l *faultLoad) followLocked(shard string, g int) {
	key := fmt.Sprintf("%s@%d", shard, g)
	if l.follow[key] || l.stopped() {
		return
	}
	l.follow[key] = true
	l.wg.Add(1)
	go l.read(shard, g)
}

// gateway returns the gateway a call should go to: the preferred one unless
// it failed a moment ago.
func (l *faultLoad) gateway(prefer int) (int, *server) {
	l.gwMu.Lock()
	defer l.gwMu.Unlock()
	now := time.Now()
	for k := range l.gws {
		g := (prefer + k) % len(l.gws)
		if now.After(l.down[g]) {
			return g, l.gws[g]
		}
	}
	g := prefer % len(l.gws)
	return g, l.gws[g]
}

func (l *faultLoad) avoid(g int) {
	l.gwMu.Lock()
	l.down[g] = time.Now().Add(time.Second)
	l.gwMu.Unlock()
}

// replaceGateway makes calls go to s instead of gateway g from now on.
func (l *faultLoad) replaceGateway(g int, s *server) {
	l.gwMu.Lock()
	l.gws[g] = s
	l.down[g] = time.Time{}
	l.gwMu.Unlock()
}

func (l *faultLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// write sends batches until stopped. Every attempt carries new data, so a
// record stored by a call that failed is never mistaken for an
// acknowledged one.
func (l *faultLoad) write(w int) {
	defer l.wg.Done()
	clients := map[*server]*kinesis.Client{}
	for n := 0; !l.stopped(); n++ {
		g, s := l.gateway(w + n)
		c := clients[s]
		if c == nil {
			c = s.client()
			clients[s] = c
		}
		if p := time.Duration(l.pause.Load()); p > 0 {
			select {
			case <-l.stop:
				return
			case <-time.After(p):
			}
		}
		entries := make([]types.PutRecordsRequestEntry, faultBatch)
		for i := range entries {
			entries[i] = types.PutRecordsRequestEntry{
				PartitionKey: aws.String(fmt.Sprintf("w%d-k%d", w, i%5)),
				Data:         fmt.Appendf(nil, "writer %d call %d record %d", w, n, i),
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(l.stream), Records: entries})
		cancel()
		now := time.Now()
		if err != nil {
			l.avoid(g)
			l.mu.Lock()
			l.failed++
			l.mu.Unlock()
			continue
		}
		l.mu.Lock()
		for i, r := range out.Records {
			if r.ErrorCode != nil {
				l.refused[*r.ErrorCode]++
				continue
			}
			data := string(entries[i].Data)
			l.acked = append(l.acked, ackedRecord{shard: *r.ShardId, seq: *r.SequenceNumber, data: data})
			l.writer[data] = *entries[i].PartitionKey
		}
		if out.FailedRecordCount == nil || *out.FailedRecordCount < int32(len(entries)) {
			l.ackTimes = append(l.ackTimes, now)
		}
		l.mu.Unlock()
	}
}

// read follows one shard through gateway g (moving to the other gateway
// when a call fails) and keeps what it saw.
func (l *faultLoad) read(shard string, g int) {
	defer l.wg.Done()
	ctx := context.Background()
	var (
		iter *string
		last string
	)
	for !l.stopped() {
		g2, s := l.gateway(g)
		c := s.client()
		if iter == nil {
			in := &kinesis.GetShardIteratorInput{StreamName: aws.String(l.stream), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon}
			if last != "" {
				in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAfterSequenceNumber, aws.String(last)
			}
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			out, err := c.GetShardIterator(cctx, in)
			cancel()
			if err != nil {
				l.avoid(g2)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			iter = out.ShardIterator
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		out, err := c.GetRecords(cctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(1000)})
		cancel()
		if err != nil {
			l.avoid(g2)
			iter = nil
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if len(out.Records) > 0 {
			last = *out.Records[len(out.Records)-1].SequenceNumber
			l.mu.Lock()
			key := fmt.Sprintf("%s@%d", shard, g)
			l.seen[key] = append(l.seen[key], out.Records...)
			l.mu.Unlock()
		}
		iter = out.NextShardIterator
		if iter == nil {
			// The shard closed and was read to its end: its children
			// whose parents were all read here are next.
			l.mu.Lock()
			l.ended[fmt.Sprintf("%s@%d", shard, g)] = true
			for _, ch := range out.ChildShards {
				ready := true
				for _, p := range ch.ParentShards {
					ready = ready && l.ended[fmt.Sprintf("%s@%d", p, g)]
				}
				if ready {
					l.followLocked(*ch.ShardId, g)
				}
			}
			l.mu.Unlock()
			return
		}
		if len(out.Records) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// ackCount returns the number of records acknowledged so far.
func (l *faultLoad) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitAcks waits until n more records than now are acknowledged.
func (l *faultLoad) waitAcks(n int, within time.Duration) {
	l.t.Helper()
	want := l.ackCount() + n
	deadline := time.Now().Add(within)
	for l.ackCount() < want {
		if time.Now().After(deadline) {
			l.t.Fatalf("fewer than %d records acknowledged within %s (%d so far)", n, within, l.ackCount())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// finish stops the load, waits for it, reads everything back through the
// first live gateway and checks it. It returns the longest gap between two
// acknowledgements.
func (l *faultLoad) finish(c *kinesis.Client) time.Duration {
	t := l.t
	t.Helper()
	close(l.stop)
	l.wg.Wait()

	slices.SortFunc(l.ackTimes, func(a, b time.Time) int { return a.Compare(b) })
	var gap time.Duration
	var at time.Time
	for i := 1; i < len(l.ackTimes); i++ {
		if d := l.ackTimes[i].Sub(l.ackTimes[i-1]); d > gap {
			gap, at = d, l.ackTimes[i-1]
		}
	}
	stored := readAll(t, c, l.stream)
	total := 0
	bySeq := map[string]map[string]string{}
	pos := map[string]int{} // data -> position in its shard
	copies := map[string]int{}
	for shard, recs := range stored {
		m := map[string]string{}
		var prev *big.Int
		for i, r := range recs {
			seq, ok := new(big.Int).SetString(*r.SequenceNumber, 10)
			if !ok {
				t.Fatalf("bad sequence number %q", *r.SequenceNumber)
			}
			if prev != nil && seq.Cmp(prev) <= 0 {
				t.Fatalf("shard %s: sequence number %s after %s", shard, seq, prev)
			}
			prev = seq
			m[*r.SequenceNumber] = string(r.Data)
			pos[string(r.Data)] = i
			copies[string(r.Data)]++
		}
		bySeq[shard] = m
		total += len(recs)
	}
	lost := 0
	for _, a := range l.acked {
		got, ok := bySeq[a.shard][a.seq]
		switch {
		case !ok:
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged record %s/%s (%q) is missing", a.shard, a.seq, a.data)
			}
		case got != a.data:
			t.Errorf("record %s/%s holds %q, acknowledged with %q", a.shard, a.seq, got, a.data)
		}
	}
	// A call the SDK retried may have been stored by an attempt whose answer
	// was lost as well as by the acknowledged attempt (Kinesis documents
	// such duplicates); an acknowledged record is never stored twice
	// otherwise, and each writer's records with one key keep their order.
	dups := 0
	type place struct {
		shard string
		pos   int
	}
	last := map[string]place{}
	for _, a := range l.acked {
		if copies[a.data] > 1 {
			dups++
		}
		key := l.writer[a.data]
		if p, ok := last[key]; ok && p.shard == a.shard && pos[a.data] <= p.pos {
			t.Errorf("writer key %s: record %q stored before an earlier acknowledged one", key, a.data)
		}
		last[key] = place{a.shard, pos[a.data]}
	}
	// Readers saw a prefix of what is stored: nothing they read vanished
	// or changed, and nothing was skipped. A reader told that its closed
	// shard ended saw all of it.
	for key, recs := range l.seen {
		shard := key[:len("shardId-000000000000")]
		for i, r := range recs {
			if i >= len(stored[shard]) {
				t.Errorf("reader %s: record %d is %s %q, past the %d stored", key, i, *r.SequenceNumber, r.Data, len(stored[shard]))
				break
			}
			if s := stored[shard][i]; *s.SequenceNumber != *r.SequenceNumber || string(s.Data) != string(r.Data) {
				t.Errorf("reader %s: record %d is %s %q, stored as %s %q", key, i, *r.SequenceNumber, r.Data, *s.SequenceNumber, s.Data)
				break
			}
		}
	}
	for key := range l.ended {
		shard := key[:len("shardId-000000000000")]
		if len(l.seen[key]) != len(stored[shard]) {
			t.Errorf("reader %s reached the end of the closed shard after %d of its %d records", key, len(l.seen[key]), len(stored[shard]))
		}
	}
	t.Logf("%d records acknowledged in %d calls (%d calls failed after the SDK's retries, records refused in the others: %v), %d stored, %d lost, %d acknowledged records stored twice by retried calls; longest gap between acknowledgements %s (at %s)",
		len(l.acked), len(l.ackTimes), l.failed, l.refused, total, lost, dups, gap.Round(time.Millisecond), at.Format("15:04:05.000"))
	if len(l.acked) == 0 {
		t.Fatal("no record acknowledged")
	}
	return gap
}

// faultCluster starts three nodes, two gateways and a stream of shards.
func faultCluster(t *testing.T, shards int) (*natsCluster, []*server, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a 3-node nats-server cluster and two gateways")
	}
	c := startNATSCluster(t, 3, false)
	gws := faultGateways(t, c)
	const stream = "faults"
	sdk := gws[0].client()
	if _, err := sdk.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(int32(shards))}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, sdk, stream)
	waitActive(t, gws[1].client(), stream)
	return c, gws, stream
}

// checkGap asserts a measured gap against the target, loosely: the target is
// reported, and only a gap several times longer fails on a loaded machine.
func checkGap(t *testing.T, gap, target, limit time.Duration) {
	t.Helper()
	if gap > target {
		t.Logf("longest gap %s misses the %s target by %s", gap.Round(time.Millisecond), target, (gap - target).Round(time.Millisecond))
	} else {
		t.Logf("longest gap %s meets the %s target", gap.Round(time.Millisecond), target)
	}
	if gap > limit {
		t.Errorf("longest gap between acknowledgements %s, more than %s", gap, limit)
	}
}

// TestClusterKillLeader kills with SIGKILL the node leading the stream of
// shard 0, writes on through the other two, then restarts it.
func TestClusterKillLeader(t *testing.T) { clusterKillNode(t, true) }

// TestClusterKillFollower is TestClusterKillLeader for a node following the
// stream of shard 0.
func TestClusterKillFollower(t *testing.T) { clusterKillNode(t, false) }

func clusterKillNode(t *testing.T, leader bool) {
	c, gws, stream := faultCluster(t, 2)
	l := startFaultLoad(t, gws, stream, 2)
	l.waitAcks(2000, 60*time.Second)
	lead, follow := c.shardPeers(0)
	victim := follow
	if leader {
		victim = lead
	}
	t.Logf("shard 0's stream: leader %s, follower %s; SIGKILL %s", lead, follow, victim)
	c.kill(c.node(victim))
	l.waitAcks(2000, 60*time.Second)
	time.Sleep(3 * time.Second)
	c.start(c.node(victim))
	c.waitHealthy(c.node(victim), 60*time.Second)
	l.waitAcks(1000, 60*time.Second)
	gap := l.finish(gws[0].client())
	checkGap(t, gap, 10*time.Second, 30*time.Second)
}

// TestClusterKillGateway kills one gateway with SIGKILL: clients move to the
// other, then to a new gateway started in its place.
func TestClusterKillGateway(t *testing.T) {
	c, gws, stream := faultCluster(t, 2)
	l := startFaultLoad(t, gws, stream, 2)
	l.waitAcks(2000, 60*time.Second)
	gws[1].kill()
	l.waitAcks(2000, 60*time.Second)
	time.Sleep(2 * time.Second)
	l.replaceGateway(1, faultGateway(t, c))
	l.waitAcks(1000, 60*time.Second)
	gap := l.finish(gws[0].client())
	checkGap(t, gap, time.Second, 10*time.Second)
}

// TestClusterRollingRestart stops each node gracefully (lame duck mode,
// then SIGINT), starts it again and waits until it caught up before the
// next, under load.
func TestClusterRollingRestart(t *testing.T) {
	c, gws, stream := faultCluster(t, 2)
	l := startFaultLoad(t, gws, stream, 2)
	l.waitAcks(2000, 60*time.Second)
	for _, nd := range c.nodes {
		t.Logf("%s: lame duck mode for %s", time.Now().Format("15:04:05.000"), nd.name)
		c.stop(nd)
		t.Logf("%s: %s stopped", time.Now().Format("15:04:05.000"), nd.name)
		l.waitAcks(500, 60*time.Second)
		c.start(nd)
		c.waitHealthy(nd, 60*time.Second)
		c.waitCurrent(60 * time.Second)
		t.Logf("%s: %s back, every stream's replicas current", time.Now().Format("15:04:05.000"), nd.name)
		l.waitAcks(500, 60*time.Second)
	}
	gap := l.finish(gws[0].client())
	// When a gateway lost and regained its NATS connection tells whether a
	// long gap is a wait on a connection that closed.
	for i, g := range gws {
		for line := range strings.SplitSeq(g.log.String(), "\n") {
			if strings.Contains(line, "NATS") {
				t.Logf("gateway %d: %s", i, line)
			}
		}
	}
	checkGap(t, gap, time.Second, 8*time.Second)
}

// TestClusterSplitDuringNodeLoss kills a node, doubles the shard count of
// the stream under load while the node is away, and checks the data of
// parents and children once it is back.
func TestClusterSplitDuringNodeLoss(t *testing.T) {
	c, gws, stream := faultCluster(t, 2)
	l := startFaultLoad(t, gws, stream, 2)
	l.waitAcks(2000, 60*time.Second)
	lead, _ := c.shardPeers(1)
	c.kill(c.node(lead))
	t.Logf("SIGKILL %s, the leader of shard 1's stream; UpdateShardCount 2 -> 4", lead)
	sdk := gws[0].client()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		_, err := sdk.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(stream), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("UpdateShardCount during a node loss: %v", err)
		}
		t.Logf("UpdateShardCount: %v; again", err)
		time.Sleep(500 * time.Millisecond)
	}
	waitActive(t, sdk, stream)
	open := 0
	for _, sh := range listAll(t, sdk, stream, nil) {
		if sh.SequenceNumberRange.EndingSequenceNumber == nil {
			open++
		}
	}
	if open != 4 {
		t.Fatalf("%d open shards after UpdateShardCount to 4", open)
	}
	l.waitAcks(2000, 60*time.Second)
	c.start(c.node(lead))
	c.waitHealthy(c.node(lead), 60*time.Second)
	l.waitAcks(1000, 60*time.Second)
	gap := l.finish(sdk)
	checkGap(t, gap, 10*time.Second, 30*time.Second)
	// Records acknowledged on the children hash to the children.
	children := 0
	for _, a := range l.acked {
		if a.shard >= "shardId-000000000002" {
			children++
		}
	}
	if children == 0 {
		t.Error("no record acknowledged on a child shard after the split")
	}
}
