// Package kinesisapi is runnel's wire layer: an http.Handler that speaks the
// Amazon Kinesis Data Streams API (Kinesis_20131202) to the AWS CLI and SDKs
// and calls a Backend (the streams service) with typed inputs.
//
// # Requests
//
// Every operation is "POST /" with the operation named by the header
//
//	X-Amz-Target: Kinesis_20131202.<Operation>
//
// and the input in the body, in one of two encodings chosen by Content-Type:
//
//   - application/x-amz-json-1.1: a JSON object whose members are named as in
//     the service model ("StreamName", "Records", ...). Blobs are base64
//     strings; timestamps are numbers of epoch seconds with a millisecond
//     fraction (1459799926.480).
//   - application/x-amz-cbor-1.1: a CBOR map with the same member names. Blobs
//     are byte strings; timestamps are tag 1 around an integer of epoch
//     milliseconds (AWS's convention, not RFC 8949's seconds).
//
// A plain "application/json" request gets AWS's odd answer: HTTP 200 with
// {"Output":{"__type":"com.amazon.coral.service#…"},"Version":"1.0"}.
//
// # Processing order
//
// Before anything else the handler applies runnel's own access policy
// (access.go): the Host header must name this machine or an allowed name
// (403 AccessDeniedException otherwise), and CORS headers, preflights
// included, go only to listed origins. The body is then read within a
// deadline into buffers that grow as it arrives, under a memory budget
// shared by all requests (body.go): 408 RequestTimeoutException and 503
// ServiceUnavailable are runnel's answers when those run out.
//
// Then the handler checks, in this order, the way Kinesis does: method (POST),
// content type, the body (present, within the size limit, a map), the
// target (service prefix and a known operation), member types (a wrong type
// is a SerializationException naming the Java types Kinesis' Coral framework
// reports), the model's constraints (a ValidationException listing up to ten
// violations as "N validation errors detected: ..."), then asks
// Options.Authorize, when set, about the decoded input (authorize.go: an
// AccessDeniedException with its "Message" member when refused), and only
// then calls the Backend.
//
// # Responses
//
// A success is HTTP 200 with the output encoded like the request (an
// operation without output has an empty body). An error is HTTP 400 (500 for
// InternalFailure, 413 for a body over the limit, 403 for a refused Host,
// 408 and 503 as above) with
//
//	{"__type": "<ErrorType>", "message": "<text>"}
//
// in the request's encoding and the header X-Amzn-ErrorType. Every response
// carries x-amzn-RequestId (a UUID) and, except a CORS preflight's,
// x-amz-id-2 (72 random bytes in base64).
//
// Every error type is declared once, with its HTTP status and whether a
// client should retry it, in errors.go; errors from the Backend that are
// *streams.Error map through that registry, anything else is an internal
// fault, logged and answered with InternalFailure.
package kinesisapi
