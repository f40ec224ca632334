// Package leases keeps consumer applications' lease tables on the engine's
// metadata: which worker holds which shard of a stream, and how far each
// shard has been processed.
//
// The service decides one thing with authority: whether a request names the
// fencing counter a lease has now. Every take, renew, hand-off, release and
// checkpoint is one compare-and-set that checks the counter (and, except for
// a take, the owner) and adds one to it, so a worker that lost its lease can
// never write over its successor's checkpoint, whatever the clocks say.
// Expiry is the workers' business, judged on their own monotonic clocks.
//
// Storage, one metadata key per table and per lease:
//
//	leases/<stream-id>/<application>             table:  JSON tableMeta
//	leases/<stream-id>/<application>/<shard-id>  lease:  JSON Lease
//
// Tables are keyed by the stream's per-creation id, so a stream created
// again under an old name starts with no leases. The model and the wire API
// are described in docs/LEASES.md.
package leases
