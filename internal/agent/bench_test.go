package agent

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// discardSink acknowledges every record at once.
type discardSink struct{}

func (discardSink) Put(_ context.Context, _ string, _ []byte, done func(error)) { done(nil) }
func (discardSink) Flush(context.Context) error                                 { return nil }
func (discardSink) Close(context.Context) error                                 { return nil }

// BenchmarkParse measures the agent's own work per line, without sending:
// splitting 200-byte lines, processing, partition keys and progress.
func BenchmarkParse(b *testing.B) {
	var sb strings.Builder
	for i := range 5000 {
		s := fmt.Sprintf(`10.0.%d.%d - - [06/Dec/2026:05:41:07 +0000] "GET /item/%d HTTP/1.1" 200 %d `, i%256, i%200, i, i)
		sb.WriteString(s + strings.Repeat("x", 199-len(s)) + "\n")
	}
	chunk := []byte(sb.String())
	for _, c := range []struct{ name, extra string }{
		{"raw", ``},
		{"deterministic", `, "partitionKeyOption": "DETERMINISTIC"`},
		{"csvtojson", `, "dataProcessingOptions": [{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b", "c", "d"], "delimiter": " "}]`},
		{"logtojson", `, "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG"}]`},
	} {
		b.Run(c.name, func(b *testing.B) {
			cfg, err := ParseConfig("agent.json", []byte(`{"flows": [{"filePattern": "/x/a.log", "kinesisStream": "s"`+c.extra+`}]}`))
			if err != nil {
				b.Fatal(err)
			}
			r := newFlowRunner(cfg.Flows[0], discardSink{}, slogDiscard(), nil, true)
			src := newSource(fileKey{}, "/x/a.log", fingerprint{}, 0)
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			for b.Loop() {
				if n := r.parse(context.Background(), src, chunk, false, false); n != len(chunk) {
					b.Fatalf("parsed %d of %d", n, len(chunk))
				}
				src.readOff += int64(len(chunk))
			}
			b.ReportMetric(float64(b.N*5000)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
