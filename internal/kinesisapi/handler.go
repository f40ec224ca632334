package kinesisapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runnel/runnel/internal/auth"
	"github.com/runnel/runnel/internal/metrics"
	"github.com/runnel/runnel/internal/netconn"
	"github.com/runnel/runnel/internal/streams"
)

// TargetPrefix is the service part of X-Amz-Target for Kinesis Data Streams.
const TargetPrefix = "Kinesis_20131202"

// DefaultMaxBodyBytes is the default request body limit: a full PutRecords of
// 10 MiB payload, base64-encoded in JSON, fits below it with room to spare for
// member names. Kinesis itself caps PutRecords at 10 MiB of record data.
const DefaultMaxBodyBytes = 16 << 20

// Options configure a Handler.
type Options struct {
	// MaxBodyBytes is the largest request body accepted; a larger one is
	// answered with 413 RequestEntityTooLargeException without being read.
	// Default DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxBodyMemory bounds the memory held by request bodies in flight,
	// across all connections and HTTP/2 streams. A request whose body would
	// take the total past it is answered with 503 ServiceUnavailable, which
	// every AWS SDK retries with backoff. At least MaxBodyBytes. Default
	// DefaultMaxBodyMemory.
	MaxBodyMemory int64
	// BodyReadTimeout bounds the time to receive a whole request body, once
	// its headers have arrived. A body still incomplete then (stalled or
	// trickling) is answered with 408 RequestTimeoutException and its
	// connection or stream closed. Default 60s: a 10 MiB PutRecords
	// (13.4 MiB in JSON) at 2 Mbit/s. Zero means no limit.
	BodyReadTimeout time.Duration
	// WriteTimeout bounds the time to write an answer other than a
	// SubscribeToShard event stream; a client that does not read it in time
	// loses its connection (or stream) and the server the memory the answer
	// held. Default 60s. Zero means no limit.
	WriteTimeout time.Duration
	// SubscribeWriteTimeout bounds the time a SubscribeToShard consumer may
	// take to accept one event; a consumer that stops reading longer than
	// this is cut off. Default 30s, the read timeout of the Java SDK's
	// Netty client. Must be positive.
	SubscribeWriteTimeout time.Duration
	// AllowedHosts lists host names, besides localhost and IP addresses,
	// that requests may name in their Host header (or :authority): the
	// defence against DNS rebinding. An entry "name:port" allows that port
	// only; "*" allows any host. Other hosts get 403 AccessDeniedException.
	AllowedHosts []string
	// CORSOrigins lists the web origins ("http://localhost:3000") whose
	// pages may call the API from a browser; "*" allows any. Empty (the
	// default) answers no cross-origin request with CORS headers.
	CORSOrigins []string
	// Logger receives a debug record per request and an error record per
	// internal fault. Nil means slog.Default().
	Logger *slog.Logger
	// APIs are further services served on the same port, each under its
	// own X-Amz-Target prefix, with the same protocol plumbing.
	APIs []API
	// Authorize, when set, decides every request once its input is
	// decoded and valid, before the service sees it (Kinesis and APIs
	// alike). It returns nil to let the request through, or the error to
	// answer with: one implementing WireError with a registered code
	// (AccessDeniedException), or any other error, which is logged and
	// answered InternalFailure. internal/iam's Authorizer is meant for it.
	Authorize func(ctx context.Context, req *AuthorizeRequest) error
	// Auth authenticates every request, of every API, before it is
	// dispatched (SigV4; see package auth). Nil serves requests without
	// authentication, as in tests of the protocol alone.
	Auth *auth.Verifier
	// Audit logs refused requests and, if it asks for them, control-plane
	// calls. Nil logs neither.
	Audit *auth.Audit
}

// API is a service other than Kinesis served by the Handler: the lease
// tables, later others. The Handler decodes its inputs (JSON 1.1 or CBOR
// 1.1), encodes its outputs and turns its errors into the wire's envelope.
type API interface {
	// TargetPrefix is the service part of X-Amz-Target the API answers to.
	TargetPrefix() string
	// NewInput returns a new input value for op to decode into, or nil when
	// the API has no such operation.
	NewInput(op string) any
	// Call runs op. An error the client should see implements WireError
	// with a code of the registry; any other error is an internal fault.
	Call(ctx context.Context, op string, in any) (any, error)
	// HasOutput reports whether op answers with a body.
	HasOutput(op string) bool
}

// JSONFastDecoder is implemented by an API that decodes some JSON inputs
// faster than encoding/json. DecodeJSON fills in from a JSON body and
// reports true only when the result is exactly what encoding/json would
// decode; on false the Handler decodes the body itself (and answers its
// errors), so an unusual body is never refused by the fast path.
type JSONFastDecoder interface {
	DecodeJSON(op string, body []byte, in any) bool
}

// WireError is an error of a service that names its wire error type.
type WireError interface {
	error
	ErrorCode() string
	ErrorMessage() string
}

// DefaultMaxBodyMemory is the default MaxBodyMemory: sixteen maximal bodies.
const DefaultMaxBodyMemory = 256 << 20

// DefaultOptions returns the defaults described on each Options field.
func DefaultOptions() Options {
	return Options{
		MaxBodyBytes:          DefaultMaxBodyBytes,
		MaxBodyMemory:         DefaultMaxBodyMemory,
		BodyReadTimeout:       60 * time.Second,
		WriteTimeout:          60 * time.Second,
		SubscribeWriteTimeout: 30 * time.Second,
	}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.MaxBodyBytes < 1<<10 {
		return errors.New("kinesisapi: MaxBodyBytes below 1 KiB")
	}
	if o.MaxBodyMemory < o.MaxBodyBytes {
		return errors.New("kinesisapi: MaxBodyMemory below MaxBodyBytes")
	}
	if o.BodyReadTimeout < 0 || o.WriteTimeout < 0 {
		return errors.New("kinesisapi: negative timeout")
	}
	if o.SubscribeWriteTimeout <= 0 {
		return errors.New("kinesisapi: SubscribeWriteTimeout must be positive")
	}
	for _, h := range o.AllowedHosts {
		if strings.TrimSpace(h) == "" {
			return errors.New("kinesisapi: empty allowed host")
		}
	}
	for _, origin := range o.CORSOrigins {
		if origin != "*" && !strings.Contains(origin, "://") {
			return fmt.Errorf("kinesisapi: CORS origin %q: want scheme://host[:port] or *", origin)
		}
	}
	return nil
}

// Handler serves the Kinesis Data Streams API over HTTP on a Backend. It is
// safe for concurrent use.
type Handler struct {
	backend Backend
	opts    Options
	log     *slog.Logger
	apis    map[string]API // by TargetPrefix
	budget  *bodyBudget
	access  accessPolicy
}

var _ http.Handler = (*Handler)(nil)

// NewHandler returns a Handler serving b.
func NewHandler(b Backend, opts Options) (*Handler, error) {
	if b == nil {
		return nil, errors.New("kinesisapi: nil backend")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{
		backend: b,
		opts:    opts,
		log:     log,
		apis:    map[string]API{},
		budget:  &bodyBudget{limit: opts.MaxBodyMemory},
		access:  newAccessPolicy(opts.AllowedHosts, opts.CORSOrigins),
	}
	for _, a := range opts.APIs {
		p := a.TargetPrefix()
		if _, dup := h.apis[p]; dup || p == TargetPrefix {
			return nil, fmt.Errorf("kinesisapi: two APIs answer to %s", p)
		}
		h.apis[p] = a
	}
	return h, nil
}

// bufPool holds request and response buffers. Buffers that grew beyond
// maxPooledBuffer are dropped so one huge request does not pin memory.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBuffer = 4 << 20

func getBuffer() *bytes.Buffer { return bufPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufPool.Put(b)
}

// exchange is the state of one request.
type exchange struct {
	w         http.ResponseWriter
	rc        *http.ResponseController
	r         *http.Request
	requestID string
	proto     protocol
	op        string
	status    int
	start     time.Time
	// call carries the stream the service resolved back to the handler,
	// for the latency metrics; it is the context the Backend is called with.
	call metrics.Call
	// noDeadlines is set once the ResponseWriter turned out not to
	// support deadlines (a test recorder).
	noDeadlines bool
	// target is X-Amz-Target (or its presigned query parameter).
	target string
	// principal is who the request is signed as, once authenticated.
	principal *auth.Principal
	// resource is the stream or consumer the input names, copied out of
	// it for the audit log of control-plane calls.
	resource string
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	x := &exchange{w: w, r: r, requestID: newUUID(), rc: http.NewResponseController(w), start: start}
	// Until the body is in, the answer (an early error) may wait for it.
	x.setWriteDeadline(start, h.opts.BodyReadTimeout+h.opts.WriteTimeout)
	hdr := w.Header()
	hdr.Set("x-amzn-RequestId", x.requestID)
	hdr.Set("x-amz-id-2", newID2())
	if !h.access.hostAllowed(r.Host) {
		x.proto = protocolFor(r.Header.Get("Content-Type"))
		if x.proto != protoCBOR {
			x.proto = protoJSON
		}
		ae := newError(ErrAccessDenied, fmt.Sprintf("Host %q is not one this server answers to. "+
			"Use localhost or an IP address, or allow the name with --allowed-hosts (RUNNEL_ALLOWED_HOSTS).", r.Host))
		ae.status = http.StatusForbidden
		x.writeError(ae)
		h.logRequest(x, start)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if allow := h.access.allowOrigin(origin); allow != "" {
			if r.Method == http.MethodOptions {
				preflight(x, allow)
				h.logRequest(x, start)
				return
			}
			hdr.Set("Access-Control-Allow-Origin", allow)
			hdr.Set("Access-Control-Expose-Headers", exposedHeaders)
			if allow != "*" {
				hdr.Set("Vary", "Origin")
			}
		}
	}
	h.serve(x)
	if h.opts.Audit.ControlPlane() && x.principal != nil && !dataPlane[x.op] {
		h.opts.Audit.Call(r.Context(), h.auditEvent(x, x.principal.AccessKeyID, "", ""))
	}
	h.logRequest(x, start)
}

func (h *Handler) logRequest(x *exchange, start time.Time) {
	if !h.log.Enabled(x.r.Context(), slog.LevelDebug) {
		return
	}
	h.log.LogAttrs(x.r.Context(), slog.LevelDebug, "request",
		slog.String("op", x.op),
		slog.Int("status", x.status),
		slog.Duration("duration", time.Since(start)),
		slog.String("request_id", x.requestID),
		slog.String("remote", x.r.RemoteAddr),
	)
}

func (h *Handler) serve(x *exchange) {
	r := x.r
	if r.Method != http.MethodPost {
		x.writeXMLError(http.StatusForbidden, "AccessDeniedException", "Unable to determine service/operation name to be authorized")
		return
	}
	x.proto = protocolFor(r.Header.Get("Content-Type"))
	target := r.Header.Get("X-Amz-Target")
	if target == "" && r.URL.RawQuery != "" {
		// A presigned URL carries the X-Amz-* headers in its query.
		target = r.URL.Query().Get("X-Amz-Target")
	}
	x.target = target
	service, opName, _ := strings.Cut(target, ".")
	x.op = opName
	op := operations[opName]
	targetValid := service == TargetPrefix && op != nil
	api := h.apis[service]
	var apiIn any
	if api != nil {
		apiIn = api.NewInput(opName)
		targetValid = apiIn != nil
	}

	// Authentication, before anything else is looked at: what the headers
	// decide now, the signature over the body once it is read.
	var check *auth.Check
	if h.opts.Auth != nil {
		c, err := h.opts.Auth.Begin(r)
		if err != nil {
			h.refuse(x, "", err)
			return
		}
		check = c
	}

	// The body, bounded: a declared length over the limit is refused before
	// reading; an undeclared one is cut at the limit.
	if r.ContentLength > h.opts.MaxBodyBytes {
		x.writeError(h.tooLarge())
		return
	}
	if h.opts.BodyReadTimeout > 0 {
		x.setDeadline(x.rc.SetReadDeadline, time.Now().Add(h.opts.BodyReadTimeout))
	}
	var src io.Reader = r.Body
	lowatDone := func() {}
	if r.ProtoMajor == 1 && r.ContentLength > 0 {
		// Woken once most of a large body is in, not per piece the client
		// writes.
		src, lowatDone = netconn.BodyReader(netconn.From(r.Context()), src, r.ContentLength)
	}
	if check != nil {
		src = check.Body(src) // hashed as it is read, for the signature
	}
	bd, err := readBody(src, r.ContentLength, h.opts.MaxBodyBytes, h.budget)
	lowatDone()
	defer bd.release()
	if err != nil {
		// The deadline stays: net/http then gives up at once on the rest
		// of the body instead of waiting to discard it.
		x.bodyError(h, err)
		return
	}
	if h.opts.BodyReadTimeout > 0 {
		// A deadline left on an HTTP/1.1 connection would end the wait
		// for the next request, or cut this one's context.
		x.setDeadline(x.rc.SetReadDeadline, time.Time{})
	}
	x.setWriteDeadline(time.Now(), h.opts.WriteTimeout)
	body := bd.b // owned by bd
	if check != nil {
		if err := check.Finish(); err != nil {
			h.refuse(x, check.AccessKeyID(), err)
			return
		}
		x.principal = check.Principal()
		r = r.WithContext(auth.NewContext(r.Context(), x.principal))
		x.r = r
	}

	if len(body) == 0 {
		// Kinesis answers an empty body in JSON 1.1 when asked in JSON 1.1,
		// and in CBOR otherwise.
		if x.proto != protoJSON {
			x.proto = protoCBOR
		}
		if targetValid {
			x.writeError(bareError(ErrSerialization))
		} else {
			x.writeError(bareError(ErrUnknownOperation))
		}
		return
	}
	if x.proto == protoNone {
		if service == "" || opName == "" {
			x.writeXMLError(http.StatusForbidden, "AccessDeniedException", "Unable to determine service/operation name to be authorized")
			return
		}
		x.w.Header()["Content-Type"] = nil
		x.writeRaw(http.StatusNotFound, "", []byte("<UnknownOperationException/>\n"))
		return
	}
	if x.proto == protoPlainJSON {
		// Coral answers plain JSON with HTTP 200 and an error envelope, and
		// goes no further.
		typ, msgKey := "UnknownOperationException", "message"
		if !isMap(protoJSON, body) || !json.Valid(body) {
			typ, msgKey = "SerializationException", "Message"
		}
		x.writeRaw(http.StatusOK, "application/json",
			[]byte(`{"Output":{"__type":"com.amazon.coral.service#`+typ+`","`+msgKey+`":null},"Version":"1.0"}`))
		return
	}
	if !isMap(x.proto, body) {
		x.writeError(bareError(ErrSerialization))
		return
	}
	if !targetValid {
		if service == TargetPrefix && knownButUnserved[opName] {
			x.writeError(notImplemented(opName))
			return
		}
		x.writeError(bareError(ErrUnknownOperation))
		return
	}

	if api != nil {
		h.serveAPI(x, api, apiIn, body)
		return
	}

	in := op.newInput()
	sc := scratchFor(op, x.proto) // memory for the decoded input, reused after the response
	defer sc.release()
	if aerr := decodeWith(x.proto, body, in, sc); aerr != nil {
		x.writeError(aerr)
		return
	}
	h.noteResource(x, in)
	if aerr := validate(&op.input, in); aerr != nil {
		x.writeError(aerr)
		return
	}
	if aerr := h.authorize(x, nil, in); aerr != nil {
		x.writeError(aerr)
		return
	}
	if op.stream != nil {
		op.stream(h, x, in)
		return
	}
	x.call.Reset(r.Context())
	out, err := op.call(&x.call, h.backend, in)
	if err != nil {
		x.writeError(h.backendError(r.Context(), x, err))
	} else {
		x.writeOutput(h, op, out)
	}
	if op.timed {
		if st := x.call.Stream(); st != nil {
			st.ObserveLatency(op.latency, time.Since(x.start))
		}
	}
}

// closeHTTP1 asks net/http to close an HTTP/1.x connection after the
// answer: the rest of the body need not be read. (On HTTP/2 the header
// would send GOAWAY to every stream of the connection; the stream alone
// ends there.)
func (x *exchange) closeHTTP1() {
	if x.r.ProtoMajor == 1 {
		x.w.Header().Set("Connection", "close")
	}
}

// bodyError answers a body that could not be read whole.
func (x *exchange) bodyError(h *Handler, err error) {
	switch {
	case errors.Is(err, errBodyTooLarge):
		x.writeError(h.tooLarge())
	case errors.Is(err, errBodyBudget):
		h.log.LogAttrs(x.r.Context(), slog.LevelWarn, "request refused: body memory limit reached",
			slog.Int64("limit", h.opts.MaxBodyMemory), slog.String("remote", x.r.RemoteAddr))
		x.closeHTTP1()
		x.writeError(newError(ErrServiceUnavailable,
			"The server has too much request data in flight; retry the request later."))
	case errors.Is(err, errBodyTimeout):
		x.closeHTTP1()
		x.setWriteDeadline(time.Now(), h.opts.WriteTimeout)
		x.writeError(newError(ErrRequestTimeout, fmt.Sprintf(
			"The request body was not received within %s.", h.opts.BodyReadTimeout)))
	default:
		// The client went away or sent a broken chunked body.
		x.writeError(bareError(ErrSerialization))
	}
}

// serveAPI serves one operation of an API other than Kinesis.
func (h *Handler) serveAPI(x *exchange, api API, in any, body []byte) {
	fd, fast := api.(JSONFastDecoder)
	if !(fast && x.proto == protoJSON && fd.DecodeJSON(x.op, body, in)) {
		if aerr := decode(x.proto, body, in); aerr != nil {
			x.writeError(aerr)
			return
		}
	}
	h.noteResource(x, in)
	if aerr := h.authorize(x, api, in); aerr != nil {
		x.writeError(aerr)
		return
	}
	out, err := api.Call(x.r.Context(), x.op, in)
	if err != nil {
		x.writeError(h.backendError(x.r.Context(), x, err))
		return
	}
	if !api.HasOutput(x.op) {
		out = nil
	}
	x.writeOutput(h, &operation{name: x.op, hasOutput: true}, out)
}

func (h *Handler) tooLarge() *apiError {
	return newError(ErrRequestEntityTooLarge, fmt.Sprintf(
		"Request body exceeds the limit of %d bytes.", h.opts.MaxBodyBytes))
}

// backendError maps an error from the Backend to the wire. Anything that is
// not a *streams.Error with a registered code is an internal fault: it is
// logged and the client sees only InternalFailure.
func (h *Handler) backendError(ctx context.Context, x *exchange, err error) error {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var se *streams.Error
	if errors.As(err, &se) {
		if ae, ok := fromStreams(se); ok {
			return ae
		}
	}
	var we WireError
	if errors.As(err, &we) {
		if t, ok := registry[we.ErrorCode()]; ok {
			return &apiError{typ: t, message: we.ErrorMessage()}
		}
	}
	h.log.LogAttrs(ctx, slog.LevelError, "internal failure",
		slog.String("op", x.op),
		slog.String("request_id", x.requestID),
		slog.Any("error", err),
	)
	return bareError(ErrInternalFailure)
}

// writeOutput encodes a successful result.
func (x *exchange) writeOutput(h *Handler, op *operation, out any) {
	if !op.hasOutput {
		x.writeRaw(http.StatusOK, x.proto.contentType(), nil)
		return
	}
	if gr, ok := out.(*streams.GetRecordsOutput); ok && gr != nil {
		// Written out, the records' memory can go back to the engine.
		defer gr.Release()
		if x.proto == protoJSON {
			x.writeGetRecordsJSON(gr) // jsonout.go
			return
		}
	}
	if pr, ok := out.(*streams.PutRecordsOutput); ok && pr != nil && x.proto == protoJSON {
		x.writePutRecordsJSON(pr) // jsonout.go
		return
	}
	buf := getBuffer()
	defer putBuffer(buf)
	var err error
	switch {
	case out == nil && x.proto == protoCBOR:
		buf.WriteByte(0xa0) // empty map
	case out == nil:
		buf.WriteString("{}")
	case x.proto == protoCBOR:
		err = cborEnc.NewEncoder(buf).Encode(out)
	default:
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		err = enc.Encode(out)
		if err == nil {
			buf.Truncate(buf.Len() - 1) // Encode's newline
		}
	}
	if err != nil {
		x.writeError(h.backendError(x.r.Context(), x, fmt.Errorf("encode %s output: %w", op.name, err)))
		return
	}
	x.writeRaw(http.StatusOK, x.proto.contentType(), buf.Bytes())
}

// errorBody is an error's wire form. JSON and CBOR share the member names.
type errorBody struct {
	Type         string  `json:"__type" cbor:"__type"`
	Message      *string `json:"message,omitempty" cbor:"message,omitempty"`
	UpperMessage *string `json:"Message,omitempty" cbor:"Message,omitempty"`
}

func (x *exchange) writeError(err error) {
	ae, ok := err.(*apiError)
	if !ok {
		ae = bareError(ErrInternalFailure)
	}
	b := errorBody{Type: ae.typ.Name}
	if !ae.noMessage {
		msg := strings.ToValidUTF8(ae.message, "\uFFFD")
		if ae.upperMessage {
			b.UpperMessage = &msg
		} else {
			b.Message = &msg
		}
	}
	x.w.Header().Set("X-Amzn-ErrorType", ae.typ.Name)
	var body []byte
	proto := x.proto
	if proto == protoCBOR {
		body, _ = cborEnc.Marshal(b)
	} else {
		proto = protoJSON
		body, _ = json.Marshal(b)
	}
	status := ae.typ.Status
	if ae.status != 0 {
		status = ae.status
	}
	x.writeRaw(status, proto.contentType(), body)
}

// writeXMLError answers the way Coral does before it knows the protocol:
// an XML body without a Content-Type header.
func (x *exchange) writeXMLError(status int, typ, msg string) {
	x.w.Header()["Content-Type"] = nil // no type, and none sniffed
	x.writeRaw(status, "", []byte("<"+typ+">\n  <Message>"+msg+"</Message>\n</"+typ+">\n"))
}

// setWriteDeadline bounds the writing of the answer to d from now; d <= 0
// means no bound. Writers that do not support deadlines are left alone.
func (x *exchange) setWriteDeadline(now time.Time, d time.Duration) {
	var t time.Time
	if d > 0 {
		t = now.Add(d)
	}
	x.setDeadline(x.rc.SetWriteDeadline, t)
}

// setDeadline calls set (a ResponseController method) unless the writer
// was found not to support deadlines.
func (x *exchange) setDeadline(set func(time.Time) error, t time.Time) {
	if x.noDeadlines {
		return
	}
	if errors.Is(set(t), http.ErrNotSupported) {
		x.noDeadlines = true
	}
}

func (x *exchange) writeRaw(status int, contentType string, body []byte) {
	hdr := x.w.Header()
	if contentType != "" {
		hdr.Set("Content-Type", contentType)
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	x.status = status
	x.w.WriteHeader(status)
	if len(body) > 0 {
		_, _ = x.w.Write(body)
	}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// newID2 returns an opaque x-amz-id-2 value: 72 random bytes in base64, 96
// characters, the shortest Kinesis was recorded sending (72 to 80 bytes);
// clients only log it.
func newID2() string {
	var b [72]byte
	_, _ = rand.Read(b[:])
	return base64.StdEncoding.EncodeToString(b[:])
}
