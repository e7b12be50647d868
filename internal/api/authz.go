package api

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/authz"
)

// ForwardAuthOptions configure the forward-auth endpoints.
type ForwardAuthOptions struct {
	PublicURL    string
	CookieName   string // the session cookie, the only credential read
	CookieDomain string
	Rules        authz.Rules
	MFAMaxAge    time.Duration
}

// ForwardAuth answers a reverse proxy asking whether a request to an application may
// pass (Authelia's paths and headers: /api/authz/auth-request for nginx auth_request,
// /api/authz/forward-auth for Traefik ForwardAuth and Caddy forward_auth).
//
// It reads the session cookie and nothing else of the caller's: the identity it sends
// back comes from the session, never from a request header, and an Authorization
// header meant for the application is left alone. One session lookup per answer, no
// password hash; the route bypasses the authentication middleware so the lookup is
// not made twice.
type ForwardAuth struct {
	svc     *auth.Service
	log     *slog.Logger
	opts    ForwardAuthOptions
	returns *authz.ReturnURLs
	denied  *denyLog
}

// NewForwardAuth builds the endpoints; it fails only on a public URL or cookie domain
// that config validation would have refused.
func NewForwardAuth(svc *auth.Service, log *slog.Logger, opts ForwardAuthOptions) (*ForwardAuth, error) {
	rs, err := authz.NewReturnURLs(opts.PublicURL, opts.CookieDomain)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	return &ForwardAuth{svc: svc, log: log, opts: opts, returns: rs,
		denied: &denyLog{every: time.Hour, max: 4096, seen: map[denyKey]time.Time{}}}, nil
}

// AuthRequest is the nginx auth_request endpoint: 200 with the identity headers, 401
// with a Location for nginx to redirect to (nginx passes no 3xx from an auth
// subrequest), or 403.
func (f *ForwardAuth) AuthRequest(w http.ResponseWriter, r *http.Request) {
	f.answer(w, r, r.Header.Get("X-Original-URL"), r.Header.Get("X-Original-Method"), false)
}

// Forward is the Traefik and Caddy endpoint: the original URL is rebuilt from the
// X-Forwarded-* headers, and a sign-in or step-up is a redirect the proxy passes on.
func (f *ForwardAuth) Forward(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	raw := ""
	if proto, host := h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"); proto != "" && host != "" {
		uri := h.Get("X-Forwarded-Uri")
		if uri == "" {
			uri = "/"
		}
		raw = proto + "://" + host + uri
	}
	f.answer(w, r, raw, h.Get("X-Forwarded-Method"), true)
}

func (f *ForwardAuth) answer(w http.ResponseWriter, r *http.Request, raw, method string, redirects bool) {
	w.Header().Set("Cache-Control", "no-store")
	// The URL must be one Latchkey could send a browser back to: otherwise it is
	// not an application of this site, and no rule could be meant for it.
	u, err := f.returns.Check(raw)
	if err != nil {
		f.log.Debug("forward auth: URL refused", "err", err)
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	policy := f.opts.Rules.PolicyFor(u.Host)
	p, err := f.principal(r)
	if err != nil {
		f.log.Error("forward auth: session check", "err", err)
		w.Header().Set("Retry-After", "2")
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if policy == authz.Deny {
		// Anonymous refusals are not logged: anyone can send them, as many as they
		// like. A signed-in user's are, once per user and host for a while.
		if p != nil && f.denied.first(p.User.ID, u.Hostname(), f.svc.Now()) {
			why := "host denied"
			if !f.opts.Rules.Matched(u.Host) {
				why = "host matches no rule"
			}
			f.svc.ForwardAuthDenied(r.Context(), auth.ClientFrom(r.Context()), p, u.Hostname(), why)
		}
		http.Error(w, "Forbidden", http.StatusForbidden)
		return
	}
	switch {
	case p == nil:
		f.sendTo(w, "/login?rd="+url.QueryEscape(raw), method, redirects)
	case policy == authz.TwoFactor && !f.svc.MFAFresh(p, f.opts.MFAMaxAge):
		f.sendTo(w, "/step-up?rd="+url.QueryEscape(raw), method, redirects)
	default:
		h := w.Header()
		h.Set("Remote-User", p.User.Username)
		h.Set("Remote-Name", p.User.Username)
		email := ""
		if p.User.EmailVerified {
			email = p.User.Email
		}
		h.Set("Remote-Email", email)
		groups := ""
		if p.User.IsAdmin {
			groups = "admin"
		}
		h.Set("Remote-Groups", groups)
		w.WriteHeader(http.StatusOK)
	}
}

// principal resolves the session cookie (nil when there is none or it is not a live
// session); an error is a database fault, never "signed out".
func (f *ForwardAuth) principal(r *http.Request) (*auth.Principal, error) {
	c, err := r.Cookie(f.opts.CookieName)
	if err != nil || c.Value == "" {
		return nil, nil
	}
	p, err := f.svc.Authenticate(r.Context(), c.Value)
	if err != nil {
		if auth.AsError(err) != nil {
			return nil, nil // unknown, expired, idle or revoked: signed out
		}
		return nil, err
	}
	if p.Session == nil {
		return nil, nil // a personal access token in the cookie is not a browser session
	}
	return p, nil
}

// sendTo answers with a page of Latchkey to go to: 401 and Location for nginx (which
// redirects itself), or a redirect for Traefik and Caddy — 303 after a method other
// than GET or HEAD, so the browser fetches the sign-in page instead of re-posting.
func (f *ForwardAuth) sendTo(w http.ResponseWriter, path, method string, redirects bool) {
	w.Header().Set("Location", f.opts.PublicURL+path)
	switch {
	case !redirects:
		w.WriteHeader(http.StatusUnauthorized)
	case method == "" || method == http.MethodGet || method == http.MethodHead:
		w.WriteHeader(http.StatusFound)
	default:
		w.WriteHeader(http.StatusSeeOther)
	}
}

// denyLog remembers whom it logged a refusal for, per user and host, so that an
// application page polling a denied host writes one security-log line an hour, not
// one per request. It is bounded: when full, entries past their hour are dropped, and
// if that is not enough, half of the rest (those users may be logged again early; a
// refusal is never left unlogged for longer than the hour).
type denyLog struct {
	mu    sync.Mutex
	every time.Duration
	max   int
	seen  map[denyKey]time.Time
}

type denyKey struct {
	user auth.UserID
	host string
}

// first reports whether this (user, host) refusal should be logged now.
func (d *denyLog) first(user auth.UserID, host string, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	k := denyKey{user, host}
	if at, ok := d.seen[k]; ok && now.Sub(at) < d.every {
		return false
	}
	if len(d.seen) >= d.max {
		for key, at := range d.seen {
			if now.Sub(at) >= d.every {
				delete(d.seen, key)
			}
		}
		for key := range d.seen {
			if len(d.seen) < d.max/2 {
				break
			}
			delete(d.seen, key)
		}
	}
	d.seen[k] = now
	return true
}
