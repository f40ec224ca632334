package bench

import (
	"github.com/runnel/runnel/internal/jsonscan"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/smithy-go"

	"github.com/runnel/runnel/internal/b64"
	"github.com/runnel/runnel/internal/jsonstr"
)

// rawGetter sends GetRecords calls for one polling consumer without the
// SDK: it writes the JSON body into a reused buffer and scans the answer
// into reused memory.
type rawGetter struct {
	c    *rawClient
	body []byte
	resp bytes.Buffer
	data []byte            // the decoded data of the last answer's records
	recs []rawRecord       // the last answer's records
	keys map[string]string // partition keys seen, interned
}

// rawRecord is a record of a GetRecords answer: its data (valid until the
// next call) and the strings the tool checks.
type rawRecord struct {
	Data           []byte
	PartitionKey   string
	SequenceNumber string
}

// rawGetRecordsOutput is what encoding/json decodes an answer into when
// scanGetRecords leaves it: the members the tool uses.
type rawGetRecordsOutput struct {
	Records []struct {
		Data           []byte
		PartitionKey   string
		SequenceNumber string
	}
	NextShardIterator *string
}

// getRecords reads up to limit records at iter. It returns the records, in
// memory reused by the next call, and the next iterator (nil at the end of
// a closed shard). Errors are shaped like the SDK's, as rawClient.call's.
func (g *rawGetter) getRecords(ctx context.Context, iter string, limit int) ([]rawRecord, *string, error) {
	g.body = append(g.body[:0], `{"ShardIterator":`...)
	g.body = jsonstr.Append(g.body, iter)
	g.body = append(g.body, `,"Limit":`...)
	g.body = strconv.AppendInt(g.body, int64(limit), 10)
	g.body = append(g.body, '}')
	if err := g.c.call(ctx, "GetRecords", g.body, &g.resp); err != nil {
		return nil, nil, err
	}
	b := g.resp.Bytes()
	// Decoded data is shorter than its base64: with room for the whole
	// answer, no record's data moves while the answer is scanned.
	if cap(g.data) < len(b) {
		g.data = make([]byte, 0, len(b))
	}
	if g.keys == nil {
		g.keys = map[string]string{}
	}
	recs, next, ok := scanGetRecords(b, g.recs[:0], g.data[:0], g.keys)
	if ok {
		g.recs = recs
		return recs, next, nil
	}
	var out rawGetRecordsOutput
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, nil, &smithy.DeserializationError{Err: fmt.Errorf("GetRecords response: %w", err)}
	}
	recs = g.recs[:0]
	for _, r := range out.Records {
		recs = append(recs, rawRecord{Data: r.Data, PartitionKey: r.PartitionKey, SequenceNumber: r.SequenceNumber})
	}
	g.recs = recs
	return recs, out.NextShardIterator, nil
}

// scanGetRecords reads a GetRecords answer the way servers write it: an
// object of Records (objects of SequenceNumber, Data, PartitionKey,
// ApproximateArrivalTimestamp and EncryptionType), NextShardIterator,
// MillisBehindLatest and ChildShards, strings without escapes. It decodes
// the records' data into data's spare capacity, which must be large enough
// (the answer's length is), appends the records to recs and reports false
// for anything else, which the caller then decodes with encoding/json.
func scanGetRecords(b []byte, recs []rawRecord, data []byte, keys map[string]string) ([]rawRecord, *string, bool) {
	s := scanner{jsonscan.Scanner{B: b}}
	var next *string
	ok := s.Object(func(key []byte) bool {
		switch string(key) {
		case "Records":
			var ok bool
			recs, data, ok = s.records(recs, data, keys)
			return ok
		case "NextShardIterator":
			v, ok := s.StrOrNull()
			next = nil
			if v != nil {
				it := string(v)
				next = &it
			}
			return ok
		case "MillisBehindLatest", "ChildShards":
			return s.Skip(0)
		}
		return false
	})
	if !ok || !s.End() {
		return recs, nil, false
	}
	return recs, next, true
}

// records reads a Records array, decoding data into data's spare
// capacity.
func (s *scanner) records(recs []rawRecord, data []byte, keys map[string]string) ([]rawRecord, []byte, bool) {
	ok := s.Array(func() bool {
		var r rawRecord
		ok := s.Object(func(key []byte) bool {
			switch string(key) {
			case "Data":
				r.Data = nil
				if s.Null() {
					return true
				}
				if !s.Consume('"') {
					return false
				}
				m, end, ok := b64.DecodeQuoted(data[len(data):cap(data)], s.B[s.I:])
				if !ok {
					return false
				}
				s.I += end + 1
				r.Data = data[len(data) : len(data)+m : len(data)+m]
				data = data[:len(data)+m]
			case "PartitionKey":
				v, ok := s.StrOrNull()
				if !ok {
					return false
				}
				r.PartitionKey = intern(keys, v)
			case "SequenceNumber":
				v, ok := s.StrOrNull()
				if !ok {
					return false
				}
				r.SequenceNumber = string(v)
			case "ApproximateArrivalTimestamp", "EncryptionType":
				return s.Skip(0)
			default:
				return false
			}
			return true
		})
		recs = append(recs, r)
		return ok
	})
	return recs, data, ok
}
