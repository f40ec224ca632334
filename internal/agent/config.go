package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is an agent configuration file in the Kinesis Agent's format
// (its agent.json): connection settings at the top level and one Flow per
// set of files to tail.
type Config struct {
	// Path is the file the configuration was read from; errors name it.
	Path string
	// KinesisEndpoint is kinesis.endpoint: the Kinesis API's URL, empty for
	// AWS's endpoint of the region.
	KinesisEndpoint string
	// FirehoseEndpoint is firehose.endpoint, kept for delivery-stream flows.
	FirehoseEndpoint string
	// Region is kinesis.region, or the region named in kinesis.endpoint's
	// host (kinesis.us-west-2.amazonaws.com); empty when neither says.
	Region string
	// AccessKeyID and SecretAccessKey are awsAccessKeyId and
	// awsSecretAccessKey; empty to take credentials from the environment.
	AccessKeyID, SecretAccessKey string
	// CheckpointFile is where the agent keeps each file's progress
	// (checkpointFile; default /var/run/aws-kinesis-agent/checkpoints, as
	// the Kinesis Agent's).
	CheckpointFile string
	// ShutdownTimeout is shutdownTimeoutMillis: how long a clean stop may
	// spend sending what was read.
	ShutdownTimeout time.Duration
	// Flows are the file flows, in the file's order.
	Flows []*Flow
	// Ignored lists the keys that were recognised as the Kinesis Agent's
	// but have no effect here (CloudWatch metrics, thread pools, ...).
	Ignored []string
	// Unknown lists keys that neither runnel nor the Kinesis Agent knows:
	// likely misspelt.
	Unknown []string
}

// Flow is one entry of flows: a file pattern and where its records go.
type Flow struct {
	// Index is the flow's position in flows, for messages.
	Index int
	// FilePattern is filePattern: a directory and a file name that may hold
	// glob wildcards (*, ?, [...]); the directory may not.
	FilePattern string
	// KinesisStream is kinesisStream; DeliveryStream is deliveryStream.
	// Exactly one is set.
	KinesisStream, DeliveryStream string
	// PartitionKey is partitionKeyOption: RANDOM (default) or DETERMINISTIC.
	PartitionKey string
	// StartAtEnd is initialPosition END_OF_FILE (the default): files present
	// at the first start are read from their end.
	StartAtEnd bool
	// MultiLineStart is multiLineStartPattern: a record starts at a line it
	// matches at the line's beginning; nil for one record per line.
	MultiLineStart *regexp.Regexp
	// SkipHeaderLines is skipHeaderLines: lines skipped at each file's start.
	SkipHeaderLines int
	// Terminator is truncatedRecordTerminator (default "\n"): what ends a
	// record cut to the record size limit.
	Terminator []byte
	// MaxBufferAge, MaxBufferRecords and MaxBufferBytes are
	// maxBufferAgeMillis, maxBufferSizeRecords and maxBufferSizeBytes: a
	// batch is sent when its oldest record is this old, or when it has this
	// many records or bytes.
	MaxBufferAge     time.Duration
	MaxBufferRecords int
	MaxBufferBytes   int
	// RetryInitialBackoff and RetryMaxBackoff are retryInitialBackoffMillis
	// and retryMaxBackoffMillis: the wait between retries of a failed send.
	RetryInitialBackoff, RetryMaxBackoff time.Duration
	// PollInterval is minTimeBetweenFilePollsMillis: how often files are
	// checked for new data when there is none.
	PollInterval time.Duration
	// Processors are dataProcessingOptions, applied in order.
	Processors []Processor
}

// ID names the flow in checkpoints and status lines: the destination and
// the pattern, as the Kinesis Agent names its flows.
func (f *Flow) ID() string {
	if f.DeliveryStream != "" {
		return "fh:" + f.DeliveryStream + ":" + f.FilePattern
	}
	return "kinesis:" + f.KinesisStream + ":" + f.FilePattern
}

// Limits of the Kinesis Agent's Kinesis flows (KinesisConstants, KinesisFileFlow).
const (
	// MaxRecordBytes is the largest record: data and partition key.
	MaxRecordBytes         = 1 << 20
	maxBatchRecords        = 500
	maxBatchBytes          = 5 << 20
	defaultBufferAge       = time.Minute
	minBufferAge           = time.Second
	maxBufferAge           = 15 * time.Minute
	defaultCheckpointFile  = "/var/run/aws-kinesis-agent/checkpoints"
	defaultShutdownTimeout = 10 * time.Second
)

// ConfigError is a configuration that cannot be used: the file, where in
// it (a JSON path like flows[0].kinesisStream, or a line and column for
// JSON syntax) and what is wrong.
type ConfigError struct {
	File   string
	Field  string // empty for a syntax error
	Line   int    // 1-based; 0 unless a syntax error
	Column int
	Msg    string
}

func (e *ConfigError) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	case e.Field != "":
		return fmt.Sprintf("%s: %s: %s", e.File, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// ErrDeliveryStream is returned by Validate for flows into delivery
// streams, which the agent does not send to yet.
var ErrDeliveryStream = errors.New("agent: delivery streams (deliveryStream) are not supported yet; use kinesisStream")

// Keys of the Kinesis Agent's configuration that runnel accepts and
// ignores: they tune its CloudWatch metrics, thread pools, HTTP client and
// credential plugins, which have no counterpart here.
var ignoredTopKeys = []string{
	"cloudwatch.emitMetrics", "cloudwatch.endpoint", "cloudwatch.tagInstance",
	"cloudwatch.metricsBufferTimeMillis", "cloudwatch.namespace", "cloudwatch.metricsQueueSize",
	"firehose.region", "sts.endpoint", "assumeRoleARN", "assumeRoleExternalId",
	"userDefinedCredentialsProvider.classname", "userDefinedCredentialsProvider.location",
	"log.emitMetrics", "log.emitInternalMetrics", "log.statusReportingPeriodSeconds",
	"maxSendingThreads", "sendingThreadsKeepAliveMillis", "sendingThreadsMaxQueueSize",
	"maxSendingThreadsPerCore", "maxConnections", "connectionTimeoutMillis",
	"connectionTTLMillis", "socketTimeoutMillis", "useTcpKeepAlive", "useHttpGzip",
	"checkpointTimeToLiveDays", "fileFooterPattern",
}

var ignoredFlowKeys = []string{
	"waitOnFullPublishQueueMillis", "waitOnEmptyPublishQueueMillis", "waitOnFullRetryQueueMillis",
	"publishQueueCapacity", "maxTimeBetweenFileTrackerRefreshMillis", "fileFooterPattern",
	"aggregatedRecordSizeBytes", "log.emitInternalMetrics",
}

// LoadConfig reads and validates the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("agent configuration not found (give its path with --config): %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("read agent configuration: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses a configuration read from the file named path.
func ParseConfig(path string, data []byte) (*Config, error) {
	p := &parser{file: path}
	top, err := p.object(data)
	if err != nil {
		return nil, err
	}
	c := &Config{Path: path}
	if c.KinesisEndpoint, err = p.str(top, "", "kinesis.endpoint", ""); err != nil {
		return nil, err
	}
	if c.KinesisEndpoint != "" {
		if c.KinesisEndpoint, err = normalizeEndpoint(c.KinesisEndpoint); err != nil {
			return nil, p.fieldErr("kinesis.endpoint", err.Error())
		}
	}
	if c.FirehoseEndpoint, err = p.str(top, "", "firehose.endpoint", ""); err != nil {
		return nil, err
	}
	if c.Region, err = p.str(top, "", "kinesis.region", ""); err != nil {
		return nil, err
	}
	if c.Region == "" {
		c.Region = regionOf(c.KinesisEndpoint)
	}
	if c.AccessKeyID, err = p.str(top, "", "awsAccessKeyId", ""); err != nil {
		return nil, err
	}
	if c.SecretAccessKey, err = p.str(top, "", "awsSecretAccessKey", ""); err != nil {
		return nil, err
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return nil, p.fieldErr("awsSecretAccessKey", "awsAccessKeyId and awsSecretAccessKey go together: set both or neither")
	}
	if c.CheckpointFile, err = p.str(top, "", "checkpointFile", defaultCheckpointFile); err != nil {
		return nil, err
	}
	ms, err := p.integer(top, "", "shutdownTimeoutMillis", int64(defaultShutdownTimeout/time.Millisecond), 0, 1<<40)
	if err != nil {
		return nil, err
	}
	c.ShutdownTimeout = time.Duration(ms) * time.Millisecond
	raw, ok := top["flows"]
	if !ok {
		return nil, p.fieldErr("flows", "missing: list the files to tail, e.g. \"flows\": [{\"filePattern\": \"/var/log/app.log*\", \"kinesisStream\": \"logs\"}]")
	}
	var flows []json.RawMessage
	if err := json.Unmarshal(raw, &flows); err != nil {
		return nil, p.fieldErr("flows", "must be a list of objects")
	}
	if len(flows) == 0 {
		return nil, p.fieldErr("flows", "is empty: nothing to tail")
	}
	known := []string{"kinesis.endpoint", "firehose.endpoint", "kinesis.region", "awsAccessKeyId",
		"awsSecretAccessKey", "checkpointFile", "shutdownTimeoutMillis", "flows"}
	for _, k := range sortedKeys(top) {
		switch {
		case slices.Contains(known, k):
		case slices.Contains(ignoredTopKeys, k):
			c.Ignored = append(c.Ignored, k)
		default:
			c.Unknown = append(c.Unknown, k)
		}
	}
	for i, raw := range flows {
		f, err := p.flow(i, raw, c)
		if err != nil {
			return nil, err
		}
		c.Flows = append(c.Flows, f)
	}
	return c, nil
}

// Validate reports what the agent cannot run, though the file is well
// formed: today, flows into delivery streams.
func (c *Config) Validate() error {
	for _, f := range c.Flows {
		if f.DeliveryStream != "" {
			return &ConfigError{File: c.Path, Field: fmt.Sprintf("flows[%d].deliveryStream", f.Index),
				Msg: fmt.Sprintf("%q: %v", f.DeliveryStream, ErrDeliveryStream)}
		}
	}
	return nil
}

func (p *parser) flow(i int, raw json.RawMessage, c *Config) (*Flow, error) {
	at := fmt.Sprintf("flows[%d]", i)
	m, err := p.sub(raw, at)
	if err != nil {
		return nil, err
	}
	f := &Flow{Index: i}
	if f.FilePattern, err = p.str(m, at, "filePattern", ""); err != nil {
		return nil, err
	}
	if f.FilePattern == "" {
		return nil, p.fieldErr(at+".filePattern", "missing: the files to tail, e.g. \"/var/log/app.log*\"")
	}
	if err := checkPattern(f.FilePattern); err != nil {
		return nil, p.fieldErr(at+".filePattern", fmt.Sprintf("%q: %v", f.FilePattern, err))
	}
	if f.KinesisStream, err = p.str(m, at, "kinesisStream", ""); err != nil {
		return nil, err
	}
	if f.DeliveryStream, err = p.str(m, at, "deliveryStream", ""); err != nil {
		return nil, err
	}
	switch {
	case f.KinesisStream == "" && f.DeliveryStream == "":
		return nil, p.fieldErr(at, "names no destination: set kinesisStream (or deliveryStream)")
	case f.KinesisStream != "" && f.DeliveryStream != "":
		return nil, p.fieldErr(at, "sets both kinesisStream and deliveryStream: a flow has one destination")
	}
	if f.KinesisStream != "" && !validStreamName(f.KinesisStream) {
		return nil, p.fieldErr(at+".kinesisStream", fmt.Sprintf("%q is not a stream name (1-128 of a-z, A-Z, 0-9, _ . -)", f.KinesisStream))
	}
	if f.PartitionKey, err = p.enum(m, at, "partitionKeyOption", "RANDOM", "RANDOM", "DETERMINISTIC"); err != nil {
		return nil, err
	}
	pos, err := p.enum(m, at, "initialPosition", "END_OF_FILE", "START_OF_FILE", "END_OF_FILE")
	if err != nil {
		return nil, err
	}
	f.StartAtEnd = pos == "END_OF_FILE"
	pat, err := p.str(m, at, "multiLineStartPattern", "")
	if err != nil {
		return nil, err
	}
	if pat != "" {
		_, err := regexp.Compile(pat)
		re, err2 := regexp.Compile(`^(?:` + pat + `)`)
		if err == nil {
			err = err2
		}
		if err != nil {
			return nil, p.fieldErr(at+".multiLineStartPattern", fmt.Sprintf("%q: %v (runnel uses Go's RE2 syntax: no look-arounds or back-references)", pat, unwrapRegexpErr(err)))
		}
		f.MultiLineStart = re
	}
	n, err := p.integer(m, at, "skipHeaderLines", 0, 0, 1<<31-1)
	if err != nil {
		return nil, err
	}
	f.SkipHeaderLines = int(n)
	term, err := p.str(m, at, "truncatedRecordTerminator", "\n")
	if err != nil {
		return nil, err
	}
	if term == "" || len(term) >= MaxRecordBytes {
		return nil, p.fieldErr(at+".truncatedRecordTerminator", "must be at least one byte and shorter than the record size limit")
	}
	f.Terminator = []byte(term)
	ms, err := p.integer(m, at, "maxBufferAgeMillis", int64(defaultBufferAge/time.Millisecond), int64(minBufferAge/time.Millisecond), int64(maxBufferAge/time.Millisecond))
	if err != nil {
		return nil, err
	}
	f.MaxBufferAge = time.Duration(ms) * time.Millisecond
	n, err = p.integer(m, at, "maxBufferSizeRecords", maxBatchRecords, 1, maxBatchRecords)
	if err != nil {
		return nil, err
	}
	f.MaxBufferRecords = int(n)
	n, err = p.integer(m, at, "maxBufferSizeBytes", maxBatchBytes, 1, maxBatchBytes)
	if err != nil {
		return nil, err
	}
	f.MaxBufferBytes = int(n)
	ms, err = p.integer(m, at, "retryInitialBackoffMillis", 100, 1, 1<<31-1)
	if err != nil {
		return nil, err
	}
	f.RetryInitialBackoff = time.Duration(ms) * time.Millisecond
	ms, err = p.integer(m, at, "retryMaxBackoffMillis", 10_000, 1, 1<<31-1)
	if err != nil {
		return nil, err
	}
	f.RetryMaxBackoff = max(time.Duration(ms)*time.Millisecond, f.RetryInitialBackoff)
	ms, err = p.integer(m, at, "minTimeBetweenFilePollsMillis", 100, 1, 1<<31-1)
	if err != nil {
		return nil, err
	}
	f.PollInterval = time.Duration(ms) * time.Millisecond
	if raw, ok := m["dataProcessingOptions"]; ok {
		var opts []json.RawMessage
		if err := json.Unmarshal(raw, &opts); err != nil {
			return nil, p.fieldErr(at+".dataProcessingOptions", "must be a list of objects, each with an optionName")
		}
		for j, o := range opts {
			pr, err := p.processor(fmt.Sprintf("%s.dataProcessingOptions[%d]", at, j), o)
			if err != nil {
				return nil, err
			}
			f.Processors = append(f.Processors, pr)
		}
	}
	known := []string{"filePattern", "kinesisStream", "deliveryStream", "partitionKeyOption", "initialPosition",
		"multiLineStartPattern", "skipHeaderLines", "truncatedRecordTerminator", "maxBufferAgeMillis",
		"maxBufferSizeRecords", "maxBufferSizeBytes", "retryInitialBackoffMillis", "retryMaxBackoffMillis",
		"minTimeBetweenFilePollsMillis", "dataProcessingOptions"}
	for _, k := range sortedKeys(m) {
		switch {
		case slices.Contains(known, k):
		case slices.Contains(ignoredFlowKeys, k):
			c.Ignored = append(c.Ignored, at+"."+k)
		default:
			c.Unknown = append(c.Unknown, at+"."+k)
		}
	}
	return f, nil
}

// checkPattern accepts what the Kinesis Agent accepts: an absolute path
// whose file name may hold wildcards but whose directory may not.
func checkPattern(pat string) error {
	if !filepath.IsAbs(pat) {
		return errors.New("must be an absolute path")
	}
	if strings.HasSuffix(pat, "/") {
		return errors.New("names a directory: end it with a file name (or a pattern such as *.log)")
	}
	dir, name := filepath.Split(pat)
	if strings.ContainsAny(dir, "*?[") {
		return errors.New("wildcards are allowed only in the file name, not in the directory")
	}
	if _, err := filepath.Match(name, ""); err != nil {
		return fmt.Errorf("bad wildcard in the file name: %v", err)
	}
	return nil
}

var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

func validStreamName(s string) bool { return streamNameRE.MatchString(s) }

// normalizeEndpoint gives a scheme to an endpoint written as a host, as
// the Kinesis Agent's SDK does (https).
func normalizeEndpoint(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("%q is not an http or https URL", s)
	}
	return s, nil
}

var regionRE = regexp.MustCompile(`^kinesis(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com`)

// regionOf reads the region out of an AWS endpoint's host name.
func regionOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	if m := regionRE.FindStringSubmatch(u.Hostname()); m != nil {
		return m[1]
	}
	return ""
}

func unwrapRegexpErr(err error) string {
	var re *syntax.Error
	if errors.As(err, &re) {
		return string(re.Code) + ": " + re.Expr
	}
	return err.Error()
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// parser reads values out of the configuration's JSON objects and names
// the file and field in every error.
type parser struct {
	file string
	data []byte
}

func (p *parser) fieldErr(field, msg string) error {
	return &ConfigError{File: p.file, Field: field, Msg: msg}
}

// object parses the whole file: a JSON object, with syntax errors placed
// by line and column.
func (p *parser) object(data []byte) (map[string]json.RawMessage, error) {
	p.data = data
	var m map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	err := dec.Decode(&m)
	if err == nil {
		off := int(dec.InputOffset())
		if rest := bytes.TrimLeft(data[off:], " \t\r\n"); len(rest) > 0 {
			line, col := lineCol(data, len(data)-len(rest))
			return nil, &ConfigError{File: p.file, Line: line, Column: col, Msg: "unexpected data after the configuration's closing }"}
		}
		if m == nil {
			return nil, &ConfigError{File: p.file, Msg: "is null: it must be a JSON object"}
		}
		return m, nil
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		line, col := lineCol(data, int(se.Offset)-1)
		return nil, &ConfigError{File: p.file, Line: line, Column: col, Msg: "invalid JSON: " + se.Error()}
	case errors.As(err, &te):
		return nil, &ConfigError{File: p.file, Msg: "must be a JSON object, not " + te.Value}
	case errors.Is(err, io.EOF):
		return nil, &ConfigError{File: p.file, Msg: "is empty: it must be a JSON object"}
	}
	line, col := lineCol(data, len(data))
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, &ConfigError{File: p.file, Line: line, Column: col, Msg: "invalid JSON: the file ends inside a value (a ] or } missing?)"}
	}
	return nil, &ConfigError{File: p.file, Line: line, Column: col, Msg: "invalid JSON: " + err.Error()}
}

func (p *parser) sub(raw json.RawMessage, at string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, p.fieldErr(at, "must be a JSON object")
	}
	return m, nil
}

func join(at, key string) string {
	if at == "" {
		return key
	}
	return at + "." + key
}

func (p *parser) str(m map[string]json.RawMessage, at, key, def string) (string, error) {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return def, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", p.fieldErr(join(at, key), "must be a string, not "+kindOf(raw))
	}
	return s, nil
}

func (p *parser) strList(m map[string]json.RawMessage, at, key string) ([]string, bool, error) {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return nil, false, nil
	}
	var s []string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, true, p.fieldErr(join(at, key), "must be a list of strings")
	}
	return s, true, nil
}

// integer reads a number (or, as the Kinesis Agent allows, a string
// holding one) in [lo, hi].
func (p *parser) integer(m map[string]json.RawMessage, at, key string, def, lo, hi int64) (int64, error) {
	raw, ok := m[key]
	if !ok || string(raw) == "null" {
		return def, nil
	}
	text := string(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		text = strings.TrimSpace(s)
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return 0, p.fieldErr(join(at, key), fmt.Sprintf("must be a whole number, not %s", raw))
	}
	if n < lo || n > hi {
		return 0, p.fieldErr(join(at, key), fmt.Sprintf("%d is out of range: must be between %d and %d", n, lo, hi))
	}
	return n, nil
}

func (p *parser) enum(m map[string]json.RawMessage, at, key, def string, values ...string) (string, error) {
	s, err := p.str(m, at, key, def)
	if err != nil {
		return "", err
	}
	if !slices.Contains(values, s) {
		return "", p.fieldErr(join(at, key), fmt.Sprintf("%q is not one of %s", s, strings.Join(values, ", ")))
	}
	return s, nil
}

func kindOf(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// lineCol turns a byte offset into a 1-based line and column.
func lineCol(data []byte, off int) (int, int) {
	off = min(max(off, 0), len(data))
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(data[:off], '\n')
	return line, col
}
