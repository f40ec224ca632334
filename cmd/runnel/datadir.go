package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/runnel/runnel/internal/engine/disk"
)

// dataDirHint is how every data-directory error ends: the way out that
// always works.
const dataDirHint = "or choose another directory with --data-dir or RUNNEL_DATA_DIR"

// dataDirError turns an error of disk.Open on dir into one that names its
// cause and what to do about it.
func dataDirError(dir string, err error) error {
	switch {
	case errors.Is(err, disk.ErrLocked):
		lockFile := filepath.Join(dir, "meta.db")
		if pid, cmd, ok := lockHolder(lockFile); ok {
			who := fmt.Sprintf("process %d", pid)
			if cmd != "" {
				who += " (" + cmd + ")"
			}
			if pid == os.Getpid() {
				who = "this process"
			}
			return fmt.Errorf("data directory %s is in use by %s: stop it (kill %d) %s", dir, who, pid, dataDirHint)
		}
		return fmt.Errorf("data directory %s is in use by another process (it holds the lock on %s; `fuser -v %s` names it): stop it %s", dir, lockFile, lockFile, dataDirHint)
	case errors.Is(err, fs.ErrPermission):
		path := dir
		var pe *fs.PathError
		if errors.As(err, &pe) {
			path = pe.Path
		}
		uid := os.Geteuid()
		if _, serr := os.Stat(path); errors.Is(serr, fs.ErrNotExist) {
			// Denied creating path: the fix is on the directory above.
			parent := existingParent(path)
			return fmt.Errorf("data directory %s: permission denied creating %s in %s (running as uid %d): make %s writable for uid %d (chown %d %s), %s", dir, path, parent, uid, parent, uid, uid, parent, dataDirHint)
		}
		return fmt.Errorf("data directory %s: permission denied on %s (running as uid %d): fix its ownership or permissions (chown -R %d %s), %s", dir, path, uid, uid, dir, dataDirHint)
	case errors.Is(err, syscall.ENOTDIR):
		if p := firstNonDir(dir); p != "" && p != filepath.Clean(dir) {
			return fmt.Errorf("data directory %s: %s is a file, not a directory: move it away %s", dir, p, dataDirHint)
		}
		return fmt.Errorf("data directory %s is a file, not a directory: move it away %s", dir, dataDirHint)
	}
	return fmt.Errorf("data directory %s: %w", dir, err)
}

// existingParent returns the nearest directory above path that exists.
func existingParent(path string) string {
	p := filepath.Clean(path)
	for {
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		if _, err := os.Stat(parent); err == nil {
			return parent
		}
		p = parent
	}
}

// firstNonDir returns the first path of dir, from the root down, that
// exists and is not a directory; "" if there is none.
func firstNonDir(dir string) string {
	p := filepath.Clean(dir)
	var chain []string
	for {
		chain = append(chain, p)
		parent := filepath.Dir(p)
		if parent == p {
			break
		}
		p = parent
	}
	for i := len(chain) - 1; i >= 0; i-- {
		fi, err := os.Stat(chain[i])
		if err != nil {
			return ""
		}
		if !fi.IsDir() {
			return chain[i]
		}
	}
	return ""
}

// lockHolder finds, on Linux, the process holding an flock on path from
// /proc/locks, and its command line. ok is false when it cannot tell (no
// /proc, another PID namespace, no lock found).
func lockHolder(path string) (pid int, cmd string, ok bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, "", false
	}
	st, isUnix := fi.Sys().(*syscall.Stat_t)
	if !isUnix {
		return 0, "", false
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0, "", false
	}
	defer f.Close()
	pid = lockPID(bufio.NewScanner(f), uint64(st.Dev), st.Ino)
	if pid <= 0 {
		return 0, "", false
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil {
		cmd = strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
	}
	return pid, cmd, true
}

// lockPID returns the PID holding an FLOCK on the file dev:ino in the
// /proc/locks lines of sc, 0 if none. A line reads
//
//	1: FLOCK  ADVISORY  WRITE 18723 fe:00:9994433 0 EOF
//
// where the sixth field is major:minor (hex) and inode of the locked file.
// Lines of waiting lockers ("1: -> FLOCK ...") are skipped. Some file
// systems (overlays) report another device than stat does, so a lock on the
// inode alone is accepted when it is the only one.
func lockPID(sc *bufio.Scanner, dev, ino uint64) int {
	var byIno []int
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		parts := strings.Split(f[5], ":")
		if len(parts) != 3 {
			continue
		}
		n, err := strconv.ParseUint(parts[2], 10, 64)
		if err != nil || n != ino {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid <= 0 {
			continue
		}
		major, err1 := strconv.ParseUint(parts[0], 16, 32)
		minor, err2 := strconv.ParseUint(parts[1], 16, 32)
		if err1 == nil && err2 == nil && unix.Mkdev(uint32(major), uint32(minor)) == dev {
			return pid
		}
		byIno = append(byIno, pid)
	}
	if len(byIno) == 1 {
		return byIno[0]
	}
	return 0
}
