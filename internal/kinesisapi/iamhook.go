package kinesisapi

import (
	"context"
	"net"
	"sync"

	"github.com/runnel/runnel/internal/auth"
	"github.com/runnel/runnel/internal/iam"
)

// IAMAuthorizer returns an Options.Authorize that decides each request with
// az for the principal that authentication put in the request's context
// (iam.WithPrincipal). A request without a principal passes: that is a
// server without credentials, which authenticates no one.
func IAMAuthorizer(az *iam.Authorizer) func(context.Context, *AuthorizeRequest) error {
	var principals principalCache
	return func(ctx context.Context, req *AuthorizeRequest) error {
		p, ok := iam.PrincipalFrom(ctx)
		if !ok {
			// The principal SigV4 authenticated, if the request was
			// checked against a credentials file; without one there are
			// no policies to apply.
			ap := auth.FromContext(ctx)
			if ap == nil || ap.Unverified {
				return nil
			}
			p = principals.get(ap)
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

// principalCache keeps the policy view of each authenticated principal:
// the credentials set hands out one *auth.Principal per key until it is
// reloaded, so the conversion is done once per key and reload.
type principalCache struct {
	mu sync.Mutex
	m  map[*auth.Principal]*iam.Principal
}

// maxCachedPrincipals bounds the cache; reloads of the credentials file
// leave old entries behind until it is emptied.
const maxCachedPrincipals = 4096

func (c *principalCache) get(ap *auth.Principal) *iam.Principal {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.m[ap]; ok {
		return p
	}
	if c.m == nil || len(c.m) >= maxCachedPrincipals {
		c.m = make(map[*auth.Principal]*iam.Principal)
	}
	p := &iam.Principal{AccessKeyID: ap.AccessKeyID, ARN: ap.ARN, Account: ap.Account}
	for _, doc := range ap.Policies {
		p.Policies = append(p.Policies, string(doc))
	}
	c.m[ap] = p
	return p
}
