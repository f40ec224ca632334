// Command table prints the results of bench/compare.sh: one block per
// workload with each target's figures from its `runnel bench --json` report,
// then the ratios runnel/peer. It also serves the script as a small helper
// (-seconds, -quote) so that the script needs nothing but Go and npm.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// report holds the fields of a `runnel bench --json` report the table shows.
type report struct {
	Error   string `json:"error"`
	Started bool   `json:"started"`
	Written struct {
		RecordsPerSec float64 `json:"records_per_sec"`
		MiBPerSec     float64 `json:"mib_per_sec"`
		Records       int64   `json:"records"`
	} `json:"written"`
	Read struct {
		RecordsPerSec float64 `json:"records_per_sec"`
		Records       int64   `json:"records"`
	} `json:"read"`
	PutLatency latency `json:"put_latency"`
	// EndToEnd (from a record's first send) and AckToReceipt (from its
	// acknowledgement) are nil when the run did not measure them
	// (--read-after; AckToReceipt also without verification, or from a
	// runnel bench older than the measure).
	EndToEnd     *latency `json:"end_to_end_latency"`
	AckToReceipt *latency `json:"ack_to_receipt_latency"`
	ReadAfter    bool     `json:"read_after"`
	Throttled    int64    `json:"throttled_records"`
	PutErrors    int64    `json:"put_errors"`
	GetErrors    int64    `json:"get_errors"`
	// Server is what the run cost the target's process (nil when it was
	// not measured).
	Server *struct {
		CPUPerRecordUs float64 `json:"cpu_per_record_us"`
		PeakRSSMiB     float64 `json:"peak_rss_mib"`
	} `json:"server"`
	Verification struct {
		Checked    bool  `json:"checked"`
		OK         bool  `json:"ok"`
		Lost       int64 `json:"lost"`
		Duplicated int64 `json:"duplicated"`
		Reordered  int64 `json:"reordered"`
		Corrupted  int64 `json:"corrupted"`
	} `json:"verification"`
}

type latency struct {
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
}

func main() {
	dir := flag.String("dir", "", "results directory written by compare.sh")
	targets := flag.String("targets", "runnel,kinesalite,kinesis-local", "targets, runnel first")
	seconds := flag.String("seconds", "", "print this duration in whole seconds and exit")
	quote := flag.Bool("quote", false, "print standard input as a JSON string and exit")
	flag.Parse()
	switch {
	case *seconds != "":
		d, err := time.ParseDuration(*seconds)
		if err != nil {
			fmt.Fprintln(os.Stderr, "table:", err)
			os.Exit(2)
		}
		fmt.Println(int(math.Ceil(d.Seconds())))
	case *quote:
		b, _ := io.ReadAll(os.Stdin)
		q, _ := json.Marshal(strings.TrimSpace(string(b)))
		fmt.Println(string(q))
	case *dir != "":
		if err := printTable(os.Stdout, *dir, strings.Split(*targets, ",")); err != nil {
			fmt.Fprintln(os.Stderr, "table:", err)
			os.Exit(1)
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
}

type workload struct{ name, desc, flags string }

func readWorkloads(dir string) ([]workload, error) {
	f, err := os.Open(filepath.Join(dir, "workloads"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var wls []workload
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), "|", 3)
		if len(parts) == 3 {
			wls = append(wls, workload{parts[0], parts[1], parts[2]})
		}
	}
	return wls, sc.Err()
}

func load(dir, wl, target string) *report {
	b, err := os.ReadFile(filepath.Join(dir, wl+"."+target+".json"))
	if err != nil {
		return &report{Error: "no result"}
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return &report{Error: "unreadable result: " + err.Error()}
	}
	return &r
}

func (r *report) failed() bool { return r.Error != "" && !r.Started }

func (r *report) verdict() string {
	v := r.Verification
	switch {
	case r.Error != "":
		return "ERROR"
	case !v.Checked:
		return "-"
	case v.OK:
		return "OK"
	}
	return fmt.Sprintf("FAIL(lost %d dup %d reord %d corrupt %d)", v.Lost, v.Duplicated, v.Reordered, v.Corrupted)
}

func printTable(w io.Writer, dir string, targets []string) error {
	wls, err := readWorkloads(dir)
	if err != nil {
		return err
	}
	results := map[[2]string]*report{}
	for _, wl := range wls {
		fmt.Fprintf(w, "\nworkload %s: %s\n  flags: %s\n", wl.name, wl.desc, wl.flags)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "  target\twrite rec/s\tMiB/s\tread rec/s\tput p50 ms\tput p99 ms\te2e p50 ms\te2e p99 ms\tack→rcv p50 ms\tack→rcv p99 ms\tCPU µs/rec\tpeak RSS MiB\tthrottled\terrors\t")
		var errs []string
		for _, t := range targets {
			r := load(dir, wl.name, t)
			results[[2]string{wl.name, t}] = r
			if r.failed() {
				fmt.Fprintf(tw, "  %s\tfailed\t\t\t\t\t\t\t\t\t\t\t\t\t\n", t)
				errs = append(errs, fmt.Sprintf("  %s: %s", t, clip(r.Error, 240)))
				continue
			}
			e2e50, e2e99 := r.EndToEnd.cells()
			ack50, ack99 := r.AckToReceipt.cells()
			cpu, rss := r.serverCells()
			fmt.Fprintf(tw, "  %s\t%.0f\t%.2f\t%.0f\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t\n", t,
				r.Written.RecordsPerSec, r.Written.MiBPerSec, r.Read.RecordsPerSec,
				r.PutLatency.P50, r.PutLatency.P99, e2e50, e2e99, ack50, ack99,
				cpu, rss, r.Throttled, r.PutErrors+r.GetErrors)
		}
		tw.Flush()
		if readAfter(results, wl.name, targets) {
			fmt.Fprintln(w, "  (consumers read back after producing: read rec/s is over the reading phase, no end-to-end latency)")
		}
		fmt.Fprintln(w, "  (CPU µs/rec: the target process's user+system CPU from the start of producing to the end of reading, per record written and read back once)")
		for _, t := range targets {
			if r := results[[2]string{wl.name, t}]; !r.failed() {
				fmt.Fprintf(w, "  %s verification: %s\n", t, r.verdict())
				if r.Error != "" {
					errs = append(errs, fmt.Sprintf("  %s: %s", t, clip(r.Error, 240)))
				}
			}
		}
		for _, e := range errs {
			fmt.Fprintln(w, e)
		}
	}
	if len(targets) < 2 {
		return nil
	}
	base := targets[0]
	fmt.Fprintf(w, "\nratios %s/peer (throughput above 1 and latency below 1 favour %s; CPU/rec is the other way round, peer/%s, so above 1 favours %s too)\n", base, base, base, base)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  workload\tpeer\twrite rec/s\tread rec/s\tput p50\tput p99\te2e p50\te2e p99\tack→rcv p50\tack→rcv p99\tCPU/rec peer÷base\t")
	for _, wl := range wls {
		b := results[[2]string{wl.name, base}]
		for _, peer := range targets[1:] {
			p := results[[2]string{wl.name, peer}]
			if b.failed() || p.failed() {
				fmt.Fprintf(tw, "  %s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t\n", wl.name, peer)
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", wl.name, peer,
				ratio(b.Written.RecordsPerSec, p.Written.RecordsPerSec), ratio(b.Read.RecordsPerSec, p.Read.RecordsPerSec),
				ratio(b.PutLatency.P50, p.PutLatency.P50), ratio(b.PutLatency.P99, p.PutLatency.P99),
				ratio(b.EndToEnd.p50(), p.EndToEnd.p50()), ratio(b.EndToEnd.p99(), p.EndToEnd.p99()),
				ratio(b.AckToReceipt.p50(), p.AckToReceipt.p50()), ratio(b.AckToReceipt.p99(), p.AckToReceipt.p99()),
				ratio(p.cpuPerRecord(), b.cpuPerRecord()))
		}
	}
	return tw.Flush()
}

// serverCells returns the CPU-per-record and peak-RSS cells, empty when
// the target's process was not measured.
func (r *report) serverCells() (cpu, rss string) {
	if r.Server == nil {
		return "", ""
	}
	return fmt.Sprintf("%.2f", r.Server.CPUPerRecordUs), fmt.Sprintf("%.0f", r.Server.PeakRSSMiB)
}

// cpuPerRecord returns the target's CPU per record, 0 (no ratio) when not
// measured.
func (r *report) cpuPerRecord() float64 {
	if r.Server == nil {
		return 0
	}
	return r.Server.CPUPerRecordUs
}

// cells returns the p50 and p99 cells of a latency row, empty when not
// measured.
func (l *latency) cells() (p50, p99 string) {
	if l == nil {
		return "", ""
	}
	return fmt.Sprintf("%.1f", l.P50), fmt.Sprintf("%.1f", l.P99)
}

// p50 and p99 return the percentile, 0 (no ratio) when not measured.
func (l *latency) p50() float64 {
	if l == nil {
		return 0
	}
	return l.P50
}

func (l *latency) p99() float64 {
	if l == nil {
		return 0
	}
	return l.P99
}

// readAfter reports whether any target's run of workload wl read back after
// producing.
func readAfter(results map[[2]string]*report, wl string, targets []string) bool {
	for _, t := range targets {
		if r := results[[2]string{wl, t}]; r != nil && r.ReadAfter {
			return true
		}
	}
	return false
}

func ratio(a, b float64) string {
	if b == 0 || a == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
