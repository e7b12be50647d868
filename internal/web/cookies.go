package web

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// mfaCookieName holds the pending sign-in between the password and the code step. It
// is its own SameSite=Strict cookie, never a URL parameter, so it cannot leak through
// history, logs or a Referer header.
func (h *Handler) mfaCookieName() string {
	if h.opts.SecureCookies {
		return "__Host-latchkey_mfa"
	}
	return "latchkey_mfa"
}

// preSessionCookieName holds a random value that keys the form token before sign-in.
func (h *Handler) preSessionCookieName() string {
	if h.opts.SecureCookies {
		return "__Host-latchkey_csrf"
	}
	return "latchkey_csrf"
}

func (h *Handler) cookie(name, value string, maxAge int, sameSite http.SameSite) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: h.opts.SecureCookies, SameSite: sameSite}
}

// sessionCookieName is the session cookie's name under this configuration.
func (h *Handler) sessionCookieName() string {
	return CookieName(h.opts.SecureCookies, h.opts.CookieDomain)
}

// sessionCookie is the session cookie; with cookie-domain set it goes to every host
// under that domain, so that forward auth sees it on the applications' hosts. The
// other cookies (pending sign-in, form token key) stay on Latchkey's own host.
func (h *Handler) sessionCookie(value string, maxAge int) *http.Cookie {
	c := h.cookie(h.sessionCookieName(), value, maxAge, http.SameSiteLaxMode)
	c.Domain = h.opts.CookieDomain
	return c
}

// setSession stores the session token: HttpOnly so no script can read it, Lax so a
// link from another site still arrives signed in but a cross-site POST does not.
func (h *Handler) setSession(w http.ResponseWriter, token string) {
	maxAge := int(h.svc.Config().SessionMax / time.Second)
	http.SetCookie(w, h.sessionCookie(token, maxAge))
	h.clearMFA(w)
}

func (h *Handler) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, h.sessionCookie("", -1))
}

func (h *Handler) setMFA(w http.ResponseWriter, token string, ttl time.Duration) {
	if ttl <= 0 {
		ttl = h.svc.Config().PendingLoginTTL
	}
	http.SetCookie(w, h.cookie(h.mfaCookieName(), token, int(ttl/time.Second), http.SameSiteStrictMode))
}

func (h *Handler) clearMFA(w http.ResponseWriter) {
	http.SetCookie(w, h.cookie(h.mfaCookieName(), "", -1, http.SameSiteStrictMode))
}

func cookieValue(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// errCSRF refuses a form without the right token.
var errCSRF = auth.E(auth.KindForbidden, "invalid_csrf_token",
	"This form has expired or was sent from another site. Go back, reload the page and try again.")

// csrfToken returns the form token for this browser, creating the pre-session cookie
// it is derived from when there is no session yet.
//
// The token is an HMAC keyed by the session (or pre-session) cookie: only a page that
// can read our HTML knows it, the cookie itself stays HttpOnly, and because the key is
// a cookie every replica can check it without shared state. It is the second layer
// behind http.CrossOriginProtection, for old browsers that send neither Sec-Fetch-Site
// nor Origin.
func (h *Handler) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if p := auth.PrincipalFrom(r.Context()); p != nil && p.Session != nil {
		if v := cookieValue(r, h.sessionCookieName()); v != "" {
			return formToken(v)
		}
	}
	v := cookieValue(r, h.preSessionCookieName())
	if len(v) < 32 {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			// crypto/rand does not fail on supported platforms; a page without a
			// token only means its form is refused.
			return ""
		}
		v = base64.RawURLEncoding.EncodeToString(b)
		http.SetCookie(w, h.cookie(h.preSessionCookieName(), v, 0, http.SameSiteLaxMode))
	}
	return formToken(v)
}

// validCSRF checks csrf_token against either cookie, in constant time. Either is
// enough: a login form rendered before another tab signed in must still work.
func (h *Handler) validCSRF(r *http.Request) bool {
	got := []byte(r.PostFormValue("csrf_token"))
	ok := false
	for _, name := range []string{h.sessionCookieName(), h.preSessionCookieName()} {
		if v := cookieValue(r, name); len(v) >= 32 {
			if hmac.Equal(got, []byte(formToken(v))) {
				ok = true
			}
		}
	}
	return ok
}

// formToken derives the token from a cookie value; the fixed label keeps it distinct
// from any other use of the same secret (the database stores plain SHA-256 of session
// tokens, so a leaked row never yields a form token).
func formToken(cookie string) string {
	m := hmac.New(sha256.New, []byte(cookie))
	m.Write([]byte("latchkey form token v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// flash is a one-line notice after a redirect. Only fixed keys travel in the URL, never
// user text, so a crafted link cannot put words on our page.
type flash struct {
	Kind string // "ok" or "warn"
	Text string
}

func flashFor(key string) *flash {
	if f, ok := accountFlashes[key]; ok {
		return &f
	}
	f, ok := map[string]flash{
		"signed_up":         {"ok", "Welcome! Your account is ready."},
		"signed_out":        {"ok", "You are signed out."},
		"mfa_expired":       {"warn", "The sign-in attempt expired. Enter your password again."},
		"mfa_removed":       {"ok", "Multiple-factor authentication was removed."},
		"setup_started":     {"ok", "Scan the QR code with your app, then enter the code it shows."},
		"password_changed":  {"ok", "Your password was changed. Every other session was signed out."},
		"reset_sent":        {"ok", "If an account uses that address, we sent it a link to reset the password. It works for one hour."},
		"password_reset":    {"ok", "Your password was reset. Sign in with the new one."},
		"session_revoked":   {"ok", "The session was signed out."},
		"reauthenticated":   {"ok", "Thanks. You can change security settings for the next 10 minutes."},
		"recovery_used":     {"warn", "You signed in with a recovery code. It cannot be used again."},
		"token_revoked":     {"ok", "The personal access token was revoked. Programs using it can no longer sign in."},
		"ssh_key_added":     {"ok", "The SSH key was added."},
		"ssh_key_deleted":   {"ok", "The SSH key was deleted."},
		"recovery_approved": {"ok", "The recovery request was approved. The user was emailed a password-reset link."},
		"recovery_denied":   {"ok", "The recovery request was denied. The user was emailed the reason."},
		"key_added":         {"ok", "The security key was added."},
		"app_added":         {"ok", "The authenticator app was added."},
		"key_renamed":       {"ok", "The security key was renamed."},
		"key_removed":       {"ok", "The security key was removed."},
	}[key]
	if !ok {
		return nil
	}
	return &f
}
