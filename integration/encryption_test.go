package integration

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// runKeys runs `runnel keys <args>` and fails the test if it fails.
func runKeys(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(runnelBin, append([]string{"keys"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("runnel keys %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// filesContaining returns the files under dir whose bytes contain needle.
func filesContaining(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// putMarked writes n records whose data and partition keys carry marker.
func putMarked(t *testing.T, c *kinesis.Client, stream, marker string, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	entries := make([]types.PutRecordsRequestEntry, n)
	for i := range entries {
		pk := fmt.Sprintf("%s-key-%d", marker, i)
		data := fmt.Sprintf("%s-record-%d-%s", marker, i, bytes.Repeat([]byte("x"), i%50))
		entries[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String(pk), Data: []byte(data)}
		want[pk] = data
	}
	out, err := c.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
		t.Fatalf("PutRecords to %s: %v (%d failed)", stream, err, aws.ToInt32(out.FailedRecordCount))
	}
	return want
}

// checkStream reads a stream whole and compares it with want.
func checkStream(t *testing.T, c *kinesis.Client, stream string, want map[string]string, enc types.EncryptionType) {
	t.Helper()
	got := map[string]string{}
	for _, recs := range readAll(t, c, stream) {
		for _, r := range recs {
			got[*r.PartitionKey] = string(r.Data)
			if r.EncryptionType != enc && !(enc == types.EncryptionTypeNone && r.EncryptionType == "") {
				t.Fatalf("%s: record %s reports EncryptionType %q, want %q", stream, *r.PartitionKey, r.EncryptionType, enc)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%s: read %d records, want %d", stream, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: record %s = %q, want %q", stream, k, got[k], v)
		}
	}
}

// TestEncryptionAtRest writes the same kind of records to an encrypted and
// to a plain stream, and checks every byte of the data directory: the
// encrypted stream's records (data and partition keys) are nowhere, the
// plain stream's are there. The encrypted records read back intact through
// the SDK, after a restart, after the master key is rotated and the old one
// retired; and a copy of the data directory served without the key file
// gives KMS errors, not records.
func TestEncryptionAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	ctx := context.Background()
	dataDir := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "keys.json")
	args := []string{"--transition-delay", "0s", "--key-file", keyFile}
	srv := startServer(t, dataDir, args...)
	c := srv.client()
	for _, s := range []string{"secret", "plain"} {
		if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(s), ShardCount: aws.Int32(2)}); err != nil {
			t.Fatal(err)
		}
		waitActive(t, c, s)
	}
	if _, err := c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("secret"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/aws/kinesis")}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, "secret")
	secret := putMarked(t, c, "secret", "CONFIDENTIAL7f3a", 300)
	plain := putMarked(t, c, "plain", "PUBLIC9c2e", 300)
	checkStream(t, c, "secret", secret, types.EncryptionTypeKms)
	checkStream(t, c, "plain", plain, types.EncryptionTypeNone)

	checkDir := func(when string) {
		t.Helper()
		if hits := filesContaining(t, dataDir, []byte("CONFIDENTIAL7f3a")); len(hits) > 0 {
			t.Fatalf("%s: plain text of encrypted records found in %v", when, hits)
		}
		if hits := filesContaining(t, dataDir, []byte("PUBLIC9c2e-record-17-")); len(hits) == 0 {
			t.Fatalf("%s: the plain stream's records are not found in the data directory: the search is broken", when)
		}
		// Nor is the master key.
		b, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		var kf struct {
			MasterKeys []struct{ Key string } `json:"masterKeys"`
		}
		if err := json.Unmarshal(b, &kf); err != nil || len(kf.MasterKeys) == 0 {
			t.Fatalf("key file: %v, %d master keys", err, len(kf.MasterKeys))
		}
		for _, mk := range kf.MasterKeys {
			raw, _ := base64.StdEncoding.DecodeString(mk.Key)
			for _, needle := range [][]byte{raw, []byte(mk.Key)} {
				if hits := filesContaining(t, dataDir, needle); len(hits) > 0 {
					t.Fatalf("%s: master key found in %v", when, hits)
				}
			}
		}
	}
	checkDir("while running")
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode().Perm())
	}

	// Restart.
	srv.stop(t)
	srv = startServer(t, dataDir, args...)
	c = srv.client()
	checkStream(t, c, "secret", secret, types.EncryptionTypeKms)
	checkDir("after a restart")

	// Rotate the master key: the server re-wraps the data keys at start,
	// then the old master key is retired.
	runKeys(t, "rotate", "--key-file", keyFile)
	srv.stop(t)
	srv = startServer(t, dataDir, args...)
	srv.stop(t)
	runKeys(t, "retire", "--key-file", keyFile)
	srv = startServer(t, dataDir, args...)
	c = srv.client()
	checkStream(t, c, "secret", secret, types.EncryptionTypeKms)
	more := putMarked(t, c, "secret", "CONFIDENTIAL7f3a-late", 20)
	for k, v := range more {
		secret[k] = v
	}
	checkStream(t, c, "secret", secret, types.EncryptionTypeKms)
	checkDir("after rotation")

	// A copy of the data directory without the key file: the plain stream
	// reads, the encrypted one answers with a KMS error.
	srv.stop(t)
	copyDir := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(copyDir, os.DirFS(dataDir)); err != nil {
		t.Fatal(err)
	}
	thief := startServer(t, copyDir, "--transition-delay", "0s", "--key-file", filepath.Join(t.TempDir(), "other-keys.json"))
	tc := thief.client()
	checkStream(t, tc, "plain", plain, types.EncryptionTypeNone)
	it, err := tc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("secret"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	var nf *types.KMSNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("GetRecords of an encrypted stream without its key: %v, want KMSNotFoundException", err)
	}
}

// TestKMSErrorsThroughSDK: a missing key, then a key disabled with
// `runnel keys` while the server runs, reach the SDK as Kinesis' typed KMS
// exceptions; enabled again, the records read back.
func TestKMSErrorsThroughSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	ctx := context.Background()
	keyFile := filepath.Join(t.TempDir(), "keys.json")
	srv := startServer(t, t.TempDir(), "--transition-delay", "0s", "--key-file", keyFile)
	c := srv.client()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, c, "s")
	_, err := c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("alias/missing")})
	var nf *types.KMSNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("StartStreamEncryption with a missing key: %v, want KMSNotFoundException", err)
	}
	keyID := runKeys(t, "create", "--key-file", keyFile, "alias/app")
	keyID = string(bytes.TrimSpace([]byte(keyID)))
	// The server sees the new key once it reads the file again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err = c.StartStreamEncryption(ctx, &kinesis.StartStreamEncryptionInput{StreamName: aws.String("s"), EncryptionType: types.EncryptionTypeKms, KeyId: aws.String("arn:aws:kms:us-east-1:000000000000:key/" + keyID)})
		if err == nil {
			break
		}
		if !errors.As(err, &nf) || time.Now().After(deadline) {
			t.Fatalf("StartStreamEncryption with a new key: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	waitActive(t, c, "s")
	if _, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("kept")}); err != nil {
		t.Fatal(err)
	}
	it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("s"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}

	runKeys(t, "disable", "--key-file", keyFile, "alias/app")
	var dis *types.KMSDisabledException
	deadline = time.Now().Add(20 * time.Second)
	for { // until the server has read the file again
		_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if errors.As(err, &dis) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("GetRecords with a disabled key: %v, want KMSDisabledException", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err = c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("s"), PartitionKey: aws.String("k"), Data: []byte("refused")})
	if !errors.As(err, &dis) {
		t.Fatalf("PutRecord with a disabled key: %v, want KMSDisabledException", err)
	}
	_, err = c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("refused")}}})
	if !errors.As(err, &dis) {
		t.Fatalf("PutRecords with a disabled key: %v, want KMSDisabledException", err)
	}
	_, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if !errors.As(err, &dis) {
		t.Fatalf("GetRecords with a disabled key: %v, want KMSDisabledException", err)
	}

	runKeys(t, "enable", "--key-file", keyFile, "alias/app")
	deadline = time.Now().Add(20 * time.Second)
	for {
		out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err == nil {
			if len(out.Records) != 1 || string(out.Records[0].Data) != "kept" {
				t.Fatalf("records after the key is enabled again: %+v", out.Records)
			}
			break
		}
		if !errors.As(err, &dis) || time.Now().After(deadline) {
			t.Fatalf("GetRecords after enabling the key: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestEncryptionAWSCLI: the AWS CLI v2 starts encryption with the default
// key, reads an encrypted record back, and shows a missing key's
// KMSNotFoundException.
func TestEncryptionAWSCLI(t *testing.T) {
	awsBin := awsCLI(t)
	srv := startServer(t, t.TempDir(), "--transition-delay", "0s", "--key-file", filepath.Join(t.TempDir(), "keys.json"))
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(awsBin, append([]string{"--endpoint-url", srv.endpoint(), "--region", "us-east-1", "--output", "json"}, args...)...)
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_PAGER=", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) map[string]any {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		var m map[string]any
		if len(bytes.TrimSpace([]byte(out))) > 0 {
			if err := json.Unmarshal([]byte(out), &m); err != nil {
				t.Fatalf("aws %v: output is not JSON: %s", args, out)
			}
		}
		return m
	}
	must("kinesis", "create-stream", "--stream-name", "enc", "--shard-count", "1")
	must("kinesis", "wait", "stream-exists", "--stream-name", "enc")
	out, err := cli("kinesis", "start-stream-encryption", "--stream-name", "enc", "--encryption-type", "KMS", "--key-id", "alias/does-not-exist")
	if err == nil || !bytes.Contains([]byte(out), []byte("KMSNotFoundException")) {
		t.Fatalf("start-stream-encryption with a missing key: %v\n%s", err, out)
	}
	must("kinesis", "start-stream-encryption", "--stream-name", "enc", "--encryption-type", "KMS", "--key-id", "alias/aws/kinesis")
	must("kinesis", "wait", "stream-exists", "--stream-name", "enc")
	put := must("kinesis", "put-record", "--stream-name", "enc", "--partition-key", "k", "--data", base64.StdEncoding.EncodeToString([]byte("secret via the cli")))
	if put["EncryptionType"] != "KMS" {
		t.Fatalf("put-record answered %v", put)
	}
	it := must("kinesis", "get-shard-iterator", "--stream-name", "enc", "--shard-id", "shardId-000000000000", "--shard-iterator-type", "TRIM_HORIZON")
	recs := must("kinesis", "get-records", "--shard-iterator", it["ShardIterator"].(string))
	list, _ := recs["Records"].([]any)
	if len(list) != 1 {
		t.Fatalf("get-records answered %v", recs)
	}
	rec := list[0].(map[string]any)
	data, err := base64.StdEncoding.DecodeString(rec["Data"].(string))
	if err != nil || string(data) != "secret via the cli" || rec["EncryptionType"] != "KMS" {
		t.Fatalf("record %v (%v)", rec, err)
	}
}
