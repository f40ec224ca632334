package producer_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"math/big"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel/runnel/producer"
)

// fakeClient is a stream of evenly split shards that answers PutRecords
// with put, or stores everything.
type fakeClient struct {
	mu     sync.Mutex
	shards []types.Shard
	put    func(in *kinesis.PutRecordsInput) (*kinesis.PutRecordsOutput, error)
	calls  []*kinesis.PutRecordsInput // kept when keep is set
	keep   bool
	hang   bool // PutRecords waits for its context to end
	lists  atomic.Int64
	seq    atomic.Int64
	puts   atomic.Int64
	bounds [][2]*big.Int // of shards, parsed once
}

func (f *fakeClient) callsStarted() int64 { return f.puts.Load() }

var _ producer.Client = (*fakeClient)(nil)

// newFake returns a fake stream of n shards (n a power of two up to 2^64).
func newFake(n int) *fakeClient {
	f := &fakeClient{}
	bounds := evenBounds(n)
	for i := range n {
		f.shards = append(f.shards, types.Shard{
			ShardId:             aws.String(fmt.Sprintf("shardId-%012d", i)),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(bounds[i][0]), EndingHashKey: aws.String(bounds[i][1])},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("1")},
		})
	}
	return f
}

// evenBounds splits the hash key space in n ranges, as decimal strings.
func evenBounds(n int) [][2]string {
	// 2^128 / n for n = 2^k: the ranges start at i * 2^(128-k).
	k := 0
	for 1<<k < n {
		k++
	}
	out := make([][2]string, n)
	for i := range n {
		lo := shl(uint64(i), 128-k)
		hi := sub1(shl(uint64(i+1), 128-k))
		out[i] = [2]string{lo.String(), hi.String()}
	}
	return out
}

func shl(v uint64, n int) *big.Int { return new(big.Int).Lsh(new(big.Int).SetUint64(v), uint(n)) }

func sub1(v *big.Int) *big.Int { return v.Sub(v, big.NewInt(1)) }

// shardOf is the shard an entry goes to: by explicit hash key, or by the
// MD5 of its partition key.
func (f *fakeClient) shardOf(e types.PutRecordsRequestEntry) string {
	var h *big.Int
	if e.ExplicitHashKey != nil {
		h, _ = new(big.Int).SetString(*e.ExplicitHashKey, 10)
	} else {
		sum := md5.Sum([]byte(*e.PartitionKey))
		h = new(big.Int).SetBytes(sum[:])
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.bounds) != len(f.shards) {
		f.bounds = f.bounds[:0]
		for _, s := range f.shards {
			lo, _ := new(big.Int).SetString(*s.HashKeyRange.StartingHashKey, 10)
			hi, _ := new(big.Int).SetString(*s.HashKeyRange.EndingHashKey, 10)
			f.bounds = append(f.bounds, [2]*big.Int{lo, hi})
		}
	}
	for i, s := range f.shards {
		if h.Cmp(f.bounds[i][0]) >= 0 && h.Cmp(f.bounds[i][1]) <= 0 && s.SequenceNumberRange.EndingSequenceNumber == nil {
			return *s.ShardId
		}
	}
	return "none"
}

func (f *fakeClient) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	f.lists.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return &kinesis.ListShardsOutput{Shards: append([]types.Shard(nil), f.shards...)}, nil
}

func (f *fakeClient) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	f.puts.Add(1)
	if f.hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if f.keep {
		cp := &kinesis.PutRecordsInput{StreamName: in.StreamName}
		for _, e := range in.Records {
			e.Data = append([]byte(nil), e.Data...)
			cp.Records = append(cp.Records, e)
		}
		f.mu.Lock()
		f.calls = append(f.calls, cp)
		f.mu.Unlock()
	}
	if f.put != nil {
		return f.put(in)
	}
	return f.ok(in, 0, len(in.Records)), nil
}

// ok answers success for records [from, to) of in, on the shard each
// entry's key predicts, and ProvisionedThroughputExceeded for the others.
func (f *fakeClient) ok(in *kinesis.PutRecordsInput, from, to int) *kinesis.PutRecordsOutput {
	out := &kinesis.PutRecordsOutput{}
	for i, e := range in.Records {
		if i < from || i >= to {
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String("ProvisionedThroughputExceededException"), ErrorMessage: aws.String("Rate exceeded")})
			out.FailedRecordCount = aws.Int32(aws.ToInt32(out.FailedRecordCount) + 1)
			continue
		}
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String(f.shardOf(e)), SequenceNumber: aws.String(strconv.FormatInt(f.seq.Add(1), 10))})
	}
	return out
}

// reshard closes the fake's open shards and opens the given ranges
// (decimal bounds) as new shards, numbered after the old ones.
func (f *fakeClient) reshard(ranges [][2]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.shards {
		f.shards[i].SequenceNumberRange.EndingSequenceNumber = aws.String("2")
	}
	n := len(f.shards)
	for i, r := range ranges {
		f.shards = append(f.shards, types.Shard{
			ShardId:             aws.String(fmt.Sprintf("shardId-%012d", n+i)),
			HashKeyRange:        &types.HashKeyRange{StartingHashKey: aws.String(r[0]), EndingHashKey: aws.String(r[1])},
			SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("3")},
		})
	}
	f.bounds = nil
}
