package auth

// Error is a refused authentication: the Kinesis error type the client is
// answered with, its message, and a short reason for the audit log (the
// message can be long: a wrong signature's names the canonical request).
type Error struct {
	// Code is the wire error type, one of the Code* constants.
	Code string
	// Message is the message Kinesis answers with.
	Message string
	// Reason is a short description for logs.
	Reason string
}

func (e *Error) Error() string { return "auth: " + e.Code + ": " + e.Reason }

// ErrorCode is the wire error type.
func (e *Error) ErrorCode() string { return e.Code }

// ErrorMessage is the message sent to the client.
func (e *Error) ErrorMessage() string { return e.Message }

// The error types an authentication can be refused with, as Kinesis names
// them.
const (
	CodeMissingToken        = "MissingAuthenticationTokenException"
	CodeIncompleteSignature = "IncompleteSignatureException"
	CodeInvalidSignature    = "InvalidSignatureException"
	CodeUnrecognizedClient  = "UnrecognizedClientException"
	CodeExpiredToken        = "ExpiredTokenException"
)

// Messages Kinesis answers with (docs/COMPATIBILITY.md cites where each
// was seen).
const (
	msgMissingToken   = "Missing Authentication Token"
	msgSignatureWrong = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgBadToken     = "The security token included in the request is invalid."
	msgExpiredToken = "The security token included in the request is expired"
)

func incomplete(msg, reason string) *Error {
	return &Error{Code: CodeIncompleteSignature, Message: msg, Reason: reason}
}

func invalid(msg, reason string) *Error {
	return &Error{Code: CodeInvalidSignature, Message: msg, Reason: reason}
}
