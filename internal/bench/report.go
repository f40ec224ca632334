package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of a run, printed as text or, with --json, as JSON.
type Report struct {
	// Endpoint is the endpoint driven ("" for AWS).
	Endpoint string `json:"endpoint"`
	// Stream is the stream used.
	Stream string `json:"stream"`
	// StreamCreated tells whether the run created (and deleted) the stream.
	StreamCreated bool `json:"stream_created"`
	// StreamReady tells whether the stream was found (or created) and
	// became ACTIVE; false when the run ended before.
	StreamReady bool `json:"stream_ready"`
	// Shards is the stream's shard count.
	Shards int `json:"shards"`
	// Consumers is the number of consumers (goroutines polling, or
	// shards subscribed to).
	Consumers int `json:"consumers"`
	// Workload describes what was sent.
	Workload Workload `json:"workload"`
	// ReadAfter is set when the consumers read only after the producing
	// phase (--read-after): no end-to-end latency, and the read rate is
	// over the reading phase.
	ReadAfter bool `json:"read_after"`

	// ProduceSeconds is the length of the producing phase.
	ProduceSeconds float64 `json:"produce_seconds"`
	// TotalSeconds is the time from the start of producing to the end of
	// draining.
	TotalSeconds float64 `json:"total_seconds"`
	// Written is what the stream acknowledged, over the producing phase.
	Written Throughput `json:"written"`
	// Read is what the consumers read of this run's records, from the
	// start (with ReadAfter, the end of the producing phase) to the last
	// record read.
	Read Throughput `json:"read"`
	// ReadSeconds is the length of the time Read is over.
	ReadSeconds float64 `json:"read_seconds"`

	// PutLatency is the latency of each put call (PutRecords or
	// PutRecord), including failed ones.
	PutLatency Latency `json:"put_latency"`
	// EndToEnd is the time from the first send of a record to its receipt
	// by a consumer; nil (null) with ReadAfter, where it would only
	// measure how long the record waited for the producing phase to end.
	EndToEnd *Latency `json:"end_to_end_latency"`
	// AckToReceipt is the time from the producer's receipt of the
	// successful put's acknowledgement of a record to its receipt by a
	// consumer, 0 when the consumer had it first; nil (null) with
	// ReadAfter, like EndToEnd, and without verification, whose ledgers
	// hold the acknowledgement times.
	AckToReceipt *Latency `json:"ack_to_receipt_latency"`

	// PutCalls counts put calls.
	PutCalls int64 `json:"put_calls"`
	// ThrottledCalls counts put calls refused as a whole for capacity.
	ThrottledCalls int64 `json:"throttled_calls"`
	// ThrottledRecords counts records refused for capacity (whole calls
	// and single records of a PutRecords).
	ThrottledRecords int64 `json:"throttled_records"`
	// RetriedRecords counts records sent again.
	RetriedRecords int64 `json:"retried_records"`
	// FailedRecords counts records given up after the retries.
	FailedRecords int64 `json:"failed_records"`
	// PutErrors counts failed put calls and records other than throttles.
	PutErrors int64 `json:"put_errors"`
	// GetCalls counts GetRecords (or SubscribeToShard) calls.
	GetCalls int64 `json:"get_calls"`
	// GetThrottled counts read calls refused for capacity.
	GetThrottled int64 `json:"get_throttled"`
	// GetErrors counts failed read calls other than throttles.
	GetErrors int64 `json:"get_errors"`
	// Errors lists the distinct error texts with their counts.
	Errors map[string]int64 `json:"errors,omitempty"`

	// Verification compares what was acknowledged with what was read.
	Verification Verification `json:"verification"`

	// Server is what the run cost the server process, when it is a
	// process on this machine (--server-pid, or found from a loopback
	// endpoint's port); nil otherwise.
	Server *ServerUsage `json:"server,omitempty"`
	// ServerNote says why Server is missing when measuring was asked for.
	ServerNote string `json:"server_note,omitempty"`

	// Started is set once the producers started: a report without it
	// only describes a failure to set up.
	Started bool `json:"started"`
	// Interrupted is set when the run was stopped early.
	Interrupted bool `json:"interrupted,omitempty"`
	// Error is the error that ended the run, if any.
	Error string `json:"error,omitempty"`
	// Cleanup lists failures to delete what the run created.
	Cleanup []string `json:"cleanup_errors,omitempty"`
}

// Workload is the resolved workload of a run.
type Workload struct {
	Profile   string  `json:"profile,omitempty"`
	Producers int     `json:"producers"`
	Mode      PutMode `json:"mode"`
	// ProducerClient is the client of the producers' calls: sdk, or raw
	// for the tool's lightweight JSON client (PutRecords only; PutRecord
	// calls always use the SDK).
	ProducerClient ClientKind `json:"producer_client"`
	Batch          int        `json:"batch"`
	SizeMin        int        `json:"size_min"`
	SizeMax        int        `json:"size_max"`
	Shape          Shape      `json:"shape"`
	Keys           int        `json:"keys"`
	KeyDist        KeyDist    `json:"key_dist"`
	ZipfS          float64    `json:"zipf_s,omitempty"`
	Rate           float64    `json:"rate"`
	Burst          string     `json:"burst,omitempty"`
	Duration       string     `json:"duration,omitempty"`
	Records        int64      `json:"records,omitempty"`
	ConsumerMode   string     `json:"consumer_mode"`
	// ConsumerClient is the client of the consumers' calls: sdk, or raw
	// for the tool's lightweight JSON client (GetRecords only).
	ConsumerClient ClientKind `json:"consumer_client"`
}

// Throughput is a volume over a time.
type Throughput struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MiBPerSec     float64 `json:"mib_per_sec"`
}

// Latency summarises a latency histogram, in milliseconds.
type Latency struct {
	Count  uint64  `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

func latencyOf(h *Histogram) Latency {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	return Latency{
		Count:  h.Count(),
		MeanMs: h.Mean() / 1e6,
		P50Ms:  ms(h.Quantile(0.5)),
		P90Ms:  ms(h.Quantile(0.9)),
		P99Ms:  ms(h.Quantile(0.99)),
		P999Ms: ms(h.Quantile(0.999)),
		MaxMs:  ms(h.Max()),
	}
}

func newReport(o *Options, stream string) *Report {
	lo, hi := o.sizeRange()
	w := Workload{
		Profile:        o.Profile,
		Producers:      o.Producers,
		Mode:           o.putMode(),
		ProducerClient: o.producerClient(),
		Batch:          o.Batch,
		SizeMin:        lo,
		SizeMax:        hi,
		Shape:          o.Shape,
		Keys:           o.Keys,
		KeyDist:        o.KeyDist,
		Rate:           o.Rate,
		Records:        o.Records,
		ConsumerMode:   string(o.ConsumerMode),
		ConsumerClient: o.consumerClient(),
	}
	if o.KeyDist == KeyZipf {
		w.ZipfS = o.ZipfS
	}
	if o.BurstOn > 0 {
		w.Burst = o.BurstOn.String() + "/" + o.BurstOff.String()
	}
	if o.Duration > 0 {
		w.Duration = o.Duration.String()
	}
	return &Report{Endpoint: o.Endpoint, Stream: stream, Shards: o.Shards, Workload: w, ReadAfter: o.ReadAfter}
}

// fail records err in the report and returns both.
func (rep *Report) fail(err error) (*Report, error) {
	rep.Error = err.Error()
	return rep, err
}

func throughput(records, bytes int64, d time.Duration) Throughput {
	t := Throughput{Records: records, Bytes: bytes}
	if s := d.Seconds(); s > 0 {
		t.RecordsPerSec = float64(records) / s
		t.MiBPerSec = float64(bytes) / s / (1 << 20)
	}
	return t
}

// fill completes the report from a finished run. The durations are since
// the start of producing: its end, the start of reading (0 unless reading
// waited for the end of producing) and the end of draining.
func (rep *Report) fill(r *runner, producers []*producer, readers []*shardReader, produced, readStart, drained time.Duration) {
	st := &r.stats
	rep.ProduceSeconds = produced.Seconds()
	rep.TotalSeconds = drained.Seconds()
	rep.Written = throughput(st.putRecords.Load(), st.putBytes.Load(), produced)
	reading := max(0, time.Duration(st.lastRead.Load())-readStart)
	rep.Read = throughput(st.getRecords.Load(), st.getBytes.Load(), reading)
	rep.ReadSeconds = reading.Seconds()
	put, e2e := NewHistogram(), NewHistogram()
	ledgers := make([]*ledger, len(producers))
	for i, p := range producers {
		put.Merge(p.putLat)
		ledgers[i] = p.ledger
	}
	logs := make([]*shardLog, len(readers))
	for i, s := range readers {
		e2e.Merge(s.log.e2e)
		logs[i] = s.log
	}
	rep.PutLatency = latencyOf(put)
	if !r.o.ReadAfter {
		l := latencyOf(e2e)
		rep.EndToEnd = &l
	}
	rep.PutCalls = st.putCalls.Load()
	rep.ThrottledCalls = st.throttledCalls.Load()
	rep.ThrottledRecords = st.throttledRecords.Load()
	rep.RetriedRecords = st.retriedRecords.Load()
	rep.FailedRecords = st.failedRecords.Load()
	rep.PutErrors = st.putErrors.Load()
	rep.GetCalls = st.getCalls.Load()
	rep.GetThrottled = st.getThrottles.Load()
	rep.GetErrors = st.getErrors.Load()
	st.mu.Lock()
	if len(st.mu.errors) > 0 {
		rep.Errors = make(map[string]int64, len(st.mu.errors))
		for k, v := range st.mu.errors {
			rep.Errors[k] = v
		}
	}
	st.mu.Unlock()
	if r.o.Verify {
		rep.Verification = verify(ledgers, logs)
		if !r.o.ReadAfter {
			l := latencyOf(ackToReceipt(ledgers, logs))
			rep.AckToReceipt = &l
		}
	} else {
		for _, l := range logs {
			rep.Verification.Corrupted += l.corrupted
			rep.Verification.Foreign += l.foreign
			rep.Verification.SequenceErrors += l.seqErrors
		}
	}
}

// OK reports whether the run completed without error and, when it was
// verified, every acknowledged record was read back correctly.
func (rep *Report) OK() bool {
	return rep.Error == "" && !rep.Interrupted && (!rep.Verification.Checked || rep.Verification.OK)
}

// WriteText writes the report for a reader.
func (rep *Report) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	wl := rep.Workload
	endpoint := rep.Endpoint
	if endpoint == "" {
		endpoint = "AWS"
	}
	created := "not set up"
	switch {
	case rep.StreamCreated:
		created = "created"
	case rep.StreamReady:
		created = "existing"
	}
	p("endpoint  %s, stream %s (%d shards, %s)\n", endpoint, rep.Stream, rep.Shards, created)
	prof := ""
	if wl.Profile != "" {
		prof = "profile " + wl.Profile + ": "
	}
	size := fmt.Sprintf("%d B", wl.SizeMin)
	if wl.SizeMax > wl.SizeMin {
		size = fmt.Sprintf("%d-%d B", wl.SizeMin, wl.SizeMax)
	}
	keys := fmt.Sprintf("%d %s keys", wl.Keys, wl.KeyDist)
	if wl.KeyDist == KeyZipf {
		keys = fmt.Sprintf("%d zipf(s=%.2f) keys", wl.Keys, wl.ZipfS)
	}
	call := fmt.Sprintf("PutRecords x%d", wl.Batch)
	if wl.Mode == PutRecord {
		call = "PutRecord"
	}
	switch wl.ProducerClient {
	case ClientRaw:
		call += " (raw JSON client)"
	default:
		call += " (SDK)"
	}
	rate := "unpaced"
	if wl.Rate > 0 {
		rate = fmt.Sprintf("%.0f rec/s", wl.Rate)
	}
	if wl.Burst != "" {
		rate += ", bursts " + wl.Burst
	}
	p("workload  %s%d producers, %s, %s %s records, %s, %s\n", prof, wl.Producers, call, size, wl.Shape, keys, rate)
	after := ""
	if rep.ReadAfter {
		after = ", reading back after producing (--read-after)"
	}
	client := ""
	if wl.ConsumerClient == ClientRaw {
		client = ", raw JSON client"
	}
	p("consumers %d (%s%s)%s\n\n", rep.Consumers, wl.ConsumerMode, client, after)
	if !rep.Started {
		p("error: %s\n", rep.Error)
		for _, c := range rep.Cleanup {
			p("cleanup: %s\n", c)
		}
		return
	}

	p("%-10s %12s %12s %10s %9s\n", "", "records", "rec/s", "MiB/s", "seconds")
	p("%-10s %12d %12.0f %10.2f %9.1f\n", "written", rep.Written.Records, rep.Written.RecordsPerSec, rep.Written.MiBPerSec, rep.ProduceSeconds)
	p("%-10s %12d %12.0f %10.2f %9.1f\n\n", "read", rep.Read.Records, rep.Read.RecordsPerSec, rep.Read.MiBPerSec, rep.ReadSeconds)
	if s := rep.Server; s != nil {
		p("server    pid %d: %.2f us CPU per record written and read back once (%.2f s user+system over the run), peak RSS %.0f MiB (VmHWM %.0f MiB)\n\n",
			s.PID, s.CPUPerRecordUs, s.CPUSeconds, s.PeakRSSMiB, s.HWMMiB)
	} else if rep.ServerNote != "" {
		p("server    not measured: %s\n\n", rep.ServerNote)
	}

	lat := func(name string, l Latency) {
		p("%-16s p50 %8.2f  p90 %8.2f  p99 %8.2f  p99.9 %8.2f  max %8.2f ms  (n=%d)\n", name, l.P50Ms, l.P90Ms, l.P99Ms, l.P999Ms, l.MaxMs, l.Count)
	}
	lat("put latency", rep.PutLatency)
	if rep.EndToEnd != nil {
		lat("end-to-end", *rep.EndToEnd)
	} else {
		p("%-16s not measured: consumers read back after producing\n", "end-to-end")
	}
	switch {
	case rep.AckToReceipt != nil:
		lat("ack→receipt", *rep.AckToReceipt)
	case rep.ReadAfter:
		p("%-16s not measured: consumers read back after producing\n", "ack→receipt")
	default:
		p("%-16s not measured: needs the verification's ledgers (--verify=false)\n", "ack→receipt")
	}
	p("\nput calls %d, throttled %d calls / %d records, retried %d records, failed %d records, put errors %d\n",
		rep.PutCalls, rep.ThrottledCalls, rep.ThrottledRecords, rep.RetriedRecords, rep.FailedRecords, rep.PutErrors)
	p("get calls %d, throttled %d, errors %d\n", rep.GetCalls, rep.GetThrottled, rep.GetErrors)
	if len(rep.Errors) > 0 {
		texts := make([]string, 0, len(rep.Errors))
		for t := range rep.Errors {
			texts = append(texts, t)
		}
		sort.Strings(texts)
		for _, t := range texts {
			p("  %6dx %s\n", rep.Errors[t], t)
		}
	}
	v := rep.Verification
	switch {
	case !v.Checked:
		p("\nverification off\n")
	case v.OK:
		p("\nverification OK: all %d acknowledged records read back exactly once, intact, in order per key", v.Acknowledged)
	default:
		p("\nverification FAILED: %d acknowledged, %d read once; lost %d, duplicated %d, reordered %d, corrupted %d, misrouted %d, unexpected %d, sequence errors %d",
			v.Acknowledged, v.ReadOnce, v.Lost, v.Duplicated, v.Reordered, v.Corrupted, v.Misrouted, v.Unexpected, v.SequenceErrors)
	}
	if v.Checked {
		var extra []string
		if v.RetryDuplicates > 0 {
			extra = append(extra, fmt.Sprintf("%d duplicates after retries", v.RetryDuplicates))
		}
		if v.Ambiguous > 0 {
			extra = append(extra, fmt.Sprintf("%d unacknowledged records stored", v.Ambiguous))
		}
		if v.Foreign > 0 {
			extra = append(extra, fmt.Sprintf("%d foreign records ignored", v.Foreign))
		}
		if len(extra) > 0 {
			p(" (%s)", strings.Join(extra, ", "))
		}
		p("\n")
		for _, s := range v.Samples {
			p("  %s\n", s)
		}
	}
	if rep.Interrupted {
		p("interrupted\n")
	}
	if rep.Error != "" {
		p("error: %s\n", rep.Error)
	}
	for _, c := range rep.Cleanup {
		p("cleanup: %s\n", c)
	}
}
