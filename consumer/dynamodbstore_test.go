package consumer

import (
	"strconv"
	"strings"
	"testing"

	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// TestLeaseOf reads lease items of the shapes the KCL writes and refuses
// what is not a lease.
func TestLeaseOf(t *testing.T) {
	S := func(v string) ddb.AttributeValue { return &ddb.AttributeValueMemberS{Value: v} }
	N := func(v string) ddb.AttributeValue { return &ddb.AttributeValueMemberN{Value: v} }
	SS := func(v ...string) ddb.AttributeValue { return &ddb.AttributeValueMemberSS{Value: v} }
	tests := []struct {
		name string
		item map[string]ddb.AttributeValue
		want Lease
		ok   bool
	}{
		{
			name: "KCL 3.x lease",
			item: map[string]ddb.AttributeValue{attrKey: S("shardId-000000000002"), attrOwner: S("w"), attrCounter: N("9"),
				attrCheckpoint: S("4901"), attrSubSeq: N("3"), attrParents: SS("shardId-000000000001", "shardId-000000000000"),
				attrChildren: SS("shardId-000000000004"), attrEntityType: S("LEASE"), "throughputKBps": N("1.5")},
			want: Lease{Key: "shardId-000000000002", Owner: "w", Counter: 9, Checkpoint: "4901", SubSequenceNumber: 3,
				Parents: []string{"shardId-000000000000", "shardId-000000000001"}, Children: []string{"shardId-000000000004"}},
			ok: true,
		},
		{
			name: "KCL 2.x lease without entityType or owner",
			item: map[string]ddb.AttributeValue{attrKey: S("shardId-000000000000"), attrCounter: N("0"), attrCheckpoint: S("TRIM_HORIZON")},
			want: Lease{Key: "shardId-000000000000", Checkpoint: "TRIM_HORIZON"},
			ok:   true,
		},
		{name: "another entity", item: map[string]ddb.AttributeValue{attrKey: S("x"), attrEntityType: S("LEADER")}},
		{name: "entityType not a string", item: map[string]ddb.AttributeValue{attrKey: S("x"), attrEntityType: N("1")}},
		{name: "multi-stream lease", item: map[string]ddb.AttributeValue{attrKey: S("123456789012:orders:1700000000:shardId-000000000000"), attrCounter: N("1")}},
		{name: "no key", item: map[string]ddb.AttributeValue{attrCounter: N("1")}},
		{name: "key not a string", item: map[string]ddb.AttributeValue{attrKey: N("1")}},
		{name: "negative counter", item: map[string]ddb.AttributeValue{attrKey: S("x"), attrCounter: N("-1")}},
		{name: "fractional counter", item: map[string]ddb.AttributeValue{attrKey: S("x"), attrCounter: N("1.5")}},
		{name: "counter a string", item: map[string]ddb.AttributeValue{attrKey: S("x"), attrCounter: S("1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := leaseOf(tt.item)
			if ok != tt.ok || got.Key != tt.want.Key || got.Owner != tt.want.Owner || got.Counter != tt.want.Counter ||
				got.Checkpoint != tt.want.Checkpoint || got.SubSequenceNumber != tt.want.SubSequenceNumber ||
				!equal(got.Parents, tt.want.Parents) || !equal(got.Children, tt.want.Children) {
				t.Fatalf("leaseOf = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzLeaseOf feeds lease items of arbitrary attribute values, as another
// program may have written them to the table: none may panic, and a lease
// read back is written by the store's own encoding to the same numbers.
func FuzzLeaseOf(f *testing.F) {
	f.Add("shardId-000000000000", "w", "7", "TRIM_HORIZON", "0", "LEASE", uint8(0))
	f.Add("", "", "-1", "", "1e3", "STREAM", uint8(1))
	f.Add("k", "o", "18446744073709551615", "SHARD_END", "99999999999999999999", "", uint8(2))
	f.Fuzz(func(t *testing.T, key, owner, counter, checkpoint, sub, entity string, shape uint8) {
		item := map[string]ddb.AttributeValue{attrKey: &ddb.AttributeValueMemberS{Value: key}}
		if shape&1 == 0 {
			item[attrOwner] = &ddb.AttributeValueMemberS{Value: owner}
		} else {
			item[attrOwner] = &ddb.AttributeValueMemberN{Value: owner}
		}
		item[attrCounter] = &ddb.AttributeValueMemberN{Value: counter}
		item[attrSubSeq] = &ddb.AttributeValueMemberN{Value: sub}
		if shape&2 == 0 {
			item[attrCheckpoint] = &ddb.AttributeValueMemberS{Value: checkpoint}
		} else {
			item[attrCheckpoint] = &ddb.AttributeValueMemberSS{Value: []string{checkpoint}}
		}
		if shape&4 == 0 {
			item[attrEntityType] = &ddb.AttributeValueMemberS{Value: entity}
		}
		if shape&8 != 0 {
			item[attrParents] = &ddb.AttributeValueMemberSS{Value: []string{checkpoint, owner}}
			item[attrChildren] = &ddb.AttributeValueMemberS{Value: owner}
		}
		l, ok := leaseOf(item)
		if !ok {
			return
		}
		if l.Key != key || key == "" || strings.Contains(key, ":") {
			t.Fatalf("key %q read as %q", key, l.Key)
		}
		if num(l.Counter).(*ddb.AttributeValueMemberN).Value != strconv.FormatUint(l.Counter, 10) {
			t.Fatalf("counter %d does not round-trip", l.Counter)
		}
		if c, err := strconv.ParseUint(counter, 10, 64); err != nil || c != l.Counter {
			t.Fatalf("counter %q read as %d", counter, l.Counter)
		}
	})
}
