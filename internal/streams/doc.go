// Package streams is the service layer of runnel: the Kinesis Data Streams
// model and its rules (streams, shards, hash-key routing, sequence numbers,
// shard iterators, retention, tags, encryption flags, throughput limits) on
// top of an engine.Engine. It knows nothing of HTTP or files.
//
// # What is stored
//
// Metadata. Each stream is one key of the engine's metadata store,
// "streams/<name>", whose value is the JSON of streamMeta: name, a stream id
// unique to this creation of the stream, creation time, status with the
// deadline of a transitional status, mode, retention, maximum record size,
// the list of every shard ever created (hash range, creation time, parents,
// and once closed by resharding its closing time and end offset), tags,
// enhanced metrics, encryption, resource policy and the enhanced fan-out
// consumers (consumers.go; subscriptions are in subscribe.go).
// Every change is one compare-and-set of the whole value, retried on a
// version mismatch, so several services sharing an engine never corrupt a
// stream.
//
// Statuses. CREATING, UPDATING and DELETING are stored with the Unix-ms time
// at which they settle (Options.TransitionDelay after the request). Readers
// compute the settled status from the clock: CREATING and UPDATING become
// ACTIVE, DELETING becomes "gone"; so a crash mid-transition loses nothing.
// The exception is an UPDATING stream with a pending change (resharding,
// encryption; pending.go): it stays UPDATING until the change is applied by
// one compare-and-set, made by the first reader after the deadline or by
// the reaper. A background goroutine (the reaper,
// owned by the Service and stopped by Close) deletes the shard logs and then
// the metadata key of gone streams, including deletions a restart
// interrupted, and removes logs a crash during CreateStream left without a
// stream.
//
// Shard logs. Shard i of a stream is the engine log "<stream id>.<i>".
// The stream id ("<creation ms in base 36>-<8 random hex digits>") changes
// when a stream is deleted and created again, so a new stream never sees
// an old one's records, and iterators of the old one are refused.
//
// Resharding. SplitShard, MergeShards, UpdateShardCount and the on-demand
// scaler store a plan as the stream's pending change (after creating the
// children's logs); when UPDATING ends, one compare-and-set appends the
// child shards to the list and closes their parents, and then the parents'
// logs are sealed (reshard.go, pending.go, scaler.go). A closed shard keeps its log, sealed,
// until retention expires; its EndOffset is the log's end at closing.
//
// Records. An engine record's Key is one flag byte (bit 0: written while the
// stream was KMS-encrypted, reported as EncryptionType KMS) followed by the
// partition key's UTF-8 bytes; its Value is the data blob. The engine's
// offset and arrival time give the sequence number and
// ApproximateArrivalTimestamp.
//
// Encryption at rest. A stream's metadata holds its data keys, wrapped by
// the key store (Options.Keys); each shard's log gets them through
// engine.Log.SetKeys, derived per log, and the engine encrypts the batches
// of records flagged KMS under the data key that was current for the
// stream snapshot that routed them (encryption.go).
//
// # Routing
//
// A partition key's MD5, read as a big-endian 128-bit integer (or the
// ExplicitHashKey), selects the open shard whose range holds it. A stream
// created with n shards splits the space as Kinesis does: shard i starts at
// i*floor(2^128/n) and the last ends at 2^128-1.
//
// # Sequence numbers and iterators
//
// The layout of sequence numbers is documented on seqNum (seqnum.go); that
// of shard iterators and ListShards/ListStreams NextTokens (HMAC-SHA256
// signed with Options.IteratorKey, base64url) in token.go.
//
// # Caching
//
// The data plane reads stream descriptions from an in-memory cache keyed by
// stream name and checked against the engine at most once per second (a
// service's own changes update it at once). Control-plane operations always
// read the engine.
package streams
