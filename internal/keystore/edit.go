package keystore

import (
	"encoding/base64"
	"fmt"
	"strings"
	"time"
)

// Edits of a key file, for the runnel keys command. A running server sees
// them when it reads the file again (it watches it).

// RotateFile adds a fresh master key to the key file at path and makes it
// current. It returns the new key's id. Data keys wrapped by the older
// master keys stay readable; a server re-wraps them under the new one when
// it sees the change, after which RetireFile may remove the old ones.
func RotateFile(path string) (string, error) {
	fd, err := ReadFile(path)
	if err != nil {
		return "", err
	}
	k := NewMasterKey()
	id := MasterKeyID(k)
	fd.MasterKeys = append(fd.MasterKeys, MasterKeyEntry{ID: id, Key: base64.StdEncoding.EncodeToString(k), Created: time.Now().UTC().Format(time.RFC3339)})
	return id, WriteFile(path, fd)
}

// RetireFile removes every master key but the current one from the key file
// at path, and returns how many it removed. Data keys still wrapped by them
// no longer open: run it only after the server has re-wrapped them (it logs
// when it has).
func RetireFile(path string) (int, error) {
	fd, err := ReadFile(path)
	if err != nil {
		return 0, err
	}
	n := len(fd.MasterKeys) - 1
	if n <= 0 {
		return 0, nil
	}
	fd.MasterKeys = fd.MasterKeys[n:]
	return n, WriteFile(path, fd)
}

// CreateKeyFile adds a KMS key to the key file at path, with optional
// aliases, and returns its id.
func CreateKeyFile(path string, aliases ...string) (string, error) {
	fd, err := ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, a := range aliases {
		if !strings.HasPrefix(a, "alias/") || a == "alias/" {
			return "", fmt.Errorf("alias %q does not start with alias/", a)
		}
		for _, k := range fd.Keys {
			for _, b := range k.Aliases {
				if a == b {
					return "", fmt.Errorf("alias %s already names key %s", a, k.KeyID)
				}
			}
		}
	}
	id := newUUID()
	fd.Keys = append(fd.Keys, KeyEntry{KeyID: id, Aliases: aliases, State: StateEnabled, Created: time.Now().UTC().Format(time.RFC3339)})
	return id, WriteFile(path, fd)
}

// SetStateFile sets the state of the KMS key that ref names (key id, key
// ARN, alias or alias ARN) in the key file at path.
func SetStateFile(path, ref, state string) error {
	switch state {
	case StateEnabled, StateDisabled, StatePendingDeletion:
	default:
		return fmt.Errorf("state %q is not Enabled, Disabled or PendingDeletion", state)
	}
	fd, err := ReadFile(path)
	if err != nil {
		return err
	}
	name := ref
	if strings.HasPrefix(ref, "arn:") {
		if parts := strings.SplitN(ref, ":", 6); len(parts) == 6 {
			name = parts[5]
		}
	}
	name = strings.TrimPrefix(name, "key/")
	for i := range fd.Keys {
		k := &fd.Keys[i]
		match := k.KeyID == name
		for _, a := range k.Aliases {
			match = match || a == name
		}
		if match {
			k.State = state
			return WriteFile(path, fd)
		}
	}
	return fmt.Errorf("no key %s in %s", ref, path)
}
