package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/runnel/runnel/internal/engine"
)

// The engine keeps two bbolt buckets in <dir>/meta.db: the metadata store of
// engine.Meta, and the registry of logs with their settings.
var (
	metaBucket = []byte("meta")
	logsBucket = []byte("logs")
)

// logRecord is a log's entry in the registry. A log exists when, and only
// when, it has one (its directory is created before and removed after).
type logRecord struct {
	Retention time.Duration `json:"retention"`
	Sealed    bool          `json:"sealed"`
}

// ErrLocked is returned by Open when another Engine, in this process or
// another, holds the lock of the data directory (an flock on meta.db).
var ErrLocked = errors.New("disk: data directory locked by another engine")

func openBolt(path string) (*bolt.DB, error) {
	db, err := bolt.Open(path, filePerm, &bolt.Options{Timeout: time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("disk: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{metaBucket, logsBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("disk: init %s: %w", path, err)
	}
	return db, nil
}

func putLogRecord(db *bolt.DB, name string, r logRecord, mustNotExist bool) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(logsBucket)
		if mustNotExist && b.Get([]byte(name)) != nil {
			return engine.ErrLogExists
		}
		return b.Put([]byte(name), v)
	})
}

func deleteLogRecord(db *bolt.DB, name string) error {
	return db.Update(func(tx *bolt.Tx) error { return tx.Bucket(logsBucket).Delete([]byte(name)) })
}

func loadLogRecords(db *bolt.DB) (map[string]logRecord, error) {
	m := make(map[string]logRecord)
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(logsBucket).ForEach(func(k, v []byte) error {
			var r logRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("log %q: %w", k, err)
			}
			m[string(k)] = r
			return nil
		})
	})
	return m, err
}

// meta implements engine.Meta on bbolt. Values are stored as an 8-byte
// big-endian version followed by the value's bytes.
type meta struct{ e *Engine }

var _ engine.Meta = meta{}

func (m meta) begin() (func(), error) {
	if !m.e.enter() {
		return nil, engine.ErrClosed
	}
	return m.e.leave, nil
}

// Get implements engine.Meta.
func (m meta) Get(ctx context.Context, key string) ([]byte, uint64, error) {
	done, err := m.begin()
	if err != nil {
		return nil, 0, err
	}
	defer done()
	var val []byte
	var ver uint64
	err = m.e.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(metaBucket).Get([]byte(key))
		if v == nil {
			return engine.ErrKeyNotFound
		}
		ver = binary.BigEndian.Uint64(v)
		val = bytes.Clone(v[8:])
		if val == nil {
			val = []byte{}
		}
		return nil
	})
	return val, ver, err
}

// Put implements engine.Meta.
func (m meta) Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error) {
	done, err := m.begin()
	if err != nil {
		return 0, err
	}
	defer done()
	var ver uint64
	err = m.e.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(metaBucket)
		var cur uint64
		if v := b.Get([]byte(key)); v != nil {
			cur = binary.BigEndian.Uint64(v)
		}
		if cur != expect {
			return engine.ErrVersionMismatch
		}
		ver = cur + 1
		buf := make([]byte, 8+len(value))
		binary.BigEndian.PutUint64(buf, ver)
		copy(buf[8:], value)
		return b.Put([]byte(key), buf)
	})
	return ver, err
}

// Delete implements engine.Meta.
func (m meta) Delete(ctx context.Context, key string, expect uint64) error {
	done, err := m.begin()
	if err != nil {
		return err
	}
	defer done()
	return m.e.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(metaBucket)
		v := b.Get([]byte(key))
		if v == nil {
			return engine.ErrKeyNotFound
		}
		if binary.BigEndian.Uint64(v) != expect {
			return engine.ErrVersionMismatch
		}
		return b.Delete([]byte(key))
	})
}

// List implements engine.Meta.
func (m meta) List(ctx context.Context, prefix string) ([]engine.Entry, error) {
	done, err := m.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	var out []engine.Entry
	err = m.e.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(metaBucket).Cursor()
		p := []byte(prefix)
		for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			out = append(out, engine.Entry{
				Key:     string(k),
				Value:   append([]byte{}, v[8:]...),
				Version: binary.BigEndian.Uint64(v),
			})
		}
		return nil
	})
	return out, err
}
