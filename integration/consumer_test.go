package integration

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/consumer"
)

// killableStore is a lease store that stops answering at kill: the worker
// behind it can neither release nor checkpoint any more, like a process
// that died.
type killableStore struct {
	consumer.LeaseStore
	dead atomic.Bool
}

var errKilled = errors.New("worker killed")

func (s *killableStore) Prepare(ctx context.Context, p consumer.Position) (consumer.Position, error) {
	if s.dead.Load() {
		return consumer.Position{}, errKilled
	}
	return s.LeaseStore.Prepare(ctx, p)
}

func (s *killableStore) List(ctx context.Context) ([]consumer.Lease, error) {
	if s.dead.Load() {
		return nil, errKilled
	}
	return s.LeaseStore.List(ctx)
}

func (s *killableStore) Take(ctx context.Context, key, owner string, counter uint64) (consumer.Lease, error) {
	if s.dead.Load() {
		return consumer.Lease{}, errKilled
	}
	return s.LeaseStore.Take(ctx, key, owner, counter)
}

func (s *killableStore) Renew(ctx context.Context, owner string, ls []consumer.Lease) ([]consumer.Lease, []consumer.Lease, error) {
	if s.dead.Load() {
		return nil, nil, errKilled
	}
	return s.LeaseStore.Renew(ctx, owner, ls)
}

func (s *killableStore) Release(ctx context.Context, key, owner string, counter uint64) (consumer.Lease, error) {
	if s.dead.Load() {
		return consumer.Lease{}, errKilled
	}
	return s.LeaseStore.Release(ctx, key, owner, counter)
}

func (s *killableStore) Checkpoint(ctx context.Context, key, owner string, counter uint64, seq string, sub uint64) (consumer.Lease, error) {
	if s.dead.Load() {
		return consumer.Lease{}, errKilled
	}
	return s.LeaseStore.Checkpoint(ctx, key, owner, counter, seq, sub)
}

// delivery is one record handed to a processor.
type delivery struct {
	worker, shard, seq string
	key                string
	n                  int
	// zombie marks a batch whose checkpoint was refused: its worker had
	// lost the lease while processing it.
	zombie bool
}

// ledger is what the workers' processors saw, in the order they saw it.
type ledger struct {
	t  *testing.T
	mu sync.Mutex
	// log holds every delivery in order.
	log []delivery
	// accepted is the highest checkpoint accepted per shard.
	accepted map[string]string
	// violations are deliveries at or before the checkpoint their session
	// started from, and sessions that started before a checkpoint accepted
	// earlier: either would be a checkpoint lost or ignored.
	violations []string
}

// processor is one worker's processor writing to a ledger.
type processor struct {
	l      *ledger
	worker string
	mu     sync.Mutex
	start  map[string]string // shard -> checkpoint its session started at
	// batches counts batches per shard: the processor checkpoints every
	// second one, so that a kill leaves records past the checkpoint.
	batches map[string]int
}

func (p *processor) Initialize(ctx context.Context, in consumer.InitInput) error {
	p.mu.Lock()
	p.start[in.ShardID] = in.Checkpoint
	p.mu.Unlock()
	// A session never starts before a checkpoint accepted earlier.
	l := p.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if acc := l.accepted[in.ShardID]; acc != "" && (strings.Contains(in.Checkpoint, "_") || seqLess(in.Checkpoint, acc)) {
		l.violations = append(l.violations, fmt.Sprintf("%s starts %s at %s, before the accepted checkpoint %s", p.worker, in.ShardID, in.Checkpoint, acc))
	}
	return nil
}

func (p *processor) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	p.mu.Lock()
	from := p.start[in.ShardID]
	p.batches[in.ShardID]++
	skip := p.batches[in.ShardID]%2 == 1
	p.mu.Unlock()
	l := p.l
	l.mu.Lock()
	first := len(l.log)
	for _, r := range in.Records {
		key, nStr, _ := strings.Cut(string(r.Data), "|")
		n, _ := strconv.Atoi(nStr)
		if from != "" && !strings.Contains(from, "_") && !seqLess(from, r.SequenceNumber) {
			l.violations = append(l.violations, fmt.Sprintf("%s got %s on %s, at or before its start %s", p.worker, r.SequenceNumber, in.ShardID, from))
		}
		l.log = append(l.log, delivery{worker: p.worker, shard: in.ShardID, seq: r.SequenceNumber, key: key, n: n})
	}
	l.mu.Unlock()
	if skip {
		return nil
	}
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		if errors.Is(err, consumer.ErrLeaseLost) {
			l.mu.Lock()
			for i := first; i < first+len(in.Records); i++ {
				l.log[i].zombie = true
			}
			l.mu.Unlock()
		}
		return err
	}
	l.mu.Lock()
	if seq, acc := in.Records[len(in.Records)-1].SequenceNumber, l.accepted[in.ShardID]; acc == "" || seqLess(acc, seq) {
		l.accepted[in.ShardID] = seq
	}
	l.mu.Unlock()
	return nil
}

func (p *processor) ShardEnded(ctx context.Context, cp *consumer.Checkpointer) error { return nil }

func (p *processor) LeaseLost(ctx context.Context, shardID string) error { return nil }

// TestConsumerWorkers runs the workers scenario with polling retrieval.
func TestConsumerWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of resharding under load")
	}
	workersScenario(t)
}

// TestConsumerWorkersFanOut runs the workers scenario with enhanced fan-out:
// every worker subscribes as the stream consumer "audit-efo" over the SDK's
// default HTTP client (HTTP/1.1 on an http:// endpoint).
func TestConsumerWorkersFanOut(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of resharding under load")
	}
	s := workersScenario(t, consumer.FanOut("audit-efo"))
	// The workers registered one consumer between them.
	c := s.client()
	out, err := c.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: aws.String(streamARNOf(t, c, "consumed"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Consumers) != 1 || aws.ToString(out.Consumers[0].ConsumerName) != "audit-efo" || out.Consumers[0].ConsumerStatus != types.ConsumerStatusActive {
		t.Fatalf("stream consumers after the fan-out workers: %+v", out.Consumers)
	}
}

// workersScenario runs three workers of one application, with opts, on an
// 8-shard stream while producers write keyed records and the stream is
// split, merged and scaled; one worker is killed (no release, no further
// store call) and one stopped gracefully. Every acknowledged record is
// processed, each key's records in the order written (parents before
// children), and records are delivered again only past the last accepted
// checkpoint. The processor checkpoints every second batch, so a kill
// leaves work to redo. It returns the server, which runs until the test
// ends.
func workersScenario(t *testing.T, opts ...consumer.Option) *server {
	return workersScenarioOn(t, func(t *testing.T, kc *kinesis.Client, stream, app string) consumer.LeaseStore {
		s, err := consumer.NewRunnelStore(kc.Options(), stream, app)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}, opts...)
}

// workersScenarioOn runs the workers scenario with the lease stores newStore
// returns, one per worker.
func workersScenarioOn(t *testing.T, newStore func(t *testing.T, kc *kinesis.Client, stream, app string) consumer.LeaseStore, opts ...consumer.Option) *server {
	ctx := context.Background()
	s := startServer(t, filepath.Join(t.TempDir(), "data"))
	admin := s.client()
	const stream = "consumed"
	if _, err := admin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(8)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, admin, stream)

	const lease = 2 * time.Second
	l := &ledger{t: t, accepted: map[string]string{}}
	type worker struct {
		id    string
		c     *consumer.Consumer
		store *killableStore
		stop  context.CancelFunc
		done  chan struct{}
	}
	var workers []*worker
	for i := range 3 {
		id := fmt.Sprint("worker-", i)
		kc := s.client()
		base := newStore(t, kc, stream, "audit")
		w := &worker{id: id, store: &killableStore{LeaseStore: base}, done: make(chan struct{})}
		var err error
		w.c, err = consumer.New(kc, stream, "audit", &processor{l: l, worker: id, start: map[string]string{}, batches: map[string]int{}},
			append([]consumer.Option{consumer.WorkerID(id), consumer.LeaseDuration(lease), consumer.IdleTime(100 * time.Millisecond),
				consumer.Leases(w.store), consumer.MaxRecords(200)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		var wctx context.Context
		wctx, w.stop = context.WithCancel(ctx)
		go func() {
			defer close(w.done)
			if err := w.c.Run(wctx); err != nil {
				t.Errorf("%s: %v", id, err)
			}
		}()
		workers = append(workers, w)
	}
	defer func() {
		for _, w := range workers {
			w.stop()
			<-w.done
		}
	}()

	// Producers: each key's records are written one at a time, in order.
	const keys = 24
	var produced sync.Map // "key|n" -> true, once acknowledged
	var nProduced atomic.Int64
	prodCtx, stopProducers := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	for g := range 4 {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			pc := s.client()
			next := map[string]int{}
			for prodCtx.Err() == nil {
				for k := g; k < keys; k += 4 {
					key := fmt.Sprint("key-", k)
					data := fmt.Sprint(key, "|", next[key])
					_, err := pc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(key), Data: []byte(data)})
					if err != nil {
						// A failed put is retried with the same number, so
						// each key's numbers stay dense and ordered.
						continue
					}
					produced.Store(data, true)
					nProduced.Add(1)
					next[key]++
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}

	reshard := func(what string, f func() error) {
		t.Helper()
		if err := f(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		waitActive(t, admin, stream)
		t.Logf("%s done", what)
	}
	time.Sleep(2 * time.Second)
	shards := listAll(t, admin, stream, nil)
	reshard("split shard 0", func() error {
		sh := shards[0].HashKeyRange
		mid := new(big.Int).Add(bigKey(*sh.StartingHashKey), bigKey(*sh.EndingHashKey))
		mid.Rsh(mid, 1)
		_, err := admin.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: shards[0].ShardId, NewStartingHashKey: aws.String(mid.String())})
		return err
	})
	time.Sleep(time.Second)
	reshard("merge shards 2 and 3", func() error {
		_, err := admin.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(stream), ShardToMerge: shards[2].ShardId, AdjacentShardToMerge: shards[3].ShardId})
		return err
	})
	time.Sleep(time.Second)

	// Kill worker 0: its context is cut and its store answers no more, so
	// it can neither checkpoint nor release.
	killed := workers[0]
	killedShards := killed.c.Shards()
	killed.store.dead.Store(true)
	killed.stop()
	<-killed.done
	killedAt := time.Now()
	t.Logf("killed %s holding %v", killed.id, killedShards)

	reshard("scale to 12 shards", func() error {
		_, err := admin.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(stream), TargetShardCount: aws.Int32(12), ScalingType: types.ScalingTypeUniformScaling})
		return err
	})

	// The survivors take over the killed worker's shards: each lease is
	// held by another worker, or was already processed to its end.
	table := newStore(t, admin, stream, "audit")
	takenOver := func(shards []string, from string, since time.Time, within time.Duration) time.Duration {
		t.Helper()
		for {
			ls, err := table.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			byKey := map[string]consumer.Lease{}
			for _, l := range ls {
				byKey[l.Key] = l
			}
			all := true
			for _, id := range shards {
				l := byKey[id]
				all = all && (l.Checkpoint == consumer.ShardEnd || (l.Owner != "" && l.Owner != from))
			}
			if all {
				return time.Since(since)
			}
			if time.Since(since) > within {
				t.Fatalf("shards %v of %s not taken over within %v: %+v", shards, from, within, ls)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	d := takenOver(killedShards, killed.id, killedAt, 3*lease)
	t.Logf("killed worker's shards taken over %v after the kill (lease %v, renewal every %v)", d.Round(time.Millisecond), lease, lease/3)

	// Stop worker 1 gracefully: its leases go to worker 2 at once.
	graceful := workers[1]
	gracefulShards := graceful.c.Shards()
	graceful.stop()
	<-graceful.done
	d = takenOver(gracefulShards, graceful.id, time.Now(), lease)
	t.Logf("gracefully stopped worker's %d shards taken over %v after Run returned", len(gracefulShards), d.Round(time.Millisecond))
	time.Sleep(time.Second)
	stopProducers()
	pwg.Wait()
	total := int(nProduced.Load())
	t.Logf("produced %d records", total)

	// Worker 2 drains everything.
	deadline := time.Now().Add(30 * time.Second)
	for {
		seen := map[string]bool{}
		l.mu.Lock()
		for _, d := range l.log {
			seen[fmt.Sprint(d.key, "|", d.n)] = true
		}
		l.mu.Unlock()
		missing := 0
		produced.Range(func(k, _ any) bool {
			if !seen[k.(string)] {
				missing++
			}
			return true
		})
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged records never processed", missing, total)
		}
		time.Sleep(100 * time.Millisecond)
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.violations {
		t.Error(v)
	}
	// Each key in the order written: first deliveries ascend with no gap.
	next := map[string]int{}
	seen := map[string]delivery{}
	dupBy := map[string]int{}
	for _, d := range l.log {
		id := fmt.Sprint(d.key, "|", d.n)
		if first, ok := seen[id]; ok {
			switch {
			case first.zombie:
				dupBy["first delivered in a batch whose checkpoint was refused"]++
			case d.zombie:
				dupBy["delivered again by a worker losing the lease"]++
			case first.worker == killed.id:
				dupBy["first delivered by the killed worker, past its checkpoint"]++
			default:
				dupBy["past a checkpoint, the lease moved by balancing or a graceful stop"]++
			}
			continue
		}
		seen[id] = d
		if d.n != next[d.key] {
			t.Errorf("%s: first delivery of %d after %d (shard %s, %s)", d.key, d.n, next[d.key]-1, d.shard, d.worker)
		}
		next[d.key] = d.n + 1
	}
	var conflicts, lost, stolen uint64
	for _, w := range workers {
		st := w.c.Stats()
		conflicts += st.CheckpointConflicts
		lost += st.Lost
		stolen += st.Stolen
		t.Logf("%s: %+v", w.id, st)
	}
	var dupWorkers []string
	for cause, n := range dupBy {
		dupWorkers = append(dupWorkers, fmt.Sprintf("%s: %d", cause, n))
	}
	sort.Strings(dupWorkers)
	t.Logf("%d deliveries of %d records; duplicates %v; %d checkpoints refused with LeaseConflictException, %d leases lost, %d stolen",
		len(l.log), len(seen), dupWorkers, conflicts, lost, stolen)
	return s
}

// TestConsumeCommandsShareShards runs two `runnel consume` processes of one
// application: they split the shards between them, print every record, and
// exit cleanly on SIGTERM.
func TestConsumeCommandsShareShards(t *testing.T) {
	ctx := context.Background()
	s := sharedServer(t)
	c := s.client()
	stream := newStream(t, c, 4)
	put := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(fmt.Sprint("record-", i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, 40)
	type proc struct {
		cmd *exec.Cmd
		out *syncBuffer
	}
	var procs []proc
	for i := range 2 {
		cmd := exec.Command(runnelBin, "consume", "--stream", stream, "--app", "cli", "--endpoint", s.endpoint(), "--worker-id", fmt.Sprint("cli-", i))
		cmd.Env = append(os.Environ(), "RUNNEL_LEASE_DURATION=1s")
		p := proc{cmd: cmd, out: &syncBuffer{}}
		errb := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = p.out, errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
			if t.Failed() {
				t.Logf("cli-%d stderr:\n%s", i, errb.String())
			}
		})
		procs = append(procs, p)
	}
	table, err := consumer.NewRunnelStore(c.Options(), stream, "cli")
	if err != nil {
		t.Fatal(err)
	}
	wait := func(n int) {
		deadline := time.Now().Add(15 * time.Second)
		for {
			seen := map[string]bool{}
			for _, p := range procs {
				for _, line := range strings.Split(p.out.String(), "\n") {
					if f := strings.Fields(line); len(f) == 4 {
						seen[f[3]] = true
					}
				}
			}
			held := map[string]int{}
			if ls, err := table.List(ctx); err == nil {
				for _, l := range ls {
					held[l.Owner]++
				}
			}
			if len(seen) == n && held["cli-0"] == 2 && held["cli-1"] == 2 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 15s: %d of %d records printed, leases held %v", len(seen), n, held)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait(40)
	// Once the shards are shared, new records go to both.
	before := []int{len(procs[0].out.String()), len(procs[1].out.String())}
	put(40, 80)
	wait(80)
	for i, p := range procs {
		if !strings.Contains(p.out.String()[before[i]:], `"record-`) {
			t.Errorf("cli-%d printed none of the records written once the shards were shared", i)
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("cli-%d after SIGTERM: %v", i, err)
		}
	}
	// Both released their leases on the way out.
	ls, err := table.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Owner != "" {
			t.Errorf("lease %s still held by %s after both workers stopped", l.Key, l.Owner)
		}
	}
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// countingProcessor counts each record's deliveries and checkpoints after
// every batch.
type countingProcessor struct {
	mu   sync.Mutex
	seen map[string]int
	// checkpointed counts the records of batches whose checkpoint was
	// accepted.
	checkpointed int
}

func (p *countingProcessor) Initialize(ctx context.Context, in consumer.InitInput) error { return nil }

func (p *countingProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	p.mu.Lock()
	for _, r := range in.Records {
		p.seen[string(r.Data)]++
	}
	p.mu.Unlock()
	if err := in.Checkpointer.Checkpoint(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	p.checkpointed += len(in.Records)
	p.mu.Unlock()
	return nil
}

func (p *countingProcessor) ShardEnded(ctx context.Context, cp *consumer.Checkpointer) error {
	return nil
}

func (p *countingProcessor) LeaseLost(ctx context.Context, shardID string) error { return nil }

// done returns how many records were checkpointed.
func (p *countingProcessor) done() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.checkpointed
}

// TestConsumerFanOutSurvivesRestart: a fan-out worker whose subscriptions
// are cut by a kill -9 of the server (after its checkpoints were accepted)
// subscribes again once the server is back, after the last continuation,
// and processes the records written since, each once.
func TestConsumerFanOutSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s := startServer(t, dir, "--transition-delay", "0s")
	c := s.client()
	stream := newStream(t, c, 2)
	put := func(c *kinesis.Client, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(fmt.Sprint("r", i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	wait := func(p *countingProcessor, n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for p.done() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d records processed and checkpointed within 30s", p.done(), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	put(c, 0, 40)
	p := &countingProcessor{seen: map[string]int{}}
	w, err := consumer.New(s.client(), stream, "restart", p, consumer.FanOut("restart-efo"), consumer.LeaseDuration(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	wait(p, 40)

	s.kill()
	s = startServerAt(t, s.addr, dir, "--transition-delay", "0s")
	put(s.client(), 40, 80)
	wait(p, 80)
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range 80 {
		if n := p.seen[fmt.Sprint("r", i)]; n != 1 {
			t.Errorf("r%d processed %d times", i, n)
		}
	}
}
