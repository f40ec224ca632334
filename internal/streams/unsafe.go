package streams

import "unsafe"

// unsafeString views b as a string without copying. b must never be written
// again; PutRecords uses it for sequence numbers formatted into one buffer.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
