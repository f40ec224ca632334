// Package bench is the load tool behind `runnel bench`: it drives any
// Kinesis-compatible endpoint (runnel, AWS itself, kinesalite, kinesis-local)
// with the AWS SDK for Go v2, measures throughput and latency, and verifies
// that every acknowledged record was read back exactly once, intact and in
// order.
//
// # Run
//
// A run creates a stream (or uses an existing one), waits for it to become
// ACTIVE, starts the consumers (GetRecords polling or SubscribeToShard), then
// the producers (PutRecords batches or PutRecord calls, optionally paced to a
// target rate or in bursts), for a duration or a number of records. When the
// producers stop, the consumers drain until they have read as many records as
// were acknowledged or until nothing new arrives for the drain timeout. The
// stream is deleted at the end if the run created it.
//
// With --read-after the consumers take their start positions as usual but
// read nothing while the producers produce; they read everything back once
// the producing phase ends (the phase shown as "reading back"), so that the
// write throughput is measured without the client's cost of reading at the
// same time. The verification is the same; the end-to-end latency is not
// measured, and the read rate is over the reading phase alone. Enhanced
// fan-out consumers subscribe only then, on an existing stream at the time
// its tip was taken (AT_TIMESTAMP, a second early; records of others are
// ignored).
//
// # Producer and consumer clients
//
// By default producers and consumers call the service with the SDK. With
// --producer-client raw the producers send PutRecords without it, and with
// --consumer-client raw the polling consumers send GetRecords without it,
// so that on a small machine the tool's own JSON serialisation does not
// dominate the measurement. Each writes its request body into a reused
// buffer, signs it with SigV4 (the SDK's signer, over the body's SHA-256,
// as every Kinesis client does) and posts it with net/http on the run's
// transport. A producer encodes a random body's base64 from a precomputed
// encoding of the noise the body is cut from (it is cut at a multiple of 3
// bytes, so the text is the same), and reuses one arena for its batch. The
// answers are scanned into reused memory (shard ids and partition keys
// interned, record data decoded into one buffer per call); anything a
// scanner does not expect (escapes, other members) is decoded with
// encoding/json instead, and fuzz tests hold the two to the same result.
// Error responses (the type from X-Amzn-ErrorType or __type) and transport
// failures become errors the SDK's retry classification reads alike, so
// throttles, expired iterators, retries, unknown outcomes, counters, ledgers
// and verification are the same. PutRecord calls (--batch 1, --mode
// putrecord) and enhanced fan-out always use the SDK; the report names the
// clients used.
//
// --cpuprofile writes the tool's own CPU profile, to see what the tool costs
// the machine it shares with the endpoint.
//
// # The server's own cost
//
// When the endpoint is a process on this machine, the report also gives
// what the run cost that process ("server", JSON "server"): its CPU time
// (user + system, all threads, utime + stime of /proc/PID/stat) from the
// start of producing to the end of reading, divided by the records written,
// so the cost of writing a record and reading it back once; and its peak
// resident set size, VmRSS of /proc/PID/status sampled every 100 ms (and
// VmHWM, the kernel's own peak over the process's life). --server-pid names
// the process; by default, for a loopback endpoint, it is the process holding
// the socket that listens on the endpoint's port: the socket's inode from
// /proc/net/tcp or /proc/net/tcp6 (state 0A, LISTEN), then the process with
// a descriptor linking to "socket:[INODE]" under /proc/PID/fd. That finds a
// runnel, a Node or a Java server alike, when this user may read its
// descriptors. Where the load tool shares the machine's cores with the
// server, throughput is bounded by the tool as much as by the server, and the
// server's CPU per record is the fairer figure to compare servers by. CPU
// times come in ticks of 10 ms (USER_HZ), so a run should use some seconds
// of the server's CPU.
//
// # Record payload
//
// Every record's data starts with a fixed 36-byte header, big-endian:
//
//	offset size field
//	0      2    magic "RB"
//	2      1    version (1)
//	3      1    flags (0, reserved)
//	4      4    run id: random per run, so records of other runs or tools are
//	            recognised and ignored on an existing stream
//	8      4    producer index
//	12     8    record sequence within the producer (0, 1, 2, ...)
//	20     8    send time of the first attempt, Unix nanoseconds (derived from
//	            the monotonic clock of the producing process)
//	28     4    partition key index (the key itself is the profile's prefix
//	            followed by the zero-padded index)
//	32     4    CRC-32C (Castagnoli) of bytes [0,32) followed by [36,end)
//	36     ...  body shaped by the profile (JSON event, sensor reading, log
//	            lines or random bytes), padded or cut to the record size
//
// (run id, producer, sequence) identifies a record. The checksum proves the
// content intact; the send time gives the send-based end-to-end latency and,
// with the time of the acknowledgement, the happens-before order the
// verification checks.
//
// # Latency
//
// All times are taken on one clock: the Unix time at the start of the run
// plus the monotonic time elapsed since, in nanoseconds, read in the one
// process that both produces and consumes. Three latencies are reported,
// each as p50, p90, p99, p99.9 and max over a log-linear histogram (values
// within 0.8%):
//
//   - put latency ("put latency", JSON "put_latency"): the duration of each
//     PutRecords or PutRecord call, failed ones included.
//   - end-to-end ("end-to-end", JSON "end_to_end_latency"): for every read
//     of an intact record of the run (copies read again and records whose
//     put was never acknowledged included), the time the consumer received
//     the response or event holding it minus the time the producer built
//     the batch for its first attempt (the send time in its header, taken
//     just before the first call). It leaves out the wait for the pacer
//     (the batch is built once its turn comes) and includes the whole put
//     call, and retries with their backoff.
//   - ack→receipt ("ack→receipt", JSON "ack_to_receipt_latency"): for every
//     read of a record whose put was acknowledged (copies read again
//     included; records never acknowledged are left out), the receipt time
//     minus the time the producer received the acknowledgement of the
//     attempt that succeeded (the moment the PutRecords or PutRecord call
//     that reported the record stored returned), or 0 when the consumer
//     received the record before its producer had that acknowledgement,
//     which a push (enhanced fan-out) consumer can. This is the latency as
//     the specification defines end-to-end: from acknowledged put to
//     consumer receipt. Receipt times are kept per record read and paired
//     with the ledgers' acknowledgement times after the run, since a record
//     can be received before its acknowledgement is recorded; it therefore
//     needs the verification (--verify, the default).
//
// A record is acknowledged after it was first sent, so for each read
// ack→receipt is at most end-to-end; when every record read was
// acknowledged, each percentile of ack→receipt is at most the same
// percentile of end-to-end. Neither is measured with --read-after, where
// both would only tell how long records waited for the producing phase to
// end.
//
// # Verification
//
// Each producer keeps a ledger of what it sent and what the stream
// acknowledged (ack time, ack ordinal within the producer, shard reported by
// the service). Each consumer keeps, per shard, the ordered list of records it
// read. After the run the two are compared: an acknowledged record that was
// never read is lost; one read twice is duplicated; one whose checksum or
// partition key does not match is corrupted; one read from another shard than
// the service acknowledged it on is misrouted. Order is checked per partition
// key within a shard in two ways: records of one producer must be read in the
// order they were acknowledged, and a record acknowledged before another
// record of the same key was first sent (by any producer) must be read before
// it. Sequence numbers must increase along each shard. A record read although
// its put was not acknowledged (the call failed or timed out) is counted as an
// ambiguous write, not as an error.
package bench
