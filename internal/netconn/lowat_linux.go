package netconn

import (
	"io"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// bufferedMargin bounds the body bytes net/http may hold in its buffers
// beyond what a reader of the body has seen (its 4 KiB read buffer).
const bufferedMargin = 8 << 10

// BodyReader returns a reader of an HTTP/1.1 request body of length bytes
// that arrives on c, which wakes only once most of the rest of the body is
// in the socket: before each read it sets the socket's SO_RCVLOWAT to what
// is certainly still to come (the rest less net/http's buffer), so that the
// network poller does not wake the reader for every few kilobytes the
// client writes. done restores the option; it must be called before the
// connection reads anything else. For other connections, short bodies or
// errors it returns r unchanged.
func BodyReader(c net.Conn, r io.Reader, length int64) (io.Reader, func()) {
	tc, ok := c.(*net.TCPConn)
	if !ok || length < 4*bufferedMargin {
		return r, func() {}
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return r, func() {}
	}
	lr := &lowatReader{r: r, rc: rc, left: length, cur: 1}
	return lr, lr.done
}

type lowatReader struct {
	r    io.Reader
	rc   syscall.RawConn
	left int64 // body bytes not yet returned
	cur  int   // the option's value now
	bad  bool  // setting it failed: leave it
}

func (l *lowatReader) set(v int) {
	if v == l.cur || l.bad {
		return
	}
	var serr error
	err := l.rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, v)
	})
	if err != nil || serr != nil {
		l.bad = true
		return
	}
	l.cur = v
}

func (l *lowatReader) Read(p []byte) (int, error) {
	want := l.left - bufferedMargin
	if want >= bufferedMargin {
		l.set(int(min(want, 1<<30)))
	} else {
		l.set(1)
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

func (l *lowatReader) done() { l.set(1) }
