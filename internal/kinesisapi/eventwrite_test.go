package kinesisapi

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/eventstream"
	"github.com/runnel/runnel/internal/streams"
)

// The streamed JSON event is byte for byte the message built in memory.
func TestStreamJSONEventMatchesMessage(t *testing.T) {
	keys := map[string]string{"plain": "key-%d", "utf8": "key-\u00e9-%d", "escaped": "key-\"%d\"\n"}
	for _, n := range []int{0, 1, 300, 1000} {
		for kind, key := range keys {
			t.Run(fmt.Sprint(n, kind), func(t *testing.T) { testStreamJSONEvent(t, n, key) })
		}
	}
}

// testStreamJSONEvent checks an event of n records with partition keys from
// the format key.
func testStreamJSONEvent(t *testing.T, n int, key string) {
	csn := "49590338271490256608559692538361571095921575989136588898"
	ev := &streams.SubscribeToShardEvent{ContinuationSequenceNumber: &csn, MillisBehindLatest: 7}
	data := bytes.Repeat([]byte{0, 1, 2, 0xff}, 256) // 1 KiB
	for i := range n {
		ev.Records = append(ev.Records, streams.Record{
			SequenceNumber:              fmt.Sprintf("4959033827149025660855969253836157109592157598913%07d", i),
			ApproximateArrivalTimestamp: streams.TimestampMillis(1764000000123 + int64(i)),
			Data:                        data,
			PartitionKey:                fmt.Sprintf(key, i),
		})
	}
	want, err := eventstream.AppendMessage(nil, eventstream.EventMessage(eventstream.EventTypeSubscribeToShardEvent,
		eventstream.ContentTypeJSON, appendSubscribeEventJSON(nil, ev)))
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	w := &eventWriter{w: rec, rc: http.NewResponseController(rec), proto: protoJSON, timeout: time.Second}
	if err := w.event(eventstream.EventTypeSubscribeToShardEvent, ev); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Fatalf("streamed %d bytes, built %d; they differ", rec.Body.Len(), len(want))
	}
	m, err := eventstream.NewDecoder(bytes.NewReader(rec.Body.Bytes())).Decode()
	if err != nil || m.HeaderString(":event-type") != eventstream.EventTypeSubscribeToShardEvent {
		t.Fatalf("decode: %v %v", m.Headers, err)
	}
}
