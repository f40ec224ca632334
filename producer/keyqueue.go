package producer

import "time"

// keyQueues holds a pipeline's waiting records by partition key, for calls
// that carry at most one record per key (no aggregation, per-key order). A
// call takes the first record of each key in turn, so a key with a backlog
// does not crowd the others out of a call.
type keyQueues struct {
	keys  map[string]*keyQueue
	ready []*keyQueue // ready[rhead:]: the keys with records, in turn
	rhead int
	n     int
}

// keyQueue is one key's records, oldest first: recs[head:].
type keyQueue struct {
	key   string
	recs  []userRecord
	head  int
	ready bool
}

func newKeyQueues() *keyQueues { return &keyQueues{keys: map[string]*keyQueue{}} }

func (k *keyQueues) len() int { return k.n }

// oldest is the first record of the key first in turn, nearly the oldest
// record; there must be one.
func (k *keyQueues) oldest() *userRecord {
	q := k.ready[k.rhead]
	return &q.recs[q.head]
}

func (k *keyQueues) queue(key string) *keyQueue {
	q := k.keys[key]
	if q == nil {
		q = &keyQueue{key: key}
		k.keys[key] = q
	}
	return q
}

// push appends a record.
func (k *keyQueues) push(r *userRecord) {
	q := k.queue(r.key)
	q.recs = append(q.recs, *r)
	k.n++
	if !q.ready {
		q.ready = true
		k.ready = append(k.ready, q)
	}
}

// pushFront puts records back in front of their keys' records, in order,
// and their keys first in turn.
func (k *keyQueues) pushFront(recs []userRecord) {
	for i := len(recs) - 1; i >= 0; i-- {
		r := &recs[i]
		q := k.queue(r.key)
		if q.head > 0 {
			q.head--
			q.recs[q.head] = *r
		} else {
			q.recs = append([]userRecord{*r}, q.recs[q.head:]...)
			q.head = 0
		}
		k.n++
		if !q.ready {
			q.ready = true
			if k.rhead > 0 {
				k.rhead--
				k.ready[k.rhead] = q
			} else {
				k.ready = append([]*keyQueue{q}, k.ready...)
			}
		}
	}
}

// take fills b with the first record of each key in turn, within the
// call's limits, and the expired records it meets. It returns the bytes
// taken.
func (k *keyQueues) take(b *batch, now, ttl time.Duration, maxBytes int) int {
	taken, est := 0, 0
	end := len(k.ready)
	i := k.rhead
	for ; i < end; i++ {
		q := k.ready[i]
		var r *userRecord
		for q.head < len(q.recs) {
			r = &q.recs[q.head]
			if now-r.enq < ttl {
				break
			}
			b.expired = append(b.expired, *r)
			taken += r.size()
			q.recs[q.head] = userRecord{}
			q.head++
			k.n--
			r = nil
		}
		if r != nil {
			sz := r.size()
			if len(b.recs) > 0 && (est+sz > maxBytes || len(b.recs) >= maxRequestRecords) {
				break
			}
			b.recs = append(b.recs, *r)
			est += sz
			taken += sz
			q.recs[q.head] = userRecord{}
			q.head++
			k.n--
		}
		k.ready[i] = nil
		if q.head < len(q.recs) {
			k.ready = append(k.ready, q) // its next record goes in a later call
		} else {
			q.ready = false
			delete(k.keys, q.key)
		}
	}
	k.rhead = i
	if k.rhead == len(k.ready) {
		k.ready, k.rhead = k.ready[:0], 0
	} else if k.rhead > len(k.ready)/2 {
		n := copy(k.ready, k.ready[k.rhead:])
		clear(k.ready[n:])
		k.ready, k.rhead = k.ready[:n], 0
	}
	return taken
}

// drain removes and returns every record, each key's in order.
func (k *keyQueues) drain() []userRecord {
	out := make([]userRecord, 0, k.n)
	for _, q := range k.ready[k.rhead:] {
		out = append(out, q.recs[q.head:]...)
	}
	*k = *newKeyQueues()
	return out
}
