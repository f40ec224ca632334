package kinesisapi

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/runnel/runnel/internal/eventstream"
	"github.com/runnel/runnel/internal/streams"
)

// SubscribeToShard (enhanced fan-out) answers with an event stream instead
// of one body:
//
//	HTTP/1.1 200 OK (or HTTP/2)
//	Content-Type: application/vnd.amazon.eventstream
//	(no Content-Length: chunked on HTTP/1.1, DATA frames on HTTP/2)
//
// The body is a sequence of event-stream messages (package eventstream),
// each flushed as soon as it is written: first an "initial-response" event
// with an empty structure as payload (the Go SDK waits for it), then one
// "SubscribeToShardEvent" per event of the service's Subscription, until it
// ends (the response then ends) or fails with a Kinesis error (sent as an
// exception message, then the response ends). Errors found before the stream
// starts (validation, unknown consumer, ResourceInUseException...) are
// ordinary HTTP error responses.
//
// Payloads are encoded like the request: JSON with :content-type
// "application/json" for an application/x-amz-json-1.1 request; CBOR with
// :content-type "application/x-amz-cbor-1.1" for a CBOR request (the Java
// SDK's default, which decodes event payloads with the protocol's CBOR
// unmarshaller; timestamps are then tag 1 over epoch milliseconds, as in
// every CBOR response).
//
// Flow control: one event at a time. The next event is read from the shard
// log only once the previous one has been handed to the connection, so a
// subscription holds at most one event's records besides what the kernel
// buffers. A JSON event is streamed into its frame through one pooled
// chunk (streamJSONEvent), so its encoding (up to 1.4 MiB, a full event's
// megabyte of data in base64) is never held whole; a CBOR event is encoded
// whole, and only its frame waits on a slow consumer. Each event must be accepted
// within Options.SubscribeWriteTimeout: a consumer that stops reading
// without closing its connection is cut off (its connection or HTTP/2
// stream closed) instead of pinning a goroutine and a megabyte.

// shardSubscriber is the part of the backend that serves SubscribeToShard.
// *streams.Service implements it.
type shardSubscriber interface {
	SubscribeToShard(ctx context.Context, in *streams.SubscribeToShardInput) (*streams.Subscription, error)
}

// ContentTypeEventStream is the Content-Type of a SubscribeToShard response.
const ContentTypeEventStream = "application/vnd.amazon.eventstream"

func init() {
	in := structure("SubscribeToShardInput",
		field("ConsumerARN", consumerARN.req()),
		field("ShardId", shardID.req()),
		field("StartingPosition", structure("StartingPosition",
			field("SequenceNumber", sequenceNumber),
			field("Timestamp", timestamp()),
			field("Type", shardIteratorType.req()),
		).req()),
	)
	in.bind(reflect.TypeFor[streams.SubscribeToShardInput]())
	operations["SubscribeToShard"] = &operation{
		name:      "SubscribeToShard",
		input:     in,
		newInput:  func() any { return new(streams.SubscribeToShardInput) },
		hasOutput: true,
		call: func(ctx context.Context, b Backend, x any) (any, error) {
			return nil, errors.New("kinesisapi: SubscribeToShard is served as a stream")
		},
		stream: func(h *Handler, x *exchange, in any) {
			h.serveSubscription(x, in.(*streams.SubscribeToShardInput))
		},
	}
}

// serveSubscription runs one SubscribeToShard request to its end.
func (h *Handler) serveSubscription(x *exchange, in *streams.SubscribeToShardInput) {
	ctx := x.r.Context()
	sb, ok := h.backend.(shardSubscriber)
	if !ok {
		x.writeError(notImplemented("SubscribeToShard"))
		return
	}
	sub, err := sb.SubscribeToShard(ctx, in)
	if err != nil {
		x.writeError(h.backendError(ctx, x, err))
		return
	}
	defer sub.Close()

	hdr := x.w.Header()
	hdr.Set("Content-Type", ContentTypeEventStream)
	hdr.Del("Content-Length")
	x.status = http.StatusOK
	x.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(x.w)
	// A deadline left on an HTTP/1.1 connection would hit the next request
	// served on it.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()

	es := &eventWriter{w: x.w, rc: rc, proto: x.proto, timeout: h.opts.SubscribeWriteTimeout}
	if err := es.event(eventstream.EventTypeInitialResponse, struct{}{}); err != nil {
		return
	}
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return
			}
			es.exception(h.streamError(ctx, x, err))
			return
		}
		err = es.event(eventstream.EventTypeSubscribeToShardEvent, ev)
		ev.Release() // written out: the records' memory can go back
		ev = nil     // not kept while the loop waits for the next event
		if err != nil {
			h.log.LogAttrs(ctx, slog.LevelDebug, "subscription write failed; consumer cut off",
				slog.String("request_id", x.requestID), slog.String("shard", sub.ShardID()), slog.Any("error", err))
			return
		}
	}
}

// streamError maps an error that ends a subscription mid-stream.
func (h *Handler) streamError(ctx context.Context, x *exchange, err error) *apiError {
	if ae, ok := h.backendError(ctx, x, err).(*apiError); ok {
		return ae
	}
	return bareError(ErrInternalFailure)
}

// eventWriter writes event-stream messages in the request's protocol.
type eventWriter struct {
	w       io.Writer
	frame   []byte // the message being sent
	rc      *http.ResponseController
	proto   protocol
	timeout time.Duration // to accept one message
}

// contentType is the :content-type of payloads.
func (w *eventWriter) contentType() string {
	if w.proto == protoCBOR {
		return contentTypeCBOR
	}
	return eventstream.ContentTypeJSON
}

// encodePayload encodes v in the event payload encoding of p.
func encodePayload(p protocol, v any) ([]byte, error) {
	if p == protoCBOR {
		return cborEnc.Marshal(v)
	}
	buf := getBuffer()
	defer putBuffer(buf)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return append([]byte(nil), buf.Bytes()[:buf.Len()-1]...), nil
}

func (w *eventWriter) event(eventType string, v any) error {
	if ev, ok := v.(*streams.SubscribeToShardEvent); ok && ev != nil && w.proto == protoJSON {
		return w.streamJSONEvent(eventType, ev)
	}
	payload, err := encodePayload(w.proto, v)
	if err != nil {
		return err
	}
	if err := w.encode(eventstream.EventMessage(eventType, w.contentType(), payload)); err != nil {
		return err
	}
	return w.send()
}

// streamJSONEvent writes ev as one event message without building it in
// memory: the payload's length is counted first (the fast encoder of
// jsonout.go in counting mode), then the prelude and headers are written,
// the payload streamed through one pooled chunk buffer, and the message CRC,
// computed on the way, appended. A consumer that stops reading so holds one
// chunk, not a copy of the event.
func (w *eventWriter) streamJSONEvent(eventType string, ev *streams.SubscribeToShardEvent) error {
	cnt := jsonWriter{count: true, buf: make([]byte, 0, 64)}
	cnt.subscribeEvent(ev)
	plen := cnt.n
	if plen > eventstream.MaxPayloadLen {
		return fmt.Errorf("kinesisapi: event payload of %d bytes", plen)
	}
	// The headers' encoding, cut from an empty message: prelude (12 bytes),
	// headers, CRC (4 bytes).
	empty, err := eventstream.AppendMessage(w.frame[:0], eventstream.EventMessage(eventType, w.contentType(), nil))
	if err != nil {
		return err
	}
	w.frame = empty
	headers := empty[12 : len(empty)-4]
	var prelude [12]byte
	binary.BigEndian.PutUint32(prelude[0:], uint32(12+len(headers)+plen+4))
	binary.BigEndian.PutUint32(prelude[4:], uint32(len(headers)))
	binary.BigEndian.PutUint32(prelude[8:], crc32.ChecksumIEEE(prelude[:8]))

	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	cw := &crcWriter{w: w.w}
	_, _ = cw.Write(prelude[:])
	_, _ = cw.Write(headers)
	bp := chunkPool.Get().(*[]byte)
	j := jsonWriter{buf: (*bp)[:0], w: cw, chunk: jsonChunk, plain: !cnt.escaped}
	j.subscribeEvent(ev)
	j.flush()
	if cap(j.buf) <= 4*jsonChunk {
		*bp = j.buf[:0]
		chunkPool.Put(bp)
	}
	if j.n != plen && cw.err == nil {
		return fmt.Errorf("kinesisapi: event payload counted %d bytes, wrote %d", plen, j.n)
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], cw.crc)
	_, _ = cw.Write(sum[:])
	if cw.err != nil {
		return cw.err
	}
	return w.rc.Flush()
}

// crcWriter passes writes on and keeps the CRC-32 (IEEE) of what it wrote;
// after the first error it writes nothing more.
type crcWriter struct {
	w   io.Writer
	crc uint32
	err error
}

func (c *crcWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p)
	_, c.err = c.w.Write(p)
	return len(p), c.err
}

// exceptionPayload is the payload of an exception message.
type exceptionPayload struct {
	Message string `json:"message" cbor:"message"`
}

func (w *eventWriter) exception(ae *apiError) {
	payload, err := encodePayload(w.proto, exceptionPayload{Message: ae.message})
	if err != nil {
		return
	}
	if w.encode(eventstream.ExceptionMessage(ae.typ.Name, w.contentType(), payload)) == nil {
		_ = w.send()
	}
}

// maxKeptFrame bounds the frame buffer a subscription keeps between events.
const maxKeptFrame = 256 << 10

// encode encodes m into the frame buffer.
func (w *eventWriter) encode(m eventstream.Message) error {
	var err error
	w.frame, err = eventstream.AppendMessage(w.frame[:0], m)
	return err
}

// send writes and flushes the frame buffer within the write timeout.
func (w *eventWriter) send() error {
	_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.w.Write(w.frame)
	if cap(w.frame) > maxKeptFrame {
		w.frame = nil
	}
	if err != nil {
		return err
	}
	return w.rc.Flush()
}
