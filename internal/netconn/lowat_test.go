//go:build linux

package netconn

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (client, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func lowat(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// countReader counts the reads that returned data.
type countReader struct {
	r io.Reader
	n int
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n++
	}
	return n, err
}

// send writes body in 16 KiB pieces, a little apart, as a client's
// buffered writer does, then writes after (the next request).
func send(c net.Conn, body, after []byte) {
	for len(body) > 0 {
		k := min(len(body), 16<<10)
		if _, err := c.Write(body[:k]); err != nil {
			return
		}
		body = body[k:]
		time.Sleep(200 * time.Microsecond)
	}
	c.Write(after)
}

// TestBodyReaderWakesOnce: a 1 MiB body written in 16 KiB pieces is read
// whole and in order in a few reads instead of one per piece or so; the
// option is back to 1 after done, so that the next request on the
// connection is read at once.
func TestBodyReaderWakesOnce(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	for _, withLowat := range []bool{false, true} {
		c, s := pair(t)
		next := []byte("GET / HTTP/1.1\r\n\r\n")
		go send(c, body, next)
		// net/http reads through a 4 KiB buffer first: reads of at least
		// its size go straight to the connection, smaller ones through it.
		br := bufio.NewReaderSize(s, 4096)
		cr := &countReader{r: io.LimitReader(br, int64(len(body)))}
		var r io.Reader = cr
		done := func() {}
		if withLowat {
			r, done = BodyReader(s, cr, int64(len(body)))
		}
		got := make([]byte, 0, len(body))
		buf := make([]byte, len(body))
		for len(got) < len(body) {
			s.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := r.Read(buf[:len(body)-len(got)])
			got = append(got, buf[:n]...)
			if err != nil {
				t.Fatalf("read after %d bytes: %v", len(got), err)
			}
		}
		done()
		if !bytes.Equal(got, body) {
			t.Fatal("body read back differs")
		}
		if v := lowat(t, s); v > 1 {
			t.Fatalf("SO_RCVLOWAT %d after done; want at most 1 (any data wakes)", v)
		}
		start := time.Now()
		rest := make([]byte, len(next))
		s.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(br, rest); err != nil || !bytes.Equal(rest, next) {
			t.Fatalf("next request: %q, %v", rest, err)
		}
		t.Logf("lowat %v: %d reads with data; next request read in %v", withLowat, cr.n, time.Since(start))
		if withLowat && cr.n > 8 {
			t.Errorf("%d reads for a 1 MiB body written in 64 pieces; want a few", cr.n)
		}
	}
}

// TestBodyReaderShortBody: a client that sends less than it declared and
// closes does not leave the reader waiting for bytes that cannot come.
func TestBodyReaderShortBody(t *testing.T) {
	c, s := pair(t)
	go func() {
		c.Write(make([]byte, 100<<10))
		time.Sleep(50 * time.Millisecond)
		c.Close()
	}()
	r, done := BodyReader(s, s, 1<<20)
	defer done()
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, r)
	if n != 100<<10 || err != nil {
		t.Fatalf("read %d bytes, %v; want the 102400 sent, then EOF", n, err)
	}
}

// TestBodyReaderOthers: short bodies and connections other than TCP are
// read as they are.
func TestBodyReaderOthers(t *testing.T) {
	_, s := pair(t)
	if r, _ := BodyReader(s, s, 1000); r != io.Reader(s) {
		t.Error("a short body was wrapped")
	}
	p1, p2 := net.Pipe()
	defer p1.Close()
	defer p2.Close()
	if r, _ := BodyReader(p1, p1, 1<<20); r != io.Reader(p1) {
		t.Error("a pipe was wrapped")
	}
}
