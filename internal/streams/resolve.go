package streams

import (
	"context"
	"strconv"
	"strings"
	"time"
)

// Messages shared by several operations, worded as Kinesis words them.

func (s *Service) errStreamNotFound(name string) *Error {
	return errorf(CodeResourceNotFound, "Stream %s under account %s not found.", name, s.opts.AccountID)
}

func (s *Service) errNotActive(name, status string) *Error {
	return errorf(CodeResourceInUse, "Stream %s under account %s not ACTIVE, instead in state %s", name, s.opts.AccountID, status)
}

func (s *Service) errShardNotFound(shardID, name string) *Error {
	return errorf(CodeResourceNotFound, "Shard %s in stream %s under account %s does not exist", shardID, name, s.opts.AccountID)
}

func (s *Service) streamARN(name string) string {
	return "arn:aws:kinesis:" + s.opts.Region + ":" + s.opts.AccountID + ":stream/" + name
}

// validStreamName reports whether name matches the model's StreamName shape.
func validStreamName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// arn is a parsed Kinesis resource ARN:
// arn:<partition>:kinesis:<region>:<account>:stream/<name>[/consumer/<consumer>:<created>].
type arn struct {
	region, account string
	stream          string
	consumer        string // "" for a stream ARN
	consumerCreated string
}

func parseARN(s string) (arn, bool) {
	parts := strings.SplitN(s, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws") || parts[2] != "kinesis" {
		return arn{}, false
	}
	a := arn{region: parts[3], account: parts[4]}
	if a.region == "" || len(a.account) != 12 {
		return arn{}, false
	}
	res, ok := strings.CutPrefix(parts[5], "stream/")
	if !ok {
		return arn{}, false
	}
	if name, cons, ok := strings.Cut(res, "/consumer/"); ok {
		c, created, ok := strings.Cut(cons, ":")
		if !ok || !validStreamName(c) || created == "" {
			return arn{}, false
		}
		if _, err := strconv.ParseUint(created, 10, 63); err != nil {
			return arn{}, false
		}
		res, a.consumer, a.consumerCreated = name, c, created
	}
	if !validStreamName(res) {
		return arn{}, false
	}
	a.stream = res
	return a, true
}

// streamName resolves the StreamName / StreamARN pair every stream-scoped
// operation takes.
func (s *Service) streamName(name, arnStr *string) (string, error) {
	var n string
	if name != nil {
		n = *name
		if !validStreamName(n) {
			return "", errorf(CodeValidation, "1 validation error detected: Value '%s' at 'streamName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", n)
		}
	}
	if arnStr != nil {
		a, err := s.streamFromARN(*arnStr)
		if err != nil {
			return "", err
		}
		if name != nil && a != n {
			return "", errorf(CodeInvalidArgument, "StreamARN %s and StreamName %s do not refer to the same stream.", *arnStr, n)
		}
		return a, nil
	}
	if name == nil {
		return "", errorf(CodeInvalidArgument, "Either StreamName or StreamARN must be provided.")
	}
	return n, nil
}

// streamFromARN returns the name of the stream a stream ARN names.
func (s *Service) streamFromARN(str string) (string, error) {
	a, ok := parseARN(str)
	if !ok || a.consumer != "" {
		return "", errorf(CodeInvalidArgument, "StreamARN %s is invalid.", str)
	}
	if a.region != s.opts.Region || a.account != s.opts.AccountID {
		return "", errorf(CodeResourceNotFound, "Stream %s under account %s not found.", a.stream, a.account)
	}
	return a.stream, nil
}

// existing returns the stream named name as it is now, for reading: from the
// engine (control plane), or nil and ResourceNotFoundException.
// A pending change that is due is applied first.
func (s *Service) existing(ctx context.Context, name string) (*stream, string, error) {
	st, err := s.fetch(ctx, name)
	if err == nil {
		st, err = s.applyDue(ctx, name, st)
	}
	if err != nil {
		return nil, "", err
	}
	return s.checkExists(st, name)
}

// live is like existing but may answer from the cache (data plane).
func (s *Service) live(ctx context.Context, name string) (*stream, string, error) {
	st, err := s.cached(ctx, name)
	if err == nil && st != nil && st.meta.Pending != nil {
		st, err = s.applyDue(ctx, name, st)
	}
	if err != nil {
		return nil, "", err
	}
	return s.checkExists(st, name)
}

func (s *Service) checkExists(st *stream, name string) (*stream, string, error) {
	if st == nil {
		return nil, "", s.errStreamNotFound(name)
	}
	status := st.meta.settled(s.nowMs())
	if status == "" {
		s.poke()
		return nil, "", s.errStreamNotFound(name)
	}
	return st, status, nil
}

// writable checks that data-plane operations may use a stream in status:
// Kinesis serves them while ACTIVE or UPDATING and hides the stream otherwise.
func (s *Service) writable(name, status string) error {
	if status != statusActive && status != statusUpdating {
		return s.errStreamNotFound(name)
	}
	return nil
}

// parseShardIndex reads a shard id the way Kinesis accepts them:
// "shardId-000000000001", "shardId-1", any prefix before one dash, or the
// bare number; the number is decimal digits (any count, leading zeros
// allowed) up to 2147483647, as the emulators that recorded Kinesis'
// answers found ("a-00002147483647" names shard 2147483647).
func parseShardIndex(id string) (int, bool) {
	num := id
	if _, after, ok := strings.Cut(id, "-"); ok {
		num = after
	}
	if num == "" {
		return 0, false
	}
	n := 0
	for i := 0; i < len(num); i++ {
		c := num[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > 1<<31-1 {
			return 0, false
		}
	}
	return n, true
}

// normalShardID returns the canonical form of a shard id Kinesis accepts
// ("shardId-5" is "shardId-000000000005"), or id itself when it names no
// shard.
func normalShardID(id string) string {
	if i, ok := parseShardIndex(id); ok {
		return shardID(i)
	}
	return id
}

// amzTime formats t the way Kinesis prints times in messages:
// "Thu Jan 22 01:22:02 UTC 2015".
func amzTime(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("Mon Jan 02 15:04:05 UTC 2006")
}
