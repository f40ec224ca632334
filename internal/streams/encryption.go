package streams

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/keystore"
)

// Encryption at rest. StartStreamEncryption resolves the KMS key in the key
// store (Options.Keys) and makes a data key for the stream, which the
// stream's metadata keeps only wrapped (dataKeyMeta); when the stream
// leaves UPDATING that data key becomes current, and every batch appended
// to the stream's shards from then on is encrypted by the engine
// (engine.Keys) under a key derived from it for each shard log.
// StopStreamEncryption makes no data key current; the old ones stay in the
// metadata so that records written under them stay readable. Each
// StartStreamEncryption makes a new data key.

// KMS error types.
const (
	CodeKMSAccessDenied Code = "KMSAccessDeniedException"
	CodeKMSDisabled     Code = "KMSDisabledException"
	CodeKMSInvalidState Code = "KMSInvalidStateException"
	CodeKMSNotFound     Code = "KMSNotFoundException"
)

// dataKeyMeta is one data key of a stream, as its metadata stores it.
type dataKeyMeta struct {
	// ID names the key in the engine's encrypted frames; 1, 2, ... per
	// stream.
	ID uint32 `json:"id"`
	// KMSKey is the ARN of the KMS key that wraps it.
	KMSKey string `json:"kmsKey"`
	// Wrapped is the data key wrapped by the key store's master key.
	Wrapped string `json:"wrapped"`
	Created int64  `json:"created"` // Unix ms
}

// kmsError maps a key store error to the Kinesis error; ok is false for
// other errors.
func kmsError(err error) (*Error, bool) {
	var ke *keystore.Error
	if !errors.As(err, &ke) {
		return nil, false
	}
	code := CodeKMSInvalidState
	switch {
	case errors.Is(ke, keystore.ErrNotFound):
		code = CodeKMSNotFound
	case errors.Is(ke, keystore.ErrDisabled):
		code = CodeKMSDisabled
	case errors.Is(ke, keystore.ErrAccessDenied):
		code = CodeKMSAccessDenied
	}
	return &Error{Code: code, Message: ke.Message}, true
}

// keyState is a snapshot of a stream's data keys.
type keyState struct {
	current uint32 // 0: new batches in plain text
	keys    map[uint32]dataKeyMeta
}

// streamKeys holds the data keys of one creation of a stream, shared by
// its successive cache entries (like autoNext).
type streamKeys struct {
	store *keystore.Store
	state atomic.Pointer[keyState]

	mu    sync.Mutex
	plain map[uint32][]byte // unwrapped data keys
}

func newStreamKeys(store *keystore.Store) *streamKeys {
	k := &streamKeys{store: store, plain: make(map[uint32][]byte)}
	k.state.Store(&keyState{})
	return k
}

// update installs the data keys of m.
func (k *streamKeys) update(m *streamMeta) {
	st := &keyState{current: m.DataKey, keys: make(map[uint32]dataKeyMeta, len(m.DataKeys))}
	for _, dk := range m.DataKeys {
		st.keys[dk.ID] = dk
	}
	k.state.Store(st)
}

// dataKey returns the plain data key id, after checking that its KMS key
// can be used now.
func (k *streamKeys) dataKey(id uint32) ([]byte, error) {
	dk, ok := k.state.Load().keys[id]
	if !ok {
		return nil, fmt.Errorf("streams: no data key %d in the stream's metadata", id)
	}
	if k.store == nil {
		return nil, errors.New("streams: encrypted records and no key store")
	}
	if err := k.store.Check(dk.KMSKey); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if p, ok := k.plain[id]; ok {
		return p, nil
	}
	p, err := k.store.Decrypt(dk.KMSKey, dk.Wrapped)
	if err != nil {
		return nil, err
	}
	k.plain[id] = p
	return p, nil
}

// shardKeys is the engine.Keys of one shard's log: the stream's data keys,
// each turned into a key for this log alone (HKDF-SHA256 with the log's
// name), so that the engine's per-log nonces never meet across shards.
type shardKeys struct {
	stream  *streamKeys
	logName string

	mu    sync.Mutex
	aeads map[uint32]cipher.AEAD
}

var _ engine.Keys = (*shardKeys)(nil)

// sealChoice carries, in an append's context, the data key the stream
// snapshot that routed the records chose (0: plain text), so that the
// engine encrypts exactly the records flagged as encrypted.
type sealChoiceKey struct{}

func withSealKey(ctx context.Context, id uint32) context.Context {
	return context.WithValue(ctx, sealChoiceKey{}, id)
}

// SealKey implements engine.Keys.
func (k *shardKeys) SealKey(ctx context.Context) (uint32, cipher.AEAD, error) {
	id, ok := ctx.Value(sealChoiceKey{}).(uint32)
	if !ok {
		id = k.stream.state.Load().current
	}
	if id == 0 {
		return 0, nil, nil
	}
	a, err := k.OpenKey(ctx, id)
	return id, a, err
}

// OpenKey implements engine.Keys.
func (k *shardKeys) OpenKey(ctx context.Context, id uint32) (cipher.AEAD, error) {
	dk, err := k.stream.dataKey(id) // checks the KMS key every time
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if a, ok := k.aeads[id]; ok {
		return a, nil
	}
	lk, err := hkdf.Key(sha256.New, dk, nil, "runnel log key\x00"+k.logName, 32)
	if err != nil {
		return nil, err
	}
	b, err := aes.NewCipher(lk)
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	if k.aeads == nil {
		k.aeads = make(map[uint32]cipher.AEAD)
	}
	k.aeads[id] = a
	return a, nil
}

// checkKMS returns the KMS error that writing to an encrypted stream gets
// when its key cannot be used now, nil otherwise.
func (s *Service) checkKMS(m *streamMeta) error {
	if m.DataKey == 0 || s.opts.Keys == nil {
		return nil
	}
	for _, dk := range m.DataKeys {
		if dk.ID == m.DataKey {
			if err := s.opts.Keys.Check(dk.KMSKey); err != nil {
				if e, ok := kmsError(err); ok {
					return e
				}
				return err
			}
		}
	}
	return nil
}

// newDataKey resolves the KMS key a StartStreamEncryption names and makes a
// data key under it.
func (s *Service) newDataKey(keyID string) (*dataKeyMeta, error) {
	if s.opts.Keys == nil {
		return nil, errorf(CodeKMSInvalidState, "The request was rejected because the state of the specified resource isn't valid for this request. (No key store is configured.)")
	}
	k, err := s.opts.Keys.Resolve(keyID)
	if err == nil {
		err = s.opts.Keys.Check(k.ARN)
	}
	var wrapped string
	if err == nil {
		_, wrapped, err = s.opts.Keys.GenerateDataKey(k.ARN)
	}
	if err != nil {
		if e, ok := kmsError(err); ok {
			return nil, e
		}
		return nil, err
	}
	return &dataKeyMeta{KMSKey: k.ARN, Wrapped: wrapped, Created: s.nowMs()}, nil
}

// errNoChange ends an update that has nothing to change.
var errNoChange = errors.New("streams: no change")

// nextDataKeyID returns the id for a new data key of m.
func nextDataKeyID(m *streamMeta) uint32 {
	var id uint32
	for _, dk := range m.DataKeys {
		id = max(id, dk.ID)
	}
	return id + 1
}

// keyWatchInterval is how often the service looks for changes of the key
// file.
const keyWatchInterval = time.Second

// keyWatcher reloads the key file when it changes and re-wraps the streams'
// data keys under the current master key (rotation).
func (s *Service) keyWatcher() {
	defer s.wg.Done()
	t := time.NewTicker(keyWatchInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if !s.opts.Keys.Changed() {
			continue
		}
		if err := s.opts.Keys.Reload(); err != nil {
			s.logger().Error("streams: key file not reloaded; the keys read before stay in use", "err", err)
			continue
		}
		s.logger().Info("streams: key file reloaded", "master_key", s.opts.Keys.CurrentMaster())
		if err := s.RewrapDataKeys(s.ctx); err != nil {
			s.logger().Error("streams: data keys not re-wrapped", "err", err)
		}
	}
}

// RewrapDataKeys re-wraps every stream's data keys that the current master
// key did not wrap (after a rotation), one compare-and-set per stream. It
// logs how many it re-wrapped; after it, older master keys can be retired.
func (s *Service) RewrapDataKeys(ctx context.Context) error {
	if s.opts.Keys == nil {
		return nil
	}
	entries, err := s.eng.Meta().List(ctx, metaPrefix)
	if err != nil {
		return err
	}
	total := 0
	for _, e := range entries {
		name := e.Key[len(metaPrefix):]
		n := 0
		_, err := s.update(ctx, name, func(m *streamMeta, now int64) error {
			n = 0
			for i := range m.DataKeys {
				dk := &m.DataKeys[i]
				w, changed, err := s.opts.Keys.Rewrap(dk.KMSKey, dk.Wrapped)
				if err != nil {
					return fmt.Errorf("re-wrap data key %d of stream %s: %w", dk.ID, name, err)
				}
				if changed {
					dk.Wrapped = w
					n++
				}
			}
			if p := m.Pending; p != nil && p.Encryption != nil && p.Encryption.DataKey != nil {
				dk := p.Encryption.DataKey
				w, changed, err := s.opts.Keys.Rewrap(dk.KMSKey, dk.Wrapped)
				if err != nil {
					return fmt.Errorf("re-wrap pending data key of stream %s: %w", name, err)
				}
				if changed {
					dk.Wrapped = w
					n++
				}
			}
			if n == 0 {
				return errNoChange
			}
			return nil
		})
		if errors.Is(err, errNoChange) {
			continue
		}
		if err != nil {
			var ke *Error
			if errors.As(err, &ke) && ke.Code == CodeResourceNotFound {
				continue // deleted meanwhile
			}
			return err
		}
		total += n
	}
	if total > 0 {
		s.logger().Info("streams: data keys re-wrapped under the current master key; older master keys can be retired (runnel keys retire)",
			"data_keys", total, "master_key", s.opts.Keys.CurrentMaster())
	}
	return nil
}
