// roundtrip.mjs drives a runnel server with the AWS SDK for JavaScript v3
// Kinesis client, which sends every operation over HTTP/2 (NodeHttp2Handler:
// h2c with prior knowledge for http://, ALPN h2 for https://).
//
// Environment: RUNNEL_ENDPOINT (required), e.g. http://127.0.0.1:4567.
// Prints a JSON summary on stdout; exits non-zero on any error or mismatch.
import {
  KinesisClient,
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  PutRecordCommand,
  PutRecordsCommand,
  ListShardsCommand,
  GetShardIteratorCommand,
  GetRecordsCommand,
  RegisterStreamConsumerCommand,
  DescribeStreamConsumerCommand,
  SubscribeToShardCommand,
  DeleteStreamCommand,
} from "@aws-sdk/client-kinesis";

const endpoint = process.env.RUNNEL_ENDPOINT;
if (!endpoint) {
  console.error("RUNNEL_ENDPOINT is not set");
  process.exit(2);
}

const client = new KinesisClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
  maxAttempts: 1,
});

const stream = "jssdk-" + Date.now();
const summary = { endpoint, stream, handler: client.config.requestHandler?.metadata?.handlerProtocol, steps: {} };
const t0 = Date.now();

function fail(msg) {
  throw new Error(msg);
}

async function step(name, fn) {
  const start = Date.now();
  const out = await fn();
  summary.steps[name] = { ms: Date.now() - start, ...(out ?? {}) };
  return out;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

// expected maps a payload string to the sequence number PutRecord(s) returned.
const expected = new Map();

async function main() {
  await step("CreateStream", async () => {
    await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 2 }));
  });

  const arn = await step("WaitActive", async () => {
    for (let i = 0; i < 200; i++) {
      const d = await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
      const s = d.StreamDescriptionSummary;
      if (s.StreamStatus === "ACTIVE") {
        if (s.OpenShardCount !== 2) fail(`OpenShardCount ${s.OpenShardCount}, want 2`);
        return { arn: s.StreamARN, polls: i + 1 };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    fail("stream not ACTIVE after 200 polls");
  }).then((o) => o.arn);

  await step("PutRecord", async () => {
    const data = "single record";
    const r = await client.send(new PutRecordCommand({ StreamName: stream, PartitionKey: "pk-single", Data: enc.encode(data) }));
    if (!r.SequenceNumber || !r.ShardId) fail(`PutRecord answered ${JSON.stringify(r)}`);
    expected.set(data, { seq: r.SequenceNumber, shard: r.ShardId });
    return { shard: r.ShardId };
  });

  await step("PutRecords", async () => {
    const entries = [];
    for (let i = 0; i < 10; i++) {
      entries.push({ PartitionKey: `pk-${i}`, Data: enc.encode(`batch record ${i}`) });
    }
    const r = await client.send(new PutRecordsCommand({ StreamName: stream, Records: entries }));
    if (r.FailedRecordCount !== 0) fail(`PutRecords FailedRecordCount ${r.FailedRecordCount}`);
    if (r.Records.length !== 10) fail(`PutRecords returned ${r.Records.length} results`);
    r.Records.forEach((res, i) => {
      if (!res.SequenceNumber || !res.ShardId) fail(`PutRecords result ${i}: ${JSON.stringify(res)}`);
      expected.set(`batch record ${i}`, { seq: res.SequenceNumber, shard: res.ShardId });
    });
    const perShard = {};
    for (const v of expected.values()) perShard[v.shard] = (perShard[v.shard] ?? 0) + 1;
    return { perShard };
  });

  const shards = await step("ListShards", async () => {
    const r = await client.send(new ListShardsCommand({ StreamName: stream }));
    const ids = r.Shards.map((s) => s.ShardId);
    if (ids.length !== 2) fail(`ListShards returned ${ids.length} shards`);
    return { shards: ids };
  }).then((o) => o.shards);

  // check compares the records read from one shard with what was written to it.
  function check(where, shard, records) {
    const want = [...expected.entries()].filter(([, v]) => v.shard === shard);
    if (records.length !== want.length) fail(`${where} ${shard}: ${records.length} records, want ${want.length}`);
    let prev = -1n;
    for (const rec of records) {
      const data = dec.decode(rec.Data);
      const e = expected.get(data);
      if (!e) fail(`${where} ${shard}: unexpected data ${JSON.stringify(data)}`);
      if (e.shard !== shard) fail(`${where} ${shard}: record ${JSON.stringify(data)} belongs to ${e.shard}`);
      if (e.seq !== rec.SequenceNumber) fail(`${where} ${shard}: ${JSON.stringify(data)} sequence ${rec.SequenceNumber}, put said ${e.seq}`);
      const seq = BigInt(rec.SequenceNumber);
      if (seq <= prev) fail(`${where} ${shard}: sequence numbers not increasing`);
      prev = seq;
      if (!(rec.ApproximateArrivalTimestamp instanceof Date)) fail(`${where} ${shard}: no ApproximateArrivalTimestamp`);
    }
    return records.length;
  }

  await step("GetRecords", async () => {
    const counts = {};
    for (const shard of shards) {
      const it = await client.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard, ShardIteratorType: "TRIM_HORIZON" }));
      const r = await client.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator, Limit: 100 }));
      if (!r.NextShardIterator) fail(`GetRecords ${shard}: no NextShardIterator`);
      counts[shard] = check("GetRecords", shard, r.Records);
    }
    return { counts };
  });

  const consumerARN = await step("RegisterStreamConsumer", async () => {
    const r = await client.send(new RegisterStreamConsumerCommand({ StreamARN: arn, ConsumerName: "jssdk" }));
    const carn = r.Consumer.ConsumerARN;
    for (let i = 0; i < 200; i++) {
      const d = await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: carn }));
      if (d.ConsumerDescription.ConsumerStatus === "ACTIVE") return { consumerARN: carn, polls: i + 1 };
      await new Promise((r) => setTimeout(r, 50));
    }
    fail("consumer not ACTIVE after 200 polls");
  }).then((o) => o.consumerARN);

  await step("SubscribeToShard", async () => {
    const counts = {};
    for (const shard of shards) {
      const want = [...expected.values()].filter((v) => v.shard === shard).length;
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 10000);
      const got = [];
      let events = 0;
      try {
        const r = await client.send(
          new SubscribeToShardCommand({ ConsumerARN: consumerARN, ShardId: shard, StartingPosition: { Type: "TRIM_HORIZON" } }),
          { abortSignal: abort.signal },
        );
        for await (const ev of r.EventStream) {
          if (!ev.SubscribeToShardEvent) fail(`SubscribeToShard ${shard}: unexpected event ${JSON.stringify(Object.keys(ev))}`);
          events++;
          const e = ev.SubscribeToShardEvent;
          if (!e.ContinuationSequenceNumber) fail(`SubscribeToShard ${shard}: event without ContinuationSequenceNumber`);
          got.push(...e.Records);
          if (got.length >= want) break;
        }
      } catch (err) {
        if (abort.signal.aborted) fail(`SubscribeToShard ${shard}: ${got.length} of ${want} records within 10s`);
        throw err;
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      counts[shard] = check("SubscribeToShard", shard, got);
      counts[shard + " events"] = events;
    }
    return { counts };
  });

  await step("DeleteStream", async () => {
    await client.send(new DeleteStreamCommand({ StreamName: stream, EnforceConsumerDeletion: true }));
  });
}

try {
  await main();
  summary.ok = true;
} catch (err) {
  summary.ok = false;
  summary.error = `${err.name}: ${err.message}`;
  if (err.$metadata) summary.errorMetadata = err.$metadata;
}
summary.totalMs = Date.now() - t0;
client.destroy();
console.log(JSON.stringify(summary, null, 2));
process.exit(summary.ok ? 0 : 1);
