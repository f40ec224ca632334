package keystore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Errors, one per KMS error the service reports; a returned error wraps one
// of them in an *Error that carries the message.
var (
	// ErrNotFound: no KMS key has the id, ARN or alias given.
	ErrNotFound = errors.New("keystore: key not found")
	// ErrDisabled: the KMS key exists but is Disabled.
	ErrDisabled = errors.New("keystore: key disabled")
	// ErrInvalidState: the KMS key is pending deletion (or the store has no
	// master key that can open a wrapped data key).
	ErrInvalidState = errors.New("keystore: key in an invalid state")
	// ErrAccessDenied: the ARN names a key of another account.
	ErrAccessDenied = errors.New("keystore: access to key denied")
)

// Error is a key store error with the message a client should see.
type Error struct {
	Kind    error // one of the Err* sentinels
	Message string
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Message }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// Key states, as KMS names them.
const (
	StateEnabled         = "Enabled"
	StateDisabled        = "Disabled"
	StatePendingDeletion = "PendingDeletion"
)

// DefaultAlias names the default key for Kinesis, created with the file.
const DefaultAlias = "alias/aws/kinesis"

// Key describes one KMS key.
type Key struct {
	ID    string // UUID
	ARN   string
	State string
}

// Options configure a Store.
type Options struct {
	// File is the key file. Empty: keys live in memory only (a fresh master
	// key and default key each time the process starts), which suits the
	// memory engine and nothing that must survive a restart.
	File string
	// MasterKeys, from the environment, override the file's: the first is
	// current (wraps new data keys), the others open older wrapped keys.
	// Each is 32 bytes.
	MasterKeys [][]byte
	// Region and Account make the keys' ARNs.
	Region  string
	Account string
	// Now is the clock for creation times (nil: time.Now).
	Now func() time.Time
}

// Validate checks the options.
func (o Options) Validate() error {
	for i, k := range o.MasterKeys {
		if len(k) != 32 {
			return fmt.Errorf("keystore: master key %d has %d bytes, want 32", i+1, len(k))
		}
	}
	if o.Region == "" || o.Account == "" {
		return errors.New("keystore: region and account are required")
	}
	return nil
}

// File is the key file's content.
type File struct {
	MasterKeys []MasterKeyEntry `json:"masterKeys,omitempty"`
	Keys       []KeyEntry       `json:"keys"`
}

// MasterKeyEntry is one master key of the key file.
type MasterKeyEntry struct {
	ID      string `json:"id"`
	Key     string `json:"key"`
	Created string `json:"created,omitempty"`
}

// KeyEntry is one KMS key of the key file.
type KeyEntry struct {
	KeyID   string   `json:"keyId"`
	Aliases []string `json:"aliases,omitempty"`
	State   string   `json:"state"`
	Created string   `json:"created,omitempty"`
}

// master is a decoded master key.
type master struct {
	id   string
	aead cipher.AEAD
}

// Store is the key store. It is safe for concurrent use.
type Store struct {
	opts Options

	mu struct {
		sync.RWMutex
		loaded  bool
		masters []master // current last
		keys    map[string]*KeyEntry
		aliases map[string]string // alias name -> key id
		mtime   time.Time
		size    int64
	}
}

// Open returns a store. It reads the key file if it exists (and fails if it
// is unreadable or invalid); a missing file is created on first use.
func Open(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Store{opts: opts}
	if opts.File == "" {
		if err := s.createLocked(); err != nil { // in memory: nothing to write
			return nil, err
		}
		return s, nil
	}
	if err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// DefaultFile is the key file of a data directory when none is named:
// beside the directory, never inside it, so that a copy of the data
// directory does not carry the key.
func DefaultFile(dataDir string) string { return filepath.Clean(dataDir) + ".keys" }

// MasterKeyID returns the id of a master key.
func MasterKeyID(key []byte) string {
	h := sha256.Sum256(append([]byte("runnel master key\x00"), key...))
	return hex.EncodeToString(h[:8])
}

// NewMasterKey returns 32 random bytes.
func NewMasterKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// ParseMasterKeys decodes a comma-separated list of base64 master keys (the
// RUNNEL_MASTER_KEY environment variable).
func ParseMasterKeys(s string) ([][]byte, error) {
	var out [][]byte
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(part)
		if err != nil || len(k) != 32 {
			return nil, fmt.Errorf("master key %d is not the base64 of 32 bytes (make one with: head -c 32 /dev/urandom | base64)", i+1)
		}
		out = append(out, k)
	}
	return out, nil
}

func newMaster(key []byte) (master, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return master{}, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return master{}, err
	}
	return master{id: MasterKeyID(key), aead: a}, nil
}

// Reload reads the key file again (a missing file is fine: it is created on
// first use). Key states and new keys take effect at once.
func (s *Store) Reload() error {
	if s.opts.File == "" {
		return nil
	}
	fi, err := os.Stat(s.opts.File)
	if errors.Is(err, os.ErrNotExist) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.mu.loaded = false
		return s.applyLocked(&File{}, time.Time{}, 0)
	}
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	b, err := os.ReadFile(s.opts.File)
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	var fd File
	if err := json.Unmarshal(b, &fd); err != nil {
		return fmt.Errorf("keystore: key file %s is not valid JSON: %w", s.opts.File, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.applyLocked(&fd, fi.ModTime(), fi.Size()); err != nil {
		return fmt.Errorf("keystore: key file %s: %w", s.opts.File, err)
	}
	s.mu.loaded = true
	return nil
}

// Changed reports whether the key file changed since it was last read
// (cheap: one stat), for a caller that polls.
func (s *Store) Changed() bool {
	if s.opts.File == "" {
		return false
	}
	fi, err := os.Stat(s.opts.File)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err != nil {
		return s.mu.loaded
	}
	return !fi.ModTime().Equal(s.mu.mtime) || fi.Size() != s.mu.size
}

// applyLocked installs fd's keys.
func (s *Store) applyLocked(fd *File, mtime time.Time, size int64) error {
	var masters []master
	for i, fm := range fd.MasterKeys {
		k, err := base64.StdEncoding.DecodeString(fm.Key)
		if err != nil || len(k) != 32 {
			return fmt.Errorf("master key %d is not the base64 of 32 bytes", i+1)
		}
		m, err := newMaster(k)
		if err != nil {
			return err
		}
		if fm.ID != "" && fm.ID != m.id {
			return fmt.Errorf("master key %d has id %s, but its bytes give %s", i+1, fm.ID, m.id)
		}
		masters = append(masters, m)
	}
	// Keys from the environment: the first is current, so it goes last.
	for i := len(s.opts.MasterKeys) - 1; i >= 0; i-- {
		m, err := newMaster(s.opts.MasterKeys[i])
		if err != nil {
			return err
		}
		masters = append(masters, m)
	}
	if len(masters) == 0 && len(fd.Keys) > 0 {
		return errors.New("no master key: the file lists keys but holds no master key; set RUNNEL_MASTER_KEY or restore the file's masterKeys")
	}
	keys := make(map[string]*KeyEntry, len(fd.Keys))
	aliases := make(map[string]string)
	for i := range fd.Keys {
		k := &fd.Keys[i]
		if !validUUID(k.KeyID) {
			return fmt.Errorf("key %d: keyId %q is not a UUID", i+1, k.KeyID)
		}
		switch k.State {
		case StateEnabled, StateDisabled, StatePendingDeletion:
		case "":
			k.State = StateEnabled
		default:
			return fmt.Errorf("key %s: state %q is not Enabled, Disabled or PendingDeletion", k.KeyID, k.State)
		}
		keys[k.KeyID] = k
		for _, a := range k.Aliases {
			if !strings.HasPrefix(a, "alias/") || len(a) <= len("alias/") {
				return fmt.Errorf("key %s: alias %q does not start with alias/", k.KeyID, a)
			}
			if other, ok := aliases[a]; ok && other != k.KeyID {
				return fmt.Errorf("alias %s names two keys, %s and %s", a, other, k.KeyID)
			}
			aliases[a] = k.KeyID
		}
	}
	s.mu.masters, s.mu.keys, s.mu.aliases = masters, keys, aliases
	s.mu.mtime, s.mu.size = mtime, size
	return nil
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ensureLocked creates the key file's content on first use: a master key
// (unless the environment gives one) and the default key.
func (s *Store) ensureLocked() error {
	if len(s.mu.keys) > 0 {
		return nil
	}
	return s.createLocked()
}

func (s *Store) createLocked() error {
	now := s.opts.Now().UTC().Format(time.RFC3339)
	fd := &File{Keys: []KeyEntry{{KeyID: newUUID(), Aliases: []string{DefaultAlias}, State: StateEnabled, Created: now}}}
	if len(s.opts.MasterKeys) == 0 {
		k := NewMasterKey()
		fd.MasterKeys = []MasterKeyEntry{{ID: MasterKeyID(k), Key: base64.StdEncoding.EncodeToString(k), Created: now}}
	}
	if s.opts.File != "" {
		if old, err := ReadFile(s.opts.File); err == nil {
			// A file with no keys (or made since the last reload): keep
			// what it holds, add what is missing.
			if len(old.MasterKeys) > 0 || len(s.opts.MasterKeys) > 0 {
				fd.MasterKeys = old.MasterKeys
			} else {
				fd.MasterKeys = append(old.MasterKeys, fd.MasterKeys...)
			}
			if len(old.Keys) > 0 {
				fd.Keys = old.Keys
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keystore: %w", err)
		}
		if err := WriteFile(s.opts.File, fd); err != nil {
			return err
		}
		fi, err := os.Stat(s.opts.File)
		if err != nil {
			return fmt.Errorf("keystore: %w", err)
		}
		if err := s.applyLocked(fd, fi.ModTime(), fi.Size()); err != nil {
			return err
		}
		s.mu.loaded = true
		return nil
	}
	return s.applyLocked(fd, time.Time{}, 0)
}

// ReadFile reads a key file (for tools that edit it).
func ReadFile(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var fd File
	if err := json.Unmarshal(b, &fd); err != nil {
		return nil, fmt.Errorf("key file %s is not valid JSON: %w", path, err)
	}
	return &fd, nil
}

// WriteFile writes a key file whole, mode 0600: a temporary file in the
// same directory, fsynced, then renamed over the old one.
func WriteFile(path string, fd *File) error {
	b, err := json.MarshalIndent(fd, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	f, err := os.CreateTemp(dir, ".keys-*.tmp")
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("keystore: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("keystore: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keystore: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// arnPrefix is "arn:aws:kms:<region>:<account>:".
func (s *Store) arnPrefix() string {
	return "arn:aws:kms:" + s.opts.Region + ":" + s.opts.Account + ":"
}

// KeyARN returns the ARN of key id.
func (s *Store) KeyARN(id string) string { return s.arnPrefix() + "key/" + id }

func notFound(format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Message: fmt.Sprintf(format, args...)}
}

// Resolve finds the KMS key that id names: a key id, a key ARN, an alias
// name or an alias ARN. It creates the key file on first use. It does not
// check the key's state (see Check).
func (s *Store) Resolve(id string) (Key, error) {
	s.mu.RLock()
	ready := len(s.mu.keys) > 0
	s.mu.RUnlock()
	if !ready {
		s.mu.Lock()
		err := s.ensureLocked()
		s.mu.Unlock()
		if err != nil {
			return Key{}, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	name := id
	if strings.HasPrefix(id, "arn:") {
		parts := strings.SplitN(id, ":", 6)
		if len(parts) != 6 || parts[2] != "kms" {
			return Key{}, notFound("Invalid keyId %s", id)
		}
		if parts[4] != s.opts.Account {
			return Key{}, &Error{Kind: ErrAccessDenied, Message: fmt.Sprintf("The ciphertext references a key that doesn't exist or that you don't have access to. (KMS key %s belongs to another account.)", id)}
		}
		if parts[3] != s.opts.Region {
			return Key{}, notFound("Key '%s' does not exist", id)
		}
		name = parts[5]
	}
	var keyID string
	switch {
	case strings.HasPrefix(name, "alias/"):
		k, ok := s.mu.aliases[name]
		if !ok {
			return Key{}, notFound("Alias %s%s is not found.", s.arnPrefix(), name)
		}
		keyID = k
	case strings.HasPrefix(name, "key/"):
		keyID = strings.TrimPrefix(name, "key/")
	case strings.HasPrefix(id, "arn:"):
		return Key{}, notFound("Invalid keyId %s", id)
	default:
		keyID = name
	}
	k, ok := s.mu.keys[keyID]
	if !ok {
		return Key{}, notFound("Key '%s' does not exist", s.KeyARN(keyID))
	}
	return Key{ID: k.KeyID, ARN: s.KeyARN(k.KeyID), State: k.State}, nil
}

// Check reports whether the key of arn can be used now.
func (s *Store) Check(arn string) error {
	id := strings.TrimPrefix(arn, s.arnPrefix()+"key/")
	s.mu.RLock()
	k, ok := s.mu.keys[id]
	var state string
	if ok {
		state = k.State
	}
	s.mu.RUnlock()
	return stateErr(arn, ok, state)
}

func stateErr(arn string, ok bool, state string) error {
	switch {
	case !ok:
		return notFound("Key '%s' does not exist", arn)
	case state == StateDisabled:
		return &Error{Kind: ErrDisabled, Message: fmt.Sprintf("The request was rejected because the specified customer master key (CMK) isn't enabled. (%s is disabled.)", arn)}
	case state == StatePendingDeletion:
		return &Error{Kind: ErrInvalidState, Message: fmt.Sprintf("The request was rejected because the state of the specified resource isn't valid for this request. (%s is pending deletion.)", arn)}
	}
	return nil
}

// GenerateDataKey returns a fresh 32-byte data key for the KMS key arn,
// in plain text and wrapped. The key must be usable.
func (s *Store) GenerateDataKey(arn string) ([]byte, string, error) {
	if err := s.Check(arn); err != nil {
		return nil, "", err
	}
	dk := make([]byte, 32)
	rand.Read(dk)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.mu.masters) == 0 {
		return nil, "", &Error{Kind: ErrInvalidState, Message: "The key store has no master key."}
	}
	w := wrap(s.mu.masters[len(s.mu.masters)-1], arn, dk)
	return dk, w, nil
}

func wrapAAD(arn string) []byte { return append([]byte("runnel data key\x00"), arn...) }

func wrap(m master, arn string, dk []byte) string {
	nonce := make([]byte, 12, 12+len(dk)+16)
	rand.Read(nonce)
	sealed := m.aead.Seal(nonce, nonce, dk, wrapAAD(arn))
	return "v1:" + m.id + ":" + base64.StdEncoding.EncodeToString(sealed)
}

// Decrypt unwraps a data key wrapped for the KMS key arn. The key must be
// usable.
func (s *Store) Decrypt(arn, wrapped string) ([]byte, error) {
	if err := s.Check(arn); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.unwrapLocked(arn, wrapped)
}

func (s *Store) unwrapLocked(arn, wrapped string) ([]byte, error) {
	parts := strings.SplitN(wrapped, ":", 3)
	if len(parts) != 3 || parts[0] != "v1" {
		return nil, errors.New("keystore: malformed wrapped data key")
	}
	for _, m := range s.mu.masters {
		if m.id != parts[1] {
			continue
		}
		b, err := base64.StdEncoding.DecodeString(parts[2])
		if err != nil || len(b) < 12+16 {
			return nil, errors.New("keystore: malformed wrapped data key")
		}
		dk, err := m.aead.Open(nil, b[:12], b[12:], wrapAAD(arn))
		if err != nil {
			return nil, fmt.Errorf("keystore: wrapped data key for %s does not open under master key %s", arn, m.id)
		}
		return dk, nil
	}
	return nil, &Error{Kind: ErrInvalidState, Message: fmt.Sprintf("The request was rejected because the state of the specified resource isn't valid for this request. (The data key was wrapped by master key %s, which the key store does not hold.)", parts[1])}
}

// Rewrap returns wrapped re-wrapped under the current master key, and
// whether that changed it. It works whatever the KMS key's state (rotation
// must not wait for a disabled key to come back).
func (s *Store) Rewrap(arn, wrapped string) (string, bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.mu.masters) == 0 {
		return wrapped, false, nil
	}
	cur := s.mu.masters[len(s.mu.masters)-1]
	if strings.HasPrefix(wrapped, "v1:"+cur.id+":") {
		return wrapped, false, nil
	}
	dk, err := s.unwrapLocked(arn, wrapped)
	if err != nil {
		return wrapped, false, err
	}
	return wrap(cur, arn, dk), true, nil
}

// CurrentMaster returns the id of the master key that wraps new data keys
// ("" before first use).
func (s *Store) CurrentMaster() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if len(s.mu.masters) == 0 {
		return ""
	}
	return s.mu.masters[len(s.mu.masters)-1].id
}
