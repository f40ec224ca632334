package thirdparty

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/checkpoint"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/config"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/interfaces"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/partition"
	"github.com/vmware/vmware-go-kcl-v2/clientlibrary/worker"
	"github.com/vmware/vmware-go-kcl-v2/logger"
)

// vmware-go-kcl-v2 v1.0.0, a Go port of the KCL: one worker reads every
// shard, polling with GetRecords or through enhanced fan-out, keeps its
// leases and checkpoints in a small in-memory checkpointer (the library's
// own needs DynamoDB), and must end each parent shard (its processor is
// shut down with TERMINATE and checkpoints SHARD_END) before it reads the
// children.
//
// The test waits until the worker has checkpointed in both parent shards
// before it reshards: the library's waitOnParentShard lets a child start
// at once when its parent has no checkpoint yet (it treats "not found" as
// "parent gone"), so a worker that picks up a child before its parent would
// read them out of order. That is the library's behaviour, not runnel's.

func TestVMwareKCLPolling(t *testing.T) { testVMwareKCL(t, "polling") }

// TestVMwareKCLFanOutHTTP1 reads with enhanced fan-out through the
// library's own SDK client, which speaks HTTP/1.1 on an http:// endpoint.
func TestVMwareKCLFanOutHTTP1(t *testing.T) { testVMwareKCL(t, "fanout-http1") }

// TestVMwareKCLFanOutH2C reads with enhanced fan-out through an SDK client
// that speaks HTTP/2 without TLS, given to the worker with WithKinesis.
func TestVMwareKCLFanOutH2C(t *testing.T) { testVMwareKCL(t, "fanout-h2c") }

func testVMwareKCL(t *testing.T, mode string) {
	s := newScenario(t)
	const workerID = "worker-1"
	klog := &kclLogger{}
	cfg := config.NewKinesisClientLibConfigWithCredential("app-"+mode, s.stream, region, workerID, creds).
		WithKinesisEndpoint(s.srv.endpoint()).
		WithInitialPositionInStream(config.TRIM_HORIZON).
		WithShardSyncIntervalMillis(500).
		WithIdleTimeBetweenReadsInMillis(100).
		WithLogger(klog)
	cfg.ParentShardPollIntervalMillis = 200
	if mode != "polling" {
		cfg.WithEnhancedFanOutConsumerName("efo-" + mode)
	}
	cp := newMemCheckpointer(workerID, cfg.FailoverTimeMillis)
	procs := &processors{ledger: s.ledger}
	w := worker.NewWorker(procs, cfg).WithCheckpointer(cp)
	if mode == "fanout-h2c" {
		w = w.WithKinesis(s.srv.h2cClient())
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			shutdown(t, w)
		}
		if t.Failed() {
			t.Logf("library log (last 8 KiB):\n%s", tail(klog.String(), 8<<10))
		}
	}()

	parents := []string{"shardId-000000000000", "shardId-000000000001"}
	s.run(func() bool { return cp.checkpoint(parents[0]) != "" && cp.checkpoint(parents[1]) != "" }, 100*time.Second)
	// Every parent must end as the library ends a closed shard.
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range parents {
		for cp.checkpoint(p) != checkpoint.ShardEnd {
			if time.Now().After(deadline) {
				t.Fatalf("parent %s never reached SHARD_END (checkpoint %q); %s", p, cp.checkpoint(p), s.ledger.summary())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	shutdown(t, w)
	stopped = true
	s.verify()
	if got := procs.terminated(); len(got) != len(parents) {
		t.Errorf("processors shut down with TERMINATE: %v, want the %d parents", got, len(parents))
	}
	// The children's checkpoints are their last records.
	for i := startCount; i < startCount+endCount; i++ {
		id := fmt.Sprintf("shardId-%012d", i)
		if got, want := cp.checkpoint(id), s.ledger.lastSeq(id); got != want {
			t.Errorf("checkpoint of %s is %q, its last record %q", id, got, want)
		}
	}
	// The server logs a request when it ends; stopping it ends the
	// subscriptions still open, so every call is counted.
	s.srv.stop(t)
	if mode != "polling" {
		// One subscription per shard, plus the resubscriptions a broken
		// connection or a lease change causes; a consumer stuck at the end
		// of a shard resubscribes thousands of times.
		if n := s.srv.requests("SubscribeToShard"); n < startCount+endCount || n > 60 {
			t.Errorf("%d SubscribeToShard calls for %d shards", n, startCount+endCount)
		}
	}
	t.Logf("%s; SubscribeToShard %d, GetRecords %d; library errors logged: %d %q",
		s.ledger.summary(), s.srv.requests("SubscribeToShard"), s.srv.requests("GetRecords"), klog.errors(), klog.firstErrors(3))
}

// shutdown stops the worker, which waits for its shard consumers.
func shutdown(t *testing.T, w *worker.Worker) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		w.Shutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Error("worker did not shut down within 30s")
	}
}

// processors is the record processor factory: each processor hands its
// records to the ledger and checkpoints after every batch.
type processors struct {
	ledger *ledger
	mu     sync.Mutex
	ended  []string // shards whose processor was shut down with TERMINATE
}

func (f *processors) CreateProcessor() interfaces.IRecordProcessor { return &processor{f: f} }

func (f *processors) terminated() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.ended...)
}

type processor struct {
	f     *processors
	shard string
}

func (p *processor) Initialize(in *interfaces.InitializationInput) { p.shard = in.ShardId }

func (p *processor) ProcessRecords(in *interfaces.ProcessRecordsInput) {
	if len(in.Records) == 0 {
		return
	}
	p.f.ledger.deliver(p.shard, in.Records)
	_ = in.Checkpointer.Checkpoint(in.Records[len(in.Records)-1].SequenceNumber)
}

func (p *processor) Shutdown(in *interfaces.ShutdownInput) {
	if in.ShutdownReason != interfaces.TERMINATE {
		return
	}
	// The end of a closed shard: a nil checkpoint records SHARD_END, which
	// lets the children start.
	_ = in.Checkpointer.Checkpoint(nil)
	p.f.mu.Lock()
	p.f.ended = append(p.f.ended, p.shard)
	p.f.mu.Unlock()
}

// memCheckpointer keeps the library's lease table in memory with the
// semantics of its DynamoDB checkpointer: a lease is taken when it has no
// owner, is ours, or has expired; a checkpoint is stored with the lease.
type memCheckpointer struct {
	workerID string
	lease    time.Duration
	mu       sync.Mutex
	rows     map[string]*leaseRow
}

type leaseRow struct {
	checkpoint, owner, parent, claim string
	timeout                          time.Time
}

var _ checkpoint.Checkpointer = (*memCheckpointer)(nil)

func newMemCheckpointer(workerID string, leaseMillis int) *memCheckpointer {
	return &memCheckpointer{workerID: workerID, lease: time.Duration(leaseMillis) * time.Millisecond, rows: map[string]*leaseRow{}}
}

func (c *memCheckpointer) Init() error { return nil }

func (c *memCheckpointer) GetLease(sh *partition.ShardStatus, owner string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rows[sh.ID]
	if r == nil {
		r = &leaseRow{}
		c.rows[sh.ID] = r
	}
	if r.owner != "" && r.owner != owner && time.Now().Before(r.timeout) {
		return checkpoint.ErrLeaseNotAcquired{}
	}
	r.owner, r.timeout, r.parent = owner, time.Now().Add(c.lease), sh.ParentShardId
	if cp := sh.GetCheckpoint(); cp != "" {
		r.checkpoint = cp
	}
	sh.Mux.Lock()
	sh.AssignedTo, sh.LeaseTimeout = owner, r.timeout
	sh.Mux.Unlock()
	return nil
}

func (c *memCheckpointer) CheckpointSequence(sh *partition.ShardStatus) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rows[sh.ID]
	if r == nil {
		r = &leaseRow{}
		c.rows[sh.ID] = r
	}
	r.checkpoint, r.owner, r.timeout, r.parent = sh.GetCheckpoint(), sh.GetLeaseOwner(), sh.GetLeaseTimeout(), sh.ParentShardId
	return nil
}

func (c *memCheckpointer) FetchCheckpoint(sh *partition.ShardStatus) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rows[sh.ID]
	if r == nil || r.checkpoint == "" {
		return checkpoint.ErrSequenceIDNotFound
	}
	sh.SetCheckpoint(r.checkpoint)
	sh.SetLeaseOwner(r.owner)
	if !r.timeout.IsZero() {
		sh.SetLeaseTimeout(r.timeout)
	}
	return nil
}

func (c *memCheckpointer) RemoveLeaseInfo(shardID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rows, shardID)
	return nil
}

func (c *memCheckpointer) RemoveLeaseOwner(shardID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rows[shardID]
	if r == nil || r.owner != c.workerID {
		return fmt.Errorf("shard %s is not leased by %s", shardID, c.workerID)
	}
	r.owner = ""
	return nil
}

func (c *memCheckpointer) GetLeaseOwner(shardID string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rows[shardID]; r != nil && r.owner != "" {
		return r.owner, nil
	}
	return "", checkpoint.NoLeaseOwnerErr
}

func (c *memCheckpointer) ListActiveWorkers(shards map[string]*partition.ShardStatus) (map[string][]*partition.ShardStatus, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	workers := map[string][]*partition.ShardStatus{}
	for id, sh := range shards {
		r := c.rows[id]
		if r == nil || r.checkpoint == checkpoint.ShardEnd {
			continue
		}
		if r.owner == "" {
			return nil, checkpoint.ErrShardNotAssigned
		}
		workers[r.owner] = append(workers[r.owner], sh)
	}
	return workers, nil
}

func (c *memCheckpointer) ClaimShard(sh *partition.ShardStatus, claimID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rows[sh.ID]
	if r == nil {
		r = &leaseRow{}
		c.rows[sh.ID] = r
	}
	if r.claim != "" {
		return checkpoint.ErrLeaseNotAcquired{}
	}
	r.claim = claimID
	return nil
}

// checkpoint returns shard's stored checkpoint, "" when there is none.
func (c *memCheckpointer) checkpoint(shardID string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r := c.rows[shardID]; r != nil {
		return r.checkpoint
	}
	return ""
}

// kclLogger keeps the library's log (without debug lines) for a failed
// test's output and counts its errors.
type kclLogger struct {
	mu   sync.Mutex
	buf  strings.Builder
	errs int
}

var _ logger.Logger = (*kclLogger)(nil)

func (l *kclLogger) log(level, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if level == "ERROR" {
		l.errs++
	}
	fmt.Fprintf(&l.buf, "%s %s %s\n", time.Now().Format("15:04:05.000"), level, fmt.Sprintf(format, args...))
}

func (l *kclLogger) Debugf(string, ...any)                  {}
func (l *kclLogger) Infof(format string, args ...any)       { l.log("INFO", format, args...) }
func (l *kclLogger) Warnf(format string, args ...any)       { l.log("WARN", format, args...) }
func (l *kclLogger) Errorf(format string, args ...any)      { l.log("ERROR", format, args...) }
func (l *kclLogger) Fatalf(format string, args ...any)      { panic(fmt.Sprintf(format, args...)) }
func (l *kclLogger) Panicf(format string, args ...any)      { panic(fmt.Sprintf(format, args...)) }
func (l *kclLogger) WithFields(logger.Fields) logger.Logger { return l }

func (l *kclLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// firstErrors returns up to n of the logged errors.
func (l *kclLogger) firstErrors(n int) []string {
	var out []string
	for _, line := range strings.Split(l.String(), "\n") {
		if strings.Contains(line, " ERROR ") && !strings.Contains(line, "status: CREATING") && len(out) < n {
			out = append(out, line)
		}
	}
	return out
}

func (l *kclLogger) errors() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}
