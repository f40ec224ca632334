package streams

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/keystore"
)

// newKeysEnv starts a service whose key store is a key file in a temporary
// directory, returned with it.
func newKeysEnv(t *testing.T) (*env, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.json")
	ks, err := keystore.Open(keystore.Options{File: path, Region: "us-east-1", Account: "000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	return newEnv(t, func(o *Options) { o.Keys = ks }), path
}

func startEnc(e *env, name, key string) error {
	return e.svc.StartStreamEncryption(context.Background(), &StreamEncryptionInput{StreamName: sp(name), EncryptionType: sp("KMS"), KeyId: sp(key)})
}

// storedKeyIDs reads shard 0 of a stream from the engine and returns the
// data key id each record was stored under.
func (e *env) storedKeyIDs(name string) []uint32 {
	e.t.Helper()
	st, _, err := e.svc.existing(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	l, err := st.shards[0].handle(context.Background(), e.svc.eng)
	if err != nil {
		e.t.Fatal(err)
	}
	recs, err := l.Read(context.Background(), 0, 100, 1<<20)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []uint32
	for _, r := range recs {
		ids = append(ids, r.KeyID)
	}
	return ids
}

// TestEncryptionKeys: each StartStreamEncryption makes a data key for the
// stream; the engine stores the records written while it is current under
// it, and none after StopStreamEncryption.
func TestEncryptionKeys(t *testing.T) {
	e, path := newKeysEnv(t)
	e.create("s", 1)
	e.put("s", "a", "plain")
	if err := startEnc(e, "s", "alias/aws/kinesis"); err != nil {
		t.Fatal(err)
	}
	e.put("s", "a", "one")
	id, err := keystore.CreateKeyFile(path, "alias/other")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.opts.Keys.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := startEnc(e, "s", "arn:aws:kms:us-east-1:000000000000:key/"+id); err != nil {
		t.Fatal(err)
	}
	e.put("s", "a", "two")
	if err := e.svc.StopStreamEncryption(context.Background(), &StreamEncryptionInput{StreamName: sp("s"), EncryptionType: sp("KMS"), KeyId: sp("alias/other")}); err != nil {
		t.Fatal(err)
	}
	e.put("s", "a", "plain again")
	if got, want := e.storedKeyIDs("s"), []uint32{0, 1, 2, 0}; len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("stored under data keys %v, want %v", got, want)
	}
	recs := e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 0).Records
	if len(recs) != 4 || string(recs[1].Data) != "one" || string(recs[2].Data) != "two" {
		t.Fatalf("records read back: %d", len(recs))
	}
	// A restart keeps the data keys (wrapped in the stream's metadata).
	e.restart()
	recs = e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 0).Records
	if len(recs) != 4 || string(recs[2].Data) != "two" {
		t.Fatalf("records read back after a restart: %d", len(recs))
	}
}

// TestKMSErrors: KMS keys that are missing, disabled, pending deletion or
// of another account get Kinesis' KMS errors, on StartStreamEncryption and,
// once the stream is encrypted, on PutRecord, PutRecords and GetRecords.
func TestKMSErrors(t *testing.T) {
	ctx := context.Background()
	e, path := newKeysEnv(t)
	e.create("s", 1)
	wantErr(t, startEnc(e, "s", "alias/nope"), CodeKMSNotFound, "Alias arn:aws:kms:us-east-1:000000000000:alias/nope is not found.")
	wantErr(t, startEnc(e, "s", "11111111-2222-4333-8444-555555555555"), CodeKMSNotFound, "")
	wantErr(t, startEnc(e, "s", "arn:aws:kms:us-east-1:111111111111:key/11111111-2222-4333-8444-555555555555"), CodeKMSAccessDenied, "")
	if err := startEnc(e, "s", "alias/aws/kinesis"); err != nil {
		t.Fatal(err)
	}
	e.put("s", "a", "secret")
	it := e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil)

	for _, tc := range []struct {
		state string
		code  Code
	}{{keystore.StateDisabled, CodeKMSDisabled}, {keystore.StatePendingDeletion, CodeKMSInvalidState}} {
		if err := keystore.SetStateFile(path, "alias/aws/kinesis", tc.state); err != nil {
			t.Fatal(err)
		}
		if err := e.opts.Keys.Reload(); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.PutRecord(ctx, &PutRecordInput{StreamName: sp("s"), PartitionKey: sp("a"), Data: []byte("x")})
		wantErr(t, err, tc.code, "")
		_, err = e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{{PartitionKey: sp("a"), Data: []byte("x")}}})
		wantErr(t, err, tc.code, "")
		_, err = e.svc.GetRecords(ctx, &GetRecordsInput{ShardIterator: &it})
		wantErr(t, err, tc.code, "")
		wantErr(t, startEnc(e, "s", "alias/aws/kinesis"), tc.code, "")
	}
	if err := keystore.SetStateFile(path, "alias/aws/kinesis", keystore.StateEnabled); err != nil {
		t.Fatal(err)
	}
	if err := e.opts.Keys.Reload(); err != nil {
		t.Fatal(err)
	}
	recs := e.get(it, 0).Records
	if len(recs) != 1 || string(recs[0].Data) != "secret" {
		t.Fatalf("records after the key is enabled again: %v", recs)
	}
}

// TestRewrapDataKeys: after a new master key, the data keys are re-wrapped
// under it, and the records stay readable once the old one is retired.
func TestRewrapDataKeys(t *testing.T) {
	ctx := context.Background()
	e, path := newKeysEnv(t)
	e.create("s", 1)
	if err := startEnc(e, "s", "alias/aws/kinesis"); err != nil {
		t.Fatal(err)
	}
	e.put("s", "a", "secret")
	old := e.opts.Keys.CurrentMaster()
	if _, err := keystore.RotateFile(path); err != nil {
		t.Fatal(err)
	}
	if err := e.opts.Keys.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.RewrapDataKeys(ctx); err != nil {
		t.Fatal(err)
	}
	st, _, err := e.svc.existing(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	for _, dk := range st.meta.DataKeys {
		if want := "v1:" + e.opts.Keys.CurrentMaster() + ":"; len(dk.Wrapped) < len(want) || dk.Wrapped[:len(want)] != want || e.opts.Keys.CurrentMaster() == old {
			t.Fatalf("data key %d wrapped as %q after rotation", dk.ID, dk.Wrapped)
		}
	}
	if _, err := keystore.RetireFile(path); err != nil {
		t.Fatal(err)
	}
	if err := e.opts.Keys.Reload(); err != nil {
		t.Fatal(err)
	}
	e.restart() // forget the unwrapped data keys
	recs := e.get(e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil), 0).Records
	if len(recs) != 1 || string(recs[0].Data) != "secret" {
		t.Fatalf("records after rotation and retirement: %v", recs)
	}
}

// TestKeyWatcherRewraps: the service notices a rotated key file by itself
// and re-wraps the data keys.
func TestKeyWatcherRewraps(t *testing.T) {
	ctx := context.Background()
	e, path := newKeysEnv(t)
	e.create("s", 1)
	if err := startEnc(e, "s", "alias/aws/kinesis"); err != nil {
		t.Fatal(err)
	}
	id, err := keystore.RotateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _, err := e.eng.Meta().Get(ctx, metaKey("s"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := decodeMeta(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.DataKeys) == 1 && strings.HasPrefix(m.DataKeys[0].Wrapped, "v1:"+id+":") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("data key still wrapped as %q 20s after the rotation", m.DataKeys[0].Wrapped)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEncryptionAcrossReshard: the children of a split shard of an
// encrypted stream store their records under the stream's data key too.
func TestEncryptionAcrossReshard(t *testing.T) {
	ctx := context.Background()
	e, _ := newKeysEnv(t)
	e.create("s", 1)
	if err := startEnc(e, "s", "alias/aws/kinesis"); err != nil {
		t.Fatal(err)
	}
	e.split("s", 0)
	for i := range 20 {
		e.put("s", fmt.Sprint("key-", i), fmt.Sprint("after split ", i))
	}
	st, _, err := e.svc.existing(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sh := range st.shards[1:] {
		l, err := sh.handle(ctx, e.svc.eng)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := l.Read(ctx, 0, 100, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.KeyID != st.meta.DataKey || r.KeyID == 0 {
				t.Fatalf("child shard %d: record %d stored under key %d, want %d", sh.index, r.Offset, r.KeyID, st.meta.DataKey)
			}
			n++
		}
	}
	if n != 20 {
		t.Fatalf("%d records in the children, want 20", n)
	}
}
