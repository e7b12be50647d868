package oidc

import (
	"crypto/hmac"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// challengeFormat is RFC 7636 §4.2's code_challenge (an S256 one is 43 characters).
var challengeFormat = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// codeTTL is how long an authorization code may wait for its exchange (SPEC §9.1).
const codeTTL = 60 * time.Second

// markerParam carries, on the continuation of an authorization request, the time the
// user was sent to sign in or re-authenticate, with a MAC over it and the request. A
// request with prompt=login or a max_age the session does not meet is satisfied by a
// sign-in after that time, so coming back does not loop; nobody can forge an older
// time to skip the sign-in the app asked for.
const markerParam = "lk_after"

// request is an authorization request as received.
type request struct {
	params       url.Values // every parameter, without the marker
	clientID     string
	redirectURI  string
	responseType string
	responseMode string
	state        string
	nonce        string
	scopes       []string
	prompt       []string
	maxAge       string
	acrValues    []string
	challenge    string
	method       string
	marker       string
	requestObj   bool
}

func parseRequest(form url.Values) *request {
	params := url.Values{}
	for k, v := range form {
		if k != markerParam && len(v) > 0 {
			params[k] = []string{v[0]}
		}
	}
	q := &request{params: params, clientID: params.Get("client_id"), redirectURI: params.Get("redirect_uri"),
		responseType: params.Get("response_type"), responseMode: params.Get("response_mode"),
		state: params.Get("state"), nonce: params.Get("nonce"), scopes: strings.Fields(params.Get("scope")),
		prompt: strings.Fields(params.Get("prompt")), maxAge: params.Get("max_age"),
		acrValues: strings.Fields(params.Get("acr_values")), challenge: params.Get("code_challenge"),
		method: params.Get("code_challenge_method"), marker: form.Get(markerParam),
		requestObj: params.Get("request") != "" || params.Get("request_uri") != ""}
	return q
}

// Authorize serves GET and POST /oauth2/authorize by SPEC §9.1's table, in its order.
func (p *Provider) Authorize(w http.ResponseWriter, r *http.Request) {
	r = signedOutIfCrossSite(r)
	if err := r.ParseForm(); err != nil {
		p.pages.RenderError(w, r, http.StatusBadRequest, "That did not work", "The sign-in request could not be read.")
		return
	}
	p.authorize(w, r, parseRequest(r.Form))
}

// client looks up the request's client and checks its redirect URI. It answers the
// 400 page itself (never a redirect: the URI is not known to be the app's) and
// returns nil when either is wrong.
func (p *Provider) client(w http.ResponseWriter, r *http.Request, q *request) *auth.OIDCClient {
	if q.clientID == "" || q.redirectURI == "" {
		p.pages.RenderError(w, r, http.StatusBadRequest, "That did not work",
			"The application's sign-in request names no application or no return address.")
		return nil
	}
	c, err := p.store.OIDCClient(r.Context(), q.clientID)
	if errors.Is(err, auth.ErrNotFound) {
		p.pages.RenderError(w, r, http.StatusBadRequest, "Unknown application",
			"The application that sent you here is not registered with this site.")
		return nil
	}
	if err != nil {
		p.log.Error("oidc: reading client", "err", err)
		p.pages.RenderError(w, r, http.StatusInternalServerError, "Something went wrong",
			"Something went wrong on our side. Try again in a moment.")
		return nil
	}
	if !redirectAllowed(c, q.redirectURI) {
		p.logEvent(r.Context(), userOf(r), "oidc_redirect_refused", "refused",
			"client "+c.ID+": unregistered redirect_uri "+truncate(q.redirectURI, 200))
		p.pages.RenderError(w, r, http.StatusBadRequest, "Unknown return address",
			"The application asked to send you back to an address it has not registered, so this site will not send you there.")
		return nil
	}
	return c
}

// signedOutIfCrossSite drops the session of a POST another site sent. SameSite=Lax
// keeps the cookie off such requests anyway; this holds when a browser sends it all
// the same (a same-site but cross-origin page), so a form on another site can never
// act with the session: the request is answered as if nobody were signed in.
func signedOutIfCrossSite(r *http.Request) *http.Request {
	if r.Method != http.MethodPost {
		return r
	}
	site := r.Header.Get("Sec-Fetch-Site")
	if site == "" || site == "same-origin" || site == "none" {
		return r
	}
	return r.WithContext(auth.WithPrincipal(r.Context(), nil))
}

func userOf(r *http.Request) auth.UserID {
	if pr := auth.PrincipalFrom(r.Context()); pr != nil && pr.User != nil {
		return pr.User.ID
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// redirectAllowed is exact matching against the registered URIs; a public client's
// loopback URI may differ in port only (RFC 8252 §7.3), since a native app listens on
// whatever port it gets.
func redirectAllowed(c *auth.OIDCClient, uri string) bool {
	if slices.Contains(c.RedirectURIs, uri) {
		return true
	}
	if !c.Public {
		return false
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || !isLoopback(u.Hostname()) {
		return false
	}
	for _, reg := range c.RedirectURIs {
		v, err := url.Parse(reg)
		if err == nil && v.Scheme == "http" && v.Hostname() == u.Hostname() && v.Path == u.Path &&
			v.RawQuery == u.RawQuery && isLoopback(v.Hostname()) {
			return true
		}
	}
	return false
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authorize applies the rules once the request is parsed.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request, q *request) {
	c := p.client(w, r, q)
	if c == nil {
		return
	}
	// From here on the redirect URI is the app's: errors go back to it.
	fail := func(code, desc string) { p.redirectError(w, r, q, code, desc) }
	switch {
	case q.requestObj:
		fail("request_not_supported", "request objects are not supported")
		return
	case q.responseType != "code":
		fail("unsupported_response_type", "only the authorization code flow is offered")
		return
	case q.responseMode != "" && q.responseMode != "query":
		fail("invalid_request", "only response_mode=query is offered")
		return
	case !slices.Contains(q.scopes, "openid"):
		fail("invalid_scope", "the openid scope is required")
		return
	case q.challenge != "" && q.method != "S256", q.challenge == "" && q.method != "":
		fail("invalid_request", "code_challenge_method must be S256")
		return
	case q.challenge != "" && !challengeFormat.MatchString(q.challenge):
		fail("invalid_request", "code_challenge must be 43 to 128 characters of [A-Za-z0-9-._~]")
		return
	case c.Public && q.challenge == "":
		// The library would refuse this only at the token endpoint, after the user
		// signed in and a code was issued; SPEC refuses it here.
		fail("invalid_request", "PKCE with S256 is required for this client")
		return
	case slices.Contains(q.prompt, "none") && len(q.prompt) > 1:
		fail("invalid_request", "prompt=none cannot be combined with other values")
		return
	}
	var maxAge time.Duration = -1
	if q.maxAge != "" {
		n, err := strconv.ParseInt(q.maxAge, 10, 32)
		if err != nil || n < 0 {
			fail("invalid_request", "max_age must be a number of seconds")
			return
		}
		maxAge = time.Duration(n) * time.Second
	}
	scopes := slices.DeleteFunc(slices.Clone(q.scopes), func(s string) bool { return !slices.Contains(supportedScopes, s) })
	none := slices.Contains(q.prompt, "none")
	now := p.now()

	pr := auth.PrincipalFrom(r.Context())
	if pr == nil || pr.Session == nil || pr.Token != nil {
		if none {
			fail("login_required", "nobody is signed in")
			return
		}
		p.toSignIn(w, r, q, now)
		return
	}
	sess := pr.Session

	// prompt=login and max_age ask for a sign-in more recent than the request (or
	// than max_age); a sign-in after the marker's time answers either.
	after, marked := p.markerTime(q)
	signedInSince := marked && !sess.ReauthAt.Before(after)
	stale := slices.Contains(q.prompt, "login") || (maxAge >= 0 && now.Sub(sess.ReauthAt) > maxAge)
	if stale && !signedInSince {
		if none {
			fail("login_required", "a more recent sign-in is required")
			return
		}
		cont := p.continuation(q, now)
		http.Redirect(w, r, "/settings/reauth?next="+url.QueryEscape(localOf(cont)), http.StatusFound)
		return
	}

	amr, acr := auth.SessionAMR(sess)
	if (c.RequireMFA || slices.Contains(q.acrValues, auth.ACRMFA)) && !slices.Contains(amr, "mfa") {
		if none {
			fail("interaction_required", "a second factor is required")
			return
		}
		// /step-up asks a user with MFA for a code and has one without set it up,
		// then comes back here: never a code before.
		http.Redirect(w, r, "/step-up?rd="+url.QueryEscape(p.continuation(q, time.Time{})), http.StatusFound)
		return
	}

	if c.Consent {
		k, err := p.store.OIDCConsent(r.Context(), pr.User.ID, c.ID)
		if err != nil && !errors.Is(err, auth.ErrNotFound) {
			p.serverError(w, r, err)
			return
		}
		if err != nil || !k.Covers(scopes) {
			if none {
				fail("consent_required", "the user has not allowed this application")
				return
			}
			http.Redirect(w, r, PathConsent+"?"+q.encodeWithMarker(), http.StatusFound)
			return
		}
	}

	code := randomID(32)
	authTime := sess.ReauthAt
	if authTime.IsZero() {
		authTime = sess.CreatedAt
	}
	g := &auth.OIDCGrant{ID: randomID(16), CodeHash: hashSecret(code), ClientID: c.ID, UserID: pr.User.ID,
		SessionID: sess.ID, RedirectURI: q.redirectURI, Scopes: scopes, Nonce: q.nonce, CodeChallenge: q.challenge,
		AuthTime: authTime, AMR: amr, ACR: acr, CreatedAt: now, ExpiresAt: now.Add(codeTTL)}
	if err := p.store.CreateOIDCGrant(r.Context(), g); err != nil {
		p.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, withQuery(q.redirectURI, url.Values{"code": {code}, "state": {q.state}, "iss": {p.issuer}}),
		http.StatusFound)
}

// toSignIn sends a browser without a session to sign in (password, then the code when
// MFA is on), then back here: /login takes the way back as rd, absolute on public-url.
func (p *Provider) toSignIn(w http.ResponseWriter, r *http.Request, q *request, now time.Time) {
	http.Redirect(w, r, "/login?rd="+url.QueryEscape(p.continuation(q, now)), http.StatusFound)
}

// continuation is the absolute URL that resumes the request, carrying a marker of
// at when at is not zero.
func (p *Provider) continuation(q *request, at time.Time) string {
	v := url.Values{}
	for k, x := range q.params {
		v[k] = x
	}
	if !at.IsZero() {
		v.Set(markerParam, p.marker(q, at))
	}
	return p.base + PathAuthorize + "?" + v.Encode()
}

// encodeWithMarker is the request's query as received, marker included, so that a
// detour (the consent page) keeps what a sign-in already proved.
func (q *request) encodeWithMarker() string {
	v := url.Values{}
	for k, x := range q.params {
		v[k] = x
	}
	if q.marker != "" {
		v.Set(markerParam, q.marker)
	}
	return v.Encode()
}

func localOf(abs string) string {
	u, err := url.Parse(abs)
	if err != nil {
		return "/"
	}
	return u.RequestURI()
}

func (p *Provider) markerMAC(q *request, unix string) string {
	m := p.keys.MAC("oidc-continuation", []byte(unix+"\n"+q.params.Encode()))
	return base64.RawURLEncoding.EncodeToString(m[:16])
}

func (p *Provider) marker(q *request, at time.Time) string {
	unix := strconv.FormatInt(at.Unix(), 10)
	return unix + "." + p.markerMAC(q, unix)
}

// markerTime returns the time in the request's marker, if it carries a genuine one
// made for exactly these parameters.
func (p *Provider) markerTime(q *request) (time.Time, bool) {
	unix, mac, ok := strings.Cut(q.marker, ".")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(unix, 10, 64)
	if err != nil || !hmac.Equal([]byte(mac), []byte(p.markerMAC(q, unix))) {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

// redirectError sends an error back to the app (RFC 6749 §4.1.2.1, RFC 9207 iss).
func (p *Provider) redirectError(w http.ResponseWriter, r *http.Request, q *request, code, desc string) {
	v := url.Values{"error": {code}, "error_description": {desc}, "iss": {p.issuer}}
	if q.state != "" {
		v.Set("state", q.state)
	}
	http.Redirect(w, r, withQuery(q.redirectURI, v), http.StatusFound)
}

// withQuery adds v to uri's query, keeping what the registered URI already has.
func withQuery(uri string, v url.Values) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	q := u.Query()
	for k, x := range v {
		if len(x) > 0 && x[0] != "" {
			q[k] = x
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (p *Provider) serverError(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Error("oidc", "path", r.URL.Path, "err", err)
	p.pages.RenderError(w, r, http.StatusInternalServerError, "Something went wrong",
		"Something went wrong on our side. Try again in a moment.")
}
