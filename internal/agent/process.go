package agent

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Processor is one of a flow's dataProcessingOptions. Process gets a
// record as read from the file (its last line's newline included) and
// returns the record to send, or false to drop it. The returned slice may
// alias rec; Process does not keep either.
type Processor interface {
	Process(rec []byte) ([]byte, bool)
}

func (p *parser) processor(at string, raw json.RawMessage) (Processor, error) {
	m, err := p.sub(raw, at)
	if err != nil {
		return nil, err
	}
	name, err := p.str(m, at, "optionName", "")
	if err != nil {
		return nil, err
	}
	if f, err := p.enum(m, at, "jsonFormat", "COMPACT", "COMPACT", "PRETTYPRINT"); err != nil {
		return nil, err
	} else if f == "PRETTYPRINT" {
		return nil, p.fieldErr(at+".jsonFormat", "PRETTYPRINT is not supported: runnel writes COMPACT JSON, one record a line")
	}
	switch name {
	case "":
		return nil, p.fieldErr(at+".optionName", "missing: one of SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA, ADDBRACKETS")
	case "SINGLELINE":
		opts, _, err := p.strList(m, at, "parseOptions")
		if err != nil {
			return nil, err
		}
		for _, o := range opts {
			if o != "NO_TRIM" && o != "ESCAPE_NEW_LINE" {
				return nil, p.fieldErr(at+".parseOptions", fmt.Sprintf("%q is not one of NO_TRIM, ESCAPE_NEW_LINE", o))
			}
		}
		return &singleLine{trim: !slices.Contains(opts, "NO_TRIM"), escape: slices.Contains(opts, "ESCAPE_NEW_LINE")}, nil
	case "CSVTOJSON":
		fields, ok, err := p.strList(m, at, "customFieldNames")
		if err != nil {
			return nil, err
		}
		if !ok || len(fields) == 0 {
			return nil, p.fieldErr(at+".customFieldNames", "missing: CSVTOJSON needs the field names, e.g. [\"time\", \"level\", \"message\"]")
		}
		delim, err := p.str(m, at, "delimiter", ",")
		if err != nil {
			return nil, err
		}
		re, err := regexp.Compile(delim)
		if err != nil || delim == "" {
			return nil, p.fieldErr(at+".delimiter", fmt.Sprintf("%q is not a usable delimiter (a regular expression, as in the Kinesis Agent: \"\\\\t\" for tab, \"\\\\|\" for |)", delim))
		}
		return &csvToJSON{fields: fields, delim: re}, nil
	case "LOGTOJSON":
		return p.logToJSON(at, m)
	case "ADDMETADATA":
		a := &addMetadata{metadata: []byte("null"), now: time.Now}
		if raw, ok := m["metadata"]; ok {
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return nil, p.fieldErr(at+".metadata", "is not JSON")
			}
			a.metadata = b.Bytes()
		}
		if raw, ok := m["timestamp"]; ok {
			switch strings.Trim(string(raw), `"`) {
			case "true", "TRUE", "True":
				a.timestamp = true
			case "false", "FALSE", "False", "null":
			default:
				return nil, p.fieldErr(at+".timestamp", fmt.Sprintf("must be \"true\" or \"false\", not %s", raw))
			}
		}
		return a, nil
	case "ADDBRACKETS":
		return brackets{}, nil
	case "ADDEC2METADATA", "USINGPLUGGIN":
		return nil, p.fieldErr(at+".optionName", fmt.Sprintf("%s is not supported by runnel agent (it needs EC2 instance metadata or a Java class)", name))
	}
	return nil, p.fieldErr(at+".optionName", fmt.Sprintf("%q is not one of SINGLELINE, CSVTOJSON, LOGTOJSON, ADDMETADATA, ADDBRACKETS", name))
}

// stripNewline removes the record's last newline, which the JSON
// converters put back after the object, as the Kinesis Agent's do.
func stripNewline(rec []byte) []byte {
	if n := len(rec); n > 0 && rec[n-1] == '\n' {
		return rec[:n-1]
	}
	return rec
}

// text is the record as the Kinesis Agent's Java string of it: invalid
// UTF-8 becomes U+FFFD.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// singleLine is SINGLELINE: the lines of a multi-line record joined into
// one, trimmed unless NO_TRIM, joined by a literal \\n with ESCAPE_NEW_LINE
// (the Kinesis Agent's separator there is those three characters).
type singleLine struct{ trim, escape bool }

func (s *singleLine) Process(rec []byte) ([]byte, bool) {
	lines := strings.Split(text(rec), "\n")
	for len(lines) > 0 && lines[len(lines)-1] == "" { // Java's split drops trailing empty strings
		lines = lines[:len(lines)-1]
	}
	if s.trim {
		for i, l := range lines {
			lines[i] = strings.TrimFunc(l, func(r rune) bool { return r <= ' ' })
		}
	}
	sep := ""
	if s.escape {
		sep = `\\n`
	}
	return []byte(strings.Join(lines, sep) + "\n"), true
}

// csvToJSON is CSVTOJSON: the record split by the delimiter (a regular
// expression, as Java's String.split takes it) into the named fields;
// missing fields are null, extra columns dropped.
type csvToJSON struct {
	fields []string
	delim  *regexp.Regexp
}

func (c *csvToJSON) Process(rec []byte) ([]byte, bool) {
	s := text(stripNewline(rec))
	var cols []string
	if s == "" {
		cols = []string{""}
	} else {
		cols = c.delim.Split(s, -1)
		for len(cols) > 0 && cols[len(cols)-1] == "" {
			cols = cols[:len(cols)-1]
		}
	}
	out := make([]byte, 0, len(rec)+16*len(c.fields))
	out = append(out, '{')
	for i, f := range c.fields {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, f)
		out = append(out, ':')
		if i < len(cols) {
			out = appendJSONString(out, cols[i])
		} else {
			out = append(out, "null"...)
		}
	}
	return append(out, '}', '\n'), true
}

// The Kinesis Agent's log patterns (PatternConstants), in Go's syntax.
const (
	patINT        = `(?:[+-]?(?:[0-9]+))`
	patPOSINT     = `(?:[1-9][0-9]*)`
	patNONNEGINT  = `(?:[0-9]+)`
	patNOQUOTE    = `[^"]+`
	patIP         = `(?:[\d\.]+)`
	patHOSTNAME   = `(?:[\w\-]+)(?:\.(?:[\w\-]+))*(?:\.?|\b)`
	patIPORHOST   = `(?:` + patHOSTNAME + `|` + patIP + `)`
	patURIHOST    = `(?:` + patIPORHOST + `(?::` + patPOSINT + `)?)`
	patUSER       = `(?:[a-zA-Z0-9._-]+)`
	patMONTHDAY   = `(?:(?:0[1-9])|(?:[12][0-9])|(?:3[01])|[1-9])`
	patDAY        = `(?:Mon(?:day)?|Tue(?:sday)?|Wed(?:nesday)?|Thu(?:rsday)?|Fri(?:day)?|Sat(?:urday)?|Sun(?:day)?)`
	patMONTH      = `\b(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b`
	patYEAR       = `(?:[1-9]\d*)`
	patHOUR       = `(?:2[0123]|[01]?[0-9])`
	patMINUTE     = `(?:[0-5][0-9])`
	patSECOND     = `(?:(?:[0-5]?[0-9]|60)(?:[:\.,][0-9]+)?)`
	patTIME       = `(?:` + patHOUR + `:` + patMINUTE + `:` + patSECOND + `)`
	patHTTPDATE   = `(?:` + patMONTHDAY + `/` + patMONTH + `/` + patYEAR + `:` + patTIME + `\s` + patINT + `)`
	patERRORTIME  = `(?:` + patDAY + `\s+` + patMONTH + `\s+` + patMONTHDAY + `\s+` + patTIME + `\s+` + patYEAR + `)`
	patSYSLOGTIME = `(?:` + patMONTH + `\s+` + patMONTHDAY + `\s+` + patTIME + `)`
	patRFC3339    = `(?:\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?)(?:Z|(?:[-+]\d{2}:\d{2}))`
	patFACILITY   = `<` + patNONNEGINT + `.` + patNONNEGINT + `>`
	patSYSLOGPROG = `([\w\._/%-]+)(?:\[(` + patPOSINT + `)\])?`

	patCommonLog = `^(` + patIPORHOST + `) (` + patUSER + `) (` + patUSER + `) \[(` + patHTTPDATE + `)\] "(` + patNOQUOTE + `)" (` + patINT + `|\-) (` + patINT + `|\-)`
	patCombined  = patCommonLog + ` "(` + patNOQUOTE + `)" "(` + patNOQUOTE + `)"`
	patErrorLog  = `^\[(` + patERRORTIME + `)\] \[(?:(\w+):)?(\w+)\] \[pid (` + patNONNEGINT + `)(?::tid (` + patNONNEGINT + `))?\] \[client (` + patURIHOST + `)\] (.*)`
	patSyslog    = `^(` + patSYSLOGTIME + `) (?:` + patFACILITY + ` )?(` + patUSER + `) ` + patSYSLOGPROG + `: (.*)`
	patRFCSyslog = `^(` + patRFC3339 + `) (?:` + patFACILITY + ` )?(` + patUSER + `) ` + patSYSLOGPROG + `: (.*)`
)

var logFormats = map[string]struct {
	pattern string
	fields  []string
	apache  bool // "-" stands for a missing value
}{
	"COMMONAPACHELOG":   {patCommonLog + `.*`, []string{"host", "ident", "authuser", "datetime", "request", "response", "bytes"}, true},
	"COMBINEDAPACHELOG": {patCombined + `.*`, []string{"host", "ident", "authuser", "datetime", "request", "response", "bytes", "referer", "agent"}, true},
	"APACHEERRORLOG":    {patErrorLog, []string{"timestamp", "module", "severity", "processid", "threadid", "client", "message"}, true},
	"SYSLOG":            {patSyslog, []string{"timestamp", "hostname", "program", "processid", "message"}, false},
	"RFC3339SYSLOG":     {patRFCSyslog, []string{"timestamp", "hostname", "program", "processid", "message"}, false},
}

func (p *parser) logToJSON(at string, m map[string]json.RawMessage) (Processor, error) {
	format, err := p.str(m, at, "logFormat", "")
	if err != nil {
		return nil, err
	}
	def, ok := logFormats[format]
	if !ok {
		return nil, p.fieldErr(at+".logFormat", fmt.Sprintf("%q is not one of COMMONAPACHELOG, COMBINEDAPACHELOG, APACHEERRORLOG, SYSLOG, RFC3339SYSLOG", format))
	}
	fields, haveFields, err := p.strList(m, at, "customFieldNames")
	if err != nil {
		return nil, err
	}
	match, err := p.str(m, at, "matchPattern", "")
	if err != nil {
		return nil, err
	}
	l := &logToJSON{dashIsNull: def.apache}
	if match != "" {
		if !haveFields {
			return nil, p.fieldErr(at+".customFieldNames", "missing: customFieldNames must be given with matchPattern, one name per group")
		}
		_, err := regexp.Compile(match)
		re, err2 := regexp.Compile(`^(?:` + match + `)$`)
		if err == nil {
			err = err2
		}
		if err != nil {
			return nil, p.fieldErr(at+".matchPattern", fmt.Sprintf("%q: %v (runnel uses Go's RE2 syntax: no look-arounds or back-references)", match, unwrapRegexpErr(err)))
		}
		if re.NumSubexp() != len(fields) {
			return nil, p.fieldErr(at+".customFieldNames", fmt.Sprintf("names %d fields but matchPattern has %d groups", len(fields), re.NumSubexp()))
		}
		l.re, l.fields = re, fields
		return l, nil
	}
	l.re, l.fields = regexp.MustCompile(`^(?:`+def.pattern+`)$`), def.fields
	if haveFields {
		if len(fields) != len(def.fields) {
			return nil, p.fieldErr(at+".customFieldNames", fmt.Sprintf("names %d fields but %s has %d (%s); give matchPattern to parse other fields", len(fields), format, len(def.fields), strings.Join(def.fields, ", ")))
		}
		l.fields = fields
	}
	return l, nil
}

// logToJSON is LOGTOJSON: the record matched whole against a log format's
// pattern, each group a field; a record that does not match is dropped.
type logToJSON struct {
	re         *regexp.Regexp
	fields     []string
	dashIsNull bool
}

func (l *logToJSON) Process(rec []byte) ([]byte, bool) {
	s := text(stripNewline(rec))
	idx := l.re.FindStringSubmatchIndex(s)
	if idx == nil {
		return nil, false
	}
	out := make([]byte, 0, len(s)+16*len(l.fields))
	out = append(out, '{')
	for i, f := range l.fields {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, f)
		out = append(out, ':')
		lo, hi := idx[2*i+2], idx[2*i+3]
		if lo < 0 || (l.dashIsNull && s[lo:hi] == "-") {
			out = append(out, "null"...)
		} else {
			out = appendJSONString(out, s[lo:hi])
		}
	}
	return append(out, '}', '\n'), true
}

// addMetadata is ADDMETADATA: {"ts":..., "metadata":..., "data":"<record>"}.
type addMetadata struct {
	metadata  []byte // compact JSON
	timestamp bool
	now       func() time.Time
}

func (a *addMetadata) Process(rec []byte) ([]byte, bool) {
	out := make([]byte, 0, len(rec)+len(a.metadata)+64)
	out = append(out, '{')
	if a.timestamp {
		out = append(out, `"ts":"`...)
		out = a.now().UTC().AppendFormat(out, "2006-01-02T15:04:05.000Z")
		out = append(out, `",`...)
	}
	out = append(out, `"metadata":`...)
	out = append(out, a.metadata...)
	out = append(out, `,"data":`...)
	out = appendJSONString(out, text(stripNewline(rec)))
	return append(out, '}', '\n'), true
}

// brackets is ADDBRACKETS: the record between { and }.
type brackets struct{}

func (brackets) Process(rec []byte) ([]byte, bool) {
	out := make([]byte, 0, len(rec)+2)
	out = append(out, '{')
	out = append(out, text(rec)...)
	return append(out, '}'), true
}

const hexUpper = "0123456789ABCDEF"

// appendJSONString writes s as a JSON string the way the Kinesis Agent's
// JSON library (Jackson) does: only quote, backslash and control
// characters escaped, short forms for \b \t \n \f \r, \u00XX (upper-case
// hex) for the others; everything else, <, > and & included, as is.
func appendJSONString(out []byte, s string) []byte {
	out = append(out, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		out = append(out, s[start:i]...)
		switch c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '\b':
			out = append(out, '\\', 'b')
		case '\t':
			out = append(out, '\\', 't')
		case '\n':
			out = append(out, '\\', 'n')
		case '\f':
			out = append(out, '\\', 'f')
		case '\r':
			out = append(out, '\\', 'r')
		default:
			out = append(out, '\\', 'u', '0', '0', hexUpper[c>>4], hexUpper[c&0xF])
		}
		start = i + 1
	}
	out = append(out, s[start:]...)
	return append(out, '"')
}
