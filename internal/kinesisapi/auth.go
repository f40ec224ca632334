package kinesisapi

import (
	"errors"
	"reflect"
	"strconv"
	"strings"

	"github.com/runnel/runnel/internal/auth"
)

// dataPlane names the operations that move records or leases, of every
// API served: the ones --audit-control-plane does not log.
var dataPlane = map[string]bool{
	"PutRecord": true, "PutRecords": true, "GetRecords": true, "GetShardIterator": true, "SubscribeToShard": true,
	"PutRecordBatch": true, // Firehose
	// The lease tables' per-worker traffic.
	"ListLeases": true, "TakeLease": true, "RenewLeases": true, "HandOffLease": true, "ReleaseLease": true, "Checkpoint": true,
}

// refuse answers a request whose authentication failed and audits it.
func (h *Handler) refuse(x *exchange, accessKey string, err error) {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		x.writeError(h.backendError(x.r.Context(), x, err))
		return
	}
	t, ok := registry[ae.Code]
	if !ok {
		x.writeError(h.backendError(x.r.Context(), x, err))
		return
	}
	if accessKey == "" {
		accessKey = accessKeyOf(x)
	}
	h.opts.Audit.Refused(x.r.Context(), h.auditEvent(x, accessKey, ae.Code, ae.Reason))
	x.writeError(&apiError{typ: t, message: ae.Message})
}

// auditEvent describes the exchange for the audit log.
func (h *Handler) auditEvent(x *exchange, accessKey, code, reason string) auth.Event {
	e := auth.Event{
		AccessKeyID: accessKey,
		Action:      x.target,
		Resource:    x.resource,
		SourceIP:    auth.SourceIP(x.r.RemoteAddr),
		Code:        code,
		Reason:      reason,
	}
	if x.principal != nil {
		e.Principal = x.principal.ARN
	}
	if code == "" {
		e.Reason = "status " + strconv.Itoa(x.status)
	}
	return e
}

// accessKeyOf is the access key a refused request names, if it parses that
// far, for the audit log.
func accessKeyOf(x *exchange) string {
	if s, err := auth.ParseAuthorization(x.r.Header.Get("Authorization"), true); err == nil {
		return s.Credential.AccessKeyID
	}
	if c, err := auth.ParseCredential(x.r.URL.Query().Get("X-Amz-Credential")); err == nil {
		return c.AccessKeyID
	}
	return ""
}

// noteResource keeps, for the audit log of a control-plane call, the
// resource its decoded input names: a copy, as the input may point into
// buffers reused after the request.
func (h *Handler) noteResource(x *exchange, in any) {
	if h.opts.Audit.ControlPlane() && !dataPlane[x.op] {
		x.resource = strings.Clone(resourceOf(in))
	}
}

// resourceOf is the stream or consumer a decoded input names: its
// ConsumerARN, else StreamARN, else StreamName.
func resourceOf(in any) string {
	if in == nil {
		return ""
	}
	v := reflect.ValueOf(in)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return ""
	}
	for _, name := range [...]string{"ConsumerARN", "StreamARN", "StreamName"} {
		f := v.FieldByName(name)
		if !f.IsValid() {
			continue
		}
		for f.Kind() == reflect.Pointer {
			if f.IsNil() {
				break
			}
			f = f.Elem()
		}
		if f.Kind() == reflect.String && f.String() != "" {
			return f.String()
		}
	}
	return ""
}
