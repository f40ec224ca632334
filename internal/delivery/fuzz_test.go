package delivery

import (
	"testing"
	"time"
)

// FuzzPrefix feeds untrusted Prefix and ErrorOutputPrefix values to the
// parser and evaluator: they must be refused or evaluate, never panic.
func FuzzPrefix(f *testing.F) {
	for _, seed := range []string{
		"", "logs/", "!{timestamp:yyyy/MM/dd/HH/}", "a/!{firehose:random-string}/", "!{firehose:error-output-type}",
		"!{timestamp:'year='yyyy'/'}", "!{timestamp:''}", "!{timestamp:yyyy", "!{}", "!{:}", "!{x:y}", "!{partitionKeyFromQuery:k}",
		"!{timestamp:SSSSSSSSSSSS}", "!{timestamp:'unterminated}", "!{!{timestamp:y}}", "a}b!{",
	} {
		f.Add(seed, seed)
	}
	f.Fuzz(func(t *testing.T, prefix, errorPrefix string) {
		p, err := compilePrefixes(&prefix, &errorPrefix, false)
		if err != nil {
			return
		}
		v := prefixValues{At: time.Date(2026, 12, 6, 5, 31, 2, 123456789, time.UTC), Random: func(n int) string { return "0123456789a" }, ErrorType: "processing-failed"}
		if _, err := p.prefix.eval(v); err != nil && len(prefix) < 100 {
			t.Fatalf("prefix %q compiled but does not evaluate: %v", prefix, err)
		}
		_, _ = p.errorPrefix.eval(v)
	})
}
