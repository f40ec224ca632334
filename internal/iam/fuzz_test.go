package iam

import (
	"errors"
	"testing"
)

func FuzzParse(f *testing.F) {
	seeds := []string{
		`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}}`,
		`{"Statement":[{"Sid":"a","Effect":"Deny","NotAction":["kinesis:Put*"],"NotResource":"arn:aws:kinesis:*:*:stream/x","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8"]},"Bool":{"aws:SecureTransport":false},"DateLessThan":{"aws:CurrentTime":"2026-01-01"},"NumericLessThan":{"n":1.5}}}]}`,
		`{"Statement":{"Effect":"Allow","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:user/a"],"Service":"x"},"Action":"kinesis:*","Resource":"*","Condition":{"ForAnyValue:StringLikeIfExists":{"k":["a*"]},"Null":{"x":"true"}}}}`,
		`{"Statement":{"Effect":"Allow","NotPrincipal":"*","Action":"kinesis:*","Resource":"*"}}`,
		`{}`, `[]`, `null`, `{"Statement":1}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, doc []byte, resource bool) {
		kind := Identity
		if resource {
			kind = Resource
		}
		p, err := Parse(doc, kind)
		if err != nil {
			if p != nil {
				t.Fatal("policy and error")
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T %v is not a PolicyError", err, err)
			}
			return
		}
		// A parsed policy evaluates without panicking, whatever it holds.
		ctx := Context{}
		ctx.Set("aws:SourceIp", "10.1.2.3")
		ctx.Set("aws:CurrentTime", "2026-06-01T00:00:00Z")
		ctx.Set("k", "abc")
		ctx.Set("n", "2")
		req := &Request{PrincipalARN: alice, PrincipalAccount: owner, Action: "kinesis:PutRecord",
			Resource: orders, ResourceAccount: owner, Context: ctx}
		if kind == Resource {
			Evaluate(req, nil, p)
		} else {
			Evaluate(req, []*Policy{p}, nil)
		}
	})
}
