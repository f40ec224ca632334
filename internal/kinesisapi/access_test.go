package kinesisapi

import (
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func newAccessHandler(t *testing.T, hosts, origins []string) *Handler {
	t.Helper()
	opts := DefaultOptions()
	opts.Logger = slog.New(slog.DiscardHandler)
	opts.AllowedHosts = hosts
	opts.CORSOrigins = origins
	h, err := NewHandler(newFake(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHostCheck(t *testing.T) {
	h := newAccessHandler(t, []string{"runnel", "kinesis.internal:4567"}, nil)
	tests := []struct {
		host string
		ok   bool
	}{
		{"127.0.0.1:4567", true},
		{"localhost:4567", true},
		{"LOCALHOST:9999", true},
		{"localhost.:4567", true},
		{"app.localhost:4567", true},
		{"[::1]:4567", true},
		{"[::1]", true},
		{"10.1.2.3:4567", true},
		{"localhost", true},
		{"runnel:4567", true},
		{"runnel", true},
		{"kinesis.internal:4567", true},
		{"kinesis.internal:80", false},
		{"kinesis.internal", false},
		{"evil.example:4567", false},
		{"evil.example", false},
		{"localhost.evil.example:4567", false},
		{"127.0.0.1.nip.io:4567", false},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
			r.Host = tt.host
			r.Header.Set("Content-Type", contentTypeJSON)
			r.Header.Set("X-Amz-Target", TargetPrefix+".ListStreams")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := w.Code != http.StatusForbidden; got != tt.ok {
				t.Fatalf("status %d, allowed %v: %s", w.Code, tt.ok, w.Body)
			}
			if !tt.ok {
				m := jsonError(t, w)
				if m["__type"] != "AccessDeniedException" || !strings.Contains(m["message"].(string), tt.host) {
					t.Errorf("body %v", m)
				}
				if w.Header().Get("X-Amzn-ErrorType") != "AccessDeniedException" {
					t.Errorf("X-Amzn-ErrorType %q", w.Header().Get("X-Amzn-ErrorType"))
				}
			}
		})
	}
	t.Run("any host", func(t *testing.T) {
		h := newAccessHandler(t, []string{"*"}, nil)
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
		r.Host = "evil.example:4567"
		r.Header.Set("Content-Type", contentTypeJSON)
		r.Header.Set("X-Amz-Target", TargetPrefix+".ListStreams")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Errorf("status %d", w.Code)
		}
	})
}

func TestCORS(t *testing.T) {
	corsHeaders := []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Headers",
		"Access-Control-Allow-Methods", "Access-Control-Max-Age", "Access-Control-Expose-Headers"}
	tests := []struct {
		name      string
		origins   []string
		method    string
		origin    string
		wantCode  int
		wantAllow string
		want      map[string]string // other headers expected; "" means absent
	}{
		{"off by default: preflight", nil, http.MethodOptions, "http://localhost:3000", 403, "", nil},
		{"off by default: request", nil, http.MethodPost, "http://localhost:3000", 200, "", nil},
		{"listed origin: preflight", []string{"http://localhost:3000"}, http.MethodOptions, "http://localhost:3000", 200,
			"http://localhost:3000", map[string]string{
				"Access-Control-Allow-Headers":  "content-type, x-amz-target",
				"Access-Control-Allow-Methods":  "POST",
				"Access-Control-Max-Age":        "172800",
				"Access-Control-Expose-Headers": "",
				"Content-Length":                "0",
				"x-amz-id-2":                    "",
			}},
		{"listed origin: request", []string{"http://localhost:3000"}, http.MethodPost, "http://localhost:3000", 200,
			"http://localhost:3000", map[string]string{
				"Access-Control-Expose-Headers": exposedHeaders,
				"Access-Control-Allow-Headers":  "",
				"Access-Control-Max-Age":        "",
			}},
		{"other origin: preflight", []string{"http://localhost:3000"}, http.MethodOptions, "http://evil.example", 403, "", nil},
		{"other origin: request", []string{"http://localhost:3000"}, http.MethodPost, "http://evil.example", 200, "", nil},
		{"any origin", []string{"*"}, http.MethodOptions, "http://evil.example", 200, "*", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newAccessHandler(t, nil, tt.origins)
			var r *http.Request
			if tt.method == http.MethodOptions {
				r = httptest.NewRequest(http.MethodOptions, "/", nil)
				r.Header.Set("Access-Control-Request-Headers", "content-type, x-amz-target")
				r.Header.Set("Access-Control-Request-Method", "POST")
			} else {
				r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
				r.Header.Set("Content-Type", contentTypeJSON)
				r.Header.Set("X-Amz-Target", TargetPrefix+".ListStreams")
			}
			r.Host = "localhost:4567"
			r.Header.Set("Origin", tt.origin)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.wantCode, w.Body)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tt.wantAllow {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, tt.wantAllow)
			}
			if tt.wantAllow == "" {
				for _, k := range corsHeaders {
					if v := w.Header().Get(k); v != "" {
						t.Errorf("%s: %q on a refused origin", k, v)
					}
				}
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s %q, want %q", k, got, v)
				}
			}
			if w.Header().Get("x-amzn-RequestId") == "" {
				t.Error("no x-amzn-RequestId")
			}
		})
	}
}

func TestID2Length(t *testing.T) {
	h := newAccessHandler(t, []string{"example.com"}, nil)
	w := sendJSON(h, "ListStreams", "{}")
	id := w.Header().Get("x-amz-id-2")
	b, err := base64.StdEncoding.DecodeString(id)
	if err != nil || len(b) < 72 || len(b) > 80 {
		t.Errorf("x-amz-id-2 %q (%d chars) decodes to %d bytes (err %v), want 72 to 80", id, len(id), len(b), err)
	}
}

func FuzzHostAllowed(f *testing.F) {
	for _, s := range []string{"127.0.0.1:4567", "[::1]:4567", "[::1]", "::1", "localhost", "evil.example:4567",
		"runnel:80", "[", "]", ":", "[:]:", "a:b:c", "1.2.3.4.nip.io", "LOCALHOST.", ""} {
		f.Add(s)
	}
	p := newAccessPolicy([]string{"runnel", "named:4567"}, nil)
	f.Fuzz(func(t *testing.T, host string) {
		ok := p.hostAllowed(host)
		// An IP address, bare or with a port, is always allowed.
		if h, _, err := net.SplitHostPort(host); err == nil && net.ParseIP(h) != nil && !ok {
			t.Errorf("%q refused", host)
		}
		if net.ParseIP(host) != nil && !ok {
			t.Errorf("%q refused", host)
		}
	})
}
