package kinesisapi

import (
	"net"
	"net/http"
	"strings"
)

// runnel does not check request signatures, so the API is open to whoever
// can reach the port. Two browser tricks would extend that to any web page a
// developer opens: a cross-origin request (blocked unless CORS allows it)
// and DNS rebinding (a name of the attacker's that resolves to 127.0.0.1, so
// that the browser deems the page and the API one origin). The access
// policy closes both: CORS only for listed origins, and only Host headers
// that name this machine (localhost, an IP address) or a listed name.

// accessPolicy is the Host and CORS policy of a Handler.
type accessPolicy struct {
	anyHost    bool
	hosts      map[string]bool // lower-case "name" or "name:port"
	anyOrigin  bool
	origins    map[string]bool // lower-case origins
	corsOffAll bool            // no origin listed
}

func newAccessPolicy(hosts, origins []string) accessPolicy {
	p := accessPolicy{hosts: map[string]bool{}, origins: map[string]bool{}}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if h == "*" {
			p.anyHost = true
		}
		p.hosts[h] = true
	}
	for _, o := range origins {
		o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
		if o == "*" {
			p.anyOrigin = true
		}
		p.origins[o] = true
	}
	p.corsOffAll = len(p.origins) == 0
	return p
}

// hostAllowed reports whether a request's Host header (r.Host) names this
// server. IP addresses always do: DNS rebinding needs a name. localhost and
// its subdomains do: browsers resolve them to loopback themselves. An empty
// Host (HTTP/1.0) does: no browser sends one.
func (p *accessPolicy) hostAllowed(hostport string) bool {
	if p.anyHost || hostport == "" {
		return true
	}
	host, port := strings.ToLower(hostport), ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") &&
		(host[0] == '[' || strings.IndexByte(host[:i], ':') < 0) {
		// name:port, v4:port or [v6]:port; a bare v6 address has
		// several colons and no brackets.
		host, port = host[:i], host[i+1:]
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.TrimSuffix(host, ".")
	switch {
	case host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return true
	case p.hosts[host]:
		return true
	case port != "" && p.hosts[host+":"+port]:
		return true
	}
	// Only IP addresses are left; parse only what may be one.
	return host != "" && (host[0] >= '0' && host[0] <= '9' || strings.IndexByte(host, ':') >= 0) &&
		net.ParseIP(host) != nil
}

// allowOrigin returns the Access-Control-Allow-Origin value for origin, or
// "" when the origin may not call the API.
func (p *accessPolicy) allowOrigin(origin string) string {
	if p.corsOffAll || origin == "" {
		return ""
	}
	if p.anyOrigin {
		return "*"
	}
	if p.origins[strings.ToLower(origin)] {
		return origin
	}
	return ""
}

// exposedHeaders are the response headers a browser page may read: those
// the AWS SDK for JavaScript reads (request ids, error type, date for clock
// skew).
const exposedHeaders = "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,x-amzn-ErrorMessage,Date"

// preflight answers a CORS preflight from an allowed origin as Kinesis
// does: 200 with an empty body, the request id, the allow headers echoing
// what was asked, and Access-Control-Max-Age two days; no x-amz-id-2.
func preflight(x *exchange, allow string) {
	r := x.r
	hdr := x.w.Header()
	hdr.Del("x-amz-id-2")
	hdr.Set("Access-Control-Allow-Origin", allow)
	if allow != "*" {
		hdr.Set("Vary", "Origin")
	}
	if v := r.Header.Get("Access-Control-Request-Headers"); v != "" {
		hdr.Set("Access-Control-Allow-Headers", v)
	}
	if v := r.Header.Get("Access-Control-Request-Method"); v != "" {
		hdr.Set("Access-Control-Allow-Methods", v)
	}
	hdr.Set("Access-Control-Max-Age", "172800")
	x.writeRaw(http.StatusOK, "", nil)
}
