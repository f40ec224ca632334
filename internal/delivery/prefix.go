package delivery

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Prefixes: the expressions of Firehose's "Custom Prefixes for Amazon S3
// Objects" page. A prefix is literal text and !{namespace:value}
// expressions: !{timestamp:<Java DateTimeFormatter pattern>},
// !{firehose:random-string}, !{firehose:error-output-type} (only in the
// error prefix) and !{partitionKeyFromQuery:<key>} (with dynamic
// partitioning).

// maxEvaluatedPrefix is the longest a prefix may be once evaluated.
const maxEvaluatedPrefix = 512

// defaultTimePrefix is what a prefix without a timestamp expression gets
// appended.
const defaultTimePrefix = "!{timestamp:yyyy/MM/dd/HH/}"

type partKind int

const (
	partLiteral partKind = iota
	partTimestamp
	partRandom
	partErrorType
	partQueryKey
)

type prefixPart struct {
	kind partKind
	lit  string    // partLiteral: the text; partQueryKey: the key
	ts   []tsToken // partTimestamp
}

// prefixTemplate is a parsed prefix, ready to evaluate.
type prefixTemplate struct {
	parts     []prefixPart
	hasTime   bool
	hasExpr   bool
	errorType bool
	keys      []string // partitionKeyFromQuery keys, in order of appearance
}

// parsePrefix parses s. errorPrefix allows !{firehose:error-output-type}.
func parsePrefix(s string, errorPrefix bool) (*prefixTemplate, error) {
	t := &prefixTemplate{}
	rest := s
	for rest != "" {
		i := strings.Index(rest, "!{")
		if i < 0 {
			t.parts = append(t.parts, prefixPart{kind: partLiteral, lit: rest})
			break
		}
		if i > 0 {
			t.parts = append(t.parts, prefixPart{kind: partLiteral, lit: rest[:i]})
		}
		end := strings.IndexByte(rest[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("the expression at %q has no closing '}'", rest[i:])
		}
		expr := rest[i+2 : i+end]
		rest = rest[i+end+1:]
		ns, value, ok := strings.Cut(expr, ":")
		if !ok {
			return nil, fmt.Errorf("the expression !{%s} is not of the form !{namespace:value}", expr)
		}
		t.hasExpr = true
		switch ns {
		case "timestamp":
			toks, err := parseJavaPattern(value)
			if err != nil {
				return nil, fmt.Errorf("!{timestamp:%s}: %w", value, err)
			}
			t.parts = append(t.parts, prefixPart{kind: partTimestamp, ts: toks})
			t.hasTime = true
		case "firehose":
			switch value {
			case "random-string":
				t.parts = append(t.parts, prefixPart{kind: partRandom})
			case "error-output-type":
				if !errorPrefix {
					return nil, fmt.Errorf("!{firehose:error-output-type} may appear only in ErrorOutputPrefix")
				}
				t.parts = append(t.parts, prefixPart{kind: partErrorType})
				t.errorType = true
			default:
				return nil, fmt.Errorf("!{firehose:%s} is not supported: use random-string or error-output-type", value)
			}
		case "partitionKeyFromQuery":
			if value == "" {
				return nil, fmt.Errorf("!{partitionKeyFromQuery:} names no key")
			}
			t.parts = append(t.parts, prefixPart{kind: partQueryKey, lit: value})
			t.keys = append(t.keys, value)
		case "partitionKeyFromLambda":
			return nil, fmt.Errorf("!{partitionKeyFromLambda:%s} is not supported: runnel runs no Lambda functions", value)
		default:
			return nil, fmt.Errorf("the namespace %q is not supported: use timestamp, firehose or partitionKeyFromQuery", ns)
		}
	}
	return t, nil
}

// prefixes is a destination's parsed Prefix and ErrorOutputPrefix.
type prefixes struct {
	prefix, errorPrefix *prefixTemplate
}

// compilePrefixes applies the semantic rules of custom prefixes to a
// destination's Prefix and ErrorOutputPrefix (either may be nil) and
// returns the templates to evaluate. dynamic says whether dynamic
// partitioning is on.
func compilePrefixes(prefix, errorPrefix *string, dynamic bool) (prefixes, error) {
	p, e := "", ""
	if prefix != nil {
		p = *prefix
	}
	pt, err := parsePrefix(p, false)
	if err != nil {
		return prefixes{}, errorf(CodeInvalidArgument, "Prefix is invalid: %v.", err)
	}
	if dynamic && len(pt.keys) == 0 && !pt.hasExpr {
		return prefixes{}, errorf(CodeInvalidArgument, "Prefix must use at least one of the partitionKeyFromQuery or timestamp namespaces when dynamic partitioning is enabled.")
	}
	if !dynamic && len(pt.keys) > 0 {
		return prefixes{}, errorf(CodeInvalidArgument, "Prefix uses the partitionKeyFromQuery namespace, which needs dynamic partitioning enabled.")
	}
	if errorPrefix == nil || *errorPrefix == "" {
		if pt.hasExpr {
			return prefixes{}, errorf(CodeInvalidArgument, "ErrorOutputPrefix can't be null when Prefix contains expressions.")
		}
		// <specified-prefix><error-output-type>/YYYY/MM/dd/HH/
		e = p + "!{firehose:error-output-type}/"
	} else {
		e = *errorPrefix
	}
	et, err := parsePrefix(e, true)
	if err != nil {
		return prefixes{}, errorf(CodeInvalidArgument, "ErrorOutputPrefix is invalid: %v.", err)
	}
	if et.hasExpr && !et.errorType {
		return prefixes{}, errorf(CodeInvalidArgument, "ErrorOutputPrefix must contain !{firehose:error-output-type} when it contains expressions.")
	}
	if len(et.keys) > 0 {
		return prefixes{}, errorf(CodeInvalidArgument, "ErrorOutputPrefix can't use the partitionKeyFromQuery namespace.")
	}
	// A prefix without a timestamp expression gets yyyy/MM/dd/HH/ appended.
	if !pt.hasTime {
		pt, _ = parsePrefix(p+defaultTimePrefix, false)
	}
	if !et.hasTime {
		et, _ = parsePrefix(e+defaultTimePrefix, true)
	}
	return prefixes{prefix: pt, errorPrefix: et}, nil
}

// prefixValues are what an evaluation needs besides the template.
type prefixValues struct {
	// At is the instant of every timestamp expression: the arrival of
	// the object's oldest record.
	At time.Time
	// Random returns the n-th random string of the object (11 characters).
	Random func(n int) string
	// ErrorType is error-output-type's value.
	ErrorType string
	// Keys are the partition keys from the query.
	Keys map[string]string
}

// eval evaluates t.
func (t *prefixTemplate) eval(v prefixValues) (string, error) {
	var b strings.Builder
	n := 0
	for _, p := range t.parts {
		switch p.kind {
		case partLiteral:
			b.WriteString(p.lit)
		case partTimestamp:
			formatJava(&b, p.ts, v.At)
		case partRandom:
			b.WriteString(v.Random(n))
			n++
		case partErrorType:
			b.WriteString(v.ErrorType)
		case partQueryKey:
			val, ok := v.Keys[p.lit]
			if !ok {
				return "", fmt.Errorf("the partition key %q has no value", p.lit)
			}
			b.WriteString(val)
		}
	}
	if b.Len() > maxEvaluatedPrefix {
		return "", fmt.Errorf("the evaluated prefix is %d characters long; at most %d are allowed", b.Len(), maxEvaluatedPrefix)
	}
	return b.String(), nil
}

// tsToken is one element of a Java DateTimeFormatter pattern: a letter
// run ("yyyy") or literal text.
type tsToken struct {
	letter byte // 0 for literal text
	count  int
	lit    string
}

// javaLetters are the pattern letters runnel evaluates.
const javaLetters = "yuMdHhmsSDEaLk"

// parseJavaPattern parses the subset of Java's DateTimeFormatter patterns
// that makes sense in an object key: years (y, u), months (M, L), days
// (d, D), weekdays (E), hours (H, h, k), AM/PM (a), minutes (m), seconds
// (s) and fractions (S), with 'quoted' literals (” is a quote). Other
// letters are refused; every other character is literal.
func parseJavaPattern(p string) ([]tsToken, error) {
	var toks []tsToken
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == '\'':
			j := i + 1
			var lit strings.Builder
			for {
				if j >= len(p) {
					return nil, fmt.Errorf("unterminated quote")
				}
				if p[j] == '\'' {
					if j+1 < len(p) && p[j+1] == '\'' {
						lit.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				lit.WriteByte(p[j])
				j++
			}
			if j == i+1 {
				lit.WriteByte('\'') // '' outside quotes: one quote
			}
			toks = append(toks, tsToken{lit: lit.String()})
			i = j + 1
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			if !strings.ContainsRune(javaLetters, rune(c)) {
				return nil, fmt.Errorf("the pattern letter %q is not supported", c)
			}
			j := i
			for j < len(p) && p[j] == c {
				j++
			}
			toks = append(toks, tsToken{letter: c, count: j - i})
			i = j
		case c == '[' || c == ']' || c == '#' || c == '{' || c == '}':
			return nil, fmt.Errorf("the pattern character %q is reserved", c)
		default:
			j := i
			for j < len(p) && p[j] != '\'' && !(p[j] >= 'a' && p[j] <= 'z' || p[j] >= 'A' && p[j] <= 'Z') {
				j++
			}
			toks = append(toks, tsToken{lit: p[i:j]})
			i = j
		}
	}
	return toks, nil
}

func pad(b *strings.Builder, v, width int) {
	s := strconv.Itoa(v)
	for i := len(s); i < width; i++ {
		b.WriteByte('0')
	}
	b.WriteString(s)
}

// formatJava writes t as the tokens say.
func formatJava(b *strings.Builder, toks []tsToken, t time.Time) {
	for _, tk := range toks {
		if tk.letter == 0 {
			b.WriteString(tk.lit)
			continue
		}
		n := tk.count
		switch tk.letter {
		case 'y', 'u':
			if n == 2 {
				pad(b, t.Year()%100, 2)
			} else {
				pad(b, t.Year(), n)
			}
		case 'M', 'L':
			switch {
			case n >= 4:
				b.WriteString(t.Month().String())
			case n == 3:
				b.WriteString(t.Month().String()[:3])
			default:
				pad(b, int(t.Month()), n)
			}
		case 'd':
			pad(b, t.Day(), n)
		case 'D':
			pad(b, t.YearDay(), n)
		case 'E':
			if n >= 4 {
				b.WriteString(t.Weekday().String())
			} else {
				b.WriteString(t.Weekday().String()[:3])
			}
		case 'H':
			pad(b, t.Hour(), n)
		case 'k':
			h := t.Hour()
			if h == 0 {
				h = 24
			}
			pad(b, h, n)
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			pad(b, h, n)
		case 'a':
			if t.Hour() < 12 {
				b.WriteString("AM")
			} else {
				b.WriteString("PM")
			}
		case 'm':
			pad(b, t.Minute(), n)
		case 's':
			pad(b, t.Second(), n)
		case 'S':
			frac := fmt.Sprintf("%09d", t.Nanosecond())
			for len(frac) < n {
				frac += "0"
			}
			b.WriteString(frac[:n])
		}
	}
}
