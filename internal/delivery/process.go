package delivery

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/itchyny/gojq"

	"github.com/runnel/runnel/kpl"
)

// The processing stages between a source record and an object: KPL
// de-aggregation (KinesisStreamAsSource), RecordDeAggregation (JSON or
// DELIMITED), MetadataExtraction with a jq query (dynamic partitioning),
// AppendDelimiterToRecord.

// Firehose's limit of active partitions per delivery stream.
const maxActivePartitions = 500

// Error codes of error documents.
const (
	errMetadataExtraction = "DynamicPartitioning.MetadataExtractionFailed"
	errPartitionLimit     = "DynamicPartitioning.ActivePartitionsLimitExceeded"
	errPrefixEvaluation   = "DynamicPartitioning.PrefixEvaluationFailed"
	errDeaggregation      = "RecordDeAggregation.Failed"
	errorOutputType       = "processing-failed"
)

// pipelineConfig is what processing does to records, from a
// ProcessingConfiguration.
type pipelineConfig struct {
	appendNewline bool
	// deaggregate is "", "JSON" or "DELIMITED".
	deaggregate string
	delimiter   []byte
	// query extracts the partition keys (MetadataExtraction); nil: none.
	query *gojq.Code
	// fields answers query without gojq when it only picks fields.
	fields *fieldQuery
}

// processing checks a processing configuration and returns what it asks.
// dynamic says whether dynamic partitioning is on.
func processing(p *ProcessingConfiguration, dynamic bool) (pipelineConfig, error) {
	var pc pipelineConfig
	if p == nil || p.Enabled == nil || !*p.Enabled {
		return pc, nil
	}
	for _, proc := range p.Processors {
		if proc.Type == nil {
			return pc, validation("null", "processingConfiguration.processors.member.type", "Member must not be null")
		}
		params := map[string]string{}
		for _, par := range proc.Parameters {
			if par.ParameterName == nil || par.ParameterValue == nil {
				return pc, validation("null", "processingConfiguration.processors.member.parameters.member", "Member must not be null")
			}
			params[*par.ParameterName] = *par.ParameterValue
		}
		switch *proc.Type {
		case "AppendDelimiterToRecord":
			if d, ok := params["Delimiter"]; ok && d != "\\n" {
				return pc, errorf(CodeInvalidArgument, "AppendDelimiterToRecord supports only the newline delimiter.")
			}
			pc.appendNewline = true
		case "MetadataExtraction":
			if !dynamic {
				return pc, errorf(CodeInvalidArgument, "MetadataExtraction processor requires dynamic partitioning to be enabled.")
			}
			if e, ok := params["JsonParsingEngine"]; ok && e != "JQ-1.6" {
				return pc, errorf(CodeInvalidArgument, "JsonParsingEngine %s is not supported: use JQ-1.6.", e)
			}
			q, ok := params["MetadataExtractionQuery"]
			if !ok {
				return pc, errorf(CodeInvalidArgument, "MetadataExtraction processor requires the MetadataExtractionQuery parameter.")
			}
			code, err := compileQuery(q)
			if err != nil {
				return pc, errorf(CodeInvalidArgument, "MetadataExtractionQuery %q is not a valid jq query: %v.", q, err)
			}
			pc.query = code
			pc.fields = parseFieldQuery(q)
		case "RecordDeAggregation":
			if !dynamic {
				return pc, errorf(CodeInvalidArgument, "RecordDeAggregation processor requires dynamic partitioning to be enabled.")
			}
			switch t := params["SubRecordType"]; t {
			case "JSON":
				pc.deaggregate = t
			case "DELIMITED":
				d, err := base64.StdEncoding.DecodeString(params["Delimiter"])
				if err != nil || len(d) == 0 {
					return pc, errorf(CodeInvalidArgument, "RecordDeAggregation of DELIMITED records requires a Delimiter parameter: the delimiter in base64.")
				}
				pc.deaggregate, pc.delimiter = t, d
			default:
				return pc, errorf(CodeInvalidArgument, "RecordDeAggregation SubRecordType %q is not supported: use JSON or DELIMITED.", t)
			}
		case "Lambda":
			return pc, errorf(CodeInvalidArgument, "Lambda processors are not supported: runnel runs no Lambda functions.")
		case "Decompression", "CloudWatchLogProcessing":
			return pc, errorf(CodeInvalidArgument, "The %s processor is not supported by this server.", *proc.Type)
		default:
			return pc, validation(*proc.Type, "processingConfiguration.processors.member.type",
				"Member must satisfy enum value set: [RecordDeAggregation, Decompression, CloudWatchLogProcessing, Lambda, MetadataExtraction, AppendDelimiterToRecord]")
		}
	}
	// Dynamic partitioning without a query partitions by the prefix's
	// timestamp alone: one partition per cut.
	return pc, nil
}

// queries caches compiled jq queries: a delivery stream's query is
// compiled once, not per batch.
var queries struct {
	sync.Mutex
	m map[string]*gojq.Code
}

func compileQuery(q string) (*gojq.Code, error) {
	queries.Lock()
	defer queries.Unlock()
	if c := queries.m[q]; c != nil {
		return c, nil
	}
	parsed, err := gojq.Parse(q)
	if err != nil {
		return nil, err
	}
	code, err := gojq.Compile(parsed)
	if err != nil {
		return nil, err
	}
	if queries.m == nil {
		queries.m = map[string]*gojq.Code{}
	}
	if len(queries.m) > 1000 {
		clear(queries.m)
	}
	queries.m[q] = code
	return code, nil
}

// userRecord is one record after de-aggregation.
type userRecord struct {
	data    []byte
	arrival int64
}

// failedRecord is a record that goes to the error prefix.
type failedRecord struct {
	data    []byte
	arrival int64
	code    string
	message string
}

// deaggregate applies KPL de-aggregation (kplAgg) and RecordDeAggregation.
func (pc *pipelineConfig) deaggregateRecord(r record, kplAgg bool, out []userRecord, failed []failedRecord) ([]userRecord, []failedRecord) {
	parts := [][]byte{r.data}
	if kplAgg {
		if recs, ok := kpl.Deaggregate(kpl.Record{Data: r.data}); ok {
			parts = parts[:0]
			for _, u := range recs {
				parts = append(parts, u.Data)
			}
		}
	}
	for _, p := range parts {
		switch pc.deaggregate {
		case "JSON":
			dec := json.NewDecoder(bytes.NewReader(p))
			start := 0
			for {
				var v json.RawMessage
				err := dec.Decode(&v)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					failed = append(failed, failedRecord{data: p, arrival: r.arrival, code: errDeaggregation,
						message: fmt.Sprintf("The record is not a sequence of JSON objects: %v", err)})
					break
				}
				end := int(dec.InputOffset())
				out = append(out, userRecord{data: bytes.TrimSpace(p[start:end]), arrival: r.arrival})
				start = end
			}
		case "DELIMITED":
			for _, sub := range bytes.Split(p, pc.delimiter) {
				if len(sub) > 0 {
					out = append(out, userRecord{data: sub, arrival: r.arrival})
				}
			}
		default:
			out = append(out, userRecord{data: p, arrival: r.arrival})
		}
	}
	return out, failed
}

// partitionKeys runs the query on a JSON record and returns its keys.
func (pc *pipelineConfig) partitionKeys(data []byte) (map[string]string, error) {
	if pc.fields != nil {
		keys, null, ok := pc.fields.extract(data)
		switch {
		case ok && null != "":
			return nil, fmt.Errorf("the partition key %s is null", null)
		case ok:
			return keys, nil
		}
	}
	return pc.queryKeys(data)
}

// queryKeys runs the query with gojq.
func (pc *pipelineConfig) queryKeys(data []byte) (map[string]string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("the record is not JSON: %v", err)
	}
	v = normalizeNumbers(v)
	iter := pc.query.Run(v)
	res, ok := iter.Next()
	if !ok {
		return nil, errors.New("the query produced no value")
	}
	if err, isErr := res.(error); isErr {
		return nil, fmt.Errorf("the query failed: %v", err)
	}
	obj, ok := res.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the query produced %T, not an object of partition keys", res)
	}
	keys := make(map[string]string, len(obj))
	for k, val := range obj {
		switch x := val.(type) {
		case string:
			keys[k] = x
		case nil:
			return nil, fmt.Errorf("the partition key %s is null", k)
		case bool:
			keys[k] = strconv.FormatBool(x)
		case int:
			keys[k] = strconv.Itoa(x)
		case float64:
			keys[k] = strconv.FormatFloat(x, 'f', -1, 64)
		default:
			b, err := json.Marshal(x)
			if err != nil {
				return nil, err
			}
			keys[k] = string(b)
		}
	}
	return keys, nil
}

// normalizeNumbers turns json.Number into the int or float64 gojq works
// with.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.Atoi(string(x)); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	}
	return v
}

// partitionID serializes partition keys, in key order.
func partitionID(keys map[string]string) string {
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(keys[k])
		b.WriteByte(0)
	}
	return b.String()
}

// errorDocument is how Firehose writes a record that could not be
// processed, one JSON document per line.
type errorDocument struct {
	AttemptsMade     int    `json:"attemptsMade"`
	ArrivalTimestamp int64  `json:"arrivalTimestamp"`
	ErrorCode        string `json:"errorCode"`
	ErrorMessage     string `json:"errorMessage"`
	RawData          []byte `json:"rawData"`
}
