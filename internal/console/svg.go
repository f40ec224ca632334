package console

import (
	"fmt"
	"html/template"
	"math"
	"math/big"
	"strings"

	"github.com/runnel/runnel/internal/streams"
)

// The console's pictures are SVG written here, on the server, from the
// same numbers the tables show. Everything interpolated is a number or
// escaped with template.HTMLEscapeString.

// hashSpace is 2^128, the size of the partition-key hash space.
var hashSpace = new(big.Float).SetInt(new(big.Int).Lsh(big.NewInt(1), 128))

// hashFrac returns a decimal hash key as a fraction of 2^128.
func hashFrac(dec string) float64 {
	n, ok := new(big.Int).SetString(dec, 10)
	if !ok {
		return 0
	}
	f, _ := new(big.Float).Quo(new(big.Float).SetInt(n), hashSpace).Float64()
	return f
}

// shortID is a shard id without its "shardId-" prefix and leading zeros.
func shortID(id string) string {
	s := strings.TrimLeft(strings.TrimPrefix(id, "shardId-"), "0")
	if s == "" {
		return "0"
	}
	return s
}

var esc = template.HTMLEscapeString

// hashKeyMap draws the open shards as bars over the hash space 0..2^128.
func hashKeyMap(stats []streams.ShardStats) template.HTML {
	const w, h, top = 900.0, 56.0, 4.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="hashmap" class="hashmap" viewBox="0 0 %g %g" width="100%%" role="img" aria-label="open shards over the hash-key space">`, w, h+20)
	i := 0
	for _, s := range stats {
		if s.Closed {
			continue
		}
		x0 := hashFrac(s.HashKeyRange.StartingHashKey) * w
		x1 := (hashFrac(s.HashKeyRange.EndingHashKey)) * w
		fmt.Fprintf(&b, `<g class="bar c%d" data-shard="%s"><title>%s: hash keys %s to %s</title><rect x="%.2f" y="%g" width="%.2f" height="%g"/>`,
			i%6, esc(s.ShardId), esc(s.ShardId), esc(s.HashKeyRange.StartingHashKey), esc(s.HashKeyRange.EndingHashKey), x0, top, math.Max(x1-x0-1, 1), h)
		if x1-x0 > 18 {
			fmt.Fprintf(&b, `<text x="%.2f" y="%g" text-anchor="middle">%s</text>`, (x0+x1)/2, top+h/2+5, esc(shortID(s.ShardId)))
		}
		b.WriteString(`</g>`)
		i++
	}
	fmt.Fprintf(&b, `<text class="axis" x="0" y="%g">0</text><text class="axis" x="%g" y="%g" text-anchor="middle">2^127</text><text class="axis" x="%g" y="%g" text-anchor="end">2^128</text></svg>`,
		h+top+14, w/2, h+top+14, w, h+top+14)
	return template.HTML(b.String())
}

// lineageGraph draws every shard as a box whose height is its hash range,
// in columns by generation (a child is one column right of its youngest
// parent), with an edge from each parent to each child.
func lineageGraph(stats []streams.ShardStats) template.HTML {
	const w, h, pad = 900.0, 240.0, 8.0
	gen := make(map[string]int, len(stats))
	maxGen := 0
	for _, s := range stats { // parents come before their children
		g := 0
		for _, p := range parentsOf(s) {
			if pg, ok := gen[p]; ok {
				g = max(g, pg+1)
			}
		}
		gen[s.ShardId] = g
		maxGen = max(maxGen, g)
	}
	col := math.Min(150, (w-2*pad)/float64(maxGen+1))
	boxW := col * 0.62
	type box struct{ x, y0, y1 float64 }
	boxes := make(map[string]box, len(stats))
	for _, s := range stats {
		x := pad + float64(gen[s.ShardId])*col
		y0 := pad + hashFrac(s.HashKeyRange.StartingHashKey)*(h-2*pad)
		y1 := pad + hashFrac(s.HashKeyRange.EndingHashKey)*(h-2*pad)
		boxes[s.ShardId] = box{x, y0, y1}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg id="lineage" class="lineage" viewBox="0 0 %g %g" width="100%%" role="img" aria-label="shard lineage">`, w, h)
	for _, s := range stats {
		c := boxes[s.ShardId]
		for _, p := range parentsOf(s) {
			pb, ok := boxes[p]
			if !ok {
				continue
			}
			// Join the parent's right side to the child's left side at
			// the middle of the hash keys they share.
			y := (math.Max(pb.y0, c.y0) + math.Min(pb.y1, c.y1)) / 2
			fmt.Fprintf(&b, `<path class="edge" data-parent="%s" data-child="%s" d="M%.2f %.2f C%.2f %.2f %.2f %.2f %.2f %.2f"/>`,
				esc(p), esc(s.ShardId), pb.x+boxW, y, pb.x+boxW+(c.x-pb.x-boxW)/2, y, pb.x+boxW+(c.x-pb.x-boxW)/2, y, c.x, y)
		}
	}
	for _, s := range stats {
		c := boxes[s.ShardId]
		state := "open"
		if s.Closed {
			state = "closed"
		}
		fmt.Fprintf(&b, `<g class="node %s" data-shard="%s"><title>%s (%s): hash keys %s to %s</title><rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" rx="3"/>`,
			state, esc(s.ShardId), esc(s.ShardId), state, esc(s.HashKeyRange.StartingHashKey), esc(s.HashKeyRange.EndingHashKey),
			c.x, c.y0, boxW, math.Max(c.y1-c.y0-2, 2))
		if c.y1-c.y0 > 14 {
			fmt.Fprintf(&b, `<text x="%.2f" y="%.2f" text-anchor="middle">%s</text>`, c.x+boxW/2, (c.y0+c.y1)/2+4, esc(shortID(s.ShardId)))
		}
		b.WriteString(`</g>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func parentsOf(s streams.ShardStats) []string {
	var ps []string
	if s.ParentShardId != nil {
		ps = append(ps, *s.ParentShardId)
	}
	if s.AdjacentParentShardId != nil {
		ps = append(ps, *s.AdjacentParentShardId)
	}
	return ps
}

// lineChart draws one series of samples with its largest value and the
// time span on the axes.
func lineChart(title, unit, id string, samples []Sample, val func(Sample) float64) template.HTML {
	const w, h, left, bottom = 300.0, 120.0, 44.0, 18.0
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s <span class="unit">(%s)</span></figcaption><svg id="%s" viewBox="0 0 %g %g" width="100%%" role="img" aria-label="%s">`,
		esc(title), esc(unit), esc(id), w, h, esc(title))
	fmt.Fprintf(&b, `<line class="axis" x1="%g" y1="4" x2="%g" y2="%g"/><line class="axis" x1="%g" y1="%g" x2="%g" y2="%g"/>`,
		left, left, h-bottom, left, h-bottom, w, h-bottom)
	if len(samples) < 2 {
		fmt.Fprintf(&b, `<text class="empty" x="%g" y="%g" text-anchor="middle">collecting samples…</text></svg></figure>`, (w+left)/2, h/2)
		return template.HTML(b.String())
	}
	peak := 0.0
	for _, s := range samples {
		peak = math.Max(peak, val(s))
	}
	scale := niceCeil(peak)
	t0, t1 := samples[0].Time, samples[len(samples)-1].Time
	span := t1.Sub(t0).Seconds()
	var pts []string
	for _, s := range samples {
		x := left + (w-left-4)*s.Time.Sub(t0).Seconds()/span
		y := (h - bottom) - (h-bottom-6)*val(s)/scale
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
	}
	fmt.Fprintf(&b, `<polyline class="line" points="%s"/>`, strings.Join(pts, " "))
	fmt.Fprintf(&b, `<text class="axis" x="%g" y="12" text-anchor="end">%s</text><text class="axis" x="%g" y="%g" text-anchor="end">0</text>`,
		left-4, esc(fmtRate(scale)), left-4, h-bottom)
	fmt.Fprintf(&b, `<text class="axis" x="%g" y="%g">-%s</text><text class="axis" x="%g" y="%g" text-anchor="end">now</text></svg></figure>`,
		left, h-4, esc(t1.Sub(t0).Round(1e9).String()), w-2, h-4)
	return template.HTML(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// sparkline draws a stream's incoming records for the streams list.
func sparkline(samples []Sample) template.HTML {
	const w, h = 120.0, 22.0
	if len(samples) < 2 {
		return template.HTML(`<span class="muted">–</span>`)
	}
	peak := 0.0
	for _, s := range samples {
		peak = math.Max(peak, s.IncomingRecords)
	}
	scale := niceCeil(peak)
	var pts []string
	for i, s := range samples {
		pts = append(pts, fmt.Sprintf("%.1f,%.1f", w*float64(i)/float64(len(samples)-1), h-1-(h-2)*s.IncomingRecords/scale))
	}
	return template.HTML(fmt.Sprintf(`<svg class="spark" viewBox="0 0 %g %g" width="%g" height="%g" aria-label="incoming records"><polyline points="%s"/></svg>`, w, h, w, h, strings.Join(pts, " ")))
}
