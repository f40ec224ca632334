package streams

import (
	"context"
	"sort"
	"strconv"
)

// Enhanced fan-out consumers.
//
// A consumer is stored inside its stream's metadata (streamMeta.Consumers),
// so registering, deregistering and deleting the stream are each one
// compare-and-set, and a consumer disappears with its stream. Its ARN is
//
//	arn:aws:kinesis:<region>:<account>:stream/<stream>/consumer/<name>:<creation Unix seconds>
//
// as Kinesis forms it; the creation time tells a consumer from an earlier
// one of the same name. CREATING and DELETING settle lazily at their stored
// deadline, like stream statuses; a consumer whose deletion has completed is
// dropped from the metadata by the next change of its stream.

// Limits of enhanced fan-out (Kinesis' quotas for provisioned and on-demand
// standard streams).
const (
	maxConsumers         = 20
	maxCreatingConsumers = 5
	defaultListConsumers = 100
)

// settled returns the consumer's status at time now (Unix ms); "" means gone.
func (c *consumerMeta) settled(now int64) string {
	if c.Until != 0 && now >= c.Until {
		if c.Status == statusDeleting {
			return ""
		}
		return statusActive
	}
	return c.Status
}

// createdSec is the creation time that appears in the consumer's ARN.
func (c *consumerMeta) createdSec() string { return strconv.FormatInt(c.Created/1000, 10) }

// liveConsumers counts the consumers not yet gone at time now.
func (m *streamMeta) liveConsumers(now int64) int {
	n := 0
	for i := range m.Consumers {
		if m.Consumers[i].settled(now) != "" {
			n++
		}
	}
	return n
}

// settleConsumers stores settled consumer statuses and drops gone consumers.
func (m *streamMeta) settleConsumers(now int64) {
	out := m.Consumers[:0]
	for _, c := range m.Consumers {
		st := c.settled(now)
		if st == "" {
			continue
		}
		if st != c.Status {
			c.Status, c.Until = st, 0
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		out = nil
	}
	m.Consumers = out
}

// findConsumer returns the live consumer called name, or nil.
func (m *streamMeta) findConsumer(name string, now int64) *consumerMeta {
	for i := range m.Consumers {
		c := &m.Consumers[i]
		if c.Name == name && c.settled(now) != "" {
			return c
		}
	}
	return nil
}

func (s *Service) consumerARN(stream string, c *consumerMeta) string {
	return s.streamARN(stream) + "/consumer/" + c.Name + ":" + c.createdSec()
}

func (s *Service) errConsumerNotFound(arnStr string) *Error {
	return errorf(CodeResourceNotFound, "Consumer %s, account %s not found.", arnStr, s.opts.AccountID)
}

func (s *Service) errConsumerNameNotFound(name, stream string) *Error {
	return errorf(CodeResourceNotFound, "Consumer %s under stream %s, account %s not found.", name, stream, s.opts.AccountID)
}

func (s *Service) errConsumerNotActive(c *consumerMeta, stream string) *Error {
	return errorf(CodeResourceInUse, "Consumer %s with creation timestamp %s under stream %s and account %s is not in ACTIVE status.", c.Name, c.createdSec(), stream, s.opts.AccountID)
}

// consumerRef names one consumer: by its ARN, or by stream and name.
type consumerRef struct {
	stream  string
	name    string
	created string // creation seconds from the ARN; "" when named by name
	arn     string // the ARN as given, for messages
}

// parseConsumerARN reads a consumer ARN of this service's region and account.
func (s *Service) parseConsumerARN(str string) (consumerRef, error) {
	a, ok := parseARN(str)
	if !ok || a.consumer == "" {
		return consumerRef{}, errorf(CodeInvalidArgument, "ConsumerARN %s is invalid.", str)
	}
	if a.region != s.opts.Region || a.account != s.opts.AccountID {
		return consumerRef{}, s.errConsumerNotFound(str)
	}
	return consumerRef{stream: a.stream, name: a.consumer, created: a.consumerCreated, arn: str}, nil
}

// consumerRefOf resolves the ConsumerARN / StreamARN + ConsumerName choice of
// DescribeStreamConsumer and DeregisterStreamConsumer.
func (s *Service) consumerRefOf(streamARN, name, consumerARN *string) (consumerRef, error) {
	if consumerARN != nil {
		ref, err := s.parseConsumerARN(*consumerARN)
		if err != nil {
			return consumerRef{}, err
		}
		if streamARN != nil {
			st, err := s.streamFromARN(*streamARN)
			if err != nil {
				return consumerRef{}, err
			}
			if st != ref.stream {
				return consumerRef{}, errorf(CodeInvalidArgument, "StreamARN %s and ConsumerARN %s do not refer to the same stream.", *streamARN, *consumerARN)
			}
		}
		if name != nil && *name != ref.name {
			return consumerRef{}, errorf(CodeInvalidArgument, "ConsumerName %s and ConsumerARN %s do not refer to the same consumer.", *name, *consumerARN)
		}
		return ref, nil
	}
	if streamARN == nil || name == nil {
		return consumerRef{}, errorf(CodeInvalidArgument, "Either ConsumerARN or both ConsumerName and StreamARN must be provided.")
	}
	st, err := s.streamFromARN(*streamARN)
	if err != nil {
		return consumerRef{}, err
	}
	if !validStreamName(*name) {
		return consumerRef{}, errorf(CodeValidation, "1 validation error detected: Value '%s' at 'consumerName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", *name)
	}
	return consumerRef{stream: st, name: *name}, nil
}

// lookup finds the consumer ref names in m at time now.
func (s *Service) lookup(m *streamMeta, ref consumerRef, now int64) (*consumerMeta, error) {
	c := m.findConsumer(ref.name, now)
	if c != nil && (ref.created == "" || ref.created == c.createdSec()) {
		return c, nil
	}
	if ref.arn != "" {
		return nil, s.errConsumerNotFound(ref.arn)
	}
	return nil, s.errConsumerNameNotFound(ref.name, ref.stream)
}

// consumerOf reads the stream (from the engine) and the consumer ref names.
func (s *Service) consumerOf(ctx context.Context, ref consumerRef) (*stream, *consumerMeta, error) {
	st, _, err := s.existing(ctx, ref.stream)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == CodeResourceNotFound && ref.arn != "" {
			return nil, nil, s.errConsumerNotFound(ref.arn)
		}
		return nil, nil, err
	}
	c, err := s.lookup(st.meta, ref, s.nowMs())
	if err != nil {
		return nil, nil, err
	}
	return st, c, nil
}

func (s *Service) consumerOut(stream string, c *consumerMeta, now int64) Consumer {
	return Consumer{
		ConsumerName:              c.Name,
		ConsumerARN:               s.consumerARN(stream, c),
		ConsumerStatus:            c.settled(now),
		ConsumerCreationTimestamp: TimestampMillis(c.Created),
	}
}

// RegisterStreamConsumer registers an enhanced fan-out consumer on a stream.
// It is CREATING for Options.TransitionDelay, then ACTIVE.
func (s *Service) RegisterStreamConsumer(ctx context.Context, in *RegisterStreamConsumerInput) (*RegisterStreamConsumerOutput, error) {
	if in == nil {
		in = &RegisterStreamConsumerInput{}
	}
	if in.StreamARN == nil {
		return nil, errNull("streamARN")
	}
	if in.ConsumerName == nil {
		return nil, errNull("consumerName")
	}
	cname := *in.ConsumerName
	if !validStreamName(cname) {
		return nil, errorf(CodeValidation, "1 validation error detected: Value '%s' at 'consumerName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", cname)
	}
	name, err := s.streamFromARN(*in.StreamARN)
	if err != nil {
		return nil, err
	}
	if len(in.Tags) > maxTags {
		return nil, s.errTooManyTags(name)
	}
	if err := s.checkTags(name, in.Tags); err != nil {
		return nil, err
	}
	var out Consumer
	_, err = s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status != statusActive && m.Status != statusUpdating {
			return s.errNotActive(name, m.Status)
		}
		m.settleConsumers(now)
		creating := 0
		for i := range m.Consumers {
			c := &m.Consumers[i]
			if c.Name == cname {
				return errorf(CodeResourceInUse, "Consumer %s under stream %s already exists for account %s.", cname, name, s.opts.AccountID)
			}
			if c.Status == statusCreating {
				creating++
			}
		}
		if len(m.Consumers) >= maxConsumers {
			return errorf(CodeLimitExceeded, "Stream %s under account %s already has the maximum of %d registered consumers.", name, s.opts.AccountID, maxConsumers)
		}
		if creating >= maxCreatingConsumers {
			return errorf(CodeLimitExceeded, "Stream %s under account %s already has %d consumers in CREATING status; at most %d can be created at the same time.", name, s.opts.AccountID, creating, maxCreatingConsumers)
		}
		c := consumerMeta{Name: cname, Created: now, Status: statusCreating, Until: now + s.opts.TransitionDelay.Milliseconds()}
		if s.opts.TransitionDelay == 0 {
			c.Status, c.Until = statusActive, 0
		}
		if len(in.Tags) > 0 {
			c.Tags = make(map[string]string, len(in.Tags))
			for k, v := range in.Tags {
				c.Tags[k] = v
			}
		}
		m.Consumers = append(m.Consumers, c)
		out = s.consumerOut(name, &c, now)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &RegisterStreamConsumerOutput{Consumer: out}, nil
}

// DescribeStreamConsumer describes a consumer named by its ARN or by its
// stream's ARN and its name.
func (s *Service) DescribeStreamConsumer(ctx context.Context, in *DescribeStreamConsumerInput) (*DescribeStreamConsumerOutput, error) {
	if in == nil {
		in = &DescribeStreamConsumerInput{}
	}
	ref, err := s.consumerRefOf(in.StreamARN, in.ConsumerName, in.ConsumerARN)
	if err != nil {
		return nil, err
	}
	st, c, err := s.consumerOf(ctx, ref)
	if err != nil {
		return nil, err
	}
	o := s.consumerOut(ref.stream, c, s.nowMs())
	return &DescribeStreamConsumerOutput{ConsumerDescription: ConsumerDescription{
		ConsumerName:              o.ConsumerName,
		ConsumerARN:               o.ConsumerARN,
		ConsumerStatus:            o.ConsumerStatus,
		ConsumerCreationTimestamp: o.ConsumerCreationTimestamp,
		StreamARN:                 st.arn,
	}}, nil
}

// ListStreamConsumers lists a stream's consumers in name order, paged by
// MaxResults and NextToken.
func (s *Service) ListStreamConsumers(ctx context.Context, in *ListStreamConsumersInput) (*ListStreamConsumersOutput, error) {
	if in == nil {
		in = &ListStreamConsumersInput{}
	}
	if in.StreamARN == nil {
		return nil, errNull("streamARN")
	}
	name, err := s.streamFromARN(*in.StreamARN)
	if err != nil {
		return nil, err
	}
	limit := defaultListConsumers
	if in.MaxResults != nil {
		if *in.MaxResults < 1 {
			return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.MaxResults)
		}
		if *in.MaxResults > 10000 {
			return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10000", *in.MaxResults)
		}
		limit = int(*in.MaxResults)
	}
	st, _, err := s.existing(ctx, name)
	if err != nil {
		return nil, err
	}
	if in.StreamCreationTimestamp != nil && in.StreamCreationTimestamp.Millis()/1000 != st.meta.Created/1000 {
		return nil, s.errStreamNotFound(name)
	}
	after := ""
	if in.NextToken != nil {
		pt, err := s.openPageToken(*in.NextToken)
		if err != nil {
			return nil, err
		}
		if pt.filter != 0 || pt.stream != name || pt.streamID != st.meta.ID {
			return nil, errorf(CodeInvalidArgument, "Invalid NextToken.")
		}
		after = pt.after
	}
	now := s.nowMs()
	cs := make([]*consumerMeta, 0, len(st.meta.Consumers))
	for i := range st.meta.Consumers {
		c := &st.meta.Consumers[i]
		if c.settled(now) != "" && (after == "" || c.Name > after) {
			cs = append(cs, c)
		}
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
	out := &ListStreamConsumersOutput{Consumers: []Consumer{}}
	for _, c := range cs {
		if len(out.Consumers) == limit {
			tok := s.tokens.encodePage(pageToken{issued: now, stream: name, streamID: st.meta.ID, after: out.Consumers[limit-1].ConsumerName})
			out.NextToken = &tok
			break
		}
		out.Consumers = append(out.Consumers, s.consumerOut(name, c, now))
	}
	return out, nil
}

// DeregisterStreamConsumer starts removing a consumer: it is DELETING for
// Options.TransitionDelay, then gone. Its subscriptions end.
func (s *Service) DeregisterStreamConsumer(ctx context.Context, in *DeregisterStreamConsumerInput) error {
	if in == nil {
		in = &DeregisterStreamConsumerInput{}
	}
	ref, err := s.consumerRefOf(in.StreamARN, in.ConsumerName, in.ConsumerARN)
	if err != nil {
		return err
	}
	var arnStr string
	_, err = s.update(ctx, ref.stream, func(m *streamMeta, now int64) error {
		m.settleConsumers(now)
		c, err := s.lookup(m, ref, now)
		if err != nil {
			return err
		}
		if c.Status == statusDeleting {
			return nil
		}
		arnStr = s.consumerARN(ref.stream, c)
		c.Status, c.Until = statusDeleting, now+s.opts.TransitionDelay.Milliseconds()
		if s.opts.TransitionDelay == 0 {
			m.settleConsumers(now)
		}
		return nil
	})
	if err != nil {
		if e, ok := err.(*Error); ok && e.Code == CodeResourceNotFound && ref.arn != "" {
			return s.errConsumerNotFound(ref.arn)
		}
		return err
	}
	s.endConsumerSubscriptions(arnStr)
	return nil
}

// resourceConsumer reports whether a ResourceARN names a consumer of this
// region and account, and which.
func (s *Service) resourceConsumer(arnStr *string) (consumerRef, bool) {
	if arnStr == nil {
		return consumerRef{}, false
	}
	a, ok := parseARN(*arnStr)
	if !ok || a.consumer == "" || a.region != s.opts.Region || a.account != s.opts.AccountID {
		return consumerRef{}, false
	}
	return consumerRef{stream: a.stream, name: a.consumer, created: a.consumerCreated, arn: *arnStr}, true
}

// updateConsumer applies fn to the consumer ref names, in one compare-and-set
// of its stream.
func (s *Service) updateConsumer(ctx context.Context, ref consumerRef, fn func(c *consumerMeta) error) error {
	found := false
	_, err := s.update(ctx, ref.stream, func(m *streamMeta, now int64) error {
		m.settleConsumers(now)
		c, err := s.lookup(m, ref, now)
		if err != nil {
			return err
		}
		found = true
		return fn(c)
	})
	if e, ok := err.(*Error); ok && e.Code == CodeResourceNotFound && !found {
		return s.errConsumerNotFound(ref.arn)
	}
	return err
}

func (s *Service) tagConsumer(ctx context.Context, ref consumerRef, tags map[string]string) error {
	if len(tags) == 0 {
		return errNull("tags")
	}
	if err := s.checkTags(ref.stream, tags); err != nil {
		return err
	}
	return s.updateConsumer(ctx, ref, func(c *consumerMeta) error {
		n := len(c.Tags)
		for k := range tags {
			if _, ok := c.Tags[k]; !ok {
				n++
			}
		}
		if n > maxTags {
			return errorf(CodeInvalidArgument, "Failed to add tags to consumer %s under account %s because a given consumer cannot have more than %d tags associated with it.", ref.arn, s.opts.AccountID, maxTags)
		}
		if c.Tags == nil {
			c.Tags = make(map[string]string, len(tags))
		}
		for k, v := range tags {
			c.Tags[k] = v
		}
		return nil
	})
}

func (s *Service) untagConsumer(ctx context.Context, ref consumerRef, keys []string) error {
	if len(keys) == 0 {
		return errNull("tagKeys")
	}
	return s.updateConsumer(ctx, ref, func(c *consumerMeta) error {
		for _, k := range keys {
			delete(c.Tags, k)
		}
		if len(c.Tags) == 0 {
			c.Tags = nil
		}
		return nil
	})
}

func (s *Service) consumerTags(ctx context.Context, ref consumerRef) (*ListTagsForResourceOutput, error) {
	_, c, err := s.consumerOf(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := &ListTagsForResourceOutput{Tags: []Tag{}}
	for _, k := range sortedTagKeys(c.Tags) {
		out.Tags = append(out.Tags, Tag{Key: ptr(k), Value: ptr(c.Tags[k])})
	}
	return out, nil
}

func (s *Service) putConsumerPolicy(ctx context.Context, ref consumerRef, policy *string) error {
	if err := checkPolicy(policy); err != nil {
		return err
	}
	return s.updateConsumer(ctx, ref, func(c *consumerMeta) error {
		if c.Status != statusActive {
			return s.errConsumerNotActive(c, ref.stream)
		}
		c.Policy = *policy
		return nil
	})
}

func (s *Service) consumerPolicy(ctx context.Context, ref consumerRef) (*GetResourcePolicyOutput, error) {
	_, c, err := s.consumerOf(ctx, ref)
	if err != nil {
		return nil, err
	}
	p := c.Policy
	if p == "" {
		p = "{}"
	}
	return &GetResourcePolicyOutput{Policy: p}, nil
}

func (s *Service) deleteConsumerPolicy(ctx context.Context, ref consumerRef) error {
	return s.updateConsumer(ctx, ref, func(c *consumerMeta) error {
		if c.Policy == "" {
			return errorf(CodeResourceNotFound, "No resource policy found for resource ARN %s.", ref.arn)
		}
		c.Policy = ""
		return nil
	})
}
