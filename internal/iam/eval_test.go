package iam

import (
	"strings"
	"testing"
	"time"
)

const (
	owner   = "123456789012"
	other   = "210987654321"
	alice   = "arn:aws:iam::123456789012:user/alice"
	bob     = "arn:aws:iam::210987654321:user/bob"
	orders  = "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
	clicks  = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
	ordersC = "arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/app:1700000000"
)

func mustParse(t *testing.T, doc string, kind Kind) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc), kind)
	if err != nil {
		t.Fatalf("parse %s: %v", doc, err)
	}
	return p
}

func TestEvaluate(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	ctx := func(ip string, tls bool) Context {
		c := Context{}
		c.Set("aws:SourceIp", ip)
		if tls {
			c.Set("aws:SecureTransport", "true")
		} else {
			c.Set("aws:SecureTransport", "false")
		}
		c.Set("aws:CurrentTime", now.Format(time.RFC3339))
		c.Set("aws:PrincipalArn", alice)
		c.Set("aws:PrincipalAccount", owner)
		return c
	}
	type tc struct {
		name     string
		identity []string
		resource string
		// request; defaults: alice in owner, PutRecord on orders
		principal, account, action, res string
		ctx                             Context
		want                            Outcome
		by                              PolicyType
	}
	cases := []tc{
		{name: "no policy: implicit deny", want: ImplicitDeny, by: IdentityBased},
		{name: "allow exact",
			identity: []string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kinesis:PutRecord","Resource":"` + orders + `"}}`},
			want:     Allowed},
		{name: "action matches case-insensitively",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"Kinesis:putrecord","Resource":"*"}]}`},
			want:     Allowed},
		{name: "action wildcard",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":["kinesis:Put*"],"Resource":"*"}]}`},
			want:     Allowed},
		{name: "action ? wildcard does not match two letters",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:PutRecord?","Resource":"*"}]}`},
			want:     ImplicitDeny, by: IdentityBased},
		{name: "other action: implicit deny",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:GetRecords","Resource":"*"}]}`},
			want:     ImplicitDeny, by: IdentityBased},
		{name: "resource wildcard",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"arn:aws:kinesis:*:123456789012:stream/ord*"}]}`},
			want:     Allowed},
		{name: "resource is case-sensitive",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"arn:aws:kinesis:us-east-1:123456789012:stream/ORDERS"}]}`},
			want:     ImplicitDeny, by: IdentityBased},
		{name: "other stream",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"` + clicks + `"}]}`},
			want:     ImplicitDeny, by: IdentityBased},
		{name: "explicit deny wins over allow",
			identity: []string{
				`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`,
				`{"Statement":[{"Sid":"NoWrites","Effect":"Deny","Action":"kinesis:Put*","Resource":"*"}]}`},
			want: ExplicitDeny, by: IdentityBased},
		{name: "NotAction allows everything else",
			identity: []string{`{"Statement":[{"Effect":"Allow","NotAction":"kinesis:DeleteStream","Resource":"*"}]}`},
			want:     Allowed},
		{name: "NotAction does not allow the named action",
			identity: []string{`{"Statement":[{"Effect":"Allow","NotAction":"kinesis:DeleteStream","Resource":"*"}]}`},
			action:   "kinesis:DeleteStream",
			want:     ImplicitDeny, by: IdentityBased},
		{name: "NotResource",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","NotResource":"` + clicks + `"}]}`},
			want:     Allowed},
		{name: "deny with NotResource",
			identity: []string{
				`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"},{"Effect":"Deny","Action":"kinesis:*","NotResource":"` + clicks + `"}]}`},
			want: ExplicitDeny, by: IdentityBased},
		{name: "condition IpAddress holds",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.1.7"]}}}]}`},
			ctx:      ctx("10.1.2.3", false),
			want:     Allowed},
		{name: "condition IpAddress fails",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     ImplicitDeny, by: IdentityBased},
		{name: "deny without TLS",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     ExplicitDeny, by: IdentityBased},
		{name: "deny without TLS lets TLS through",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"},{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":false}}}]}`},
			ctx:      ctx("127.0.0.1", true),
			want:     Allowed},
		{name: "date window",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2026-12-31"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     Allowed},
		{name: "date window closed",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2026-05-01T00:00:00Z"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     ImplicitDeny, by: IdentityBased},
		{name: "StringNotEquals on a missing key holds",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestTag/team":"x"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     Allowed},
		{name: "StringEquals on a missing key fails",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/team":"x"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     ImplicitDeny, by: IdentityBased},
		{name: "IfExists on a missing key holds",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:RequestTag/team":"x"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     Allowed},
		{name: "ArnLike on aws:PrincipalArn, key case-insensitive",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"ArnLike":{"AWS:principalarn":"arn:aws:iam::*:user/al*"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     Allowed},
		{name: "StringEqualsIgnoreCase",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"aws:PrincipalArn":"ARN:AWS:IAM::123456789012:USER/ALICE"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     Allowed},
		{name: "ForAllValues on a missing key holds",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"ForAllValues:StringLike":{"aws:TagKeys":"team*"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     Allowed},
		{name: "ForAnyValue on a missing key fails",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"ForAnyValue:StringLike":{"aws:TagKeys":"team*"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     ImplicitDeny, by: IdentityBased},
		{name: "Null condition: key present",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*","Condition":{"Null":{"aws:SourceIp":"false"}}}]}`},
			ctx:      ctx("127.0.0.1", false),
			want:     Allowed},
		{name: "same account: resource policy naming the user allows alone",
			resource: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"` + alice + `"},"Action":"kinesis:PutRecord","Resource":"` + orders + `"}]}`,
			want:     Allowed},
		{name: "same account: resource policy naming only the account delegates",
			resource: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"kinesis:PutRecord","Resource":"` + orders + `"}]}`,
			want:     ImplicitDeny, by: IdentityBased},
		{name: "same account: resource policy deny wins over identity allow",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`},
			resource: `{"Statement":[{"Effect":"Deny","Principal":"*","Action":"kinesis:Put*","Resource":"` + orders + `"}]}`,
			want:     ExplicitDeny, by: ResourceBased},
		{name: "owner account root needs no policy",
			principal: "arn:aws:iam::123456789012:root",
			want:      Allowed},
		{name: "cross account: resource and identity allow",
			principal: bob, account: other,
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:PutRecord","Resource":"` + orders + `"}]}`},
			resource: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":["kinesis:PutRecord","kinesis:PutRecords"],"Resource":"` + orders + `"}]}`,
			want:     Allowed},
		{name: "cross account: bare account id",
			principal: bob, account: other,
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`},
			resource: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":["999999999999","210987654321"]},"Action":"kinesis:*","Resource":"*"}]}`,
			want:     Allowed},
		{name: "cross account: identity alone is not enough",
			principal: bob, account: other,
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`},
			want:     ImplicitDeny, by: ResourceBased},
		{name: "cross account: resource policy alone is not enough",
			principal: bob, account: other,
			resource: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"210987654321"},"Action":"kinesis:*","Resource":"*"}]}`,
			want:     ImplicitDeny, by: IdentityBased},
		{name: "cross account: resource policy for another account",
			principal: bob, account: other,
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`},
			resource: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"999999999999"},"Action":"kinesis:*","Resource":"*"}]}`,
			want:     ImplicitDeny, by: ResourceBased},
		{name: "cross account: NotPrincipal deny",
			principal: bob, account: other,
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`},
			resource: `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kinesis:*","Resource":"*"},{"Effect":"Deny","NotPrincipal":{"AWS":"` + alice + `"},"Action":"kinesis:DeleteStream","Resource":"*"}]}`,
			action:   "kinesis:DeleteStream",
			want:     ExplicitDeny, by: ResourceBased},
		{name: "naming a role grants its sessions",
			principal: "arn:aws:sts::210987654321:assumed-role/Writer/job-7", account: other,
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`},
			resource: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:role/Writer"},"Action":"kinesis:PutRecord","Resource":"*"}]}`,
			want:     Allowed},
		{name: "naming a role does not grant another role's sessions",
			principal: "arn:aws:sts::210987654321:assumed-role/Reader/job-7", account: other,
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`},
			resource: `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:role/Writer"},"Action":"kinesis:PutRecord","Resource":"*"}]}`,
			want:     ImplicitDeny, by: ResourceBased},
		{name: "consumer ARN wildcard",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:SubscribeToShard","Resource":"arn:aws:kinesis:us-east-1:123456789012:stream/orders/consumer/*"}]}`},
			action:   "kinesis:SubscribeToShard", res: ordersC,
			want: Allowed},
		{name: "stream ARN does not cover its consumers",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:SubscribeToShard","Resource":"` + orders + `"}]}`},
			action:   "kinesis:SubscribeToShard", res: ordersC,
			want: ImplicitDeny, by: IdentityBased},
		{name: "account-level action needs Resource *",
			identity: []string{`{"Statement":[{"Effect":"Allow","Action":"kinesis:List*","Resource":"` + orders + `"}]}`},
			action:   "kinesis:ListStreams", res: "*",
			want: ImplicitDeny, by: IdentityBased},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := &Request{
				PrincipalARN: alice, PrincipalAccount: owner,
				Action: "kinesis:PutRecord", Resource: orders, ResourceAccount: owner,
				Context: c.ctx,
			}
			if c.principal != "" {
				req.PrincipalARN = c.principal
			}
			if c.account != "" {
				req.PrincipalAccount = c.account
			}
			if c.action != "" {
				req.Action = c.action
			}
			if c.res != "" {
				req.Resource = c.res
			}
			var ids []*Policy
			for _, d := range c.identity {
				ids = append(ids, mustParse(t, d, Identity))
			}
			var res *Policy
			if c.resource != "" {
				res = mustParse(t, c.resource, Resource)
			}
			d := Evaluate(req, ids, res)
			if d.Outcome != c.want {
				t.Fatalf("outcome %v, want %v", d.Outcome, c.want)
			}
			if c.want != Allowed && d.By != c.by {
				t.Fatalf("decided by %v policy, want %v", d.By, c.by)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, doc string
		kind      Kind
		want      string
	}{
		{"not JSON", `{"Statement":`, Identity, "not a JSON object"},
		{"array", `[]`, Identity, "not a JSON object"},
		{"trailing", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}} x`, Identity, "not a JSON object"},
		{"bad version", `{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, Identity, "Version"},
		{"no statement", `{"Version":"2012-10-17"}`, Identity, "missing required element Statement"},
		{"empty statement", `{"Statement":[]}`, Identity, "Statement is empty"},
		{"unknown top", `{"Statment":[]}`, Identity, "unknown element"},
		{"no effect", `{"Statement":{"Action":"*","Resource":"*"}}`, Identity, "Effect"},
		{"bad effect", `{"Statement":{"Effect":"allow","Action":"*","Resource":"*"}}`, Identity, "Effect"},
		{"no action", `{"Statement":{"Effect":"Allow","Resource":"*"}}`, Identity, "Action"},
		{"action and notaction", `{"Statement":{"Effect":"Allow","Action":"*","NotAction":"*","Resource":"*"}}`, Identity, "both Action and NotAction"},
		{"bad action", `{"Statement":{"Effect":"Allow","Action":"PutRecord","Resource":"*"}}`, Identity, "service:operation"},
		{"empty action list", `{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}`, Identity, "non-empty"},
		{"no resource", `{"Statement":{"Effect":"Allow","Action":"*"}}`, Identity, "Resource"},
		{"bad resource", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"orders"}}`, Identity, "not an ARN"},
		{"principal in identity", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}`, Identity, "not allowed in an identity-based policy"},
		{"no principal in resource", `{"Statement":{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}}`, Resource, "Principal"},
		{"bad principal", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"alice"},"Action":"kinesis:*","Resource":"*"}}`, Resource, "not an account id"},
		{"wildcard principal ARN", `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/*"},"Action":"kinesis:*","Resource":"*"}}`, Resource, "wildcards"},
		{"other service in resource policy", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}}`, Resource, "not a kinesis action"},
		{"unknown operator", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"a":"b"}}}}`, Identity, "unknown operator"},
		{"bad cidr", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}}`, Identity, "CIDR"},
		{"bad date", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"tomorrow"}}}}`, Identity, "not a date"},
		{"bad bool", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"yes"}}}}`, Identity, "true or false"},
		{"object value", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}}`, Identity, "values must be"},
		{"duplicate sid", `{"Statement":[{"Sid":"a","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"a","Effect":"Allow","Action":"*","Resource":"*"}]}`, Identity, "used twice"},
		{"unknown statement element", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condtion":{}}}`, Identity, "unknown element"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(c.doc), c.kind)
			if err == nil {
				t.Fatal("parsed")
			}
			if _, ok := err.(*PolicyError); !ok && !strings.Contains(err.Error(), "invalid policy") {
				t.Fatalf("error %T %v is not a PolicyError", err, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestWildcardMatch(t *testing.T) {
	cases := []struct {
		p, v string
		fold bool
		want bool
	}{
		{"*", "", false, true},
		{"a*", "a", false, true},
		{"a*c", "abbbc", false, true},
		{"a*c", "abbbd", false, false},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaa", false, false},
		{"KINESIS:Put*", "kinesis:PutRecords", true, true},
		{"KINESIS:Put*", "kinesis:PutRecords", false, false},
		{"", "", false, true},
		{"", "a", false, false},
	}
	for _, c := range cases {
		if got := wildcardMatch(c.p, c.v, c.fold); got != c.want {
			t.Errorf("wildcardMatch(%q, %q, %v) = %v", c.p, c.v, c.fold, got)
		}
	}
}
