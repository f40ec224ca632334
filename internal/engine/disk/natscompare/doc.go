// Package natscompare holds only a benchmark: the disk engine side by side
// with NATS JetStream's file store (a server embedded in-process, published
// to with the nats.go client), on the same workload and disk, in one run. It
// lives apart from package disk so that disk's own tests stay fast and free of
// NATS.
//
//	go test -run '^$' -bench . -benchtime 5s ./internal/engine/disk/natscompare/
package natscompare
