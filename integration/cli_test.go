package integration

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// awsCLI returns the path of the AWS CLI v2 or skips the test. Debian's
// awscli package installs it at /usr/bin/aws; an older v1 may come first on
// PATH, so that path is preferred. In CI (`make setup` installs it) a missing CLI
// is a failure.
func awsCLI(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/aws", "/usr/local/bin/aws"} {
		if out, err := exec.Command(p, "--version").CombinedOutput(); err == nil && strings.HasPrefix(string(out), "aws-cli/2") {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("AWS CLI v2 not found at /usr/bin/aws; `make setup` installs Debian's awscli package")
	}
	t.Skip("AWS CLI v2 not installed (apt-get install awscli)")
	return ""
}

// TestAWSCLIRoundTrip drives the server with the AWS CLI v2: create-stream,
// put-record, get-shard-iterator, get-records, delete-stream.
func TestAWSCLIRoundTrip(t *testing.T) {
	aws := awsCLI(t)
	srv := startServer(t, t.TempDir(), "--transition-delay", "0s")
	run := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(aws, append([]string{"--endpoint-url", srv.endpoint(), "--region", "us-east-1", "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		var m map[string]any
		if len(strings.TrimSpace(string(out))) > 0 {
			if err := json.Unmarshal(out, &m); err != nil {
				t.Fatalf("aws %s: output is not JSON: %s", strings.Join(args, " "), out)
			}
		}
		return m
	}
	run("kinesis", "create-stream", "--stream-name", "cli", "--shard-count", "1")
	run("kinesis", "wait", "stream-exists", "--stream-name", "cli")
	put := run("kinesis", "put-record", "--stream-name", "cli", "--partition-key", "k", "--data", base64.StdEncoding.EncodeToString([]byte("hello from the cli")))
	if put["ShardId"] != "shardId-000000000000" || put["SequenceNumber"] == "" {
		t.Fatalf("put-record answered %v", put)
	}
	it := run("kinesis", "get-shard-iterator", "--stream-name", "cli", "--shard-id", "shardId-000000000000", "--shard-iterator-type", "TRIM_HORIZON")
	recs := run("kinesis", "get-records", "--shard-iterator", it["ShardIterator"].(string))
	list, _ := recs["Records"].([]any)
	if len(list) != 1 {
		t.Fatalf("get-records answered %v", recs)
	}
	rec := list[0].(map[string]any)
	data, err := base64.StdEncoding.DecodeString(rec["Data"].(string))
	if err != nil || string(data) != "hello from the cli" {
		t.Fatalf("record data %v (%v)", rec["Data"], err)
	}
	if rec["SequenceNumber"] != put["SequenceNumber"] {
		t.Fatalf("sequence number %v, put-record said %v", rec["SequenceNumber"], put["SequenceNumber"])
	}
	run("kinesis", "delete-stream", "--stream-name", "cli")
}

// TestREADMESession runs the README's first session, as written, with the
// AWS CLI v2 against a server: every command must work and the last one
// must print the record that was put.
func TestREADMESession(t *testing.T) {
	aws := awsCLI(t)
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## A first session with the AWS CLI")
	if !ok {
		t.Fatal("README has no first session")
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	script, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 || !strings.Contains(script, "http://127.0.0.1:4567") {
		t.Fatalf("README's session is not a sh block on http://127.0.0.1:4567:\n%s", rest)
	}
	srv := startServer(t, t.TempDir(), "--transition-delay", "0s")
	script = strings.ReplaceAll(script, "http://127.0.0.1:4567", srv.endpoint())
	// The v2 comes first on PATH, as the README asks.
	bin := t.TempDir()
	if err := os.Symlink(aws, filepath.Join(bin, "aws")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's session failed: %v\n%s", err, out)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(out)), `{"page":"/home"}`) || !strings.Contains(string(out), `"ShardId": "shardId-000000000000"`) {
		t.Errorf("the README's session printed:\n%s\nwant the put on shardId-000000000000 and the record last", out)
	}
}

// TestREADMEDeliverySession runs the README's delivery stream session, as
// written, with the AWS CLI v2: create, describe, put, read the object,
// update and delete a delivery stream.
func TestREADMEDeliverySession(t *testing.T) {
	aws := awsCLI(t)
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, found := strings.Cut(string(readme), "## Delivery streams: from records to files")
	if !found {
		t.Fatal("README has no delivery stream session")
	}
	_, rest, _ = strings.Cut(rest, "```sh\n") // the serve command
	_, rest, _ = strings.Cut(rest, "```sh\n")
	script, _, ok := strings.Cut(rest, "```")
	if !ok || !strings.Contains(script, "firehose create-delivery-stream") {
		t.Fatalf("README's delivery session is not the second sh block:\n%s", rest)
	}
	work := t.TempDir()
	srv := startServer(t, t.TempDir(), "--buckets-dir", filepath.Join(work, "buckets"))
	script = strings.ReplaceAll(script, "http://127.0.0.1:4567", srv.endpoint())
	// Ten seconds instead of the README's minute (older CLIs send it only
	// with their parameter validation off): long enough for the CLI's
	// two puts to share a buffer on a loaded machine.
	if !strings.Contains(script, "IntervalInSeconds=60") {
		t.Fatal("README's delivery session no longer buffers for 60 s")
	}
	script = strings.ReplaceAll(script, "IntervalInSeconds=60", "IntervalInSeconds=10")
	config := filepath.Join(work, "aws-config")
	if err := os.WriteFile(config, []byte("[default]\nparameter_validation = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	if err := os.Symlink(aws, filepath.Join(bin, "aws")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"AWS_CONFIG_FILE="+config, "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the README's delivery session failed: %v\n%s", err, out)
	}
	want := "{\"page\":\"/home\"}\n{\"page\":\"/cart\"}\n{\"page\":\"/pay\"}\n"
	if !strings.Contains(string(out), want) || !strings.Contains(string(out), "deliverystream/clicks") {
		t.Errorf("the README's delivery session printed:\n%s\nwant the three records in order", out)
	}
}
