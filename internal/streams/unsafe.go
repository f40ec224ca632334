package streams

import "unsafe"

// unsafeString views b as a string without copying. b must never be written
// again. PutRecords, GetRecords and subscriptions use it for sequence numbers
// formatted into one buffer per call, and the reads for partition keys viewed
// in the keys the engine returns (which it never modifies).
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
