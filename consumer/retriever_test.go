package consumer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// scriptedKinesis answers GetRecords from a script and records the
// GetShardIterator calls.
type scriptedKinesis struct {
	mu        sync.Mutex
	answers   []func() (*kinesis.GetRecordsOutput, error)
	iterators []*kinesis.GetShardIteratorInput
	gets      int
}

func (k *scriptedKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.iterators = append(k.iterators, in)
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String("it")}, nil
}

func (k *scriptedKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.gets >= len(k.answers) {
		return nil, errors.New("script ended")
	}
	k.gets++
	return k.answers[k.gets-1]()
}

func (k *scriptedKinesis) Options() kinesis.Options { return kinesis.Options{} }

func records(seqs ...string) func() (*kinesis.GetRecordsOutput, error) {
	return func() (*kinesis.GetRecordsOutput, error) {
		out := &kinesis.GetRecordsOutput{NextShardIterator: aws.String("next"), MillisBehindLatest: aws.Int64(7)}
		for _, s := range seqs {
			out.Records = append(out.Records, types.Record{SequenceNumber: aws.String(s), PartitionKey: aws.String("k"), Data: []byte(s)})
		}
		return out, nil
	}
}

func fail(err error) func() (*kinesis.GetRecordsOutput, error) {
	return func() (*kinesis.GetRecordsOutput, error) { return nil, err }
}

func end() (*kinesis.GetRecordsOutput, error) { return &kinesis.GetRecordsOutput{}, nil }

// TestPollerRecovers: an expired iterator is replaced by one after the last
// record returned, throttling is waited out, empty answers are skipped after
// the idle time, and a nil NextShardIterator ends the shard.
func TestPollerRecovers(t *testing.T) {
	k := &scriptedKinesis{answers: []func() (*kinesis.GetRecordsOutput, error){
		records("1", "2"),
		fail(&types.ExpiredIteratorException{Message: aws.String("expired")}),
		fail(&types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}),
		records(),
		records("3"),
		end,
	}}
	r := NewPollingRetriever(k, "s", 100, 10*time.Millisecond)
	ctx := context.Background()
	rd, err := r.Open(ctx, "shardId-000000000000", Start{AfterSequenceNumber: "0"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	ended := false
	for !ended {
		b, err := rd.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Records {
			got = append(got, *r.SequenceNumber)
		}
		ended = b.End
	}
	if len(got) != 3 || got[0] != "1" || got[2] != "3" {
		t.Fatalf("records %v, want 1 2 3", got)
	}
	if len(k.iterators) != 2 {
		t.Fatalf("%d GetShardIterator calls, want 2", len(k.iterators))
	}
	first, renewed := k.iterators[0], k.iterators[1]
	if first.ShardIteratorType != types.ShardIteratorTypeAfterSequenceNumber || *first.StartingSequenceNumber != "0" {
		t.Fatalf("first iterator %+v", first)
	}
	if renewed.ShardIteratorType != types.ShardIteratorTypeAfterSequenceNumber || *renewed.StartingSequenceNumber != "2" {
		t.Fatalf("renewed iterator %v at %v, want AFTER_SEQUENCE_NUMBER 2", renewed.ShardIteratorType, aws.ToString(renewed.StartingSequenceNumber))
	}
}

// TestPollerStartPositions: the iterator a start asks for.
func TestPollerStartPositions(t *testing.T) {
	at := time.Unix(1700000000, 0)
	for _, tc := range []struct {
		name  string
		start Start
		typ   types.ShardIteratorType
		seq   string
	}{
		{"after a checkpoint", Start{AfterSequenceNumber: "5", Initial: TrimHorizon}, types.ShardIteratorTypeAfterSequenceNumber, "5"},
		{"inside an aggregate", Start{AtSequenceNumber: "5"}, types.ShardIteratorTypeAtSequenceNumber, "5"},
		{"trim horizon", Start{Initial: TrimHorizon}, types.ShardIteratorTypeTrimHorizon, ""},
		{"latest", Start{Initial: Latest}, types.ShardIteratorTypeLatest, ""},
		{"at timestamp", Start{Initial: AtTimestamp(at)}, types.ShardIteratorTypeAtTimestamp, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &scriptedKinesis{}
			if _, err := NewPollingRetriever(k, "s", 100, time.Millisecond).Open(context.Background(), "shardId-000000000000", tc.start); err != nil {
				t.Fatal(err)
			}
			in := k.iterators[0]
			if in.ShardIteratorType != tc.typ || aws.ToString(in.StartingSequenceNumber) != tc.seq {
				t.Fatalf("iterator %v at %q", in.ShardIteratorType, aws.ToString(in.StartingSequenceNumber))
			}
			if tc.typ == types.ShardIteratorTypeAtTimestamp && !in.Timestamp.Equal(at) {
				t.Fatalf("timestamp %v", in.Timestamp)
			}
		})
	}
}

func TestUserRecordsSkipsCheckpointedSubRecords(t *testing.T) {
	rs := []types.Record{{SequenceNumber: aws.String("5")}, {SequenceNumber: aws.String("6")}}
	if got := userRecords(rs, "5", 0); len(got) != 1 || got[0].SequenceNumber != "6" {
		t.Fatalf("after checkpoint 5/0: %+v", got)
	}
	if got := userRecords(rs, "4", 0); len(got) != 2 {
		t.Fatalf("after checkpoint 4: %+v", got)
	}
}
