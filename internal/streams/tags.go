package streams

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"
)

func (s *Service) errTooManyTags(name string) *Error {
	return errorf(CodeInvalidArgument, "Failed to add tags to stream %s under account %s because a given stream cannot have more than %d tags associated with it.", name, s.opts.AccountID, maxTags)
}

// tagCharsOK reports whether every character of s is one Kinesis accepts in
// tags: Unicode letters, digits, the space and _ . / = + - % @ : (a tab is
// refused, as Kinesis refuses it).
func tagCharsOK(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || strings.ContainsRune("_./=+-%@:", r) {
			continue
		}
		return false
	}
	return true
}

const errTagChars = "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @."

func (s *Service) checkTags(name string, tags map[string]string) error {
	for k, v := range tags {
		if n := utf8.RuneCountInString(k); n < 1 || n > 128 {
			return errorf(CodeValidation, "1 validation error detected: Value '%s' at 'tags' failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 128, Member must have length greater than or equal to 1]", k)
		}
		if utf8.RuneCountInString(v) > 256 {
			return errorf(CodeValidation, "1 validation error detected: Value '%s' at 'tags' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 256, Member must have length greater than or equal to 0]", v)
		}
		if !tagCharsOK(k) || !tagCharsOK(v) {
			return &Error{Code: CodeInvalidArgument, Message: errTagChars}
		}
		if strings.Contains(k, "%") || strings.Contains(v, "%") {
			return errorf(CodeInvalidArgument, "Failed to add tags to stream %s under account %s because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@'.", name, s.opts.AccountID)
		}
	}
	return nil
}

func (s *Service) addTags(ctx context.Context, name string, tags map[string]string) error {
	if len(tags) == 0 {
		return errorf(CodeValidation, "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	if len(tags) > maxTags {
		return s.errTooManyTags(name)
	}
	if err := s.checkTags(name, tags); err != nil {
		return err
	}
	_, err := s.update(ctx, name, func(m *streamMeta, now int64) error {
		if m.Status == statusDeleting {
			return s.errNotActive(name, m.Status)
		}
		n := len(m.Tags)
		for k := range tags {
			if _, ok := m.Tags[k]; !ok {
				n++
			}
		}
		if n > maxTags {
			return s.errTooManyTags(name)
		}
		if m.Tags == nil {
			m.Tags = make(map[string]string, len(tags))
		}
		for k, v := range tags {
			m.Tags[k] = v
		}
		return nil
	})
	return err
}

func (s *Service) removeTags(ctx context.Context, name string, keys []string) error {
	if len(keys) == 0 {
		return errorf(CodeValidation, "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null")
	}
	if len(keys) > maxTags {
		return errorf(CodeValidation, "1 validation error detected: Value '[%s]' at 'tagKeys' failed to satisfy constraint: Member must have length less than or equal to 50", strings.Join(keys, ", "))
	}
	// The stream is looked up before the keys are checked, as Kinesis does
	// (an unknown stream is ResourceNotFoundException whatever the keys).
	_, err := s.update(ctx, name, func(m *streamMeta, now int64) error {
		for _, k := range keys {
			if !tagCharsOK(k) {
				return &Error{Code: CodeInvalidArgument, Message: "Some tags contain invalid characters. Valid characters: Unicode letters, digits, white space, _ . / = + - % @ :."}
			}
			if strings.Contains(k, "%") {
				return errorf(CodeInvalidArgument, "Failed to remove tags from stream %s under account %s because some tags contained illegal characters. The allowed characters are Unicode letters, white-spaces, '_',',','/','=','+','-','@',':'.", name, s.opts.AccountID)
			}
		}
		if m.Status == statusDeleting {
			return s.errNotActive(name, m.Status)
		}
		for _, k := range keys {
			delete(m.Tags, k)
		}
		return nil
	})
	return err
}

// AddTagsToStream adds or overwrites tags of a stream (at most 50 in all).
func (s *Service) AddTagsToStream(ctx context.Context, in *AddTagsToStreamInput) error {
	if in == nil {
		in = &AddTagsToStreamInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	return s.addTags(ctx, name, in.Tags)
}

// RemoveTagsFromStream removes tags from a stream; absent keys are ignored.
func (s *Service) RemoveTagsFromStream(ctx context.Context, in *RemoveTagsFromStreamInput) error {
	if in == nil {
		in = &RemoveTagsFromStreamInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return err
	}
	return s.removeTags(ctx, name, in.TagKeys)
}

// ListTagsForStream lists a stream's tags in key order, paged by
// ExclusiveStartTagKey and Limit.
func (s *Service) ListTagsForStream(ctx context.Context, in *ListTagsForStreamInput) (*ListTagsForStreamOutput, error) {
	if in == nil {
		in = &ListTagsForStreamInput{}
	}
	name, err := s.streamName(in.StreamName, in.StreamARN)
	if err != nil {
		return nil, err
	}
	limit := maxTags
	if in.Limit != nil {
		if *in.Limit < 1 {
			return nil, errorf(CodeValidation, "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.Limit)
		}
		limit = min(int(*in.Limit), maxTags)
	}
	st, _, err := s.existing(ctx, name)
	if err != nil {
		return nil, err
	}
	out := &ListTagsForStreamOutput{Tags: []Tag{}}
	for _, k := range sortedTagKeys(st.meta.Tags) {
		if in.ExclusiveStartTagKey != nil && k <= *in.ExclusiveStartTagKey {
			continue
		}
		if len(out.Tags) == limit {
			out.HasMoreTags = true
			break
		}
		out.Tags = append(out.Tags, Tag{Key: ptr(k), Value: ptr(st.meta.Tags[k])})
	}
	return out, nil
}

// resourceStream resolves a ResourceARN to a stream name. The callers handle
// consumer ARNs of this region and account first (resourceConsumer).
func (s *Service) resourceStream(ctx context.Context, arnStr *string) (string, error) {
	if arnStr == nil {
		return "", errNull("resourceARN")
	}
	a, ok := parseARN(*arnStr)
	if !ok {
		return "", errorf(CodeInvalidArgument, "Invalid ResourceARN %s.", *arnStr)
	}
	if a.region != s.opts.Region || a.account != s.opts.AccountID {
		return "", errorf(CodeResourceNotFound, "Resource %s not found.", *arnStr)
	}
	if a.consumer != "" {
		return "", errorf(CodeResourceNotFound, "Consumer %s, account %s not found.", *arnStr, s.opts.AccountID)
	}
	return a.stream, nil
}

// TagResource tags a stream or a consumer named by its ARN.
func (s *Service) TagResource(ctx context.Context, in *TagResourceInput) error {
	if in == nil {
		in = &TagResourceInput{}
	}
	if ref, ok := s.resourceConsumer(in.ResourceARN); ok {
		return s.tagConsumer(ctx, ref, in.Tags)
	}
	name, err := s.resourceStream(ctx, in.ResourceARN)
	if err != nil {
		return err
	}
	return s.addTags(ctx, name, in.Tags)
}

// UntagResource removes tags from a stream or a consumer named by its ARN.
func (s *Service) UntagResource(ctx context.Context, in *UntagResourceInput) error {
	if in == nil {
		in = &UntagResourceInput{}
	}
	if ref, ok := s.resourceConsumer(in.ResourceARN); ok {
		return s.untagConsumer(ctx, ref, in.TagKeys)
	}
	name, err := s.resourceStream(ctx, in.ResourceARN)
	if err != nil {
		return err
	}
	return s.removeTags(ctx, name, in.TagKeys)
}

// ListTagsForResource lists every tag of a stream or a consumer named by its
// ARN.
func (s *Service) ListTagsForResource(ctx context.Context, in *ListTagsForResourceInput) (*ListTagsForResourceOutput, error) {
	if in == nil {
		in = &ListTagsForResourceInput{}
	}
	if ref, ok := s.resourceConsumer(in.ResourceARN); ok {
		return s.consumerTags(ctx, ref)
	}
	name, err := s.resourceStream(ctx, in.ResourceARN)
	if err != nil {
		return nil, err
	}
	st, _, err := s.existing(ctx, name)
	if err != nil {
		return nil, err
	}
	out := &ListTagsForResourceOutput{Tags: []Tag{}}
	for _, k := range sortedTagKeys(st.meta.Tags) {
		out.Tags = append(out.Tags, Tag{Key: ptr(k), Value: ptr(st.meta.Tags[k])})
	}
	return out, nil
}
