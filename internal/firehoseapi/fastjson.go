package firehoseapi

import (
	"github.com/runnel/runnel/internal/b64"
	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/jsonscan"
	"github.com/runnel/runnel/internal/kinesisapi"
)

var _ kinesisapi.JSONFastDecoder = (*API)(nil)

// DecodeJSON decodes PutRecordBatch bodies of the usual shape,
// {"DeliveryStreamName": "...", "Records": [{"Data": "<base64>"}, ...]},
// without encoding/json: the records' data is decoded into one buffer.
// Anything else (escapes, other members, a member twice, null, base64
// that is not strict) reports false for encoding/json to decode.
func (a *API) DecodeJSON(op string, body []byte, in any) bool {
	p, ok := in.(*delivery.PutRecordBatchInput)
	if !ok || op != "PutRecordBatch" {
		return false
	}
	return fastPutRecordBatch(body, p)
}

func fastPutRecordBatch(body []byte, p *delivery.PutRecordBatchInput) bool {
	s := jsonscan.Scanner{B: body}
	var (
		name     *string
		records  []delivery.Record
		seenName bool
		seenRecs bool
		dst      = make([]byte, len(body)) // decoded data is shorter than its base64
		used     int
	)
	ok := s.Object(func(key []byte) bool {
		switch string(key) {
		case "DeliveryStreamName":
			if seenName {
				return false
			}
			seenName = true
			v, ok := s.Str()
			if !ok {
				return false
			}
			n := string(v)
			name = &n
			return true
		case "Records":
			if seenRecs {
				return false
			}
			seenRecs = true
			records = make([]delivery.Record, 0, 500)
			return s.Array(func() bool {
				var data []byte
				seen := false
				ok := s.Object(func(key []byte) bool {
					if string(key) != "Data" || seen || !s.Consume('"') {
						return false
					}
					seen = true
					n, end, ok := b64.DecodeQuoted(dst[used:], s.B[s.I:])
					if !ok {
						return false
					}
					data = dst[used : used+n : used+n]
					used += n
					s.I += end + 1
					return true
				})
				if !ok || !seen {
					return false
				}
				records = append(records, delivery.Record{Data: data})
				return true
			})
		}
		return false
	})
	if !ok || !s.End() {
		return false
	}
	p.DeliveryStreamName, p.Records = name, records
	return true
}
