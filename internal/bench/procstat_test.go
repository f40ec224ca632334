package bench

import (
	"errors"
	"math"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		err  bool
	}{
		{
			name: "plain",
			in:   "1234 (runnel) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 75 0 0 20 0 12 0 100 2000000 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
			want: 3250 * time.Millisecond,
		},
		{
			name: "a name with spaces and parentheses",
			in:   "77 (node (main) x) R 1 77 77 0 -1 0 0 0 0 0 12345 655 0 0 20 0 11 0 1 1 1\n",
			want: 130 * time.Second,
		},
		{name: "no name", in: "77 node R 1 2 3", err: true},
		{name: "truncated", in: "77 (x) R 1 77 77 0 -1 0 0 0 0 0 12", err: true},
		{name: "not a number", in: "77 (x) R 1 77 77 0 -1 0 0 0 0 0 12 x 0 0", err: true},
		{name: "empty", in: "", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tt.in))
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("parseProcStat = %v, %v; want %v, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

func TestParseProcStatus(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		rss, hwm int64
		err      bool
	}{
		{
			name: "both",
			in:   "Name:\trunnel\nVmPeak:\t 2000000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t12\n",
			rss:  100 << 20, hwm: 200 << 20,
		},
		{name: "kernel thread", in: "Name:\tkthreadd\nThreads:\t1\n", err: true},
		{name: "bad unit", in: "VmHWM:\t1 MB\nVmRSS:\t1 kB\n", err: true},
		{name: "bad number", in: "VmHWM:\tx kB\nVmRSS:\t1 kB\n", err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rss, hwm, err := parseProcStatus([]byte(tt.in))
			if (err != nil) != tt.err || rss != tt.rss || hwm != tt.hwm {
				t.Errorf("parseProcStatus = %d, %d, %v; want %d, %d, error %v", rss, hwm, err, tt.rss, tt.hwm, tt.err)
			}
		})
	}
}

func TestParseListeners(t *testing.T) {
	// Port 4567 is 11D7; 0A is LISTEN, 01 ESTABLISHED.
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:11D7 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5551 1 0000000000000000 100 0 0 10 0
   1: 0100007F:11D7 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 5552 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:11D8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5553 1 0000000000000000 100 0 0 10 0
   3: 00000000000000000000000000000000:11D7 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 5554 1 0000000000000000 100 0 0 10 0
   4: 0100007F:11D7 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 0 1
   5: garbage
`
	got := parseListeners([]byte(tcp), 4567)
	if len(got) != 2 || !got[5551] || !got[5554] {
		t.Errorf("listeners on 4567 = %v, want 5551 and 5554", got)
	}
	if got := parseListeners([]byte(tcp), 80); len(got) != 0 {
		t.Errorf("listeners on 80 = %v, want none", got)
	}
}

func TestPIDListeningOn(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "tcp6" {
				addr = "[::1]:0"
			}
			l, err := net.Listen(network, addr)
			if err != nil {
				t.Skipf("cannot listen on %s: %v", network, err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			pid, err := pidListeningOn(port)
			if err != nil || pid != os.Getpid() {
				t.Errorf("pidListeningOn(%d) = %d, %v; want this process, %d", port, pid, err, os.Getpid())
			}
			l.Close()
			// Another process may take the port at once; this one must
			// not be found.
			if pid, err := pidListeningOn(port); (err == nil && pid == os.Getpid()) || (err != nil && !errors.Is(err, ErrNoServerProcess)) {
				t.Errorf("after closing, pidListeningOn(%d) = %d, %v; want ErrNoServerProcess", port, pid, err)
			}
		})
	}
}

func TestLocalEndpointPort(t *testing.T) {
	tests := []struct {
		endpoint string
		port     int
		ok       bool
	}{
		{"http://127.0.0.1:4567", 4567, true},
		{"http://localhost:45670/", 45670, true},
		{"http://[::1]:8080", 8080, true},
		{"http://127.0.0.2", 80, true},
		{"https://localhost", 443, true},
		{"https://kinesis.us-east-1.amazonaws.com", 0, false},
		{"http://10.0.0.1:4567", 0, false},
		{"", 0, false},
		{"http://127.0.0.1:99999", 0, false},
	}
	for _, tt := range tests {
		port, ok := localEndpointPort(tt.endpoint)
		if port != tt.port || ok != tt.ok {
			t.Errorf("localEndpointPort(%q) = %d, %v; want %d, %v", tt.endpoint, port, ok, tt.port, tt.ok)
		}
	}
}

func TestServerMeter(t *testing.T) {
	m, err := startServerMeter(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Hold some memory and burn some CPU (at least 50 ms of it, however
	// loaded the machine) so that both move.
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	cpu0, err := procCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for x := 0; time.Now().Before(deadline); x++ {
		buf[x%len(buf)]++
		if x%(1<<20) == 0 {
			if c, _ := procCPU(os.Getpid()); c-cpu0 >= 50*time.Millisecond {
				break
			}
		}
	}
	u, err := m.finish(1000)
	runtime.KeepAlive(buf)
	if err != nil {
		t.Fatal(err)
	}
	if u.PID != os.Getpid() || u.CPUSeconds < 0.05 || math.Abs(u.CPUPerRecordUs-u.CPUSeconds*1e3) > 1e-6 || u.PeakRSSMiB < 64 || u.HWMMiB < 32 {
		t.Errorf("usage %+v", u)
	}
	if _, err := startServerMeter(1 << 30); err == nil {
		t.Errorf("a process that does not exist was measured")
	}
}
