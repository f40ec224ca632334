package disk

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// FS is the part of a filesystem the engine uses. The default is OSFS; tests
// substitute one that fails writes or syncs on demand.
type FS interface {
	// OpenFile opens a file like os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a directory tree.
	RemoveAll(name string) error
	// Rename renames a file atomically.
	Rename(oldName, newName string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(name string, perm fs.FileMode) error
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]fs.DirEntry, error)
	// SyncDir makes the directory's entries (creations, renames, removals)
	// durable.
	SyncDir(name string) error
}

// directAlign is the alignment, in file position, length and memory
// address, of writes that bypass the page cache: the largest logical block
// size of common devices, and the page size.
const directAlign = 4096

// errDirectUnsupported is returned by WriteDirect when the filesystem cannot
// bypass the page cache; the engine then writes through it.
var errDirectUnsupported = errors.New("disk: direct I/O not supported")

// directWriter is implemented by Files that can write around the page cache
// (O_DIRECT on Linux). Under SyncAlways the committer writes segments with
// it: a write that is followed by an fdatasync anyway gains nothing from the
// page cache, and copying it there, and writing it back from there, is most
// of what such a write costs. Positions, lengths and the memory written must
// be multiples of directAlign.
type directWriter interface {
	// WriteDirect writes b at off. With sync, it returns once b and the
	// metadata needed to read it back are durable, as after Sync: one
	// system call where a write and an fdatasync would be two.
	WriteDirect(b []byte, off int64, sync bool) error
	// ZeroDirect writes n zero bytes from off the same way.
	ZeroDirect(off, n int64) error
}

// File is an open file. The engine only uses positioned reads and writes, so
// one File can serve concurrent readers and one writer.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
	// Sync makes the file's data durable (fdatasync on Linux).
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Size returns the file's current size.
	Size() (int64, error)
}

// OSFS is the operating system's filesystem.
type OSFS struct{}

var _ FS = OSFS{}

// OpenFile implements FS.
func (OSFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &osFile{File: f}, nil
}

// Remove implements FS.
func (OSFS) Remove(name string) error { return os.Remove(name) }

// RemoveAll implements FS.
func (OSFS) RemoveAll(name string) error { return os.RemoveAll(name) }

// Rename implements FS.
func (OSFS) Rename(o, n string) error { return os.Rename(o, n) }

// MkdirAll implements FS.
func (OSFS) MkdirAll(name string, perm fs.FileMode) error { return os.MkdirAll(name, perm) }

// ReadDir implements FS.
func (OSFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(name) }

// SyncDir implements FS.
func (OSFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

type osFile struct {
	*os.File
	// direct is the same file opened with O_DIRECT, for WriteDirect; opened
	// on first use by the log's committer (the only writer).
	direct    *os.File
	directErr error
}

// Sync implements File with fdatasync: the data and the metadata needed to
// read it back (the size), not timestamps.
func (f *osFile) Sync() error {
	for {
		err := unix.Fdatasync(int(f.File.Fd()))
		if err != unix.EINTR {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}

// WriteDirect implements directWriter with a second descriptor of the file
// opened with O_DIRECT; with sync, by pwritev2 with RWF_DSYNC (or, where
// the kernel lacks it, a write and an fdatasync).
func (f *osFile) WriteDirect(b []byte, off int64, sync bool) error {
	d, err := f.directFile()
	if err != nil {
		return err
	}
	if sync && !noDSync.Load() {
		err = pwritevFull(d, [][]byte{b}, off, unix.RWF_DSYNC)
		if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.ENOSYS) {
			return directErr(err)
		}
		noDSync.Store(true) // a kernel older than 4.7
	}
	if _, err = d.WriteAt(b, off); err != nil || !sync {
		return directErr(err)
	}
	return f.Sync()
}

// noDSync is set once the kernel refused RWF_DSYNC.
var noDSync atomic.Bool

// pwritevFull writes iovs at off with pwritev2 (pwritev without flags),
// again after EINTR and short writes.
func pwritevFull(d *os.File, iovs [][]byte, off int64, flags int) error {
	fd := int(d.Fd())
	for len(iovs) > 0 {
		var n int
		var err error
		if flags == 0 {
			n, err = unix.Pwritev(fd, iovs, off)
		} else {
			n, err = unix.Pwritev2(fd, iovs, off, flags)
		}
		if err == unix.EINTR {
			continue
		}
		if err == nil && n == 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			return &os.PathError{Op: "pwritev", Path: d.Name(), Err: err}
		}
		off += int64(n)
		for n > 0 {
			k := min(n, len(iovs[0]))
			n -= k
			if iovs[0] = iovs[0][k:]; len(iovs[0]) == 0 {
				iovs = iovs[1:]
			}
		}
	}
	return nil
}

// directErr marks EINVAL from a direct write as errDirectUnsupported: the
// filesystem takes O_DIRECT but not these alignments.
func directErr(err error) error {
	if errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("%w: %w", errDirectUnsupported, err)
	}
	return err
}

func (f *osFile) directFile() (*os.File, error) {
	if f.direct == nil {
		if f.directErr != nil {
			return nil, f.directErr
		}
		d, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
		if err != nil {
			f.directErr = fmt.Errorf("%w: %w", errDirectUnsupported, err)
			return nil, f.directErr
		}
		f.direct = d
	}
	return f.direct, nil
}

// zeroIovBuf is the zeros ZeroDirect writes, one buffer named by many
// iovecs. Only the kernel reads it. It is allocated for the purpose (a
// pooled write buffer would hold old frames).
var zeroIovBuf = sync.OnceValue(func() []byte { return newAligned(zeroIov) })

const zeroIov = 1 << 20

// ZeroDirect implements directWriter: pwritev calls naming the same zeros
// many times.
func (f *osFile) ZeroDirect(off, n int64) error {
	if off%directAlign != 0 || n%directAlign != 0 {
		return fmt.Errorf("%w: zeros at %d, %d bytes", errDirectUnsupported, off, n)
	}
	d, err := f.directFile()
	if err != nil {
		return err
	}
	z := zeroIovBuf()
	var iovs [zeroChunk / zeroIov][]byte
	for n > 0 {
		k, m := 0, int64(0)
		for ; k < len(iovs) && m < n; k++ {
			iovs[k] = z[:min(int64(len(z)), n-m)]
			m += int64(len(iovs[k]))
		}
		if err := pwritevFull(d, iovs[:k], off, 0); err != nil {
			return err
		}
		off, n = off+m, n-m
	}
	return nil
}

// Close implements File.
func (f *osFile) Close() error {
	if f.direct != nil {
		f.direct.Close()
	}
	return f.File.Close()
}

// Size implements File.
func (f *osFile) Size() (int64, error) {
	st, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Modes of the files and directories the engine creates: the data is the
// producers', readable by the server's user only. The umask can only make
// them stricter. Files and directories that already exist keep their modes.
const (
	dirPerm  = 0o700
	filePerm = 0o600
)
