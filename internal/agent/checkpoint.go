package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// checkpointVersion is the version of the checkpoint file's format.
const checkpointVersion = 1

// checkpointFile is the checkpoint file's content (see doc.go).
type checkpointFile struct {
	Version int `json:"version"`
	// Flows are the flows that ran: a flow not listed starts its files at
	// its initialPosition.
	Flows []string     `json:"flows"`
	Files []checkpoint `json:"files"`
}

// checkpoint is the acknowledged progress of one file's content.
type checkpoint struct {
	Flow string `json:"flow"`
	Path string `json:"path"`
	Dev  uint64 `json:"dev"`
	Ino  uint64 `json:"ino"`
	// FingerprintBytes is how many of the file's first bytes Fingerprint
	// hashes (MD5, hex).
	FingerprintBytes int    `json:"fingerprintBytes"`
	Fingerprint      string `json:"fingerprint"`
	// Offset is the end of the last record acknowledged: reading resumes
	// there.
	Offset int64 `json:"offset"`
	// Detached marks content whose file was truncated or replaced while
	// part of it was unread (copy-truncate rotation): Dev and Ino now hold
	// other content, and only a file with the same fingerprint (the copy)
	// continues it.
	Detached bool `json:"detached,omitempty"`
}

// readCheckpoints loads the checkpoint file: the saved progress and the
// flows that ran. A missing file is the first start.
func readCheckpoints(path string) ([]checkpoint, []string, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read checkpoints: %w", err)
	}
	if bytes.HasPrefix(b, []byte("SQLite format 3")) {
		return nil, nil, fmt.Errorf("checkpoint file %s is an SQLite database (the Kinesis Agent's checkpoints?), which runnel agent does not read: set checkpointFile to another path", path)
	}
	var f checkpointFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("checkpoint file %s is damaged (%v): move it away to start over; files are then read from initialPosition", path, err)
	}
	if f.Version != checkpointVersion {
		return nil, nil, fmt.Errorf("checkpoint file %s has version %d; this runnel reads version %d", path, f.Version, checkpointVersion)
	}
	return f.Files, f.Flows, nil
}

// writeCheckpoints replaces the checkpoint file atomically: a temporary
// file in the same directory, written and synced, renamed over the old
// one, and the directory synced, so that a crash leaves the old or the new
// file whole.
func writeCheckpoints(path string, flows []string, files []checkpoint) error {
	b, err := json.MarshalIndent(checkpointFile{Version: checkpointVersion, Flows: flows, Files: files}, "", " ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write checkpoints: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoints: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoints: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write checkpoints: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write checkpoints: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write checkpoints: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write checkpoints: sync %s: %w", dir, err)
	}
	return nil
}

// lockCheckpoints takes an exclusive lock beside the checkpoint file, so
// that two agents never share one; the lock ends with the process.
func lockCheckpoints(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("checkpoint directory (set checkpointFile to a path the agent may write): %w", err)
	}
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock checkpoints (set checkpointFile to a path the agent may write): %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("checkpoint file %s is in use by another runnel agent: give each agent its own checkpointFile", path)
		}
		return nil, fmt.Errorf("lock checkpoints: %w", err)
	}
	return f, nil
}
