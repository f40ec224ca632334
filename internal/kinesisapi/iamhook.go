package kinesisapi

import (
	"context"
	"net"

	"github.com/runnel/runnel/internal/iam"
)

// IAMAuthorizer returns an Options.Authorize that decides each request with
// az for the principal that authentication put in the request's context
// (iam.WithPrincipal). A request without a principal passes: that is a
// server without credentials, which authenticates no one.
func IAMAuthorizer(az *iam.Authorizer) func(context.Context, *AuthorizeRequest) error {
	return func(ctx context.Context, req *AuthorizeRequest) error {
		p, ok := iam.PrincipalFrom(ctx)
		if !ok {
			return nil
		}
		call := iam.Call{
			Service:         req.Service,
			Operation:       req.Operation,
			StreamName:      req.StreamName,
			StreamARN:       req.StreamARN,
			ConsumerName:    req.ConsumerName,
			ConsumerARN:     req.ConsumerARN,
			ResourceARN:     req.ResourceARN,
			Token:           req.Token,
			SecureTransport: req.HTTP.TLS != nil,
		}
		if host, _, err := net.SplitHostPort(req.HTTP.RemoteAddr); err == nil {
			call.SourceIP = host
		} else {
			call.SourceIP = req.HTTP.RemoteAddr
		}
		return az.Authorize(ctx, p, &call)
	}
}
