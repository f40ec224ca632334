package agent

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

const (
	// readChunk is the first read size; a record that does not fit grows
	// the read up to maxRawRecord, beyond which the record is cut.
	readChunk    = 256 << 10
	maxRawRecord = 2 * MaxRecordBytes
	// lingerMultiLine is how long the last record of a multiLineStartPattern
	// flow waits for more lines before it is sent: its end is only known
	// from the next record's first line.
	lingerMultiLine = time.Second
	// finalIdle is how long a file that was rotated away or deleted must
	// stay unchanged before a last line without newline is sent and the
	// file closed.
	finalIdle = 2 * time.Second
	// detachedTTL is how long the unread rest of a truncated file waits
	// for its copy to appear.
	detachedTTL = time.Minute
	// copyWait is how long a file whose first bytes are those of a file
	// still tailed waits to be told apart: a copy-truncate rotation
	// truncates the original right after the copy.
	copyWait = 5 * time.Second
	// rescanBusy is how often the directory is listed while data flows.
	rescanBusy = time.Second
)

// compressed names the extensions the Kinesis Agent never tails.
var compressed = []string{".gz", ".bz2", ".zip"}

// openFile is a file of the flow the agent holds open.
type openFile struct {
	key        fileKey
	path       string
	f          *os.File
	src        *source
	size       int64
	mtime      time.Time
	lastGrowth time.Time
	gone       bool // no longer listed under a matching name
	// prev is the detached rest of the content this file held before it
	// was truncated: the file's new lines wait (until prevWait) for a copy
	// to continue prev, so that they go after it.
	prev     *source
	prevWait time.Time
	seq      uint64 // the order files were found in
}

// flowRunner tails the files of one flow into its sink.
type flowRunner struct {
	flow  *Flow
	sink  Sink
	log   *slog.Logger
	dir   string
	glob  string
	saved []checkpoint // this flow's checkpoints from the last run, until the first scan
	first bool         // the flow never ran: initialPosition applies

	files     map[fileKey]*openFile
	deferred  map[fileKey]time.Time // new files that look like copies of tailed ones
	scanned   bool
	lastScan  time.Time
	warnedDir bool
	warned    map[string]bool // files that could not be opened, said once
	found     uint64          // files opened so far

	mu struct {
		sync.Mutex
		sources []*source // every source with progress to keep: open, closing or detached
	}
}

func newFlowRunner(f *Flow, sink Sink, log *slog.Logger, saved []checkpoint, first bool) *flowRunner {
	dir, glob := filepath.Split(f.FilePattern)
	return &flowRunner{flow: f, sink: sink, log: log.With("flow", f.ID()), dir: filepath.Clean(dir), glob: glob,
		saved: saved, first: first, files: map[fileKey]*openFile{}, deferred: map[fileKey]time.Time{}}
}

// run tails until ctx ends.
func (r *flowRunner) run(ctx context.Context) {
	for ctx.Err() == nil {
		now := time.Now()
		if !r.scanned || now.Sub(r.lastScan) >= rescanBusy {
			r.scan(now)
		}
		progress := false
		// Oldest first, each to its end: the rest of a rotated file goes
		// before the new file's first lines.
		files := make([]*openFile, 0, len(r.files))
		for _, of := range r.files {
			files = append(files, of)
		}
		slices.SortFunc(files, func(a, b *openFile) int {
			if c := a.mtime.Compare(b.mtime); c != 0 {
				return c
			}
			// Within one clock tick, the file found first (the one
			// rotated away) goes first.
			return cmp.Compare(a.seq, b.seq)
		})
		for i, of := range files {
			newest := i == len(files)-1
			if r.readFile(ctx, of, newest, now) {
				progress = true
			}
			if ctx.Err() != nil {
				return
			}
			if !newest && of.src.readOff < of.size && of.prev == nil {
				// Its last line (or record) is still unfinished: newer
				// files wait, to keep their lines after it.
				break
			}
		}
		r.retire(now)
		if !progress {
			t := time.NewTimer(r.flow.PollInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			r.scan(time.Now())
		}
	}
}

func statKey(fi os.FileInfo) fileKey {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileKey{}
	}
	return fileKey{dev: uint64(st.Dev), ino: st.Ino}
}

// head reads a file's first bytes, up to fpBytes.
func head(f *os.File, size int64) []byte {
	b := make([]byte, min(size, fpBytes))
	n, _ := f.ReadAt(b, 0)
	return b[:n]
}

// scan lists the directory: files seen for the first time are identified
// (resumed from a checkpoint, continuing a truncated file's rest, or new),
// tailed files are checked for truncation, and files no longer listed
// marked gone.
func (r *flowRunner) scan(now time.Time) {
	r.lastScan = now
	entries, err := os.ReadDir(r.dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if !r.warnedDir {
			r.warnedDir = true
			r.log.Warn("the flow's directory does not exist (yet); its files are tailed once it does", "dir", r.dir)
		}
	case err != nil:
		r.log.Warn("cannot list the flow's directory", "dir", r.dir, "error", err)
		return
	}
	type found struct {
		path string
		fi   os.FileInfo
		key  fileKey
	}
	var fresh []found
	seen := map[fileKey]bool{}
	for _, e := range entries {
		name := e.Name()
		if ok, _ := filepath.Match(r.glob, name); !ok || slices.Contains(compressed, filepath.Ext(name)) {
			continue
		}
		path := filepath.Join(r.dir, name)
		fi, err := os.Stat(path)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		key := statKey(fi)
		seen[key] = true
		if of, ok := r.files[key]; ok {
			if of.path != path {
				of.path = path
				of.src.mu.Lock()
				of.src.mu.path = path
				of.src.mu.Unlock()
			}
			of.gone = false
			continue
		}
		fresh = append(fresh, found{path, fi, key})
	}
	// Tailed files: gone, truncated or rewritten?
	for key, of := range r.files {
		if !seen[key] {
			of.gone = true
		}
		r.checkContent(of, now)
	}
	for key := range r.deferred {
		if !seen[key] {
			delete(r.deferred, key)
		}
	}
	// Saved checkpoints claim their own files first (same inode, same first
	// bytes), then copies claim what is left.
	first := !r.scanned
	r.scanned = true
	claimed := make([]bool, len(r.saved))
	var rest []found
	for _, fd := range fresh {
		f, err := os.Open(fd.path)
		if err != nil {
			r.warnOpen(fd.path, err)
			continue
		}
		fi, err := f.Stat()
		if err != nil || statKey(fi) != fd.key {
			f.Close()
			continue
		}
		h := head(f, fi.Size())
		done := false
		for i, c := range r.saved {
			fp, ok := parseFingerprint(c.FingerprintBytes, c.Fingerprint)
			if claimed[i] || c.Detached || !ok || c.Dev != fd.key.dev || c.Ino != fd.key.ino || !fp.matches(h) || fi.Size() < c.Offset {
				continue
			}
			claimed[i] = true
			src := newSource(fd.key, fd.path, fp, c.Offset)
			r.open(fd.key, fd.path, f, fi, src, now)
			r.log.Debug("resuming", "file", fd.path, "offset", c.Offset)
			done = true
			break
		}
		if !done {
			f.Close()
			rest = append(rest, fd)
		}
	}
	if first {
		// Progress not claimed becomes detached: a copy may still claim it.
		for i, c := range r.saved {
			if claimed[i] {
				continue
			}
			fp, ok := parseFingerprint(c.FingerprintBytes, c.Fingerprint)
			if !ok {
				continue
			}
			src := newSource(fileKey{c.Dev, c.Ino}, c.Path, fp, c.Offset)
			src.mu.detached, src.mu.detachedAt = true, now
			r.addSource(src)
		}
		r.saved = nil
	}
	// A truncated file's new content goes after the copy that continues
	// its old content (the truncation may have happened while the agent
	// was down, or its copy come only now).
	type continued struct {
		src  *source
		from fileKey
	}
	var copies []continued
	defer func() {
		for _, c := range copies {
			if of, ok := r.files[c.from]; ok && of.src != c.src {
				of.prev, of.prevWait = c.src, now
			}
		}
	}()
	for _, fd := range rest {
		f, err := os.Open(fd.path)
		if err != nil {
			r.warnOpen(fd.path, err)
			continue
		}
		fi, err := f.Stat()
		if err != nil || statKey(fi) != fd.key {
			f.Close()
			continue
		}
		h := head(f, fi.Size())
		if src := r.claimDetached(h, fi.Size()); src != nil {
			src.mu.Lock()
			copies = append(copies, continued{src, src.mu.key})
			src.mu.key, src.mu.path, src.mu.detached = fd.key, fd.path, false
			off := src.readOff
			src.mu.Unlock()
			r.open(fd.key, fd.path, f, fi, src, now)
			delete(r.deferred, fd.key)
			r.log.Info("continuing the rest of a truncated file in its copy", "file", fd.path, "offset", off)
			continue
		}
		if len(h) > 0 && r.copyOfTailed(h) {
			since, ok := r.deferred[fd.key]
			if !ok {
				r.deferred[fd.key] = now
			}
			if !ok || now.Sub(since) < copyWait {
				f.Close()
				continue
			}
		}
		delete(r.deferred, fd.key)
		off := int64(0)
		if first && r.first && r.flow.StartAtEnd {
			off = lastLineStart(f, fi.Size())
		}
		src := newSource(fd.key, fd.path, fingerprintOf(h), off)
		if off == 0 {
			src.headerLeft = r.flow.SkipHeaderLines
		}
		r.open(fd.key, fd.path, f, fi, src, now)
		r.log.Info("tailing", "file", fd.path, "offset", off)
	}
}

// lastLineStart is where END_OF_FILE starts a file: after its last
// newline, so that a line being written when the agent starts is sent
// whole, as the Kinesis Agent does.
func lastLineStart(f *os.File, size int64) int64 {
	n := min(size, readChunk)
	b := make([]byte, n)
	if m, _ := f.ReadAt(b, size-n); int64(m) == n {
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 || n == size {
			return size - n + int64(i) + 1
		}
	}
	return size
}

// warnOpen logs, once per path, a matching file the agent cannot open.
func (r *flowRunner) warnOpen(path string, err error) {
	if r.warned == nil {
		r.warned = map[string]bool{}
	}
	if !r.warned[path] && !errors.Is(err, os.ErrNotExist) {
		r.warned[path] = true
		r.log.Warn("cannot open a file of the flow; it is skipped until it can be", "file", path, "error", err)
	}
}

func (r *flowRunner) open(key fileKey, path string, f *os.File, fi os.FileInfo, src *source, now time.Time) {
	r.found++
	of := &openFile{key: key, path: path, f: f, src: src, size: fi.Size(), mtime: fi.ModTime(), lastGrowth: now, seq: r.found}
	src.mu.Lock()
	src.mu.size = fi.Size()
	src.mu.Unlock()
	r.files[key] = of
	r.addSource(src)
}

func (r *flowRunner) addSource(src *source) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.mu.sources, src) {
		r.mu.sources = append(r.mu.sources, src)
	}
}

// claimDetached finds the detached rest of a truncated file that a file
// with these first bytes and size continues.
func (r *flowRunner) claimDetached(h []byte, size int64) *source {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.mu.sources {
		s.mu.Lock()
		// The fingerprint must cover what was read (or its full 1,024
		// bytes): a short one (a header line) could match another file.
		ok := s.mu.detached && s.mu.fp.n > 0 && int64(s.mu.fp.n) >= min(s.readOff, fpBytes) &&
			s.mu.fp.matches(h) && size >= s.readOff
		s.mu.Unlock()
		if ok {
			return s
		}
	}
	return nil
}

// copyOfTailed reports whether a file with these first bytes could be a
// copy of a file still tailed, before the original's truncation.
func (r *flowRunner) copyOfTailed(h []byte) bool {
	for _, of := range r.files {
		fp := of.src.fingerprint()
		if fp.n > 0 && fp.matches(h) {
			return true
		}
	}
	return false
}

func (s *source) fingerprint() fingerprint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.fp
}

// checkContent notices a tailed file truncated or rewritten in place: its
// source is detached (the copy, if any, continues it) and the file starts
// over as new content. It also extends a short fingerprint as the file
// grows.
func (r *flowRunner) checkContent(of *openFile, now time.Time) {
	fi, err := of.f.Stat()
	if err != nil {
		return
	}
	size := fi.Size()
	fp := of.src.fingerprint()
	var h []byte
	if fp.n > 0 || size > 0 {
		h = head(of.f, size)
	}
	if size < of.src.readOff || !fp.matches(h) {
		old := of.src
		old.mu.Lock()
		old.mu.detached, old.mu.detachedAt = true, now
		old.mu.Unlock()
		src := newSource(of.key, of.path, fingerprintOf(h), 0)
		src.headerLeft = r.flow.SkipHeaderLines
		of.src = src
		of.size, of.mtime, of.lastGrowth = size, fi.ModTime(), now
		of.prev, of.prevWait = old, now.Add(copyWait)
		r.lastScan = time.Time{} // look for the copy at once
		r.addSource(src)
		r.log.Info("file truncated or rewritten: reading it from its start", "file", of.path, "was_read_to", old.readOff)
		return
	}
	if len(h) > fp.n {
		of.src.mu.Lock()
		of.src.mu.fp = fingerprintOf(h)
		of.src.mu.Unlock()
	}
}

// retire closes files that are gone and finished, and forgets sources
// whose progress no longer matters.
func (r *flowRunner) retire(now time.Time) {
	for key, of := range r.files {
		if of.gone && of.src.readOff >= of.size && now.Sub(of.lastGrowth) >= finalIdle {
			of.f.Close()
			delete(r.files, key)
			of.src.mu.Lock()
			of.src.mu.detached, of.src.mu.detachedAt = true, now.Add(-detachedTTL) // nothing can continue it
			of.src.mu.Unlock()
			r.log.Info("finished a file that was removed or rotated away", "file", of.path)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mu.sources = slices.DeleteFunc(r.mu.sources, func(s *source) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.mu.detached && now.Sub(s.mu.detachedAt) >= detachedTTL && (len(s.mu.pend) == 0 || s.mu.failed != nil)
	})
}

// readFile reads what a file has past the source's position and hands its
// records to the sink. It returns whether it read anything.
func (r *flowRunner) readFile(ctx context.Context, of *openFile, newest bool, now time.Time) bool {
	src := of.src
	fi, err := of.f.Stat()
	if err != nil {
		return false
	}
	if size := fi.Size(); size != of.size {
		if size < src.readOff {
			r.checkContent(of, now)
			src = of.src
		}
		of.size, of.mtime, of.lastGrowth = size, fi.ModTime(), now
		src.mu.Lock()
		src.mu.size = size
		src.mu.Unlock()
	}
	if of.prev != nil && r.waitForCopy(of, now) {
		return false
	}
	progress := false
	chunk := readChunk
	for ctx.Err() == nil && src.readOff < of.size {
		n := int(min(int64(chunk), of.size-src.readOff))
		buf := make([]byte, n)
		m, err := of.f.ReadAt(buf, src.readOff)
		if m < n && !errors.Is(err, io.EOF) && err != nil {
			r.log.Warn("read failed", "file", of.path, "error", err)
			return progress
		}
		buf = buf[:m]
		atEOF := src.readOff+int64(m) >= of.size
		idle := now.Sub(of.lastGrowth)
		final := (of.gone || !newest) && idle >= finalIdle
		consumed := r.parse(ctx, src, buf, atEOF && idle >= lingerMultiLine, atEOF && final)
		if consumed == 0 {
			if m < chunk {
				return progress // an incomplete record at the end: wait for the rest
			}
			if chunk < maxRawRecord {
				chunk = min(4*chunk, maxRawRecord)
				continue
			}
			// A record longer than any read: send its start, cut, and
			// skip the rest of it.
			r.emit(ctx, src, buf, src.readOff+int64(m), 1)
			src.skipping = true
			consumed = m
		}
		src.readOff += int64(consumed)
		progress = true
		chunk = readChunk
	}
	return progress
}

// waitForCopy reports whether a truncated file's new lines must still
// wait: for a copy to continue its old content (up to prevWait), then for
// that copy to be read to its end. Modification times alone cannot order
// the two: a copy and the truncation can fall in one clock tick.
func (r *flowRunner) waitForCopy(of *openFile, now time.Time) bool {
	of.prev.mu.Lock()
	detached := of.prev.mu.detached
	of.prev.mu.Unlock()
	if detached {
		if now.Before(of.prevWait) {
			return true
		}
		of.prev = nil
		return false
	}
	for _, c := range r.files {
		if c.src == of.prev && c.src.readOff < c.size {
			return true
		}
	}
	of.prev = nil
	return false
}

// parse splits buf, the file's bytes from src.readOff, into records and
// emits them. flushTail sends a last multi-line record that ends with a
// newline; final sends even a last line without one. It returns the bytes
// consumed: the end of the last record emitted or skipped.
func (r *flowRunner) parse(ctx context.Context, src *source, buf []byte, flushTail, final bool) int {
	base := src.readOff
	pos := 0
	multi := r.flow.MultiLineStart
	for pos < len(buf) && ctx.Err() == nil {
		if src.skipping || src.headerLeft > 0 {
			nl := bytes.IndexByte(buf[pos:], '\n')
			if nl < 0 {
				if src.skipping {
					src.skip(base+int64(len(buf)), 0)
					return len(buf)
				}
				if final {
					src.headerLeft--
					src.skip(base+int64(len(buf)), 1)
					return len(buf)
				}
				return pos
			}
			pos += nl + 1
			if src.skipping {
				src.skipping = false
				src.skip(base+int64(pos), 0)
			} else {
				src.headerLeft--
				src.skip(base+int64(pos), 1)
			}
			continue
		}
		if multi == nil {
			nl := bytes.IndexByte(buf[pos:], '\n')
			if nl < 0 {
				if final {
					r.emit(ctx, src, buf[pos:], base+int64(len(buf)), 1)
					return len(buf)
				}
				return pos
			}
			end := pos + nl + 1
			r.emit(ctx, src, buf[pos:end:end], base+int64(end), 1)
			pos = end
			continue
		}
		// A multi-line record: its first line, then lines up to the next
		// line that starts a record.
		nl := bytes.IndexByte(buf[pos:], '\n')
		if nl < 0 {
			if final {
				r.emit(ctx, src, buf[pos:], base+int64(len(buf)), 1)
				return len(buf)
			}
			return pos
		}
		end := -1
		lines := 1
		ls := pos + nl + 1
		for ls < len(buf) {
			nl := bytes.IndexByte(buf[ls:], '\n')
			if nl < 0 {
				break
			}
			if multi.Match(buf[ls : ls+nl]) {
				end = ls
				break
			}
			lines++
			ls += nl + 1
		}
		if end < 0 {
			switch {
			case final:
				end = len(buf)
				if ls < len(buf) {
					lines++
				}
			case flushTail && ls == len(buf):
				end = ls
			default:
				return pos
			}
		}
		r.emit(ctx, src, buf[pos:end:end], base+int64(end), lines)
		pos = end
	}
	return pos
}

// emit processes one record read from src that ends at offset end and
// puts it into the sink.
func (r *flowRunner) emit(ctx context.Context, src *source, data []byte, end int64, lines int) {
	for _, p := range r.flow.Processors {
		var ok bool
		if data, ok = p.Process(data); !ok {
			src.skip(end, lines)
			return
		}
	}
	var key string
	if r.flow.PartitionKey == "DETERMINISTIC" {
		sum := md5.Sum(data)
		key = hex.EncodeToString(sum[:])
	} else {
		key = strconv.FormatFloat(rand.Float64()*1e6, 'f', -1, 64)
	}
	if len(data)+len(key) > MaxRecordBytes {
		cut := MaxRecordBytes - len(key) - len(r.flow.Terminator)
		data = append(data[:cut:cut], r.flow.Terminator...)
		r.log.Warn("record cut to the record size limit", "file", src.path(), "limit", MaxRecordBytes)
	}
	seq := src.put(end, lines)
	r.sink.Put(ctx, key, data, func(err error) { src.ack(seq, err) })
}

func (s *source) path() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.path
}

// checkpoints returns the flow's progress to save.
func (r *flowRunner) checkpoints() []checkpoint {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]checkpoint, 0, len(r.mu.sources))
	for _, s := range r.mu.sources {
		s.mu.Lock()
		out = append(out, checkpoint{Flow: r.flow.ID(), Path: s.mu.path, Dev: s.mu.key.dev, Ino: s.mu.key.ino,
			FingerprintBytes: s.mu.fp.n, Fingerprint: s.mu.fp.String(), Offset: s.mu.ackOff, Detached: s.mu.detached})
		s.mu.Unlock()
	}
	return out
}

// close closes the flow's files.
func (r *flowRunner) close() {
	for _, of := range r.files {
		of.f.Close()
	}
}
