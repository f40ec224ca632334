package server

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMaxHeaderBytes(t *testing.T) {
	s := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), DefaultOptions())
	for _, tt := range []struct {
		name string
		size int
		want int
	}{
		{"session token sized", 4 << 10, 200},
		{"over the limit", 80 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", s.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Security-Token: " + strings.Repeat("a", tt.size) + "\r\nContent-Length: 0\r\n\r\n"
			if _, err := c.Write([]byte(req)); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestMaxConcurrentStreams(t *testing.T) {
	var (
		mu      sync.Mutex
		perConn = map[string]int{} // remote address -> streams in flight
		peak    int
		total   atomic.Int32
	)
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		perConn[r.RemoteAddr]++
		peak = max(peak, perConn[r.RemoteAddr])
		mu.Unlock()
		total.Add(1)
		<-release
	})
	opts := DefaultOptions()
	opts.MaxConcurrentStreams = 2
	s := start(t, h, opts)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	defer tr.CloseIdleConnections()
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			resp, err := (&http.Client{Transport: tr}).Get(s.Endpoint())
			if err == nil {
				resp.Body.Close()
			}
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for total.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if total.Load() != 5 || peak != 2 || len(perConn) < 3 {
		t.Errorf("%d requests served, at most %d at once on one of %d connections; want 5, 2, 3+", total.Load(), peak, len(perConn))
	}
}
