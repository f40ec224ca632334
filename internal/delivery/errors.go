package delivery

import (
	"errors"
	"fmt"
)

// Code names a Firehose error type as it appears on the wire ("__type").
type Code string

// The error types the service answers with: the Firehose service model's,
// and ValidationException for values outside the model's constraints, as
// AWS's JSON services answer them.
const (
	CodeInvalidArgument        Code = "InvalidArgumentException"
	CodeValidation             Code = "ValidationException"
	CodeResourceNotFound       Code = "ResourceNotFoundException"
	CodeResourceInUse          Code = "ResourceInUseException"
	CodeLimitExceeded          Code = "LimitExceededException"
	CodeConcurrentModification Code = "ConcurrentModificationException"
	CodeServiceUnavailable     Code = "ServiceUnavailableException"
	CodeInvalidKMSResource     Code = "InvalidKMSResourceException"
)

// Error is an error the client sees with its Code and Message.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// ErrorCode returns the wire name of the error's type.
func (e *Error) ErrorCode() string { return string(e.Code) }

// ErrorMessage returns the message the client sees.
func (e *Error) ErrorMessage() string { return e.Message }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// validation words a broken model constraint as AWS's JSON services do.
func validation(value any, member, constraint string) *Error {
	return errorf(CodeValidation, "1 validation error detected: Value '%v' at '%s' failed to satisfy constraint: %s", value, member, constraint)
}

// PermanentError marks a destination failure that retrying cannot cure
// (no such bucket, access denied): delivery reports it and waits for the
// destination's configuration to change instead of retrying at once.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err is, or wraps, a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}
