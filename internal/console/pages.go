package console

import (
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/runnel/runnel/internal/streams"
)

// routes builds the console's request multiplexer.
func (c *Console) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /console/{$}", c.index)
	m.HandleFunc("POST /console/streams", c.create)
	m.HandleFunc("GET /console/streams/{name}", c.streamPage)
	m.HandleFunc("POST /console/streams/{name}/delete", c.delete)
	m.HandleFunc("POST /console/streams/{name}/shards", c.updateShards)
	m.HandleFunc("POST /console/streams/{name}/retention", c.retention)
	if c.opts.Delivery != nil {
		m.HandleFunc("GET /console/delivery-streams/{$}", c.deliveryIndex)
		m.HandleFunc("GET /console/delivery-streams/{name}", c.deliveryPage)
	}
	m.HandleFunc("GET /console/api/streams", c.apiStreams)
	m.HandleFunc("GET /console/api/streams/{name}/records", c.apiRecords)
	m.Handle("GET /console/static/", c.static)
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, r, http.StatusNotFound, "error", &page{Title: "Not found", Err: "There is no console page at " + r.URL.Path + "."})
	})
	c.mux = m
}

// page is what every template gets.
type page struct {
	Title string
	Token string
	// Msg and Err are the outcome of the last form, shown once.
	Msg, Err string
	Data     any
	// Delivery says whether the delivery streams' pages are served.
	Delivery bool
}

func (c *Console) parseTemplates() error {
	funcs := template.FuncMap{
		"rate":  fmtRate,
		"bytes": fmtBytes,
		"ms":    fmtMillis,
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02 15:04:05.000Z")
		},
		"join":   strings.Join,
		"dspark": deliverySpark,
	}
	base, err := template.New("base").Funcs(funcs).ParseFS(assets, "assets/templates/base.html", "assets/templates/parts.html")
	if err != nil {
		return err
	}
	c.pages = make(map[string]*template.Template)
	for _, name := range []string{"index", "stream", "error", "deliveries", "delivery"} {
		t, err := template.Must(base.Clone()).ParseFS(assets, "assets/templates/"+name+".html")
		if err != nil {
			return err
		}
		c.pages[name] = t
	}
	return nil
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	p.Token = c.token(c.session(w, r))
	p.Delivery = c.opts.Delivery != nil
	if p.Msg == "" && p.Err == "" {
		p.Msg, p.Err = takeFlash(w, r)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := c.pages[name].ExecuteTemplate(w, "base", p); err != nil {
		c.opts.Logger.Warn("console: rendering a page failed", "page", name, "error", err)
	}
}

// back redirects to a console page with the outcome of a form, which the
// page shows once. The outcome travels in a cookie rather than in the URL,
// so that a link cannot make the console show a text of its author's.
func back(w http.ResponseWriter, r *http.Request, path, msg string, err error) {
	v := "ok:" + msg
	if err != nil {
		v = "err:" + errText(err)
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(v)), Path: "/console/",
		MaxAge: 60, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, path, http.StatusSeeOther)
}

const flashCookie = "runnel_console_flash"

// takeFlash returns the outcome back stored, and clears it.
func takeFlash(w http.ResponseWriter, r *http.Request) (msg, errMsg string) {
	ck, err := r.Cookie(flashCookie)
	if err != nil {
		return "", ""
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Path: "/console/", MaxAge: -1})
	b, err := base64.RawURLEncoding.DecodeString(ck.Value)
	if err != nil {
		return "", ""
	}
	v := string(b)
	if rest, ok := strings.CutPrefix(v, "err:"); ok {
		return "", rest
	}
	return strings.TrimPrefix(v, "ok:"), ""
}

// errText is an error as the console shows it: a Kinesis error with its
// type, as the API would answer.
func errText(err error) string {
	var e *streams.Error
	if errors.As(err, &e) {
		return string(e.Code) + ": " + e.Message
	}
	return err.Error()
}

type streamRow struct {
	streams.StreamDescriptionSummary
	Mode            string
	IncomingRecords float64
	IncomingBytes   float64
	Spark           template.HTML
	// Apps is the consumer applications' lag as last sampled.
	Apps []AppLag
}

func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	names, err := listStreams(ctx, c.opts.Streams)
	if err != nil {
		c.render(w, r, http.StatusInternalServerError, "error", &page{Title: "Error", Err: errText(err)})
		return
	}
	rows := make([]streamRow, 0, len(names))
	for _, n := range names {
		out, err := c.opts.Streams.DescribeStreamSummary(ctx, &streams.DescribeStreamSummaryInput{StreamName: &n})
		if err != nil {
			continue // deleted meanwhile
		}
		row := streamRow{StreamDescriptionSummary: out.StreamDescriptionSummary, Mode: mode(out.StreamDescriptionSummary.StreamModeDetails)}
		samples := c.rates.StreamRates(n)
		if len(samples) > 0 {
			last := samples[len(samples)-1]
			row.IncomingRecords, row.IncomingBytes = last.IncomingRecords, last.IncomingBytes
		}
		row.Spark = sparkline(samples)
		if sm, ok := c.rates.(*Sampler); ok {
			row.Apps, _ = sm.LastLag(n)
		}
		rows = append(rows, row)
	}
	c.render(w, r, http.StatusOK, "index", &page{Title: "Streams", Data: rows})
}

func mode(m *streams.StreamModeDetails) string {
	if m == nil || m.StreamMode == nil {
		return "PROVISIONED"
	}
	return *m.StreamMode
}

func (c *Console) create(w http.ResponseWriter, r *http.Request) {
	if err := c.checkChange(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("name"))
	in := &streams.CreateStreamInput{StreamName: &name}
	m := r.PostFormValue("mode")
	if m == "ON_DEMAND" {
		in.StreamModeDetails = &streams.StreamModeDetails{StreamMode: &m}
	} else {
		n, err := strconv.ParseInt(r.PostFormValue("shards"), 10, 32)
		if err != nil {
			back(w, r, "/console/", "", fmt.Errorf("the shard count %q is not a number", r.PostFormValue("shards")))
			return
		}
		n32 := int32(n)
		in.ShardCount = &n32
	}
	err := c.opts.Streams.CreateStream(r.Context(), in)
	if err != nil {
		back(w, r, "/console/", "", err)
		return
	}
	back(w, r, "/console/streams/"+url.PathEscape(name), "Stream "+name+" created.", nil)
}

func (c *Console) delete(w http.ResponseWriter, r *http.Request) {
	if err := c.checkChange(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	name := r.PathValue("name")
	force := r.PostFormValue("force") != ""
	err := c.opts.Streams.DeleteStream(r.Context(), &streams.DeleteStreamInput{StreamName: &name, EnforceConsumerDeletion: &force})
	if err != nil {
		back(w, r, "/console/streams/"+url.PathEscape(name), "", err)
		return
	}
	back(w, r, "/console/", "Stream "+name+" is being deleted.", nil)
}

func (c *Console) updateShards(w http.ResponseWriter, r *http.Request) {
	if err := c.checkChange(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	name := r.PathValue("name")
	path := "/console/streams/" + url.PathEscape(name)
	n, err := strconv.ParseInt(r.PostFormValue("target"), 10, 32)
	if err != nil {
		back(w, r, path, "", fmt.Errorf("the target shard count %q is not a number", r.PostFormValue("target")))
		return
	}
	n32, uniform := int32(n), "UNIFORM_SCALING"
	_, err = c.opts.Streams.UpdateShardCount(r.Context(), &streams.UpdateShardCountInput{StreamName: &name, TargetShardCount: &n32, ScalingType: &uniform})
	back(w, r, path, fmt.Sprintf("Rescaling to %d shards.", n), err)
}

func (c *Console) retention(w http.ResponseWriter, r *http.Request) {
	if err := c.checkChange(r); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	ctx := r.Context()
	name := r.PathValue("name")
	path := "/console/streams/" + url.PathEscape(name)
	h, err := strconv.ParseInt(r.PostFormValue("hours"), 10, 32)
	if err != nil {
		back(w, r, path, "", fmt.Errorf("the retention %q is not a number of hours", r.PostFormValue("hours")))
		return
	}
	cur, err := c.opts.Streams.DescribeStreamSummary(ctx, &streams.DescribeStreamSummaryInput{StreamName: &name})
	if err != nil {
		back(w, r, path, "", err)
		return
	}
	h32 := int32(h)
	in := &streams.DecreaseStreamRetentionPeriodInput{StreamName: &name, RetentionPeriodHours: &h32}
	switch old := cur.StreamDescriptionSummary.RetentionPeriodHours; {
	case h32 > old:
		err = c.opts.Streams.IncreaseStreamRetentionPeriod(ctx, in)
	case h32 < old:
		err = c.opts.Streams.DecreaseStreamRetentionPeriod(ctx, in)
	default:
		back(w, r, path, fmt.Sprintf("Retention is already %d hours.", h), nil)
		return
	}
	back(w, r, path, fmt.Sprintf("Retention set to %d hours.", h), err)
}

// shardRow is one shard on a stream's page.
type shardRow struct {
	streams.ShardStats
	Parents []string
	Kept    uint64
	Rate    Sample
}

type streamView struct {
	Summary   streams.StreamDescriptionSummary
	Mode      string
	Shards    []shardRow
	Open      int
	Consumers []streams.Consumer
	Apps      []AppLag
	LagErr    string
	// Deliveries are the delivery streams reading the stream; DeliveryErr
	// says why they could not be listed.
	Deliveries  []deliveryRow
	DeliveryErr string
	HashMap     template.HTML
	Lineage     template.HTML
	Charts      []template.HTML
}

func (c *Console) streamPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	name := r.PathValue("name")
	sum, err := c.opts.Streams.DescribeStreamSummary(ctx, &streams.DescribeStreamSummaryInput{StreamName: &name})
	if err != nil {
		status := http.StatusInternalServerError
		if isNotFound(err) {
			status = http.StatusNotFound
		}
		c.render(w, r, status, "error", &page{Title: name, Err: errText(err)})
		return
	}
	stats, err := c.opts.Streams.ShardStats(ctx, name)
	if err != nil {
		c.render(w, r, http.StatusInternalServerError, "error", &page{Title: name, Err: errText(err)})
		return
	}
	v := &streamView{Summary: sum.StreamDescriptionSummary, Mode: mode(sum.StreamDescriptionSummary.StreamModeDetails)}
	rates := c.rates.ShardRates(name)
	for _, s := range stats {
		row := shardRow{ShardStats: s, Kept: s.Next - s.First, Rate: rates[s.ShardId]}
		if s.ParentShardId != nil {
			row.Parents = append(row.Parents, *s.ParentShardId)
		}
		if s.AdjacentParentShardId != nil {
			row.Parents = append(row.Parents, *s.AdjacentParentShardId)
		}
		if !s.Closed {
			v.Open++
		}
		v.Shards = append(v.Shards, row)
	}
	arn := v.Summary.StreamARN
	cin := &streams.ListStreamConsumersInput{StreamARN: &arn}
	for {
		out, err := c.opts.Streams.ListStreamConsumers(ctx, cin)
		if err != nil {
			break
		}
		v.Consumers = append(v.Consumers, out.Consumers...)
		if out.NextToken == nil {
			break
		}
		cin = &streams.ListStreamConsumersInput{NextToken: out.NextToken}
	}
	if c.lag != nil {
		v.Apps, err = c.lag.ConsumerLag(ctx, name)
		if err != nil {
			v.LagErr = errText(err)
		}
	}
	sort.Slice(v.Apps, func(i, j int) bool { return v.Apps[i].Application < v.Apps[j].Application })
	if c.opts.Delivery != nil {
		v.Deliveries, err = c.deliveryStreams(ctx, name)
		if err != nil {
			v.DeliveryErr = deliveryErrText(err)
		}
	}
	v.HashMap = hashKeyMap(stats)
	v.Lineage = lineageGraph(stats)
	samples := c.rates.StreamRates(name)
	v.Charts = []template.HTML{
		lineChart("Incoming records", "records/s", "chart-records", samples, func(s Sample) float64 { return s.IncomingRecords }),
		lineChart("Incoming bytes", "bytes/s", "chart-bytes", samples, func(s Sample) float64 { return s.IncomingBytes }),
		lineChart("Iterator age", "ms", "chart-age", samples, func(s Sample) float64 { return float64(s.IteratorAgeMillis) }),
	}
	c.render(w, r, http.StatusOK, "stream", &page{Title: name, Data: v})
}

func fmtRate(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
}

func fmtBytes(v float64) string {
	switch {
	case v >= 1<<30:
		return strconv.FormatFloat(v/(1<<30), 'f', 1, 64) + " GiB"
	case v >= 1<<20:
		return strconv.FormatFloat(v/(1<<20), 'f', 1, 64) + " MiB"
	case v >= 1<<10:
		return strconv.FormatFloat(v/(1<<10), 'f', 1, 64) + " KiB"
	default:
		return strconv.FormatFloat(v, 'f', 0, 64) + " B"
	}
}

func fmtMillis(ms int64) string {
	if ms < 1000 {
		return strconv.FormatInt(ms, 10) + " ms"
	}
	return (time.Duration(ms) * time.Millisecond).Round(time.Second).String()
}
