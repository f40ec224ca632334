package disk

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Durability says when Append may return.
type Durability int

const (
	// SyncAlways makes Append return only once the batch is on stable
	// storage: its bytes have been written and the segment file fdatasynced
	// (and, when a segment file was created, renamed or removed, its
	// directory fsynced). Concurrent appends share writes and syncs (group
	// commit). This is the default.
	SyncAlways Durability = iota
	// SyncInterval makes Append return once the batch has been written to the
	// operating system (the page cache); dirty files are fdatasynced every
	// Options.SyncInterval. What it risks: a crash of the process loses
	// nothing, but a crash of the machine (power loss, kernel panic) may lose
	// the records acknowledged during the last SyncInterval before it. What
	// survives is still a prefix of each log: recovery cuts a torn tail and
	// never serves a record that fails its checksum.
	SyncInterval
)

// String returns the policy's name.
func (d Durability) String() string {
	switch d {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Options configure an Engine. Start from DefaultOptions.
type Options struct {
	// Durability is the policy Append follows (SyncAlways by default).
	Durability Durability
	// SyncInterval is how often dirty files are synced under SyncInterval
	// durability. Ignored under SyncAlways.
	SyncInterval time.Duration
	// SegmentSize is the size at which a log starts a new segment file.
	// A single batch larger than this gets a segment of its own.
	SegmentSize int64
	// SegmentMaxAge is the age (from its first record) at which a log starts
	// a new segment on the next append, so that retention, which deletes
	// whole segments, can act on slow logs too.
	SegmentMaxAge time.Duration
	// IndexInterval is the number of segment bytes between two sparse index
	// entries. Smaller means faster seeks and larger index files.
	IndexInterval int
	// MaxOpenFiles bounds the segment file handles kept open (an LRU). It may
	// be exceeded briefly while more files than this are in use at once.
	MaxOpenFiles int
	// TailCache is about how many bytes of the logs' newest frames the
	// engine keeps in memory for readers that follow the writers: each log
	// that appends may keep an equal share of it among the open logs, at
	// most 16 MiB (a log keeps its frames until it appends again, is sealed,
	// trimmed or deleted, so shares that shrank as logs were added are
	// given back at their next append). 0 turns the cache off.
	TailCache int64
	// BufferedWrites makes the engine write segments through the page
	// cache under SyncAlways too. By default it writes them around it
	// (O_DIRECT, where the filesystem allows), since every write is
	// fdatasynced at once anyway: that saves copying the bytes into the
	// cache and writing them back from there. Readers of older records then
	// read them from the device (the tail cache holds the newest). Under
	// SyncInterval writes always go through the page cache.
	BufferedWrites bool
	// RetentionCheckInterval is how often the background janitor deletes
	// segments past their log's retention.
	RetentionCheckInterval time.Duration
	// FS is the filesystem the engine uses. Nil means the operating system's.
	// Tests inject failures through it.
	FS FS
	// Logger receives the engine's reports: torn tails cut at Open, damaged
	// records skipped by readers, appends failing and recovering. Nil
	// discards them.
	Logger *slog.Logger
	// Clock returns the current time; batch arrival times come from it
	// (never decreasing along a log). Nil means time.Now.
	Clock func() time.Time
	// Observer, when set, receives the duration of every Append and every
	// segment fdatasync, for metrics.
	Observer Observer
}

// Observer receives timings from the engine's write path. It is called on
// the hot path, from many goroutines: implementations must be cheap and
// safe for concurrent use.
type Observer interface {
	// Append reports one Append, from its call to its acknowledgement
	// (failed ones included).
	Append(d time.Duration)
	// Sync reports one sync of a segment file: an fdatasync, or a direct
	// write that synced as it wrote (the round's last, timed whole).
	Sync(d time.Duration)
}

// DefaultOptions returns the options used when nothing else is said.
func DefaultOptions() Options {
	return Options{
		Durability:             SyncAlways,
		SyncInterval:           100 * time.Millisecond,
		SegmentSize:            64 << 20,
		SegmentMaxAge:          time.Hour,
		IndexInterval:          64 << 10,
		TailCache:              64 << 20,
		MaxOpenFiles:           1024,
		RetentionCheckInterval: 30 * time.Second,
	}
}

// ErrInvalidOptions is returned by Validate (wrapped with the reason).
var ErrInvalidOptions = errors.New("disk: invalid options")

// Validate reports the first problem with o, wrapping ErrInvalidOptions.
func (o *Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Durability != SyncAlways && o.Durability != SyncInterval:
		return bad("unknown durability %d", int(o.Durability))
	case o.Durability == SyncInterval && o.SyncInterval <= 0:
		return bad("SyncInterval must be positive")
	case o.SegmentSize < 4096:
		return bad("SegmentSize %d below 4096", o.SegmentSize)
	case o.SegmentMaxAge <= 0:
		return bad("SegmentMaxAge must be positive")
	case o.IndexInterval < 512:
		return bad("IndexInterval %d below 512", o.IndexInterval)
	case o.MaxOpenFiles < 4:
		return bad("MaxOpenFiles %d below 4", o.MaxOpenFiles)
	case o.RetentionCheckInterval <= 0:
		return bad("RetentionCheckInterval must be positive")
	}
	return nil
}

func (o *Options) fs() FS {
	if o.FS == nil {
		return OSFS{}
	}
	return o.FS
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o *Options) now() int64 {
	if o.Clock == nil {
		return time.Now().UnixMilli()
	}
	return o.Clock().UnixMilli()
}
