package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// leaderAsk bounds a question to a bucket's leader that only confirms a
// replica's answer.
const leaderAsk = 2 * time.Second

// kvGet returns key's value in kv and its revision, or ErrKeyNotFound.
//
// A bucket's gets are answered by any replica, and one that has not yet
// applied the newest writes may not know a key another gateway just created.
// So "not found" is asked again of the bucket's leader, which knows every
// acknowledged write: a key created through one gateway is found at once
// through every other. (A key found is at most as stale as the replica; the
// callers compare-and-set on the revision, and the watch refreshes caches.)
func (e *Engine) kvGet(ctx context.Context, kv jetstream.KeyValue, key string) ([]byte, uint64, error) {
	ent, err := kv.Get(ctx, key)
	if err == nil {
		return ent.Value(), ent.Revision(), nil
	}
	if e.opts.Replicas == 1 || !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil, 0, err
	}
	seq, hdrs, data, err := e.leaderLastMsg(ctx, kv.Bucket(), key)
	if err != nil {
		// No leader to ask (an election): the replica's answer stands.
		return nil, 0, jetstream.ErrKeyNotFound
	}
	if seq == 0 {
		return nil, 0, jetstream.ErrKeyNotFound
	}
	if len(hdrs) > 0 {
		h, err := nats.DecodeHeadersMsg(hdrs)
		if err != nil {
			return nil, 0, fmt.Errorf("jetstream: bucket %s: %v", kv.Bucket(), err)
		}
		if op := h.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
			return nil, 0, jetstream.ErrKeyDeleted
		}
	}
	return data, seq, nil
}

// leaderLastMsg returns the last message of the bucket's stream whose key
// matches filter (a key or a pattern of keys), as the stream's leader knows
// it: its revision (0 for none), headers and value. Between leaders nobody
// answers: it waits at most leaderAsk.
func (e *Engine) leaderLastMsg(ctx context.Context, bucket, filter string) (uint64, []byte, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, min(leaderAsk, e.opts.RequestTimeout))
	defer cancel()
	req, _ := json.Marshal(map[string]string{"last_by_subj": "$KV." + bucket + "." + filter})
	resp, err := e.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET.KV_"+bucket, req)
	if err != nil {
		return 0, nil, nil, err
	}
	var ans struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ans); err != nil {
		return 0, nil, nil, fmt.Errorf("jetstream: bucket %s: bad answer %q", bucket, resp.Data)
	}
	if ans.Error != nil {
		if ans.Error.ErrCode == errCodeNoMessageFound {
			return 0, nil, nil, nil
		}
		return 0, nil, nil, fmt.Errorf("jetstream: bucket %s: %w", bucket, ans.Error)
	}
	return ans.Message.Seq, ans.Message.Hdrs, ans.Message.Data, nil
}
