package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ConsumerLag is how far one consumer application (a lease table) is
// behind on one shard.
type ConsumerLag struct {
	Stream, Application, Shard string
	// Records is the number of records after the application's checkpoint.
	Records int64
	// Millis is how much later the shard's newest record arrived than the
	// checkpointed one.
	Millis int64
}

// lagTimeout bounds the work of one scrape on consumer lag.
const lagTimeout = 5 * time.Second

var (
	descLagRecords = prometheus.NewDesc("runnel_lease_records_behind",
		"Records in the shard after the consumer application's checkpoint (lease tables).", []string{"stream", "application", "shard"}, nil)
	descLagMillis = prometheus.NewDesc("runnel_lease_millis_behind",
		"Milliseconds between the arrival of the checkpointed record and of the shard's newest record (lease tables).", []string{"stream", "application", "shard"}, nil)
)

// SetConsumerLag sets the function called at each scrape for the lag of
// lease-table consumer applications per shard.
func (r *Registry) SetConsumerLag(f func(ctx context.Context) []ConsumerLag) { r.consumerLag.Store(&f) }

// collectLag exports consumer lag within budget and returns the budget
// left and the series left out.
func (r *Registry) collectLag(ch chan<- prometheus.Metric, budget int) (left, dropped int) {
	f := r.consumerLag.Load()
	if f == nil || *f == nil {
		return budget, 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), lagTimeout)
	defer cancel()
	for _, l := range (*f)(ctx) {
		if budget < 2 {
			dropped += 2
			continue
		}
		budget -= 2
		ch <- prometheus.MustNewConstMetric(descLagRecords, prometheus.GaugeValue, float64(l.Records), l.Stream, l.Application, l.Shard)
		ch <- prometheus.MustNewConstMetric(descLagMillis, prometheus.GaugeValue, float64(l.Millis), l.Stream, l.Application, l.Shard)
	}
	return budget, dropped
}
