package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// leaseCall sends one SigV4-signed lease-table request in JSON 1.1 and
// returns the HTTP status and the decoded answer.
func leaseCall(t *testing.T, s *server, op string, in map[string]any) (int, map[string]any) {
	t.Helper()
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	req, err := newRawRequest(s, "RunnelLeases_20261206."+op, "application/x-amz-json-1.1", string(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "kinesis", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	status, raw := doRaw(t, req)
	var out map[string]any
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatalf("%s answered %d %q: %v", op, status, raw, err)
		}
	}
	return status, out
}

func leaseOf(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	l, ok := out["Lease"].(map[string]any)
	if !ok {
		t.Fatalf("no Lease in %v", out)
	}
	return l
}

// TestLeaseTables drives the lease API of a real server: fencing between
// two workers, leases that survive kill -9, follow resharding and go with
// their stream.
func TestLeaseTables(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	s := startServer(t, dir)
	c := s.client()
	name := "lease-stream"
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)

	table := map[string]any{"StreamName": name, "ApplicationName": "orders"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range table {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	status, out := leaseCall(t, s, "CreateLeaseTable", with("InitialPosition", map[string]any{"Type": "TRIM_HORIZON"}))
	if status != 200 || out["LeaseTable"].(map[string]any)["LeaseCount"].(float64) != 2 {
		t.Fatalf("CreateLeaseTable: %d %v", status, out)
	}
	status, out = leaseCall(t, s, "CreateLeaseTable", table)
	if status != 400 || out["__type"] != "ResourceInUseException" {
		t.Fatalf("second CreateLeaseTable: %d %v", status, out)
	}

	// Two workers take shard 0 at counter 0: one wins, one is fenced off.
	key := "shardId-000000000000"
	_, a := leaseCall(t, s, "TakeLease", with("LeaseKey", key, "Owner", "a", "Counter", 0))
	status, b := leaseCall(t, s, "TakeLease", with("LeaseKey", key, "Owner", "b", "Counter", 0))
	if leaseOf(t, a)["Owner"] != "a" || status != 400 || b["__type"] != "LeaseConflictException" || !strings.Contains(b["message"].(string), "held by a with counter 1") {
		t.Fatalf("race: a=%v b=%d %v", a, status, b)
	}
	_, out = leaseCall(t, s, "Checkpoint", with("LeaseKey", key, "Owner", "a", "Counter", 1, "SequenceNumber", "49000000000000000000000000000000000000000000000000000001", "SubSequenceNumber", 2))
	if leaseOf(t, out)["Counter"].(float64) != 2 {
		t.Fatalf("Checkpoint: %v", out)
	}
	// b decides a's lease expired and takes it; a's late checkpoint fails.
	leaseCall(t, s, "TakeLease", with("LeaseKey", key, "Owner", "b", "Counter", 2))
	status, out = leaseCall(t, s, "Checkpoint", with("LeaseKey", key, "Owner", "a", "Counter", 2, "SequenceNumber", "49000000000000000000000000000000000000000000000000000009"))
	if status != 400 || out["__type"] != "LeaseConflictException" {
		t.Fatalf("fenced checkpoint: %d %v", status, out)
	}

	// Everything acknowledged survives kill -9.
	s.kill()
	s = startServerAt(t, s.addr, dir)
	c = s.client()
	_, out = leaseCall(t, s, "ListLeases", table)
	ls := out["Leases"].([]any)
	l0 := ls[0].(map[string]any)
	if len(ls) != 2 || l0["Owner"] != "b" || l0["Counter"].(float64) != 3 || l0["Checkpoint"] != "49000000000000000000000000000000000000000000000000000001" || l0["SubSequenceNumber"].(float64) != 2 {
		t.Fatalf("after restart: %v", ls)
	}
	status, out = leaseCall(t, s, "RenewLeases", with("Owner", "b", "Leases", []any{map[string]any{"LeaseKey": key, "Counter": 3}, map[string]any{"LeaseKey": "shardId-000000000001", "Counter": 0}}))
	if status != 200 || len(out["Renewed"].([]any)) != 1 || len(out["Lost"].([]any)) != 1 {
		t.Fatalf("RenewLeases: %d %v", status, out)
	}

	// Resharding: the children get leases that name their parents.
	if _, err := c.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(name), TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, name)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, out = leaseCall(t, s, "ListLeases", table)
		ls = out["Leases"].([]any)
		if len(ls) >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	children := 0
	for _, l := range ls {
		if ps, ok := l.(map[string]any)["ParentShardIds"].([]any); ok && len(ps) > 0 {
			children++
		}
	}
	if children < 4 {
		t.Fatalf("after UpdateShardCount 2 -> 4: %d leases with parents: %v", children, ls)
	}

	// The stream goes, and its tables with it.
	if _, err := c.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		status, out = leaseCall(t, s, "ListLeases", table)
		if out["__type"] == "ResourceNotFoundException" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ListLeases of a deleted stream: %d %v", status, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	status, out = leaseCall(t, s, "NoSuchOperation", table)
	if status != http.StatusBadRequest || out["__type"] != "UnknownOperationException" {
		t.Fatalf("unknown operation: %d %v", status, out)
	}
}
