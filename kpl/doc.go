// Package kpl reads and writes the Kinesis Producer Library's aggregated
// record format, in which one Kinesis record carries many user records. The
// KPL and the aws-kinesis-agg libraries write it; the KCL, Kinesis Data
// Firehose and aws-kinesis-agg's de-aggregators read it. Aggregation packs
// small user records into records of up to the stream's 1 MiB limit, so a
// producer pays one record's overhead (and one unit of the shard's
// 1000 records/s write limit) for many.
//
// # Format
//
// An aggregated record's data is, byte by byte:
//
//	offset  size  content
//	0       4     magic F3 89 9A C2
//	4       n     protobuf message AggregatedRecord (below)
//	4+n     16    MD5 digest of the n protobuf bytes
//
// The protobuf schema (proto2) is:
//
//	message AggregatedRecord {
//	  repeated string partition_key_table     = 1;
//	  repeated string explicit_hash_key_table = 2;
//	  repeated Record records                 = 3;
//	}
//	message Record {
//	  required uint64 partition_key_index     = 1;
//	  optional uint64 explicit_hash_key_index = 2;
//	  required bytes  data                    = 3;
//	  repeated Tag    tags                    = 4;
//	}
//	message Tag {
//	  required string key   = 1;
//	  optional string value = 2;
//	}
//
// Each field is a key varint (field number << 3 | wire type) followed by its
// value: a varint for the uint64 fields (wire type 0) and a varint length
// then that many bytes for strings, bytes and embedded messages (wire type
// 2). A record's partition key is partition_key_table[partition_key_index]
// and its explicit hash key, when the index is present,
// explicit_hash_key_table[explicit_hash_key_index]. Each table holds a key
// once, in order of first use. A user record's sub-sequence number is its
// index in records; together with the sequence number of the Kinesis record
// that carries it, it orders and checkpoints user records.
//
// The Aggregator writes the fields in field-number order (tables first,
// then the records; in a record the partition key index, the explicit hash
// key index when there is one, then the data; no tags), which is what the
// KPL's protobuf library and aws-kinesis-agg write, so the bytes are the
// same as theirs for the same user records.
//
// # Reading
//
// Like the KCL, Deaggregate treats data as an aggregate only when it starts
// with the magic, is longer than 20 bytes, its digest matches and the
// protobuf parses with every index inside its table; anything else is one
// plain record, handed through unchanged. The decoder skips fields it does
// not know (of any wire type), reads the last value of a repeated scalar
// field as protobuf does, requires proto2's required fields, and never
// copies data: the user records' Data alias the input.
//
// # Writing
//
// Kinesis counts a record's data and its partition key against the 1 MiB
// limit. The Aggregator keeps the exact size of the aggregate it is
// building (magic, protobuf, digest and the partition key it will be put
// with) and refuses a user record that would take it over the limit, so the
// caller puts the aggregate and starts the next. All user records of an
// aggregate go to the aggregate's shard: the caller groups records by shard
// (or by partition key) before adding them, as the KPL does with its shard
// map.
package kpl
