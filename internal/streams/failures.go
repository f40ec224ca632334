package streams

import (
	"log/slog"
	"sync"
	"sync/atomic"
)

// appendFailureEvery is the least time between two log lines about failed
// appends to one stream.
const appendFailureEvery = 10_000 // ms

// appendFailures reports records that PutRecord and PutRecords could not
// append (the client saw InternalFailure for them): at most one line per
// stream per appendFailureEvery, with the number of records that failed
// since the previous line and the latest cause. Failures inside the window
// are reported by the next line: the next failure after the window, or the
// next successful append once the window has passed.
type appendFailures struct {
	pending atomic.Bool // some stream has failures not yet reported

	mu      sync.Mutex
	streams map[string]*streamFailures
}

type streamFailures struct {
	lastLine int64 // Unix ms of the last line; 0 before the first
	records  int64 // failed records since the last line
	cause    error // the latest cause
}

// noteAppendFailure counts records of stream that failed to append with err.
func (s *Service) noteAppendFailure(stream string, records int, err error) {
	f := &s.appendFails
	now := s.nowMs()
	f.mu.Lock()
	if f.streams == nil {
		f.streams = make(map[string]*streamFailures)
	}
	sf := f.streams[stream]
	if sf == nil {
		sf = &streamFailures{}
		f.streams[stream] = sf
	}
	sf.records += int64(records)
	sf.cause = err
	if sf.lastLine != 0 && now-sf.lastLine < appendFailureEvery {
		f.pending.Store(true)
		f.mu.Unlock()
		return
	}
	n := sf.records
	sf.lastLine, sf.records = now, 0
	f.mu.Unlock()
	s.logAppendFailures(stream, n, err)
}

// flushAppendFailures reports the failures whose window has passed. Appends
// call it when pending is set, so that the last failures of an episode are
// reported once appends succeed again.
func (s *Service) flushAppendFailures() {
	f := &s.appendFails
	now := s.nowMs()
	type line struct {
		stream string
		n      int64
		cause  error
	}
	var lines []line
	f.mu.Lock()
	left := false
	for name, sf := range f.streams {
		if sf.records == 0 {
			continue
		}
		if now-sf.lastLine < appendFailureEvery {
			left = true
			continue
		}
		lines = append(lines, line{name, sf.records, sf.cause})
		sf.lastLine, sf.records = now, 0
	}
	f.pending.Store(left)
	f.mu.Unlock()
	for _, l := range lines {
		s.logAppendFailures(l.stream, l.n, l.cause)
	}
}

func (s *Service) logAppendFailures(stream string, n int64, err error) {
	s.logger().Error("streams: records failed to append; clients got InternalFailure for them",
		slog.String("stream", stream), slog.Int64("failed_records", n), slog.Any("cause", err))
}
