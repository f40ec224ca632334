package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind says where a policy is attached, which decides the elements it must
// and must not have.
type Kind int

const (
	// Identity policies are attached to a principal: they have no
	// Principal element.
	Identity Kind = iota
	// Resource policies are attached to a stream or a consumer: every
	// statement names its Principal (or NotPrincipal).
	Resource
)

// MaxPolicyBytes is the largest policy document accepted; IAM's own limits
// are smaller (6,144 characters for a managed policy, 20 KiB for most
// resource policies).
const MaxPolicyBytes = 64 << 10

// Effect is a statement's Effect.
type Effect uint8

// The two effects.
const (
	Allow Effect = iota + 1
	Deny
)

func (e Effect) String() string {
	switch e {
	case Allow:
		return "Allow"
	case Deny:
		return "Deny"
	}
	return "Effect(" + strconv.Itoa(int(e)) + ")"
}

// Policy is a parsed, validated policy document. It is immutable and safe
// for concurrent use.
type Policy struct {
	Version    string
	ID         string
	Statements []Statement
}

// Statement is one statement of a policy.
type Statement struct {
	Sid    string
	Effect Effect
	// Actions are the patterns of Action, or of NotAction when NotAction
	// is set.
	Actions   []string
	NotAction bool
	// Resources are the patterns of Resource, or of NotResource.
	Resources   []string
	NotResource bool
	// Principals is the Principal (or NotPrincipal) element; nil in an
	// identity policy.
	Principals   *Principals
	NotPrincipal bool
	// Conditions must all hold for the statement to apply.
	Conditions []Condition
}

// Principals is a statement's Principal element.
type Principals struct {
	// Any is set by "*" or {"AWS": "*"}.
	Any bool
	// Accounts are 12-digit account ids, given bare or as root ARNs.
	Accounts []string
	// ARNs are the principal ARNs named, other than account roots.
	ARNs []string
	// Others counts entries of other kinds (Service, Federated,
	// CanonicalUser): they never match a principal of runnel's.
	Others int
}

// PolicyError is a policy document that cannot be used: malformed JSON or
// an element IAM would refuse. Msg says which and why.
type PolicyError struct {
	Msg string
}

func (e *PolicyError) Error() string { return "iam: invalid policy: " + e.Msg }

// ErrInvalidJSON is wrapped by the PolicyError of a document that is not a
// JSON object.
var ErrInvalidJSON = errors.New("iam: policy is not valid JSON")

func policyErr(format string, args ...any) error {
	return &PolicyError{Msg: fmt.Sprintf(format, args...)}
}

// Parse parses and validates a policy document of the given kind.
func Parse(doc []byte, kind Kind) (*Policy, error) {
	if len(doc) > MaxPolicyBytes {
		return nil, policyErr("the document is %d bytes, more than the limit of %d", len(doc), MaxPolicyBytes)
	}
	var top map[string]json.RawMessage
	if err := unmarshal(doc, &top); err != nil || top == nil {
		return nil, fmt.Errorf("%w: %w", &PolicyError{Msg: "the document is not a JSON object"}, ErrInvalidJSON)
	}
	p := &Policy{Version: "2008-10-17"}
	var stmts json.RawMessage
	for k, v := range top {
		switch k {
		case "Version":
			if err := unmarshal(v, &p.Version); err != nil {
				return nil, policyErr("Version must be a string")
			}
			if p.Version != "2012-10-17" && p.Version != "2008-10-17" {
				return nil, policyErr("Version %q is not 2012-10-17 or 2008-10-17", p.Version)
			}
		case "Id":
			if err := unmarshal(v, &p.ID); err != nil {
				return nil, policyErr("Id must be a string")
			}
		case "Statement":
			stmts = v
		default:
			return nil, policyErr("unknown element %q at the top level", k)
		}
	}
	if stmts == nil {
		return nil, policyErr("missing required element Statement")
	}
	var raws []json.RawMessage
	switch firstByte(stmts) {
	case '[':
		if err := unmarshal(stmts, &raws); err != nil {
			return nil, policyErr("Statement must be an object or an array of objects")
		}
	case '{':
		raws = []json.RawMessage{stmts}
	default:
		return nil, policyErr("Statement must be an object or an array of objects")
	}
	if len(raws) == 0 {
		return nil, policyErr("Statement is empty")
	}
	sids := map[string]bool{}
	for i, raw := range raws {
		s, err := parseStatement(raw, kind)
		if err != nil {
			return nil, policyErr("Statement %d: %s", i+1, err.(*PolicyError).Msg)
		}
		if s.Sid != "" {
			if sids[s.Sid] {
				return nil, policyErr("Statement %d: Sid %q is used twice", i+1, s.Sid)
			}
			sids[s.Sid] = true
		}
		p.Statements = append(p.Statements, s)
	}
	return p, nil
}

func firstByte(b []byte) byte {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// unmarshal decodes strictly: numbers stay json.Number.
func unmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	if _, err := d.Token(); err == nil {
		return errors.New("trailing data")
	}
	return nil
}

func parseStatement(raw json.RawMessage, kind Kind) (Statement, error) {
	var s Statement
	var m map[string]json.RawMessage
	if err := unmarshal(raw, &m); err != nil || m == nil {
		return s, policyErr("not a JSON object")
	}
	var haveAction, haveResource, havePrincipal bool
	for k, v := range m {
		var err error
		switch k {
		case "Sid":
			if unmarshal(v, &s.Sid) != nil {
				return s, policyErr("Sid must be a string")
			}
		case "Effect":
			var e string
			if unmarshal(v, &e) != nil {
				return s, policyErr("Effect must be a string")
			}
			switch e {
			case "Allow":
				s.Effect = Allow
			case "Deny":
				s.Effect = Deny
			default:
				return s, policyErr("Effect %q is not Allow or Deny", e)
			}
		case "Action", "NotAction":
			if haveAction {
				return s, policyErr("has both Action and NotAction")
			}
			haveAction, s.NotAction = true, k == "NotAction"
			if s.Actions, err = stringList(k, v); err == nil {
				err = checkActions(k, s.Actions, kind)
			}
		case "Resource", "NotResource":
			if haveResource {
				return s, policyErr("has both Resource and NotResource")
			}
			haveResource, s.NotResource = true, k == "NotResource"
			if s.Resources, err = stringList(k, v); err == nil {
				err = checkResources(k, s.Resources)
			}
		case "Principal", "NotPrincipal":
			if kind == Identity {
				return s, policyErr("%s is not allowed in an identity-based policy", k)
			}
			if havePrincipal {
				return s, policyErr("has both Principal and NotPrincipal")
			}
			havePrincipal, s.NotPrincipal = true, k == "NotPrincipal"
			s.Principals, err = parsePrincipals(k, v)
		case "Condition":
			s.Conditions, err = parseConditions(v)
		default:
			return s, policyErr("unknown element %q", k)
		}
		if err != nil {
			return s, err
		}
	}
	switch {
	case s.Effect == 0:
		return s, policyErr("missing required element Effect")
	case !haveAction:
		return s, policyErr("missing required element Action or NotAction")
	case !haveResource:
		return s, policyErr("missing required element Resource or NotResource")
	case kind == Resource && !havePrincipal:
		return s, policyErr("missing required element Principal or NotPrincipal in a resource-based policy")
	}
	return s, nil
}

// stringList reads an element that is a string or a non-empty array of
// strings.
func stringList(name string, v json.RawMessage) ([]string, error) {
	var one string
	if unmarshal(v, &one) == nil {
		return []string{one}, nil
	}
	var list []string
	if unmarshal(v, &list) != nil || len(list) == 0 {
		return nil, policyErr("%s must be a string or a non-empty array of strings", name)
	}
	return list, nil
}

func checkActions(name string, actions []string, kind Kind) error {
	for _, a := range actions {
		if a == "*" {
			continue
		}
		svc, op, ok := strings.Cut(a, ":")
		if !ok || svc == "" || op == "" || strings.ContainsAny(svc, "*?") {
			return policyErr("%s %q is not of the form service:operation", name, a)
		}
		if kind == Resource && !strings.EqualFold(svc, "kinesis") {
			return policyErr("%s %q is not a kinesis action; a stream's or consumer's policy can only grant kinesis actions", name, a)
		}
	}
	return nil
}

func checkResources(name string, res []string) error {
	for _, r := range res {
		if r == "*" {
			continue
		}
		if !strings.HasPrefix(r, "arn:") || strings.Count(r, ":") < 5 {
			return policyErr("%s %q is not an ARN or *", name, r)
		}
	}
	return nil
}

func parsePrincipals(name string, v json.RawMessage) (*Principals, error) {
	p := &Principals{}
	var star string
	if unmarshal(v, &star) == nil {
		if star != "*" {
			return nil, policyErr(`%s must be "*" or an object such as {"AWS": "123456789012"}`, name)
		}
		p.Any = true
		return p, nil
	}
	var m map[string]json.RawMessage
	if unmarshal(v, &m) != nil || len(m) == 0 {
		return nil, policyErr(`%s must be "*" or an object such as {"AWS": "123456789012"}`, name)
	}
	for k, raw := range m {
		list, err := stringList(name+"."+k, raw)
		if err != nil {
			return nil, err
		}
		switch k {
		case "AWS":
			for _, e := range list {
				if err := p.addAWS(name, e); err != nil {
					return nil, err
				}
			}
		case "Service", "Federated", "CanonicalUser":
			p.Others += len(list)
		default:
			return nil, policyErr("%s has an unknown principal type %q", name, k)
		}
	}
	return p, nil
}

func (p *Principals) addAWS(name, e string) error {
	switch {
	case e == "*":
		p.Any = true
	case isAccountID(e):
		p.Accounts = append(p.Accounts, e)
	case strings.HasPrefix(e, "arn:"):
		parts := strings.SplitN(e, ":", 6)
		if len(parts) != 6 || parts[2] != "iam" && parts[2] != "sts" || !isAccountID(parts[4]) || parts[5] == "" {
			return policyErr("%s %q is not an IAM principal ARN (arn:aws:iam::123456789012:user/name)", name, e)
		}
		if strings.ContainsAny(e, "*?") {
			return policyErr("%s %q: wildcards are not allowed in a principal ARN; use the aws:PrincipalArn condition key", name, e)
		}
		if parts[2] == "iam" && parts[5] == "root" {
			p.Accounts = append(p.Accounts, parts[4])
		} else {
			p.ARNs = append(p.ARNs, e)
		}
	default:
		return policyErr("%s %q is not an account id, an IAM principal ARN or *", name, e)
	}
	return nil
}

func isAccountID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
