// Package console is runnel's web console: server-rendered pages, served on
// the admin listener of `runnel serve --console`, that show streams, their
// shards as a hash-key map and a lineage graph, their write rates and their
// consumers' lag, and a data viewer that reads records as the Kinesis
// console's does. Forms change streams through the service layer
// (internal/streams) directly.
//
// Everything is in the binary: templates and the small script and
// stylesheet are embedded (assets/). Charts and graphs are inline SVG drawn
// on the server; the only script fetches records for the data viewer, from
// a JSON endpoint under /console/api/, and decodes them for display.
//
// Rates come from a Rates and lag from a Lag. The Sampler implements both
// from the service's shard statistics and the lease tables, sampled every
// few seconds; another implementation (a metrics registry) may replace it.
//
// Requests are checked in this order: the Host header must name this
// server (against DNS rebinding), Options.Authenticate (when set) must
// accept the request, and a form that changes anything must come from the
// console's own origin and carry the token of its session cookie.
//
// The user guide is docs/CONSOLE.md.
package console
