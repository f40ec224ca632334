package integration

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/consumer/storetest"
	"github.com/runnel/runnel/runneltest"
)

// startDynalite starts dynalite (a DynamoDB-compatible server, installed in
// dynalite/node_modules by `npm ci`; `make setup` does it), in memory on a
// loopback port, for the rest of the test, and returns a client of it.
func startDynalite(t *testing.T) *dynamodb.Client {
	t.Helper()
	missing := t.Skip
	if os.Getenv("CI") != "" {
		missing = t.Fatal
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not on PATH; the DynamoDB lease store tests need Node.js for dynalite")
	}
	if _, err := os.Stat(filepath.Join("dynalite", "node_modules", "dynalite", "index.js")); err != nil {
		missing("dynalite not installed; `make setup` runs `npm ci` in integration/dynalite")
	}
	cmd := exec.Command(node, "serve.js")
	cmd.Dir = "dynalite"
	stdin, err := cmd.StdinPipe() // serve.js exits when it closes
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	port := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		port <- strings.TrimSpace(line)
	}()
	var p string
	select {
	case p = <-port:
	case <-time.After(30 * time.Second):
		t.Fatalf("dynalite did not start within 30s; stderr:\n%s", stderr.String())
	}
	if _, err := strconv.Atoi(p); err != nil {
		t.Fatalf("dynalite did not print its port (%q); stderr:\n%s", p, stderr.String())
	}
	return dynamodb.New(dynamodb.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://127.0.0.1:" + p),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
}

// TestDynamoDBStoreConformance runs the LeaseStore suite on DynamoDBStore,
// with runnel for the stream and dynalite for the table.
func TestDynamoDBStoreConformance(t *testing.T) {
	db := startDynalite(t)
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
	kc := srv.Client(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T, shards int) consumer.LeaseStore {
		name := fmt.Sprint("conformance-", n.Add(1))
		if _, err := kc.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(int32(shards))}); err != nil {
			t.Fatal(err)
		}
		s, err := consumer.NewDynamoDBStore(db, "leases-"+name, kc, name)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// attrTypes is the DynamoDB type of each attribute of an item.
func attrTypes(item map[string]ddb.AttributeValue) map[string]string {
	ts := map[string]string{}
	for k, v := range item {
		switch v.(type) {
		case *ddb.AttributeValueMemberS:
			ts[k] = "S"
		case *ddb.AttributeValueMemberN:
			ts[k] = "N"
		case *ddb.AttributeValueMemberSS:
			ts[k] = "SS"
		case *ddb.AttributeValueMemberB:
			ts[k] = "B"
		default:
			ts[k] = fmt.Sprintf("%T", v)
		}
	}
	return ts
}

func getItem(t *testing.T, db *dynamodb.Client, table, key string) map[string]ddb.AttributeValue {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]ddb.AttributeValue{"leaseKey": &ddb.AttributeValueMemberS{Value: key}}, ConsistentRead: aws.Bool(true)})
	if err != nil || out.Item == nil {
		t.Fatalf("GetItem %s: %+v, %v", key, out, err)
	}
	return out.Item
}

func s(item map[string]ddb.AttributeValue, k string) string {
	if v, ok := item[k].(*ddb.AttributeValueMemberS); ok {
		return v.Value
	}
	if v, ok := item[k].(*ddb.AttributeValueMemberN); ok {
		return v.Value
	}
	return fmt.Sprintf("<%T>", item[k])
}

// TestDynamoDBStoreWritesKCLSchema checks, with the raw DynamoDB client,
// that the table and its items are what the KCL creates and reads: the key
// schema, on-demand billing, and each attribute's name and type, across a
// take, a checkpoint and a split.
func TestDynamoDBStoreWritesKCLSchema(t *testing.T) {
	ctx := context.Background()
	db := startDynalite(t)
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
	kc := srv.Client(t)
	const stream, table = "schema", "schema-leases"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	st, err := consumer.NewDynamoDBStore(db, table, kc, stream, consumer.ShardSyncInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Prepare(ctx, consumer.Latest); err != nil {
		t.Fatal(err)
	}
	desc, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatal(err)
	}
	tbl := desc.Table
	if tbl.TableStatus != ddb.TableStatusActive || len(tbl.KeySchema) != 1 || aws.ToString(tbl.KeySchema[0].AttributeName) != "leaseKey" ||
		tbl.KeySchema[0].KeyType != ddb.KeyTypeHash || len(tbl.AttributeDefinitions) != 1 || tbl.AttributeDefinitions[0].AttributeType != ddb.ScalarAttributeTypeS {
		t.Fatalf("table: %+v", tbl)
	}
	if tbl.BillingModeSummary == nil || tbl.BillingModeSummary.BillingMode != ddb.BillingModePayPerRequest {
		t.Fatalf("billing mode: %+v", tbl.BillingModeSummary)
	}

	const shard = "shardId-000000000000"
	item := getItem(t, db, table, shard)
	want := map[string]string{"leaseKey": "S", "leaseCounter": "N", "checkpoint": "S", "checkpointSubSequenceNumber": "N",
		"ownerSwitchesSinceCheckpoint": "N", "startingHashKey": "S", "endingHashKey": "S", "entityType": "S"}
	if got := attrTypes(item); !mapsEqual(got, want) {
		t.Fatalf("new lease attributes %v, want %v", got, want)
	}
	if s(item, "checkpoint") != "LATEST" || s(item, "leaseCounter") != "0" || s(item, "entityType") != "LEASE" ||
		s(item, "startingHashKey") != "0" || s(item, "endingHashKey") != "340282366920938463463374607431768211455" {
		t.Fatalf("new lease %v", item)
	}

	l, err := st.Take(ctx, shard, "worker-a", 0)
	if err != nil {
		t.Fatal(err)
	}
	l, err = st.Take(ctx, shard, "worker-b", l.Counter)
	if err != nil {
		t.Fatal(err)
	}
	item = getItem(t, db, table, shard)
	if s(item, "leaseOwner") != "worker-b" || s(item, "leaseCounter") != "2" || s(item, "ownerSwitchesSinceCheckpoint") != "1" {
		t.Fatalf("after two takes: %v", item)
	}
	const seq = "49000000000000000000000000000000000000000000000000000007"
	if _, err := st.Checkpoint(ctx, shard, "worker-b", l.Counter, seq, 2); err != nil {
		t.Fatal(err)
	}
	item = getItem(t, db, table, shard)
	want["leaseOwner"] = "S"
	if got := attrTypes(item); !mapsEqual(got, want) {
		t.Fatalf("checkpointed lease attributes %v, want %v", got, want)
	}
	if s(item, "checkpoint") != seq || s(item, "checkpointSubSequenceNumber") != "2" || s(item, "ownerSwitchesSinceCheckpoint") != "0" || s(item, "leaseCounter") != "3" {
		t.Fatalf("checkpointed lease %v", item)
	}

	// A split: the parent gains childShardIds, each child a lease at
	// TRIM_HORIZON naming its parent in parentShardId.
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String(shard),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, kc, stream)
	if _, err := st.Checkpoint(ctx, shard, "worker-b", 3, consumer.ShardEnd, 0); err != nil {
		t.Fatal(err)
	}
	ls, err := st.List(ctx) // SHARD_END without children: the store syncs at once
	if err != nil {
		t.Fatal(err)
	}
	kids := []string{"shardId-000000000001", "shardId-000000000002"}
	if len(ls) != 3 || !slices.Equal(ls[0].Children, kids) || ls[1].Key != kids[0] || ls[2].Key != kids[1] {
		t.Fatalf("after the split: %+v", ls)
	}
	item = getItem(t, db, table, shard)
	if cs, ok := item["childShardIds"].(*ddb.AttributeValueMemberSS); !ok || !slices.Equal(slices.Sorted(slices.Values(cs.Value)), kids) {
		t.Fatalf("parent after the split: %v", item)
	}
	for _, k := range kids {
		item = getItem(t, db, table, k)
		ps, ok := item["parentShardId"].(*ddb.AttributeValueMemberSS)
		if !ok || !slices.Equal(ps.Value, []string{shard}) || s(item, "checkpoint") != "TRIM_HORIZON" {
			t.Fatalf("child %s: %v", k, item)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// recordingProcessor keeps the data of every record it is given, and
// checkpoints every batch.
type recordingProcessor struct {
	mu   sync.Mutex
	data []string
	init map[string]string
}

func (p *recordingProcessor) Initialize(ctx context.Context, in consumer.InitInput) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init[in.ShardID] = in.Checkpoint
	return nil
}

func (p *recordingProcessor) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	p.mu.Lock()
	for _, r := range in.Records {
		p.data = append(p.data, string(r.Data))
	}
	p.mu.Unlock()
	return in.Checkpointer.Checkpoint(ctx)
}

func (p *recordingProcessor) ShardEnded(ctx context.Context, cp *consumer.Checkpointer) error {
	return nil
}
func (p *recordingProcessor) LeaseLost(ctx context.Context, shardID string) error { return nil }

func (p *recordingProcessor) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.data)
}

// TestDynamoDBStoreContinuesKCLTable writes a lease table by hand as a Java
// KCL 2.x/3.x application leaves it (a checkpointed lease still owned by a
// worker that died, attributes the store does not use, a lease of the
// older format without entityType, an entity that is not a lease), and
// runs a Go worker on it: the worker waits out the dead worker's lease,
// continues after its checkpoint, and keeps the attributes it does not
// use.
func TestDynamoDBStoreContinuesKCLTable(t *testing.T) {
	ctx := context.Background()
	db := startDynalite(t)
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
	kc := srv.Client(t)
	const stream, table = "javaapp", "javaapp-leases"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	// Five records on each shard; the Java application checkpointed the
	// second of shard 0 and nothing of shard 1.
	shards := []string{"shardId-000000000000", "shardId-000000000001"}
	hashKeys := []string{"0", "170141183460469231731687303715884105728"}
	seqs := map[string][]string{}
	for i, sh := range shards {
		for j := range 5 {
			out, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"),
				ExplicitHashKey: aws.String(hashKeys[i]), Data: fmt.Appendf(nil, "%d-%d", i, j)})
			if err != nil || aws.ToString(out.ShardId) != sh {
				t.Fatalf("PutRecord: %+v, %v", out, err)
			}
			seqs[sh] = append(seqs[sh], aws.ToString(out.SequenceNumber))
		}
	}
	if _, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(table),
		KeySchema:            []ddb.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: ddb.KeyTypeHash}},
		AttributeDefinitions: []ddb.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: ddb.ScalarAttributeTypeS}},
		BillingMode:          ddb.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	waiter := dynamodb.NewTableExistsWaiter(db, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = 50*time.Millisecond, 200*time.Millisecond
	})
	if err := waiter.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	items := []map[string]ddb.AttributeValue{
		{ // KCL 3.x: entityType, hash range, throughput, a pending checkpoint.
			"leaseKey":                           &ddb.AttributeValueMemberS{Value: shards[0]},
			"leaseOwner":                         &ddb.AttributeValueMemberS{Value: "java-worker-1"},
			"leaseCounter":                       &ddb.AttributeValueMemberN{Value: "42"},
			"checkpoint":                         &ddb.AttributeValueMemberS{Value: seqs[shards[0]][1]},
			"checkpointSubSequenceNumber":        &ddb.AttributeValueMemberN{Value: "0"},
			"ownerSwitchesSinceCheckpoint":       &ddb.AttributeValueMemberN{Value: "3"},
			"pendingCheckpoint":                  &ddb.AttributeValueMemberS{Value: seqs[shards[0]][2]},
			"pendingCheckpointSubSequenceNumber": &ddb.AttributeValueMemberN{Value: "0"},
			"startingHashKey":                    &ddb.AttributeValueMemberS{Value: "0"},
			"endingHashKey":                      &ddb.AttributeValueMemberS{Value: "170141183460469231731687303715884105727"},
			"throughputKBps":                     &ddb.AttributeValueMemberN{Value: "12.5"},
			"entityType":                         &ddb.AttributeValueMemberS{Value: "LEASE"},
		},
		{ // KCL 2.x: no entityType, never checkpointed, released.
			"leaseKey":                     &ddb.AttributeValueMemberS{Value: shards[1]},
			"leaseCounter":                 &ddb.AttributeValueMemberN{Value: "7"},
			"checkpoint":                   &ddb.AttributeValueMemberS{Value: "TRIM_HORIZON"},
			"checkpointSubSequenceNumber":  &ddb.AttributeValueMemberN{Value: "0"},
			"ownerSwitchesSinceCheckpoint": &ddb.AttributeValueMemberN{Value: "0"},
		},
		{ // Not a lease.
			"leaseKey":   &ddb.AttributeValueMemberS{Value: "-stream-info"},
			"entityType": &ddb.AttributeValueMemberS{Value: "STREAM"},
		},
	}
	for _, it := range items {
		if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}

	st, err := consumer.NewDynamoDBStore(db, table, kc, stream)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingProcessor{init: map[string]string{}}
	// The worker is configured for LATEST, but the table says TRIM_HORIZON.
	c, err := consumer.New(kc, stream, "javaapp", p, consumer.Leases(st), consumer.WorkerID("go-worker"),
		consumer.LeaseDuration(time.Second), consumer.IdleTime(50*time.Millisecond), consumer.InitialPosition(consumer.Latest))
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(wctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	want := []string{"0-2", "0-3", "0-4", "1-0", "1-1", "1-2", "1-3", "1-4"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := p.seen()
		slices.Sort(got)
		if slices.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records processed %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Wait until both last records are checkpointed.
	for {
		a, b := getItem(t, db, table, shards[0]), getItem(t, db, table, shards[1])
		if s(a, "checkpoint") == seqs[shards[0]][4] && s(b, "checkpoint") == seqs[shards[1]][4] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoints %v, %v", a, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.mu.Lock()
	if p.init[shards[0]] != seqs[shards[0]][1] || p.init[shards[1]] != "TRIM_HORIZON" {
		t.Errorf("Initialize saw %v", p.init)
	}
	p.mu.Unlock()
	a := getItem(t, db, table, shards[0])
	if s(a, "leaseOwner") != "go-worker" || s(a, "throughputKBps") != "12.5" || s(a, "startingHashKey") != "0" ||
		s(a, "endingHashKey") != "170141183460469231731687303715884105727" || s(a, "entityType") != "LEASE" {
		t.Errorf("lease taken over from the Java worker: %v", a)
	}
	// The checkpoint superseded the Java worker's pending one, which the
	// KCL removes with every checkpoint too.
	if _, ok := a["pendingCheckpoint"]; ok {
		t.Errorf("pending checkpoint kept past a newer checkpoint: %v", a)
	}
	if n, _ := strconv.Atoi(s(a, "leaseCounter")); n <= 42 {
		t.Errorf("lease counter %s did not move on from 42", s(a, "leaseCounter"))
	}
	if _, ok := getItem(t, db, table, "-stream-info")["leaseCounter"]; ok {
		t.Errorf("the entity that is not a lease was treated as one")
	}
}

// TestDynamoDBStorePreservesPendingCheckpoint: a take, a renewal and a
// release leave a KCL pending checkpoint where it is.
func TestDynamoDBStorePreservesPendingCheckpoint(t *testing.T) {
	ctx := context.Background()
	db := startDynalite(t)
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
	kc := srv.Client(t)
	const stream, table = "pending", "pending-leases"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	st, err := consumer.NewDynamoDBStore(db, table, kc, stream)
	if err != nil {
		t.Fatal(err)
	}
	ls := prepareStore(t, st)
	key := ls[0].Key
	if _, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table),
		Key:              map[string]ddb.AttributeValue{"leaseKey": &ddb.AttributeValueMemberS{Value: key}},
		UpdateExpression: aws.String("SET pendingCheckpoint = :p, pendingCheckpointSubSequenceNumber = :z"),
		ExpressionAttributeValues: map[string]ddb.AttributeValue{":p": &ddb.AttributeValueMemberS{Value: "49000000000000000000000000000000000000000000000000000003"},
			":z": &ddb.AttributeValueMemberN{Value: "0"}}}); err != nil {
		t.Fatal(err)
	}
	l, err := st.Take(ctx, key, "a", ls[0].Counter)
	if err != nil {
		t.Fatal(err)
	}
	renewed, lost, err := st.Renew(ctx, "a", []consumer.Lease{l})
	if err != nil || len(renewed) != 1 || len(lost) != 0 {
		t.Fatalf("Renew = %+v, %+v, %v", renewed, lost, err)
	}
	if _, err := st.Release(ctx, key, "a", renewed[0].Counter); err != nil {
		t.Fatal(err)
	}
	item := getItem(t, db, table, key)
	if s(item, "pendingCheckpoint") != "49000000000000000000000000000000000000000000000000000003" || s(item, "pendingCheckpointSubSequenceNumber") != "0" {
		t.Fatalf("pending checkpoint not kept: %v", item)
	}
	if _, ok := item["leaseOwner"]; ok {
		t.Fatalf("released lease still has an owner: %v", item)
	}
}

func prepareStore(t *testing.T, st consumer.LeaseStore) []consumer.Lease {
	t.Helper()
	if _, err := st.Prepare(context.Background(), consumer.TrimHorizon); err != nil {
		t.Fatal(err)
	}
	ls, err := st.List(context.Background())
	if err != nil || len(ls) == 0 {
		t.Fatalf("List = %+v, %v", ls, err)
	}
	return ls
}

// TestConsumerWorkersDynamoDB runs the workers scenario (three workers,
// resharding, a kill and a graceful stop) with the leases in a DynamoDB
// table in the KCL's schema.
func TestConsumerWorkersDynamoDB(t *testing.T) {
	if testing.Short() {
		t.Skip("a minute of resharding under load")
	}
	db := startDynalite(t)
	workersScenarioOn(t, func(t *testing.T, kc *kinesis.Client, stream, app string) consumer.LeaseStore {
		st, err := consumer.NewDynamoDBStore(db, app+"-"+stream, kc, stream, consumer.ShardSyncInterval(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// TestDynamoDBStoreLatestStartsAtOpenShards: a table started at LATEST on
// a stream that was resharded has leases for the open shards only, each at
// LATEST, as the KCL's shard sync creates them; at TRIM_HORIZON every shard
// has one, the children at TRIM_HORIZON after their parent.
func TestDynamoDBStoreLatestStartsAtOpenShards(t *testing.T) {
	ctx := context.Background()
	db := startDynalite(t)
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
	kc := srv.Client(t)
	const stream = "resharded"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, kc, stream)
	tests := []struct {
		name    string
		initial consumer.Position
		want    []string // key=checkpoint
	}{
		{"latest", consumer.Latest, []string{"shardId-000000000001=LATEST", "shardId-000000000002=LATEST"}},
		{"trim-horizon", consumer.TrimHorizon, []string{"shardId-000000000000=TRIM_HORIZON", "shardId-000000000001=TRIM_HORIZON", "shardId-000000000002=TRIM_HORIZON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every List syncs.
			st, err := consumer.NewDynamoDBStore(db, "resharded-"+tt.name, kc, stream, consumer.ShardSyncInterval(time.Nanosecond))
			if err != nil {
				t.Fatal(err)
			}
			if p, err := st.Prepare(ctx, tt.initial); err != nil || p.Type != tt.initial.Type {
				t.Fatalf("Prepare = %+v, %v", p, err)
			}
			// Another worker, configured otherwise, learns the table's
			// position from the leases.
			other, err := consumer.NewDynamoDBStore(db, "resharded-"+tt.name, kc, stream)
			if err != nil {
				t.Fatal(err)
			}
			otherwise := consumer.TrimHorizon
			if tt.initial == consumer.TrimHorizon {
				otherwise = consumer.Latest
			}
			if p, err := other.Prepare(ctx, otherwise); err != nil || p.Type != tt.initial.Type {
				t.Fatalf("Prepare of another worker at %s = %+v, %v", otherwise.Type, p, err)
			}
			for range 2 { // a later sync adds no lease for the skipped parent
				ls, err := st.List(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, l := range ls {
					got = append(got, l.Key+"="+l.Checkpoint)
				}
				if !slices.Equal(got, tt.want) {
					t.Fatalf("leases %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// failingLister is a Kinesis client whose ListShards fails while fail is set.
type failingLister struct {
	*kinesis.Client
	fail  atomic.Bool
	calls atomic.Int64
}

func (f *failingLister) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.calls.Add(1)
	if f.fail.Load() {
		return nil, fmt.Errorf("throttled")
	}
	return f.Client.ListShards(ctx, in, optFns...)
}

// TestDynamoDBStoreShardSyncFailure: Prepare fails when the shards cannot
// be listed (here: no such stream); List still answers with the table's
// leases when a later sync fails, and retries the sync a second later.
func TestDynamoDBStoreShardSyncFailure(t *testing.T) {
	ctx := context.Background()
	db := startDynalite(t)
	srv := runneltest.NewServer(t, runneltest.WithTransitionDelay(0))
	kc := &failingLister{Client: srv.Client(t)}
	missing, err := consumer.NewDynamoDBStore(db, "nostream-leases", kc, "nostream")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := missing.Prepare(ctx, consumer.TrimHorizon); !errors.Is(err, consumer.ErrTableNotFound) {
		t.Fatalf("Prepare on a missing stream: %v", err)
	}

	const stream = "flaky"
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	st, err := consumer.NewDynamoDBStore(db, "flaky-leases", kc, stream, consumer.ShardSyncInterval(time.Nanosecond))
	if err != nil {
		t.Fatal(err)
	}
	prepareStore(t, st)
	kc.fail.Store(true)
	before := kc.calls.Load()
	for range 3 {
		ls, err := st.List(ctx)
		if err != nil || len(ls) != 2 {
			t.Fatalf("List while ListShards fails = %+v, %v", ls, err)
		}
	}
	if n := kc.calls.Load() - before; n != 1 {
		t.Fatalf("%d ListShards calls in three listings after a failure; want 1, then a second's pause", n)
	}
	kc.fail.Store(false)
	time.Sleep(1100 * time.Millisecond)
	if _, err := st.List(ctx); err != nil || kc.calls.Load()-before != 2 {
		t.Fatalf("List after the pause: %v, %d ListShards calls", err, kc.calls.Load()-before)
	}
}
