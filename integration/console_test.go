package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Chromium, or skips the test saying how to install it
// (fails with CI set).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("RUNNEL_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "no Chromium: run .ci/setup (apt-get install chromium) or set RUNNEL_CHROMIUM"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifacts is where the browser tests save screenshots: $RUNNEL_ARTIFACTS
// when set, else a temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("RUNNEL_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts headless Chromium and returns a tab's context.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(func() { cancelTime(); cancelTab(); cancelAlloc() })
	return ctx
}

// waitJS evaluates expr until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText.slice(0, 3000) : ''"))
			t.Fatalf("%s: %s not true within 60s (last error %v); page:\n%s", what, expr, err, html)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return s
}

func screenshot(t *testing.T, ctx context.Context, dir, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

// waitPort waits until addr accepts connections.
func waitPort(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening within 20s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestConsoleInBrowser drives the web console in headless Chromium: create
// a stream with its form, put records with the SDK, read them in the data
// viewer as text, JSON and hex, follow them live, and see a split in the
// lineage graph and the rates in the charts.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	srv := startServer(t, t.TempDir(), "--admin-listen", admin, "--console", "--transition-delay", "200ms")
	waitPort(t, admin)
	console := "http://" + admin
	kc := srv.client()
	dir := artifacts(t)
	ctx := browser(t)

	// Create a stream from the console.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(console+"/"),
		chromedp.WaitVisible(chromedp.CSS("#create-form")),
		chromedp.SetValue(chromedp.CSS("#create-name"), "clicks"),
		chromedp.SetValue(chromedp.CSS("#create-shards"), "2"),
		chromedp.Click(chromedp.CSS("#create-submit")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the stream's page", `location.pathname === "/console/streams/clicks" && document.querySelector("#flash") !== null`)
	if got := jsString(t, ctx, `document.querySelector("#flash").innerText`); got != "Stream clicks created." {
		t.Errorf("flash %q", got)
	}
	waitActive(t, kc, "clicks")

	// Records keep arriving in the background so that the charts have a rate.
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		bc := srv.client()
		for i := 0; bg.Err() == nil; i++ {
			_, _ = bc.PutRecord(bg, &kinesis.PutRecordInput{StreamName: aws.String("clicks"), PartitionKey: aws.String(fmt.Sprint("bg-", i%7)),
				Data: []byte(fmt.Sprintf(`{"page":"/p/%d","ms":%d}`, i%5, 20+i%90))})
			time.Sleep(25 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { stopBG(); wg.Wait() })

	// A second stream, with its own records, to read from: the data
	// viewer's answer is then exact.
	if _, err := kc.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String("orders"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, kc, "orders")
	datas := []string{`{"order":1,"item":"tea","qty":2}`, "plain text order", `{"order":3,"item":"cake"}`, "\x00\x01binary\xff"}
	for i, d := range datas {
		if _, err := kc.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String(fmt.Sprint("customer-", i)), Data: []byte(d)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(console+"/console/streams/orders"),
		chromedp.WaitVisible(chromedp.CSS("#viewer-form")),
		chromedp.Click(chromedp.CSS("#v-start")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "records in the viewer", `document.querySelectorAll("#records tbody tr").length === 4`)
	text := jsString(t, ctx, `Array.from(document.querySelectorAll("#records tbody pre.data")).map(p => p.textContent).join("|")`)
	for _, d := range datas[:3] {
		if !strings.Contains(text, d) {
			t.Errorf("text view lacks %q: %q", d, text)
		}
	}
	keys := jsString(t, ctx, `Array.from(document.querySelectorAll("#records tbody tr")).map(r => r.children[2].textContent).sort().join(",")`)
	if keys != "customer-0,customer-1,customer-2,customer-3" {
		t.Errorf("partition keys %q", keys)
	}
	seq := jsString(t, ctx, `document.querySelector("#records tbody tr").dataset.seq`)
	if len(seq) != 56 {
		t.Errorf("sequence number %q", seq)
	}
	screenshot(t, ctx, dir, "console-viewer-text.png")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#f-json"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "pretty JSON", `document.querySelectorAll("#records pre.json").length === 2`)
	pretty := jsString(t, ctx, `Array.from(document.querySelectorAll("#records pre.json")).map(p => p.textContent).join("|")`)
	if !strings.Contains(pretty, "{\n  \"order\": 1,\n  \"item\": \"tea\",\n  \"qty\": 2\n}") {
		t.Errorf("pretty JSON %q", pretty)
	}
	if n := jsString(t, ctx, `String(document.querySelectorAll("#records pre.notjson").length)`); n != "2" {
		t.Errorf("%s records marked not JSON, want 2", n)
	}
	screenshot(t, ctx, dir, "console-viewer-json.png")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#f-hex"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "hex", `document.querySelectorAll("#records pre.hex").length === 4`)
	hexes := jsString(t, ctx, `Array.from(document.querySelectorAll("#records pre.hex")).map(p => p.textContent).join("|")`)
	if !strings.Contains(hexes, "0000  00 01 62 69 6e 61 72 79 ff") || !strings.Contains(hexes, "..binary.") {
		t.Errorf("hex view %q", hexes)
	}
	screenshot(t, ctx, dir, "console-viewer-hex.png")

	// At a sequence number, in one shard.
	shard := jsString(t, ctx, `document.querySelector("#records tbody tr").children[1].textContent`)
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS("#f-text")),
		chromedp.SetValue(chromedp.CSS("#v-shard"), shard),
		chromedp.SetValue(chromedp.CSS("#v-type"), "AT_SEQUENCE_NUMBER"),
		chromedp.SetValue(chromedp.CSS("#v-seq"), seq),
		chromedp.Click(chromedp.CSS("#v-start")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "reading at a sequence number", `document.querySelector("#viewer").dataset.loaded === "2"`)
	if first := jsString(t, ctx, `document.querySelector("#records tbody tr").dataset.seq`); first != seq {
		t.Errorf("AT_SEQUENCE_NUMBER starts at %s, want %s", first, seq)
	}
	// A bad position is shown with Kinesis' error.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#v-seq"), "123"),
		chromedp.Click(chromedp.CSS("#v-start")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "an error", `!document.querySelector("#v-error").hidden`)
	if e := jsString(t, ctx, `document.querySelector("#v-error").textContent`); !strings.HasPrefix(e, "InvalidArgumentException") {
		t.Errorf("error shown: %q", e)
	}

	// Live: from LATEST on all shards, a new record appears.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#v-shard"), "all"),
		chromedp.SetValue(chromedp.CSS("#v-type"), "LATEST"),
		chromedp.Click(chromedp.CSS("#v-start")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "reading from LATEST", `document.querySelector("#v-error").hidden && document.querySelectorAll("#records tbody tr").length === 0`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#v-live"))); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("orders"), PartitionKey: aws.String("live"), Data: []byte("arrived live")}); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "a live record", `Array.from(document.querySelectorAll("#records pre.data")).some(p => p.textContent === "arrived live")`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#v-live"))); err != nil {
		t.Fatal(err)
	}

	// Change the retention and the shard count with the stream's forms.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#hours"), "48"),
		chromedp.Click(chromedp.CSS("#retention-submit")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "retention set", `document.querySelector("#flash") !== null && document.querySelector("#flash").innerText === "Retention set to 48 hours."`)
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#target"), "4"),
		chromedp.Click(chromedp.CSS("#shards-submit")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "rescaling", `document.querySelector("#flash") !== null && document.querySelector("#flash").innerText === "Rescaling to 4 shards."`)
	waitActive(t, kc, "orders")
	d, err := kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orders")})
	if err != nil {
		t.Fatal(err)
	}
	if s := d.StreamDescriptionSummary; aws.ToInt32(s.RetentionPeriodHours) != 48 || aws.ToInt32(s.OpenShardCount) != 4 {
		t.Errorf("after the forms: retention %d h, %d open shards; want 48, 4", aws.ToInt32(s.RetentionPeriodHours), aws.ToInt32(s.OpenShardCount))
	}

	// A split appears in the lineage graph.
	if _, err := kc.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String("clicks"), ShardToSplit: aws.String("shardId-000000000000"),
		NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
		t.Fatal(err)
	}
	waitActive(t, kc, "clicks")
	if err := chromedp.Do(ctx, chromedp.Navigate(console+"/console/streams/clicks"), chromedp.WaitVisible(chromedp.CSS("#lineage"))); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`#lineage g.node.closed[data-shard="shardId-000000000000"]`,
		`#lineage g.node.open[data-shard="shardId-000000000002"]`,
		`#lineage g.node.open[data-shard="shardId-000000000003"]`,
		`#lineage path.edge[data-parent="shardId-000000000000"][data-child="shardId-000000000002"]`,
		`#lineage path.edge[data-parent="shardId-000000000000"][data-child="shardId-000000000003"]`,
		`#hashmap g.bar[data-shard="shardId-000000000002"]`,
	} {
		if ok := jsString(t, ctx, fmt.Sprintf(`String(document.querySelector(%q) !== null)`, want)); ok != "true" {
			t.Errorf("the page lacks %s", want)
		}
	}
	if n := jsString(t, ctx, `String(document.querySelectorAll("#hashmap g.bar").length)`); n != "3" {
		t.Errorf("hash-key map shows %s open shards, want 3", n)
	}

	// The charts fill once the console has sampled the rates twice; the
	// page refreshes its numbers by itself.
	waitJS(t, ctx, "rates in the charts without a reload",
		`document.body.dataset.refreshed !== undefined && document.querySelector("#chart-records polyline") !== null && Number(document.querySelector('#shards tr[data-shard="shardId-000000000002"] td:nth-child(6)').textContent) > 0`)
	// Read the stream in the viewer too, for the picture.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#f-json")), chromedp.SetValue(chromedp.CSS("#v-limit"), "6"), chromedp.Click(chromedp.CSS("#v-start"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "records of clicks", `document.querySelectorAll("#records tbody tr").length >= 6`)
	screenshot(t, ctx, dir, "console-stream.png")

	// The streams list shows both streams with a rate for clicks.
	if err := chromedp.Do(ctx, chromedp.Navigate(console+"/console/"), chromedp.WaitVisible(chromedp.CSS("#streams"))); err != nil {
		t.Fatal(err)
	}
	rows := jsString(t, ctx, `Array.from(document.querySelectorAll("#streams tbody tr")).map(r => r.dataset.stream + ":" + r.children[3].textContent).join(",")`)
	if rows != "clicks:3,orders:4" {
		t.Errorf("streams list %q", rows)
	}
	screenshot(t, ctx, dir, "console-streams.png")

	// Delete a stream: the console asks first.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	asked := make(chan string, 1)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			asked <- ev.Message
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
			return
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate(console+"/console/streams/orders"), chromedp.WaitVisible(chromedp.CSS("#delete-form"))); err != nil {
		t.Fatal(err)
	}
	clicked := make(chan error, 1)
	go func() { clicked <- chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#delete-submit"))) }()
	select {
	case msg := <-asked:
		if msg != "Delete stream orders and all its records?" {
			t.Errorf("the console asked %q", msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no confirmation asked before deleting")
	}
	if err := <-clicked; err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "deleted", `location.pathname === "/console/" && document.querySelector("#flash") !== null && document.querySelector("#flash").innerText === "Stream orders is being deleted."`)
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := kc.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("orders")})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("orders still there after its deletion: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
