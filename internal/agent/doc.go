// Package agent tails log files into Kinesis streams, configured like the
// Kinesis Agent (its agent.json): `runnel agent` is this package behind a
// command line.
//
// Each flow names a file pattern (a directory and a file-name glob) and a
// stream. A flow's goroutine lists the directory, holds every matching file
// open, and reads them oldest first, each to its end, so that the rest of a
// rotated file goes out before the first lines of its successor. Lines (or
// multi-line records, with multiLineStartPattern) pass through the flow's
// processors and go to the stream's Sink, which batches them into
// PutRecords calls and reports each record's acknowledgement.
//
// # Identity and progress
//
// A file is known by its device and inode, and its content by a
// fingerprint: the MD5 of its first 1,024 bytes (fewer while it is
// shorter). Rotation by rename keeps the inode, so reading goes on under
// the new name. Rotation by copy and truncate is seen as the original's
// first bytes changing or its size falling below the read position: what
// was left unread becomes detached, and the copy (a new inode whose first
// bytes have the detached content's fingerprint) continues it from the
// same offset. A file deleted while read is read to its end through the
// descriptor the agent holds.
//
// Progress is the offset up to which every record of a file was
// acknowledged. It is saved in the checkpoint file every checkpoint
// interval while it moves, and at a clean stop, by writing a temporary
// file, syncing it, renaming it over the old one and syncing the directory.
// After a crash the agent resumes each file at its saved offset: nothing
// acknowledged is lost, and what is sent again is at most what was read
// but not yet saved as acknowledged.
//
// # The checkpoint file
//
// JSON, replaced whole on each save:
//
//	{
//	 "version": 1,
//	 "flows": ["kinesis:<stream>:<filePattern>", ...],   flows that ran
//	 "files": [{
//	   "flow": "kinesis:<stream>:<filePattern>",
//	   "path": "/var/log/app.log",                        last name seen
//	   "dev": 64768, "ino": 1234,                          identity
//	   "fingerprintBytes": 1024,                           bytes hashed
//	   "fingerprint": "<32 hex digits: MD5>",
//	   "offset": 52480,                                    acknowledged up to
//	   "detached": true                                    the rest of a truncated file
//	 }, ...]
//	}
//
// A flow absent from "flows" has never run: its files start at its
// initialPosition. Files of a flow that ran but absent from "files"
// appeared since, and are read from their start.
package agent
