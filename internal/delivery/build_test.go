package delivery

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func dynamicPlan(t *testing.T, size int32) plan {
	t.Helper()
	d := ExtendedS3DestinationConfiguration{
		BucketARN:                        ptr("arn:aws:s3:::b"),
		Prefix:                           ptr("k=!{partitionKeyFromQuery:k}/"),
		ErrorOutputPrefix:                ptr("err/!{firehose:error-output-type}/"),
		CompressionFormat:                ptr("UNCOMPRESSED"),
		BufferingHints:                   &BufferingHints{SizeInMBs: &size, IntervalInSeconds: ptr(int32(60))},
		DynamicPartitioningConfiguration: &DynamicPartitioningConfiguration{Enabled: ptr(true)},
		ProcessingConfiguration: &ProcessingConfiguration{Enabled: ptr(true), Processors: []Processor{
			{Type: ptr("MetadataExtraction"), Parameters: []ProcessorParameter{{ParameterName: ptr("MetadataExtractionQuery"), ParameterValue: ptr("{k: .k}")}}},
			{Type: ptr("AppendDelimiterToRecord")},
		}},
	}
	return plan{First: "1", Last: "2", Version: 3, Dest: d}
}

// TestActivePartitionLimit sends the records of partitions beyond the
// 500th to the error prefix.
func TestActivePartitionLimit(t *testing.T) {
	var recs []record
	for i := range maxActivePartitions + 20 {
		recs = append(recs, record{seq: fmt.Sprint(i), arrival: 1_700_000_000_000, data: []byte(fmt.Sprintf(`{"k":"p%d"}`, i))})
	}
	objs, err := buildObjects("s", "id", "shardId-000000000000", dynamicPlan(t, 64), recs, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != maxActivePartitions+1 {
		t.Fatalf("%d objects, want %d partitions and one of errors", len(objs), maxActivePartitions+1)
	}
	errObj := objs[len(objs)-1]
	if !strings.HasPrefix(errObj.Key, "err/processing-failed/") || errObj.Records != 20 {
		t.Fatalf("error object %s with %d records", errObj.Key, errObj.Records)
	}
	var doc errorDocument
	if err := json.Unmarshal(bytes.SplitN(errObj.Body, []byte("\n"), 2)[0], &doc); err != nil || doc.ErrorCode != errPartitionLimit || string(doc.RawData) != `{"k":"p500"}` {
		t.Fatalf("error document %+v (%v)", doc, err)
	}
}

// TestBuildObjectsIsDeterministic: the same plan and records make the same
// keys and bytes, which is what lets a batch written again after a crash
// replace its objects.
func TestBuildObjectsIsDeterministic(t *testing.T) {
	var recs []record
	for i := range 300 {
		recs = append(recs, record{seq: fmt.Sprint(i), arrival: 1_700_000_000_000 + int64(i), data: []byte(fmt.Sprintf(`{"k":"p%d","pad":"%s"}`, i%7, strings.Repeat("x", 500)))})
	}
	p := dynamicPlan(t, 64)
	for _, format := range []string{"UNCOMPRESSED", "GZIP", "ZIP", "Snappy", "HADOOP_SNAPPY"} {
		p.Dest.CompressionFormat = ptr(format)
		a, err := buildObjects("s", "id", "shardId-000000000000", p, recs, false)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := buildObjects("s", "id", "shardId-000000000000", p, recs, false)
		if len(a) != 7 || len(a) != len(b) {
			t.Fatalf("%s: %d and %d objects, want 7", format, len(a), len(b))
		}
		for i := range a {
			if a[i].Key != b[i].Key || !bytes.Equal(a[i].Body, b[i].Body) {
				t.Fatalf("%s: object %d differs between two builds", format, i)
			}
		}
		other := p
		other.Last = "3"
		c, _ := buildObjects("s", "id", "shardId-000000000000", other, recs, false)
		if c[0].Key == a[0].Key {
			t.Fatalf("%s: two batches with different positions share the key %s", format, a[0].Key)
		}
	}
}
