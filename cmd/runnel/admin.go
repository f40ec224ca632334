package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/runnel/runnel/internal/auth"
	"github.com/runnel/runnel/internal/console"
	"github.com/runnel/runnel/internal/leases"
	"github.com/runnel/runnel/internal/streams"
)

// The admin listener serves what operators look at rather than what
// applications call: the web console (--console) and, besides, metrics and
// health endpoints. It listens on --admin-listen (127.0.0.1:4568 by
// default), off the API port so that none of it is exposed with the API by
// accident; "api" puts it on the API port instead, and "" turns it off.

// defaultAdminListen is --admin-listen's default.
const defaultAdminListen = "127.0.0.1:4568"

// adminOnAPI is the --admin-listen value that serves the admin endpoints
// on the API port.
const adminOnAPI = "api"

// admin is what serve starts for the admin listener.
type admin struct {
	mux     *http.ServeMux
	console *console.Console
}

// adminMux builds the admin listener's handler: the console under
// /console/ (and / redirecting there) when cfg.console is set.
func adminMux(cfg serveConfig, svc *streams.Service, lsvc *leases.Service, v *auth.Verifier, log *slog.Logger) (*admin, error) {
	a := &admin{mux: http.NewServeMux()}
	if cfg.console {
		opts := console.DefaultOptions()
		opts.Streams = svc
		opts.Leases = lsvc
		opts.AllowedHosts = splitList(cfg.allowedHosts)
		opts.Logger = log
		opts.Authenticate = consoleLogin(v, log)
		c, err := console.New(opts)
		if err != nil {
			return nil, err
		}
		c.Register(a.mux)
		a.console = c
	}
	return a, nil
}

// close stops what the admin endpoints run in the background.
func (a *admin) close() {
	if a.console != nil {
		_ = a.console.Close()
	}
}

// withAdmin serves the admin endpoints on the API port: a request that is
// not an API call (no X-Amz-Target) and that the admin mux has a route for
// goes to it, everything else to the API.
func withAdmin(api http.Handler, mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") == "" {
			if _, pattern := mux.Handler(r); pattern != "" {
				mux.ServeHTTP(w, r)
				return
			}
		}
		api.ServeHTTP(w, r)
	})
}

// startAdmin listens on addr and serves h until stop. When the address is
// in use and was not asked for explicitly (the default), the listener is
// skipped with a warning, so that a second server on one machine still
// starts; an explicit address in use is an error.
func startAdmin(addr string, explicit bool, h http.Handler, log *slog.Logger) (stop func(), err error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			if !explicit {
				log.Warn("admin listener off: its default address is in use (another runnel?); choose one with --admin-listen",
					slog.String("address", addr))
				return func() {}, nil
			}
			return nil, fmt.Errorf("--admin-listen %s is already in use: choose another address, \"api\" for the API port, or \"\" for none", addr)
		}
		return nil, fmt.Errorf("--admin-listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("admin listener stopped", slog.Any("error", err))
		}
	}()
	log.Info("admin listening", slog.String("url", "http://"+l.Addr().String()+"/"))
	return func() {
		_ = srv.Close()
		<-done
	}, nil
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
