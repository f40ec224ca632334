package console

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/runnel/runnel/internal/delivery"
)

// DeliverySample is a delivery stream's activity over the interval that
// ends at Time.
type DeliverySample struct {
	Time time.Time
	// IncomingRecords and DeliveredRecords are records accepted and
	// delivered per second.
	IncomingRecords, DeliveredRecords float64
	// FreshnessMillis is the age of the oldest record not yet delivered.
	FreshnessMillis int64
}

// DeliveryRates gives the console the history its delivery stream charts
// draw; runnel serve gives it the metrics registry's.
type DeliveryRates interface {
	// DeliveryRates returns a delivery stream's recent samples, oldest
	// first, or none when it has not been sampled yet.
	DeliveryRates(name string) []DeliverySample
}

// deliveryRow is one delivery stream as the console shows it.
type deliveryRow struct {
	Name, Status, Type string
	// Source is the name of the stream a KinesisStreamAsSource delivery
	// stream reads, SourceARN its ARN.
	Source, SourceARN string
	Bucket, Prefix    string
	SizeMB, Interval  int32
	Compression       string
	Stats             delivery.DeliveryStats
	Failure           *delivery.FailureDescription
	Version           string
	Created           time.Time
	Samples           []DeliverySample
}

// Bytes is the bytes delivered, for the bytes template function.
func (d deliveryRow) Bytes() float64 { return float64(d.Stats.BytesDelivered) }

// Fresh is the freshness as text.
func (d deliveryRow) Fresh() string { return fmtMillis(d.Stats.FreshnessMillis) }

// deliveryStreams describes every delivery stream, in name order; with
// source set, only those reading that stream.
func (c *Console) deliveryStreams(ctx context.Context, source string) ([]deliveryRow, error) {
	svc := c.opts.Delivery
	var names []string
	limit := int32(10000)
	in := &delivery.ListDeliveryStreamsInput{Limit: &limit}
	for {
		out, err := svc.ListDeliveryStreams(ctx, in)
		if err != nil {
			return nil, err
		}
		names = append(names, out.DeliveryStreamNames...)
		if !out.HasMoreDeliveryStreams || len(out.DeliveryStreamNames) == 0 {
			break
		}
		in = &delivery.ListDeliveryStreamsInput{Limit: in.Limit, ExclusiveStartDeliveryStreamName: &names[len(names)-1]}
	}
	rows := make([]deliveryRow, 0, len(names))
	for _, n := range names {
		d, err := svc.DescribeDeliveryStream(ctx, &delivery.NameInput{DeliveryStreamName: &n})
		if err != nil {
			continue // deleted meanwhile
		}
		row := describeRow(d.DeliveryStreamDescription)
		if source != "" && row.Source != source {
			continue
		}
		if c.opts.DeliveryRates != nil {
			row.Samples = c.opts.DeliveryRates.DeliveryRates(n)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func describeRow(d *delivery.DeliveryStreamDescription) deliveryRow {
	row := deliveryRow{Name: d.DeliveryStreamName, Status: d.DeliveryStreamStatus, Type: d.DeliveryStreamType,
		Failure: d.FailureDescription, Version: d.VersionId, Created: d.CreateTimestamp.Time}
	if s := d.Source; s != nil && s.KinesisStreamSourceDescription != nil {
		row.SourceARN = s.KinesisStreamSourceDescription.KinesisStreamARN
		if i := strings.LastIndex(row.SourceARN, ":stream/"); i >= 0 {
			row.Source = row.SourceARN[i+len(":stream/"):]
		}
	}
	if len(d.Destinations) > 0 && d.Destinations[0].ExtendedS3DestinationDescription != nil {
		e := d.Destinations[0].ExtendedS3DestinationDescription
		row.Bucket = strings.TrimPrefix(deref(e.BucketARN), "arn:aws:s3:::")
		row.Prefix = deref(e.Prefix)
		if h := e.BufferingHints; h != nil {
			row.SizeMB, row.Interval = deref(h.SizeInMBs), deref(h.IntervalInSeconds)
		}
		row.Compression = deref(e.CompressionFormat)
	}
	if st := d.RunnelDeliveryStats; st != nil {
		row.Stats = *st
	}
	return row
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (c *Console) deliveryIndex(w http.ResponseWriter, r *http.Request) {
	rows, err := c.deliveryStreams(r.Context(), "")
	if err != nil {
		c.render(w, r, http.StatusInternalServerError, "error", &page{Title: "Error", Err: deliveryErrText(err)})
		return
	}
	c.render(w, r, http.StatusOK, "deliveries", &page{Title: "Delivery streams", Data: rows})
}

// deliveryView is a delivery stream's page.
type deliveryView struct {
	deliveryRow
	Charts []template.HTML
}

func (c *Console) deliveryPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d, err := c.opts.Delivery.DescribeDeliveryStream(r.Context(), &delivery.NameInput{DeliveryStreamName: &name})
	if err != nil {
		status := http.StatusInternalServerError
		if e := (*delivery.Error)(nil); errors.As(err, &e) && e.Code == delivery.CodeResourceNotFound {
			status = http.StatusNotFound
		}
		c.render(w, r, status, "error", &page{Title: name, Err: deliveryErrText(err)})
		return
	}
	v := &deliveryView{deliveryRow: describeRow(d.DeliveryStreamDescription)}
	if c.opts.DeliveryRates != nil {
		samples := c.opts.DeliveryRates.DeliveryRates(name)
		asSamples := func(val func(DeliverySample) float64) []Sample {
			out := make([]Sample, len(samples))
			for i, s := range samples {
				out[i] = Sample{Time: s.Time, IncomingRecords: val(s)}
			}
			return out
		}
		in := func(s Sample) float64 { return s.IncomingRecords }
		v.Charts = []template.HTML{
			lineChart("Incoming records", "records/s", "chart-incoming", asSamples(func(s DeliverySample) float64 { return s.IncomingRecords }), in),
			lineChart("Delivered records", "records/s", "chart-delivered", asSamples(func(s DeliverySample) float64 { return s.DeliveredRecords }), in),
			lineChart("Data freshness", "s", "chart-freshness", asSamples(func(s DeliverySample) float64 { return float64(s.FreshnessMillis) / 1000 }), in),
		}
	}
	c.render(w, r, http.StatusOK, "delivery", &page{Title: name, Data: v})
}

// deliveryErrText is a Firehose error as the console shows it.
func deliveryErrText(err error) string {
	if e := (*delivery.Error)(nil); errors.As(err, &e) {
		return string(e.Code) + ": " + e.Message
	}
	return errText(err)
}

// deliverySpark draws a delivery stream's incoming records.
func deliverySpark(samples []DeliverySample) template.HTML {
	out := make([]Sample, len(samples))
	for i, s := range samples {
		out[i] = Sample{Time: s.Time, IncomingRecords: s.IncomingRecords}
	}
	return sparkline(out)
}
