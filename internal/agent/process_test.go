package agent

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// TestProcessingFixtures runs every case of testdata/processing.json: an
// entry of dataProcessingOptions, a record and what the Kinesis Agent
// makes of it (null: the record is dropped). The cases come from the
// Kinesis Agent's own tests and documentation.
func TestProcessingFixtures(t *testing.T) {
	b, err := os.ReadFile("testdata/processing.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name   string
		Option json.RawMessage
		Input  string
		Output *string
	}
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 12, 6, 5, 41, 7, 30e6, time.UTC)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			conf := `{"flows":[{"filePattern":"/var/log/x.log","kinesisStream":"s","dataProcessingOptions":[` + string(c.Option) + `]}]}`
			cfg, err := ParseConfig("agent.json", []byte(conf))
			if err != nil {
				t.Fatal(err)
			}
			p := cfg.Flows[0].Processors[0]
			if a, ok := p.(*addMetadata); ok {
				a.now = func() time.Time { return clock }
			}
			out, ok := p.Process([]byte(c.Input))
			switch {
			case c.Output == nil && ok:
				t.Fatalf("got %q, want the record dropped", out)
			case c.Output != nil && !ok:
				t.Fatalf("record dropped, want %q", *c.Output)
			case c.Output != nil && string(out) != *c.Output:
				t.Fatalf("got\n%s\nwant\n%s", out, *c.Output)
			}
		})
	}
}

// TestProcessorChain applies options in order, as the Kinesis Agent does:
// SINGLELINE first makes one line of a multi-line record, then CSVTOJSON.
func TestProcessorChain(t *testing.T) {
	cfg, err := ParseConfig("agent.json", []byte(`{"flows":[{"filePattern":"/var/log/x.log","kinesisStream":"s",
		"dataProcessingOptions":[{"optionName":"SINGLELINE"},{"optionName":"CSVTOJSON","customFieldNames":["a","b"]}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("1,\n  2\n")
	for _, p := range cfg.Flows[0].Processors {
		var ok bool
		if data, ok = p.Process(data); !ok {
			t.Fatal("dropped")
		}
	}
	if want := "{\"a\":\"1\",\"b\":\"2\"}\n"; string(data) != want {
		t.Fatalf("got %q, want %q", data, want)
	}
}

func FuzzProcessors(f *testing.F) {
	f.Add([]byte("123.45.67.89 - - [27/Oct/2000:09:27:09 -0400] \"GET / HTTP/1.0\" 200 10450\n"))
	f.Add([]byte("a,b,\"c\"\n\x00\xff\xfe"))
	f.Add([]byte("Mar 12 12:00:08 server2 rcd[308]: x\n"))
	cfg, err := ParseConfig("agent.json", []byte(`{"flows":[{"filePattern":"/var/log/x.log","kinesisStream":"s","dataProcessingOptions":[
		{"optionName":"SINGLELINE"},{"optionName":"CSVTOJSON","customFieldNames":["a","b","c"]},
		{"optionName":"LOGTOJSON","logFormat":"COMBINEDAPACHELOG"},{"optionName":"LOGTOJSON","logFormat":"SYSLOG"},
		{"optionName":"LOGTOJSON","logFormat":"APACHEERRORLOG"},{"optionName":"ADDMETADATA","metadata":{"k":1}}]}]}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		for _, p := range cfg.Flows[0].Processors {
			out, ok := p.Process(rec)
			if !ok {
				continue
			}
			if _, single := p.(*singleLine); !single && !json.Valid(out) {
				t.Fatalf("%T made invalid JSON %q of %q", p, out, rec)
			}
		}
	})
}
