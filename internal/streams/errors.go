package streams

import "fmt"

// Code names a Kinesis error type, exactly as it appears in the wire "__type"
// member. The wire layer's error registry maps each Code to its HTTP status.
type Code string

// The Kinesis error types the service raises.
const (
	CodeValidation                    Code = "ValidationException"
	CodeInvalidArgument               Code = "InvalidArgumentException"
	CodeResourceNotFound              Code = "ResourceNotFoundException"
	CodeResourceInUse                 Code = "ResourceInUseException"
	CodeLimitExceeded                 Code = "LimitExceededException"
	CodeExpiredIterator               Code = "ExpiredIteratorException"
	CodeExpiredNextToken              Code = "ExpiredNextTokenException"
	CodeProvisionedThroughputExceeded Code = "ProvisionedThroughputExceededException"
	CodeAccessDenied                  Code = "AccessDeniedException"
	CodeInternalFailure               Code = "InternalFailure"
)

// Error is a Kinesis-visible error: a type and the exact message Kinesis uses.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// errorf builds an *Error with a formatted message.
func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}
