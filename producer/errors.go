package producer

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

var (
	// ErrClosed is returned for records put after Close, and wrapped in
	// the error of records still buffered when Close gave up.
	ErrClosed = errors.New("producer: closed")
	// ErrBufferFull is returned by Put under FailWhenFull when the buffer
	// bound is reached.
	ErrBufferFull = errors.New("producer: buffer full")
	// ErrRecordExpired is wrapped by the error of a record whose TTL ran
	// out before the stream acknowledged it; the error also wraps the
	// last failure.
	ErrRecordExpired = errors.New("producer: record TTL expired")
	// ErrUnknownOutcome is wrapped by the error of a record whose last
	// attempt ended without an answer (a transport error, a timeout, a
	// server error): it may be in the stream.
	ErrUnknownOutcome = errors.New("producer: outcome of the last attempt unknown")
	// ErrInvalidRecord is wrapped by the error of a record Kinesis would
	// refuse: an empty or too long partition key, a bad explicit hash key,
	// data too large.
	ErrInvalidRecord = errors.New("producer: invalid record")
	// ErrInvalidOption is wrapped by New's error for a bad option.
	ErrInvalidOption = errors.New("producer: invalid option")
)

// RecordError is a failure PutRecords reported for one record.
type RecordError struct {
	// Code is the error code, such as ProvisionedThroughputExceededException.
	Code string
	// Message is the service's message.
	Message string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("producer: put failed: %s: %s", e.Code, e.Message)
}

// retryableCode reports whether a per-record error code is worth a retry:
// throttles and internal failures are, as the KPL and the SDK's retryers
// hold.
func retryableCode(code string) bool {
	switch code {
	case "ProvisionedThroughputExceededException", "InternalFailure", "InternalFailureException",
		"KMSThrottlingException", "ServiceUnavailable", "ServiceUnavailableException":
		return true
	}
	return false
}

// callOutcome says what to do with the records of a failed PutRecords call.
type callOutcome struct {
	retry     bool // try the records again
	ambiguous bool // the call may have stored them
	refresh   bool // the shard map may be stale
}

// classifyCall classifies the error of a whole PutRecords call.
func classifyCall(err error) callOutcome {
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		switch {
		case code == "ProvisionedThroughputExceededException", code == "KMSThrottlingException",
			code == "LimitExceededException", code == "ThrottlingException":
			return callOutcome{retry: true}
		case retryableCode(code):
			return callOutcome{retry: true, ambiguous: true}
		case code == "ResourceNotFoundException":
			// A stream being recreated, or a shard map gone stale: the
			// refresh finds out, and fails everything if the stream is
			// gone.
			return callOutcome{retry: true, refresh: true}
		case code == "InvalidArgumentException":
			return callOutcome{refresh: true}
		}
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() >= http.StatusInternalServerError {
			return callOutcome{retry: true, ambiguous: true}
		}
		return callOutcome{}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() < http.StatusInternalServerError && re.HTTPStatusCode() != 0 {
		return callOutcome{}
	}
	if errors.Is(err, context.Canceled) {
		return callOutcome{ambiguous: true}
	}
	// Transport errors, request timeouts, unreadable answers.
	return callOutcome{retry: true, ambiguous: true}
}
