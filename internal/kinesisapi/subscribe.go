package kinesisapi

import (
	"context"
	"encoding/json"
	"errors"
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
// subscription holds at most one encoded event (about 1.4 MiB at most, a
// full event's megabyte of data in base64) besides what the kernel buffers.
// The event's payload buffer is released before the frame is written, so
// only the frame waits on a slow consumer. Each event must be accepted
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
		ev = nil // not kept while the loop waits for the next event
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
		// The fast encoder (jsonout.go), into a pooled buffer that goes
		// back before the frame is sent: the frame holds a copy.
		bp := chunkPool.Get().(*[]byte)
		payload := appendSubscribeEventJSON((*bp)[:0], ev)
		err := w.encode(eventstream.EventMessage(eventType, w.contentType(), payload))
		if cap(payload) <= 4*jsonChunk {
			*bp = payload[:0]
			chunkPool.Put(bp)
		}
		if err != nil {
			return err
		}
		return w.send()
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
