package consumer_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel/runnel/consumer"
	"github.com/runnel/runnel/kpl"
	"github.com/runnel/runnel/runneltest"
)

// delivery is one user record as a processor saw it.
type delivery struct {
	data, pk, ehk string
	seq           string
	sub           uint64
}

// orderedRecorder keeps every record it is given, in order, and checkpoints
// once at the record whose data is checkpointAt.
type orderedRecorder struct {
	checkpointAt string

	mu    sync.Mutex
	got   []delivery
	inits []consumer.InitInput
	err   error
}

func (p *orderedRecorder) Initialize(ctx context.Context, in consumer.InitInput) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.inits = append(p.inits, in)
	return nil
}

func (p *orderedRecorder) ProcessRecords(ctx context.Context, in consumer.ProcessInput) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range in.Records {
		p.got = append(p.got, delivery{data: string(r.Data), pk: r.PartitionKey, ehk: r.ExplicitHashKey, seq: r.SequenceNumber, sub: r.SubSequenceNumber})
		if string(r.Data) == p.checkpointAt {
			if err := in.Checkpointer.CheckpointAt(ctx, r.SequenceNumber, r.SubSequenceNumber); err != nil {
				p.err = err
			}
		}
	}
	return nil
}

func (p *orderedRecorder) ShardEnded(ctx context.Context, cp *consumer.Checkpointer) error {
	return nil
}
func (p *orderedRecorder) LeaseLost(ctx context.Context, shardID string) error { return nil }

func (p *orderedRecorder) deliveries() []delivery {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.got)
}

// TestKPLAggregates writes plain records, KPL aggregates (made with package
// kpl) and a record that only looks like an aggregate, and checks that a
// worker delivers every user record once, in order, with the aggregate's
// sequence number and its sub-sequence number; and that a checkpoint at a
// user record, inside an aggregate or not, makes the next worker resume
// right after that user record.
func TestKPLAggregates(t *testing.T) {
	srv := runneltest.NewServer(t)
	kc := srv.Client(t)
	createStream(t, kc, "agg", 1)

	type userRecord struct{ pk, ehk, data string }
	// The stream, in order: a plain record, an aggregate of 5, a plain
	// record, an aggregate of 4, a record with the magic but a bad digest.
	fake := append([]byte{0xF3, 0x89, 0x9A, 0xC2}, []byte("not really an aggregate")...)
	writes := [][]userRecord{
		{{pk: "p", data: "plain-0"}},
		{{pk: "a", data: "user-0"}, {pk: "b", ehk: "42", data: "user-1"}, {pk: "a", data: "user-2"}, {pk: "c", data: "user-3"}, {pk: "b", data: "user-4"}},
		{{pk: "p", data: "plain-1"}},
		{{pk: "d", data: "user-5"}, {pk: "d", data: "user-6"}, {pk: "e", ehk: "7", data: "user-7"}, {pk: "d", data: "user-8"}},
		{{pk: "f", data: string(fake)}},
	}
	var want []delivery
	for i, w := range writes {
		in := &kinesis.PutRecordInput{StreamName: aws.String("agg"), PartitionKey: aws.String(w[0].pk), Data: []byte(w[0].data)}
		if len(w) > 1 {
			a := kpl.NewAggregator()
			for _, u := range w {
				if err := a.Add(u.pk, u.ehk, []byte(u.data)); err != nil {
					t.Fatal(err)
				}
			}
			agg := a.Drain()
			in.PartitionKey, in.Data = aws.String(agg.PartitionKey), agg.Data
		}
		out, err := kc.PutRecord(context.Background(), in)
		if err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
		for sub, u := range w {
			d := delivery{data: u.data, pk: u.pk, ehk: u.ehk, seq: aws.ToString(out.SequenceNumber)}
			if len(w) > 1 {
				d.sub = uint64(sub)
			}
			want = append(want, d)
		}
	}

	tests := []struct {
		name         string
		checkpointAt string // the user record the first worker checkpoints
	}{
		{"plain record", "plain-0"},
		{"first of an aggregate", "user-0"},
		{"middle of an aggregate", "user-2"},
		{"last of an aggregate", "user-4"},
		{"last of the second aggregate", "user-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := strings.ReplaceAll(tt.name, " ", "-")
			p1 := &orderedRecorder{checkpointAt: tt.checkpointAt}
			c1, err := consumer.New(kc, "agg", app, p1, options(t, "w1")...)
			if err != nil {
				t.Fatal(err)
			}
			stop := worker(t, c1)
			eventually(t, 10*time.Second, "every user record delivered", func() bool { return len(p1.deliveries()) >= len(want) })
			time.Sleep(100 * time.Millisecond)
			stop()
			if got := p1.deliveries(); !slices.Equal(got, want) {
				t.Fatalf("first worker got\n%v\nwant\n%v", got, want)
			}
			if p1.err != nil {
				t.Fatalf("checkpoint at %s: %v", tt.checkpointAt, p1.err)
			}

			at := slices.IndexFunc(want, func(d delivery) bool { return d.data == tt.checkpointAt })
			rest := want[at+1:]
			p2 := &orderedRecorder{}
			c2, err := consumer.New(kc, "agg", app, p2, options(t, "w2")...)
			if err != nil {
				t.Fatal(err)
			}
			stop = worker(t, c2)
			eventually(t, 10*time.Second, "the records after the checkpoint delivered", func() bool { return len(p2.deliveries()) >= len(rest) })
			time.Sleep(100 * time.Millisecond)
			stop()
			if got := p2.deliveries(); !slices.Equal(got, rest) {
				t.Fatalf("after a checkpoint at %s the second worker got\n%v\nwant\n%v", tt.checkpointAt, got, rest)
			}
			p2.mu.Lock()
			defer p2.mu.Unlock()
			if len(p2.inits) != 1 || p2.inits[0].Checkpoint != want[at].seq || p2.inits[0].SubSequenceNumber != want[at].sub {
				t.Fatalf("second worker initialized with %+v, want checkpoint %s/%d", p2.inits, want[at].seq, want[at].sub)
			}
		})
	}
}

func (d delivery) String() string {
	return fmt.Sprintf("{%q %s/%d pk=%s ehk=%s}", d.data, d.seq, d.sub, d.pk, d.ehk)
}
