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

	"github.com/runnel/runnel/internal/engine"
	"github.com/runnel/runnel/internal/metrics"
)

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
