package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"golang.org/x/term"
)

// topConfig is everything `runnel top` is told by flags and environment.
type topConfig struct {
	endpoint string
	region   string
	admin    string
	interval time.Duration
}

func topFlags(c *topConfig, getenv env) (fs *flag.FlagSet, envErr *error) {
	fs = flag.NewFlagSet("runnel top", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	envErr = new(error)
	d := envDefaults{getenv, envErr}
	envOr := d.str
	interval := d.duration("RUNNEL_INTERVAL", 2*time.Second)
	fs.StringVar(&c.endpoint, "endpoint", envOr("RUNNEL_ENDPOINT", "http://127.0.0.1:4567"), "runnel's `URL` (env RUNNEL_ENDPOINT)")
	fs.StringVar(&c.region, "region", envOr("RUNNEL_REGION", "us-east-1"), "signing region (env RUNNEL_REGION)")
	fs.StringVar(&c.admin, "admin", envOr("RUNNEL_ADMIN", "http://"+defaultAdminListen), "`URL` of runnel's admin listener, for rates and consumers' lag (needs serve --console); empty for none (env RUNNEL_ADMIN)")
	fs.DurationVar(&c.interval, "interval", interval, "time between refreshes (env RUNNEL_INTERVAL)")
	return fs, envErr
}

func topUsage(w io.Writer) {
	var c topConfig
	fs, _ := topFlags(&c, func(string) string { return "" })
	printUsage(w, fs, "Usage: runnel top [flags]",
		"Shows every stream with its status, mode and open shards (from the Kinesis API)",
		"and its incoming records and bytes per second, iterator age and consumer",
		"applications' lag (from the admin listener of a server run with --console),",
		"refreshed in place. q or Ctrl-C quits. When stdout is not a terminal it prints",
		"one table per refresh instead.",
	)
}

func parseTop(args []string, getenv env) (topConfig, error) {
	var c topConfig
	fs, envErr := topFlags(&c, getenv)
	if err := parseFlags(fs, args, *envErr); err != nil {
		return c, err
	}
	if c.interval < 100*time.Millisecond {
		return c, fmt.Errorf("--interval %s: use at least 100ms", c.interval)
	}
	return c, nil
}

func runTop(ctx context.Context, args []string, stdout, stderr io.Writer, getenv env) int {
	cfg, err := parseTop(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		topUsage(stdout)
		return exitOK
	}
	if err != nil {
		return usageError(stderr, "top", err)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	t := &topper{cfg: cfg, client: kinesisClient(cfg.endpoint, cfg.region, getenv), http: &http.Client{Timeout: 5 * time.Second}}
	if err := t.run(ctx, os.Stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "runnel top: %v\n", err)
		return exitError
	}
	return exitOK
}

// topper refreshes the table.
type topper struct {
	cfg    topConfig
	client *kinesis.Client
	http   *http.Client
}

// topStream is one row.
type topStream struct {
	name, status, mode string
	shards             int32
	rates              *adminStream // nil without the admin listener
}

// adminStream is a stream in the console's /console/api/streams answer.
type adminStream struct {
	Name              string  `json:"name"`
	IncomingRecords   float64 `json:"incomingRecords"`
	IncomingBytes     float64 `json:"incomingBytes"`
	IteratorAgeMillis int64   `json:"iteratorAgeMillis"`
	Consumers         []struct {
		Application string `json:"application"`
		Records     int64  `json:"records"`
		Millis      int64  `json:"millis"`
	} `json:"consumers"`
}

// run shows the table until ctx ends or q is pressed. With a terminal on
// out it redraws in place, and with one on in it reads keys in raw mode.
func (t *topper) run(ctx context.Context, in *os.File, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f, _ := out.(*os.File)
	tty := f != nil && term.IsTerminal(int(f.Fd()))
	if in != nil && term.IsTerminal(int(in.Fd())) {
		old, err := term.MakeRaw(int(in.Fd()))
		if err == nil {
			defer term.Restore(int(in.Fd()), old)
		}
		keysDone := make(chan struct{})
		defer func() {
			// Interrupt the key reader where the terminal allows it;
			// elsewhere it ends with the process.
			if in.SetReadDeadline(time.Now()) == nil {
				<-keysDone
			}
		}()
		go func() {
			defer close(keysDone)
			b := make([]byte, 16)
			for {
				n, err := in.Read(b)
				if err != nil {
					return
				}
				for _, c := range b[:n] {
					if c == 'q' || c == 'Q' || c == 3 || c == 4 { // q, Ctrl-C, Ctrl-D
						cancel()
						return
					}
				}
			}
		}()
	}
	if tty {
		// The alternate screen, without the cursor; both restored at exit.
		io.WriteString(out, "\x1b[?1049h\x1b[?25l")
		defer io.WriteString(out, "\x1b[?25h\x1b[?1049l")
	}
	tick := time.NewTicker(t.cfg.interval)
	defer tick.Stop()
	for {
		lines, err := t.snapshot(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			lines = []string{t.header(), "", "error: " + err.Error(), "is runnel serve running at " + t.cfg.endpoint + "? (--endpoint)"}
		}
		if tty {
			width := 0
			if w, _, err := term.GetSize(int(f.Fd())); err == nil {
				width = w
			}
			var b strings.Builder
			b.WriteString("\x1b[H")
			for _, l := range lines {
				if width > 0 && len(l) > width {
					l = l[:width]
				}
				b.WriteString(l + "\x1b[K\r\n")
			}
			b.WriteString("\x1b[J")
			io.WriteString(out, b.String())
		} else {
			io.WriteString(out, strings.Join(lines, "\n")+"\n\n")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (t *topper) header() string {
	return fmt.Sprintf("runnel top  %s  %s  every %s  (q quits)", t.cfg.endpoint, time.Now().Format("15:04:05"), t.cfg.interval)
}

// snapshot reads the streams and formats the table.
func (t *topper) snapshot(ctx context.Context) ([]string, error) {
	var rows []topStream
	p := kinesis.NewListStreamsPaginator(t.client, &kinesis.ListStreamsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range page.StreamNames {
			d, err := t.client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
			if err != nil {
				continue // deleted meanwhile
			}
			s := d.StreamDescriptionSummary
			row := topStream{name: name, status: string(s.StreamStatus), mode: "PROVISIONED", shards: aws.ToInt32(s.OpenShardCount)}
			if s.StreamModeDetails != nil {
				row.mode = string(s.StreamModeDetails.StreamMode)
			}
			rows = append(rows, row)
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].name < rows[j].name })
	rates, rerr := t.adminRates(ctx)
	for i := range rows {
		if r, ok := rates[rows[i].name]; ok {
			rows[i].rates = &r
		}
	}
	lines := []string{t.header(), ""}
	lines = append(lines, fmt.Sprintf("%-24s %-9s %-11s %6s %9s %10s %9s  %s", "STREAM", "STATUS", "MODE", "SHARDS", "REC/S", "BYTES/S", "ITER AGE", "CONSUMERS (records behind, lag)"))
	for _, r := range rows {
		recs, bytes, age, cons := "-", "-", "-", ""
		if r.rates != nil {
			recs, bytes, age = fmtRate(r.rates.IncomingRecords), fmtBytes(r.rates.IncomingBytes), fmtAge(r.rates.IteratorAgeMillis)
			var cs []string
			for _, c := range r.rates.Consumers {
				cs = append(cs, fmt.Sprintf("%s (%d, %s)", c.Application, c.Records, fmtAge(c.Millis)))
			}
			cons = strings.Join(cs, ", ")
		}
		lines = append(lines, fmt.Sprintf("%-24s %-9s %-11s %6d %9s %10s %9s  %s", r.name, r.status, r.mode, r.shards, recs, bytes, age, cons))
	}
	if len(rows) == 0 {
		lines = append(lines, "(no streams)")
	}
	if rerr != nil {
		lines = append(lines, "", "rates and lag: "+rerr.Error())
	}
	return lines, nil
}

// adminRates asks the admin listener for the console's rates.
func (t *topper) adminRates(ctx context.Context) (map[string]adminStream, error) {
	if t.cfg.admin == "" {
		return nil, errors.New("off (--admin is empty)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(t.cfg.admin, "/")+"/console/api/streams", nil)
	if err != nil {
		return nil, err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("the admin listener at %s does not answer: start runnel serve with --console, or point --admin at it", t.cfg.admin)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("the admin listener at %s answered %s: start runnel serve with --console", t.cfg.admin, resp.Status)
	}
	var body struct {
		Streams []adminStream `json:"streams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("the admin listener at %s: %w", t.cfg.admin, err)
	}
	out := make(map[string]adminStream, len(body.Streams))
	for _, s := range body.Streams {
		out[s.Name] = s
	}
	return out, nil
}

func fmtRate(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func fmtBytes(v float64) string {
	switch {
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	default:
		return fmt.Sprintf("%.0f B", v)
	}
}

func fmtAge(ms int64) string {
	if ms < 1000 {
		return fmt.Sprintf("%d ms", ms)
	}
	return (time.Duration(ms) * time.Millisecond).Round(100 * time.Millisecond).String()
}
