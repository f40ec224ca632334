package disk

import (
	"path/filepath"
	"slices"
	"strings"
)

// Stats is a snapshot of the engine's use of the disk, for metrics.
type Stats struct {
	// OpenFiles is the number of segment and index files held open.
	OpenFiles int
	// TailCacheBytes is what the tail cache holds now, in frame buffers.
	TailCacheBytes int64
	// ReadsFromCache counts, since Open, the reads whose records (or the
	// rest of them) came from the tail cache; ReadsFromSegments the
	// segments that reads read (one a segment a read visits).
	ReadsFromCache, ReadsFromSegments uint64
	// Logs lists every log, sorted by name.
	Logs []LogStats
}

// LogStats describes one log's files.
type LogStats struct {
	Name string
	// Segments is the number of segment files.
	Segments int
	// Bytes is the size of the log's segment and index files.
	Bytes int64
}

// Stats returns the engine's open files, its tail cache's size and reads,
// and, for every log, its segment count and the size of its files, read
// from its directory (one listing per log: cheap enough for a scrape every
// few seconds, not for a hot path). A log deleted meanwhile is left out.
func (e *Engine) Stats() Stats {
	var st Stats
	if !e.enter() {
		return st
	}
	defer e.leave()
	e.mu.Lock()
	names := make([]string, 0, len(e.mu.logs))
	logs := make([]*log, 0, len(e.mu.logs))
	for n, l := range e.mu.logs {
		names = append(names, n)
		logs = append(logs, l)
	}
	e.mu.Unlock()
	slices.Sort(names)
	st.OpenFiles = e.files.count()
	for _, l := range logs {
		l.mu.RLock()
		st.TailCacheBytes += l.tail.bytes
		l.mu.RUnlock()
	}
	st.ReadsFromCache, st.ReadsFromSegments = e.tailReads.hits.Load(), e.tailReads.misses.Load()
	for _, n := range names {
		ents, err := e.fs.ReadDir(filepath.Join(e.logsDir(), n))
		if err != nil {
			continue
		}
		ls := LogStats{Name: n}
		for _, ent := range ents {
			name := ent.Name()
			isSeg := strings.HasSuffix(name, segmentExt)
			if !isSeg && !strings.HasSuffix(name, indexExt) {
				continue
			}
			if isSeg {
				ls.Segments++
			}
			if info, err := ent.Info(); err == nil {
				ls.Bytes += info.Size()
			}
		}
		st.Logs = append(st.Logs, ls)
	}
	return st
}
