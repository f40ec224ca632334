package agent

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseKinesisAgentExamples reads the Kinesis Agent's own sample
// configurations unchanged.
func TestParseKinesisAgentExamples(t *testing.T) {
	cfg, err := LoadConfig("testdata/kinesis-agent-example.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.KinesisEndpoint != "https://kinesis.us-west-2.amazonaws.com" || cfg.Region != "us-west-2" {
		t.Errorf("endpoint %q region %q", cfg.KinesisEndpoint, cfg.Region)
	}
	if cfg.AccessKeyID != "ACCESSKEY" || cfg.SecretAccessKey != "SECRETKEY" || cfg.CheckpointFile != "/tmp/aws-kinesis-agent-checkpoints/main.log" {
		t.Errorf("keys %q %q checkpoints %q", cfg.AccessKeyID, cfg.SecretAccessKey, cfg.CheckpointFile)
	}
	for _, k := range []string{"cloudwatch.emitMetrics", "cloudwatch.endpoint", "userDefinedCredentialsProvider.classname"} {
		if !slices.Contains(cfg.Ignored, k) {
			t.Errorf("%s not reported as ignored: %v", k, cfg.Ignored)
		}
	}
	if len(cfg.Unknown) != 0 {
		t.Errorf("unknown keys %v", cfg.Unknown)
	}
	if len(cfg.Flows) != 2 {
		t.Fatalf("%d flows", len(cfg.Flows))
	}
	f0, f1 := cfg.Flows[0], cfg.Flows[1]
	if f0.FilePattern != "/tmp/aws-kinesis-agent-test1.log*" || f0.KinesisStream != "aws-kinesis-agent-test1" || !f0.StartAtEnd ||
		f0.PartitionKey != "RANDOM" || f0.MaxBufferAge != time.Minute || f0.MaxBufferRecords != 500 || string(f0.Terminator) != "\n" {
		t.Errorf("flow 0: %+v", f0)
	}
	if c, ok := f0.Processors[0].(*csvToJSON); !ok || c.delim.String() != `\t` || len(c.fields) != 3 {
		t.Errorf("flow 0 processor: %#v", f0.Processors[0])
	}
	if f1.StartAtEnd {
		t.Error("flow 1 starts at the end, want START_OF_FILE")
	}
	if _, ok := f1.Processors[0].(*logToJSON); !ok {
		t.Errorf("flow 1 processor: %#v", f1.Processors[0])
	}

	rel, err := LoadConfig("testdata/kinesis-agent-release.json")
	if err != nil {
		t.Fatal(err)
	}
	if rel.KinesisEndpoint != "" || rel.CheckpointFile != defaultCheckpointFile {
		t.Errorf("release: endpoint %q checkpoints %q", rel.KinesisEndpoint, rel.CheckpointFile)
	}
	err = rel.Validate()
	if !errors.Is(err, ErrDeliveryStream) && !strings.Contains(err.Error(), "flows[1].deliveryStream") {
		t.Fatalf("release config: %v, want flows[1].deliveryStream not supported", err)
	}
	if want := `testdata/kinesis-agent-release.json: flows[1].deliveryStream: "yourdeliverystream": agent: delivery streams (deliveryStream) are not supported yet; use kinesisStream`; err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
}

// TestConfigErrors checks that a bad configuration is refused with the
// file, the field and what to do.
func TestConfigErrors(t *testing.T) {
	flow := func(extra string) string {
		return `{"flows": [{"filePattern": "/var/log/app.log*", "kinesisStream": "logs"` + extra + `}]}`
	}
	cases := []struct {
		name, json, want string
	}{
		{"syntax error", "{\n  \"flows\": [\n    {\"filePattern\": \"/x\",}\n  ]\n}", `agent.json:3:26: invalid JSON: invalid character '}' looking for beginning of object key string`},
		{"truncated", "{\n  \"flows\": [", `agent.json:2:13: invalid JSON: the file ends inside a value (a ] or } missing?)`},
		{"empty", "", `agent.json: is empty: it must be a JSON object`},
		{"not an object", `[1]`, `agent.json: must be a JSON object, not array`},
		{"trailing data", `{"flows":[]} x`, `agent.json:1:14: unexpected data after the configuration's closing }`},
		{"no flows", `{}`, `agent.json: flows: missing`},
		{"empty flows", `{"flows": []}`, `agent.json: flows: is empty`},
		{"flows not a list", `{"flows": {}}`, `agent.json: flows: must be a list of objects`},
		{"endpoint type", `{"kinesis.endpoint": 5, "flows": []}`, `agent.json: kinesis.endpoint: must be a string, not a number`},
		{"bad endpoint", `{"kinesis.endpoint": "ftp://x", "flows": []}`, `agent.json: kinesis.endpoint: "ftp://x" is not an http or https URL`},
		{"half the keys", `{"awsAccessKeyId": "AK", "flows": []}`, `agent.json: awsSecretAccessKey: awsAccessKeyId and awsSecretAccessKey go together`},
		{"no pattern", `{"flows": [{"kinesisStream": "s"}]}`, `agent.json: flows[0].filePattern: missing`},
		{"relative pattern", `{"flows": [{"filePattern": "app.log", "kinesisStream": "s"}]}`, `agent.json: flows[0].filePattern: "app.log": must be an absolute path`},
		{"glob in directory", `{"flows": [{"filePattern": "/var/*/app.log", "kinesisStream": "s"}]}`, `flows[0].filePattern: "/var/*/app.log": wildcards are allowed only in the file name`},
		{"no destination", `{"flows": [{"filePattern": "/var/log/a.log"}]}`, `agent.json: flows[0]: names no destination: set kinesisStream`},
		{"two destinations", flow(`, "deliveryStream": "d"`), `agent.json: flows[0]: sets both kinesisStream and deliveryStream`},
		{"bad stream name", `{"flows": [{"filePattern": "/var/log/a.log", "kinesisStream": "a b"}]}`, `agent.json: flows[0].kinesisStream: "a b" is not a stream name`},
		{"partition key", flow(`, "partitionKeyOption": "HASH"`), `agent.json: flows[0].partitionKeyOption: "HASH" is not one of RANDOM, DETERMINISTIC`},
		{"initial position", flow(`, "initialPosition": "TRIM_HORIZON"`), `agent.json: flows[0].initialPosition: "TRIM_HORIZON" is not one of START_OF_FILE, END_OF_FILE`},
		{"buffer age low", flow(`, "maxBufferAgeMillis": 10`), `agent.json: flows[0].maxBufferAgeMillis: 10 is out of range: must be between 1000 and 900000`},
		{"buffer records", flow(`, "maxBufferSizeRecords": 501`), `agent.json: flows[0].maxBufferSizeRecords: 501 is out of range: must be between 1 and 500`},
		{"buffer bytes", flow(`, "maxBufferSizeBytes": "big"`), `agent.json: flows[0].maxBufferSizeBytes: must be a whole number, not "big"`},
		{"skip header", flow(`, "skipHeaderLines": -1`), `agent.json: flows[0].skipHeaderLines: -1 is out of range`},
		{"terminator", flow(`, "truncatedRecordTerminator": ""`), `agent.json: flows[0].truncatedRecordTerminator: must be at least one byte`},
		{"multi-line pattern", flow(`, "multiLineStartPattern": "(?<=x)"`), `agent.json: flows[0].multiLineStartPattern: "(?<=x)": invalid named capture: (?<=x) (runnel uses Go's RE2 syntax`},
		{"processing not a list", flow(`, "dataProcessingOptions": {"optionName": "SINGLELINE"}`), `agent.json: flows[0].dataProcessingOptions: must be a list of objects`},
		{"no option name", flow(`, "dataProcessingOptions": [{}]`), `agent.json: flows[0].dataProcessingOptions[0].optionName: missing`},
		{"unknown option", flow(`, "dataProcessingOptions": [{"optionName": "XMLTOJSON"}]`), `agent.json: flows[0].dataProcessingOptions[0].optionName: "XMLTOJSON" is not one of`},
		{"ec2 metadata", flow(`, "dataProcessingOptions": [{"optionName": "ADDEC2METADATA"}]`), `agent.json: flows[0].dataProcessingOptions[0].optionName: ADDEC2METADATA is not supported`},
		{"csv without fields", flow(`, "dataProcessingOptions": [{"optionName": "CSVTOJSON"}]`), `agent.json: flows[0].dataProcessingOptions[0].customFieldNames: missing`},
		{"csv bad delimiter", flow(`, "dataProcessingOptions": [{"optionName": "CSVTOJSON", "customFieldNames": ["a"], "delimiter": "("}]`), `agent.json: flows[0].dataProcessingOptions[0].delimiter: "(" is not a usable delimiter`},
		{"log format", flow(`, "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "NGINX"}]`), `agent.json: flows[0].dataProcessingOptions[0].logFormat: "NGINX" is not one of COMMONAPACHELOG`},
		{"log without format", flow(`, "dataProcessingOptions": [{"optionName": "LOGTOJSON"}]`), `agent.json: flows[0].dataProcessingOptions[0].logFormat: "" is not one of`},
		{"custom fields count", flow(`, "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "customFieldNames": ["a"]}]`), `customFieldNames: names 1 fields but SYSLOG has 5 (timestamp, hostname, program, processid, message)`},
		{"match pattern without fields", flow(`, "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "(.*)"}]`), `customFieldNames: missing: customFieldNames must be given with matchPattern`},
		{"match pattern groups", flow(`, "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "(a)(b)", "customFieldNames": ["x"]}]`), `customFieldNames: names 1 fields but matchPattern has 2 groups`},
		{"pretty print", flow(`, "dataProcessingOptions": [{"optionName": "CSVTOJSON", "customFieldNames": ["a"], "jsonFormat": "PRETTYPRINT"}]`), `jsonFormat: PRETTYPRINT is not supported`},
		{"metadata timestamp", flow(`, "dataProcessingOptions": [{"optionName": "ADDMETADATA", "timestamp": "yes"}]`), `flows[0].dataProcessingOptions[0].timestamp: must be "true" or "false", not "yes"`},
		{"single line option", flow(`, "dataProcessingOptions": [{"optionName": "SINGLELINE", "parseOptions": ["TRIM"]}]`), `parseOptions: "TRIM" is not one of NO_TRIM, ESCAPE_NEW_LINE`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig("agent.json", []byte(c.json))
			if err == nil {
				t.Fatalf("accepted; want %s", c.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("%T is not a *ConfigError", err)
			}
			if !strings.HasPrefix(err.Error(), c.want) && !strings.Contains(err.Error(), c.want) {
				t.Errorf("got  %s\nwant %s", err, c.want)
			}
		})
	}
}

// TestConfigAccepts checks values the Kinesis Agent accepts in other
// shapes: numbers as strings, booleans as strings, unknown keys reported.
func TestConfigAccepts(t *testing.T) {
	cfg, err := ParseConfig("agent.json", []byte(`{"kinesis.endpoint": "127.0.0.1:4567", "kinesis.region": "eu-west-1", "maxSendingThreads": 4, "cloudwath.emitMetrics": false,
		"flows": [{"filePattern": "/var/log/app.log", "kinesisStream": "s", "maxBufferAgeMillis": "2000", "skipHeaderLines": 1,
		"partitionKeyOption": "DETERMINISTIC", "initialPosition": "START_OF_FILE", "multiLineStartPattern": "\\d{4}-", "publishQueueCapacity": 5,
		"truncatedRecordTerminator": "...\n", "maxBufferSizeBytes": 1048576, "maxBufferSizeRecords": 100}]}`))
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.Flows[0]
	if cfg.KinesisEndpoint != "https://127.0.0.1:4567" || cfg.Region != "eu-west-1" {
		t.Errorf("endpoint %q region %q", cfg.KinesisEndpoint, cfg.Region)
	}
	if f.MaxBufferAge != 2*time.Second || f.SkipHeaderLines != 1 || f.PartitionKey != "DETERMINISTIC" || f.StartAtEnd ||
		!f.MultiLineStart.MatchString("2026-12-06 x") || f.MultiLineStart.MatchString("x 2026-") || string(f.Terminator) != "...\n" ||
		f.MaxBufferBytes != 1<<20 || f.MaxBufferRecords != 100 {
		t.Errorf("flow: %+v", f)
	}
	if !slices.Equal(cfg.Ignored, []string{"maxSendingThreads", "flows[0].publishQueueCapacity"}) {
		t.Errorf("ignored %v", cfg.Ignored)
	}
	if !slices.Equal(cfg.Unknown, []string{"cloudwath.emitMetrics"}) {
		t.Errorf("unknown %v", cfg.Unknown)
	}
}

func TestLoadConfigMissingFile(t *testing.T) {
	_, err := LoadConfig("/nonexistent/agent.json")
	if err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "/nonexistent/agent.json") {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, name := range []string{"testdata/kinesis-agent-example.json", "testdata/kinesis-agent-release.json"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"flows":[{"filePattern":"/a/b*","kinesisStream":"s","dataProcessingOptions":[{"optionName":"LOGTOJSON","logFormat":"SYSLOG","matchPattern":"(a)","customFieldNames":["x"]}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseConfig("agent.json", b)
		if err == nil && len(cfg.Flows) == 0 {
			t.Fatal("accepted a configuration without flows")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "agent.json") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
