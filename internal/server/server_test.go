package server_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/apptest"
	"github.com/latchkey/latchkey/internal/server"
)

// TestRoutes: every route of routes.go is mounted with its method. A request with
// no credentials reaches the route's own adapter, so it answers something other
// than the mux's 404 or 405, and the metrics name the route's pattern.
func TestRoutes(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/healthz", 200},
		{"GET", "/metrics", 404}, // only on metrics-addr
		{"GET", "/static/latchkey.css", 200},
		{"GET", "/", 303},
		{"GET", "/signup", 200},
		{"GET", "/login", 200},
		{"GET", "/login/mfa", 303},
		{"GET", "/login/recovery-code", 303},
		{"GET", "/password/forgot", 200},
		{"GET", "/password/reset?token=x", 200},
		{"GET", "/settings/authentication", 303},
		{"GET", "/settings/sessions", 303},
		{"GET", "/settings/security-log", 303},
		{"GET", "/settings/tokens", 303},
		{"GET", "/settings/ssh-keys", 303},
		{"GET", "/settings/reauth", 303},
		{"GET", "/recover", 200},
		{"GET", "/recover/cancel?token=x", 200},
		{"GET", "/admin/recovery", 303},
		{"GET", "/no/such/page", 404},
		{"GET", "/api/v1/me", 401},
		{"POST", "/api/v1/logout", 401},
		{"GET", "/api/v1/mfa/totp/setup/qr.png", 401},
		{"GET", "/api/v1/mfa/totp/setup/qr.svg", 401},
		{"GET", "/api/v1/mfa/recovery-codes", 401},
		{"DELETE", "/api/v1/mfa", 401},
		{"GET", "/api/v1/tokens", 401},
		{"DELETE", "/api/v1/tokens/1", 401},
		{"GET", "/api/v1/sessions", 401},
		{"DELETE", "/api/v1/sessions/1", 401},
		{"GET", "/api/v1/security-log", 401},
		{"GET", "/api/v1/ssh-keys", 401},
		{"DELETE", "/api/v1/ssh-keys/1", 401},
		{"GET", "/api/v1/admin/recovery-requests", 401},
		{"POST", "/api/v1/admin/recovery-requests/x/approve", 401},
		{"POST", "/api/v1/admin/recovery-requests/x/deny", 401},
		{"POST", "/api/v1/login", 400},
		{"POST", "/api/v1/signup", 400},
		{"GET", "/api/v1/no-such-endpoint", 404},
	}
	for _, tt := range tests {
		body := ""
		if tt.method == "POST" && !strings.Contains(tt.path, "admin") && tt.path != "/api/v1/logout" {
			body = "{}"
		}
		rec := e.JSON(tt.method, tt.path, "", body)
		if rec.Code != tt.want {
			t.Errorf("%s %s = %d, want %d; body %.200s", tt.method, tt.path, rec.Code, tt.want, rec.Body.String())
		}
		if strings.HasPrefix(tt.path, "/api/") && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
			t.Errorf("%s %s Content-Type = %q, want JSON", tt.method, tt.path, rec.Header().Get("Content-Type"))
		}
	}
	mrec := httptest.NewRecorder()
	e.Handler.MetricsHandler().ServeHTTP(mrec, httptest.NewRequest("GET", "/metrics", nil))
	if mrec.Code != 200 {
		t.Fatalf("metrics listener: GET /metrics = %d, want 200", mrec.Code)
	}
	metrics := mrec.Body.String()
	for _, route := range []string{`route="GET /api/v1/me"`, `route="GET /signup"`, `route="/api/"`} {
		if !strings.Contains(metrics, route) {
			t.Errorf("/metrics has no %s", route)
		}
	}
}

// TestSecurityHeaders: every answer, page or API, carries the headers, and HSTS only
// under https.
func TestSecurityHeaders(t *testing.T) {
	for _, secure := range []bool{false, true} {
		e := apptest.New(t, apptest.Options{SecureCookies: secure})
		for _, path := range []string{"/login", "/api/v1/me", "/healthz"} {
			h := e.Do("GET", path, nil).Header()
			for k, want := range map[string]string{
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
				"Referrer-Policy":        "no-referrer",
			} {
				if got := h.Get(k); got != want {
					t.Errorf("secure=%v GET %s %s = %q, want %q", secure, path, k, got, want)
				}
			}
			if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("secure=%v GET %s CSP = %q", secure, path, h.Get("Content-Security-Policy"))
			}
			if got := h.Get("Strict-Transport-Security") != ""; got != secure {
				t.Errorf("secure=%v GET %s has HSTS = %v", secure, path, got)
			}
		}
	}
}

// TestBodyLimit: a declared oversized body is refused before any work, and an
// undeclared one is cut at the limit.
func TestBodyLimit(t *testing.T) {
	e := apptest.New(t, apptest.Options{MaxBodyBytes: 64})
	big := `{"login":"` + strings.Repeat("a", 200) + `","password":"x"}`
	rec := e.JSON("POST", "/api/v1/login", "", big)
	if rec.Code != http.StatusRequestEntityTooLarge || !strings.Contains(rec.Body.String(), "body_too_large") {
		t.Fatalf("declared oversized body = %d %s, want 413 body_too_large", rec.Code, rec.Body)
	}
	req := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(big))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	rec = httptest.NewRecorder()
	e.Handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge && rec.Code != http.StatusBadRequest {
		t.Fatalf("undeclared oversized body = %d %s, want 413 or 400", rec.Code, rec.Body)
	}
}

// TestAuthenticate: a bearer token or the session cookie signs a request in; a bad
// Authorization header is never rescued by a good cookie.
func TestAuthenticate(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	e.SignUp(t, "alice")
	tok := e.SignIn(t, "alice", nil)
	cookie := "latchkey_session=" + tok
	tests := []struct {
		name   string
		header []string
		want   int
	}{
		{"bearer", []string{"Authorization", "Bearer " + tok}, 200},
		{"bearer, any case", []string{"Authorization", "bearer " + tok}, 200},
		{"cookie", []string{"Cookie", cookie}, 200},
		{"wrong token", []string{"Authorization", "Bearer nope"}, 401},
		{"other scheme", []string{"Authorization", "Basic " + tok}, 401},
		{"bad header beats a good cookie", []string{"Authorization", "Bearer nope", "Cookie", cookie}, 401},
		{"nothing", nil, 401},
	}
	for _, tt := range tests {
		if rec := e.Do("GET", "/api/v1/me", nil, tt.header...); rec.Code != tt.want {
			t.Errorf("%s: GET /api/v1/me = %d, want %d", tt.name, rec.Code, tt.want)
		}
	}
}

// TestCrossOrigin: a cookie-carrying API write must declare JSON, and a cross-site
// browser write is refused; a bearer request is not a browser's.
func TestCrossOrigin(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	e.SignUp(t, "alice")
	tok := e.SignIn(t, "alice", nil)
	cookie := "latchkey_session=" + tok
	rec := e.Do("POST", "/api/v1/logout", strings.NewReader("a=b"), "Cookie", cookie, "Content-Type", "application/x-www-form-urlencoded")
	if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "cross_origin_request") {
		t.Errorf("form-encoded API write with the cookie = %d %s, want 403 cross_origin_request", rec.Code, rec.Body)
	}
	rec = e.Do("POST", "/logout", strings.NewReader("csrf_token=x"), "Cookie", cookie,
		"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site")
	if rec.Code != http.StatusForbidden {
		t.Errorf("cross-site form post = %d, want 403", rec.Code)
	}
	if rec := e.JSON("POST", "/api/v1/logout", tok, ""); rec.Code != http.StatusOK && rec.Code != http.StatusNoContent {
		t.Errorf("bearer logout = %d %s, want success", rec.Code, rec.Body)
	}
}

// TestHealthz reports the database; a closed store is a 503.
func TestHealthz(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	if rec := e.Do("GET", "/healthz", nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"status":"ok"`) {
		t.Fatalf("GET /healthz = %d %s", rec.Code, rec.Body)
	}
	e.Store.Close()
	if rec := e.Do("GET", "/healthz", nil); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /healthz with the store closed = %d %s, want 503", rec.Code, rec.Body)
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name, remote, xff, want string
	}{
		{"untrusted peer ignores the header", "192.0.2.7:1000", "198.51.100.1", "192.0.2.7"},
		{"trusted peer: right-most untrusted hop", "10.0.0.1:1000", "198.51.100.1, 203.0.113.9, 10.0.0.2", "203.0.113.9"},
		{"trusted peer, no header", "10.0.0.1:1000", "", "10.0.0.1"},
		{"trusted peer, garbage hop", "10.0.0.1:1000", "nonsense", "10.0.0.1"},
		{"mapped IPv6 peer", "[::ffff:192.0.2.7]:1000", "", "192.0.2.7"},
		{"no port", "192.0.2.7", "", "192.0.2.7"},
		{"not an address", "pipe", "", "pipe"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tt.remote
		if tt.xff != "" {
			r.Header.Set("X-Forwarded-For", tt.xff)
		}
		if got := server.ClientIP(r, trusted); got != tt.want {
			t.Errorf("%s: ClientIP = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestHTTPServer: every timeout is set, so slow clients cannot hold connections.
func TestHTTPServer(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	srv := server.HTTPServer("127.0.0.1:0", e.Handler, slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("HTTPServer = %+v, want every timeout and the header limit set", srv)
	}
}
