package leaseapi

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/streams"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newAPI(t *testing.T) *API {
	t.Helper()
	ctx := context.Background()
	eng := mem.New(mem.DefaultOptions())
	t.Cleanup(func() { eng.Close() })
	so := streams.DefaultOptions()
	so.TransitionDelay = 0
	so.IteratorKey = []byte("k")
	svc, err := streams.New(ctx, eng, so)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	name, n := "s", int32(2)
	if err := svc.CreateStream(ctx, &streams.CreateStreamInput{StreamName: &name, ShardCount: &n}); err != nil {
		t.Fatal(err)
	}
	return New(leases.New(eng.Meta(), leases.OnStreams(svc), leases.Options{}))
}

// call decodes body as the plumbing would, runs op and encodes the answer.
func call(t *testing.T, a *API, op, body string) (map[string]any, error) {
	t.Helper()
	in := a.NewInput(op)
	if in == nil {
		t.Fatalf("no operation %s", op)
	}
	if err := json.Unmarshal([]byte(body), in); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	out, err := a.Call(context.Background(), op, in)
	if err != nil {
		return nil, err
	}
	if !a.HasOutput(op) {
		return nil, nil
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m, nil
}

func code(err error) string {
	var e *leases.Error
	if errors.As(err, &e) {
		return e.ErrorCode()
	}
	if err == nil {
		return ""
	}
	return "internal: " + err.Error()
}

func TestOperations(t *testing.T) {
	a := newAPI(t)
	if a.NewInput("Nope") != nil {
		t.Fatal("unknown operation has an input")
	}
	before := time.Now().Add(-time.Second)
	out, err := call(t, a, "CreateLeaseTable", `{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","ApplicationName":"app","InitialPosition":{"Type":"LATEST"}}`)
	if err != nil {
		t.Fatal(err)
	}
	tbl := out["LeaseTable"].(map[string]any)
	if tbl["LeaseCount"].(float64) != 2 || tbl["StreamName"] != "s" || tbl["InitialPosition"].(map[string]any)["Type"] != "LATEST" {
		t.Fatalf("table = %v", tbl)
	}
	if ts := tbl["CreationTimestamp"].(float64); ts < float64(before.Unix()) {
		t.Fatalf("CreationTimestamp = %v", ts)
	}

	out, err = call(t, a, "ListLeases", `{"StreamName":"s","ApplicationName":"app"}`)
	if err != nil || len(out["Leases"].([]any)) != 2 {
		t.Fatalf("ListLeases = %v, %v", out, err)
	}
	out, err = call(t, a, "TakeLease", `{"StreamName":"s","ApplicationName":"app","LeaseKey":"shardId-000000000001","Owner":"w1","Counter":0}`)
	if err != nil {
		t.Fatal(err)
	}
	if l := out["Lease"].(map[string]any); l["Owner"] != "w1" || l["Counter"].(float64) != 1 {
		t.Fatalf("TakeLease = %v", l)
	}
	out, err = call(t, a, "RenewLeases", `{"StreamName":"s","ApplicationName":"app","Owner":"w1","Leases":[{"LeaseKey":"shardId-000000000001","Counter":1},{"LeaseKey":"shardId-000000000000","Counter":0}]}`)
	if err != nil || len(out["Renewed"].([]any)) != 1 || len(out["Lost"].([]any)) != 1 {
		t.Fatalf("RenewLeases = %v, %v", out, err)
	}
	_, err = call(t, a, "Checkpoint", `{"StreamName":"s","ApplicationName":"app","LeaseKey":"shardId-000000000001","Owner":"w1","Counter":1,"SequenceNumber":"123"}`)
	if code(err) != "LeaseConflictException" {
		t.Fatalf("stale checkpoint: %v", err)
	}
	out, err = call(t, a, "Checkpoint", `{"StreamName":"s","ApplicationName":"app","LeaseKey":"shardId-000000000001","Owner":"w1","Counter":2,"SequenceNumber":"123","SubSequenceNumber":4}`)
	if err != nil || out["Lease"].(map[string]any)["Checkpoint"] != "123" {
		t.Fatalf("Checkpoint = %v, %v", out, err)
	}
	out, err = call(t, a, "HandOffLease", `{"StreamName":"s","ApplicationName":"app","LeaseKey":"shardId-000000000001","Owner":"w1","Counter":3,"NewOwner":"w2"}`)
	if err != nil || out["Lease"].(map[string]any)["Owner"] != "w2" {
		t.Fatalf("HandOffLease = %v, %v", out, err)
	}
	out, err = call(t, a, "ReleaseLease", `{"StreamName":"s","ApplicationName":"app","LeaseKey":"shardId-000000000001","Owner":"w2","Counter":4}`)
	if err != nil || out["Lease"].(map[string]any)["Owner"] != nil {
		t.Fatalf("ReleaseLease = %v, %v", out, err)
	}
	out, err = call(t, a, "ListLeaseTables", `{"StreamName":"s"}`)
	if err != nil || len(out["LeaseTables"].([]any)) != 1 {
		t.Fatalf("ListLeaseTables = %v, %v", out, err)
	}
	if _, err := call(t, a, "DeleteLeaseTable", `{"StreamName":"s","ApplicationName":"app"}`); err != nil {
		t.Fatal(err)
	}
	if _, err := call(t, a, "DescribeLeaseTable", `{"StreamName":"s","ApplicationName":"app"}`); code(err) != "ResourceNotFoundException" {
		t.Fatalf("DescribeLeaseTable after delete: %v", err)
	}
}

func TestArguments(t *testing.T) {
	a := newAPI(t)
	for _, tc := range []struct {
		op, body, code string
	}{
		{"CreateLeaseTable", `{"ApplicationName":"app"}`, "InvalidArgumentException"},
		{"CreateLeaseTable", `{"StreamName":"s"}`, "InvalidArgumentException"},
		{"CreateLeaseTable", `{"StreamARN":"arn:aws:sqs:us-east-1:0:stream/s","ApplicationName":"app"}`, "InvalidArgumentException"},
		{"CreateLeaseTable", `{"StreamName":"t","StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","ApplicationName":"app"}`, "InvalidArgumentException"},
		{"CreateLeaseTable", `{"StreamName":"missing","ApplicationName":"app"}`, "ResourceNotFoundException"},
		{"ListLeases", `{"StreamName":"s","ApplicationName":"none"}`, "ResourceNotFoundException"},
		{"TakeLease", `{"StreamName":"s","ApplicationName":"app","Owner":"w","Counter":0}`, "InvalidArgumentException"},
		{"TakeLease", `{"StreamName":"s","ApplicationName":"app","LeaseKey":"shardId-000000000000","Counter":0}`, "InvalidArgumentException"},
		{"TakeLease", `{"StreamName":"s","ApplicationName":"app","LeaseKey":"shardId-000000000000","Owner":"w"}`, "InvalidArgumentException"},
		{"HandOffLease", `{"StreamName":"s","ApplicationName":"app","LeaseKey":"shardId-000000000000","Owner":"w","Counter":0}`, "InvalidArgumentException"},
		{"Checkpoint", `{"StreamName":"s","ApplicationName":"app","LeaseKey":"shardId-000000000000","Owner":"w","Counter":0}`, "InvalidArgumentException"},
		{"RenewLeases", `{"StreamName":"s","ApplicationName":"app","Leases":[]}`, "InvalidArgumentException"},
		{"RenewLeases", `{"StreamName":"s","ApplicationName":"app","Owner":"w","Leases":[{"Counter":1}]}`, "InvalidArgumentException"},
	} {
		t.Run(tc.op+" "+tc.body, func(t *testing.T) {
			if _, err := call(t, a, tc.op, tc.body); code(err) != tc.code {
				t.Fatalf("error %v, want %s", err, tc.code)
			}
		})
	}
}
