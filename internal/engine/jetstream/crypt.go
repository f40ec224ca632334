package jetstream

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/runnel/runnel/internal/engine"
)

// Encrypted records. A record stored under a data key (Log.SetKeys) has the
// top bit of its time field set, and its payload is
//
//	time   int64, big-endian, with bit 63 set
//	key id uint32, big-endian
//	nonce  12 bytes
//	sealed the AEAD's sealing of (klen uvarint, key, value), tag included
//
// authenticated with the additional data stream name | time field | key id,
// so a record cannot be moved to another log or given another time or key.
// Each record is sealed on its own (JetStream stores each as a message of
// its own); the nonce is a random 8-byte prefix drawn per log and process
// followed by a 4-byte counter, and a new prefix is drawn before the counter
// would wrap, so a key never sees a nonce twice.

const encryptedBit = uint64(1) << 63

// cryptLog is the encryption state of one log in this process.
type cryptLog struct {
	keys atomic.Pointer[keysBox]

	mu     sync.Mutex
	prefix [8]byte
	count  uint32
	drawn  bool
}

type keysBox struct{ k engine.Keys }

func (c *cryptLog) nonce(out []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.drawn || c.count == ^uint32(0) {
		if _, err := rand.Read(c.prefix[:]); err != nil {
			return err
		}
		c.count, c.drawn = 0, true
	}
	c.count++
	copy(out, c.prefix[:])
	binary.BigEndian.PutUint32(out[8:], c.count)
	return nil
}

// crypt returns the encryption state of the stream's log.
func (e *Engine) crypt(stream string) *cryptLog {
	v, _ := e.crypts.LoadOrStore(stream, new(cryptLog))
	return v.(*cryptLog)
}

func (l *log) SetKeys(k engine.Keys) {
	c := l.e.crypt(l.n.stream)
	if k == nil {
		c.keys.Store(nil)
		return
	}
	c.keys.Store(&keysBox{k})
}

// sealer returns the key new records of the log are sealed with, or nil.
func (l *log) sealer(ctx context.Context) (uint32, cipher.AEAD, *cryptLog, error) {
	c := l.e.crypt(l.n.stream)
	b := c.keys.Load()
	if b == nil {
		return 0, nil, c, nil
	}
	id, aead, err := b.k.SealKey(ctx)
	if err != nil {
		return 0, nil, c, fmt.Errorf("jetstream: append to %s: %w", l.name, err)
	}
	if aead != nil && (aead.NonceSize() != 12 || id == 0) {
		return 0, nil, c, fmt.Errorf("jetstream: append to %s: a key needs a 12-byte nonce and an id other than 0", l.name)
	}
	return id, aead, c, nil
}

func (l *log) additionalData(head []byte) []byte {
	ad := make([]byte, 0, len(l.n.stream)+len(head))
	ad = append(ad, l.n.stream...)
	return append(ad, head...)
}

// encryptRecord returns the payload of r sealed under aead.
func (l *log) encryptRecord(t int64, id uint32, aead cipher.AEAD, c *cryptLog, r engine.Record) ([]byte, error) {
	plain := make([]byte, 0, binary.MaxVarintLen64+len(r.Key)+len(r.Value))
	plain = binary.AppendUvarint(plain, uint64(len(r.Key)))
	plain = append(plain, r.Key...)
	plain = append(plain, r.Value...)
	b := make([]byte, 24, 24+len(plain)+aead.Overhead())
	binary.BigEndian.PutUint64(b, uint64(t)|encryptedBit)
	binary.BigEndian.PutUint32(b[8:], id)
	if err := c.nonce(b[12:24]); err != nil {
		return nil, err
	}
	return aead.Seal(b, b[12:24], plain, l.additionalData(b[:12])), nil
}

// opener opens the encrypted records of one read, asking the log's keys
// once per key id.
type opener struct {
	l     *log
	ctx   context.Context
	aeads map[uint32]cipher.AEAD
}

func (o *opener) open(offset uint64, b []byte) (engine.StoredRecord, error) {
	if len(b) < 24 {
		return engine.StoredRecord{}, fmt.Errorf("jetstream: read %s: record %d: %w", o.l.name, offset, engine.ErrDecrypt)
	}
	id := binary.BigEndian.Uint32(b[8:])
	aead, ok := o.aeads[id]
	if !ok {
		box := o.l.e.crypt(o.l.n.stream).keys.Load()
		if box == nil {
			return engine.StoredRecord{}, fmt.Errorf("jetstream: read %s: record %d: %w", o.l.name, offset, engine.ErrNoKeys)
		}
		var err error
		if aead, err = box.k.OpenKey(o.ctx, id); err != nil {
			return engine.StoredRecord{}, fmt.Errorf("jetstream: read %s: record %d: %w", o.l.name, offset, err)
		}
		if o.aeads == nil {
			o.aeads = make(map[uint32]cipher.AEAD)
		}
		o.aeads[id] = aead
	}
	plain, err := aead.Open(nil, b[12:24], b[24:], o.l.additionalData(b[:12]))
	if err != nil {
		return engine.StoredRecord{}, fmt.Errorf("jetstream: read %s: record %d: %w", o.l.name, offset, engine.ErrDecrypt)
	}
	klen, n := binary.Uvarint(plain)
	if n <= 0 || klen > uint64(len(plain)-n) {
		return engine.StoredRecord{}, fmt.Errorf("jetstream: read %s: record %d: bad key length", o.l.name, offset)
	}
	k := plain[n : n+int(klen)]
	return engine.StoredRecord{
		Offset: offset,
		Time:   int64(binary.BigEndian.Uint64(b) &^ encryptedBit),
		KeyID:  id,
		Key:    k[:len(k):len(k)],
		Value:  plain[n+int(klen):],
	}, nil
}
