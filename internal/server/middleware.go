package server

import (
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/api"
	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/web"
)

// middleware wraps the mux. Order matters: the metrics layer sits right on the mux
// because the mux records the matched pattern on the request it is handed.
func (s *Server) middleware(mux http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, r, s.log, &auth.Error{Kind: auth.KindForbidden, Code: "cross_origin_request",
			Message: "Cross-origin requests that change state are refused."})
	}))
	var h http.Handler = s.measure(mux)
	h = s.csrf(cop, h)
	h = s.mfaPolicy(h)
	h = s.authenticate(h)
	h = s.clientInfo(h)
	h = s.limitBody(h)
	h = s.securityHeaders(h)
	h = s.recoverPanics(h)
	return h
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v))
				api.WriteError(w, r, s.log, errors.New("panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) securityHeaders(next http.Handler) http.Handler {
	type header struct {
		key   string
		value []string
	}
	headers := []header{
		{"X-Content-Type-Options", []string{"nosniff"}},
		{"X-Frame-Options", []string{"DENY"}},
		{"Referrer-Policy", []string{"no-referrer"}},
		{"Cross-Origin-Opener-Policy", []string{"same-origin"}},
		{"Permissions-Policy", []string{"camera=(), microphone=(), geolocation=()"}},
		{"Content-Security-Policy", []string{"default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"}},
	}
	if s.opts.SecureCookies {
		headers = append(headers, header{"Strict-Transport-Security", []string{"max-age=63072000; includeSubDomains"}})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The value slices (canonical keys, length = capacity = 1) are shared by every
		// response instead of allocated for each: net/http only reads them, Set
		// replaces a slice, and Add to a full slice copies it.
		h := w.Header()
		for _, x := range headers {
			h[x.key] = x.value
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses a declared oversized body before any work and caps the rest.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.opts.MaxBodyBytes {
			w.Header().Set("Connection", "close")
			api.WriteError(w, r, s.log, &auth.Error{Kind: auth.KindTooLarge, Code: "body_too_large",
				Message: fmt.Sprintf("The body is larger than %d bytes.", s.opts.MaxBodyBytes)})
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) clientInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := auth.Client{IP: ClientIP(r, s.opts.TrustedProxies), UserAgent: r.UserAgent()}
		next.ServeHTTP(w, r.WithContext(auth.WithClient(r.Context(), c)))
	})
}

// ClientIP returns the peer address, or — only when the peer is a trusted proxy — the
// right-most X-Forwarded-For entry that is not itself a trusted proxy. Anything a client
// writes further left is ignored, so it cannot pick its own rate-limit bucket.
func ClientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	peer = peer.Unmap()
	if !isTrusted(peer, trusted) {
		return peer.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !isTrusted(a, trusted) {
			return a.String()
		}
	}
	return peer.String()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// bearer returns the token of an Authorization: Bearer header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", true
	}
	return strings.TrimSpace(tok), true
}

// authenticate resolves the caller. An Authorization header always wins over the
// cookie, and a bad one is never rescued by the cookie.
func (s *Server) authenticate(next http.Handler) http.Handler {
	cookie := web.CookieName(s.opts.SecureCookies, s.opts.CookieDomain)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isForwardAuth(r.URL.Path) {
			// The forward-auth endpoints read the session cookie themselves, and only
			// it: an Authorization header there belongs to the application.
			next.ServeHTTP(w, r)
			return
		}
		secret, hasHeader := bearer(r)
		if !hasHeader {
			if c, err := r.Cookie(cookie); err == nil {
				secret = c.Value
			}
		}
		if secret != "" {
			p, err := s.svc.Authenticate(r.Context(), secret)
			if err != nil && auth.AsError(err) == nil {
				// A database fault must not become "signed in"; nor "anonymous" for a
				// page that would then show a sign-in form: answer 503.
				s.log.Error("authenticating request", "err", err)
				api.WriteError(w, r, s.log, &auth.Error{Kind: auth.KindOverloaded, Code: "unavailable",
					Message: "The server cannot check your session right now.", RetryAfter: 2 * time.Second})
				return
			}
			if p != nil {
				r = r.WithContext(auth.WithPrincipal(r.Context(), p))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// csrf protects every state-changing browser request.
//
//   - A request with an Authorization header is not checked: a cross-site page cannot
//     set that header without a CORS preflight, which Latchkey never grants, and the
//     header alone authenticates it (a bad one is never rescued by the cookie).
//   - Every other request goes through http.CrossOriginProtection, which refuses a
//     state change whose Origin or Sec-Fetch-Site names another site, and lets through
//     requests that send neither (old browsers and programs).
//   - For those old browsers a second layer is needed wherever the session cookie
//     rides along. A page form carries its HMAC form token, checked by the page
//     handlers (web's post adapter) before anything else. An API call carrying the
//     cookie must declare Content-Type: application/json, with or without a body: no
//     cross-site form can send that type, and a cross-site fetch that sets it needs
//     the preflight. A body-less POST is no exception, or an empty cross-site form
//     posted to /api/v1/logout would sign the user out.
//   - A request with no cookie and no browser headers is a program's, and has no
//     ambient credential to abuse: only the cross-origin check above applies, which
//     passes it.
func (s *Server) csrf(cop *http.CrossOriginProtection, next http.Handler) http.Handler {
	protected := cop.Handler(next)
	cookie := web.CookieName(s.opts.SecureCookies, s.opts.CookieDomain)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := bearer(r); ok || isProtocolPath(r.URL.Path) || isForwardAuth(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if isUnsafe(r.Method) && strings.HasPrefix(r.URL.Path, "/api/") {
			if _, err := r.Cookie(cookie); err == nil {
				mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
				if mt != "application/json" {
					api.WriteError(w, r, s.log, &auth.Error{Kind: auth.KindForbidden, Code: "cross_origin_request",
						Message: "Requests with the session cookie must send Content-Type: application/json, even without a body."})
					return
				}
			}
		}
		protected.ServeHTTP(w, r)
	})
}

// isProtocolPath reports whether path is an OpenID Connect endpoint that clients call
// from anywhere (SPEC §3): none of them changes state through the cookie, so the
// cross-origin check would only refuse legitimate clients.
func isProtocolPath(path string) bool {
	switch path {
	case "/oauth2/token", "/oauth2/revoke", "/oauth2/userinfo", "/oauth2/keys":
		return true
	case "/oauth2/authorize", "/oauth2/logout":
		// Relying parties may POST these from their own pages. The handlers treat a
		// cross-site POST as signed out (SPEC §3), so no cookie acts through them.
		return true
	}
	return strings.HasPrefix(path, "/.well-known/")
}

// isForwardAuth reports whether path is a forward-auth endpoint. Proxies call them
// with the browser's cookie and any method; they change no state, so they are exempt
// from the cross-origin checks (SPEC §3).
func isForwardAuth(path string) bool { return strings.HasPrefix(path, "/api/authz/") }

func isUnsafe(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) measure(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		mux.ServeHTTP(sw, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		s.metrics.observe(route, sw.status, d)
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("request", "method", r.Method, "route", route, "status", sw.status, "duration", d)
		}
	})
}

// mfaPolicy holds an account past its require-mfa deadline to MFA setup (SPEC §8):
// API calls answer 403 mfa_setup_required and pages lead to the authentication
// settings, except what setting up a second factor needs.
func (s *Server) mfaPolicy(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := auth.PrincipalFrom(r.Context())
		if p == nil || !p.MFAPolicy().Blocked || setupAllowed(r) {
			next.ServeHTTP(w, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/api/") {
			api.WriteError(w, r, s.log, auth.ErrMFASetupRequired)
			return
		}
		http.Redirect(w, r, "/settings/authentication", http.StatusSeeOther)
	})
}

// setupAllowed lists what an account held to MFA setup may still do.
func setupAllowed(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/api/v1/me" && r.Method == http.MethodGet,
		p == "/api/v1/logout", p == "/logout",
		p == "/api/v1/reauth", strings.HasPrefix(p, "/api/v1/reauth/"),
		strings.HasPrefix(p, "/api/v1/mfa/totp/setup"), p == "/api/v1/mfa/totp/confirm",
		strings.HasPrefix(p, "/api/v1/mfa/webauthn/register/"),
		p == "/settings/authentication", strings.HasPrefix(p, "/settings/authentication/totp"),
		p == "/settings/authentication/webauthn", p == "/settings/authentication/recovery-codes.txt",
		p == "/settings/reauth", strings.HasPrefix(p, "/static/"), p == "/healthz":
		return true
	}
	return false
}
