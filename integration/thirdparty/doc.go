// Package thirdparty runs consumer libraries written by others against a
// real `runnel serve` process on a loopback port, unchanged, as their users
// would: vmware-go-kcl-v2 (polling and enhanced fan-out) and
// harlow/kinesis-consumer (polling). Each test writes 10,000 records while
// the stream is resharded from 2 to 4 shards and checks what the library
// hands its application: every record once, each partition key's records in
// order, and every child shard read after its parents.
//
// It is a module of its own so that the libraries and their dependencies
// stay out of runnel's go.mod; `make test` runs it. The server binary is
// built from the repository root in TestMain.
package thirdparty
