package kinesisapi

import "github.com/runnel/runnel/internal/streams"

// validPutRecords reports whether in certainly passes validate against the
// PutRecords model (ops.go), checked without reflection: PutRecords is the
// busiest call, and validate walks each of its up to 500 records by
// reflection. False means only "ask validate", which also words the
// errors; it is also the answer for what this check does not cover (a
// StreamARN, non-ASCII partition keys). TestValidPutRecords holds it to
// validate.
func validPutRecords(in *streams.PutRecordsInput) bool {
	if n := len(in.Records); n < 1 || n > 500 || in.StreamARN != nil {
		return false
	}
	if in.StreamName != nil && !plainName(*in.StreamName) {
		return false
	}
	for i := range in.Records {
		r := &in.Records[i]
		if r.Data == nil || len(r.Data) > 10485760 {
			return false
		}
		if pk := r.PartitionKey; pk != nil && (len(*pk) < 1 || len(*pk) > 256 || !ascii(*pk)) {
			return false
		}
		if hk := r.ExplicitHashKey; hk != nil && !decimalKey(*hk) {
			return false
		}
	}
	return true
}

// plainName reports whether s is 1 to 128 of [a-zA-Z0-9_.-].
func plainName(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ascii reports whether s is all ASCII (its Java length is then len(s)).
func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// decimalKey reports whether s is 0|[1-9]\d{0,38}.
func decimalKey(s string) bool {
	if s == "0" {
		return true
	}
	if len(s) < 1 || len(s) > 39 || s[0] < '1' || s[0] > '9' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
