// Package netconn carries a request's connection in its context, for the
// socket options a handler sets while it reads (see RcvLowat).
package netconn

import (
	"context"
	"net"
)

type key struct{}

// With returns ctx carrying c; http.Server.ConnContext calls it.
func With(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, key{}, c)
}

// From returns the connection ctx carries, or nil.
func From(ctx context.Context) net.Conn {
	c, _ := ctx.Value(key{}).(net.Conn)
	return c
}
