package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file measures what a run costs the server when the server is a
// process on this machine: its CPU time (user + system) from
// /proc/PID/stat and its resident memory from /proc/PID/status. On a machine
// whose cores the load tool shares with the server, throughput is bounded
// by the tool as much as by the server, so the server's own CPU per record
// is the fairer figure to compare servers by.

// ErrNoServerProcess is returned when no local process listens on the
// endpoint's port.
var ErrNoServerProcess = errors.New("bench: no local process listens on the endpoint's port")

// userHZ is the unit of the CPU times in /proc/PID/stat: USER_HZ, which
// Linux fixes at 100 per second in its interface to user space on every
// architecture it runs on.
const userHZ = 100

// procRoot is where the proc filesystem is mounted; tests point it
// elsewhere.
var procRoot = "/proc"

// procCPU returns the CPU time (user + system, all threads) process pid has
// used so far.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	return parseProcStat(b)
}

// parseProcStat returns utime + stime from the contents of /proc/PID/stat.
// The second field, the command name in parentheses, may itself hold spaces
// and parentheses, so fields are counted from the last ')'.
func parseProcStat(b []byte) (time.Duration, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return 0, fmt.Errorf("bench: /proc stat: no command name")
	}
	// After the name: state (field 3), ..., utime (14), stime (15).
	f := strings.Fields(string(b[end+1:]))
	const utime, stime = 14 - 3, 15 - 3
	if len(f) <= stime {
		return 0, fmt.Errorf("bench: /proc stat: %d fields after the name, want more than %d", len(f), stime)
	}
	u, err1 := strconv.ParseUint(f[utime], 10, 63)
	s, err2 := strconv.ParseUint(f[stime], 10, 63)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: /proc stat: bad utime %q or stime %q", f[utime], f[stime])
	}
	return time.Duration(u+s) * (time.Second / userHZ), nil
}

// procMemory returns the resident set size now and its peak (high water
// mark) over the life of process pid, in bytes.
func procMemory(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, 0, err
	}
	return parseProcStatus(b)
}

// parseProcStatus returns VmRSS and VmHWM from the contents of
// /proc/PID/status, in bytes.
func parseProcStatus(b []byte) (rss, hwm int64, err error) {
	var haveRSS, haveHWM bool
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		f := strings.Fields(val)
		if len(f) != 2 || f[1] != "kB" {
			return 0, 0, fmt.Errorf("bench: /proc status: bad %s line %q", name, sc.Text())
		}
		kb, perr := strconv.ParseInt(f[0], 10, 64)
		if perr != nil {
			return 0, 0, fmt.Errorf("bench: /proc status: bad %s line %q", name, sc.Text())
		}
		if name == "VmRSS" {
			rss, haveRSS = kb<<10, true
		} else {
			hwm, haveHWM = kb<<10, true
		}
	}
	if !haveRSS || !haveHWM {
		// Kernel threads and zombies have neither.
		return 0, 0, fmt.Errorf("bench: /proc status: no VmRSS and VmHWM")
	}
	return rss, hwm, nil
}

// listeningInodes returns the socket inodes of the TCP sockets listening on
// port, from /proc/net/tcp and /proc/net/tcp6 (whatever the address).
func listeningInodes(port int) (map[uint64]bool, error) {
	inodes := map[uint64]bool{}
	var read int
	for _, name := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(procRoot, "net", name))
		if err != nil {
			continue // no IPv6, say
		}
		read++
		for ino := range parseListeners(b, port) {
			inodes[ino] = true
		}
	}
	if read == 0 {
		return nil, fmt.Errorf("bench: cannot read %s/net/tcp", procRoot)
	}
	return inodes, nil
}

// parseListeners returns the inodes of the sockets in the LISTEN state on
// port, from the contents of /proc/net/tcp or /proc/net/tcp6: a heading line,
// then one socket a line, "sl local_address rem_address st ... inode ...",
// with the local address as hex IP:PORT and the state 0A for LISTEN.
func parseListeners(b []byte, port int) map[uint64]bool {
	inodes := map[uint64]bool{}
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, p, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		pn, err := strconv.ParseUint(p, 16, 16)
		if err != nil || int(pn) != port {
			continue
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		inodes[ino] = true
	}
	return inodes
}

// pidListeningOn returns the process that holds a socket listening on TCP
// port: the listening sockets' inodes from /proc/net/tcp{,6}, then the
// process with a file descriptor on one of them (/proc/PID/fd/N links to
// "socket:[INODE]"). Only processes whose descriptors this user may read
// are found.
func pidListeningOn(port int) (int, error) {
	inodes, err := listeningInodes(port)
	if err != nil {
		return 0, err
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("%w (port %d)", ErrNoServerProcess, port)
	}
	procs, err := os.ReadDir(procRoot)
	if err != nil {
		return 0, err
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid <= 0 {
			continue
		}
		fdDir := filepath.Join(procRoot, p.Name(), "fd")
		fds, err := os.ReadDir(fdDir)
		if err != nil {
			continue // gone, or another user's
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") || !strings.HasSuffix(link, "]") {
				continue
			}
			ino, err := strconv.ParseUint(link[len("socket:["):len(link)-1], 10, 64)
			if err == nil && inodes[ino] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("%w (port %d: a listener exists, but no process this user can inspect holds it)", ErrNoServerProcess, port)
}

// localEndpointPort returns the port of endpoint when its host is a
// loopback address or a name for one, the only endpoints whose server can be
// a process on this machine that --server-pid would find by port.
func localEndpointPort(endpoint string) (int, bool) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return 0, false
	}
	host := u.Hostname()
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return 0, false
		}
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		return 0, false
	}
	return n, true
}

// ServerUsage is what the run cost the server process: measured from /proc
// when the server is a process on this machine.
type ServerUsage struct {
	// PID is the process measured.
	PID int `json:"pid"`
	// CPUSeconds is the CPU time (user + system, all threads) the process
	// used from the start of producing to the end of reading back.
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerRecordUs is CPUSeconds in microseconds divided by the records
	// written: the cost of writing a record and reading it back once (the
	// consumers read each record once; copies read again are not counted
	// apart).
	CPUPerRecordUs float64 `json:"cpu_per_record_us"`
	// PeakRSSMiB is the largest resident set size sampled during the run
	// (every 100 ms), in MiB.
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// HWMMiB is the process's own peak resident set size (VmHWM) at the
	// end of the run, over its whole life, in MiB. The kernel updates it
	// lazily, so it can be a little below PeakRSSMiB.
	HWMMiB float64 `json:"hwm_mib"`
}

// serverMeter samples a server process during a run.
type serverMeter struct {
	pid      int
	cpu0     time.Duration
	peakRSS  atomic.Int64
	stop     context.CancelFunc
	sampling sync.WaitGroup
}

// rssInterval is how often the meter samples the resident set size.
const rssInterval = 100 * time.Millisecond

// startServerMeter starts measuring process pid: its CPU time now, and its
// resident set size every rssInterval until finish.
func startServerMeter(pid int) (*serverMeter, error) {
	cpu, err := procCPU(pid)
	if err != nil {
		return nil, err
	}
	rss, _, err := procMemory(pid)
	if err != nil {
		return nil, err
	}
	m := &serverMeter{pid: pid, cpu0: cpu}
	m.peakRSS.Store(rss)
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	m.sampling.Add(1)
	go func() {
		defer m.sampling.Done()
		t := time.NewTicker(rssInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.sample()
			}
		}
	}()
	return m, nil
}

// sample notes the resident set size now.
func (m *serverMeter) sample() {
	rss, _, err := procMemory(m.pid)
	if err != nil {
		return
	}
	for {
		p := m.peakRSS.Load()
		if rss <= p || m.peakRSS.CompareAndSwap(p, rss) {
			return
		}
	}
}

// finish stops sampling and returns the usage over the run, with the CPU
// time divided by records.
func (m *serverMeter) finish(records int64) (*ServerUsage, error) {
	m.stop()
	m.sampling.Wait()
	m.sample()
	cpu, err := procCPU(m.pid)
	if err != nil {
		return nil, err
	}
	_, hwm, err := procMemory(m.pid)
	if err != nil {
		return nil, err
	}
	u := &ServerUsage{
		PID:        m.pid,
		CPUSeconds: (cpu - m.cpu0).Seconds(),
		PeakRSSMiB: float64(m.peakRSS.Load()) / (1 << 20),
		HWMMiB:     float64(hwm) / (1 << 20),
	}
	if records > 0 {
		u.CPUPerRecordUs = u.CPUSeconds * 1e6 / float64(records)
	}
	return u, nil
}

// ProcessCPU returns the CPU time (user + system) process pid has used so
// far, for tools other than `runnel bench` that measure a local server.
func ProcessCPU(pid int) (time.Duration, error) { return procCPU(pid) }

// PIDListeningOn returns the local process that listens on TCP port.
func PIDListeningOn(port int) (int, error) { return pidListeningOn(port) }
