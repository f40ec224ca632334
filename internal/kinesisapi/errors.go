package kinesisapi

import (
	"net/http"

	"github.com/runnel/runnel/internal/streams"
)

// ErrorType is one Kinesis error type as it appears on the wire: the name in
// "__type" and X-Amzn-ErrorType, the HTTP status it travels with, and whether
// AWS SDKs treat it as retryable (throttling or a server fault).
type ErrorType struct {
	Name      string
	Status    int
	Retryable bool
}

// The registry: every error type the wire layer can answer with, declared
// once. Modeled errors come from the Kinesis service model; the others are
// the AWS JSON protocol's common errors.
var (
	ErrAccessDenied                  = declare("AccessDeniedException", http.StatusBadRequest, false)
	ErrExpiredIterator               = declare("ExpiredIteratorException", http.StatusBadRequest, false)
	ErrExpiredNextToken              = declare("ExpiredNextTokenException", http.StatusBadRequest, false)
	ErrInternalFailure               = declare("InternalFailure", http.StatusInternalServerError, true)
	ErrInvalidArgument               = declare("InvalidArgumentException", http.StatusBadRequest, false)
	ErrKMSAccessDenied               = declare("KMSAccessDeniedException", http.StatusBadRequest, false)
	ErrKMSDisabled                   = declare("KMSDisabledException", http.StatusBadRequest, false)
	ErrKMSInvalidState               = declare("KMSInvalidStateException", http.StatusBadRequest, false)
	ErrKMSNotFound                   = declare("KMSNotFoundException", http.StatusBadRequest, false)
	ErrKMSOptInRequired              = declare("KMSOptInRequired", http.StatusBadRequest, false)
	ErrKMSThrottling                 = declare("KMSThrottlingException", http.StatusBadRequest, true)
	ErrLimitExceeded                 = declare("LimitExceededException", http.StatusBadRequest, true)
	ErrProvisionedThroughputExceeded = declare("ProvisionedThroughputExceededException", http.StatusBadRequest, true)
	ErrResourceInUse                 = declare("ResourceInUseException", http.StatusBadRequest, false)
	ErrResourceNotFound              = declare("ResourceNotFoundException", http.StatusBadRequest, false)
	ErrValidation                    = declare("ValidationException", http.StatusBadRequest, false)

	// ErrLeaseConflict is the lease tables' fencing refusal (docs/LEASES.md).
	ErrLeaseConflict = declare("LeaseConflictException", http.StatusBadRequest, false)

	// Firehose's own error types (service model Firehose_20150804).
	ErrConcurrentModification = declare("ConcurrentModificationException", http.StatusBadRequest, false)
	ErrInvalidKMSResource     = declare("InvalidKMSResourceException", http.StatusBadRequest, false)
	// ErrFirehoseUnavailable is Firehose's throttling: a fault, retried.
	ErrFirehoseUnavailable = declare("ServiceUnavailableException", http.StatusServiceUnavailable, true)

	ErrSerialization         = declare("SerializationException", http.StatusBadRequest, false)
	ErrUnknownOperation      = declare("UnknownOperationException", http.StatusBadRequest, false)
	ErrMissingAuthToken      = declare("MissingAuthenticationTokenException", http.StatusForbidden, false)
	ErrIncompleteSignature   = declare("IncompleteSignatureException", http.StatusBadRequest, false)
	ErrInvalidSignature      = declare("InvalidSignatureException", http.StatusBadRequest, false)
	ErrUnrecognizedClient    = declare("UnrecognizedClientException", http.StatusBadRequest, false)
	ErrExpiredToken          = declare("ExpiredTokenException", http.StatusBadRequest, false)
	ErrThrottling            = declare("ThrottlingException", http.StatusBadRequest, true)
	ErrServiceUnavailable    = declare("ServiceUnavailable", http.StatusServiceUnavailable, true)
	ErrRequestEntityTooLarge = declare("RequestEntityTooLargeException", http.StatusRequestEntityTooLarge, false)
	// ErrRequestTimeout answers a request body not received in time; the
	// AWS SDKs retry it by name.
	ErrRequestTimeout = declare("RequestTimeoutException", http.StatusRequestTimeout, true)
)

var registry = map[string]*ErrorType{}

func declare(name string, status int, retryable bool) *ErrorType {
	if _, dup := registry[name]; dup {
		panic("kinesisapi: error type declared twice: " + name)
	}
	t := &ErrorType{Name: name, Status: status, Retryable: retryable}
	registry[name] = t
	return t
}

// LookupErrorType returns the registered error type with the given wire name.
func LookupErrorType(name string) (*ErrorType, bool) {
	t, ok := registry[name]
	return t, ok
}

// apiError is an error ready to be written to the wire.
type apiError struct {
	typ     *ErrorType
	message string
	// noMessage omits the message member altogether, as Kinesis does for
	// some protocol-level errors (unknown operation, unparseable body).
	noMessage bool
	// upperMessage names the member "Message" instead of "message", as the
	// Coral framework does for SerializationException.
	upperMessage bool
	// status, when not 0, replaces the type's HTTP status.
	status int
}

func (e *apiError) Error() string { return e.typ.Name + ": " + e.message }

func newError(t *ErrorType, msg string) *apiError { return &apiError{typ: t, message: msg} }

// bareError is an error type without a message member.
func bareError(t *ErrorType) *apiError { return &apiError{typ: t, noMessage: true} }

// serializationError is a SerializationException carrying Coral's message.
func serializationError(msg string) *apiError {
	return &apiError{typ: ErrSerialization, message: msg, upperMessage: true}
}

// fromStreams maps a service error to its wire form. ok is false when the
// code is not in the registry (a bug in the service, treated as internal).
func fromStreams(e *streams.Error) (*apiError, bool) {
	t, ok := registry[string(e.Code)]
	if !ok {
		return nil, false
	}
	return &apiError{typ: t, message: e.Message}, true
}
