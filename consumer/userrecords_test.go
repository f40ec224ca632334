package consumer

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/kpl"
)

// aggregated returns a stored record at seq holding n user records.
func aggregated(t testing.TB, seq string, n int) types.Record {
	a := kpl.NewAggregator()
	for i := range n {
		if err := a.Add(fmt.Sprint("k", i%3), "", fmt.Appendf(nil, "%s.%d", seq, i)); err != nil {
			t.Fatal(err)
		}
	}
	agg := a.Drain()
	return types.Record{SequenceNumber: aws.String(seq), PartitionKey: aws.String(agg.PartitionKey), Data: agg.Data}
}

func TestUserRecordsExpandsAggregates(t *testing.T) {
	rs := []types.Record{
		{SequenceNumber: aws.String("1"), PartitionKey: aws.String("p"), Data: []byte("plain")},
		aggregated(t, "2", 4),
		aggregated(t, "3", 2),
	}
	data := func(recs []Record) (out []string) {
		for _, r := range recs {
			out = append(out, fmt.Sprintf("%s/%d=%s", r.SequenceNumber, r.SubSequenceNumber, r.Data))
		}
		return out
	}
	// Reading starts at the checkpoint, so the records begin with it.
	tests := []struct {
		name       string
		from       int
		checkpoint string
		sub        uint64
		want       string
	}{
		{"no checkpoint", 0, "", 0, "[1/0=plain 2/0=2.0 2/1=2.1 2/2=2.2 2/3=2.3 3/0=3.0 3/1=3.1]"},
		{"at the plain record", 0, "1", 0, "[2/0=2.0 2/1=2.1 2/2=2.2 2/3=2.3 3/0=3.0 3/1=3.1]"},
		{"at the first user record", 1, "2", 0, "[2/1=2.1 2/2=2.2 2/3=2.3 3/0=3.0 3/1=3.1]"},
		{"inside", 1, "2", 2, "[2/3=2.3 3/0=3.0 3/1=3.1]"},
		{"at the last user record", 1, "2", 3, "[3/0=3.0 3/1=3.1]"},
		{"at the end", 2, "3", 1, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fmt.Sprint(data(userRecords(rs[tt.from:], tt.checkpoint, tt.sub))); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func BenchmarkUserRecords(b *testing.B) {
	plain := make([]types.Record, 1000)
	for i := range plain {
		plain[i] = types.Record{SequenceNumber: aws.String(fmt.Sprint(i)), PartitionKey: aws.String("k"), Data: make([]byte, 100)}
	}
	aggs := make([]types.Record, 10)
	for i := range aggs {
		aggs[i] = aggregated(b, fmt.Sprint(i), 100)
	}
	for _, bc := range []struct {
		name string
		rs   []types.Record
	}{{"1000 plain", plain}, {"10 aggregates of 100", aggs}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if n := len(userRecords(bc.rs, "", 0)); n != 1000 {
					b.Fatal(n)
				}
			}
		})
	}
}
