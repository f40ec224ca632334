package iam

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// BenchmarkAuthorize measures one decision of the Authorizer, policies
// parsed once and cached: a same-account producer with one identity policy,
// the same with a resource policy on the stream, and another account's
// principal through the resource policy.
func BenchmarkAuthorize(b *testing.B) {
	shared := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"210987654321"},"Action":["kinesis:PutRecords","kinesis:DescribeStreamSummary"],"Resource":"` + orders + `"},
	{"Effect":"Deny","Principal":"*","Action":"kinesis:DeleteStream","Resource":"*"}]}`
	identity := []string{`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["kinesis:PutRecord","kinesis:PutRecords","kinesis:DescribeStreamSummary","kinesis:ListShards"],"Resource":"arn:aws:kinesis:*:123456789012:stream/*"},
		{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}`}
	cases := []struct {
		name     string
		p        *Principal
		policies map[string]string
	}{
		{"identity", &Principal{ARN: alice, Account: owner, Policies: identity}, nil},
		{"identity+resource", &Principal{ARN: alice, Account: owner, Policies: identity}, map[string]string{orders: shared}},
		{"cross-account", &Principal{ARN: bob, Account: other, Policies: []string{`{"Statement":{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}}`}}, map[string]string{orders: shared}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			a, err := NewAuthorizer(AuthorizerOptions{Region: "us-east-1", AccountID: owner,
				Resources: &fakeResources{policies: c.policies}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			call := &Call{Service: "kinesis", Operation: "PutRecords", StreamARN: orders, SourceIP: "127.0.0.1", SecureTransport: true}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := a.Authorize(ctx, c.p, call); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
