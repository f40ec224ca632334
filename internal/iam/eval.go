package iam

import (
	"strings"
)

// Context holds a request's condition keys and their values. Keys are
// case-insensitive, as in IAM; set them with Set.
type Context map[string][]string

// Set sets key to the given values.
func (c Context) Set(key string, values ...string) { c[strings.ToLower(key)] = values }

// lookupLower looks up a key already lower-cased.
func (c Context) lookupLower(key string) ([]string, bool) {
	v, ok := c[key]
	return v, ok && len(v) > 0
}

// Request is one access to evaluate.
type Request struct {
	// PrincipalARN and PrincipalAccount identify the caller.
	PrincipalARN     string
	PrincipalAccount string
	// Action is "service:Operation", such as "kinesis:PutRecord".
	Action string
	// Resource is the ARN acted on, or "*" for account-level actions.
	Resource string
	// ResourceAccount is the account that owns Resource.
	ResourceAccount string
	// Context holds the condition keys (aws:SourceIp, ...).
	Context Context
}

// Outcome is the kind of an evaluation's result.
type Outcome uint8

// Outcomes.
const (
	// Allowed: the request may proceed.
	Allowed Outcome = iota + 1
	// ExplicitDeny: a Deny statement applies.
	ExplicitDeny
	// ImplicitDeny: no statement allows the request.
	ImplicitDeny
)

func (o Outcome) String() string {
	switch o {
	case Allowed:
		return "allowed"
	case ExplicitDeny:
		return "explicit deny"
	case ImplicitDeny:
		return "implicit deny"
	}
	return "unknown"
}

// PolicyType names the kind of policy that decided a denial.
type PolicyType uint8

// Policy types, as named in AWS's access-denied messages.
const (
	IdentityBased PolicyType = iota + 1
	ResourceBased
)

func (t PolicyType) String() string {
	if t == ResourceBased {
		return "resource-based"
	}
	return "identity-based"
}

// Decision is the result of Evaluate.
type Decision struct {
	Outcome Outcome
	// By is the kind of policy that denied: the one holding the Deny
	// statement, or the one whose Allow was missing.
	By PolicyType
	// Sid is the Sid of the deciding statement, when it has one.
	Sid string
}

// Allowed reports whether the request may proceed.
func (d Decision) Allowed() bool { return d.Outcome == Allowed }

// Evaluate decides a request against the caller's identity policies and
// the resource's policy (nil when it has none), by the rules in the package
// comment.
func Evaluate(req *Request, identity []*Policy, resource *Policy) Decision {
	var idAllow, resAllow, resAllowAlone bool
	var sid string
	for _, p := range identity {
		if p == nil {
			continue
		}
		for i := range p.Statements {
			s := &p.Statements[i]
			if !s.applies(req) {
				continue
			}
			if s.Effect == Deny {
				return Decision{Outcome: ExplicitDeny, By: IdentityBased, Sid: s.Sid}
			}
			if !idAllow {
				idAllow, sid = true, s.Sid
			}
		}
	}
	if resource != nil {
		for i := range resource.Statements {
			s := &resource.Statements[i]
			if !s.applies(req) {
				continue
			}
			byName := s.principalNamed(req)
			if s.Effect == Deny {
				return Decision{Outcome: ExplicitDeny, By: ResourceBased, Sid: s.Sid}
			}
			if !resAllow {
				resAllow = true
				if !idAllow {
					sid = s.Sid
				}
			}
			if byName {
				resAllowAlone = true
			}
		}
	}
	sameAccount := req.PrincipalAccount == req.ResourceAccount
	if sameAccount {
		if idAllow || resAllowAlone || req.PrincipalARN == rootARN(req.ResourceAccount) {
			return Decision{Outcome: Allowed, Sid: sid}
		}
		return Decision{Outcome: ImplicitDeny, By: IdentityBased}
	}
	switch {
	case !resAllow:
		return Decision{Outcome: ImplicitDeny, By: ResourceBased}
	case !idAllow && req.PrincipalARN != rootARN(req.PrincipalAccount):
		return Decision{Outcome: ImplicitDeny, By: IdentityBased}
	}
	return Decision{Outcome: Allowed, Sid: sid}
}

func rootARN(account string) string { return "arn:aws:iam::" + account + ":root" }

// applies reports whether the statement matches the request: action,
// resource, principal (resource policies) and conditions.
func (s *Statement) applies(req *Request) bool {
	if matchAnyPattern(s.Actions, req.Action, true) == s.NotAction {
		return false
	}
	if matchAnyPattern(s.Resources, req.Resource, false) == s.NotResource {
		return false
	}
	if s.Principals != nil && s.Principals.match(req) == s.NotPrincipal {
		return false
	}
	for i := range s.Conditions {
		if !s.Conditions[i].holds(req.Context) {
			return false
		}
	}
	return true
}

// principalNamed reports whether an applying Allow statement names the
// caller itself (its ARN, or anyone with "*") rather than only its account:
// in the caller's own account, only such a grant stands without an
// identity policy.
func (s *Statement) principalNamed(req *Request) bool {
	if s.Principals == nil {
		return false
	}
	if s.NotPrincipal {
		return true
	}
	if s.Principals.Any {
		return true
	}
	return s.Principals.namesARN(req.PrincipalARN)
}

// namesARN reports whether the principal ARNs include arn, or the role an
// assumed-role session arn belongs to: naming a role grants its sessions.
func (p *Principals) namesARN(arn string) bool {
	if len(p.ARNs) == 0 {
		return false
	}
	role, isSession := roleOfSession(arn)
	for _, a := range p.ARNs {
		if a == arn || isSession && a == role {
			return true
		}
	}
	return false
}

// roleOfSession returns the role ARN of an assumed-role session ARN
// (arn:aws:sts::<account>:assumed-role/<role>/<session> gives
// arn:aws:iam::<account>:role/<role>).
func roleOfSession(arn string) (string, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[2] != "sts" {
		return "", false
	}
	rest, ok := strings.CutPrefix(parts[5], "assumed-role/")
	if !ok {
		return "", false
	}
	role, _, ok := strings.Cut(rest, "/")
	if !ok || role == "" {
		return "", false
	}
	return parts[0] + ":" + parts[1] + ":iam::" + parts[4] + ":role/" + role, true
}

func (p *Principals) match(req *Request) bool {
	if p.Any {
		return true
	}
	for _, a := range p.Accounts {
		if a == req.PrincipalAccount {
			return true
		}
	}
	return p.namesARN(req.PrincipalARN)
}

func matchAnyPattern(patterns []string, v string, fold bool) bool {
	for _, p := range patterns {
		if wildcardMatch(p, v, fold) {
			return true
		}
	}
	return false
}

// wildcardMatch reports whether v matches pattern, where * matches any run
// of characters (none included) and ? exactly one. fold compares ASCII
// letters case-insensitively. It runs in O(len(pattern)*len(v)) at worst.
func wildcardMatch(pattern, v string, fold bool) bool {
	if pattern == "*" {
		return true
	}
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(v) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, s
			p++
		case p < len(pattern) && (pattern[p] == '?' || eqByte(pattern[p], v[s], fold)):
			p++
			s++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func eqByte(a, b byte, fold bool) bool {
	if a == b {
		return true
	}
	if !fold {
		return false
	}
	if 'A' <= a && a <= 'Z' {
		a += 'a' - 'A'
	}
	if 'A' <= b && b <= 'Z' {
		b += 'a' - 'A'
	}
	return a == b
}
