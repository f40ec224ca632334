package kinesisapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/streams"
)

// stdJSON encodes v the way writeOutput's general path does.
func stdJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// chunkRecorder records the writes it receives.
type chunkRecorder struct {
	bytes.Buffer
	writes int
}

func (c *chunkRecorder) Write(p []byte) (int, error) {
	c.writes++
	return c.Buffer.Write(p)
}

// checkGetRecordsJSON checks every mode of the fast encoder against
// encoding/json for out.
func checkGetRecordsJSON(t testing.TB, out *streams.GetRecordsOutput) {
	t.Helper()
	want := stdJSON(t, out)
	got := appendGetRecordsJSON(nil, out)
	if !bytes.Equal(got, want) {
		t.Fatalf("fast encoding differs from encoding/json:\n got %s\nwant %s", got, want)
	}
	n, plain := getRecordsJSONLen(out)
	if n != len(want) {
		t.Fatalf("counted length %d, encoding is %d bytes", n, len(want))
	}
	if plain && (bytes.Contains(want, []byte(`\`)) || !isASCII(want)) {
		t.Fatalf("counting pass found every string plain, but the encoding has escapes or non-ASCII: %s", want)
	}
	for _, chunk := range []int{1, 7, 64, jsonChunk} {
		var rec chunkRecorder
		// As writeGetRecordsJSON streams it: told what the count found.
		j := jsonWriter{w: &rec, chunk: chunk, plain: plain}
		j.getRecords(out)
		j.flush()
		if !bytes.Equal(rec.Bytes(), want) || j.n != len(want) {
			t.Fatalf("chunk %d: streamed %d bytes (n=%d) differ from encoding/json:\n got %s\nwant %s", chunk, rec.Len(), j.n, rec.Bytes(), want)
		}
	}
	// The same records in a SubscribeToShardEvent.
	ev := &streams.SubscribeToShardEvent{Records: out.Records, MillisBehindLatest: out.MillisBehindLatest, ChildShards: out.ChildShards}
	if out.NextShardIterator != nil {
		ev.ContinuationSequenceNumber = out.NextShardIterator
	}
	if got, want := appendSubscribeEventJSON(nil, ev), stdJSON(t, ev); !bytes.Equal(got, want) {
		t.Fatalf("fast event encoding differs from encoding/json:\n got %s\nwant %s", got, want)
	}
	// Decoded, both read back as the same value.
	var a, b streams.GetRecordsOutput
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("fast encoding does not decode: %v", err)
	}
	if err := json.Unmarshal(want, &b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("decoded outputs differ:\n%+v\n%+v", a, b)
	}
}

// Strings that exercise every escaping rule.
var awkwardStrings = []string{
	"", "a", "key-1", `"`, `\`, "<&>", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "é", "日本語",
	"\u2028\u2029", "\xff", "a\xc3", "\xed\xa0\x80", "\U0001F600", "a\"b\\c\u2028d\xfe",
}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return awkwardStrings[r.IntN(len(awkwardStrings))]
	}
	b := make([]byte, r.IntN(40))
	for i := range b {
		switch r.IntN(4) {
		case 0:
			b[i] = byte(r.IntN(256))
		default:
			b[i] = byte(0x20 + r.IntN(0x5f))
		}
	}
	return string(b)
}

func randTimestamp(r *rand.Rand) streams.Timestamp {
	switch r.IntN(6) {
	case 0:
		return streams.Timestamp{}
	case 1:
		return streams.TimestampMillis(r.Int64N(2e15) - 1e15)
	case 2:
		return streams.TimestampMillis(r.Int64N(1000))
	case 3:
		return streams.Timestamp{Time: time.Unix(r.Int64N(1e10), r.Int64N(1e9))}
	}
	return streams.TimestampMillis(1_700_000_000_000 + r.Int64N(1e11))
}

func randOutput(r *rand.Rand) *streams.GetRecordsOutput {
	out := &streams.GetRecordsOutput{MillisBehindLatest: r.Int64N(1e7)}
	if r.IntN(8) == 0 {
		out.MillisBehindLatest = -r.Int64()
	}
	if r.IntN(10) != 0 {
		out.Records = make([]streams.Record, r.IntN(6))
	}
	enc := "KMS"
	for i := range out.Records {
		rec := &out.Records[i]
		rec.SequenceNumber = strconv.FormatUint(r.Uint64(), 10)
		if r.IntN(4) == 0 {
			rec.SequenceNumber = randString(r)
		}
		rec.ApproximateArrivalTimestamp = randTimestamp(r)
		switch r.IntN(5) {
		case 0:
		case 1:
			rec.Data = []byte{}
		default:
			rec.Data = make([]byte, r.IntN(300))
			for k := range rec.Data {
				rec.Data[k] = byte(r.IntN(256))
			}
		}
		rec.PartitionKey = randString(r)
		if r.IntN(3) == 0 {
			rec.EncryptionType = &enc
		}
	}
	if r.IntN(3) != 0 {
		s := randString(r)
		out.NextShardIterator = &s
	}
	switch r.IntN(3) {
	case 0:
		out.ChildShards = []streams.ChildShard{}
	case 1:
		for range 1 + r.IntN(2) {
			c := streams.ChildShard{ShardId: randString(r), HashKeyRange: streams.HashKeyRange{StartingHashKey: "0", EndingHashKey: randString(r)}}
			if r.IntN(4) != 0 {
				c.ParentShards = []string{}
				for range r.IntN(3) {
					c.ParentShards = append(c.ParentShards, randString(r))
				}
			}
			out.ChildShards = append(out.ChildShards, c)
		}
	}
	return out
}

func TestGetRecordsJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		checkGetRecordsJSON(t, randOutput(r))
	}
	checkGetRecordsJSON(t, &streams.GetRecordsOutput{})
	checkGetRecordsJSON(t, getRecordsOutput(50, 3000))
}

// TestTimestampJSON checks the timestamp shortcut against MarshalJSON across
// the range it covers and at its edges.
func TestTimestampJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	// One writer and one counter through every check, each time written
	// twice: the last timestamp's text is kept and reused.
	var shared, counter jsonWriter
	counter.count = true
	check := func(ms int64) {
		ts := streams.TimestampMillis(ms)
		want, _ := ts.MarshalJSON()
		j := jsonWriter{}
		j.timestamp(ts)
		if !bytes.Equal(j.buf, want) {
			t.Fatalf("ms %d: got %s, want %s", ms, j.buf, want)
		}
		for range 2 {
			shared.buf = shared.buf[:0]
			shared.timestamp(ts)
			n := counter.n
			counter.timestamp(ts)
			if !bytes.Equal(shared.buf, want) || counter.n-n != len(want) {
				t.Fatalf("ms %d after others: got %s (counted %d), want %s", ms, shared.buf, counter.n-n, want)
			}
		}
	}
	for _, ms := range []int64{0, 1, 9, 10, 100, 999, 1000, 1001, 1010, 1100, 1e15 - 1, 1e15, 1e15 + 1, -1, -1000, -62135596800000, 1<<53 - 1} {
		check(ms)
	}
	for range 200000 {
		check(r.Int64N(1e15))
		check(1_600_000_000_000 + r.Int64N(1e12))
	}
}

// TestHandlerGetRecordsJSON checks the streamed response's headers and body
// through the handler.
func TestHandlerGetRecordsJSON(t *testing.T) {
	// Several chunks of either size: under jsonBigAnswer and over it.
	for _, n := range []int{300, 3000} {
		f := newFake()
		out := getRecordsOutput(n, 1024)
		f.outputs["GetRecords"] = out
		h := newTestHandler(t, f)
		w := sendJSON(h, "GetRecords", `{"ShardIterator":"AAAA"}`)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		want := stdJSON(t, out)
		if (len(want) >= jsonBigAnswer) != (n == 3000) {
			t.Fatalf("%d records make %d bytes: not the chunk size meant", n, len(want))
		}
		if !bytes.Equal(w.Body.Bytes(), want) {
			t.Fatalf("%d records: body differs from encoding/json", n)
		}
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(len(want)) {
			t.Fatalf("Content-Length %s, body %d bytes", cl, len(want))
		}
		if ct := w.Header().Get("Content-Type"); ct != contentTypeJSON {
			t.Fatalf("Content-Type %q", ct)
		}
	}
}

func FuzzGetRecordsJSON(f *testing.F) {
	f.Add("49590338271490256608559692538361571095921575989136588898", int64(1764000000123), []byte("data"), "key", true, "iterator", int64(0), "shardId-000000000001")
	f.Add("", int64(0), []byte(nil), "\u2028<&>\"\\\x00\xff", false, "", int64(-1), "")
	f.Add("1", int64(-62135596800000), []byte{}, "日本", true, "\xed\xa0\x80", int64(1<<62), "\t")
	f.Fuzz(func(t *testing.T, seq string, ms int64, data []byte, pk string, kms bool, iter string, behind int64, child string) {
		rec := streams.Record{SequenceNumber: seq, ApproximateArrivalTimestamp: streams.TimestampMillis(ms), Data: data, PartitionKey: pk}
		if kms {
			enc := "KMS"
			rec.EncryptionType = &enc
		}
		out := &streams.GetRecordsOutput{Records: []streams.Record{rec, rec}, MillisBehindLatest: behind}
		if iter != "" {
			out.NextShardIterator = &iter
		}
		if child != "" {
			out.ChildShards = []streams.ChildShard{{ShardId: child, ParentShards: []string{pk, seq}, HashKeyRange: streams.HashKeyRange{StartingHashKey: iter, EndingHashKey: child}}}
		}
		checkGetRecordsJSON(t, out)
	})
}

func checkPutRecordsJSON(t testing.TB, out *streams.PutRecordsOutput) {
	t.Helper()
	if got, want := appendPutRecordsJSON(nil, out), stdJSON(t, out); !bytes.Equal(got, want) {
		t.Fatalf("fast encoding differs from encoding/json:\n got %s\nwant %s", got, want)
	}
}

func TestPutRecordsJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	str := func() *string {
		if r.IntN(3) == 0 {
			return nil
		}
		s := string([]rune{rune(r.IntN(0x3000)), '"', rune(r.IntN(128)), '\\', rune(0x2028)})[:r.IntN(8)]
		return &s
	}
	checkPutRecordsJSON(t, &streams.PutRecordsOutput{})
	for range 2000 {
		out := &streams.PutRecordsOutput{FailedRecordCount: r.Int32(), EncryptionType: str()}
		if r.IntN(5) > 0 {
			out.Records = make([]streams.PutRecordsResultEntry, r.IntN(6))
			for i := range out.Records {
				out.Records[i] = streams.PutRecordsResultEntry{SequenceNumber: str(), ShardId: str(), ErrorCode: str(), ErrorMessage: str()}
			}
		}
		checkPutRecordsJSON(t, out)
	}
}

func FuzzPutRecordsJSON(f *testing.F) {
	f.Add(int32(0), "49590338271490256608559692538361571095921575989136588898", "shardId-000000000001", "", "", "KMS")
	f.Add(int32(-1), "", "", "ProvisionedThroughputExceededException", "Rate exceeded for shard \"s\" <&>\u2028", "")
	f.Fuzz(func(t *testing.T, failed int32, seq, shard, code, msg, enc string) {
		opt := func(s string) *string {
			if s == "" {
				return nil
			}
			return &s
		}
		e := streams.PutRecordsResultEntry{SequenceNumber: opt(seq), ShardId: opt(shard), ErrorCode: opt(code), ErrorMessage: opt(msg)}
		checkPutRecordsJSON(t, &streams.PutRecordsOutput{FailedRecordCount: failed, Records: []streams.PutRecordsResultEntry{e, {}, e}, EncryptionType: opt(enc)})
	})
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// TestGetRecordsJSONPlain checks that an answer whose strings need no
// escapes (the usual one: sequence numbers, plain partition keys) is found
// so by the counting pass, and streamed the same without a second look.
func TestGetRecordsJSONPlain(t *testing.T) {
	recs := make([]streams.Record, 50)
	for i := range recs {
		recs[i] = streams.Record{SequenceNumber: fmt.Sprintf("4963%052d", i), PartitionKey: fmt.Sprintf("key-%d", i),
			Data: []byte(strings.Repeat("d", i)), ApproximateArrivalTimestamp: streams.TimestampMillis(1700000000000 + int64(i))}
	}
	next := "AAAAAAAAAAFakeIterator"
	out := &streams.GetRecordsOutput{Records: recs, NextShardIterator: &next, MillisBehindLatest: 5}
	if _, plain := getRecordsJSONLen(out); !plain {
		t.Fatal("counting pass: an answer of plain strings not found plain")
	}
	checkGetRecordsJSON(t, out)
	recs[7].PartitionKey = "a \"quoted\" key"
	if _, plain := getRecordsJSONLen(out); plain {
		t.Fatal("counting pass: a key with quotes found plain")
	}
	checkGetRecordsJSON(t, out)
}
