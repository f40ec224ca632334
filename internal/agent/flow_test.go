package agent

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSink is a Sink that keeps what it is given and acknowledges at once,
// unless its gate is closed: then Put blocks until it opens.
type memSink struct {
	mu      sync.Mutex
	keys    []string
	records []string
	gate    chan struct{} // nil: open
	blocked int           // Puts waiting at the gate
}

func (s *memSink) Put(ctx context.Context, key string, data []byte, done func(error)) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.mu.Lock()
		s.blocked++
		s.mu.Unlock()
		select {
		case <-gate:
		case <-ctx.Done():
			done(ctx.Err())
			return
		}
	}
	s.mu.Lock()
	s.keys = append(s.keys, key)
	s.records = append(s.records, string(data))
	s.mu.Unlock()
	done(nil)
}

func (s *memSink) Flush(ctx context.Context) error { return nil }
func (s *memSink) Close(ctx context.Context) error { return nil }

func (s *memSink) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.records)
}

// runAgent starts an agent on the configuration (with DIR replaced by
// dir) and returns a function that stops it and waits for its end.
func runAgent(t *testing.T, conf, dir string, sink Sink) (stop func()) {
	t.Helper()
	cfg, err := ParseConfig("agent.json", []byte(strings.ReplaceAll(conf, "DIR", dir)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Options{Config: cfg, NewSink: func(*Flow) (Sink, error) { return sink, nil }, CheckpointInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitRecords waits until the sink holds want, or fails with what it has.
func waitRecords(t *testing.T, s *memSink, want []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.got()
		if slices.Equal(got, want) {
			return
		}
		if len(got) > len(want) || time.Now().After(deadline) {
			t.Fatalf("records:\n got %q\nwant %q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitFor waits for cond, with a generous deadline.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settle checks that nothing more arrives for a while.
func settle(t *testing.T, s *memSink, want []string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	if got := s.got(); !slices.Equal(got, want) {
		t.Fatalf("records after settling:\n got %q\nwant %q", got, want)
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func lines(prefix string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s %d\n", prefix, i))
	}
	return out
}

const startConf = `{"checkpointFile": "DIR/ck", "flows": [{"filePattern": "DIR/app.log*", "kinesisStream": "s", "initialPosition": "START_OF_FILE"}]}`

func TestTailRotateByRename(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, strings.Join(lines("a", 0, 3), ""))
	sink := &memSink{}
	runAgent(t, startConf, dir, sink)
	want := lines("a", 0, 3)
	waitRecords(t, sink, want)
	appendFile(t, log, strings.Join(lines("a", 3, 5), ""))
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log+".1", "a 5\n") // the writer had the file open
	appendFile(t, log, strings.Join(lines("a", 6, 9), ""))
	want = lines("a", 0, 9)
	waitRecords(t, sink, want)
	settle(t, sink, want)
}

func TestTailCopyTruncate(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, strings.Join(lines("a", 0, 3), ""))
	sink := &memSink{}
	runAgent(t, startConf, dir, sink)
	waitRecords(t, sink, lines("a", 0, 3))
	// Hold the sink so that the copy-truncate happens with lines unread.
	sink.mu.Lock()
	sink.gate = make(chan struct{})
	sink.mu.Unlock()
	appendFile(t, log, strings.Join(lines("a", 3, 6), ""))
	time.Sleep(200 * time.Millisecond)
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log+".1", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, strings.Join(lines("b", 0, 2), ""))
	sink.mu.Lock()
	close(sink.gate)
	sink.gate = nil
	sink.mu.Unlock()
	want := append(lines("a", 0, 6), lines("b", 0, 2)...)
	waitRecords(t, sink, want)
	settle(t, sink, want)
}

func TestTailPartialLine(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "one\ntw")
	sink := &memSink{}
	runAgent(t, startConf, dir, sink)
	waitRecords(t, sink, []string{"one\n"})
	settle(t, sink, []string{"one\n"})
	appendFile(t, log, "o\nthree")
	waitRecords(t, sink, []string{"one\n", "two\n"})
	// A rotated file's last line is sent without its newline once the
	// file stays unchanged.
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, "four\n")
	want := []string{"one\n", "two\n", "three", "four\n"}
	waitRecords(t, sink, want)
}

func TestTailDeletedWhileRead(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	sink := &memSink{gate: make(chan struct{})}
	want := lines("x", 0, 2000)
	appendFile(t, log, strings.Join(want, ""))
	runAgent(t, startConf, dir, sink)
	// The agent has the file open once it blocks on the sink.
	waitFor(t, func() bool { sink.mu.Lock(); defer sink.mu.Unlock(); return sink.blocked > 0 })
	if err := os.Remove(log); err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	close(sink.gate)
	sink.gate = nil
	sink.mu.Unlock()
	waitRecords(t, sink, want)
}

func TestTailEndOfFileAndNewFiles(t *testing.T) {
	dir := t.TempDir()
	appendFile(t, filepath.Join(dir, "a.log"), "old\nbeing wri")
	appendFile(t, filepath.Join(dir, "a.log.gz"), "compressed\n")
	appendFile(t, filepath.Join(dir, "other.txt"), "not matched\n")
	sink := &memSink{}
	runAgent(t, `{"checkpointFile": "DIR/ck", "flows": [{"filePattern": "DIR/*.log*", "kinesisStream": "s"}]}`, dir, sink)
	// Once the file is in the checkpoints, the agent has placed it at its end.
	waitFor(t, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "ck"))
		return strings.Contains(string(b), "a.log\"")
	})
	// The line being written at the start is sent whole.
	appendFile(t, filepath.Join(dir, "a.log"), "tten\nnew\n")
	waitRecords(t, sink, []string{"being written\n", "new\n"})
	appendFile(t, filepath.Join(dir, "b.log"), "later\n") // appeared after the start: read from its start
	want := []string{"being written\n", "new\n", "later\n"}
	waitRecords(t, sink, want)
	settle(t, sink, want)
}

func TestTailMultiLineAndHeader(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "time level message\n2026-12-06 INFO start\n2026-12-06 ERROR boom\n  at a()\n  at b()\n2026-12-06 INFO ")
	sink := &memSink{}
	runAgent(t, `{"checkpointFile": "DIR/ck", "flows": [{"filePattern": "DIR/app.log", "kinesisStream": "s", "initialPosition": "START_OF_FILE",
		"skipHeaderLines": 1, "multiLineStartPattern": "\\d{4}-\\d{2}-\\d{2} ", "dataProcessingOptions": [{"optionName": "SINGLELINE"}]}]}`, dir, sink)
	// The error's end is known only once the next record's first line is
	// complete.
	want := []string{"2026-12-06 INFO start\n"}
	waitRecords(t, sink, want)
	settle(t, sink, want)
	appendFile(t, log, "done\n  more\n")
	// The last record has no successor: it goes once the file is quiet.
	want = append(want, "2026-12-06 ERROR boomat a()at b()\n", "2026-12-06 INFO donemore\n")
	waitRecords(t, sink, want)
}

func TestTailTruncatesLongRecords(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	long := strings.Repeat("y", 3*MaxRecordBytes)
	appendFile(t, log, "short\n"+long+"\nafter\n")
	sink := &memSink{}
	runAgent(t, `{"checkpointFile": "DIR/ck", "flows": [{"filePattern": "DIR/app.log", "kinesisStream": "s", "initialPosition": "START_OF_FILE",
		"partitionKeyOption": "DETERMINISTIC", "truncatedRecordTerminator": "<cut>\n"}]}`, dir, sink)
	deadline := time.Now().Add(20 * time.Second)
	for len(sink.got()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	got := sink.got()
	if len(got) != 3 || got[0] != "short\n" || got[2] != "after\n" {
		t.Fatalf("got %d records: %.40q", len(got), got)
	}
	cut := got[1]
	if len(cut)+32 != MaxRecordBytes || !strings.HasSuffix(cut, "y<cut>\n") {
		t.Errorf("long record: %d bytes ending %q, want %d ending y<cut>\\n", len(cut), cut[len(cut)-10:], MaxRecordBytes-32)
	}
	sum := md5.Sum([]byte("short\n"))
	if sink.keys[0] != hex.EncodeToString(sum[:]) {
		t.Errorf("DETERMINISTIC key %q, want the MD5 of the data", sink.keys[0])
	}
}

// TestTailRestart stops the agent, rotates the log both ways while it is
// down, and starts it again: it resumes each file from its checkpoint.
func TestTailRestart(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, strings.Join(lines("a", 0, 3), ""))
	sink := &memSink{}
	stop := runAgent(t, startConf, dir, sink)
	waitRecords(t, sink, lines("a", 0, 3))
	stop()
	// Down: more lines, a rename rotation, more lines, a copy-truncate.
	appendFile(t, log, strings.Join(lines("a", 3, 5), ""))
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, strings.Join(lines("a", 5, 8), ""))
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log+".2", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, strings.Join(lines("a", 8, 10), ""))
	// The files' modification times, as a writer taking its time would
	// leave them: within one clock tick nothing tells a copy from the
	// truncated original's new content.
	base := time.Now().Add(-time.Minute)
	for i, p := range []string{log + ".1", log + ".2", log} {
		if err := os.Chtimes(p, base, base.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	sink2 := &memSink{}
	runAgent(t, startConf, dir, sink2)
	want := lines("a", 3, 10)
	// The renamed file's rest, the copy's rest, then the truncated file's
	// new lines.
	waitRecords(t, sink2, want)
	settle(t, sink2, want)
}

// TestCheckpointFile checks what is saved: acknowledged progress only.
func TestCheckpointFile(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "one\ntwo\n")
	sink := &memSink{}
	stop := runAgent(t, startConf, dir, sink)
	waitRecords(t, sink, []string{"one\n", "two\n"})
	sink.mu.Lock()
	sink.gate = make(chan struct{}) // never opens: "three" is read, never acknowledged
	sink.mu.Unlock()
	appendFile(t, log, "three\n")
	time.Sleep(300 * time.Millisecond)
	stop()
	files, flows, err := readCheckpoints(filepath.Join(dir, "ck"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Offset != 8 || files[0].Path != log || len(flows) != 1 {
		t.Fatalf("checkpoints %+v flows %v", files, flows)
	}
	fi, _ := os.Stat(log)
	if k := statKey(fi); files[0].Dev != k.dev || files[0].Ino != k.ino {
		t.Errorf("identity %d/%d, want %d/%d", files[0].Dev, files[0].Ino, k.dev, k.ino)
	}
	// A second agent on the same checkpoint file is refused while one runs.
	runAgent(t, startConf, dir, &memSink{})
	cfg, _ := ParseConfig("agent.json", []byte(strings.ReplaceAll(startConf, "DIR", dir)))
	if _, err := New(Options{Config: cfg, NewSink: func(*Flow) (Sink, error) { return &memSink{}, nil }}); err == nil || !strings.Contains(err.Error(), "in use by another runnel agent") {
		t.Fatalf("second agent: %v", err)
	}
}

// FuzzParse splits arbitrary file content into records: without
// processors the records put together are the content, each ends with its
// only newline (but a final partial line), and the acknowledged offset
// ends at the content's end; a multi-line pattern keeps the same bytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte("one\ntwo\n"), false, 0)
	f.Add([]byte("2026 a\n b\n2026 c\nd"), true, 1)
	f.Add([]byte("\n\n\x00\xff"), false, 3)
	f.Fuzz(func(t *testing.T, content []byte, multi bool, header int) {
		header %= 4
		conf := fmt.Sprintf(`{"flows": [{"filePattern": "/x/a.log", "kinesisStream": "s", "skipHeaderLines": %d}]}`, max(header, 0))
		if multi {
			conf = fmt.Sprintf(`{"flows": [{"filePattern": "/x/a.log", "kinesisStream": "s", "skipHeaderLines": %d, "multiLineStartPattern": "\\d"}]}`, max(header, 0))
		}
		cfg, err := ParseConfig("agent.json", []byte(conf))
		if err != nil {
			t.Fatal(err)
		}
		sink := &memSink{}
		r := newFlowRunner(cfg.Flows[0], sink, slogDiscard(), nil, true)
		src := newSource(fileKey{}, "/x/a.log", fingerprint{}, 0)
		src.headerLeft = cfg.Flows[0].SkipHeaderLines
		n := r.parse(context.Background(), src, content, true, true)
		if n != len(content) {
			t.Fatalf("consumed %d of %d bytes", n, len(content))
		}
		got := strings.Join(sink.got(), "")
		if !strings.HasSuffix(string(content), got) {
			t.Fatalf("records %q are not the end of %q", got, content)
		}
		if !multi {
			for i, rec := range sink.got() {
				if strings.Count(rec, "\n") > 1 || (i < len(sink.got())-1 && !strings.HasSuffix(rec, "\n")) {
					t.Fatalf("record %d %q is not one line", i, rec)
				}
			}
		}
		src.mu.Lock()
		ack := src.mu.ackOff
		src.mu.Unlock()
		if ack != int64(len(content)) {
			t.Fatalf("acknowledged to %d, want %d", ack, len(content))
		}
	})
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }
