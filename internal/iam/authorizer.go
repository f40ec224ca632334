package iam

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Principal is an authenticated caller, as the authentication layer
// establishes it from the request's credentials.
type Principal struct {
	// AccessKeyID is the access key the request was signed with.
	AccessKeyID string
	// ARN is the principal's ARN, such as
	// arn:aws:iam::123456789012:user/alice.
	ARN string
	// Account is the 12-digit account the principal belongs to; when
	// empty, the account in ARN.
	Account string
	// Policies are the principal's identity policy documents (JSON).
	Policies []string
}

type principalKey struct{}

// WithPrincipal returns a context carrying p, for Authorizer (through
// PrincipalFrom) to find.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal WithPrincipal put in ctx.
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Resources is what an Authorizer needs from the streams service: the
// resource policies, consumer ARNs and the streams that opaque tokens
// belong to. *streams.Service implements it.
type Resources interface {
	// ResourcePolicy returns the policy document attached to a stream or
	// consumer ARN: "" when it has none or does not exist.
	ResourcePolicy(ctx context.Context, arn string) (string, error)
	// ConsumerARN returns the ARN of a stream's consumer; ok is false
	// when there is no such consumer.
	ConsumerARN(ctx context.Context, stream, consumer string) (arn string, ok bool)
	// TokenStream returns the name of the stream a shard iterator or a
	// ListShards NextToken was issued for; ok is false for a token that
	// is not one of the service's.
	TokenStream(token string) (stream string, ok bool)
}

// Call is one request to authorize: the operation and the names its input
// carries, with the facts about the connection that condition keys use.
type Call struct {
	// Service is the IAM service prefix: "kinesis", or KinesisLeases for
	// the lease tables.
	Service string
	// Operation is the operation's name, such as "PutRecords".
	Operation string
	// The names in the input; empty when absent.
	StreamName, StreamARN     string
	ConsumerName, ConsumerARN string
	ResourceARN               string
	// Token is a shard iterator (GetRecords) or a ListShards NextToken.
	Token string
	// SourceIP is the client's address, without port.
	SourceIP string
	// SecureTransport is set when the request came over TLS.
	SecureTransport bool
}

// LeasesService is the IAM service prefix of runnel's lease tables: its
// actions are "runnel-leases:<Operation>" on the stream's ARN.
const LeasesService = "runnel-leases"

// FirehoseService is the IAM service prefix of the Firehose API: its
// actions are "firehose:<Operation>" on the delivery stream's ARN
// (arn:aws:firehose:<region>:<account>:deliverystream/<name>), as IAM
// names them for Amazon Data Firehose.
const FirehoseService = "firehose"

// AuthorizerOptions configure an Authorizer.
type AuthorizerOptions struct {
	// Region and AccountID are the server's: they make the ARNs of
	// streams named by name, and AccountID owns every stream.
	Region    string
	AccountID string
	// Resources loads resource policies; required.
	Resources Resources
	// Logger receives a record per refused request (principal, action,
	// resource and reason) at info level. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock for aws:CurrentTime; nil means time.Now.
	Now func() time.Time
}

// Authorizer decides requests against identity and resource policies. It
// is safe for concurrent use.
type Authorizer struct {
	opts  AuthorizerOptions
	log   *slog.Logger
	cache policyCache
}

// NewAuthorizer returns an Authorizer.
func NewAuthorizer(opts AuthorizerOptions) (*Authorizer, error) {
	if opts.Resources == nil {
		return nil, errors.New("iam: Authorizer needs Resources")
	}
	if !isAccountID(opts.AccountID) || opts.Region == "" {
		return nil, errors.New("iam: Authorizer needs a region and a 12-digit account id")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Authorizer{opts: opts, log: log, cache: policyCache{m: map[cacheKey]*Policy{}}}, nil
}

// DeniedError is an AccessDeniedException: the request's principal may not
// perform the action on the resource. It satisfies the wire layer's
// WireError.
type DeniedError struct {
	Action   string
	Resource string
	Decision Decision
	Message  string
}

func (e *DeniedError) Error() string { return "AccessDeniedException: " + e.Message }

// ErrorCode is the wire error type.
func (e *DeniedError) ErrorCode() string { return "AccessDeniedException" }

// ErrorMessage is the message, worded as AWS words it.
func (e *DeniedError) ErrorMessage() string { return e.Message }

// Authorize decides c for principal p: nil when allowed, a *DeniedError
// when refused, another error when a policy could not be read.
func (a *Authorizer) Authorize(ctx context.Context, p *Principal, c *Call) error {
	if p == nil {
		return errors.New("iam: no principal to authorize")
	}
	if p.Account == "" {
		// The account is the ARN's when authentication leaves it out.
		q := *p
		q.Account = arnAccount(p.ARN, "")
		p = &q
	}
	action, resource, resAccount, ok := a.target(ctx, c)
	if !ok {
		// The input names its stream only through a token the service
		// does not recognise: it will refuse the token itself, and no
		// data is reachable through it.
		return nil
	}
	identity := make([]*Policy, 0, len(p.Policies))
	for i, doc := range p.Policies {
		pol, err := a.cache.parse(doc, Identity)
		if err != nil {
			return fmt.Errorf("identity policy %d of %s: %w", i+1, p.ARN, err)
		}
		identity = append(identity, pol)
	}
	var resPolicy *Policy
	if resource != "*" {
		doc, err := a.opts.Resources.ResourcePolicy(ctx, resource)
		if err != nil {
			return fmt.Errorf("resource policy of %s: %w", resource, err)
		}
		if doc != "" && doc != "{}" {
			pol, err := a.cache.parse(doc, Resource)
			if err != nil {
				// Stored before policies were validated: it grants
				// nothing, and its owner can still replace it.
				a.log.Warn("ignoring a resource policy that does not parse",
					slog.String("resource", resource), slog.Any("error", err))
			} else {
				resPolicy = pol
			}
		}
	}
	now := a.opts.Now()
	req := &Request{
		PrincipalARN:     p.ARN,
		PrincipalAccount: p.Account,
		Action:           action,
		Resource:         resource,
		ResourceAccount:  resAccount,
		Context:          a.context(p, c, now),
	}
	var d Decision
	if c.Service == "kinesis" && ownerOnly[c.Operation] && p.Account != resAccount {
		d = Decision{Outcome: ImplicitDeny, By: ResourceBased}
	} else {
		d = Evaluate(req, identity, resPolicy)
	}
	if d.Allowed() {
		return nil
	}
	err := &DeniedError{Action: action, Resource: resource, Decision: d, Message: deniedMessage(p.ARN, action, resource, d)}
	a.log.LogAttrs(ctx, slog.LevelInfo, "request refused",
		slog.String("principal", p.ARN),
		slog.String("access_key", p.AccessKeyID),
		slog.String("action", action),
		slog.String("resource", resource),
		slog.String("reason", d.Outcome.String()+" ("+d.By.String()+" policy)"),
		slog.String("sid", d.Sid),
		slog.String("source_ip", c.SourceIP))
	return err
}

// deniedMessage words a refusal as AWS does (IAM User Guide, "Access
// denied error messages"); see docs/COMPATIBILITY.md.
func deniedMessage(principal, action, resource string, d Decision) string {
	var b strings.Builder
	b.WriteString("User: ")
	b.WriteString(principal)
	b.WriteString(" is not authorized to perform: ")
	b.WriteString(action)
	if resource != "*" {
		b.WriteString(" on resource: ")
		b.WriteString(resource)
	}
	if d.Outcome == ExplicitDeny {
		b.WriteString(" with an explicit deny in ")
		if d.By == ResourceBased {
			b.WriteString("a resource-based policy")
		} else {
			b.WriteString("an identity-based policy")
		}
		return b.String()
	}
	b.WriteString(" because no ")
	b.WriteString(d.By.String())
	b.WriteString(" policy allows the ")
	b.WriteString(action)
	b.WriteString(" action")
	return b.String()
}

// target returns the action and resource c is authorized on, and the
// account owning the resource. ok is false when the stream is named only by
// an unrecognised token.
func (a *Authorizer) target(ctx context.Context, c *Call) (action, resource, account string, ok bool) {
	action = c.Service + ":" + c.Operation
	account = a.opts.AccountID
	if c.Service == FirehoseService {
		if c.StreamName == "" {
			return action, "*", account, true // ListDeliveryStreams
		}
		return action, "arn:aws:firehose:" + a.opts.Region + ":" + account + ":deliverystream/" + c.StreamName, account, true
	}
	rt := OnStream
	if c.Service == "kinesis" {
		var known bool
		if rt, known = kinesisActions[c.Operation]; !known {
			rt = OnAccount
		}
	} else if c.StreamName == "" && c.StreamARN == "" {
		rt = OnAccount
	}
	switch rt {
	case OnAccount:
		return action, "*", account, true
	case OnStreamOrConsumer:
		if c.ResourceARN != "" {
			return action, c.ResourceARN, arnAccount(c.ResourceARN, account), true
		}
	case OnConsumer:
		if c.ConsumerARN != "" {
			return action, c.ConsumerARN, arnAccount(c.ConsumerARN, account), true
		}
		if c.StreamARN != "" && c.ConsumerName != "" {
			stream, _ := streamOfARN(c.StreamARN)
			if arn, found := a.opts.Resources.ConsumerARN(ctx, stream, c.ConsumerName); found && arnAccount(c.StreamARN, "") == a.opts.AccountID {
				return action, arn, account, true
			}
			// No such consumer: authorize on every consumer of that
			// name; the service then answers that it does not exist.
			return action, c.StreamARN + "/consumer/" + c.ConsumerName + ":*", arnAccount(c.StreamARN, account), true
		}
	}
	// A token names the stream it reads, whatever else the input says
	// (the service refuses a StreamARN that disagrees).
	if c.Token != "" {
		if name, found := a.opts.Resources.TokenStream(c.Token); found {
			return action, a.streamARN(name), account, true
		}
		if c.StreamARN == "" && c.StreamName == "" {
			return "", "", "", false
		}
	}
	switch {
	case c.StreamARN != "":
		return action, c.StreamARN, arnAccount(c.StreamARN, account), true
	case c.StreamName != "":
		return action, a.streamARN(c.StreamName), account, true
	}
	// Nothing names the resource: the service will refuse the input;
	// authorize on all streams of the account.
	return action, "arn:aws:kinesis:" + a.opts.Region + ":" + account + ":stream/*", account, true
}

func (a *Authorizer) streamARN(name string) string {
	return "arn:aws:kinesis:" + a.opts.Region + ":" + a.opts.AccountID + ":stream/" + name
}

// arnAccount returns the account field of an ARN, or def.
func arnAccount(arn, def string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) == 6 && isAccountID(parts[4]) {
		return parts[4]
	}
	return def
}

// streamOfARN returns the stream name of a stream ARN.
func streamOfARN(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 {
		return "", false
	}
	name, ok := strings.CutPrefix(parts[5], "stream/")
	return name, ok && name != ""
}

// context builds the request's condition keys.
func (a *Authorizer) context(p *Principal, c *Call, now time.Time) Context {
	// Keys are stored lower-cased, as Context.Set would.
	ctx := make(Context, 8)
	principal := p.ARN
	// For an assumed-role session, aws:PrincipalArn is the role's ARN.
	if role, ok := roleOfSession(p.ARN); ok {
		principal = role
	}
	ctx["aws:principalarn"] = []string{principal}
	ctx["aws:principalaccount"] = []string{p.Account}
	ctx["aws:securetransport"] = []string{strconv.FormatBool(c.SecureTransport)}
	ctx["aws:currenttime"] = []string{now.UTC().Format(time.RFC3339)}
	ctx["aws:epochtime"] = []string{strconv.FormatInt(now.Unix(), 10)}
	if c.SourceIP != "" {
		ctx["aws:sourceip"] = []string{c.SourceIP}
	}
	if name, ok := userName(p.ARN); ok {
		ctx["aws:username"] = []string{name}
	}
	return ctx
}

// userName returns the name of an IAM user ARN (arn:aws:iam::acct:user/path/name).
func userName(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[2] != "iam" {
		return "", false
	}
	rest, ok := strings.CutPrefix(parts[5], "user/")
	if !ok {
		return "", false
	}
	return rest[strings.LastIndexByte(rest, '/')+1:], true
}

// policyCache keeps parsed policies by document, so that each request does
// not parse the same JSON again. It holds at most maxCached documents of at
// most maxCachedBytes together, and starts afresh when full.
type policyCache struct {
	mu    sync.RWMutex
	m     map[cacheKey]*Policy
	bytes int
}

type cacheKey struct {
	doc  string
	kind Kind
}

const (
	maxCached      = 4096
	maxCachedBytes = 8 << 20
)

func (c *policyCache) parse(doc string, kind Kind) (*Policy, error) {
	k := cacheKey{doc, kind}
	c.mu.RLock()
	p, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return p, nil
	}
	p, err := Parse([]byte(doc), kind)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if _, dup := c.m[k]; !dup {
		if len(c.m) >= maxCached || c.bytes+len(doc) > maxCachedBytes {
			clear(c.m)
			c.bytes = 0
		}
		c.m[k] = p
		c.bytes += len(doc)
	}
	c.mu.Unlock()
	return p, nil
}
