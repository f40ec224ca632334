// Package auth authenticates API requests signed with AWS Signature
// Version 4, as Amazon Kinesis does, and keeps the identities they are
// signed as.
//
// A request is signed either in its Authorization header
//
//	AWS4-HMAC-SHA256 Credential=AKID/20261206/us-east-1/kinesis/aws4_request,
//	    SignedHeaders=content-type;host;x-amz-date;x-amz-target,
//	    Signature=<64 hex digits>
//
// or in its query string (a presigned URL: X-Amz-Algorithm,
// X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders,
// X-Amz-Signature and, for temporary credentials, X-Amz-Security-Token).
// The signature is the HMAC-SHA256, under a key derived from the secret
// and the credential scope, of the string to sign:
//
//	AWS4-HMAC-SHA256
//	<request time, 20261206T053000Z>
//	<scope: date/region/service/aws4_request>
//	<hex SHA-256 of the canonical request>
//
// and the canonical request is
//
//	<method>
//	<URI path, each byte outside A-Za-z0-9-._~ percent-encoded (again)>
//	<query: names and values percent-encoded, sorted, without X-Amz-Signature>
//	<each signed header "name:value\n", names lower case and sorted,
//	 values trimmed, runs of spaces made one, repeated headers joined by ",">
//	<the signed header names joined by ";">
//	<hex SHA-256 of the body, or the X-Amz-Content-Sha256 value>
//
// exactly as the AWS SDKs build it (aws-sdk-go-v2 aws/signer/v4). On the
// server side "host" is the request's Host (HTTP/2's :authority) and
// "content-length" the length net/http took out of the headers.
//
// Verification is split in two so that the body is read once: Verifier.Begin
// checks all that the headers decide (form, date, scope, key, token) and
// returns a Check; Check.Body wraps the body reader so that it is hashed
// as it is read; Check.Finish compares the signature once the body is in.
//
// The credentials file (docs/SECURITY.md) is JSON: users, each with an
// account, a principal ARN, access keys (optionally temporary, with a
// session token and an expiry) and identity policy documents kept as raw
// JSON for the policy evaluator. A Verifier's credentials can be swapped
// at any time (SIGHUP); requests in flight keep the set they began with.
package auth
