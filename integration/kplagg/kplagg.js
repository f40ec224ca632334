// Aggregates or de-aggregates KPL records with aws-kinesis-agg, so that
// integration/kplagg_test.go can check runnel's package kpl against an
// independent implementation. Usage:
//
//   node kplagg.js aggregate   < {"records":[{"partitionKey","explicitHashKey"?,"data"}]}
//     > {"aggregates":[{"partitionKey","explicitHashKey"?,"data","records"}]}
//   node kplagg.js deaggregate < {"records":[{"partitionKey","sequenceNumber","data"}]}
//     > {"records":[{"partitionKey","explicitHashKey"?,"sequenceNumber","subSequenceNumber"?,"data"}]}
//
// data is base64 throughout. An error exits with status 1 and a message on
// stderr.
'use strict';

const agg = require('aws-kinesis-agg');

function readStdin() {
	const chunks = [];
	const fs = require('fs');
	let n;
	const buf = Buffer.alloc(1 << 16);
	for (;;) {
		try {
			n = fs.readSync(0, buf, 0, buf.length, null);
		} catch (e) {
			if (e.code === 'EAGAIN') continue;
			if (e.code === 'EOF') break;
			throw e;
		}
		if (n === 0) break;
		chunks.push(Buffer.from(buf.subarray(0, n)));
	}
	return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function aggregate(input) {
	const aggregator = new agg.RecordAggregator();
	const out = [];
	const flush = () => {
		const n = aggregator.length();
		if (n === 0) return;
		const encoded = aggregator.build();
		const a = {partitionKey: encoded.partitionKey, data: encoded.data.toString('base64'), records: n};
		if (encoded.ExplicitHashKey !== undefined) a.explicitHashKey = encoded.ExplicitHashKey;
		out.push(a);
	};
	for (const r of input.records) {
		const rec = {partitionKey: r.partitionKey, data: Buffer.from(r.data, 'base64')};
		if (r.explicitHashKey) rec.explicitHashKey = r.explicitHashKey;
		if (!aggregator.checkIfUserRecordFits(rec)) flush();
		aggregator.addUserRecord(rec);
	}
	flush();
	return {aggregates: out};
}

function deaggregate(input) {
	const out = [];
	for (const r of input.records) {
		agg.deaggregateSync({partitionKey: r.partitionKey, sequenceNumber: r.sequenceNumber, data: r.data}, true, (err, recs) => {
			if (err) throw err;
			for (const u of recs) {
				const o = {partitionKey: u.partitionKey, sequenceNumber: u.sequenceNumber, data: u.data};
				if (u.explicitPartitionKey !== undefined) o.explicitHashKey = u.explicitPartitionKey;
				if (u.subSequenceNumber !== undefined) o.subSequenceNumber = u.subSequenceNumber;
				out.push(o);
			}
		});
	}
	return {records: out};
}

try {
	const mode = process.argv[2];
	const input = readStdin();
	let result;
	if (mode === 'aggregate') result = aggregate(input);
	else if (mode === 'deaggregate') result = deaggregate(input);
	else throw new Error('usage: node kplagg.js aggregate|deaggregate < input.json');
	process.stdout.write(JSON.stringify(result) + '\n');
} catch (e) {
	process.stderr.write('kplagg: ' + (e && e.stack || e) + '\n');
	process.exit(1);
}
