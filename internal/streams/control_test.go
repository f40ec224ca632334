package streams

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runnel/runnel/internal/engine"
)

// split closes shard idx of stream name and adds two children splitting its
// range in the middle, the way SplitShard will (a test stand-in for it).
func (e *env) split(name string, idx int) {
	e.t.Helper()
	ctx := context.Background()
	st, err := e.svc.fetch(ctx, name)
	if err != nil || st == nil {
		e.t.Fatal(err)
	}
	l, err := st.shards[idx].handle(ctx, e.eng)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := l.Seal(ctx); err != nil {
		e.t.Fatal(err)
	}
	info, _ := l.Info(ctx)
	_, err = e.svc.update(ctx, name, func(m *streamMeta, now int64) error {
		p := &m.Shards[idx]
		p.Closed, p.EndOffset = now, info.Next
		lo, _ := parseHashKey(p.Start)
		hi, _ := parseHashKey(p.End)
		mid, _ := hi.sub(0).divmod(2)
		mid = mid.add(lo.hi/2 + 0) // good enough: any point strictly inside
		if mid.cmp(lo) <= 0 {
			mid = lo.add(1)
		}
		for _, r := range [][2]hashKey{{lo, mid.sub(1)}, {mid, hi}} {
			i := len(m.Shards)
			if err := e.eng.CreateLog(ctx, logName(m.ID, i), engine.LogOptions{}); err != nil {
				return err
			}
			m.Shards = append(m.Shards, shardMeta{Parents: []int{idx}, Start: r[0].String(), End: r[1].String(), Created: now})
		}
		return nil
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func shardIDs(sh []Shard) string {
	var ids []string
	for _, s := range sh {
		ids = append(ids, strings.TrimPrefix(s.ShardId, "shardId-00000000000"))
	}
	return strings.Join(ids, ",")
}

func TestListShardsFilters(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 2) // shards 0, 1 at t0
	t0 := e.clock.Now()
	e.clock.Advance(time.Hour)
	e.split("s", 0) // 0 closes at t1; children 2, 3
	t1 := e.clock.Now()
	e.clock.Advance(time.Hour)
	e.split("s", 3) // 3 closes at t2; children 4, 5
	e.clock.Advance(time.Hour)

	tsp := func(t time.Time) *Timestamp { return &Timestamp{t} }
	for _, tc := range []struct {
		name   string
		filter *ShardFilter
		want   string
	}{
		{"none", nil, "0,1,2,3,4,5"},
		{"from trim horizon", &ShardFilter{Type: sp("FROM_TRIM_HORIZON")}, "0,1,2,3,4,5"},
		// The stream is younger than its retention: every shard.
		{"at trim horizon", &ShardFilter{Type: sp("AT_TRIM_HORIZON")}, "0,1,2,3,4,5"},
		{"at latest", &ShardFilter{Type: sp("AT_LATEST")}, "1,2,4,5"},
		{"after shard id", &ShardFilter{Type: sp("AFTER_SHARD_ID"), ShardId: sp("shardId-000000000002")}, "3,4,5"},
		{"at timestamp t0", &ShardFilter{Type: sp("AT_TIMESTAMP"), Timestamp: tsp(t0)}, "0,1"},
		{"at timestamp before creation", &ShardFilter{Type: sp("AT_TIMESTAMP"), Timestamp: tsp(t0.Add(-time.Hour))}, "0,1,2,3,4,5"},
		{"at timestamp t1", &ShardFilter{Type: sp("AT_TIMESTAMP"), Timestamp: tsp(t1)}, "0,1,2,3"},
		{"from timestamp t1", &ShardFilter{Type: sp("FROM_TIMESTAMP"), Timestamp: tsp(t1)}, "0,1,2,3,4,5"},
		{"from timestamp before creation", &ShardFilter{Type: sp("FROM_TIMESTAMP"), Timestamp: tsp(t0.Add(-time.Hour))}, "0,1,2,3,4,5"},
		{"at timestamp t1+", &ShardFilter{Type: sp("AT_TIMESTAMP"), Timestamp: tsp(t1.Add(time.Minute))}, "1,2,3"},
		{"from timestamp t1+", &ShardFilter{Type: sp("FROM_TIMESTAMP"), Timestamp: tsp(t1.Add(time.Minute))}, "1,2,3,4,5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s"), ShardFilter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			if got := shardIDs(out.Shards); got != tc.want {
				t.Fatalf("shards %s, want %s", got, tc.want)
			}
		})
	}
	// Lineage and closed ranges are reported.
	out, _ := e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s")})
	if out.Shards[0].SequenceNumberRange.EndingSequenceNumber == nil || out.Shards[1].SequenceNumberRange.EndingSequenceNumber != nil ||
		*out.Shards[2].ParentShardId != "shardId-000000000000" || out.Shards[2].AdjacentParentShardId != nil ||
		out.Shards[4].SequenceNumberRange.StartingSequenceNumber <= *out.Shards[3].SequenceNumberRange.EndingSequenceNumber {
		t.Fatalf("lineage %+v", out.Shards)
	}
	// Closed shards expire from listings after the retention period.
	e.clock.Advance(22 * time.Hour)
	out, _ = e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s")})
	if got := shardIDs(out.Shards); got != "1,2,3,4,5" {
		t.Fatalf("after retention: %s", got)
	}
	// The trim horizon is now t1: the shards open at it, the one closed
	// exactly then no longer retained.
	out, _ = e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s"), ShardFilter: &ShardFilter{Type: sp("AT_TRIM_HORIZON")}})
	if got := shardIDs(out.Shards); got != "1,2,3" {
		t.Fatalf("at trim horizon after retention: %s", got)
	}
}

func TestListShardsPaging(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 7)
	out, err := e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s"), MaxResults: ip(3)})
	if err != nil {
		t.Fatal(err)
	}
	var pages []string
	for {
		pages = append(pages, shardIDs(out.Shards))
		if out.NextToken == nil {
			break
		}
		if out, err = e.svc.ListShards(ctx, &ListShardsInput{NextToken: out.NextToken}); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(pages, "|") != "0,1,2|3,4,5|6" {
		t.Fatalf("pages %v", pages)
	}
	out, _ = e.svc.ListShards(ctx, &ListShardsInput{StreamARN: sp("arn:aws:kinesis:us-east-1:000000000000:stream/s"), ExclusiveStartShardId: sp("shardId-000000000004")})
	if shardIDs(out.Shards) != "5,6" {
		t.Fatalf("exclusive start %s", shardIDs(out.Shards))
	}
	tok, _ := e.svc.ListShards(ctx, &ListShardsInput{StreamName: sp("s"), MaxResults: ip(1)})
	for _, tc := range []struct {
		name string
		in   *ListShardsInput
		code Code
		msg  string
	}{
		{"nothing", &ListShardsInput{}, CodeInvalidArgument, "Either NextToken or StreamName should be provided."},
		{"token and name", &ListShardsInput{StreamName: sp("s"), NextToken: tok.NextToken}, CodeInvalidArgument, "NextToken and StreamName cannot be provided together."},
		{"token and start", &ListShardsInput{ExclusiveStartShardId: sp("x"), NextToken: tok.NextToken}, CodeInvalidArgument, ""},
		{"token and filter", &ListShardsInput{ShardFilter: &ShardFilter{Type: sp("AT_LATEST")}, NextToken: tok.NextToken}, CodeInvalidArgument, ""},
		{"bad token", &ListShardsInput{NextToken: sp("abc")}, CodeInvalidArgument, "Invalid NextToken."},
		{"iterator as token", &ListShardsInput{NextToken: sp(e.iter("s", "0", "LATEST", nil))}, CodeInvalidArgument, "Invalid NextToken."},
		{"missing stream", &ListShardsInput{StreamName: sp("x")}, CodeResourceNotFound, "Stream x under account 000000000000 not found."},
		{"wrong creation time", &ListShardsInput{StreamName: sp("s"), StreamCreationTimestamp: &Timestamp{time.Unix(5, 0)}}, CodeResourceNotFound, ""},
		{"bad filter", &ListShardsInput{StreamName: sp("s"), ShardFilter: &ShardFilter{Type: sp("SOON")}}, CodeValidation, ""},
		{"filter without type", &ListShardsInput{StreamName: sp("s"), ShardFilter: &ShardFilter{}}, CodeValidation, ""},
		{"after without id", &ListShardsInput{StreamName: sp("s"), ShardFilter: &ShardFilter{Type: sp("AFTER_SHARD_ID")}}, CodeInvalidArgument, ""},
		{"timestamp without time", &ListShardsInput{StreamName: sp("s"), ShardFilter: &ShardFilter{Type: sp("AT_TIMESTAMP")}}, CodeInvalidArgument, ""},
		{"zero max", &ListShardsInput{StreamName: sp("s"), MaxResults: ip(0)}, CodeValidation, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.ListShards(ctx, tc.in)
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	e.clock.Advance(301 * time.Second)
	_, err = e.svc.ListShards(ctx, &ListShardsInput{NextToken: tok.NextToken})
	wantErr(t, err, CodeExpiredNextToken, "The NextToken has expired. Tokens are valid for 300 seconds.")
}

func TestClosedShardDrains(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	p := e.put("s", "a", "before")
	e.clock.Advance(2 * time.Second)
	e.split("s", 0)
	it := e.iter("s", "shardId-000000000000", "TRIM_HORIZON", nil)
	out := e.get(it, 0)
	if len(out.Records) != 1 || out.NextShardIterator != nil || len(out.ChildShards) != 2 ||
		out.ChildShards[0].ShardId != "shardId-000000000001" || out.ChildShards[0].ParentShards[0] != "shardId-000000000000" {
		t.Fatalf("drain %+v", out)
	}
	// LATEST on a closed shard is at its end.
	out = e.get(e.iter("s", "shardId-000000000000", "LATEST", nil), 0)
	if out.NextShardIterator != nil || len(out.Records) != 0 {
		t.Fatalf("latest on closed %+v", out)
	}
	// New records go to the children, whose numbers sort above the parent's.
	q := e.put("s", "a", "after")
	if q.ShardId == "shardId-000000000000" || q.SequenceNumber <= p.SequenceNumber {
		t.Fatalf("after split %+v", q)
	}
	sum, _ := e.svc.DescribeStreamSummary(ctx, &DescribeStreamSummaryInput{StreamName: sp("s")})
	if sum.StreamDescriptionSummary.OpenShardCount != 2 {
		t.Fatal("open shard count")
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 2)
	type req = DecreaseStreamRetentionPeriodInput
	for _, tc := range []struct {
		name     string
		increase bool
		in       *req
		code     Code
		msg      string
	}{
		{"too short", true, &req{StreamName: sp("s"), RetentionPeriodHours: ip(23)}, CodeInvalidArgument, "Minimum allowed retention period is 24 hours. Requested retention period (23 hours) is too short."},
		{"too long", true, &req{StreamName: sp("s"), RetentionPeriodHours: ip(8761)}, CodeInvalidArgument, "Maximum allowed retention period is 8760 hours. Requested retention period (8761 hours) is too long."},
		{"decrease too short", false, &req{StreamName: sp("s"), RetentionPeriodHours: ip(-5)}, CodeInvalidArgument, "Minimum allowed retention period is 24 hours. Requested retention period (-5 hours) is too short."},
		{"decrease up", false, &req{StreamName: sp("s"), RetentionPeriodHours: ip(48)}, CodeInvalidArgument, "Requested retention period (48 hours) for stream s can not be longer than existing retention period (24 hours). Use IncreaseRetentionPeriod API."},
		{"missing hours", true, &req{StreamName: sp("s")}, CodeValidation, ""},
		{"missing stream", true, &req{StreamName: sp("x"), RetentionPeriodHours: ip(48)}, CodeResourceNotFound, "Stream x under account 000000000000 not found."},
		{"nil", true, nil, CodeInvalidArgument, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.increase {
				err = e.svc.IncreaseStreamRetentionPeriod(ctx, tc.in)
			} else {
				err = e.svc.DecreaseStreamRetentionPeriod(ctx, tc.in)
			}
			wantErr(t, err, tc.code, tc.msg)
		})
	}
	logRetention := func() time.Duration {
		t.Helper()
		st, _ := e.svc.fetch(ctx, "s")
		var d time.Duration
		for _, sh := range st.shards {
			l, _ := sh.handle(ctx, e.eng)
			info, _ := l.Info(ctx)
			if d != 0 && info.Retention != d {
				t.Fatal("shard logs disagree")
			}
			d = info.Retention
		}
		return d
	}
	if err := e.svc.IncreaseStreamRetentionPeriod(ctx, &req{StreamName: sp("s"), RetentionPeriodHours: ip(8760)}); err != nil {
		t.Fatal(err)
	}
	if d := logRetention(); d != 8760*time.Hour {
		t.Fatalf("log retention %v", d)
	}
	wantErr(t, e.svc.IncreaseStreamRetentionPeriod(ctx, &req{StreamName: sp("s"), RetentionPeriodHours: ip(100)}), CodeInvalidArgument,
		"Requested retention period (100 hours) for stream s can not be shorter than existing retention period (8760 hours). Use DecreaseRetentionPeriod API.")
	if err := e.svc.DecreaseStreamRetentionPeriod(ctx, &req{StreamARN: sp("arn:aws:kinesis:us-east-1:000000000000:stream/s"), RetentionPeriodHours: ip(48)}); err != nil {
		t.Fatal(err)
	}
	if d := logRetention(); d != 48*time.Hour {
		t.Fatalf("log retention %v", d)
	}
	d, _ := e.svc.DescribeStream(ctx, &DescribeStreamInput{StreamName: sp("s")})
	if d.StreamDescription.RetentionPeriodHours != 48 {
		t.Fatal("retention not described")
	}
}

func TestTags(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	arn := "arn:aws:kinesis:us-east-1:000000000000:stream/s"
	if err := e.svc.AddTagsToStream(ctx, &AddTagsToStreamInput{StreamName: sp("s"), Tags: map[string]string{"b": "2", "a": "1", "c": ""}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.TagResource(ctx, &TagResourceInput{ResourceARN: &arn, Tags: map[string]string{"d": "4", "a": "one"}}); err != nil {
		t.Fatal(err)
	}
	list := func(in *ListTagsForStreamInput) string {
		t.Helper()
		in.StreamName = sp("s")
		out, err := e.svc.ListTagsForStream(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var kv []string
		for _, tg := range out.Tags {
			kv = append(kv, *tg.Key+"="+*tg.Value)
		}
		return fmt.Sprint(strings.Join(kv, ","), " ", out.HasMoreTags)
	}
	if got := list(&ListTagsForStreamInput{}); got != "a=one,b=2,c=,d=4 false" {
		t.Fatalf("tags %s", got)
	}
	if got := list(&ListTagsForStreamInput{Limit: ip(2)}); got != "a=one,b=2 true" {
		t.Fatalf("tags limit %s", got)
	}
	if got := list(&ListTagsForStreamInput{ExclusiveStartTagKey: sp("b"), Limit: ip(1)}); got != "c= true" {
		t.Fatalf("tags after b %s", got)
	}
	if err := e.svc.RemoveTagsFromStream(ctx, &RemoveTagsFromStreamInput{StreamName: sp("s"), TagKeys: []string{"b", "zz"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.UntagResource(ctx, &UntagResourceInput{ResourceARN: &arn, TagKeys: []string{"c"}}); err != nil {
		t.Fatal(err)
	}
	out, err := e.svc.ListTagsForResource(ctx, &ListTagsForResourceInput{ResourceARN: &arn})
	if err != nil || len(out.Tags) != 2 || *out.Tags[0].Key != "a" || *out.Tags[1].Key != "d" {
		t.Fatalf("resource tags %+v %v", out, err)
	}
	many := map[string]string{}
	for i := range 49 {
		many[fmt.Sprint("t", i)] = ""
	}
	wantErr(t, e.svc.AddTagsToStream(ctx, &AddTagsToStreamInput{StreamName: sp("s"), Tags: many}), CodeInvalidArgument,
		"Failed to add tags to stream s under account 000000000000 because a given stream cannot have more than 50 tags associated with it.")
	wantErr(t, e.svc.AddTagsToStream(ctx, &AddTagsToStreamInput{StreamName: sp("s"), Tags: map[string]string{"a%": "x"}}), CodeInvalidArgument, "")
	wantErr(t, e.svc.AddTagsToStream(ctx, &AddTagsToStreamInput{StreamName: sp("s"), Tags: map[string]string{"a\tb": "x"}}), CodeInvalidArgument, errTagChars)
	wantErr(t, e.svc.AddTagsToStream(ctx, &AddTagsToStreamInput{StreamName: sp("s")}), CodeValidation, "")
	wantErr(t, e.svc.RemoveTagsFromStream(ctx, &RemoveTagsFromStreamInput{StreamName: sp("s"), TagKeys: []string{"a;"}}), CodeInvalidArgument, "")
	wantErr(t, e.svc.RemoveTagsFromStream(ctx, &RemoveTagsFromStreamInput{StreamName: sp("s")}), CodeValidation, "")
	for _, tc := range []struct {
		arn  *string
		code Code
	}{
		{nil, CodeValidation},
		{sp("arn:aws:kinesis:us-east-1:000000000000:stream/nope"), CodeResourceNotFound},
		{sp("arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1700000000"), CodeResourceNotFound},
		{sp("arn:aws:kinesis:eu-west-1:000000000000:stream/s"), CodeResourceNotFound},
		{sp("arn:aws:sqs:us-east-1:000000000000:q"), CodeInvalidArgument},
		{sp("nonsense"), CodeInvalidArgument},
	} {
		_, err := e.svc.ListTagsForResource(ctx, &ListTagsForResourceInput{ResourceARN: tc.arn})
		wantErr(t, err, tc.code, "")
	}
}

func TestEnhancedMonitoring(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	out, err := e.svc.EnableEnhancedMonitoring(ctx, &EnhancedMonitoringInput{StreamName: sp("s"), ShardLevelMetrics: []string{"OutgoingBytes", "IncomingBytes"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.CurrentShardLevelMetrics) != 0 || strings.Join(out.DesiredShardLevelMetrics, ",") != "IncomingBytes,OutgoingBytes" ||
		out.StreamARN != "arn:aws:kinesis:us-east-1:000000000000:stream/s" {
		t.Fatalf("enable %+v", out)
	}
	out, err = e.svc.EnableEnhancedMonitoring(ctx, &EnhancedMonitoringInput{StreamName: sp("s"), ShardLevelMetrics: []string{"ALL"}})
	if err != nil || len(out.DesiredShardLevelMetrics) != 7 || len(out.CurrentShardLevelMetrics) != 2 {
		t.Fatalf("enable ALL %+v %v", out, err)
	}
	out, err = e.svc.DisableEnhancedMonitoring(ctx, &EnhancedMonitoringInput{StreamName: sp("s"), ShardLevelMetrics: []string{"IncomingBytes"}})
	if err != nil || len(out.DesiredShardLevelMetrics) != 6 || len(out.CurrentShardLevelMetrics) != 7 {
		t.Fatalf("disable %+v %v", out, err)
	}
	d, _ := e.svc.DescribeStream(ctx, &DescribeStreamInput{StreamName: sp("s")})
	if len(d.StreamDescription.EnhancedMonitoring) != 1 || len(d.StreamDescription.EnhancedMonitoring[0].ShardLevelMetrics) != 6 {
		t.Fatalf("described %+v", d.StreamDescription.EnhancedMonitoring)
	}
	out, err = e.svc.DisableEnhancedMonitoring(ctx, &EnhancedMonitoringInput{StreamName: sp("s"), ShardLevelMetrics: []string{"ALL"}})
	if err != nil || len(out.DesiredShardLevelMetrics) != 0 || out.DesiredShardLevelMetrics == nil {
		t.Fatalf("disable ALL %+v %v", out, err)
	}
	_, err = e.svc.EnableEnhancedMonitoring(ctx, &EnhancedMonitoringInput{StreamName: sp("s"), ShardLevelMetrics: []string{"Nope"}})
	wantErr(t, err, CodeValidation, "")
	_, err = e.svc.EnableEnhancedMonitoring(ctx, &EnhancedMonitoringInput{StreamName: sp("s")})
	wantErr(t, err, CodeValidation, "")
}

func TestResourcePolicyAndAccount(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 1)
	arn := sp("arn:aws:kinesis:us-east-1:000000000000:stream/s")
	got, err := e.svc.GetResourcePolicy(ctx, &GetResourcePolicyInput{ResourceARN: arn})
	if err != nil || got.Policy != "{}" {
		t.Fatalf("empty policy %+v %v", got, err)
	}
	wantErr(t, e.svc.DeleteResourcePolicy(ctx, &DeleteResourcePolicyInput{ResourceARN: arn}), CodeResourceNotFound,
		"No resource policy found for resource ARN arn:aws:kinesis:us-east-1:000000000000:stream/s.")
	pol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kinesis:GetRecords","Resource":"*"}]}`
	if err := e.svc.PutResourcePolicy(ctx, &PutResourcePolicyInput{ResourceARN: arn, Policy: &pol}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.svc.GetResourcePolicy(ctx, &GetResourcePolicyInput{ResourceARN: arn}); got.Policy != pol {
		t.Fatalf("policy %q", got.Policy)
	}
	wantErr(t, e.svc.PutResourcePolicy(ctx, &PutResourcePolicyInput{ResourceARN: arn, Policy: sp("{")}), CodeInvalidArgument, "Policy document is not valid JSON.")
	wantErr(t, e.svc.PutResourcePolicy(ctx, &PutResourcePolicyInput{ResourceARN: arn, Policy: sp(`{"Version":"2012-10-17","Statement":[]}`)}),
		CodeInvalidArgument, "Invalid policy document: Statement is empty.")
	wantErr(t, e.svc.PutResourcePolicy(ctx, &PutResourcePolicyInput{ResourceARN: arn, Policy: sp(`{"Statement":{"Effect":"Allow","Action":"kinesis:*","Resource":"*"}}`)}),
		CodeInvalidArgument, "Invalid policy document: Statement 1: missing required element Principal or NotPrincipal in a resource-based policy.")
	if got, _ := e.svc.GetResourcePolicy(ctx, &GetResourcePolicyInput{ResourceARN: arn}); got.Policy != pol {
		t.Fatalf("a refused policy replaced the stored one: %q", got.Policy)
	}
	wantErr(t, e.svc.PutResourcePolicy(ctx, &PutResourcePolicyInput{ResourceARN: arn}), CodeValidation, "")
	if err := e.svc.DeleteResourcePolicy(ctx, &DeleteResourcePolicyInput{ResourceARN: arn}); err != nil {
		t.Fatal(err)
	}
	acct, err := e.svc.DescribeAccountSettings(ctx, nil)
	if err != nil || acct.MinimumThroughputBillingCommitment.Status != "DISABLED" {
		t.Fatalf("account %+v %v", acct, err)
	}
}

// TestNilInputs calls every operation with a nil input and with an empty
// one: errors, never panics.
func TestNilInputs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	s := e.svc
	calls := []func() error{
		func() error { return s.CreateStream(ctx, nil) },
		func() error { return s.DeleteStream(ctx, nil) },
		func() error { _, err := s.DescribeStream(ctx, nil); return err },
		func() error { _, err := s.DescribeStreamSummary(ctx, nil); return err },
		func() error { _, err := s.ListShards(ctx, nil); return err },
		func() error { _, err := s.PutRecord(ctx, nil); return err },
		func() error { _, err := s.PutRecords(ctx, nil); return err },
		func() error { _, err := s.GetShardIterator(ctx, nil); return err },
		func() error { _, err := s.GetRecords(ctx, nil); return err },
		func() error { return s.AddTagsToStream(ctx, nil) },
		func() error { return s.RemoveTagsFromStream(ctx, nil) },
		func() error { _, err := s.ListTagsForStream(ctx, nil); return err },
		func() error { return s.TagResource(ctx, nil) },
		func() error { return s.UntagResource(ctx, nil) },
		func() error { _, err := s.ListTagsForResource(ctx, nil); return err },
		func() error { return s.IncreaseStreamRetentionPeriod(ctx, nil) },
		func() error { return s.DecreaseStreamRetentionPeriod(ctx, nil) },
		func() error { return s.UpdateMaxRecordSize(ctx, nil) },
		func() error { _, err := s.EnableEnhancedMonitoring(ctx, nil); return err },
		func() error { _, err := s.DisableEnhancedMonitoring(ctx, nil); return err },
		func() error { return s.StartStreamEncryption(ctx, nil) },
		func() error { return s.StopStreamEncryption(ctx, nil) },
		func() error { return s.PutResourcePolicy(ctx, nil) },
		func() error { _, err := s.GetResourcePolicy(ctx, nil); return err },
		func() error { return s.DeleteResourcePolicy(ctx, nil) },
	}
	for i, c := range calls {
		var e *Error
		if err := c(); !errorsAs(err, &e) {
			t.Errorf("call %d: %v is not a Kinesis error", i, err)
		}
	}
	// The same with a stream that exists but an input missing its members.
	e.create("s", 1)
	for i, c := range []func() error{
		func() error { _, err := s.PutRecord(ctx, &PutRecordInput{StreamName: sp("s")}); return err },
		func() error {
			_, err := s.GetShardIterator(ctx, &GetShardIteratorInput{StreamName: sp("s")})
			return err
		},
		func() error {
			return s.IncreaseStreamRetentionPeriod(ctx, &IncreaseStreamRetentionPeriodInput{StreamName: sp("s")})
		},
		func() error { return s.StartStreamEncryption(ctx, &StreamEncryptionInput{StreamName: sp("s")}) },
		func() error {
			_, err := s.PutRecords(ctx, &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{{}}})
			return err
		},
	} {
		var e *Error
		if err := c(); !errorsAs(err, &e) {
			t.Errorf("member call %d: %v is not a Kinesis error", i, err)
		}
	}
}

// TestConcurrentControlPlane changes one stream from many goroutines: every
// change lands (compare-and-set retries) and the data plane keeps working.
func TestConcurrentControlPlane(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create("s", 2)
	done := make(chan error, 40)
	for i := range 20 {
		go func() {
			done <- e.svc.AddTagsToStream(ctx, &AddTagsToStreamInput{StreamName: sp("s"), Tags: map[string]string{fmt.Sprint("k", i): "v"}})
		}()
		go func() {
			_, err := e.svc.PutRecords(ctx, &PutRecordsInput{StreamName: sp("s"), Records: []PutRecordsRequestEntry{
				{PartitionKey: sp(fmt.Sprint(i)), Data: []byte("x")}, {PartitionKey: sp(fmt.Sprint(i + 100)), Data: []byte("y")},
			}})
			done <- err
		}()
	}
	for range 40 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	out, _ := e.svc.ListTagsForStream(ctx, &ListTagsForStreamInput{StreamName: sp("s")})
	if len(out.Tags) != 20 {
		t.Fatalf("%d tags, want 20", len(out.Tags))
	}
}

// TestRetentionReconciledAtStart: a crash between a retention change's
// metadata write and its application to the shard logs would leave the logs
// expiring records on the old schedule; a restarted service applies the
// stored retention to them.
func TestRetentionReconciledAtStart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.create("s", 2)
	if err := e.svc.IncreaseStreamRetentionPeriod(ctx, &IncreaseStreamRetentionPeriodInput{StreamName: sp("s"), RetentionPeriodHours: ip(168)}); err != nil {
		t.Fatal(err)
	}
	names, err := e.eng.ListLogs(ctx, "")
	if err != nil || len(names) != 2 {
		t.Fatalf("logs %v, %v", names, err)
	}
	// The crash: the logs still have the old retention.
	for _, n := range names {
		l, err := e.eng.Log(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.SetRetention(ctx, 24*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	e.restart()
	deadline := time.Now().Add(5 * time.Second)
	for _, n := range names {
		for {
			l, err := e.eng.Log(ctx, n)
			if err != nil {
				t.Fatal(err)
			}
			info, err := l.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Retention == 168*time.Hour {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("log %s keeps retention %v after a restart, want 168h", n, info.Retention)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
