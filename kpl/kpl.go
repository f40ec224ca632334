package kpl

import (
	"bytes"
	"crypto/md5"
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// magic starts every aggregated record.
var magic = [4]byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	digestSize = md5.Size
	// overhead is what an aggregate adds around its protobuf bytes.
	overhead = len(magic) + digestSize
)

// Field numbers of the protobuf messages (see the package comment).
const (
	fieldPartitionKeyTable    protowire.Number = 1
	fieldExplicitHashKeyTable protowire.Number = 2
	fieldRecords              protowire.Number = 3

	fieldPartitionKeyIndex    protowire.Number = 1
	fieldExplicitHashKeyIndex protowire.Number = 2
	fieldData                 protowire.Number = 3
	fieldTags                 protowire.Number = 4

	fieldTagKey protowire.Number = 1
)

var (
	// ErrNotAggregated is returned by Decode for data that does not start
	// with the magic or is not longer than the magic and the digest.
	ErrNotAggregated = errors.New("kpl: not an aggregated record")
	// ErrChecksum is returned by Decode when the digest does not match.
	ErrChecksum = errors.New("kpl: digest mismatch")
	// ErrMalformed is returned by Decode when the protobuf does not parse,
	// lacks a required field or has an index outside its table.
	ErrMalformed = errors.New("kpl: malformed aggregated record")
)

// Record is a Kinesis record or one user record of an aggregate.
type Record struct {
	// PartitionKey is the record's partition key.
	PartitionKey string
	// ExplicitHashKey is the record's explicit hash key, a decimal number,
	// or "" when it has none.
	ExplicitHashKey string
	// Data is the record's payload.
	Data []byte
	// SubSequenceNumber is a user record's index in its aggregate; 0 for a
	// record that is not an aggregate.
	SubSequenceNumber uint64
}

// IsAggregated reports whether data looks like an aggregated record: it
// starts with the magic and is longer than the magic and the digest (the
// KCL requires a protobuf of at least one byte). It does not check the
// digest; Decode does.
func IsAggregated(data []byte) bool {
	return len(data) > overhead && bytes.Equal(data[:len(magic)], magic[:])
}

// Deaggregate returns the user records of r when r's data is an aggregated
// record, with aggregated true; otherwise (no magic, too short, a digest
// that does not match, a protobuf that does not parse) it returns r alone,
// unchanged, with aggregated false, as the KCL does. An aggregate may hold
// no user records (a protobuf with tables or unknown fields only). The user records' Data alias r.Data.
func Deaggregate(r Record) (records []Record, aggregated bool) {
	recs, err := Decode(r.Data)
	if err != nil {
		return []Record{r}, false
	}
	return recs, true
}

// Decode parses an aggregated record into its user records, in order, each
// with its sub-sequence number. Their Data alias data (each capped at its
// own length). It returns
// ErrNotAggregated, ErrChecksum or an error wrapping ErrMalformed for data
// that is not a valid aggregate.
func Decode(data []byte) ([]Record, error) {
	if !IsAggregated(data) {
		return nil, ErrNotAggregated
	}
	pb := data[len(magic) : len(data)-digestSize]
	sum := md5.Sum(pb)
	if !bytes.Equal(sum[:], data[len(data)-digestSize:]) {
		return nil, ErrChecksum
	}
	var (
		pks, ehks []string
		raws      []rawRecord
	)
	for off := 0; off < len(pb); {
		num, typ, n := protowire.ConsumeTag(pb[off:])
		if n < 0 {
			return nil, malformed(off, "field key", protowire.ParseError(n))
		}
		at := off
		off += n
		if typ != protowire.BytesType || num < fieldPartitionKeyTable || num > fieldRecords {
			// Unknown, or known with another wire type: protobuf
			// skips both.
			n = protowire.ConsumeFieldValue(num, typ, pb[off:])
			if n < 0 {
				return nil, malformed(at, fmt.Sprintf("field %d", num), protowire.ParseError(n))
			}
			off += n
			continue
		}
		v, n := protowire.ConsumeBytes(pb[off:])
		if n < 0 {
			return nil, malformed(at, fmt.Sprintf("field %d", num), protowire.ParseError(n))
		}
		off += n
		switch num {
		case fieldPartitionKeyTable:
			pks = append(pks, string(v))
		case fieldExplicitHashKeyTable:
			ehks = append(ehks, string(v))
		case fieldRecords:
			r, err := parseRecord(v)
			if err != nil {
				return nil, malformed(at, fmt.Sprintf("record %d", len(raws)), err)
			}
			raws = append(raws, r)
		}
	}
	recs := make([]Record, len(raws))
	for i, r := range raws {
		if r.pk >= uint64(len(pks)) {
			return nil, malformed(-1, fmt.Sprintf("record %d", i),
				fmt.Errorf("partition key index %d outside a table of %d", r.pk, len(pks)))
		}
		// Capped, so that appending to one user record's Data cannot
		// overwrite the next one's.
		recs[i] = Record{PartitionKey: pks[r.pk], Data: r.data[:len(r.data):len(r.data)], SubSequenceNumber: uint64(i)}
		if r.hasEHK {
			if r.ehk >= uint64(len(ehks)) {
				return nil, malformed(-1, fmt.Sprintf("record %d", i),
					fmt.Errorf("explicit hash key index %d outside a table of %d", r.ehk, len(ehks)))
			}
			recs[i].ExplicitHashKey = ehks[r.ehk]
		}
		if recs[i].Data == nil {
			recs[i].Data = []byte{}
		}
	}
	return recs, nil
}

// malformed wraps ErrMalformed with where (a protobuf byte offset, or -1)
// and what failed.
func malformed(off int, what string, err error) error {
	if off < 0 {
		return fmt.Errorf("%w: %s: %w", ErrMalformed, what, err)
	}
	return fmt.Errorf("%w: %s at protobuf offset %d: %w", ErrMalformed, what, off, err)
}

// rawRecord is a Record message before its indexes are resolved.
type rawRecord struct {
	pk, ehk       uint64
	hasPK, hasEHK bool
	data          []byte
	hasData       bool
}

// parseRecord parses one Record message. As in protobuf, the last of
// repeated scalar fields wins.
func parseRecord(b []byte) (rawRecord, error) {
	var r rawRecord
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return r, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fieldPartitionKeyIndex && typ == protowire.VarintType:
			r.pk, n = protowire.ConsumeVarint(b)
			r.hasPK = true
		case num == fieldExplicitHashKeyIndex && typ == protowire.VarintType:
			r.ehk, n = protowire.ConsumeVarint(b)
			r.hasEHK = true
		case num == fieldData && typ == protowire.BytesType:
			r.data, n = protowire.ConsumeBytes(b)
			r.hasData = true
		case num == fieldTags && typ == protowire.BytesType:
			var tag []byte
			tag, n = protowire.ConsumeBytes(b)
			if n >= 0 {
				if err := checkTag(tag); err != nil {
					return r, fmt.Errorf("tag: %w", err)
				}
			}
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return r, fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	if !r.hasPK {
		return r, errors.New("no partition_key_index")
	}
	if !r.hasData {
		return r, errors.New("no data")
	}
	return r, nil
}

// checkTag checks that a Tag message parses and has its required key.
// Tags are not returned: neither the KCL nor aws-kinesis-agg hands them on.
func checkTag(b []byte) error {
	hasKey := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == fieldTagKey && typ == protowire.BytesType {
			hasKey = true
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	if !hasKey {
		return errors.New("no key")
	}
	return nil
}
