package kinesisapi

import (
	"errors"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
)

// AuthorizeRequest is what Options.Authorize decides: one decoded, valid
// request, the names of the resources its input carries and the HTTP
// request it came in (its context holds what authentication established;
// RemoteAddr and TLS the connection's facts).
type AuthorizeRequest struct {
	// Target is the X-Amz-Target service prefix: TargetPrefix for
	// Kinesis, or the TargetPrefix of one of Options.APIs.
	Target string
	// Service is the IAM service prefix of the actions: "kinesis", or
	// what an API's IAMService method says (its Target otherwise).
	Service string
	// Operation is the operation's name, such as "PutRecords".
	Operation string
	// The resource names of the input; empty when absent.
	StreamName, StreamARN     string
	ConsumerName, ConsumerARN string
	ResourceARN               string
	// Token is the input's ShardIterator or NextToken, which name their
	// stream only to the service that issued them.
	Token string
	// Input is the decoded input (a *streams.<Op>Input for Kinesis). The
	// hook must not keep it after returning.
	Input any
	// HTTP is the request being served.
	HTTP *http.Request
}

// authorize asks Options.Authorize about the request; a non-nil result is
// the error to answer with.
func (h *Handler) authorize(x *exchange, api API, in any) *apiError {
	if h.opts.Authorize == nil {
		return nil
	}
	req := &AuthorizeRequest{Target: TargetPrefix, Service: "kinesis", Operation: x.op, Input: in, HTTP: x.r}
	if api != nil {
		req.Target, req.Service = api.TargetPrefix(), api.TargetPrefix()
		if n, ok := api.(iamNamed); ok {
			req.Service = n.IAMService()
		}
	}
	inputRefs(in, req)
	err := h.opts.Authorize(x.r.Context(), req)
	if err == nil {
		return nil
	}
	var we WireError
	if errors.As(err, &we) {
		if t, ok := registry[we.ErrorCode()]; ok {
			// Kinesis names the member "Message" in its
			// AccessDeniedException (as Coral does for
			// SerializationException).
			return &apiError{typ: t, message: we.ErrorMessage(), upperMessage: t == ErrAccessDenied}
		}
	}
	h.log.LogAttrs(x.r.Context(), slog.LevelError, "authorization failed",
		slog.String("op", x.op),
		slog.String("request_id", x.requestID),
		slog.Any("error", err))
	return bareError(ErrInternalFailure)
}

// iamNamed is an API whose actions have an IAM service prefix of their own.
type iamNamed interface {
	IAMService() string
}

// refFields are the input members authorization looks at, by Go field
// name (the wire names are the same).
var refFields = [...]string{"StreamName", "StreamARN", "ConsumerName", "ConsumerARN", "ResourceARN", "ShardIterator", "NextToken", "DeliveryStreamName"}

// refIndex holds, per input type, the index path of each of refFields
// (nil when the type has no such string or *string field).
var refIndex sync.Map // reflect.Type -> *[len(refFields)][]int

func indexOf(t reflect.Type) *[len(refFields)][]int {
	if v, ok := refIndex.Load(t); ok {
		return v.(*[len(refFields)][]int)
	}
	var idx [len(refFields)][]int
	for i, name := range refFields {
		f, ok := t.FieldByName(name)
		if !ok {
			continue
		}
		if f.Type.Kind() == reflect.String || f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.String {
			idx[i] = f.Index
		}
	}
	v, _ := refIndex.LoadOrStore(t, &idx)
	return v.(*[len(refFields)][]int)
}

// inputRefs copies the resource names of in (a pointer to a struct) into req.
func inputRefs(in any, req *AuthorizeRequest) {
	v := reflect.ValueOf(in)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return
	}
	v = v.Elem()
	idx := indexOf(v.Type())
	dst := [...]*string{&req.StreamName, &req.StreamARN, &req.ConsumerName, &req.ConsumerARN, &req.ResourceARN, &req.Token, &req.Token, &req.StreamName}
	for i, path := range idx {
		if path == nil {
			continue
		}
		f, err := v.FieldByIndexErr(path)
		if err != nil {
			continue // through a nil embedded pointer
		}
		if f.Kind() == reflect.Pointer {
			if f.IsNil() {
				continue
			}
			f = f.Elem()
		}
		if s := f.String(); s != "" {
			*dst[i] = s
		}
	}
}
