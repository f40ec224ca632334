package delivery

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func sp(s string) *string { return &s }

// TestPrefixExamples runs the examples of Firehose's "Custom Prefixes for
// Amazon S3 Objects" page. Where the page's outputs contradict its own
// rules (it drops the hour a prefix without a timestamp gets, and shows
// dates other than the instant it names), the rules win; see
// docs/COMPATIBILITY.md.
func TestPrefixExamples(t *testing.T) {
	random := func(n int) string { return fmt.Sprintf("rand%07d", n) }
	for _, tc := range []struct {
		name                string
		prefix, errorPrefix *string
		at                  time.Time
		want, wantError     string
		invalid             string
	}{
		{
			name:        "unspecified prefix",
			errorPrefix: sp("myFirehoseFailures/!{firehose:error-output-type}/"),
			at:          time.Date(2018, 8, 27, 10, 30, 0, 0, time.UTC),
			want:        "2018/08/27/10/",
			wantError:   "myFirehoseFailures/processing-failed/2018/08/27/10/",
		},
		{
			name:    "expressions need an error prefix",
			prefix:  sp("!{timestamp:yyyy/MM/dd}"),
			invalid: "ErrorOutputPrefix can't be null when Prefix contains expressions.",
		},
		{
			name:        "timestamps and a random string",
			prefix:      sp("myFirehose/DeliveredYear=!{timestamp:yyyy}/anyMonth/rand=!{firehose:random-string}"),
			errorPrefix: sp("myFirehoseFailures/!{firehose:error-output-type}/!{timestamp:yyyy}/anyMonth/!{timestamp:dd}"),
			at:          time.Date(2018, 8, 10, 10, 30, 0, 0, time.UTC),
			want:        "myFirehose/DeliveredYear=2018/anyMonth/rand=rand0000000",
			wantError:   "myFirehoseFailures/processing-failed/2018/anyMonth/10",
		},
		{
			name:        "quoted literals",
			prefix:      sp("myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/"),
			errorPrefix: sp("myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}"),
			at:          time.Date(2018, 7, 6, 23, 30, 0, 0, time.UTC),
			want:        "myPrefix/year=2018/month=07/day=06/hour=23/",
			wantError:   "myErrorPrefix/year=2018/month=07/day=06/hour=23/processing-failed",
		},
		{
			name:      "plain prefix",
			prefix:    sp("myFirehosePrefix/"),
			at:        time.Date(2018, 8, 27, 10, 30, 0, 0, time.UTC),
			want:      "myFirehosePrefix/2018/08/27/10/",
			wantError: "myFirehosePrefix/processing-failed/2018/08/27/10/",
		},
		{
			name:      "plain prefix without a slash",
			prefix:    sp("myFirehosePrefix"),
			at:        time.Date(2018, 8, 27, 10, 30, 0, 0, time.UTC),
			want:      "myFirehosePrefix2018/08/27/10/",
			wantError: "myFirehosePrefixprocessing-failed/2018/08/27/10/",
		},
		{
			name:    "error type only in the error prefix",
			prefix:  sp("a/!{firehose:error-output-type}/"),
			invalid: "Prefix is invalid: !{firehose:error-output-type} may appear only in ErrorOutputPrefix.",
		},
		{
			name:        "error prefix expressions need the error type",
			prefix:      sp("a/"),
			errorPrefix: sp("e/!{timestamp:yyyy}/"),
			invalid:     "ErrorOutputPrefix must contain !{firehose:error-output-type} when it contains expressions.",
		},
		{
			name:    "unknown namespace",
			prefix:  sp("a/!{lambda:x}/"),
			invalid: `Prefix is invalid: the namespace "lambda" is not supported: use timestamp, firehose or partitionKeyFromQuery.`,
		},
		{
			name:    "unclosed expression",
			prefix:  sp("a/!{timestamp:yyyy"),
			invalid: `Prefix is invalid: the expression at "!{timestamp:yyyy" has no closing '}'.`,
		},
		{
			name:        "unknown pattern letter",
			prefix:      sp("a/!{timestamp:yyyyQ}/"),
			errorPrefix: sp("e/!{firehose:error-output-type}/"),
			invalid:     `Prefix is invalid: !{timestamp:yyyyQ}: the pattern letter 'Q' is not supported.`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := compilePrefixes(tc.prefix, tc.errorPrefix, false)
			if tc.invalid != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != CodeInvalidArgument || e.Message != tc.invalid {
					t.Fatalf("got %v, want InvalidArgumentException %q", err, tc.invalid)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			v := prefixValues{At: tc.at, Random: random, ErrorType: "processing-failed"}
			got, err := p.prefix.eval(v)
			if err != nil || got != tc.want {
				t.Errorf("prefix = %q, %v; want %q", got, err, tc.want)
			}
			got, err = p.errorPrefix.eval(v)
			if err != nil || got != tc.wantError {
				t.Errorf("error prefix = %q, %v; want %q", got, err, tc.wantError)
			}
		})
	}
}

func TestJavaPatterns(t *testing.T) {
	at := time.Date(2026, 2, 3, 4, 5, 6, 789000000, time.UTC)
	for pattern, want := range map[string]string{
		"yyyy-MM-dd HH:mm:ss.SSS": "2026-02-03 04:05:06.789",
		"yy/M/d/H":                "26/2/3/4",
		"MMM MMMM EEE EEEE":       "Feb February Tue Tuesday",
		"D DDD hh a":              "34 034 04 AM",
		"'it''s' yyyy":            "it's 2026",
		"''":                      "'",
		"'quoted yyyy'":           "quoted yyyy",
	} {
		toks, err := parseJavaPattern(pattern)
		if err != nil {
			t.Fatalf("%q: %v", pattern, err)
		}
		var b strings.Builder
		formatJava(&b, toks, at)
		if b.String() != want {
			t.Errorf("%q = %q, want %q", pattern, b.String(), want)
		}
	}
	for _, bad := range []string{"'open", "yyyy[MM]", "Q"} {
		if _, err := parseJavaPattern(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestEvaluatedPrefixLimit(t *testing.T) {
	p, err := compilePrefixes(sp(strings.Repeat("a", 500)+"/"), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.prefix.eval(prefixValues{At: time.Now()}); err == nil {
		t.Fatal("a prefix of more than 512 characters evaluated")
	}
}
