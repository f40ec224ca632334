package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultMaxSkew is how far a request's time may be from the server's, as
// Kinesis allows.
const DefaultMaxSkew = 5 * time.Minute

// UnsignedPayload is the X-Amz-Content-Sha256 value of a request whose
// body is not covered by its signature; accepted over TLS only.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// Options configure a Verifier.
type Options struct {
	// Region is the only region credential scopes may name. Required.
	Region string
	// Services are the service names credential scopes may name; the first
	// is the one error messages name. Default kinesis and firehose.
	Services []string
	// Account is the account of the principal a request is taken as when
	// no credentials are configured. Required.
	Account string
	// Credentials are the users whose keys are accepted. Nil means any key
	// is accepted and signatures are not checked (their form still is):
	// the local development default. Replace them with SetCredentials.
	Credentials *Credentials
	// MaxSkew is how far the request's time may be from now, either way.
	// Default DefaultMaxSkew.
	MaxSkew time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultOptions returns the defaults described on each Options field;
// Region and Account are left for the caller.
func DefaultOptions() Options {
	return Options{Services: []string{"kinesis", "firehose"}, MaxSkew: DefaultMaxSkew, Now: time.Now}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.Region == "" {
		return errors.New("auth: no region")
	}
	if !accountRE.MatchString(o.Account) {
		return fmt.Errorf("auth: account %q is not 12 digits", o.Account)
	}
	if o.MaxSkew < 0 {
		return errors.New("auth: negative MaxSkew")
	}
	return nil
}

// Verifier authenticates requests. It is safe for concurrent use.
type Verifier struct {
	region   string
	services []string
	account  string
	skew     time.Duration
	now      func() time.Time
	creds    atomic.Pointer[Credentials]
	checking atomic.Bool
}

// New returns a Verifier.
func New(opts Options) (*Verifier, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{region: opts.Region, services: opts.Services, account: opts.Account, skew: opts.MaxSkew, now: opts.Now}
	if len(v.services) == 0 {
		v.services = []string{"kinesis", "firehose"}
	}
	if v.skew == 0 {
		v.skew = DefaultMaxSkew
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.SetCredentials(opts.Credentials)
	return v, nil
}

// SetCredentials replaces the accepted credentials; requests already begun
// finish with the set they began with. Nil stops checking signatures.
func (v *Verifier) SetCredentials(c *Credentials) {
	v.creds.Store(c)
	v.checking.Store(c != nil)
}

// Checking reports whether signatures are checked (credentials are set).
func (v *Verifier) Checking() bool { return v.checking.Load() }

// Check is an authentication begun on a request's headers, to be finished
// once its body has been read through Body.
type Check struct {
	r       *http.Request
	s       Signed
	p       *Principal
	key     *key // nil when signatures are not checked
	claimed string
	h       hash.Hash
}

// Principal is the identity the request is signed as.
func (c *Check) Principal() *Principal { return c.p }

// AccessKeyID is the access key the request names.
func (c *Check) AccessKeyID() string { return c.s.Credential.AccessKeyID }

// Body returns r, hashed as it is read when the signature covers the body.
func (c *Check) Body(r io.Reader) io.Reader {
	if c.h == nil {
		return r
	}
	return &hashingReader{r: r, h: c.h}
}

type hashingReader struct {
	r io.Reader
	h hash.Hash
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	return n, err
}

// Begin checks what a request's headers decide: that it is signed, the
// form of its signature, its time and scope, its key and session token.
// The error is an *Error. The returned Check finishes the job.
func (v *Verifier) Begin(r *http.Request) (*Check, error) {
	c := &Check{r: r}
	var err error
	authz := r.Header.Get("Authorization")
	switch {
	case authz != "":
		date := r.Header.Get("X-Amz-Date")
		hasDate := date != "" || r.Header.Get("Date") != ""
		c.s, err = ParseAuthorization(authz, hasDate)
		if err != nil {
			return nil, err
		}
		if date != "" {
			c.s.Date, err = parseDate(date)
			c.s.dateRaw = date
		} else {
			c.s.Date, err = parseHTTPDate(r.Header.Get("Date"))
			c.s.dateRaw = c.s.Date.Format(timeFormat)
		}
		if err != nil {
			return nil, err
		}
		c.s.SecurityToken = r.Header.Get("X-Amz-Security-Token")
	case r.URL.RawQuery != "":
		q, _ := url.ParseQuery(r.URL.RawQuery)
		if !IsPresigned(q) {
			return nil, &Error{Code: CodeMissingToken, Message: msgMissingToken, Reason: "request not signed"}
		}
		c.s, err = ParsePresigned(q)
		if err != nil {
			return nil, err
		}
	default:
		return nil, &Error{Code: CodeMissingToken, Message: msgMissingToken, Reason: "request not signed"}
	}
	// HTTP/2 clients may sign the :authority pseudo-header instead of host
	// (the SDK for JavaScript v3 does).
	if !slices.Contains(c.s.SignedHeaders, "host") && !slices.Contains(c.s.SignedHeaders, ":authority") {
		return nil, incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", "host not signed")
	}

	creds := v.creds.Load()
	if creds == nil {
		// Local development: any key, any signature, as long as the
		// request is signed at all.
		c.p = &Principal{
			AccessKeyID: c.s.Credential.AccessKeyID,
			ARN:         "arn:aws:iam::" + v.account + ":root",
			Account:     v.account,
			Unverified:  true,
		}
		return c, nil
	}

	cr := c.s.Credential
	if cr.Terminator != terminator {
		return nil, invalid("Credential should be scoped with a valid terminator: 'aws4_request', not '"+cr.Terminator+"'. ", "bad scope terminator")
	}
	if !slices.Contains(v.services, cr.Service) {
		return nil, invalid("Credential should be scoped to correct service: '"+v.services[0]+"'. ", "scope names service "+cr.Service)
	}
	if cr.Region != v.region {
		return nil, invalid("Credential should be scoped to a valid region, not '"+cr.Region+"'. ", "scope names region "+cr.Region)
	}
	if day := c.s.Date.Format("20060102"); cr.Date != day {
		return nil, invalid("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"+
			cr.Date+"' != '"+day+"', from '"+c.s.dateRaw+"'.", "scope date is not the request's")
	}
	if err := v.checkTime(c.s); err != nil {
		return nil, err
	}
	k := creds.keys[cr.AccessKeyID]
	if k == nil {
		return nil, &Error{Code: CodeUnrecognizedClient, Message: msgBadToken, Reason: "unknown access key"}
	}
	if subtle.ConstantTimeCompare([]byte(k.sessionToken), []byte(c.s.SecurityToken)) != 1 {
		reason := "wrong session token"
		if c.s.SecurityToken == "" {
			reason = "temporary key without its session token"
		} else if k.sessionToken == "" {
			reason = "session token sent with a long-term key"
		}
		return nil, &Error{Code: CodeUnrecognizedClient, Message: msgBadToken, Reason: reason}
	}
	if !k.expires.IsZero() && !v.now().Before(k.expires) {
		return nil, &Error{Code: CodeExpiredToken, Message: msgExpiredToken, Reason: "temporary credentials expired"}
	}
	c.key, c.p = k, k.principal
	c.claimed = r.Header.Get("X-Amz-Content-Sha256")
	if c.claimed == "" && c.s.Presigned {
		c.claimed = r.URL.Query().Get("X-Amz-Content-Sha256")
	}
	if c.claimed != UnsignedPayload {
		c.h = sha256.New()
	}
	return c, nil
}

// checkTime refuses a request signed too long ago or too far ahead, or a
// presigned one past its expiry.
func (v *Verifier) checkTime(s Signed) error {
	now := v.now().UTC()
	mins := int(v.skew / time.Minute)
	if s.Date.After(now.Add(v.skew)) {
		return invalid(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %d min.)",
			s.dateRaw, now.Add(v.skew).Format(timeFormat), now.Format(timeFormat), mins), "signed in the future")
	}
	if s.Presigned {
		limit := time.Duration(s.Expires) * time.Second
		if now.After(s.Date.Add(limit)) {
			return invalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d sec.)",
				s.dateRaw, now.Add(-limit).Format(timeFormat), now.Format(timeFormat), s.Expires), "presigned request expired")
		}
		return nil
	}
	if s.Date.Before(now.Add(-v.skew)) {
		return invalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %d min.)",
			s.dateRaw, now.Add(-v.skew).Format(timeFormat), now.Format(timeFormat), mins), "signature expired")
	}
	return nil
}

// Finish compares the request's signature with the one computed over its
// canonical form, the body hashed as it went through Body. The error is
// an *Error.
func (c *Check) Finish() error {
	if c.key == nil {
		return nil
	}
	var sum string
	if c.h != nil {
		var raw [sha256.Size]byte
		var h [2 * sha256.Size]byte
		hex.Encode(h[:], c.h.Sum(raw[:0]))
		sum = string(h[:])
	}
	var candidates []string
	switch {
	case c.claimed == UnsignedPayload:
		if c.r.TLS == nil {
			return invalid("UNSIGNED-PAYLOAD is accepted only over HTTPS; sign the payload's SHA-256.", "unsigned payload over plain HTTP")
		}
		candidates = []string{UnsignedPayload}
	case c.claimed != "":
		if c.claimed != sum {
			return invalid("The provided 'x-amz-content-sha256' header does not match what was computed.", "payload hash mismatch")
		}
		candidates = []string{c.claimed}
	default:
		candidates = []string{sum}
		if c.s.Presigned && c.r.TLS != nil {
			candidates = append(candidates, UnsignedPayload)
		}
	}
	prefix, err := canonicalPrefix(c.r, &c.s)
	if err != nil {
		return err
	}
	scope := c.s.Credential.Scope()
	key := c.key.signingKey(scope, c.s.Credential)
	var canonical, sts string
	var want [2 * sha256.Size]byte
	for _, payload := range candidates {
		canonical = prefix + payload
		sts = stringToSign(c.s.dateRaw, scope, canonical)
		hex.Encode(want[:], hmacSHA256(key, sts))
		if subtle.ConstantTimeCompare(want[:], []byte(c.s.Signature)) == 1 {
			return nil
		}
	}
	return invalid(msgSignatureWrong+"\n\nThe Canonical String for this request should have been\n'"+canonical+
		"'\n\nThe String-to-Sign should have been\n'"+sts+"'\n", "signature does not match")
}

// stringToSign is the string the signature is the HMAC of.
func stringToSign(date, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	var b strings.Builder
	b.Grow(len(Algorithm) + len(date) + len(scope) + 3 + 2*sha256.Size)
	b.WriteString(Algorithm)
	b.WriteByte('\n')
	b.WriteString(date)
	b.WriteByte('\n')
	b.WriteString(scope)
	b.WriteByte('\n')
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	b.Write(h[:])
	return b.String()
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// deriveKey is SigV4's signing key for one day, region and service.
func deriveKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, terminator)
}

// canonicalPrefix is the canonical request up to, without, the payload
// hash: method, URI, query, headers and the signed header list.
func canonicalPrefix(r *http.Request, s *Signed) (string, error) {
	var b strings.Builder
	b.Grow(512)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(escape(path, false))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery, s.Presigned))
	b.WriteByte('\n')
	for _, name := range s.SignedHeaders {
		values, ok := headerValues(r, name)
		if !ok {
			return "", incomplete("'"+name+"' is named as a SignedHeader, but it does not exist in the HTTP request.", "signed header missing")
		}
		b.WriteString(strings.ToLower(name))
		b.WriteByte(':')
		for i, v := range values {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(trimValue(v))
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(s.signedHeadersRaw)
	b.WriteByte('\n')
	return b.String(), nil
}

// headerValues returns a signed header's values as the client sent them.
// net/http takes Host, Content-Length and Transfer-Encoding out of the
// header map; HTTP/2's :authority, which a client may sign as such, is
// Host.
func headerValues(r *http.Request, name string) ([]string, bool) {
	switch strings.ToLower(name) {
	case "host", ":authority":
		return []string{r.Host}, r.Host != ""
	case "content-length":
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}, true
		}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ", ")}, true
		}
	}
	v, ok := r.Header[textproto.CanonicalMIMEHeaderKey(name)]
	return v, ok
}

// trimValue trims a header value and makes each run of spaces one, as the
// SDKs do.
func trimValue(v string) string {
	v = strings.Trim(v, " \t")
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// canonicalQuery decodes the query's names and values, encodes them again
// the SigV4 way and sorts them; a presigned request's signature is left
// out.
func canonicalQuery(raw string, presigned bool) string {
	if raw == "" {
		return ""
	}
	type pair struct{ k, v string }
	var pairs []pair
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, v = unescape(k), unescape(v)
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, pair{escape(k, true), escape(v, true)})
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// unescape decodes %XX escapes; '+' stays '+'. A malformed escape is kept
// as it is, which then cannot match the client's signature.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	u, err := url.PathUnescape(s)
	if err != nil {
		return s
	}
	return u
}

// escape percent-encodes every byte outside A-Za-z0-9-._~ (and '/', unless
// encodeSlash), upper-case hex, as SigV4 wants.
func escape(s string, encodeSlash bool) string {
	const hexUpper = "0123456789ABCDEF"
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && (encodeSlash || s[i] != '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (!encodeSlash && c == '/') {
			b = append(b, c)
		} else {
			b = append(b, '%', hexUpper[c>>4], hexUpper[c&15])
		}
	}
	return string(b)
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// Login checks an access key and its secret, as the console's login form
// gives them: it returns the key's principal when the key is in the
// credentials set, its secret matches (compared in constant time) and it
// has not expired. Without credentials (signatures not checked) it accepts
// nothing: callers let everyone in then.
func (v *Verifier) Login(accessKeyID, secret string) (*Principal, bool) {
	c := v.creds.Load()
	if c == nil {
		return nil, false
	}
	k, ok := c.keys[accessKeyID]
	if !ok || subtle.ConstantTimeCompare([]byte(k.secret), []byte(secret)) != 1 {
		return nil, false
	}
	if !k.expires.IsZero() && !v.now().Before(k.expires) {
		return nil, false
	}
	return k.principal, true
}
