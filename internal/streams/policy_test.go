package streams

import (
	"context"
	"testing"
)

func TestAuthorizerResources(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	sarn := e.arn("s")
	if p, err := e.svc.ResourcePolicy(ctx, sarn); err != nil || p != "" {
		t.Fatalf("no policy yet: %q %v", p, err)
	}
	pol := `{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kinesis:PutRecords","Resource":"` + sarn + `"}}`
	if err := e.svc.PutResourcePolicy(ctx, &PutResourcePolicyInput{ResourceARN: &sarn, Policy: &pol}); err != nil {
		t.Fatal(err)
	}
	if p, err := e.svc.ResourcePolicy(ctx, sarn); err != nil || p != pol {
		t.Fatalf("stream policy %q %v", p, err)
	}
	for _, a := range []string{e.arn("nope"), "arn:aws:kinesis:eu-west-1:000000000000:stream/s", "arn:aws:kinesis:us-east-1:111122223333:stream/s", "garbage"} {
		if p, err := e.svc.ResourcePolicy(ctx, a); err != nil || p != "" {
			t.Fatalf("%s: %q %v, want none", a, p, err)
		}
	}

	c, err := e.svc.RegisterStreamConsumer(ctx, &RegisterStreamConsumerInput{StreamARN: &sarn, ConsumerName: sp("app")})
	if err != nil {
		t.Fatal(err)
	}
	carn := c.Consumer.ConsumerARN
	if got, ok := e.svc.ConsumerARN(ctx, "s", "app"); !ok || got != carn {
		t.Fatalf("ConsumerARN %q %v, want %q", got, ok, carn)
	}
	if _, ok := e.svc.ConsumerARN(ctx, "s", "ghost"); ok {
		t.Fatal("found a consumer that does not exist")
	}
	if p, err := e.svc.ResourcePolicy(ctx, carn); err != nil || p != "" {
		t.Fatalf("consumer policy before: %q %v", p, err)
	}
	e.clock.Advance(e.svc.opts.TransitionDelay + 1)
	cpol := `{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kinesis:SubscribeToShard","Resource":"` + carn + `"}}`
	if err := e.svc.PutResourcePolicy(ctx, &PutResourcePolicyInput{ResourceARN: &carn, Policy: &cpol}); err != nil {
		t.Fatal(err)
	}
	if p, err := e.svc.ResourcePolicy(ctx, carn); err != nil || p != cpol {
		t.Fatalf("consumer policy %q %v", p, err)
	}

	it := e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil)
	if name, ok := e.svc.TokenStream(it); !ok || name != "s" {
		t.Fatalf("TokenStream(iterator) = %q %v", name, ok)
	}
	if _, ok := e.svc.TokenStream(it[:len(it)-2] + "AA"); ok {
		t.Fatal("a damaged iterator names a stream")
	}
}
