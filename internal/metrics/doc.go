// Package metrics is runnel's set of Prometheus metrics: Kinesis' CloudWatch
// stream metrics under their CloudWatch names, the shard-level ones that
// EnableEnhancedMonitoring turns on, the storage engine's, and the Go
// runtime's and the process's, served in Prometheus' text format by
// (*Registry).Handler. docs/METRICS.md lists every metric.
//
// # Names and units
//
// A CloudWatch metric of the AWS/Kinesis namespace becomes "kinesis_" and
// its name with dots as underscores, labelled with the stream:
// PutRecords.Latency is kinesis_PutRecords_Latency{stream="orders"}. The
// shard-level metrics (dimension ShardId in CloudWatch) are
// kinesis_shard_<Name>{stream,shard}, a family of their own because a
// Prometheus family has one set of label names. Counts and bytes are
// counters that only grow (rate() gives CloudWatch's per-period Sum);
// the two ages (GetRecords.IteratorAgeMilliseconds,
// SubscribeToShardEvent.MillisBehindLatest) are gauges; latencies are
// histograms in milliseconds, CloudWatch's unit, so that numbers read the
// same in both. The CloudWatch "Success" metrics, whose Average is a success
// rate, are counters of successes; the Latency histogram's _count counts
// every call that reached the stream, so their ratio is the rate.
//
// runnel's own metrics follow Prometheus' conventions instead:
// runnel_engine_append_seconds and runnel_engine_sync_seconds (histograms in
// seconds), runnel_engine_bytes, runnel_engine_segments,
// runnel_engine_open_files, runnel_engine_tail_cache_bytes,
// runnel_engine_reads_total{source} and, per stream,
// runnel_engine_stream_bytes and runnel_engine_stream_segments.
//
// # Counting
//
// The hot path takes no lock, looks up no label and allocates nothing. The
// service resolves a stream's *Stream once per cached stream description
// (and a *Shard once per shard) and adds to their atomic counters; at a
// scrape a collector reads them and builds the series, so a stream's or a
// shard's series appear and disappear with the stream and with its
// enhanced-monitoring settings, without deleting anything from a vector.
// The wire layer measures latency: it keeps a Call in its per-request
// state and passes it as the context; the service records on it the stream
// the request acted on (GetRecords names its stream only inside the shard
// iterator), and the wire layer adds the request's time to that stream's
// histogram once the answer is written. A nil *Stream, *Shard or *Registry
// counts nothing: that is how --metrics=false turns counting off.
//
// Every counter of every shard is kept whether or not it is exported, so
// turning enhanced monitoring on shows totals since the shard's counters
// were created (the server's start or the shard's creation), not since the
// call.
//
// # Bounds
//
// Options.MaxSeries caps the series of streams and shards a scrape
// exports. Stream-level series come first, in stream-name order, then the
// consumer applications' lag, then the shard-level ones; what does not fit
// is left out, counted in
// runnel_metrics_series_dropped, and reported once in the log when it
// starts (and again when everything fits again).
//
// # Reading rates without scraping
//
// The web console charts a stream's recent activity from the same counters:
// (*Registry).StreamRates(name) returns a ring of RateSample, one every
// Options.SampleInterval (5 s) over the last Options.History (15 minutes),
// oldest first: incoming and outgoing records and bytes per second, and the
// two ages. (*Registry).ShardRates(name) gives each shard's rates over the
// last interval and its iterator age, and (*Registry).ConsumerLag the lag
// of lease-table applications. A background goroutine, stopped by Close,
// takes the samples.
//
// # Consumer applications
//
// The lag of lease-table applications per shard comes from a function set
// with SetConsumerLag (runnel serve combines the lease tables' checkpoints
// with the shards' ends), called at each scrape within a 5-second deadline:
// runnel_lease_records_behind and runnel_lease_millis_behind, labelled
// stream, application and shard, inside the series cap.
//
// # Not yet here
//
// Delivery streams (Firehose) will get Firehose's metric names under the
// prefix "firehose_" with a "delivery_stream" label (IncomingRecords,
// DeliveryToS3.Records, DeliveryToS3.Success, DeliveryToS3.DataFreshness,
// ...), counted the same way: a per-delivery-stream struct of atomic
// counters registered here and read by the collector.
package metrics
