// Package disk is runnel's embedded storage engine: durable, crash-safe
// shard logs written for the streaming workload (sequential append,
// sequential read, whole-segment expiry), and a small metadata store.
//
// # Layout
//
// A data directory holds:
//
//	meta.db                      bbolt: metadata store and the registry of logs
//	logs/<log name>/             one directory per log
//	logs/<log name>/<base>.seg   segment files, <base> the first offset, 20 digits
//	logs/<log name>/<base>.idx   the segment's sparse index
//
// A log exists when it has an entry in the registry (bucket "logs" of
// meta.db, the log's name mapped to JSON {"retention": ns, "sealed": bool}).
// CreateLog makes the directory and first segment before the entry, DeleteLog
// removes the entry before the directory, and Open removes directories
// without an entry, so an interrupted create or delete leaves nothing behind.
//
// All integers are little-endian unless said otherwise. CRC means CRC-32C
// (Castagnoli).
//
// # Segment file
//
// A 32-byte header, then frames back to back:
//
//	offset size field
//	0      8    magic "RNLSEGM1"
//	8      8    base: offset of the segment's first record (matches the file name)
//	16     8    floor: int64 Unix ms, the log's newest arrival time when the
//	            segment was created; arrival times in the segment are >= floor
//	24     4    reserved, zero
//	28     4    CRC of bytes 0..28
//
// # Frame (one appended batch)
//
//	offset size field
//	0      4    length of the whole frame, header included (34 .. about 64 MiB)
//	4      4    CRC of the records section (bytes 32..length), continued
//	            over bytes 8..32 of this header
//	8      8    first offset: offset of the batch's first record
//	16     4    count: number of records, 1 .. 10000
//	20     4    flags: 0, or 1 for an encrypted frame
//	24     8    time: arrival time of every record of the batch, int64 Unix ms
//	32     ...  records section: count records, each
//	              uvarint key length, uvarint value length, key, value
//
// The records section comes first in the checksum so that appenders can
// checksum their records in parallel before the committer assigns offsets and
// time. Frames of a segment have consecutive offsets: a frame's first offset
// is the previous frame's first offset plus its count (the first frame's is
// the segment's base).
//
// # Encrypted frame
//
// A log with keys (engine.Log.SetKeys) stores each batch encrypted whole:
// flags = 1, and after the 32-byte header
//
//	offset size field
//	32     4    key id (not 0): the log's data key that encrypted the batch
//	36     12   nonce: 4 bytes of salt, then the first offset (8 bytes)
//	48     n    the records section, encrypted with AES-256-GCM
//	48+n   16   the GCM tag
//
// Bytes 8..48 (first offset, count, flags, time, key id, nonce) are the
// additional data the tag authenticates. The CRC covers bytes 32..length
// and then 8..32, as for a plain frame, so recovery, holes and index
// rebuilds check encrypted frames without the keys. A log's salt is drawn
// at random when the log is opened and after every failed append, the only
// times an offset can be given to a second batch; with keys that belong to
// one log, a nonce never repeats under a key.
//
// # Index file
//
// A 16-byte header ("RNLINDX1", then the segment's base as 8 bytes), then
// 32-byte records:
//
//	offset size field
//	0      8    a
//	8      8    b
//	16     8    c
//	24     4    kind: 1 entry, 2 footer
//	28     4    CRC of bytes 0..28
//
// An entry (kind 1) maps a frame's first offset (a) to its byte position in
// the segment (b) and its time (c). The first frame of a segment is always
// indexed; after it, a frame is indexed when at least IndexInterval bytes
// separate it from the previous indexed frame. Offsets, positions and times
// increase along the index. A footer (kind 2) closes the index of a segment
// that no longer grows: a is the offset after its last record, b the segment
// file's size, c the time of its last frame. The index is derived data: it is
// rebuilt from the segment whenever it is missing, torn or does not match
// the segment. The active segment's entries are written to its file 128 at
// a time (and on a roll, before a sync of the index and at Close), and
// synced only once per 8 MiB of segment data (SyncAlways), which bounds the
// scan at Open after a crash.
//
// # Durability and recovery
//
// An append is acknowledged after its frame is written and, under
// SyncAlways, the segment fdatasynced (the segment's directory is fsynced when
// a segment file is created or removed). A segment is synced before the next
// one is created, so every segment but the last is complete on disk.
//
// Under SyncAlways segments are written around the page cache (O_DIRECT,
// unless Options.BufferedWrites or the filesystem refuses; direct.go): each
// round is written as whole 4 KiB blocks, from the start of the block the
// segment ends in (its bytes already on disk kept in memory) to its new end,
// then zeros up to the next boundary; the next round writes that block again.
// A round's only frame of 64 KiB or more is written from its own buffer,
// built with room around it for that (appendOp.inPlace); others are copied
// into an aligned staging buffer.
// A round that grows the file also writes zeros after its frames (64 KiB to
// 8 MiB, following the log's pace), so that the rounds after it overwrite
// in place and their syncs have no metadata to write; the round's last write
// is its sync too (RWF_DSYNC). The zeros after the active segment's end are
// cut when the segment rolls and at Close, and after a crash Open cuts them
// without reporting them as a torn tail.
//
// On Open, for each log, only the last segment is examined: its index is read,
// the last index entry that points at a valid frame is found, and the frames
// after it are checked (length, CRC, offset sequence). At the first frame that
// fails a check, the engine looks for an intact frame after it: if one exists
// the bad bytes are a hole (below); if none does they are a torn tail, which
// is cut off and logged with the records it held and whether they can have
// been acknowledged under the durability policy.
//
// Under SyncInterval an append is acknowledged once written to the operating
// system, and dirty files are synced every SyncInterval: a crash of the
// machine can lose up to that much acknowledged data (a process crash loses
// nothing). See docs/FORMAT.md.
//
// # Holes
//
// Damage anywhere else (a flipped bit, a zeroed page, a truncated sealed
// segment) loses only the records of the frames it touches. A reader that
// meets an invalid frame scans forward, byte by byte, for the next frame whose
// header is plausible, whose offsets fit and whose CRC holds, and goes on
// there: Read returns the records before and after the hole, and a read from
// inside it starts after it (the engine contract's holes). Each hole is logged
// once per process with its file, byte range and offsets, and counted in
// Engine.Damage.
//
// # Calls
//
// Append checks its context before queuing a batch; once queued, the batch
// is part of a commit group and cannot be withdrawn, so Append waits for the
// group's outcome whatever the context. Read returns at most maxRecords
// records (no limit when maxRecords <= 0) and, beyond the first, at most
// maxBytes of keys and values; the records' Key and Value slices are
// read-only (engine.StoredRecord): they share one buffer per Read, or the
// tail cache's frames. Memory does not grow with the data stored: the engine
// keeps, per log, a small record per segment and the sparse index of the
// active segment (SegmentSize/IndexInterval entries of 24 bytes), and the
// logs' newest frames up to Options.TailCache bytes in all; indexes of older
// segments are read from disk when needed; at most MaxOpenFiles files stay
// open.
//
// # Tail cache
//
// Each log keeps its newest frames in memory, as the committer wrote them
// (plain frames only, contiguous, ending at the log's end), and Read serves
// the offsets they cover from there without touching the segment; see
// tail.go. A reader that follows the writers closely, as most stream
// consumers do, then costs no system call, copy or checksum. ReadLent
// (engine.Lender) lends such records until the caller releases them, and
// their buffers are then reused for new frames; Read's records stay valid
// for good. Damage on disk to records still in the cache shows only once
// they have left it (or after a restart).
//
// # Errors
//
// A failed write, roll or (under SyncAlways) fsync fails its round of appends
// and is undone: segments the round created are removed, the active segment
// and its index are cut back to their last acknowledged sizes and the segment
// synced and read back. If the undo fails too, every following append retries
// it first, so appends succeed again once the disk has space, without a
// reopen. Under SyncInterval a failed sync may have lost acknowledged records,
// so the log is marked failed: its appends return ErrFailed until the engine
// is reopened, which recovers the log from what is really on disk. Reads keep
// working. An append that returned an error may or may not be present after
// reopening; an acknowledged one is. See docs/FORMAT.md for why the undo is
// safe after a failed fsync.
//
// Files are created 0600 and directories 0700.
package disk
