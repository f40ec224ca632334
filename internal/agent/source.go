package agent

import (
	"crypto/md5"
	"encoding/hex"
	"sync"
	"time"
)

// fpBytes is how many of a file's first bytes identify its content.
const fpBytes = 1024

// fingerprint is the MD5 of a file's first n bytes (n < fpBytes only while
// the file is shorter).
type fingerprint struct {
	n   int
	sum [md5.Size]byte
}

func fingerprintOf(head []byte) fingerprint {
	if len(head) > fpBytes {
		head = head[:fpBytes]
	}
	return fingerprint{n: len(head), sum: md5.Sum(head)}
}

// matches reports whether head (a file's first bytes) starts with the
// content fp was taken of.
func (fp fingerprint) matches(head []byte) bool {
	return len(head) >= fp.n && md5.Sum(head[:fp.n]) == fp.sum
}

func (fp fingerprint) String() string { return hex.EncodeToString(fp.sum[:]) }

func parseFingerprint(n int, s string) (fingerprint, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != md5.Size || n < 0 || n > fpBytes {
		return fingerprint{}, false
	}
	fp := fingerprint{n: n}
	copy(fp.sum[:], b)
	return fp, true
}

// fileKey is a file's identity on this machine.
type fileKey struct{ dev, ino uint64 }

// source is the content of one file as the agent first saw it, and the
// progress through it: how far it was read and how far the records read
// were acknowledged. When a file is truncated in place (copy-truncate
// rotation) its old content becomes a detached source, continued by the
// copy if one appears, and the file a new source.
type source struct {
	// Read state, owned by the flow's goroutine.
	readOff    int64 // the end of the last record handed to the sink
	headerLeft int   // header lines still to skip
	skipping   bool  // discarding the rest of a record cut at the size limit

	mu struct {
		sync.Mutex
		key        fileKey
		path       string
		fp         fingerprint
		detached   bool
		detachedAt time.Time
		size       int64 // the file's size when last looked at
		// pend holds the records handed to the sink and not yet
		// acknowledged in order; pend[0] has sequence number first.
		pend    []pendingRecord
		first   uint64
		ackOff  int64 // the end of the last record acknowledged with all before it
		failed  error // a record the sink gave up on: progress stops before it
		lines   uint64
		records uint64 // records acknowledged
	}
}

type pendingRecord struct {
	end  int64
	done bool
}

func newSource(key fileKey, path string, fp fingerprint, off int64) *source {
	s := &source{readOff: off}
	s.mu.key, s.mu.path, s.mu.fp, s.mu.ackOff, s.mu.size = key, path, fp, off, off
	return s
}

// put registers a record that ends at end and returns its sequence number
// for ack.
func (s *source) put(end int64, lines int) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.lines += uint64(lines)
	s.mu.pend = append(s.mu.pend, pendingRecord{end: end})
	return s.mu.first + uint64(len(s.mu.pend)) - 1
}

// skip moves past bytes that make no record (header lines, dropped
// records): acknowledged as soon as everything before them is.
func (s *source) skip(end int64, lines int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.lines += uint64(lines)
	if len(s.mu.pend) == 0 {
		if s.mu.failed == nil {
			s.mu.ackOff = end
		}
		return
	}
	s.mu.pend = append(s.mu.pend, pendingRecord{end: end, done: true})
}

// ack records the sink's answer for record seq.
func (s *source) ack(seq uint64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.mu.failed == nil {
			s.mu.failed = err
		}
		return
	}
	i := seq - s.mu.first
	if i >= uint64(len(s.mu.pend)) {
		return
	}
	s.mu.pend[i].done = true
	s.mu.records++
	if s.mu.failed != nil {
		return
	}
	n := 0
	for n < len(s.mu.pend) && s.mu.pend[n].done {
		s.mu.ackOff = s.mu.pend[n].end
		n++
	}
	if n > 0 {
		s.mu.pend = s.mu.pend[n:]
		s.mu.first += uint64(n)
	}
}
