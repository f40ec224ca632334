package streams

import (
	"context"
	"errors"

	"github.com/runnel/runnel/internal/iam"
)

// The service is what an iam.Authorizer needs to find resource policies.
var _ iam.Resources = (*Service)(nil)

// checkPolicy validates a resource policy document before it is stored:
// malformed JSON and elements IAM would refuse are InvalidArgumentException.
func checkPolicy(doc *string) error {
	if doc == nil {
		return errNull("policy")
	}
	_, err := iam.Parse([]byte(*doc), iam.Resource)
	if err == nil {
		return nil
	}
	if errors.Is(err, iam.ErrInvalidJSON) {
		return errorf(CodeInvalidArgument, "Policy document is not valid JSON.")
	}
	var pe *iam.PolicyError
	if errors.As(err, &pe) {
		return errorf(CodeInvalidArgument, "Invalid policy document: %s.", pe.Msg)
	}
	return err
}

// ResourcePolicy returns the policy attached to a stream or consumer ARN of
// this service, "" when it has none or does not exist. Streams are read
// from the cache: this is on the path of every authorized request.
func (s *Service) ResourcePolicy(ctx context.Context, arnStr string) (string, error) {
	a, ok := parseARN(arnStr)
	if !ok || a.region != s.opts.Region || a.account != s.opts.AccountID {
		return "", nil
	}
	st, err := s.cached(ctx, a.stream)
	if err != nil {
		return "", err
	}
	if st == nil {
		return "", nil
	}
	if a.consumer == "" {
		return st.meta.Policy, nil
	}
	c, err := s.lookup(st.meta, consumerRef{stream: a.stream, name: a.consumer, created: a.consumerCreated, arn: arnStr}, s.nowMs())
	if err != nil {
		return "", nil
	}
	return c.Policy, nil
}

// ConsumerARN returns the ARN of a stream's consumer, ok false when the
// stream or the consumer does not exist.
func (s *Service) ConsumerARN(ctx context.Context, stream, consumer string) (string, bool) {
	st, err := s.cached(ctx, stream)
	if err != nil || st == nil {
		return "", false
	}
	c := st.meta.findConsumer(consumer, s.nowMs())
	if c == nil {
		return "", false
	}
	return s.consumerARN(stream, c), true
}

// TokenStream returns the stream a shard iterator or a ListShards
// NextToken of this service was issued for. The token's age is not
// checked: the operation itself does that.
func (s *Service) TokenStream(token string) (string, bool) {
	if it, ok := s.tokens.decodeIterator(token); ok {
		return it.stream, true
	}
	if pt, ok := s.tokens.decodePage(token); ok && pt.stream != "" {
		return pt.stream, true
	}
	return "", false
}
