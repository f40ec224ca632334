package bench

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// faults are the misbehaviours a fakeKinesis can inject, each on every n-th
// record (0 = never).
type faults struct {
	throttle int // refuse the record in PutRecords with ProvisionedThroughputExceededException
	// throttleCall refuses every n-th put call as a whole with
	// ProvisionedThroughputExceededException (the type in the
	// X-Amzn-ErrorType header only, the way some servers answer).
	throttleCall int
	// hangup stores every n-th put call's records, then closes the
	// connection without answering: the outcome is unknown to the client.
	hangup int
	// failRecord fails the record in PutRecords with InternalFailure.
	failRecord int
	drop       int  // acknowledge the record but do not store it
	dup        int  // store the record twice
	corrupt    int  // flip a bit of the stored data
	reverse    bool // store each PutRecords call's records in reverse order
}

// fakeKinesis is a minimal in-memory Kinesis (JSON 1.1) with fault
// injection, enough for the operations runnel bench uses, so that the tool
// and its verification can be tested without a server.
type fakeKinesis struct {
	f  faults
	mu struct {
		sync.Mutex
		n       int // records received
		puts    int // put calls received
		streams map[string]*fakeStream
		// gets counts GetRecords calls; putsAfterGet counts put calls
		// received after the first one.
		gets, putsAfterGet int
	}
}

type fakeStream struct {
	shards [][]fakeRecord
	seq    int
}

type fakeRecord struct {
	Data           []byte
	PartitionKey   string
	SequenceNumber string
}

func newFakeKinesis(t *testing.T, f faults) string {
	t.Helper()
	_, url := newFake(t, f)
	return url
}

// newFake starts a fakeKinesis and returns it with its URL.
func newFake(t *testing.T, f faults) (*fakeKinesis, string) {
	t.Helper()
	fk := &fakeKinesis{f: f}
	fk.mu.streams = map[string]*fakeStream{}
	srv := httptest.NewServer(fk)
	t.Cleanup(srv.Close)
	return fk, srv.URL
}

// calls returns the GetRecords calls received and the put calls received
// after the first of them.
func (fk *fakeKinesis) calls() (gets, putsAfterGet int) {
	fk.mu.Lock()
	defer fk.mu.Unlock()
	return fk.mu.gets, fk.mu.putsAfterGet
}

type fakeError struct{ typ, msg string }

func (fk *fakeKinesis) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "Kinesis_20131202.")
	var in map[string]json.RawMessage
	if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
		writeFake(w, nil, &fakeError{"SerializationException", err.Error()})
		return
	}
	str := func(k string) string {
		var s string
		json.Unmarshal(in[k], &s)
		return s
	}
	fk.mu.Lock()
	defer fk.mu.Unlock()
	streams := fk.mu.streams
	stream := func() (*fakeStream, *fakeError) {
		s := streams[str("StreamName")]
		if s == nil {
			return nil, &fakeError{"ResourceNotFoundException", "Stream " + str("StreamName") + " not found."}
		}
		return s, nil
	}
	var out any
	var ferr *fakeError
	switch op {
	case "CreateStream":
		var n int
		json.Unmarshal(in["ShardCount"], &n)
		streams[str("StreamName")] = &fakeStream{shards: make([][]fakeRecord, n)}
		out = struct{}{}
	case "DeleteStream":
		delete(streams, str("StreamName"))
		out = struct{}{}
	case "DescribeStreamSummary":
		var s *fakeStream
		if s, ferr = stream(); s != nil {
			out = map[string]any{"StreamDescriptionSummary": map[string]any{
				"StreamName": str("StreamName"), "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/" + str("StreamName"),
				"StreamStatus": "ACTIVE", "OpenShardCount": len(s.shards), "RetentionPeriodHours": 24,
				"StreamCreationTimestamp": 1.7e9, "EnhancedMonitoring": []any{},
			}}
		}
	case "ListShards":
		var s *fakeStream
		if s, ferr = stream(); s != nil {
			var shards []any
			for i := range s.shards {
				shards = append(shards, map[string]any{"ShardId": shardName(i),
					"HashKeyRange":        map[string]string{"StartingHashKey": "0", "EndingHashKey": "1"},
					"SequenceNumberRange": map[string]string{"StartingSequenceNumber": "0"}})
			}
			out = map[string]any{"Shards": shards}
		}
	case "PutRecord", "PutRecords":
		if fk.mu.gets > 0 {
			fk.mu.putsAfterGet++
		}
		var s *fakeStream
		if s, ferr = stream(); s == nil {
			break
		}
		fk.mu.puts++
		if every(fk.f.throttleCall, fk.mu.puts) {
			w.Header().Set("X-Amzn-ErrorType", "ProvisionedThroughputExceededException:http://internal.amazon.com/coral/com.amazonaws.kinesis.v20131202/")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"message":"Rate exceeded for stream"}`))
			return
		}
		var recs []fakeRecord
		if op == "PutRecord" {
			recs = []fakeRecord{{PartitionKey: str("PartitionKey")}}
			json.Unmarshal(in["Data"], &recs[0].Data)
		} else {
			json.Unmarshal(in["Records"], &recs)
		}
		var results []map[string]any
		var stored [][2]int // shard, record index in recs
		failed := 0
		for i, r := range recs {
			fk.mu.n++
			if every(fk.f.throttle, fk.mu.n) {
				failed++
				results = append(results, map[string]any{"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"})
				continue
			}
			if every(fk.f.failRecord, fk.mu.n) {
				failed++
				results = append(results, map[string]any{"ErrorCode": "InternalFailure", "ErrorMessage": "Internal service failure."})
				continue
			}
			sh := fakeShard(r.PartitionKey, len(s.shards))
			s.seq++
			recs[i].SequenceNumber = fmt.Sprintf("%056d", s.seq)
			results = append(results, map[string]any{"SequenceNumber": recs[i].SequenceNumber, "ShardId": shardName(sh)})
			switch {
			case every(fk.f.drop, fk.mu.n):
			case every(fk.f.dup, fk.mu.n):
				stored = append(stored, [2]int{sh, i}, [2]int{sh, i})
			default:
				if every(fk.f.corrupt, fk.mu.n) {
					recs[i].Data[len(recs[i].Data)-1] ^= 1
				}
				stored = append(stored, [2]int{sh, i})
			}
		}
		if fk.f.reverse {
			for i, j := 0, len(stored)-1; i < j; i, j = i+1, j-1 {
				stored[i], stored[j] = stored[j], stored[i]
			}
		}
		for _, st := range stored {
			// Stored sequence numbers increase along the shard whatever
			// the faults.
			r := recs[st[1]]
			s.seq++
			r.SequenceNumber = fmt.Sprintf("%056d", s.seq)
			s.shards[st[0]] = append(s.shards[st[0]], r)
		}
		if op == "PutRecord" {
			if failed > 0 {
				ferr = &fakeError{"ProvisionedThroughputExceededException", "Rate exceeded for shard"}
			} else {
				out = results[0]
			}
		} else {
			out = map[string]any{"FailedRecordCount": failed, "Records": results}
		}
	case "GetShardIterator":
		var s *fakeStream
		if s, ferr = stream(); s == nil {
			break
		}
		sh, _ := strconv.Atoi(strings.TrimPrefix(str("ShardId"), "shardId-"))
		pos := 0
		if str("ShardIteratorType") == "LATEST" {
			pos = len(s.shards[sh])
		}
		out = map[string]any{"ShardIterator": fmt.Sprintf("%s/%d/%d", str("StreamName"), sh, pos)}
	case "GetRecords":
		fk.mu.gets++
		var name string
		var sh, pos int
		if _, err := fmt.Sscanf(strings.ReplaceAll(str("ShardIterator"), "/", " "), "%s %d %d", &name, &sh, &pos); err != nil {
			ferr = &fakeError{"InvalidArgumentException", "bad iterator"}
			break
		}
		s := streams[name]
		if s == nil {
			ferr = &fakeError{"ResourceNotFoundException", "no stream"}
			break
		}
		recs := s.shards[sh][pos:]
		if len(recs) > 1000 {
			recs = recs[:1000]
		}
		out = map[string]any{"Records": recs, "MillisBehindLatest": 0,
			"NextShardIterator": fmt.Sprintf("%s/%d/%d", name, sh, pos+len(recs))}
	default:
		ferr = &fakeError{"UnknownOperationException", ""}
	}
	if (op == "PutRecord" || op == "PutRecords") && ferr == nil && every(fk.f.hangup, fk.mu.puts) {
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	writeFake(w, out, ferr)
}

func every(n, i int) bool { return n > 0 && i%n == 0 }

func shardName(i int) string { return fmt.Sprintf("shardId-%012d", i) }

// fakeShard maps a partition key to a shard like Kinesis: MD5 as a 128-bit
// number, the hash space split evenly (here by its top 64 bits).
func fakeShard(key string, n int) int {
	sum := md5.Sum([]byte(key))
	hi, _ := bits.Mul64(binary.BigEndian.Uint64(sum[:8]), uint64(n))
	return int(hi)
}

func writeFake(w http.ResponseWriter, out any, ferr *fakeError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if ferr != nil {
		w.WriteHeader(http.StatusBadRequest)
		out = map[string]string{"__type": ferr.typ, "message": ferr.msg}
	}
	json.NewEncoder(w).Encode(out)
}
