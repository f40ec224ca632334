// Package iam evaluates IAM-style access policies the way AWS does for
// Kinesis Data Streams: identity policies attached to a principal and the
// resource policies of streams and consumers (PutResourcePolicy).
//
// The package is pure: it parses policy documents (Parse), evaluates a
// request against them (Evaluate) and maps each Kinesis operation to the
// action and resource it is authorized on (ActionFor, the table in
// actions.go). Authorizer ties these together for the wire layer: given the
// authenticated principal, the operation and the names in its input, it
// loads the resource's policy through a small interface and answers nil or
// an AccessDeniedException worded as Kinesis words it.
//
// # Evaluation
//
// As in AWS's policy evaluation logic, for one request:
//
//  1. an applicable Deny statement in any policy refuses it (explicit deny);
//  2. otherwise, when the principal belongs to the account that owns the
//     resource, an Allow from an identity policy or from the resource
//     policy grants it; a resource-policy Allow that names only the
//     account (its id or its root ARN) delegates to the identity policies
//     and does not grant on its own;
//  3. otherwise (cross-account) both the resource policy and the caller's
//     identity policies must allow it;
//  4. anything else is an implicit deny.
//
// The root principal of the owning account (arn:aws:iam::<account>:root)
// needs no identity policy; explicit denies in the resource policy still
// apply to it.
//
// A statement applies when its Action (or NotAction), Resource (or
// NotResource), Principal (or NotPrincipal, resource policies only) and
// every Condition match. Actions match case-insensitively, resources
// case-sensitively; both take the wildcards * (any run of characters) and ?
// (one character).
package iam
