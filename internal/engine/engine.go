// Package engine defines the storage contract that the Kinesis service layer
// stands on: ordered, durable shard logs and a small versioned metadata store.
//
// The contract knows nothing about Kinesis beyond records. Every
// implementation (the embedded disk engine, later the NATS JetStream engine)
// passes the same conformance suite in package enginetest.
//
// Positions ("offsets") are dense per log: the first record ever appended to a
// log has offset 0, the next 1, and so on. Trimming removes a prefix of the log
// but never renumbers what remains.
//
// Holes. An implementation whose storage can be damaged (a disk's flipped
// bits, a truncated file) may lose records that it had acknowledged. The
// records lost form holes: offsets that Read skips, as it skips the records
// trimmed below the horizon. Nothing is renumbered: the records after a hole
// keep their offsets, so the offsets a Read returns jump across it. An
// implementation reports the records it loses (in its log, with their
// offsets) and never returns a damaged record. The memory engine cannot lose
// records and has no holes.
package engine

import (
	"context"
	"crypto/cipher"
	"errors"
	"regexp"
	"time"
)

// Errors shared by every implementation. Implementations wrap them with
// context; callers test with errors.Is.
var (
	// ErrLogNotFound is returned for operations on a log that does not exist.
	ErrLogNotFound = errors.New("engine: log not found")
	// ErrLogExists is returned by CreateLog when the name is taken.
	ErrLogExists = errors.New("engine: log already exists")
	// ErrSealed is returned by Append on a sealed log.
	ErrSealed = errors.New("engine: log sealed")
	// ErrClosed is returned after the engine (or a log handle) is closed, or
	// the log was deleted while a call was waiting on it.
	ErrClosed = errors.New("engine: closed")
	// ErrKeyNotFound is returned by Meta.Get for a missing key.
	ErrKeyNotFound = errors.New("engine: key not found")
	// ErrVersionMismatch is returned by a compare-and-set whose expected
	// version is not the stored one.
	ErrVersionMismatch = errors.New("engine: version mismatch")
	// ErrInvalidName is returned for log names that do not match LogNamePattern.
	ErrInvalidName = errors.New("engine: invalid log name")
	// ErrTooLarge is returned when a batch or record exceeds the engine's
	// limits (see Limits).
	ErrTooLarge = errors.New("engine: batch too large")
	// ErrNoKeys is returned by Read for an encrypted batch of a log that has
	// no Keys (see Log.SetKeys).
	ErrNoKeys = errors.New("engine: encrypted records and no keys to read them")
	// ErrDecrypt is returned by Read for an encrypted batch that the key its
	// Keys returned does not authenticate: the wrong key, or bytes changed on
	// purpose (accidental damage fails the checksum first and makes a hole).
	ErrDecrypt = errors.New("engine: encrypted records fail authentication")
)

// LogNamePattern is the set of valid log names. Names are chosen by the
// service layer (for example "<stream-id>.<shard-index>") and are safe to use
// as file or subject names.
var LogNamePattern = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,200}$`)

// ValidLogName reports whether name may name a log.
func ValidLogName(name string) bool {
	return LogNamePattern.MatchString(name) && name != "." && name != ".."
}

// Limits every implementation accepts at least.
const (
	// MaxBatchRecords is the largest number of records in one Append.
	MaxBatchRecords = 10000
	// MaxBatchBytes is the largest sum of key and value sizes in one Append.
	MaxBatchBytes = 64 << 20
)

// Record is one record to append. The engine treats Key and Value as opaque
// bytes. The engine does not retain the slices after Append returns.
type Record struct {
	Key   []byte
	Value []byte
}

// StoredRecord is a record read back from a log. Key and Value are
// read-only: they may share memory with the engine's caches and with other
// readers, so the caller must not modify them (the engine never does while
// they are the caller's).
type StoredRecord struct {
	// Offset is the record's position in its log.
	Offset uint64
	// Time is the arrival time the engine assigned to the record's batch, in
	// Unix milliseconds. Times never decrease along a log.
	Time int64
	// KeyID is the id of the data key the record's batch was stored
	// encrypted with (see Keys), 0 for a batch stored in plain text.
	KeyID uint32
	Key   []byte
	Value []byte
}

// Keys supplies the data keys a log encrypts its batches with (encryption
// at rest). The engine encrypts each appended batch whole with the AEAD that
// SealKey returns, authenticating the batch's offsets, time and count with
// it, and stores the key's id next to it; Read asks OpenKey for the AEAD of
// that id. Implementations are safe for concurrent use and fast: both are
// called on every Append and on every Read of an encrypted batch.
//
// The AEAD must be AES-256-GCM or another AEAD with a 12-byte nonce and a
// 16-byte tag. The engine makes nonces unique within one log only (a random
// prefix drawn when the log is opened and after a failed append, then the
// batch's first offset), so an AEAD must not be shared between logs: derive
// a key per log.
type Keys interface {
	// SealKey returns the key new batches are encrypted with and its id
	// (not 0), or a nil AEAD to store them in plain text. An error fails
	// the Append with it (wrapped) before anything is stored.
	SealKey(ctx context.Context) (id uint32, aead cipher.AEAD, err error)
	// OpenKey returns the key of id, which SealKey once returned. An error
	// fails the Read with it (wrapped).
	OpenKey(ctx context.Context, id uint32) (cipher.AEAD, error)
}

// AppendResult describes where an appended batch landed.
type AppendResult struct {
	// FirstOffset is the offset of the batch's first record; the others follow
	// densely.
	FirstOffset uint64
	// Time is the arrival time assigned to every record of the batch, in Unix
	// milliseconds.
	Time int64
}

// LogOptions configure a log at creation.
type LogOptions struct {
	// Retention is how long records are kept. Zero means forever. The engine
	// removes records older than this in the background, in whole segments (so
	// a record may outlive its retention a little, never the reverse).
	Retention time.Duration
}

// LogInfo is a snapshot of a log's bounds.
type LogInfo struct {
	Name string
	// First is the offset of the oldest record still kept (the trim horizon).
	// When the log is empty First == Next.
	First uint64
	// Next is the offset the next appended record will get (one past the
	// last record).
	Next uint64
	// FirstTime is the arrival time (Unix ms) of the oldest kept record, 0 when
	// the log is empty.
	FirstTime int64
	// LastTime is the arrival time (Unix ms) of the newest record, 0 when the
	// log is empty.
	LastTime int64
	// Sealed reports whether the log accepts no more appends.
	Sealed    bool
	Retention time.Duration
}

// Engine is a set of named logs plus a metadata store.
type Engine interface {
	// CreateLog creates an empty log. It fails with ErrLogExists if the name
	// is taken and with ErrInvalidName if the name is not valid.
	CreateLog(ctx context.Context, name string, opts LogOptions) error
	// Log returns a handle to an existing log, or ErrLogNotFound. Handles are
	// cheap and safe for concurrent use; they stay valid until the log is
	// deleted or the engine closed.
	Log(ctx context.Context, name string) (Log, error)
	// DeleteLog removes a log and its records. Waiters on the log are woken
	// with ErrClosed.
	DeleteLog(ctx context.Context, name string) error
	// ListLogs returns the names of all logs whose name starts with prefix,
	// sorted.
	ListLogs(ctx context.Context, prefix string) ([]string, error)
	// Meta returns the metadata store.
	Meta() Meta
	// Close flushes everything acknowledged and releases all resources.
	// Calls after Close fail with ErrClosed.
	Close() error
}

// Log is one ordered, durable sequence of records: one Kinesis shard.
type Log interface {
	// Append adds records atomically and in order: after a crash either all of
	// them are present or none is. It returns once the records are as durable
	// as the engine's durability policy promises. An empty batch is an error.
	Append(ctx context.Context, recs []Record) (AppendResult, error)
	// Read returns records starting at offset from, in order, at most
	// maxRecords of them and, beyond the first record, at most maxBytes of
	// keys and values together (the first record is always returned whole so
	// a reader can make progress). A from below the trim horizon starts at the
	// oldest kept record; a from at or past the end returns no records.
	// Offsets are consecutive except across a hole (see the package
	// comment), which Read steps over: the records before it and after it
	// are returned as if it were not there, and a from inside a hole starts
	// at the first record after it. A caller continues at the last returned
	// offset plus one. A hole with no record after it yet reads like the end
	// of the log: no records, until one is appended.
	Read(ctx context.Context, from uint64, maxRecords, maxBytes int) ([]StoredRecord, error)
	// OffsetAt returns the offset of the first record whose arrival time is
	// at or after t (Unix ms), or Next if there is none.
	OffsetAt(ctx context.Context, t int64) (uint64, error)
	// Info returns the log's current bounds.
	Info(ctx context.Context) (LogInfo, error)
	// Seal stops further appends. It is idempotent. Records already appended
	// stay readable until retention removes them.
	Seal(ctx context.Context) error
	// SetRetention changes the retention period (zero: keep forever).
	SetRetention(ctx context.Context, d time.Duration) error
	// Trim removes whole stored units (segments) whose records are all older
	// than before (Unix ms). The background retention calls the same logic.
	Trim(ctx context.Context, before int64) error
	// SetKeys sets the log's encryption keys, replacing any earlier ones
	// (nil: none; batches are stored in plain text). The engine does not
	// store them: a caller sets them again on every handle it gets after
	// the engine is reopened, before it reads encrypted batches (which fail
	// with ErrNoKeys until then).
	SetKeys(k Keys)
	// Wait blocks until the log holds a record at an offset >= next (one
	// that Read can return: not lost in a hole), the log is sealed, or ctx is
	// done. It returns the log's Next offset at wake-up
	// (so next means "the offset the caller wants to read"). It returns
	// ErrClosed if the log is deleted or the engine closed.
	Wait(ctx context.Context, next uint64) (uint64, error)
}

// Lender is implemented by logs that can lend a read's records from memory
// they reuse afterwards. ReadLent reads as Read does, and returns with the
// records a release function: the records, and the slice holding them,
// stay valid until it is called, and not after. It must be called exactly
// once. Callers use the package function ReadLent.
type Lender interface {
	ReadLent(ctx context.Context, from uint64, maxRecords, maxBytes int) ([]StoredRecord, func(), error)
}

// ReadLent reads from l with Lender when l implements it, else with Read
// (whose records stay valid for good; the release function does nothing).
func ReadLent(ctx context.Context, l Log, from uint64, maxRecords, maxBytes int) ([]StoredRecord, func(), error) {
	if ln, ok := l.(Lender); ok {
		return ln.ReadLent(ctx, from, maxRecords, maxBytes)
	}
	recs, err := l.Read(ctx, from, maxRecords, maxBytes)
	return recs, func() {}, err
}

// NextReader is implemented by logs that can tell their Next offset more
// cheaply than Info. Callers use the package function Next.
type NextReader interface {
	// Next returns the offset the next appended record will get, as Info
	// would, or as a moment before: a log replicated on other machines may
	// answer from a replica that has not applied the newest records yet.
	Next(ctx context.Context) (uint64, error)
}

// Next returns l's Next offset, from NextReader when l implements it, else
// from Info. It is for callers who only need to know whether more records
// follow (how far behind a reader is), not for decisions that need the
// exact bound.
func Next(ctx context.Context, l Log) (uint64, error) {
	if n, ok := l.(NextReader); ok {
		return n.Next(ctx)
	}
	info, err := l.Info(ctx)
	return info.Next, err
}

// Watcher is implemented by engines that several processes share (the
// gateways of a cluster): it tells each of them of the metadata changes any
// of them makes, so that caches follow at once instead of at their expiry.
type Watcher interface {
	// WatchMeta calls fn with the key of each change (a write or a
	// deletion) under prefix, made by any process, from now until ctx ends,
	// on one goroutine and in the order of the changes. fn("") means
	// changes may have been missed (the watch was restarted): anything
	// under prefix may have changed. It returns once the watch is running.
	WatchMeta(ctx context.Context, prefix string, fn func(key string)) error
}

// Meta is a small versioned key-value store with compare-and-set. Versions
// start at 1 for a newly created key and grow by one with every write; 0
// means "absent".
type Meta interface {
	// Get returns the value and version of key, or ErrKeyNotFound.
	Get(ctx context.Context, key string) ([]byte, uint64, error)
	// Put stores value under key if the key's current version equals
	// expect (0: the key must not exist). It returns the new version, or
	// ErrVersionMismatch.
	Put(ctx context.Context, key string, value []byte, expect uint64) (uint64, error)
	// Delete removes key if its current version equals expect, or returns
	// ErrVersionMismatch (ErrKeyNotFound if absent).
	Delete(ctx context.Context, key string, expect uint64) error
	// List returns every entry whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Entry, error)
}

// Entry is one key of the metadata store.
type Entry struct {
	Key     string
	Value   []byte
	Version uint64
}
