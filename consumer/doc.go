// Package consumer is a library for consumer applications of runnel (and of
// the Kinesis Data Streams API): a set of workers that share a stream's
// shards, each processing its share in order, with checkpoints that survive
// crashes and failover that needs no coordinator.
//
// A worker is a Consumer. It keeps leases in a lease table (a LeaseStore;
// by default runnel's built-in one, reached on the Kinesis client's
// endpoint; on Amazon Kinesis a DynamoDB table in the KCL's schema,
// DynamoDBStore), takes its share of them, renews them, and for each shard it
// holds reads records (a Retriever: GetRecords polling by default, or
// enhanced fan-out with SubscribeToShard under the FanOut option) and
// passes them to the application's Processor. The processor checkpoints
// through a Checkpointer; the lease table fences checkpoints by a counter,
// so a worker that lost a lease can never move the new owner's checkpoint.
//
// Delivery is at least once: after a failover, the records after the last
// checkpoint are delivered again, never fewer. Within a shard records come
// in order, and a child shard after a split or merge is processed only once
// its parents were processed to their end, so the records of one partition
// key are processed in the order they were written.
//
// docs/CONSUMER.md describes the rules and choices; docs/LEASES.md the lease
// table.
package consumer
