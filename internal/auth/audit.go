package auth

import (
	"context"
	"log/slog"
	"net"
)

// Audit logs refused requests, and, when asked, every control-plane call.
// The authentication path (the API handler) and the policy evaluator both
// report to it. A nil *Audit logs nothing.
type Audit struct {
	log          *slog.Logger
	controlPlane bool
}

// NewAudit returns an Audit writing to log (slog.Default() when nil);
// controlPlane asks for a record of every control-plane call.
func NewAudit(log *slog.Logger, controlPlane bool) *Audit {
	if log == nil {
		log = slog.Default()
	}
	return &Audit{log: log, controlPlane: controlPlane}
}

// Event is one audited request.
type Event struct {
	// AccessKeyID is the key the request named, empty if none.
	AccessKeyID string
	// Principal is the principal's ARN, empty when not authenticated.
	Principal string
	// Action is the operation, as X-Amz-Target names it.
	Action string
	// Resource is the stream or consumer ARN or name, when known.
	Resource string
	// SourceIP is the client's address.
	SourceIP string
	// Code is the error type answered (refusals only).
	Code string
	// Reason says why the request was refused (refusals only).
	Reason string
}

// SourceIP returns the IP part of a RemoteAddr.
func SourceIP(remoteAddr string) string {
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return h
	}
	return remoteAddr
}

// Refused logs a refused request at warn level.
func (a *Audit) Refused(ctx context.Context, e Event) {
	if a == nil {
		return
	}
	a.log.LogAttrs(ctx, slog.LevelWarn, "request refused", e.attrs()...)
}

// ControlPlane reports whether control-plane calls are logged.
func (a *Audit) ControlPlane() bool { return a != nil && a.controlPlane }

// Call logs a control-plane call at info level, when asked for.
func (a *Audit) Call(ctx context.Context, e Event) {
	if !a.ControlPlane() {
		return
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "control-plane call", e.attrs()...)
}

func (e Event) attrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("action", e.Action),
		slog.String("access_key", e.AccessKeyID),
		slog.String("principal", e.Principal),
		slog.String("source_ip", e.SourceIP),
	}
	if e.Resource != "" {
		attrs = append(attrs, slog.String("resource", e.Resource))
	}
	if e.Code != "" {
		attrs = append(attrs, slog.String("error", e.Code))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	return attrs
}
