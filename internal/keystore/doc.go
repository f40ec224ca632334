// Package keystore is runnel's local stand-in for AWS KMS: the keys that
// protect records encrypted at rest.
//
// Two levels of keys. A master key (32 random bytes) comes from the key file
// or from the environment; it never leaves the process and is never written
// to the data directory. KMS keys are what StartStreamEncryption names: each
// has a key id (a UUID), an ARN (arn:aws:kms:<region>:<account>:key/<id>),
// aliases (alias/<name>, or arn:aws:kms:<region>:<account>:alias/<name>) and
// a state (Enabled, Disabled, PendingDeletion). The key alias/aws/kinesis,
// created with the file, is the default one, as in AWS.
//
// Data keys (32 random bytes each, made by GenerateDataKey) encrypt the
// records; the caller stores them only wrapped: encrypted with AES-256-GCM
// under the current master key, with the KMS key's ARN as additional data,
// so a wrapped key opens only under its KMS key and only while that key is
// Enabled. Rotating the master key adds a new one to the key file; wrapped
// data keys name the master key that wrapped them, so the old ones stay
// readable until Rewrap moves them to the new master key.
//
// # Key file
//
// JSON, mode 0600, written whole (write to a temporary file, fsync, rename):
//
//	{
//	  "masterKeys": [{"id": "<16 hex digits>", "key": "<base64 of 32 bytes>", "created": "<RFC 3339>"}],
//	  "keys": [{"keyId": "<uuid>", "aliases": ["alias/aws/kinesis"], "state": "Enabled", "created": "<RFC 3339>"}]
//	}
//
// The last master key is the current one: it wraps new data keys. A master
// key's id is the first 8 bytes of SHA-256("runnel master key\x00" || key),
// in hex; wrapped data keys carry it. The file is created on first use, with
// a fresh master key and the default KMS key, when its name is given and it
// does not exist. Master keys given in the environment (Options.MasterKeys)
// take precedence: the first is current, and the file then needs none.
//
// # Wrapped data key
//
// Text: "v1:<master key id>:<base64 of nonce (12) || ciphertext (32) || tag (16)>".
// The additional data is "runnel data key\x00" || the KMS key's ARN.
package keystore
