package iam

import (
	"encoding/json"
	"math/big"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Condition is one condition of a statement: an operator applied to one
// context key and a list of values. A statement's Condition element
// {"StringEquals": {"k1": [...], "k2": "v"}} becomes one Condition per key;
// all must hold, and within one, any value may match.
type Condition struct {
	// Operator is the operator as written, such as
	// "ForAnyValue:StringLikeIfExists".
	Operator string
	// Key is the context key, such as "aws:SourceIp".
	Key    string
	Values []string

	key string // Key lower-cased: keys are case-insensitive

	op       opKind
	negated  bool
	ifExists bool
	set      setKind
	// Parsed forms of Values for the operators that need them.
	prefixes []netip.Prefix
	times    []time.Time
	numbers  []*big.Rat
}

type opKind uint8

const (
	opStringEquals opKind = iota + 1
	opStringEqualsIgnoreCase
	opStringLike
	opNumericEquals
	opNumericLessThan
	opNumericLessThanEquals
	opNumericGreaterThan
	opNumericGreaterThanEquals
	opDateEquals
	opDateLessThan
	opDateLessThanEquals
	opDateGreaterThan
	opDateGreaterThanEquals
	opBool
	opIPAddress
	opArnEquals
	opArnLike
	opNull
)

type setKind uint8

const (
	setSingle setKind = iota
	setAny
	setAll
)

// operators maps an operator's base name (no set prefix, no IfExists) to
// its kind and whether it is negated.
var operators = map[string]struct {
	op      opKind
	negated bool
}{
	"StringEquals":              {opStringEquals, false},
	"StringNotEquals":           {opStringEquals, true},
	"StringEqualsIgnoreCase":    {opStringEqualsIgnoreCase, false},
	"StringNotEqualsIgnoreCase": {opStringEqualsIgnoreCase, true},
	"StringLike":                {opStringLike, false},
	"StringNotLike":             {opStringLike, true},
	"NumericEquals":             {opNumericEquals, false},
	"NumericNotEquals":          {opNumericEquals, true},
	"NumericLessThan":           {opNumericLessThan, false},
	"NumericLessThanEquals":     {opNumericLessThanEquals, false},
	"NumericGreaterThan":        {opNumericGreaterThan, false},
	"NumericGreaterThanEquals":  {opNumericGreaterThanEquals, false},
	"DateEquals":                {opDateEquals, false},
	"DateNotEquals":             {opDateEquals, true},
	"DateLessThan":              {opDateLessThan, false},
	"DateLessThanEquals":        {opDateLessThanEquals, false},
	"DateGreaterThan":           {opDateGreaterThan, false},
	"DateGreaterThanEquals":     {opDateGreaterThanEquals, false},
	"Bool":                      {opBool, false},
	"IpAddress":                 {opIPAddress, false},
	"NotIpAddress":              {opIPAddress, true},
	"ArnEquals":                 {opArnEquals, false},
	"ArnNotEquals":              {opArnEquals, true},
	"ArnLike":                   {opArnLike, false},
	"ArnNotLike":                {opArnLike, true},
	"Null":                      {opNull, false},
}

func parseConditions(v json.RawMessage) ([]Condition, error) {
	var block map[string]json.RawMessage
	if unmarshal(v, &block) != nil || block == nil {
		return nil, policyErr("Condition must be an object of operators")
	}
	var out []Condition
	for opName, raw := range block {
		c := Condition{Operator: opName}
		base := opName
		if rest, ok := strings.CutPrefix(base, "ForAnyValue:"); ok {
			base, c.set = rest, setAny
		} else if rest, ok := strings.CutPrefix(base, "ForAllValues:"); ok {
			base, c.set = rest, setAll
		}
		if rest, ok := strings.CutSuffix(base, "IfExists"); ok && rest != "Null" {
			base, c.ifExists = rest, true
		}
		o, ok := operators[base]
		if !ok {
			return nil, policyErr("Condition has an unknown operator %q", opName)
		}
		c.op, c.negated = o.op, o.negated
		var keys map[string]json.RawMessage
		if unmarshal(raw, &keys) != nil || len(keys) == 0 {
			return nil, policyErr("Condition operator %s must be an object of keys and values", opName)
		}
		for key, kv := range keys {
			cc := c
			cc.Key, cc.key = key, strings.ToLower(key)
			vals, err := conditionValues(opName, key, kv)
			if err != nil {
				return nil, err
			}
			cc.Values = vals
			if err := cc.compile(); err != nil {
				return nil, err
			}
			out = append(out, cc)
		}
	}
	return out, nil
}

// conditionValues reads a condition's value: a string, number or boolean,
// or a non-empty array of them; all are compared as strings.
func conditionValues(op, key string, v json.RawMessage) ([]string, error) {
	var one any
	if unmarshal(v, &one) != nil {
		return nil, policyErr("Condition %s %s: not valid JSON", op, key)
	}
	list, isList := one.([]any)
	if !isList {
		list = []any{one}
	}
	if len(list) == 0 {
		return nil, policyErr("Condition %s %s: empty list of values", op, key)
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		switch e := e.(type) {
		case string:
			out = append(out, e)
		case json.Number:
			out = append(out, e.String())
		case bool:
			out = append(out, strconv.FormatBool(e))
		default:
			return nil, policyErr("Condition %s %s: values must be strings, numbers or booleans", op, key)
		}
	}
	return out, nil
}

// compile parses the values of operators that compare other than strings,
// so that a malformed value is refused when the policy is stored.
func (c *Condition) compile() error {
	for _, v := range c.Values {
		switch c.op {
		case opIPAddress:
			p, err := parsePrefix(v)
			if err != nil {
				return policyErr("Condition %s %s: %q is not an IP address or CIDR block", c.Operator, c.Key, v)
			}
			c.prefixes = append(c.prefixes, p)
		case opDateEquals, opDateLessThan, opDateLessThanEquals, opDateGreaterThan, opDateGreaterThanEquals:
			t, ok := parseDate(v)
			if !ok {
				return policyErr("Condition %s %s: %q is not a date (2026-01-02T15:04:05Z or epoch seconds)", c.Operator, c.Key, v)
			}
			c.times = append(c.times, t)
		case opNumericEquals, opNumericLessThan, opNumericLessThanEquals, opNumericGreaterThan, opNumericGreaterThanEquals:
			r, ok := new(big.Rat).SetString(v)
			if !ok || strings.ContainsAny(v, "/eE") {
				return policyErr("Condition %s %s: %q is not a number", c.Operator, c.Key, v)
			}
			c.numbers = append(c.numbers, r)
		case opBool, opNull:
			if v != "true" && v != "false" {
				return policyErr("Condition %s %s: %q is not true or false", c.Operator, c.Key, v)
			}
		}
	}
	return nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// parseDate reads the date forms IAM accepts: ISO 8601 with or without a
// time, and epoch seconds.
func parseDate(s string) (time.Time, bool) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05Z0700", "2006-01-02T15:04Z07:00", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 && n < 1<<40 {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// holds evaluates the condition against the request context.
func (c *Condition) holds(ctx Context) bool {
	vals, present := ctx.lookupLower(c.key)
	if c.op == opNull {
		want := c.Values[0] == "true" // any value of the list; IAM takes one
		return want == !present
	}
	if !present {
		switch {
		case c.set == setAll:
			return true
		case c.set == setAny:
			return false
		case c.ifExists:
			return true
		default:
			return c.negated
		}
	}
	switch c.set {
	case setAll:
		for _, v := range vals {
			if !c.matchOne(v) {
				return false
			}
		}
		return true
	default:
		for _, v := range vals {
			if c.matchOne(v) {
				return true
			}
		}
		return false
	}
}

// matchOne reports whether one context value satisfies the operator:
// matches any policy value, or (negated) none.
func (c *Condition) matchOne(v string) bool {
	m := c.matchAny(v)
	if c.negated {
		return !m
	}
	return m
}

func (c *Condition) matchAny(v string) bool {
	switch c.op {
	case opStringEquals, opArnEquals:
		for _, p := range c.Values {
			if p == v {
				return true
			}
		}
	case opStringEqualsIgnoreCase:
		for _, p := range c.Values {
			if strings.EqualFold(p, v) {
				return true
			}
		}
	case opStringLike:
		for _, p := range c.Values {
			if wildcardMatch(p, v, false) {
				return true
			}
		}
	case opArnLike:
		for _, p := range c.Values {
			if arnLike(p, v) {
				return true
			}
		}
	case opBool:
		for _, p := range c.Values {
			if strings.EqualFold(p, v) {
				return true
			}
		}
	case opIPAddress:
		a, err := netip.ParseAddr(v)
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range c.prefixes {
			if p.Contains(a) {
				return true
			}
		}
	case opDateEquals, opDateLessThan, opDateLessThanEquals, opDateGreaterThan, opDateGreaterThanEquals:
		t, ok := parseDate(v)
		if !ok {
			return false
		}
		for _, p := range c.times {
			if compare(c.op, t.Compare(p)) {
				return true
			}
		}
	case opNumericEquals, opNumericLessThan, opNumericLessThanEquals, opNumericGreaterThan, opNumericGreaterThanEquals:
		r, ok := new(big.Rat).SetString(v)
		if !ok {
			return false
		}
		for _, p := range c.numbers {
			if compare(c.op, r.Cmp(p)) {
				return true
			}
		}
	}
	return false
}

// compare applies an ordering operator to cmp, the comparison of the
// request's value with the policy's.
func compare(op opKind, cmp int) bool {
	switch op {
	case opDateEquals, opNumericEquals:
		return cmp == 0
	case opDateLessThan, opNumericLessThan:
		return cmp < 0
	case opDateLessThanEquals, opNumericLessThanEquals:
		return cmp <= 0
	case opDateGreaterThan, opNumericGreaterThan:
		return cmp > 0
	case opDateGreaterThanEquals, opNumericGreaterThanEquals:
		return cmp >= 0
	}
	return false
}

// arnLike matches an ARN against a pattern component by component, as IAM
// does: the six colon-separated parts each match on their own (so a * does
// not cross into the next part), except that the last part, the resource,
// may itself hold colons.
func arnLike(pattern, v string) bool {
	pp := strings.SplitN(pattern, ":", 6)
	vp := strings.SplitN(v, ":", 6)
	if len(pp) != 6 || len(vp) != 6 {
		return wildcardMatch(pattern, v, false)
	}
	for i := range pp {
		if !wildcardMatch(pp[i], vp[i], false) {
			return false
		}
	}
	return true
}
