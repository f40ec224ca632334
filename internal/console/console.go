package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/streams"
)

//go:embed assets
var assets embed.FS

// Options configure a Console.
type Options struct {
	// Streams is the service the console shows and changes. Required.
	Streams *streams.Service
	// Leases, when set, lists consumer applications and their lag.
	Leases *leases.Service
	// Delivery, when set, adds the delivery streams: their page, and on
	// a stream's page the delivery streams that read it.
	Delivery *delivery.Service
	// DeliveryRates, when set, gives the delivery streams' charts.
	DeliveryRates DeliveryRates
	// Rates gives write rates and iterator age. Nil: a Sampler of Streams
	// (with a LeaseLag of Leases), run by the console every SampleEvery.
	Rates Rates
	// Lag gives consumer applications' lag on a stream's page. Nil: a
	// LeaseLag of Leases, when Leases is set.
	Lag Lag
	// SampleEvery is how often the console's own Sampler samples. Default
	// 5 seconds.
	SampleEvery time.Duration
	// Keep is how many samples per stream the Sampler keeps. Default 60
	// (five minutes at the default interval).
	Keep int
	// AllowedHosts are the host names (name or name:port; "*" for any)
	// accepted in the Host header besides localhost and IP addresses, so
	// that a page of another site cannot reach the console by DNS
	// rebinding.
	AllowedHosts []string
	// Authenticate, when set, is asked about every request before it is
	// served. It returns true to let the request through; otherwise it has
	// written the answer itself (a 401, or a redirect to a login page it
	// serves). runnel serve sets it when credentials are configured; nil
	// means the console is open to whoever reaches the admin listener.
	Authenticate func(w http.ResponseWriter, r *http.Request) bool
	// Logger receives sampling failures. Nil: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Nil: time.Now.
	Now func() time.Time
}

// DefaultOptions returns the defaults described on each field.
func DefaultOptions() Options {
	return Options{SampleEvery: 5 * time.Second, Keep: 60}
}

// Validate reports whether the options are usable.
func (o Options) Validate() error {
	if o.Streams == nil {
		return errors.New("console: Options.Streams is nil")
	}
	if o.SampleEvery <= 0 && o.Rates == nil {
		return errors.New("console: Options.SampleEvery must be positive")
	}
	return nil
}

// Console serves the web console. It is an http.Handler for the paths
// under /console/ (and / redirects there); Close stops its sampler.
type Console struct {
	opts    Options
	rates   Rates
	lag     Lag
	pages   map[string]*template.Template
	static  http.Handler
	mux     *http.ServeMux
	csrfKey []byte

	stop context.CancelFunc
	done sync.WaitGroup
}

// New returns a console and starts its sampler when it samples itself.
func New(opts Options) (*Console, error) {
	d := DefaultOptions()
	if opts.SampleEvery == 0 {
		opts.SampleEvery = d.SampleEvery
	}
	if opts.Keep == 0 {
		opts.Keep = d.Keep
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &Console{opts: opts, rates: opts.Rates, lag: opts.Lag}
	if c.lag == nil && opts.Leases != nil {
		c.lag = &LeaseLag{Streams: opts.Streams, Leases: opts.Leases, Now: opts.Now}
	}
	c.csrfKey = make([]byte, 32)
	if _, err := rand.Read(c.csrfKey); err != nil {
		return nil, err
	}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "assets/static")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix("/console/static/", http.FileServerFS(sub))
	c.routes()
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	if c.rates == nil {
		s := NewSampler(opts.Streams, c.lag, opts.Keep, opts.Now)
		c.rates = s
		c.done.Add(1)
		go func() {
			defer c.done.Done()
			s.Run(ctx, opts.SampleEvery, opts.Logger)
		}()
	}
	return c, nil
}

// Close stops the console's sampler. The handler keeps answering.
func (c *Console) Close() error {
	c.stop()
	c.done.Wait()
	return nil
}

// Register adds the console to mux: /console/... and a redirect of / to
// /console/.
func (c *Console) Register(mux *http.ServeMux) {
	mux.Handle("/console/", c)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusFound)
	})
}

// ServeHTTP checks the Host header and the Authenticate hook, then serves
// the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !hostAllowed(r.Host, c.opts.AllowedHosts) {
		http.Error(w, "runnel console: this host name is not allowed: add it to --allowed-hosts to reach the console by it", http.StatusMisdirectedRequest)
		return
	}
	if c.opts.Authenticate != nil && !c.opts.Authenticate(w, r) {
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	c.mux.ServeHTTP(w, r)
}

// The cross-site request forgery defence of the forms (the JSON endpoints
// only read, and another origin cannot read their answers): a session
// cookie holds a random value and each form carries an HMAC of it (the
// token), and the request must come from the console's own origin
// (Sec-Fetch-Site, Origin or Referer).

const sessionCookie = "runnel_console"

// session returns the request's session value, setting a new cookie when
// it has none.
func (c *Console) session(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(sessionCookie); err == nil && len(ck.Value) >= 20 {
		return ck.Value
	}
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	v := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/console/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	return v
}

// token is the form token of a session.
func (c *Console) token(session string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte(session))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// errForbidden is the answer to a change that fails the checks.
var errForbidden = errors.New("this request did not come from the console's own page: reload the page and try again")

// checkChange verifies that a state-changing request comes from the
// console's own page.
func (c *Console) checkChange(r *http.Request) error {
	if !sameOrigin(r) {
		return errForbidden
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return errForbidden
	}
	want := c.token(ck.Value)
	got := r.PostFormValue("token")
	if got == "" {
		got = r.Header.Get("X-Runnel-Token")
	}
	if !hmac.Equal([]byte(got), []byte(want)) {
		return errForbidden
	}
	return nil
}

// sameOrigin reports whether a browser says the request comes from the
// console's own origin. A request without any of the headers (a script,
// curl) is let through: it carries no cookie a browser would attach for
// another site, and the token is checked besides.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return true
	case "":
	default:
		return false
	}
	src := r.Header.Get("Origin")
	if src == "" || src == "null" {
		src = r.Header.Get("Referer")
	}
	if src == "" {
		return r.Header.Get("Origin") == ""
	}
	u, err := url.Parse(src)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// hostAllowed reports whether the Host header names this server: an IP
// address, localhost (or a subdomain), or one of allowed ("*" for any).
func hostAllowed(hostport string, allowed []string) bool {
	if hostport == "" {
		return true
	}
	host := strings.ToLower(hostport)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || net.ParseIP(host) != nil {
		return true
	}
	for _, a := range allowed {
		a = strings.ToLower(a)
		if a == "*" || a == host || a == strings.ToLower(hostport) {
			return true
		}
	}
	return false
}
