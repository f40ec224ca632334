package streams

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func (e *env) arn(name string) string { return e.svc.streamARN(name) }

func (e *env) register(stream, consumer string) Consumer {
	e.t.Helper()
	out, err := e.svc.RegisterStreamConsumer(context.Background(), &RegisterStreamConsumerInput{StreamARN: sp(e.arn(stream)), ConsumerName: &consumer})
	if err != nil {
		e.t.Fatal(err)
	}
	return out.Consumer
}

func TestConsumerLifecycle(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TransitionDelay = time.Second })
	ctx := context.Background()
	e.create("s", 1)
	e.clock.Advance(time.Second)
	sarn := e.arn("s")

	c := e.register("s", "app")
	wantARN := fmt.Sprintf("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/app:%d", e.clock.Now().Unix())
	if c.ConsumerARN != wantARN || c.ConsumerStatus != "CREATING" || c.ConsumerName != "app" {
		t.Fatalf("registered %+v, want ARN %s CREATING", c, wantARN)
	}
	if !c.ConsumerCreationTimestamp.Equal(e.clock.Now()) {
		t.Fatalf("creation %v, want %v", c.ConsumerCreationTimestamp, e.clock.Now())
	}

	_, err := e.svc.RegisterStreamConsumer(ctx, &RegisterStreamConsumerInput{StreamARN: &sarn, ConsumerName: sp("app")})
	wantErr(t, err, CodeResourceInUse, "Consumer app under stream s already exists for account 000000000000.")

	// Subscribing while CREATING is refused.
	_, err = e.svc.SubscribeToShard(ctx, &SubscribeToShardInput{ConsumerARN: &c.ConsumerARN, ShardId: sp("shardId-000000000000"), StartingPosition: &StartingPosition{Type: sp("LATEST")}})
	wantErr(t, err, CodeResourceInUse, fmt.Sprintf("Consumer app with creation timestamp %d under stream s and account 000000000000 is not in ACTIVE status.", e.clock.Now().Unix()))

	e.clock.Advance(time.Second)
	for _, in := range []*DescribeStreamConsumerInput{
		{ConsumerARN: &c.ConsumerARN},
		{StreamARN: &sarn, ConsumerName: sp("app")},
		{StreamARN: &sarn, ConsumerARN: &c.ConsumerARN},
	} {
		d, err := e.svc.DescribeStreamConsumer(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if d.ConsumerDescription.ConsumerStatus != "ACTIVE" || d.ConsumerDescription.StreamARN != sarn || d.ConsumerDescription.ConsumerARN != c.ConsumerARN {
			t.Fatalf("describe %+v", d.ConsumerDescription)
		}
	}
	sum, err := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")})
	if err != nil || *sum.StreamDescriptionSummary.ConsumerCount != 1 {
		t.Fatalf("summary consumer count: %v %v", sum, err)
	}

	// A stream with consumers is not deleted without EnforceConsumerDeletion.
	err = e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamName: sp("s")})
	wantErr(t, err, CodeResourceInUse, "")

	if err := e.svc.DeregisterStreamConsumer(ctx, &DeregisterStreamConsumerInput{ConsumerARN: &c.ConsumerARN}); err != nil {
		t.Fatal(err)
	}
	d, err := e.svc.DescribeStreamConsumer(ctx, &DescribeStreamConsumerInput{ConsumerARN: &c.ConsumerARN})
	if err != nil || d.ConsumerDescription.ConsumerStatus != "DELETING" {
		t.Fatalf("after deregister: %+v %v", d, err)
	}
	e.clock.Advance(time.Second)
	_, err = e.svc.DescribeStreamConsumer(ctx, &DescribeStreamConsumerInput{ConsumerARN: &c.ConsumerARN})
	wantErr(t, err, CodeResourceNotFound, "Consumer "+c.ConsumerARN+", account 000000000000 not found.")
	_, err = e.svc.DescribeStreamConsumer(ctx, &DescribeStreamConsumerInput{StreamARN: &sarn, ConsumerName: sp("app")})
	wantErr(t, err, CodeResourceNotFound, "Consumer app under stream s, account 000000000000 not found.")
	if err := e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamName: sp("s")}); err != nil {
		t.Fatalf("delete without consumers: %v", err)
	}
}

func TestConsumerLimits(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.TransitionDelay = time.Second })
	ctx := context.Background()
	e.create("s", 1)
	e.clock.Advance(time.Second)
	sarn := e.arn("s")
	reg := func(name string) error {
		_, err := e.svc.RegisterStreamConsumer(ctx, &RegisterStreamConsumerInput{StreamARN: &sarn, ConsumerName: &name})
		return err
	}
	for i := range 5 {
		if err := reg(fmt.Sprint("c", i)); err != nil {
			t.Fatal(err)
		}
	}
	wantErr(t, reg("c5"), CodeLimitExceeded, "")
	for i := 5; i < 20; i++ {
		e.clock.Advance(time.Second) // the earlier ones turn ACTIVE
		if err := reg(fmt.Sprint("c", i)); err != nil {
			t.Fatal(i, err)
		}
	}
	e.clock.Advance(time.Second)
	err := reg("c20")
	wantErr(t, err, CodeLimitExceeded, "")
	if !strings.Contains(err.Error(), "20") {
		t.Fatalf("limit message %q", err)
	}

	// Pagination: 20 consumers, 7 per page, in name order.
	var names []string
	var tok *string
	for pages := 0; ; pages++ {
		in := &ListStreamConsumersInput{StreamARN: &sarn, MaxResults: ip(7), NextToken: tok}
		out, err := e.svc.ListStreamConsumers(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range out.Consumers {
			names = append(names, c.ConsumerName)
		}
		if out.NextToken == nil {
			if pages != 2 {
				t.Fatalf("%d pages, want 3", pages+1)
			}
			break
		}
		tok = out.NextToken
	}
	if len(names) != 20 || names[0] != "c0" || names[1] != "c1" || names[2] != "c10" {
		t.Fatalf("listed %v", names)
	}
	_, err = e.svc.ListStreamConsumers(ctx, &ListStreamConsumersInput{StreamARN: &sarn, NextToken: sp("garbage")})
	wantErr(t, err, CodeInvalidArgument, "Invalid NextToken.")

	// EnforceConsumerDeletion removes the stream and its consumers.
	if err := e.svc.DeleteStream(ctx, &DeleteStreamInput{StreamName: sp("s"), EnforceConsumerDeletion: bp(true)}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	e.create("s", 1)
	e.clock.Advance(time.Second)
	out, err := e.svc.ListStreamConsumers(ctx, &ListStreamConsumersInput{StreamARN: &sarn})
	if err != nil || len(out.Consumers) != 0 {
		t.Fatalf("recreated stream lists %v, %v", out, err)
	}
}

func TestConsumerErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create("s", 1)
	sarn := e.arn("s")
	tests := []struct {
		name string
		call func() error
		code Code
		msg  string
	}{
		{"register without stream", func() error {
			_, err := e.svc.RegisterStreamConsumer(ctx, &RegisterStreamConsumerInput{StreamARN: sp(e.arn("nope")), ConsumerName: sp("c")})
			return err
		}, CodeResourceNotFound, "Stream nope under account 000000000000 not found."},
		{"register null name", func() error {
			_, err := e.svc.RegisterStreamConsumer(ctx, &RegisterStreamConsumerInput{StreamARN: &sarn})
			return err
		}, CodeValidation, "1 validation error detected: Value null at 'consumerName' failed to satisfy constraint: Member must not be null"},
		{"describe nothing", func() error {
			_, err := e.svc.DescribeStreamConsumer(ctx, &DescribeStreamConsumerInput{StreamARN: &sarn})
			return err
		}, CodeInvalidArgument, "Either ConsumerARN or both ConsumerName and StreamARN must be provided."},
		{"describe stale creation time", func() error {
			c := e.register("s", "old")
			stale := strings.TrimSuffix(c.ConsumerARN, fmt.Sprint(e.clock.Now().Unix())) + "1"
			_, err := e.svc.DescribeStreamConsumer(ctx, &DescribeStreamConsumerInput{ConsumerARN: &stale})
			return err
		}, CodeResourceNotFound, ""},
		{"deregister unknown", func() error {
			return e.svc.DeregisterStreamConsumer(ctx, &DeregisterStreamConsumerInput{StreamARN: &sarn, ConsumerName: sp("ghost")})
		}, CodeResourceNotFound, "Consumer ghost under stream s, account 000000000000 not found."},
		{"list other region", func() error {
			_, err := e.svc.ListStreamConsumers(ctx, &ListStreamConsumersInput{StreamARN: sp("arn:aws:kinesis:eu-west-1:000000000000:stream/s")})
			return err
		}, CodeResourceNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantErr(t, tc.call(), tc.code, tc.msg) })
	}
}

func TestConsumerTagsAndPolicy(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create("s", 1)
	c := e.register("s", "app")
	carn := c.ConsumerARN
	if err := e.svc.TagResource(ctx, &TagResourceInput{ResourceARN: &carn, Tags: map[string]string{"team": "data", "env": "dev"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.UntagResource(ctx, &UntagResourceInput{ResourceARN: &carn, TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	tags, err := e.svc.ListTagsForResource(ctx, &ListTagsForResourceInput{ResourceARN: &carn})
	if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Key != "team" {
		t.Fatalf("consumer tags %v %v", tags, err)
	}
	st, err := e.svc.ListTagsForResource(ctx, &ListTagsForResourceInput{ResourceARN: sp(e.arn("s"))})
	if err != nil || len(st.Tags) != 0 {
		t.Fatalf("stream tags %v %v", st, err)
	}
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kinesis:GetRecords","Resource":"*"}]}`
	if err := e.svc.PutResourcePolicy(ctx, &PutResourcePolicyInput{ResourceARN: &carn, Policy: &pol}); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.GetResourcePolicy(ctx, &GetResourcePolicyInput{ResourceARN: &carn})
	if err != nil || got.Policy != pol {
		t.Fatalf("policy %v %v", got, err)
	}
	if err := e.svc.DeleteResourcePolicy(ctx, &DeleteResourcePolicyInput{ResourceARN: &carn}); err != nil {
		t.Fatal(err)
	}
	err = e.svc.DeleteResourcePolicy(ctx, &DeleteResourcePolicyInput{ResourceARN: &carn})
	wantErr(t, err, CodeResourceNotFound, "No resource policy found for resource ARN "+carn+".")
	ghost := e.arn("s") + "/consumer/ghost:1"
	err = e.svc.TagResource(ctx, &TagResourceInput{ResourceARN: &ghost, Tags: map[string]string{"a": "b"}})
	wantErr(t, err, CodeResourceNotFound, "Consumer "+ghost+", account 000000000000 not found.")
}
