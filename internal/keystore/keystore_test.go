package keystore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func openFile(t *testing.T, path string, env ...[]byte) *Store {
	t.Helper()
	s, err := Open(Options{File: path, MasterKeys: env, Region: "us-east-1", Account: "123456789012"})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestCreatedOnFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	s := openFile(t, path)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("key file exists before first use: %v", err)
	}
	k, err := s.Resolve(DefaultAlias)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	// A second store reads the same keys.
	k2, err := openFile(t, path).Resolve(DefaultAlias)
	if err != nil || k2 != k {
		t.Fatalf("reopened store resolves %+v, %v; want %+v", k2, err, k)
	}
}

func TestResolve(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	s := openFile(t, path)
	def, err := s.Resolve(DefaultAlias)
	if err != nil {
		t.Fatal(err)
	}
	id, err := CreateKeyFile(path, "alias/orders")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:kms:us-east-1:123456789012:key/" + id
	for _, tc := range []struct {
		name, ref, want string
		err             error
	}{
		{"default alias", "alias/aws/kinesis", def.ID, nil},
		{"default alias ARN", "arn:aws:kms:us-east-1:123456789012:alias/aws/kinesis", def.ID, nil},
		{"key id", id, id, nil},
		{"key ARN", arn, id, nil},
		{"alias", "alias/orders", id, nil},
		{"alias ARN", "arn:aws:kms:us-east-1:123456789012:alias/orders", id, nil},
		{"unknown alias", "alias/nope", "", ErrNotFound},
		{"unknown id", "11111111-2222-4333-8444-555555555555", "", ErrNotFound},
		{"not a key", "hello", "", ErrNotFound},
		{"other region", "arn:aws:kms:eu-west-1:123456789012:key/" + id, "", ErrNotFound},
		{"other account", "arn:aws:kms:us-east-1:999999999999:key/" + id, "", ErrAccessDenied},
		{"not kms", "arn:aws:s3:::bucket", "", ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := s.Resolve(tc.ref)
			if tc.err != nil {
				var ke *Error
				if !errors.Is(err, tc.err) || !errors.As(err, &ke) || ke.Message == "" {
					t.Fatalf("Resolve(%q) = %+v, %v; want %v with a message", tc.ref, k, err, tc.err)
				}
				return
			}
			if err != nil || k.ID != tc.want || k.ARN != "arn:aws:kms:us-east-1:123456789012:key/"+tc.want {
				t.Fatalf("Resolve(%q) = %+v, %v; want key %s", tc.ref, k, err, tc.want)
			}
		})
	}
}

func TestStatesAndWrapping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	s := openFile(t, path)
	k, err := s.Resolve(DefaultAlias)
	if err != nil {
		t.Fatal(err)
	}
	dk, wrapped, err := s.GenerateDataKey(k.ARN)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(wrapped, string(dk)) || len(dk) != 32 {
		t.Fatalf("bad data key / wrapping")
	}
	got, err := s.Decrypt(k.ARN, wrapped)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("Decrypt = %x, %v; want %x", got, err, dk)
	}
	// Bound to its KMS key.
	other, _ := CreateKeyFile(path)
	s.Reload()
	if _, err := s.Decrypt(s.KeyARN(other), wrapped); err == nil {
		t.Fatalf("a data key opened under another KMS key")
	}
	for _, tc := range []struct {
		state string
		err   error
	}{{StateDisabled, ErrDisabled}, {StatePendingDeletion, ErrInvalidState}, {StateEnabled, nil}} {
		if err := SetStateFile(path, DefaultAlias, tc.state); err != nil {
			t.Fatal(err)
		}
		if err := s.Reload(); err != nil {
			t.Fatal(err)
		}
		_, derr := s.Decrypt(k.ARN, wrapped)
		_, _, gerr := s.GenerateDataKey(k.ARN)
		if !errors.Is(derr, tc.err) || !errors.Is(gerr, tc.err) || !errors.Is(s.Check(k.ARN), tc.err) {
			t.Fatalf("state %s: Decrypt %v, GenerateDataKey %v; want %v", tc.state, derr, gerr, tc.err)
		}
	}
}

func TestRotateAndRewrap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	s := openFile(t, path)
	k, _ := s.Resolve(DefaultAlias)
	dk, wrapped, err := s.GenerateDataKey(k.ARN)
	if err != nil {
		t.Fatal(err)
	}
	old := s.CurrentMaster()
	newID, err := RotateFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Changed() {
		t.Fatal("Changed() false after the file changed")
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if s.CurrentMaster() != newID || newID == old {
		t.Fatalf("current master %s, want the new %s", s.CurrentMaster(), newID)
	}
	if got, err := s.Decrypt(k.ARN, wrapped); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("old wrapping after rotation: %v", err)
	}
	rewrapped, changed, err := s.Rewrap(k.ARN, wrapped)
	if err != nil || !changed || !strings.Contains(rewrapped, newID) {
		t.Fatalf("Rewrap = %q, %v, %v", rewrapped, changed, err)
	}
	if _, changed, _ := s.Rewrap(k.ARN, rewrapped); changed {
		t.Fatal("Rewrap changed a key already under the current master key")
	}
	if n, err := RetireFile(path); err != nil || n != 1 {
		t.Fatalf("RetireFile = %d, %v", n, err)
	}
	s.Reload()
	if _, err := s.Decrypt(k.ARN, wrapped); !errors.Is(err, ErrInvalidState) {
		t.Fatalf("old wrapping after retiring its master key: %v, want ErrInvalidState", err)
	}
	if got, err := s.Decrypt(k.ARN, rewrapped); err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("new wrapping after retiring: %v", err)
	}
}

func TestMasterKeyFromEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	env := NewMasterKey()
	s := openFile(t, path, env)
	k, err := s.Resolve(DefaultAlias)
	if err != nil {
		t.Fatal(err)
	}
	_, wrapped, err := s.GenerateDataKey(k.ARN)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := ReadFile(path)
	if err != nil || len(fd.MasterKeys) != 0 {
		t.Fatalf("key file holds %d master keys with one in the environment (%v)", len(fd.MasterKeys), err)
	}
	if !strings.Contains(wrapped, MasterKeyID(env)) {
		t.Fatalf("data key not wrapped by the environment's master key")
	}
	// Without it, the file's keys cannot be used.
	if _, err := Open(Options{File: path, Region: "us-east-1", Account: "123456789012"}); err == nil {
		t.Fatalf("a store opened without any master key")
	}
	// Rotation through the environment: new key first, old one after.
	s2 := openFile(t, path, NewMasterKey(), env)
	if _, err := s2.Decrypt(k.ARN, wrapped); err != nil {
		t.Fatalf("old data key under the previous environment key: %v", err)
	}
	keys, err := ParseMasterKeys("  ,")
	if err != nil || len(keys) != 0 {
		t.Fatalf("ParseMasterKeys of nothing = %v, %v", keys, err)
	}
	if _, err := ParseMasterKeys("c2hvcnQ="); err == nil {
		t.Fatalf("a short master key was accepted")
	}
}
