package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/chromedp/chromedp"
)

// TestConsoleDeliveryStreamsInBrowser shows a delivery stream in headless
// Chromium: the list with what it delivered, and its page with the charts
// of incoming records and freshness once records keep arriving.
func TestConsoleDeliveryStreamsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	srv := startServer(t, t.TempDir(), "--admin-listen", admin, "--console", "--transition-delay", "0s", "--buckets-dir", t.TempDir())
	waitPort(t, admin)
	console := "http://" + admin
	fh := srv.firehose()
	dir := artifacts(t)
	ctx := browser(t)
	_, err := fh.CreateDeliveryStream(context.Background(), &firehose.CreateDeliveryStreamInput{
		DeliveryStreamName: aws.String("clickstream"),
		ExtendedS3DestinationConfiguration: s3Dest("lake", func(d *types.ExtendedS3DestinationConfiguration) {
			d.Prefix = aws.String("clicks/")
			d.CompressionFormat = types.CompressionFormatGzip
			d.BufferingHints = &types.BufferingHints{IntervalInSeconds: aws.Int32(2), SizeInMBs: aws.Int32(1)}
		}),
	})
	if err != nil {
		t.Fatal(err)
	}

	// Records keep arriving in the background so that the charts have a rate.
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; bg.Err() == nil; i++ {
			recs := make([]types.Record, 20)
			for j := range recs {
				recs[j] = types.Record{Data: fmt.Appendf(nil, `{"click":%d}`, i*20+j)}
			}
			_, _ = fh.PutRecordBatch(bg, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("clickstream"), Records: recs})
			select {
			case <-bg.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	defer func() { stopBG(); wg.Wait() }()

	if err := chromedp.Do(ctx, chromedp.Navigate(console+"/console/"), chromedp.WaitVisible(chromedp.CSS("#streams"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`nav a[href="/console/delivery-streams/"]`)), chromedp.WaitVisible(chromedp.CSS("#delivery-streams"))); err != nil {
		t.Fatal(err)
	}
	// The list refreshes itself: records delivered appear without a reload.
	waitJS(t, ctx, "records delivered in the list",
		`(() => { const c = document.querySelector('tr[data-delivery-stream="clickstream"] .records-delivered'); return c !== null && Number(c.innerText) > 0 })()`)
	if got := jsString(t, ctx, `document.querySelector('tr[data-delivery-stream="clickstream"] .bucket').innerText`); got != "lake/clicks/" {
		t.Errorf("destination shown as %q", got)
	}
	screenshot(t, ctx, dir, "console-delivery-streams.png")

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href="/console/delivery-streams/clickstream"]`)), chromedp.WaitVisible(chromedp.CSS("#facts"))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the incoming records and freshness charts drawn",
		`document.querySelector("#chart-incoming polyline") !== null && document.querySelector("#chart-freshness polyline") !== null`)
	if got := jsString(t, ctx, `document.querySelector("#failure").innerText`); got == "" {
		t.Error("no failure section")
	}
	screenshot(t, ctx, dir, "console-delivery-stream.png")
}
