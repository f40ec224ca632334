package kpl

import (
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// DefaultMaxSize is the Kinesis limit on a record's data plus its partition
// key: 1 MiB.
const DefaultMaxSize = 1 << 20

// maxPartitionKeyLength is the Kinesis limit on a partition key, in
// Unicode characters.
const maxPartitionKeyLength = 256

var (
	// ErrFull is returned by Add when the user record does not fit in the
	// aggregate being built: put the aggregate (Drain) and add it again.
	ErrFull = errors.New("kpl: aggregate full")
	// ErrTooLarge is returned by Add for a user record that would not fit
	// even in an empty aggregate.
	ErrTooLarge = errors.New("kpl: user record too large for an aggregate")
	// ErrInvalidKey is returned by Add for a partition key or explicit hash
	// key Kinesis would refuse.
	ErrInvalidKey = errors.New("kpl: invalid key")
)

// maxHashKey is the largest explicit hash key, 2^128-1.
var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// Option configures an Aggregator.
type Option func(*Aggregator)

// MaxSize bounds an aggregate's size as Kinesis counts it: its data (magic,
// protobuf, digest) plus the partition key it is put with. The default is
// DefaultMaxSize. The KPL's own default (AggregationMaxSize) is 51200.
func MaxSize(n int) Option {
	return func(a *Aggregator) { a.maxSize = n }
}

// Aggregator builds aggregated records. It is not safe for concurrent use.
type Aggregator struct {
	maxSize int

	pkIndex   map[string]uint64
	pkTable   []string
	ehkIndex  map[string]uint64
	ehkTable  []string
	tableSize int    // bytes of the encoded table fields
	body      []byte // the encoded records fields
	first     Record // the first user record's keys
	n         int
}

// NewAggregator returns an empty Aggregator.
func NewAggregator(opts ...Option) *Aggregator {
	a := &Aggregator{maxSize: DefaultMaxSize, pkIndex: map[string]uint64{}, ehkIndex: map[string]uint64{}}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Len is the number of user records in the aggregate being built.
func (a *Aggregator) Len() int { return a.n }

// Size is the aggregate's size as Kinesis counts it (data plus partition
// key), 0 when it is empty.
func (a *Aggregator) Size() int {
	if a.n == 0 {
		return 0
	}
	return overhead + a.tableSize + len(a.body) + len(a.first.PartitionKey)
}

// Add appends a user record. explicitHashKey is "" for none. It returns
// ErrFull when the record would take the aggregate over its maximum size
// (the aggregate is unchanged: drain it and add the record again),
// ErrTooLarge when the record would not fit in an empty aggregate either,
// and ErrInvalidKey for a key Kinesis would refuse. Add copies data.
func (a *Aggregator) Add(partitionKey, explicitHashKey string, data []byte) error {
	if err := checkKeys(partitionKey, explicitHashKey); err != nil {
		return err
	}
	if a.sizeWith(partitionKey, explicitHashKey, len(data)) <= a.maxSize {
		a.add(partitionKey, explicitHashKey, data)
		return nil
	}
	alone := overhead + len(partitionKey) + tableEntrySize(len(partitionKey)) +
		recordFieldSize(0, explicitHashKey != "", 0, len(data))
	if explicitHashKey != "" {
		alone += tableEntrySize(len(explicitHashKey))
	}
	if a.n == 0 || alone > a.maxSize {
		return fmt.Errorf("%w: %d bytes alone, limit %d", ErrTooLarge, alone, a.maxSize)
	}
	return ErrFull
}

// checkKeys applies the Kinesis rules for keys: a partition key of 1 to 256
// Unicode characters, an explicit hash key that is a decimal number from 0
// to 2^128-1 with no leading zeros.
func checkKeys(pk, ehk string) error {
	if pk == "" || !utf8.ValidString(pk) || utf8.RuneCountInString(pk) > maxPartitionKeyLength {
		return fmt.Errorf("%w: partition key must be 1 to %d Unicode characters", ErrInvalidKey, maxPartitionKeyLength)
	}
	if ehk == "" {
		return nil
	}
	v, ok := new(big.Int).SetString(ehk, 10)
	if !ok || v.Sign() < 0 || v.Cmp(maxHashKey) > 0 || v.String() != ehk {
		return fmt.Errorf("%w: explicit hash key %q is not a decimal number from 0 to 2^128-1", ErrInvalidKey, ehk)
	}
	return nil
}

// sizeWith is Size after adding a record with these keys and data length.
func (a *Aggregator) sizeWith(pk, ehk string, dataLen int) int {
	size := a.Size()
	if a.n == 0 {
		size = overhead + len(pk)
	}
	pkIdx, ok := a.pkIndex[pk]
	if !ok {
		pkIdx = uint64(len(a.pkTable))
		size += tableEntrySize(len(pk))
	}
	var ehkIdx uint64
	if ehk != "" {
		if ehkIdx, ok = a.ehkIndex[ehk]; !ok {
			ehkIdx = uint64(len(a.ehkTable))
			size += tableEntrySize(len(ehk))
		}
	}
	return size + recordFieldSize(pkIdx, ehk != "", ehkIdx, dataLen)
}

// tableEntrySize is the encoded size of a string of n bytes in a table.
func tableEntrySize(n int) int {
	return protowire.SizeTag(fieldPartitionKeyTable) + protowire.SizeBytes(n)
}

// recordFieldSize is the encoded size of a Record field.
func recordFieldSize(pkIdx uint64, hasEHK bool, ehkIdx uint64, dataLen int) int {
	return protowire.SizeTag(fieldRecords) + protowire.SizeBytes(recordSize(pkIdx, hasEHK, ehkIdx, dataLen))
}

// recordSize is the encoded size of a Record message.
func recordSize(pkIdx uint64, hasEHK bool, ehkIdx uint64, dataLen int) int {
	n := protowire.SizeTag(fieldPartitionKeyIndex) + protowire.SizeVarint(pkIdx) +
		protowire.SizeTag(fieldData) + protowire.SizeBytes(dataLen)
	if hasEHK {
		n += protowire.SizeTag(fieldExplicitHashKeyIndex) + protowire.SizeVarint(ehkIdx)
	}
	return n
}

// add appends a record without checking its keys or the size.
func (a *Aggregator) add(pk, ehk string, data []byte) {
	if a.n == 0 {
		a.first = Record{PartitionKey: pk, ExplicitHashKey: ehk}
	}
	pkIdx, ok := a.pkIndex[pk]
	if !ok {
		pkIdx = uint64(len(a.pkTable))
		a.pkIndex[pk] = pkIdx
		a.pkTable = append(a.pkTable, pk)
		a.tableSize += tableEntrySize(len(pk))
	}
	var ehkIdx uint64
	if ehk != "" {
		if ehkIdx, ok = a.ehkIndex[ehk]; !ok {
			ehkIdx = uint64(len(a.ehkTable))
			a.ehkIndex[ehk] = ehkIdx
			a.ehkTable = append(a.ehkTable, ehk)
			a.tableSize += tableEntrySize(len(ehk))
		}
	}
	b := protowire.AppendTag(a.body, fieldRecords, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(recordSize(pkIdx, ehk != "", ehkIdx, len(data))))
	b = protowire.AppendTag(b, fieldPartitionKeyIndex, protowire.VarintType)
	b = protowire.AppendVarint(b, pkIdx)
	if ehk != "" {
		b = protowire.AppendTag(b, fieldExplicitHashKeyIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, ehkIdx)
	}
	b = protowire.AppendTag(b, fieldData, protowire.BytesType)
	a.body = protowire.AppendBytes(b, data)
	a.n++
}

// Aggregate is an aggregated record ready to put.
type Aggregate struct {
	// PartitionKey and ExplicitHashKey are the first user record's: put
	// with them, the aggregate goes to that record's shard. (The KPL puts
	// its aggregates with the partition key "a" and the first record's
	// hash key as explicit hash key, which routes them the same way.)
	PartitionKey    string
	ExplicitHashKey string
	// Data is the aggregated record: magic, protobuf, digest.
	Data []byte
	// Records is the number of user records in it.
	Records int
}

// Drain returns the aggregate built so far and empties the Aggregator. It
// returns an Aggregate with no Data and 0 Records when there is nothing to
// drain. The caller owns Data.
func (a *Aggregator) Drain() Aggregate {
	if a.n == 0 {
		return Aggregate{}
	}
	data := make([]byte, 0, overhead+a.tableSize+len(a.body))
	data = append(data, magic[:]...)
	for _, pk := range a.pkTable {
		data = protowire.AppendTag(data, fieldPartitionKeyTable, protowire.BytesType)
		data = protowire.AppendString(data, pk)
	}
	for _, ehk := range a.ehkTable {
		data = protowire.AppendTag(data, fieldExplicitHashKeyTable, protowire.BytesType)
		data = protowire.AppendString(data, ehk)
	}
	data = append(data, a.body...)
	sum := md5.Sum(data[len(magic):])
	data = append(data, sum[:]...)
	out := Aggregate{PartitionKey: a.first.PartitionKey, ExplicitHashKey: a.first.ExplicitHashKey, Data: data, Records: a.n}
	a.reset()
	return out
}

// reset empties the Aggregator, keeping its buffers.
func (a *Aggregator) reset() {
	clear(a.pkIndex)
	clear(a.ehkIndex)
	a.pkTable, a.ehkTable = a.pkTable[:0], a.ehkTable[:0]
	a.tableSize, a.body, a.first, a.n = 0, a.body[:0], Record{}, 0
}
