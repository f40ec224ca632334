package main

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/runnel/runnel/internal/auth"
	"github.com/runnel/runnel/internal/console"
	"github.com/runnel/runnel/internal/delivery"
	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/metrics"
	"github.com/runnel/runnel/internal/streams"
)

// The admin listener serves what operators look at rather than what
// applications call: /metrics, /healthz and /readyz, and the web console
// (--console). It listens on --admin-listen (127.0.0.1:4568 by default),
// off the API port so that none of it is exposed with the API by accident;
// "api" puts it on the API port instead, and off turns it off.

// defaultAdminListen is --admin-listen's default.
const defaultAdminListen = "127.0.0.1:4568"

// adminOnAPI is the --admin-listen value that serves the admin routes on
// the API port.
const adminOnAPI = "api"

// health answers /healthz and /readyz.
type health struct {
	// eng is the storage engine (an engine.Engine), set by setReady once
	// the server can serve; until then /readyz fails.
	eng atomic.Value
	// draining is set when the server starts shutting down: /readyz then
	// fails, so load balancers send nothing new.
	draining atomic.Bool
}

// setReady marks the server ready to serve on eng.
func (h *health) setReady(eng engine.Engine) { h.eng.Store(eng) }

// readyTimeout bounds the metadata round trip of /readyz.
const readyTimeout = 2 * time.Second

// healthBody is the JSON answer of /healthz and /readyz.
type healthBody struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

func writeHealth(w http.ResponseWriter, code int, b healthBody) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b)
}

// live answers /healthz: the process is up and serving HTTP.
func (h *health) live(w http.ResponseWriter, _ *http.Request) {
	writeHealth(w, http.StatusOK, healthBody{Status: "ok"})
}

// ready answers /readyz: the engine is open and answers a metadata read,
// and the server is not shutting down.
func (h *health) ready(w http.ResponseWriter, r *http.Request) {
	if h.draining.Load() {
		writeHealth(w, http.StatusServiceUnavailable, healthBody{Status: "unavailable", Error: "shutting down"})
		return
	}
	eng, _ := h.eng.Load().(engine.Engine)
	if eng == nil {
		writeHealth(w, http.StatusServiceUnavailable, healthBody{Status: "unavailable", Error: "starting: the storage engine is being opened"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	_, _, err := eng.Meta().Get(ctx, "server/iterator-key")
	if err != nil && !errors.Is(err, engine.ErrKeyNotFound) {
		writeHealth(w, http.StatusServiceUnavailable, healthBody{Status: "unavailable", Error: "storage engine: " + err.Error()})
		return
	}
	writeHealth(w, http.StatusOK, healthBody{Status: "ready"})
}

// adminMux returns the routes of the admin listener: /healthz, /readyz and
// /metrics (404 when reg is nil: metrics are off). Other admin pages
// register on it too.
func adminMux(reg *metrics.Registry, h *health) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", h.live)
	mux.HandleFunc("GET /readyz", h.ready)
	if reg != nil {
		mux.Handle("GET /metrics", reg.Handler())
	} else {
		mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "metrics are off (runnel serve --metrics=false): nothing is counted", http.StatusNotFound)
		})
	}
	return mux
}

// withAdmin serves the admin routes on the API port (--admin-listen api):
// a request without X-Amz-Target whose path an admin route matches goes to
// admin, everything else to api. Every Kinesis request is POST / with
// X-Amz-Target, so the two never meet; CORS preflights (OPTIONS, which
// carry no X-Amz-Target) stay with the API.
func withAdmin(api http.Handler, admin *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "" && r.Method != http.MethodOptions {
			if h, pattern := admin.Handler(r); pattern != "" {
				h.ServeHTTP(w, r)
				return
			}
		}
		api.ServeHTTP(w, r)
	})
}

// adminServer is the admin listener: plain HTTP/1.1, separate from the API
// port so that metrics and health are not exposed where the API is.
type adminServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

// listenAdmin binds the admin listener; serve starts it once the handler
// exists.
func listenAdmin(ctx context.Context, addr string) (*adminServer, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &adminServer{ln: ln, done: make(chan struct{})}, nil
}

// URL is the listener's base URL.
func (a *adminServer) URL() string { return "http://" + a.ln.Addr().String() }

// serve serves h until close.
func (a *adminServer) serve(h http.Handler, log *slog.Logger) {
	a.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("admin listener stopped", slog.Any("error", err))
		}
	}()
}

// close stops the listener and its connections.
func (a *adminServer) close() {
	if a.srv == nil {
		_ = a.ln.Close()
		return
	}
	_ = a.srv.Close()
	<-a.done
}

// addConsole registers the web console on the admin routes when
// cfg.console is set; the returned function stops its background work.
func addConsole(mux *http.ServeMux, cfg serveConfig, reg *metrics.Registry, svc *streams.Service, lsvc *leases.Service, dsvc *delivery.Service, v *auth.Verifier, log *slog.Logger) (stop func(), err error) {
	if !cfg.console {
		return func() {}, nil
	}
	opts := console.DefaultOptions()
	if reg != nil {
		// The charts show the numbers /metrics exports.
		opts.Rates = metricsRates{reg}
		opts.DeliveryRates = metricsRates{reg}
	}
	opts.Delivery = dsvc
	opts.Streams = svc
	opts.Leases = lsvc
	opts.AllowedHosts = splitList(cfg.allowedHosts)
	opts.Logger = log
	opts.Authenticate = consoleLogin(v, log)
	c, err := console.New(opts)
	if err != nil {
		return nil, err
	}
	c.Register(mux)
	return func() { _ = c.Close() }, nil
}

// consoleLogin returns the console's login check: with a credentials file,
// HTTP basic authentication with an access key id as the user name and its
// secret access key as the password (the admin listener is plain HTTP:
// keep it on loopback, or serve it on the API port with TLS); without one,
// everyone is let in, as the API lets any access key in.
func consoleLogin(v *auth.Verifier, log *slog.Logger) func(http.ResponseWriter, *http.Request) bool {
	if v == nil {
		return nil
	}
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !v.Checking() {
			return true
		}
		if id, secret, ok := r.BasicAuth(); ok {
			if _, ok := v.Login(id, secret); ok {
				return true
			}
			log.Warn("console login refused", slog.String("access_key", id), slog.String("remote", r.RemoteAddr))
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="runnel console: access key id and secret access key", charset="UTF-8"`)
		http.Error(w, "log in with an access key id (user name) and its secret access key (password) from the server's credentials file", http.StatusUnauthorized)
		return false
	}
}

// metricsRates gives the console the metrics registry's rate history.
type metricsRates struct{ reg *metrics.Registry }

func (m metricsRates) StreamRates(stream string) []console.Sample {
	rs := m.reg.StreamRates(stream)
	out := make([]console.Sample, len(rs))
	for i, r := range rs {
		out[i] = console.Sample{Time: r.Time, IncomingRecords: r.IncomingRecords, IncomingBytes: r.IncomingBytes,
			IteratorAgeMillis: max(r.IteratorAgeMilliseconds, r.MillisBehindLatest)}
	}
	return out
}

func (m metricsRates) DeliveryRates(name string) []console.DeliverySample {
	rs := m.reg.DeliveryRates(name)
	out := make([]console.DeliverySample, len(rs))
	for i, r := range rs {
		out[i] = console.DeliverySample{Time: r.Time, IncomingRecords: r.IncomingRecords, DeliveredRecords: r.DeliveredRecords, FreshnessMillis: r.FreshnessMillis}
	}
	return out
}

func (m metricsRates) ShardRates(stream string) map[string]console.Sample {
	rs := m.reg.ShardRates(stream)
	out := make(map[string]console.Sample, len(rs))
	for _, r := range rs {
		out[r.Shard] = console.Sample{IncomingRecords: r.IncomingRecords, IncomingBytes: r.IncomingBytes, IteratorAgeMillis: r.IteratorAgeMilliseconds}
	}
	return out
}
