package iam

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

// fakeResources is a Resources over fixed maps.
type fakeResources struct {
	policies  map[string]string
	consumers map[string]string // stream/consumer -> ARN
	tokens    map[string]string
}

func (f *fakeResources) ResourcePolicy(_ context.Context, arn string) (string, error) {
	return f.policies[arn], nil
}

func (f *fakeResources) ConsumerARN(_ context.Context, stream, consumer string) (string, bool) {
	a, ok := f.consumers[stream+"/"+consumer]
	return a, ok
}

func (f *fakeResources) TokenStream(token string) (string, bool) {
	s, ok := f.tokens[token]
	return s, ok
}

func TestAuthorizer(t *testing.T) {
	res := &fakeResources{
		policies: map[string]string{
			orders: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"210987654321"},"Action":["kinesis:PutRecords","kinesis:GetResourcePolicy"],"Resource":"` + orders + `"}]}`,
		},
		consumers: map[string]string{"orders/app": ordersC},
		tokens:    map[string]string{"iter-orders": "orders"},
	}
	a, err := NewAuthorizer(AuthorizerOptions{Region: "us-east-1", AccountID: owner, Resources: res,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	producer := &Principal{ARN: alice, Account: owner, Policies: []string{
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kinesis:PutRecord","kinesis:PutRecords"],"Resource":"*"},
		 {"Effect":"Deny","Action":"kinesis:Delete*","Resource":"*"}]}`}}
	reader := &Principal{ARN: "arn:aws:iam::123456789012:user/reader", Account: owner, Policies: []string{
		`{"Statement":[{"Effect":"Allow","Action":["kinesis:GetRecords","kinesis:SubscribeToShard"],"Resource":["` + orders + `","` + orders + `/consumer/*"]}]}`}}
	partner := &Principal{ARN: bob, Account: other, Policies: []string{
		`{"Statement":[{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}]}`}}
	cases := []struct {
		name string
		p    *Principal
		c    Call
		msg  string // "" for allowed
	}{
		{"producer puts by name", producer, Call{Operation: "PutRecords", StreamName: "orders"}, ""},
		{"the account comes from the ARN when not given", &Principal{ARN: alice, Policies: producer.Policies}, Call{Operation: "PutRecords", StreamName: "orders"}, ""},
		{"producer puts by ARN", producer, Call{Operation: "PutRecord", StreamARN: clicks}, ""},
		{"producer may not delete", producer, Call{Operation: "DeleteStream", StreamName: "orders"},
			"User: " + alice + " is not authorized to perform: kinesis:DeleteStream on resource: " + orders + " with an explicit deny in an identity-based policy"},
		{"producer may not read", producer, Call{Operation: "GetRecords", Token: "iter-orders"},
			"User: " + alice + " is not authorized to perform: kinesis:GetRecords on resource: " + orders + " because no identity-based policy allows the kinesis:GetRecords action"},
		{"producer may not list", producer, Call{Operation: "ListStreams"},
			"User: " + alice + " is not authorized to perform: kinesis:ListStreams because no identity-based policy allows the kinesis:ListStreams action"},
		{"reader reads orders through its iterator", reader, Call{Operation: "GetRecords", Token: "iter-orders"}, ""},
		{"reader subscribes by consumer ARN", reader, Call{Operation: "SubscribeToShard", ConsumerARN: ordersC}, ""},
		{"an unknown token is left to the service", reader, Call{Operation: "GetRecords", Token: "garbage"}, ""},
		{"a token's stream wins over the StreamARN given with it", producer, Call{Operation: "GetRecords", StreamARN: clicks, Token: "iter-orders"},
			"User: " + alice + " is not authorized to perform: kinesis:GetRecords on resource: " + orders + " because no identity-based policy allows the kinesis:GetRecords action"},
		{"an unknown token with a StreamARN is authorized on the ARN", reader, Call{Operation: "GetRecords", StreamARN: clicks, Token: "garbage"},
			"User: arn:aws:iam::123456789012:user/reader is not authorized to perform: kinesis:GetRecords on resource: " + clicks + " because no identity-based policy allows the kinesis:GetRecords action"},
		{"reader may not describe a consumer", reader, Call{Operation: "DescribeStreamConsumer", StreamARN: orders, ConsumerName: "app"},
			"User: arn:aws:iam::123456789012:user/reader is not authorized to perform: kinesis:DescribeStreamConsumer on resource: " + ordersC + " because no identity-based policy allows the kinesis:DescribeStreamConsumer action"},
		{"partner puts through the resource policy", partner, Call{Operation: "PutRecords", StreamARN: orders}, ""},
		{"partner may not put to another stream", partner, Call{Operation: "PutRecords", StreamARN: clicks},
			"User: " + bob + " is not authorized to perform: kinesis:PutRecords on resource: " + clicks + " because no resource-based policy allows the kinesis:PutRecords action"},
		{"partner may not read the resource policy", partner, Call{Operation: "GetResourcePolicy", ResourceARN: orders},
			"User: " + bob + " is not authorized to perform: kinesis:GetResourcePolicy on resource: " + orders + " because no resource-based policy allows the kinesis:GetResourcePolicy action"},
		{"lease tables on a stream", producer, Call{Service: LeasesService, Operation: "TakeLease", StreamName: "orders"},
			"User: " + alice + " is not authorized to perform: runnel-leases:TakeLease on resource: " + orders + " because no identity-based policy allows the runnel-leases:TakeLease action"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			call := c.c
			if call.Service == "" {
				call.Service = "kinesis"
			}
			err := a.Authorize(context.Background(), c.p, &call)
			if c.msg == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var de *DeniedError
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want AccessDeniedException", err)
			}
			if de.ErrorCode() != "AccessDeniedException" || de.ErrorMessage() != c.msg {
				t.Fatalf("message\n%s\nwant\n%s", de.ErrorMessage(), c.msg)
			}
		})
	}
}

func TestAuthorizerBadIdentityPolicy(t *testing.T) {
	a, err := NewAuthorizer(AuthorizerOptions{Region: "us-east-1", AccountID: owner, Resources: &fakeResources{}})
	if err != nil {
		t.Fatal(err)
	}
	err = a.Authorize(context.Background(), &Principal{ARN: alice, Account: owner, Policies: []string{`{}`}},
		&Call{Service: "kinesis", Operation: "ListStreams"})
	var de *DeniedError
	if err == nil || errors.As(err, &de) {
		t.Fatalf("got %v, want an internal error", err)
	}
}

func TestPolicyCacheBounded(t *testing.T) {
	var c policyCache
	c.m = map[cacheKey]*Policy{}
	big := strings.Repeat(" ", 60<<10)
	for i := range 400 {
		doc := `{"Statement":{"Sid":"s` + strconv.Itoa(i) + `","Effect":"Allow","Action":"*","Resource":"*"}}` + big
		if _, err := c.parse(doc, Identity); err != nil {
			t.Fatal(err)
		}
		if c.bytes > maxCachedBytes || len(c.m) > maxCached {
			t.Fatalf("cache holds %d documents, %d bytes", len(c.m), c.bytes)
		}
	}
	if len(c.m) == 0 {
		t.Fatal("nothing cached")
	}
}
