package eventstream

// Header names and values with a fixed meaning to the SDKs' event-stream
// deserialisers (aws-sdk-go-v2 aws/protocol/eventstream/eventstreamapi).
const (
	// HeaderMessageType classifies a message: MessageTypeEvent,
	// MessageTypeException or MessageTypeError.
	HeaderMessageType = ":message-type"
	// HeaderEventType names the event-stream member an event carries.
	HeaderEventType = ":event-type"
	// HeaderExceptionType names the modelled error an exception carries.
	HeaderExceptionType = ":exception-type"
	// HeaderContentType is the media type of the payload.
	HeaderContentType = ":content-type"
	// HeaderErrorCode is the code of an unmodelled error.
	HeaderErrorCode = ":error-code"
	// HeaderErrorMessage is the message of an unmodelled error.
	HeaderErrorMessage = ":error-message"

	// MessageTypeEvent marks a message carrying an event.
	MessageTypeEvent = "event"
	// MessageTypeException marks a message carrying a modelled error.
	MessageTypeException = "exception"
	// MessageTypeError marks a message carrying an unmodelled error.
	MessageTypeError = "error"

	// EventTypeInitialResponse is the first event of a SubscribeToShard
	// response; the Go SDK waits for it before it returns the stream.
	EventTypeInitialResponse = "initial-response"
	// EventTypeSubscribeToShardEvent carries records to a consumer.
	EventTypeSubscribeToShardEvent = "SubscribeToShardEvent"

	// ContentTypeJSON is the payload type the awsJson protocols use for
	// events and exceptions.
	ContentTypeJSON = "application/json"
)

// EventMessage returns an event message: :message-type "event", :event-type
// eventType and :content-type contentType, with payload. The message shares
// payload; it does not copy it.
func EventMessage(eventType, contentType string, payload []byte) Message {
	return Message{
		Headers: []Header{
			{Name: HeaderMessageType, Value: String(MessageTypeEvent)},
			{Name: HeaderEventType, Value: String(eventType)},
			{Name: HeaderContentType, Value: String(contentType)},
		},
		Payload: payload,
	}
}

// ExceptionMessage returns an exception message: :message-type "exception",
// :exception-type exceptionType (e.g. "ResourceInUseException") and
// :content-type contentType, with payload (for JSON, an object with a
// "message" member). The message shares payload; it does not copy it.
func ExceptionMessage(exceptionType, contentType string, payload []byte) Message {
	return Message{
		Headers: []Header{
			{Name: HeaderMessageType, Value: String(MessageTypeException)},
			{Name: HeaderExceptionType, Value: String(exceptionType)},
			{Name: HeaderContentType, Value: String(contentType)},
		},
		Payload: payload,
	}
}

// ErrorMessage returns an error message: :message-type "error",
// :error-code code and :error-message message, with no payload. Clients
// surface it as a generic API error, so prefer ExceptionMessage for errors
// the service model names.
func ErrorMessage(code, message string) Message {
	return Message{
		Headers: []Header{
			{Name: HeaderMessageType, Value: String(MessageTypeError)},
			{Name: HeaderErrorCode, Value: String(code)},
			{Name: HeaderErrorMessage, Value: String(message)},
		},
	}
}
