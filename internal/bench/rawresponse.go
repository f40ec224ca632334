package bench

import (
	"github.com/runnel/runnel/internal/jsonscan"
)

// scanPutRecords reads the per-record results of a PutRecords response
// the way servers write it: an object with the members FailedRecordCount,
// Records (objects of string or null members) and EncryptionType, strings
// without escapes. It appends the results to results and reports false for
// anything else, which the caller then decodes with encoding/json. Shard
// ids are interned in shards, so that a response costs no allocation per
// record.
func scanPutRecords(b []byte, results []putResult, shards map[string]string) ([]putResult, bool) {
	s := scanner{jsonscan.Scanner{B: b}}
	ok := s.Object(func(key []byte) bool {
		switch string(key) {
		case "FailedRecordCount":
			return s.Digits()
		case "EncryptionType":
			_, ok := s.StrOrNull()
			return ok
		case "Records":
			var ok bool
			results, ok = s.results(results, shards)
			return ok
		}
		return false
	})
	return results, ok && s.End()
}

// maxInterned bounds the strings (shard ids, partition keys) a client
// keeps interned.
const maxInterned = 4096

// intern returns b as a string, the same one for the same bytes while m
// has room; m may be nil.
func intern(m map[string]string, b []byte) string {
	if v, ok := m[string(b)]; ok {
		return v
	}
	v := string(b)
	if m != nil && len(m) < maxInterned {
		m[v] = v
	}
	return v
}

// scanner is the shared JSON cursor with the load tool's answer shapes.
type scanner struct{ jsonscan.Scanner }

// results reads the Records array of a PutRecords answer.
func (s *scanner) results(results []putResult, shards map[string]string) ([]putResult, bool) {
	ok := s.Array(func() bool {
		var r putResult
		ok := s.Object(func(key []byte) bool {
			v, ok := s.StrOrNull()
			if !ok {
				return false
			}
			switch string(key) {
			case "SequenceNumber":
			case "ShardId":
				r.ShardID = intern(shards, v)
			case "ErrorCode":
				r.ErrorCode = string(v)
			case "ErrorMessage":
				r.ErrorMessage = string(v)
			default:
				return false
			}
			return true
		})
		results = append(results, r)
		return ok
	})
	return results, ok
}
