package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/runneltest"
)

func TestParseConsume(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		want  string // error substring, or "" for success
		check func(consumeConfig) bool
	}{
		{"flags", []string{"--stream", "s", "--app", "a", "--format", "hex", "--worker-id", "w1"}, nil, "",
			func(c consumeConfig) bool {
				return c.stream == "s" && c.app == "a" && c.format == "hex" && c.workerID == "w1" && c.endpoint == "http://127.0.0.1:4567"
			}},
		{"environment", nil, map[string]string{"RUNNEL_STREAM": "s", "RUNNEL_APP": "a", "RUNNEL_ENDPOINT": "http://127.0.0.1:9", "RUNNEL_FORMAT": "json",
			"RUNNEL_WORKER_ID": "w2", "RUNNEL_LEASE_DURATION": "3s", "RUNNEL_INITIAL_POSITION": "LATEST", "RUNNEL_REGION": "eu-west-1",
			"RUNNEL_FAN_OUT": "efo"}, "",
			func(c consumeConfig) bool {
				return c.stream == "s" && c.endpoint == "http://127.0.0.1:9" && c.format == "json" && c.workerID == "w2" &&
					c.leaseDuration == 3*time.Second && c.initial == "LATEST" && c.region == "eu-west-1" && c.fanOut == "efo"
			}},
		{"fan-out flag", []string{"--stream", "s", "--app", "a", "--fan-out", "audit-efo"}, nil, "",
			func(c consumeConfig) bool { return c.fanOut == "audit-efo" }},
		{"flag beats environment", []string{"--app", "b"}, map[string]string{"RUNNEL_STREAM": "s", "RUNNEL_APP": "a"}, "",
			func(c consumeConfig) bool { return c.app == "b" }},
		{"no stream", []string{"--app", "a"}, nil, "--stream and --app are required", nil},
		{"bad format", []string{"--stream", "s", "--app", "a", "--format", "xml"}, nil, "use text, json or hex", nil},
		{"bad position", []string{"--stream", "s", "--app", "a", "--initial-position", "AT_TIMESTAMP"}, nil, "TRIM_HORIZON or LATEST", nil},
		{"bad lease env", []string{"--stream", "s", "--app", "a"}, map[string]string{"RUNNEL_LEASE_DURATION": "soon"}, "RUNNEL_LEASE_DURATION", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConsume(tc.args, mapEnv(tc.env))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("parse: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("parse error %v, want %q", err, tc.want)
			case tc.check != nil && !tc.check(c):
				t.Fatalf("parsed %+v", c)
			}
		})
	}
	for _, args := range [][]string{{"consume", "-h"}, {"consume", "--help"}, {"help", "consume"}} {
		code, out, errs := runCmd(args...)
		if code != exitOK || !strings.Contains(out, "RUNNEL_STREAM") || !strings.Contains(out, "Usage: runnel consume") || errs != "" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	code, out, errs := runCmd("consume", "--app", "a")
	if lines := strings.Split(strings.TrimSpace(errs), "\n"); code != exitUsage || out != "" || len(lines) != 2 || !strings.Contains(lines[1], `"runnel consume --help"`) {
		t.Fatalf("consume without --stream: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConsumePrints runs `runnel consume` against a server, polling and
// by enhanced fan-out: every record is printed once with its shard and
// sequence number, and a second run of the same application starts after
// the first one's checkpoints.
func TestConsumePrints(t *testing.T) {
	t.Run("polling", func(t *testing.T) { testConsumePrints(t) })
	t.Run("fan-out", func(t *testing.T) {
		srv := testConsumePrints(t, "--fan-out", "printer-efo")
		kc := srv.Client(t)
		d, err := kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("s")})
		if err != nil {
			t.Fatal(err)
		}
		cs, err := kc.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: d.StreamDescriptionSummary.StreamARN})
		if err != nil {
			t.Fatal(err)
		}
		if len(cs.Consumers) != 1 || aws.ToString(cs.Consumers[0].ConsumerName) != "printer-efo" {
			t.Fatalf("stream consumers %+v", cs.Consumers)
		}
	})
	code, _, errs := runCmd("consume", "--stream", "s", "--app", "a", "--fan-out", "no spaces")
	if code != exitUsage || !strings.Contains(errs, "fan-out consumer name") {
		t.Fatalf("bad --fan-out: exit %d, stderr %q", code, errs)
	}
}

func testConsumePrints(t *testing.T, extra ...string) *runneltest.Server {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	ctx := context.Background()
	if _, err := kc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	put := func(from, to int) {
		for i := from; i < to; i++ {
			if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String(fmt.Sprint("k", i)), Data: []byte(fmt.Sprint("r", i))}); err != nil {
				t.Fatal(err)
			}
		}
	}
	consume := func(want int) []map[string]any {
		t.Helper()
		runCtx, cancel := context.WithCancel(ctx)
		var out, errb syncBuffer
		done := make(chan int, 1)
		go func() {
			args := []string{"consume", "--stream", "s", "--app", "printer", "--endpoint", srv.Endpoint(), "--format", "json", "--lease-duration", "1s"}
			done <- run(runCtx, append(args, extra...), &out, &errb, mapEnv(nil))
		}()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(out.String(), "\n") < want && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // nothing more comes
		cancel()
		if code := <-done; code != exitOK {
			t.Fatalf("consume exited %d: %s", code, errb.String())
		}
		var recs []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var r map[string]any
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("line %q: %v\nstderr: %s", line, err, errb.String())
			}
			recs = append(recs, r)
		}
		if len(recs) != want {
			t.Fatalf("printed %d records, want %d:\n%s\nstderr: %s", len(recs), want, out.String(), errb.String())
		}
		return recs
	}
	put(0, 9)
	recs := consume(9)
	seen := map[string]bool{}
	for _, r := range recs {
		data, _ := base64.StdEncoding.DecodeString(r["Data"].(string))
		if r["PartitionKey"] != "k"+strings.TrimPrefix(string(data), "r") || !strings.HasPrefix(r["ShardId"].(string), "shardId-") || r["SequenceNumber"] == "" {
			t.Fatalf("record %v", r)
		}
		seen[string(data)] = true
	}
	if len(seen) != 9 {
		t.Fatalf("distinct records %v", seen)
	}
	put(9, 12)
	recs = consume(3)
	for _, r := range recs {
		if data, _ := base64.StdEncoding.DecodeString(r["Data"].(string)); seen[string(data)] {
			t.Fatalf("%s printed again after its checkpoint", data)
		}
	}
	return srv
}
