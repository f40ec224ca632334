package console

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/runnel/runnel/internal/engine/mem"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/streams"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t      testing.TB
	svc    *streams.Service
	leases *leases.Service
	clock  *clock
	c      *Console
	srv    *httptest.Server
	http   *http.Client
}

// newEnv starts a console on a service on a memory engine, with a fake
// clock, immediate transitions and no background sampler.
func newEnv(t testing.TB) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)}
	eo := mem.DefaultOptions()
	eo.Now = clk.Now
	eng := mem.New(eo)
	so := streams.DefaultOptions()
	so.Now = clk.Now
	so.TransitionDelay = 0
	svc, err := streams.New(context.Background(), eng, so)
	if err != nil {
		t.Fatal(err)
	}
	ls := leases.New(eng.Meta(), leases.OnStreams(svc), leases.Options{Now: clk.Now})
	lag := &LeaseLag{Streams: svc, Leases: ls, Now: clk.Now}
	opts := DefaultOptions()
	opts.Streams, opts.Leases, opts.Now = svc, ls, clk.Now
	opts.Rates = NewSampler(svc, lag, 10, clk.Now)
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	jar, _ := cookiejar.New(nil)
	e := &env{t: t, svc: svc, leases: ls, clock: clk, c: c, srv: srv,
		http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(func() {
		srv.Close()
		c.Close()
		svc.Close()
		eng.Close()
	})
	return e
}

func (e *env) get(path string) (int, string) {
	e.t.Helper()
	resp, err := e.http.Get(e.srv.URL + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var tokenRE = regexp.MustCompile(`name="token" value="([^"]+)"`)

// token loads the streams page and returns its form token.
func (e *env) token() string {
	e.t.Helper()
	_, body := e.get("/console/")
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		e.t.Fatal("no form token on the page")
	}
	return m[1]
}

func (e *env) post(path string, form url.Values, header http.Header) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (e *env) create(name string, shards int32) {
	e.t.Helper()
	if err := e.svc.CreateStream(context.Background(), &streams.CreateStreamInput{StreamName: &name, ShardCount: &shards}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) put(name, pk, data string) *streams.PutRecordOutput {
	e.t.Helper()
	out, err := e.svc.PutRecord(context.Background(), &streams.PutRecordInput{StreamName: &name, PartitionKey: &pk, Data: []byte(data)})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) exists(name string) bool {
	_, err := e.svc.DescribeStreamSummary(context.Background(), &streams.DescribeStreamSummaryInput{StreamName: &name})
	return err == nil
}

func TestFormsAreCSRFSafe(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	cases := []struct {
		name   string
		token  string
		header http.Header
		ok     bool
	}{
		{"no token", "", nil, false},
		{"wrong token", tok + "x", nil, false},
		{"cross-site fetch", tok, http.Header{"Sec-Fetch-Site": {"cross-site"}}, false},
		{"foreign origin", tok, http.Header{"Origin": {"http://evil.example"}}, false},
		{"foreign referer", tok, http.Header{"Referer": {"http://evil.example/page"}}, false},
		{"same origin", tok, http.Header{"Origin": {e.srv.URL}, "Sec-Fetch-Site": {"same-origin"}}, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("s%d", i)
			resp := e.post("/console/streams", url.Values{"token": {tc.token}, "name": {name}, "shards": {"2"}}, tc.header)
			if tc.ok {
				if resp.StatusCode != http.StatusSeeOther || !e.exists(name) {
					t.Fatalf("status %d, exists %v; want 303 and the stream", resp.StatusCode, e.exists(name))
				}
				return
			}
			if resp.StatusCode != http.StatusForbidden || e.exists(name) {
				t.Fatalf("status %d, exists %v; want 403 and no stream", resp.StatusCode, e.exists(name))
			}
		})
	}
	// A token belongs to its session: another client's cookie fails.
	other := newEnv(t)
	resp := other.post("/console/streams", url.Values{"token": {other.token()}, "name": {"x"}, "shards": {"1"}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("other session's own token: %d", resp.StatusCode)
	}
	resp = e.post("/console/streams", url.Values{"token": {other.token()}, "name": {"y"}, "shards": {"1"}}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a token of another session: %d, want 403", resp.StatusCode)
	}
}

func TestFormsChangeStreams(t *testing.T) {
	e := newEnv(t)
	tok := e.token()
	resp := e.post("/console/streams", url.Values{"token": {tok}, "name": {"orders"}, "shards": {"2"}}, nil)
	if loc := resp.Header.Get("Location"); loc != "/console/streams/orders" {
		t.Fatalf("create redirected to %q", loc)
	}
	// An error of the service comes back with its Kinesis type.
	resp = e.post("/console/streams", url.Values{"token": {tok}, "name": {"orders"}, "shards": {"2"}}, nil)
	_, body := e.get(resp.Header.Get("Location"))
	if !strings.Contains(body, `<p class="flash err" id="flash">ResourceInUseException: Stream orders under account`) {
		t.Errorf("creating a stream twice: page lacks ResourceInUseException")
	}
	if _, body := e.get("/console/"); strings.Contains(body, "ResourceInUseException") {
		t.Errorf("the outcome of a form is shown twice")
	}
	if _, body := e.get("/console/?err=Your+session+expired"); strings.Contains(body, "session expired") {
		t.Errorf("a link set the message shown")
	}
	e.post("/console/streams/orders/retention", url.Values{"token": {tok}, "hours": {"48"}}, nil)
	sum, _ := e.svc.DescribeStreamSummary(context.Background(), &streams.DescribeStreamSummaryInput{StreamName: ptr("orders")})
	if got := sum.StreamDescriptionSummary.RetentionPeriodHours; got != 48 {
		t.Errorf("retention %d, want 48", got)
	}
	e.post("/console/streams/orders/retention", url.Values{"token": {tok}, "hours": {"30"}}, nil)
	sum, _ = e.svc.DescribeStreamSummary(context.Background(), &streams.DescribeStreamSummaryInput{StreamName: ptr("orders")})
	if got := sum.StreamDescriptionSummary.RetentionPeriodHours; got != 30 {
		t.Errorf("retention %d, want 30", got)
	}
	e.post("/console/streams/orders/shards", url.Values{"token": {tok}, "target": {"4"}}, nil)
	e.clock.Advance(time.Second)
	sum, _ = e.svc.DescribeStreamSummary(context.Background(), &streams.DescribeStreamSummaryInput{StreamName: ptr("orders")})
	if got := sum.StreamDescriptionSummary.OpenShardCount; got != 4 {
		t.Errorf("open shards %d, want 4", got)
	}
	_, page := e.get("/console/streams/orders")
	if n := strings.Count(page, `class="node closed"`); n != 2 {
		t.Errorf("lineage shows %d closed shards, want 2", n)
	}
	if n := strings.Count(page, `class="edge"`); n < 4 {
		t.Errorf("lineage shows %d edges, want at least 4", n)
	}
	e.post("/console/streams/orders/delete", url.Values{"token": {tok}}, nil)
	e.clock.Advance(time.Second)
	if e.exists("orders") {
		t.Error("the stream survived its deletion")
	}
}

func ptr[T any](v T) *T { return &v }

func TestHostHeaderChecked(t *testing.T) {
	e := newEnv(t)
	for host, want := range map[string]int{
		"evil.example":      http.StatusMisdirectedRequest,
		"evil.example:4568": http.StatusMisdirectedRequest,
		"localhost:4568":    http.StatusOK,
		"127.0.0.1":         http.StatusOK,
		"[::1]:4568":        http.StatusOK,
	} {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/console/", nil)
		req.Host = host
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Host %s: %d, want %d", host, resp.StatusCode, want)
		}
	}
}

func TestAuthenticateHook(t *testing.T) {
	e := newEnv(t)
	e.c.opts.Authenticate = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("Authorization") == "Bearer ok" {
			return true
		}
		http.Error(w, "log in", http.StatusUnauthorized)
		return false
	}
	if code, _ := e.get("/console/"); code != http.StatusUnauthorized {
		t.Errorf("without credentials: %d, want 401", code)
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/console/", nil)
	req.Header.Set("Authorization", "Bearer ok")
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("with credentials: %d, want 200", resp.StatusCode)
	}
}

type recordsAnswer struct {
	Records []struct {
		ShardID, SequenceNumber, PartitionKey, Arrival string
		Data                                           []byte
	}
	Cursor string
	Ended  bool
	Error  *struct{ Type, Message string }
}

func (e *env) records(query string) (int, recordsAnswer) {
	e.t.Helper()
	code, body := e.get("/console/api/streams/" + query)
	var a recordsAnswer
	if err := json.Unmarshal([]byte(body), &a); err != nil {
		e.t.Fatalf("%s: %v: %s", query, err, body)
	}
	return code, a
}

func TestRecordsFollowResharding(t *testing.T) {
	e := newEnv(t)
	e.create("s", 1)
	for i := range 3 {
		e.put("s", fmt.Sprint("before", i), fmt.Sprint("b", i))
	}
	at := "170141183460469231731687303715884105728"
	if err := e.svc.SplitShard(context.Background(), &streams.SplitShardInput{StreamName: ptr("s"), ShardToSplit: ptr("shardId-000000000000"), NewStartingHashKey: &at}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	for i := range 6 {
		e.put("s", fmt.Sprint("after", i), fmt.Sprint("a", i))
	}
	var got []string
	code, a := e.records("s/records?shard=all&type=TRIM_HORIZON&limit=2")
	for pages := 0; code == http.StatusOK && pages < 50; pages++ {
		for _, r := range a.Records {
			got = append(got, string(r.Data))
		}
		if a.Ended || len(got) == 9 {
			break
		}
		code, a = e.records("s/records?limit=2&cursor=" + a.Cursor)
	}
	if code != http.StatusOK {
		t.Fatalf("status %d: %+v", code, a.Error)
	}
	if len(got) != 9 {
		t.Fatalf("read %d records, want 9: %q", len(got), got)
	}
	for i, d := range got[:3] {
		if d != fmt.Sprint("b", i) {
			t.Fatalf("records %q: the parent's come first, in order", got)
		}
	}
	// LATEST on all shards starts at the open ones' ends.
	_, a = e.records("s/records?shard=all&type=LATEST")
	if len(a.Records) != 0 || a.Ended {
		t.Errorf("LATEST: %d records, ended %v", len(a.Records), a.Ended)
	}
	e.put("s", "late", "late")
	_, a = e.records("s/records?cursor=" + a.Cursor)
	if len(a.Records) != 1 || string(a.Records[0].Data) != "late" {
		t.Errorf("after LATEST: %+v", a.Records)
	}
	// One closed shard read alone ends.
	_, a = e.records("s/records?shard=shardId-000000000000&type=TRIM_HORIZON&limit=10")
	n := len(a.Records)
	if !a.Ended {
		_, a = e.records("s/records?limit=10&cursor=" + a.Cursor)
		n += len(a.Records)
	}
	if n != 3 || !a.Ended {
		t.Errorf("the closed parent alone: %d records, ended %v", n, a.Ended)
	}
}

func TestRecordsPositions(t *testing.T) {
	e := newEnv(t)
	e.create("s", 1)
	var outs []*streams.PutRecordOutput
	for i := range 5 {
		outs = append(outs, e.put("s", "k", fmt.Sprint(i)))
		e.clock.Advance(time.Second)
	}
	_, a := e.records("s/records?shard=shardId-000000000000&type=AT_SEQUENCE_NUMBER&seq=" + outs[2].SequenceNumber)
	if len(a.Records) != 3 || string(a.Records[0].Data) != "2" || a.Records[0].SequenceNumber != outs[2].SequenceNumber {
		t.Errorf("AT_SEQUENCE_NUMBER: %+v", a.Records)
	}
	ts := time.Date(2026, 3, 14, 15, 9, 29, 0, time.UTC).Format(time.RFC3339)
	_, a = e.records("s/records?shard=all&type=AT_TIMESTAMP&ts=" + url.QueryEscape(ts))
	if len(a.Records) != 2 || string(a.Records[0].Data) != "3" {
		t.Errorf("AT_TIMESTAMP %s: %+v", ts, a.Records)
	}
	if a.Records[0].PartitionKey != "k" || a.Records[0].Arrival != "2026-03-14T15:09:29.000Z" {
		t.Errorf("record fields: %+v", a.Records[0])
	}
	for _, tc := range []struct{ query, typ string }{
		{"s/records?type=SOMEWHERE", "InvalidArgumentException"},
		{"s/records?type=AT_TIMESTAMP&ts=yesterday", "InvalidArgumentException"},
		{"s/records?shard=all&type=AT_SEQUENCE_NUMBER&seq=1", "InvalidArgumentException"},
		{"s/records?shard=shardId-000000000000&type=AT_SEQUENCE_NUMBER&seq=12", "InvalidArgumentException"},
		{"s/records?shard=shardId-000000000009", "ResourceNotFoundException"},
		{"s/records?limit=0", "InvalidArgumentException"},
		{"s/records?cursor=bm9wZQ", "InvalidArgumentException"},
		{"nope/records", "ResourceNotFoundException"},
	} {
		code, a := e.records(tc.query)
		if code < 400 || a.Error == nil || a.Error.Type != tc.typ {
			t.Errorf("%s: %d %+v, want %s", tc.query, code, a.Error, tc.typ)
		}
	}
}

func TestSamplerRates(t *testing.T) {
	e := newEnv(t)
	e.create("s", 2)
	s := e.c.rates.(*Sampler)
	if err := s.Sample(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.StreamRates("s"); len(got) != 0 {
		t.Fatalf("rates from one sample: %+v", got)
	}
	for i := range 10 {
		e.put("s", fmt.Sprint(i), "12345") // 1+5 bytes each
	}
	e.clock.Advance(5 * time.Second)
	if err := s.Sample(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := s.StreamRates("s")
	if len(got) != 1 || got[0].IncomingRecords != 2 || got[0].IncomingBytes != 12 {
		t.Fatalf("rates %+v, want 2 records/s, 12 bytes/s", got)
	}
	var sum float64
	for _, r := range s.ShardRates("s") {
		sum += r.IncomingRecords
	}
	if sum != 2 {
		t.Errorf("shard rates add up to %v, want 2", sum)
	}
	// A deleted stream is forgotten.
	if err := e.svc.DeleteStream(context.Background(), &streams.DeleteStreamInput{StreamName: ptr("s")}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Second)
	if err := s.Sample(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.StreamRates("s"); got != nil {
		t.Errorf("a deleted stream's rates: %+v", got)
	}
}

func TestLeaseLag(t *testing.T) {
	e := newEnv(t)
	e.create("s", 1)
	var outs []*streams.PutRecordOutput
	for i := range 5 {
		outs = append(outs, e.put("s", "k", fmt.Sprint(i)))
		e.clock.Advance(time.Second)
	}
	ctx := context.Background()
	ref := leases.TableRef{App: "app", Stream: "s"}
	if _, err := e.leases.CreateTable(ctx, ref, leases.Position{Type: leases.TrimHorizon}); err != nil {
		t.Fatal(err)
	}
	lag := &LeaseLag{Streams: e.svc, Leases: e.leases, Now: e.clock.Now}
	apps, err := lag.ConsumerLag(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	if len(apps) != 1 || apps[0].Records != 5 || apps[0].MaxMillis != 5000 {
		t.Fatalf("at the trim horizon: %+v", apps)
	}
	l, err := e.leases.Take(ctx, ref, "shardId-000000000000", "w1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.leases.Checkpoint(ctx, ref, l.LeaseKey, "w1", l.Counter, outs[1].SequenceNumber, 0); err != nil {
		t.Fatal(err)
	}
	apps, err = lag.ConsumerLag(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	sh := apps[0].Shards[0]
	if sh.Records != 3 || sh.Millis != 3000 || sh.Owner != "w1" {
		t.Fatalf("after a checkpoint at the second record: %+v", sh)
	}
	// The sampler's iterator age is the largest lag.
	s := e.c.rates.(*Sampler)
	_ = s.Sample(ctx)
	e.clock.Advance(time.Second)
	_ = s.Sample(ctx)
	if got := s.StreamRates("s"); len(got) != 1 || got[0].IteratorAgeMillis != 4000 {
		t.Errorf("iterator age %+v, want 4000 ms", got)
	}
	_, page := e.get("/console/streams/s")
	if !strings.Contains(page, `data-app="app"`) || !strings.Contains(page, "3 records behind") {
		t.Error("the stream page does not show the application's lag")
	}
	if _, list := e.get("/console/"); !strings.Contains(list, "app (3, 4s)") {
		t.Error("the streams list does not show the application's lag")
	}
	// The overview answers with the sampled lag.
	_, body := e.get("/console/api/streams")
	var ov struct {
		Streams []struct {
			Name              string
			IteratorAgeMillis int64
			Consumers         []struct {
				Application string
				Records     int64
				Millis      int64
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatal(err)
	}
	if len(ov.Streams) != 1 || ov.Streams[0].IteratorAgeMillis != 4000 || len(ov.Streams[0].Consumers) != 1 ||
		ov.Streams[0].Consumers[0].Records != 3 || ov.Streams[0].Consumers[0].Millis != 4000 {
		t.Errorf("overview %s", body)
	}
}

// FuzzRecordsCursor feeds arbitrary cursors to the data viewer's endpoint:
// it answers a JSON error or records, never a failure of its own.
func FuzzRecordsCursor(f *testing.F) {
	e := newEnv(f)
	e.create("s", 2)
	e.put("s", "k", "v")
	_, a := e.records("s/records?shard=all")
	f.Add(a.Cursor)
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"a":true,"i":{"shardId-000000000000":"x"}}`)))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"i":{"shardId-000000000009":""}}`)))
	f.Add("")
	f.Fuzz(func(t *testing.T, cur string) {
		resp, err := e.http.Get(e.srv.URL + "/console/api/streams/s/records?cursor=" + url.QueryEscape(cur))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Fatalf("cursor %q: %d %s", cur, resp.StatusCode, body)
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("cursor %q: not JSON: %s", cur, body)
		}
	})
}
