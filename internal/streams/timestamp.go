package streams

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Timestamp is a point in time as the Kinesis wire protocols carry it:
// in JSON 1.1 a number of epoch seconds with a millisecond fraction
// (1459799926.480); in CBOR 1.1 a tag-1 value holding an integer of epoch
// milliseconds, as AWS's CBOR encoders write it (not RFC 8949's seconds).
// Decoding is lenient the way AWS's is: JSON also accepts an ISO 8601 string,
// CBOR also accepts a floating-point number of seconds.
type Timestamp struct{ time.Time }

// Millis returns t as Unix milliseconds.
func (t Timestamp) Millis() int64 { return t.UnixMilli() }

// TimestampMillis returns the Timestamp for Unix milliseconds ms.
func TimestampMillis(ms int64) Timestamp { return Timestamp{time.UnixMilli(ms).UTC()} }

var errBadTimestamp = errors.New("streams: timestamp must be a number of epoch seconds")

// MarshalJSON writes epoch seconds with millisecond precision.
func (t Timestamp) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	return strconv.AppendFloat(nil, float64(ms)/1000, 'f', -1, 64), nil
}

// UnmarshalJSON reads epoch seconds (number) or an ISO 8601 string.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
			t.Time = v.UTC()
			return nil
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errBadTimestamp
		}
		return t.setSeconds(f)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return errBadTimestamp
	}
	return t.setSeconds(f)
}

func (t *Timestamp) setSeconds(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e13 {
		return errBadTimestamp
	}
	t.Time = time.UnixMilli(int64(math.Round(f * 1000))).UTC()
	return nil
}

// MarshalCBOR writes tag 1 around an integer of epoch milliseconds.
func (t Timestamp) MarshalCBOR() ([]byte, error) {
	return cbor.Marshal(cbor.Tag{Number: 1, Content: t.UnixMilli()})
}

// UnmarshalCBOR reads tag 1 (or an untagged number): an integer is epoch
// milliseconds, a float epoch seconds.
func (t *Timestamp) UnmarshalCBOR(b []byte) error {
	var raw cbor.RawTag
	content := b
	if err := cbor.Unmarshal(b, &raw); err == nil {
		if raw.Number != 1 {
			return errBadTimestamp
		}
		content = raw.Content
	}
	var v any
	if err := cbor.Unmarshal(content, &v); err != nil {
		return err
	}
	switch n := v.(type) {
	case nil:
		return nil
	case uint64:
		if n > math.MaxInt64/2 {
			return errBadTimestamp
		}
		t.Time = time.UnixMilli(int64(n)).UTC()
	case int64:
		t.Time = time.UnixMilli(n).UTC()
	case float64:
		return t.setSeconds(n)
	case float32:
		return t.setSeconds(float64(n))
	default:
		return errBadTimestamp
	}
	return nil
}
