package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// BenchmarkAgentOneFile measures `runnel agent` sending one file of
// 200-byte lines (b.N of them, written before it starts) from its start to
// a `runnel serve` on the same machine: from the agent's start until its
// checkpoint file says every line was acknowledged. Run it with a fixed
// count, e.g. -benchtime=1000000x. The stream has 8 shards
// (RUNNEL_AGENT_BENCH_SHARDS to change): the agent sends to each shard one
// call at a time, so shards are its parallelism.
func BenchmarkAgentOneFile(b *testing.B) {
	dir := b.TempDir()
	srv := launch(b, "127.0.0.1:"+fmt.Sprint(freePort(b)), filepath.Join(dir, "data"), "--transition-delay", "0s")
	defer srv.kill()
	client := srv.client()
	ctx := context.Background()
	shards := 8
	if v := os.Getenv("RUNNEL_AGENT_BENCH_SHARDS"); v != "" {
		fmt.Sscan(v, &shards)
	}
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("bench"), ShardCount: aws.Int32(int32(shards))}); err != nil {
		b.Fatal(err)
	}
	for {
		d, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("bench")})
		if err == nil && d.StreamDescriptionSummary.StreamStatus == "ACTIVE" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	log := filepath.Join(dir, "app.log")
	f, err := os.Create(log)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := range b.N {
		s := fmt.Sprintf("%012d GET /index.html 200 ", i)
		w.WriteString(s + strings.Repeat("x", 199-len(s)) + "\n")
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	size := int64(b.N) * 200
	ck := filepath.Join(dir, "checkpoints")
	conf := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(conf, fmt.Appendf(nil, `{"kinesis.endpoint": %q, "checkpointFile": %q,
		"flows": [{"filePattern": %q, "kinesisStream": "bench", "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 1000}]}`,
		srv.endpoint(), ck, log), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(200)
	b.ResetTimer()
	start := time.Now()
	cmd := exec.Command(runnelBin, "agent", "--config", conf, "--checkpoint-interval", "100ms", "--status-interval", "0")
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	deadline := start.Add(10 * time.Minute)
	for acked(ck) < size {
		if time.Now().After(deadline) {
			b.Fatalf("not done after 10 minutes; agent log:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "lines/s")
}

// acked reads the agent's checkpoint file: the offset acknowledged.
func acked(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var c struct {
		Files []struct{ Offset int64 }
	}
	if json.Unmarshal(b, &c) != nil || len(c.Files) == 0 {
		return 0
	}
	return c.Files[0].Offset
}
