// Package producer puts records into a Kinesis data stream the way the
// Kinesis Producer Library does, for Go programs: it batches records into
// PutRecords calls, packs the records bound for one shard into KPL
// aggregated records (package kpl), retries what the stream refused with
// back-off, keeps each partition key's records in order, bounds the memory
// it buffers and paces each shard to its write limits. It works against
// runnel and Amazon Kinesis alike, through the AWS SDK for Go v2.
//
//	p, err := producer.New(client, "events")          // client: a *kinesis.Client
//	f := p.Put(ctx, "device-42", data)               // buffered; data is copied
//	res, err := f.Wait(ctx)                          // res.ShardID, res.SequenceNumber
//	err = p.PutAsync(ctx, key, data, func(r producer.Result) { ... })
//	err = p.Close(ctx)                               // flushes, then refuses Puts
//
// # How records flow
//
// Put computes the record's hash key (the MD5 of its partition key, or its
// explicit hash key), finds the open shard whose range holds it in the
// shard map (ListShards), copies the record into that shard's queue and
// returns. Each shard has a pipeline: one goroutine that sends the queue's
// front as a PutRecords call when the queue holds a full call's worth
// (one aggregate of up to 1 MiB; without aggregation 500 records or
// 5 MiB), when its oldest record has waited the linger time, or at Flush.
//
// # Order
//
// By default a pipeline has one call in flight, and a call carries at most
// one Kinesis record per partition key: with aggregation a single
// aggregate, without it records of distinct keys. Records a call failed go
// back to the front of the queue and are sent before anything put after
// them, so a key's records are stored in the order they were put even
// when some are throttled (PutRecords may store a later record of a batch
// and refuse an earlier one). Unordered(n) gives this up for n calls in
// flight per shard and calls of several aggregates.
//
// # Acknowledged
//
// A record's Result has no error only when the stream answered it with a
// sequence number: it is then in the stream, on Result.ShardID, in the
// Kinesis record Result.SequenceNumber, at Result.SubSequenceNumber when
// Result.Aggregated. A record whose attempts failed is retried (throttling,
// internal failures, transport errors, timeouts) until its RecordTTL runs
// out; then its error wraps ErrRecordExpired and the last failure, and
// also ErrUnknownOutcome when the last attempt got no answer, in which
// case the record may be in the stream. Retries after an unanswered call
// can store a record twice; consumers must tolerate duplicates, as with
// any Kinesis producer.
//
// # Resharding
//
// When a record lands on a shard the map did not predict, or a call fails
// with ResourceNotFoundException or InvalidArgumentException, the map is
// listed again. The pipelines of closed shards finish their call, hand
// their records to the pipelines of the shards that replaced them, ahead
// of what those hold, and end; the new pipelines send only then, so a
// key's order survives a split or a merge. An aggregate sent to a closed
// shard before the map caught up is stored on a new shard; once the map
// is fresh its records are delivered there when that shard's range holds
// them all (after a merge), and otherwise sent again, as the KPL does,
// because readers that filter an aggregate's records by the shard's hash
// key range (the KCL) would skip those that belong to the other child.
//
// # Requests
//
// For a *kinesis.Client with a BaseEndpoint (runnel, or any endpoint set
// by hand) the producer writes the PutRecords request itself, signs it
// with SigV4 from the client's credentials and sends it with the client's
// HTTP client, at a fraction of the SDK's CPU; errors come back as the
// SDK's error types. SDKCalls, other clients and Amazon Kinesis found by
// region go through the client's PutRecords, with the SDK's own retries
// off.
//
// # Memory
//
// The bytes of records put and not yet completed (data, partition key and
// explicit hash key) are bounded by MaxBufferedBytes: Put blocks, or fails
// with ErrBufferFull under FailWhenFull. Each record also costs about 130
// bytes of bookkeeping while buffered.
package producer
