package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/cli"
	lkoidc "github.com/latchkey/latchkey/internal/oidc"
	"github.com/latchkey/latchkey/internal/storetest"
	"github.com/latchkey/latchkey/internal/totp"
)

// startOIDCServer starts a real server whose public-url (the issuer) is its own
// loopback address, known only once it listens. Its clock starts at the real time,
// because the OpenID Connect library and the relying party judge ID tokens by it.
func startOIDCServer(t *testing.T, dbURL string) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	cfg := testConfig(t, dbURL)
	cfg.PublicURL = "http://" + l.Addr().String()
	ck := &clock{now: time.Now().UTC().Truncate(time.Second)}
	logs := &lockedBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	app, err := cli.NewApp(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), ck.Now)
	if err != nil {
		cancel()
		l.Close()
		t.Fatalf("NewApp: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		app.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(logs.String(), 4000))
		}
	})
	return &testServer{URL: cfg.PublicURL, App: app, Clock: ck, Logs: logs}
}

// rp is a relying party: coreos/go-oidc and x/oauth2, nobody's code here.
type rp struct {
	t        *testing.T
	srv      *testServer
	provider *oidc.Provider
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier
}

func newRP(t *testing.T, srv *testServer, spec lkoidc.ClientSpec) *rp {
	t.Helper()
	id, secret, err := lkoidc.AddClient(t.Context(), srv.App.Store.(auth.OIDCStore), srv.App.OIDC.Keyring(), spec, srv.Clock.Now())
	if err != nil {
		t.Fatalf("AddClient: %v", err)
	}
	return newRPWith(t, srv, id, secret, spec.RedirectURIs[0])
}

// newRPWith is a relying party for a client registered elsewhere (by the CLI).
func newRPWith(t *testing.T, srv *testServer, id, secret, redirectURI string) *rp {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), srv.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return &rp{t: t, srv: srv, provider: p, verifier: p.Verifier(&oidc.Config{ClientID: id}),
		conf: oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirectURI,
			Scopes: []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}}}
}

// authURL is an authorization request with state, nonce and a PKCE challenge.
func (a *rp) authURL(extra ...oauth2.AuthCodeOption) (u, state, nonce, verifier string) {
	state, nonce, verifier = randomText(), randomText(), oauth2.GenerateVerifier()
	opts := append([]oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}, extra...)
	return a.conf.AuthCodeURL(state, opts...), state, nonce, verifier
}

func randomText() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// browser is a cookie jar that does not follow redirects, signed in with token.
func (s *testServer) browser(t *testing.T, token string) *http.Client {
	t.Helper()
	c := jarClient(t)
	if token != "" {
		u, _ := url.Parse(s.URL)
		c.Jar.SetCookies(u, []*http.Cookie{{Name: "latchkey_session", Value: token, Path: "/"}})
	}
	return c
}

// visit GETs u and returns the status, the Location and the body.
func visit(t *testing.T, c *http.Client, u string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Location"), string(body)
}

// code runs the authorization request in the browser and returns the code, checking
// the response carries state and names the issuer (RFC 9207).
func (a *rp) code(c *http.Client, u, state string) string {
	a.t.Helper()
	status, loc, body := visit(a.t, c, u)
	if status != http.StatusFound {
		a.t.Fatalf("authorize = %d (Location %q), want 302; body %.300s", status, loc, body)
	}
	q := redirectQuery(a.t, loc, a.conf.RedirectURL)
	if q.Get("state") != state || q.Get("iss") != a.srv.URL || q.Get("code") == "" {
		a.t.Fatalf("authorize redirect %q: want code, state %q and iss %q", loc, state, a.srv.URL)
	}
	return q.Get("code")
}

// redirectQuery checks loc goes to the redirect URI and returns its query.
func redirectQuery(t *testing.T, loc, redirectURI string) url.Values {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || !strings.HasPrefix(loc, redirectURI+"?") {
		t.Fatalf("redirect to %q, want %s?…", loc, redirectURI)
	}
	return u.Query()
}

// wantRedirectError checks the authorization request is sent back with error and state.
func (a *rp) wantRedirectError(c *http.Client, u, state, code string) {
	a.t.Helper()
	status, loc, _ := visit(a.t, c, u)
	if status != http.StatusFound {
		a.t.Fatalf("authorize = %d, want 302 with error=%s", status, code)
	}
	q := redirectQuery(a.t, loc, a.conf.RedirectURL)
	if q.Get("error") != code || q.Get("state") != state || q.Get("code") != "" || q.Get("iss") != a.srv.URL {
		a.t.Fatalf("authorize redirect %q, want error=%s, state %q, no code", loc, code, state)
	}
}

// exchange redeems a code and verifies the ID token through the JWKS.
func (a *rp) exchange(code, verifier, nonce string) (*oauth2.Token, *oidc.IDToken, map[string]any) {
	a.t.Helper()
	tok, err := a.conf.Exchange(a.t.Context(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		a.t.Fatalf("Exchange: %v", err)
	}
	idt, claims := a.verify(tok)
	if idt.Nonce != nonce {
		a.t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	return tok, idt, claims
}

func (a *rp) verify(tok *oauth2.Token) (*oidc.IDToken, map[string]any) {
	a.t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.verifier.Verify(a.t.Context(), raw)
	if err != nil {
		a.t.Fatalf("verifying the ID token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		a.t.Fatal(err)
	}
	return idt, claims
}

// refresh uses a refresh token once.
func (a *rp) refresh(rt string) (*oauth2.Token, error) {
	return a.conf.TokenSource(a.t.Context(), &oauth2.Token{RefreshToken: rt, Expiry: time.Unix(1, 0)}).Token()
}

func wantGrantError(t *testing.T, what string, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code || re.Response.StatusCode != http.StatusBadRequest {
		t.Fatalf("%s = %v, want %s (400)", what, err, code)
	}
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func (s *testServer) userID(t *testing.T, token string) string {
	t.Helper()
	me := s.call(t, "GET", "/api/v1/me", token, nil).want(t, 200)
	return strconv.FormatFloat(me.Body["user"].(map[string]any)["id"].(float64), 'f', 0, 64)
}

// totpNow is the app's code for secret at the server's clock.
func totpNow(t *testing.T, s *testServer, secret string) string {
	t.Helper()
	key, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return totp.Code(key, totp.Step(s.Clock.Now()))
}

// TestOIDCProvider runs a real relying party through the provider on both stores:
// discovery, code + PKCE, the ID token checked through JWKS, userinfo, refresh
// rotation and reuse, a reused code, revocation, logout and key rotation.
func TestOIDCProvider(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		srv := startOIDCServer(t, dbURL)
		srv.signup(t, "alice", "alice@example.com")
		session := srv.login(t, "alice")
		alice := srv.userID(t, session)
		browser := srv.browser(t, session)
		app := newRP(t, srv, lkoidc.ClientSpec{Name: "Grafana", RedirectURIs: []string{"https://grafana.example.com/login/generic_oauth"},
			PostLogoutRedirectURIs: []string{"https://grafana.example.com/bye"}})

		// Discovery says what SPEC lists.
		var disc map[string]any
		if err := app.provider.Claims(&disc); err != nil {
			t.Fatal(err)
		}
		if disc["issuer"] != srv.URL || disc["authorization_response_iss_parameter_supported"] != true ||
			!slices.Equal(strs(disc["response_types_supported"]), []string{"code"}) ||
			!slices.Equal(strs(disc["code_challenge_methods_supported"]), []string{"S256"}) ||
			!slices.Equal(strs(disc["token_endpoint_auth_methods_supported"]), []string{"client_secret_basic", "client_secret_post", "none"}) ||
			!slices.Contains(strs(disc["id_token_signing_alg_values_supported"]), "RS256") ||
			!slices.Contains(strs(disc["acr_values_supported"]), auth.ACRMFA) ||
			disc["revocation_endpoint"] != srv.URL+"/oauth2/revoke" || disc["end_session_endpoint"] != srv.URL+"/oauth2/logout" ||
			disc["jwks_uri"] != srv.URL+"/oauth2/keys" {
			t.Fatalf("discovery = %v", disc)
		}

		// Any origin may read the protocol endpoints, never with credentials.
		keys := srv.callWith(t, http.DefaultClient, "GET", "/oauth2/keys", "", nil, map[string]string{"Origin": "https://spa.example.com"}).want(t, 200)
		if keys.Header.Get("Access-Control-Allow-Origin") != "*" || keys.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("CORS headers of /oauth2/keys = %v", keys.Header)
		}

		// Code + PKCE; the ID token verifies through JWKS and says what SPEC says.
		u, state, nonce, verifier := app.authURL()
		code := app.code(browser, u, state)
		tok, idt, claims := app.exchange(code, verifier, nonce)
		if idt.Subject != alice || idt.Issuer != srv.URL || claims["azp"] != app.conf.ClientID ||
			!slices.Equal(strs(claims["amr"]), []string{"pwd"}) || claims["acr"] != auth.ACROneFactor ||
			claims["preferred_username"] != "alice" || claims["email"] != "alice@example.com" || claims["email_verified"] != true ||
			claims["auth_time"] == nil {
			t.Fatalf("ID token claims = %v", claims)
		}
		if tok.AccessToken == "" || tok.RefreshToken == "" {
			t.Fatalf("token response = %+v, want access and refresh tokens", tok)
		}

		// Userinfo with the access token.
		info, err := app.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatalf("UserInfo: %v", err)
		}
		var infoClaims map[string]any
		_ = info.Claims(&infoClaims)
		if info.Subject != alice || infoClaims["preferred_username"] != "alice" || info.Email != "alice@example.com" || !info.EmailVerified {
			t.Fatalf("userinfo = %v", infoClaims)
		}

		// The code works once: a second use is invalid_grant and revokes what the
		// first issued.
		_, err = app.conf.Exchange(t.Context(), code, oauth2.VerifierOption(verifier))
		wantGrantError(t, "Exchange(same code again)", err, "invalid_grant")
		if _, err := app.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("UserInfo with a token of a reused code succeeded")
		}
		_, err = app.refresh(tok.RefreshToken)
		wantGrantError(t, "refresh with a token of a reused code", err, "invalid_grant")

		// One code sent 8 times at once: exactly one exchange gets tokens.
		u, state, _, verifier = app.authURL()
		raced := app.code(browser, u, state)
		counts := parallel(t, 8, func(int) int {
			if _, err := app.conf.Exchange(t.Context(), raced, oauth2.VerifierOption(verifier)); err != nil {
				return 400
			}
			return 200
		})
		if counts[200] != 1 || counts[400] != 7 {
			t.Fatalf("8 parallel exchanges of one code: %v, want one success", counts)
		}
		// Likewise one refresh token used 8 times at once rotates once.
		u, state, nonce, verifier = app.authURL()
		tok, _, _ = app.exchange(app.code(browser, u, state), verifier, nonce)
		counts = parallel(t, 8, func(int) int {
			if _, err := app.refresh(tok.RefreshToken); err != nil {
				return 400
			}
			return 200
		})
		if counts[200] != 1 {
			t.Fatalf("8 parallel refreshes of one token: %v, want exactly one success", counts)
		}

		// A code waits 60 s at most.
		u, state, _, verifier = app.authURL()
		late := app.code(browser, u, state)
		srv.Clock.Advance(61 * time.Second)
		_, err = app.conf.Exchange(t.Context(), late, oauth2.VerifierOption(verifier))
		wantGrantError(t, "Exchange after 61 s", err, "invalid_grant")

		// Refresh tokens rotate; a used one presented again revokes the family.
		u, state, nonce, verifier = app.authURL()
		tok, _, _ = app.exchange(app.code(browser, u, state), verifier, nonce)
		tok2, err := app.refresh(tok.RefreshToken)
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if tok2.RefreshToken == "" || tok2.RefreshToken == tok.RefreshToken {
			t.Fatalf("refresh gave refresh token %q, want a new one", tok2.RefreshToken)
		}
		if _, claims := app.verify(tok2); claims["sub"] != alice || claims["acr"] != auth.ACROneFactor {
			t.Fatalf("refreshed ID token claims = %v", claims)
		}
		_, err = app.refresh(tok.RefreshToken)
		wantGrantError(t, "refresh with a used refresh token", err, "invalid_grant")
		_, err = app.refresh(tok2.RefreshToken)
		wantGrantError(t, "refresh after the family was revoked", err, "invalid_grant")
		if !strings.Contains(srv.Logs.String(), "oidc_refresh_token_reused") {
			t.Fatal("the reused refresh token is not in the security log")
		}

		// PKCE is checked: a wrong verifier gets no tokens; a wrong client secret is 401.
		u, state, _, _ = app.authURL()
		_, err = app.conf.Exchange(t.Context(), app.code(browser, u, state), oauth2.VerifierOption(oauth2.GenerateVerifier()))
		wantGrantError(t, "Exchange with the wrong verifier", err, "invalid_grant")
		bad := app.conf
		bad.ClientSecret = "wrong"
		u, state, _, verifier = app.authURL()
		_, err = bad.Exchange(t.Context(), app.code(browser, u, state), oauth2.VerifierOption(verifier))
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.ErrorCode != "invalid_client" || re.Response.StatusCode != http.StatusUnauthorized {
			t.Fatalf("Exchange with a wrong secret = %v, want invalid_client (401)", err)
		}

		// Revocation: a refresh token's family ends; unknown tokens answer 200.
		u, state, nonce, verifier = app.authURL()
		tok, _, _ = app.exchange(app.code(browser, u, state), verifier, nonce)
		for _, token := range []string{tok.RefreshToken, "no-such-token"} {
			form := url.Values{"token": {token}}
			req, _ := http.NewRequest("POST", srv.URL+"/oauth2/revoke", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(app.conf.ClientID, app.conf.ClientSecret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("revoke = %d, want 200", resp.StatusCode)
			}
		}
		_, err = app.refresh(tok.RefreshToken)
		wantGrantError(t, "refresh after revocation", err, "invalid_grant")
		if _, err := app.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("UserInfo with an access token of a revoked family succeeded")
		}

		// Key rotation: a token signed by the old key still verifies, and so does one
		// signed by the new key; ES256 is then advertised.
		u, state, nonce, verifier = app.authURL()
		old, _, _ := app.exchange(app.code(browser, u, state), verifier, nonce)
		if _, err := srv.App.OIDC.RotateKey(t.Context(), "ES256"); err != nil {
			t.Fatalf("RotateKey: %v", err)
		}
		fresh := newRPFor(t, srv, app)
		u, state, nonce, verifier = fresh.authURL()
		newTok, _, _ := fresh.exchange(fresh.code(browser, u, state), verifier, nonce)
		fresh.verify(old)
		if alg := jwtAlg(t, old); alg != "RS256" {
			t.Fatalf("ID token before rotation signed with %s, want RS256", alg)
		}
		if alg := jwtAlg(t, newTok); alg != "ES256" {
			t.Fatalf("ID token after rotation signed with %s, want ES256", alg)
		}
		var disc2 map[string]any
		_ = fresh.provider.Claims(&disc2)
		if algs := strs(disc2["id_token_signing_alg_values_supported"]); !slices.Contains(algs, "ES256") || !slices.Contains(algs, "RS256") {
			t.Fatalf("algorithms after rotation = %v", algs)
		}

		// A relying party reads the algorithms at discovery: from here on, the fresh one.
		app = fresh

		// Refresh tokens die with the session that granted them.
		u, state, nonce, verifier = app.authURL()
		tok, _, _ = app.exchange(app.code(browser, u, state), verifier, nonce)
		raw, _ := tok.Extra("id_token").(string)

		// RP-initiated logout: no hint → a confirmation page; an unregistered URI →
		// 400 page; a valid hint and a registered URI → session ended, back with state.
		status, loc, body := visit(t, browser, srv.URL+"/oauth2/logout")
		if status != 200 || loc != "" || !strings.Contains(body, "Sign out of") {
			t.Fatalf("logout without a hint = %d %q, want the confirmation page", status, loc)
		}
		status, loc, body = visit(t, browser, srv.URL+"/oauth2/logout?"+url.Values{"id_token_hint": {raw + "x"},
			"post_logout_redirect_uri": {"https://grafana.example.com/bye"}, "state": {"s0"}}.Encode())
		if status != 200 || loc != "" || !strings.Contains(body, "Sign out of") {
			t.Fatalf("logout with a forged hint = %d %q, want the confirmation page", status, loc)
		}
		status, loc, _ = visit(t, browser, srv.URL+"/oauth2/logout?"+url.Values{"id_token_hint": {raw},
			"post_logout_redirect_uri": {"https://evil.example.com/"}, "state": {"s1"}}.Encode())
		if status != http.StatusBadRequest || loc != "" {
			t.Fatalf("logout to an unregistered URI = %d %q, want 400 and no redirect", status, loc)
		}
		srv.call(t, "GET", "/api/v1/me", session, nil).want(t, 200)
		status, loc, _ = visit(t, browser, srv.URL+"/oauth2/logout?"+url.Values{"id_token_hint": {raw},
			"post_logout_redirect_uri": {"https://grafana.example.com/bye"}, "state": {"s2"}}.Encode())
		if status != http.StatusFound || loc != "https://grafana.example.com/bye?state=s2" {
			t.Fatalf("logout = %d %q, want 302 to the registered URI with state", status, loc)
		}
		srv.call(t, "GET", "/api/v1/me", session, nil).want(t, 401)
		_, err = app.refresh(tok.RefreshToken)
		wantGrantError(t, "refresh after the session ended", err, "invalid_grant")
		if _, err := app.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(tok)); err == nil {
			t.Fatal("UserInfo with an access token of an ended session succeeded")
		}

		// An expired hint is accepted too (the user is signed out already here).
		srv.Clock.Advance(time.Hour)
		status, loc, _ = visit(t, srv.browser(t, ""), srv.URL+"/oauth2/logout?"+url.Values{"id_token_hint": {raw},
			"post_logout_redirect_uri": {"https://grafana.example.com/bye"}, "state": {"s3"}}.Encode())
		if status != http.StatusFound || loc != "https://grafana.example.com/bye?state=s3" {
			t.Fatalf("logout with an old hint = %d %q, want 302 with state", status, loc)
		}
	})
}

// newRPFor is a second relying party for the same client, with its own key cache.
func newRPFor(t *testing.T, srv *testServer, a *rp) *rp {
	t.Helper()
	p, err := oidc.NewProvider(t.Context(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &rp{t: t, srv: srv, provider: p, conf: a.conf, verifier: p.Verifier(&oidc.Config{ClientID: a.conf.ClientID})}
}

var jwtHeader = regexp.MustCompile(`"alg":"([A-Z0-9]+)"`)

// jwtAlg is the alg in the header of the token response's ID token.
func jwtAlg(t *testing.T, tok *oauth2.Token) string {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	head, err := base64.RawURLEncoding.DecodeString(strings.SplitN(raw, ".", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	m := jwtHeader.FindStringSubmatch(string(head))
	if m == nil {
		t.Fatalf("ID token header %s", head)
	}
	return m[1]
}

// TestOIDCRefusals runs every refusal of SPEC §9.1's authorize table, on both stores.
func TestOIDCRefusals(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		srv := startOIDCServer(t, dbURL)
		srv.signup(t, "bob", "bob@example.com")
		session := srv.login(t, "bob")
		browser := srv.browser(t, session)
		app := newRP(t, srv, lkoidc.ClientSpec{Name: "Gitea", RedirectURIs: []string{"https://gitea.example.com/cb"}})

		// Unknown client and unregistered redirect URI: a 400 page, never a redirect.
		u, _, _, _ := app.authURL()
		for name, mod := range map[string]func(url.Values){
			"unknown client":         func(q url.Values) { q.Set("client_id", "nobody") },
			"wrong redirect":         func(q url.Values) { q.Set("redirect_uri", "https://evil.example.com/cb") },
			"redirect with a suffix": func(q url.Values) { q.Set("redirect_uri", "https://gitea.example.com/cb/x") },
			"no redirect":            func(q url.Values) { q.Del("redirect_uri") },
		} {
			status, loc, _ := visit(t, browser, withParams(t, u, mod))
			if status != http.StatusBadRequest || loc != "" {
				t.Fatalf("%s: authorize = %d %q, want 400 and no redirect", name, status, loc)
			}
		}
		if !strings.Contains(srv.Logs.String(), "oidc_redirect_refused") {
			t.Fatal("the unregistered redirect is not in the security log")
		}

		// A public client must send an S256 challenge, refused at the authorize step.
		pub := newRP(t, srv, lkoidc.ClientSpec{Name: "CLI", Public: true, RedirectURIs: []string{"http://127.0.0.1/callback"}})
		u, state, _, _ := pub.authURL()
		pub.wantRedirectError(browser, withParams(t, u, func(q url.Values) {
			q.Del("code_challenge")
			q.Del("code_challenge_method")
		}), state, "invalid_request")
		pub.wantRedirectError(browser, withParams(t, u, func(q url.Values) { q.Set("code_challenge_method", "plain") }), state, "invalid_request")
		pub.wantRedirectError(browser, withParams(t, u, func(q url.Values) { q.Set("code_challenge", "short") }), state, "invalid_request")
		// Its loopback redirect may differ in port only.
		loop := withParams(t, u, func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:53219/callback") })
		if status, loc, _ := visit(t, browser, loop); status != http.StatusFound || !strings.HasPrefix(loc, "http://127.0.0.1:53219/callback?code=") {
			t.Fatalf("public loopback redirect on another port = %d %q, want a code", status, loc)
		}
		if status, _, _ := visit(t, browser, withParams(t, u, func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:53219/other") })); status != http.StatusBadRequest {
			t.Fatalf("public loopback redirect on another path = %d, want 400", status)
		}
		// A public client's code needs its verifier and no secret.
		pub.conf.ClientSecret = ""
		u, state, nonce, verifier := pub.authURL()
		pub.exchange(pub.code(browser, u, state), verifier, nonce)

		// A cross-site POST of the request is answered as if nobody were signed in,
		// even when the browser sends the cookie.
		u, _, _, _ = app.authURL()
		pu0, _ := url.Parse(u)
		req, _ := http.NewRequest("POST", srv.URL+"/oauth2/authorize", strings.NewReader(pu0.RawQuery))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://gitea.example.com")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), "/login?rd=") {
			t.Fatalf("cross-site POST to authorize = %d %q, want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
		}

		// prompt=none without a session: login_required, state echoed.
		signedOut := srv.browser(t, "")
		u, state, _, _ = app.authURL(oauth2.SetAuthURLParam("prompt", "none"))
		app.wantRedirectError(signedOut, u, state, "login_required")
		// Without prompt=none: the sign-in page, then back to the request.
		u, state, _, _ = app.authURL()
		status, loc, _ := visit(t, signedOut, u)
		if status != http.StatusFound || !strings.HasPrefix(loc, "/login?rd=") {
			t.Fatalf("authorize without a session = %d %q, want the sign-in page", status, loc)
		}
		lu, _ := url.Parse(loc)
		rd := lu.Query().Get("rd")
		if !strings.HasPrefix(rd, srv.URL+"/oauth2/authorize?") {
			t.Fatalf("sign-in return URL %q, want the authorize request on public-url", rd)
		}
		// The sign-in page itself brings the browser back to the request.
		_, _, page := visit(t, signedOut, srv.URL+loc)
		status, loc = oidcPost(t, signedOut, srv.URL+"/login", url.Values{"csrf_token": {oidcCSRF(t, page)},
			"login": {"bob"}, "password": {testPassword}, "rd": {rd}}, "")
		if status != http.StatusSeeOther || loc != rd {
			t.Fatalf("signing in = %d %q, want back to %q", status, loc, rd)
		}
		app.code(signedOut, rd, state)

		// prompt=login: a re-authentication, then back (and no loop after it).
		u, state, _, _ = app.authURL(oauth2.SetAuthURLParam("prompt", "login"))
		status, loc, _ = visit(t, browser, u)
		if status != http.StatusFound || !strings.HasPrefix(loc, "/settings/reauth?next=") {
			t.Fatalf("prompt=login = %d %q, want re-authentication", status, loc)
		}
		lu, _ = url.Parse(loc)
		next := lu.Query().Get("next")
		srv.Clock.Advance(time.Second)
		// The re-authentication page itself brings the browser back to the request.
		_, _, page = visit(t, browser, srv.URL+loc)
		status, loc = oidcPost(t, browser, srv.URL+"/settings/reauth", url.Values{"csrf_token": {oidcCSRF(t, page)},
			"password": {testPassword}, "next": {next}}, "")
		if status != http.StatusSeeOther || loc != next {
			t.Fatalf("re-authenticating = %d %q, want back to %q", status, loc, next)
		}
		app.code(browser, srv.URL+next, state)
		// max_age older than the last sign-in: the same.
		srv.Clock.Advance(time.Minute)
		u, _, _, _ = app.authURL(oauth2.SetAuthURLParam("max_age", "30"))
		if status, loc, _ := visit(t, browser, u); status != http.StatusFound || !strings.HasPrefix(loc, "/settings/reauth?next=") {
			t.Fatalf("max_age exceeded = %d %q, want re-authentication", status, loc)
		}
		u, state, _, _ = app.authURL(oauth2.SetAuthURLParam("max_age", "3600"))
		app.code(browser, u, state)

		// A client that requires MFA never gets a code for a session without it:
		// step-up, or interaction_required under prompt=none.
		strict := newRP(t, srv, lkoidc.ClientSpec{Name: "Vault", RequireMFA: true, RedirectURIs: []string{"https://vault.example.com/cb"}})
		u, state, nonce, verifier = strict.authURL()
		status, loc, _ = visit(t, browser, u)
		if status != http.StatusFound || !strings.HasPrefix(loc, "/step-up?rd=") {
			t.Fatalf("MFA required without MFA = %d %q, want /step-up", status, loc)
		}
		if status, _, page := visit(t, browser, srv.URL+loc); status != 200 || !strings.Contains(page, "multiple-factor") {
			t.Fatalf("the step-up page = %d %.300s", status, page)
		}
		lu, _ = url.Parse(loc)
		rd = lu.Query().Get("rd")
		pu, pstate, _, _ := strict.authURL(oauth2.SetAuthURLParam("prompt", "none"))
		strict.wantRedirectError(browser, pu, pstate, "interaction_required")
		// acr_values asks for the same of any client.
		au, astate, _, _ := app.authURL(oauth2.SetAuthURLParam("acr_values", auth.ACRMFA))
		if status, loc, _ := visit(t, browser, au); status != http.StatusFound || !strings.HasPrefix(loc, "/step-up?rd=") {
			t.Fatalf("acr_values=mfa without MFA = %d %q, want /step-up", status, loc)
		}
		_ = astate
		// Setting MFA up proves a factor in this session; then the request completes
		// with claims that say so.
		setup := srv.call(t, "POST", "/api/v1/mfa/totp/setup", session, nil).want(t, 200)
		srv.call(t, "POST", "/api/v1/mfa/totp/confirm", session, map[string]string{"code": totpNow(t, srv, setup.str("secret"))}).want(t, 200)
		_, _, claims := strict.exchange(strict.code(browser, rd, state), verifier, nonce)
		if !slices.Equal(strs(claims["amr"]), []string{"pwd", "otp", "mfa"}) || claims["acr"] != auth.ACRMFA {
			t.Fatalf("claims after MFA = %v", claims)
		}

		// A client added with --consent asks first: Deny → access_denied; Allow →
		// a code, remembered until revoked in /settings/apps.
		asks := newRP(t, srv, lkoidc.ClientSpec{Name: "Wiki", Consent: true, RedirectURIs: []string{"https://wiki.example.com/cb"}})
		u, state, _, _ = asks.authURL(oauth2.SetAuthURLParam("prompt", "none"))
		asks.wantRedirectError(browser, u, state, "consent_required")
		u, state, nonce, verifier = asks.authURL()
		form := consentForm(t, browser, u)
		status, loc = oidcPost(t, browser, srv.URL+"/oauth2/consent", form, "deny")
		if status != http.StatusSeeOther {
			t.Fatalf("Deny = %d, want 303", status)
		}
		if q := redirectQuery(t, loc, asks.conf.RedirectURL); q.Get("error") != "access_denied" || q.Get("state") != state {
			t.Fatalf("Deny went to %q, want error=access_denied with state", loc)
		}
		form = consentForm(t, browser, u)
		status, loc = oidcPost(t, browser, srv.URL+"/oauth2/consent", form, "allow")
		if status != http.StatusSeeOther || !strings.HasPrefix(loc, "/oauth2/authorize?") {
			t.Fatalf("Allow = %d %q, want back to the request", status, loc)
		}
		asks.exchange(asks.code(browser, srv.URL+loc, state), verifier, nonce)
		u, state, _, _ = asks.authURL()
		asks.code(browser, u, state) // remembered
		_, _, apps := visit(t, browser, srv.URL+"/settings/apps")
		if !strings.Contains(apps, "Wiki") {
			t.Fatalf("/settings/apps does not list the app: %.500s", apps)
		}
		csrf := oidcCSRF(t, apps)
		status, _ = oidcPost(t, browser, srv.URL+"/settings/apps/"+asks.conf.ClientID+"/revoke", url.Values{"csrf_token": {csrf}}, "")
		if status != http.StatusSeeOther {
			t.Fatalf("revoke app = %d, want 303", status)
		}
		u, _, _, _ = asks.authURL()
		if status, loc, _ := visit(t, browser, u); status != http.StatusFound || !strings.HasPrefix(loc, "/oauth2/consent?") {
			t.Fatalf("after revoking, authorize = %d %q, want the consent page again", status, loc)
		}
	})
}

// withParams changes an authorization URL's query.
func withParams(t *testing.T, u string, mod func(url.Values)) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	mod(q)
	p.RawQuery = q.Encode()
	return p.String()
}

var oidcCSRFField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
var requestField = regexp.MustCompile(`name="request" value="([^"]+)"`)

func oidcCSRF(t *testing.T, page string) string {
	t.Helper()
	m := oidcCSRFField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form token in %.500s", page)
	}
	return m[1]
}

// consentForm follows an authorization request to the consent page and returns its form.
func consentForm(t *testing.T, c *http.Client, u string) url.Values {
	t.Helper()
	status, loc, _ := visit(t, c, u)
	if status != http.StatusFound || !strings.HasPrefix(loc, "/oauth2/consent?") {
		t.Fatalf("authorize = %d %q, want the consent page", status, loc)
	}
	base, _ := url.Parse(u)
	resp, err := c.Get(base.Scheme + "://" + base.Host + loc)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	status, page := resp.StatusCode, string(raw)
	if status != 200 || !strings.Contains(page, "Allow") || !strings.Contains(page, "Deny") {
		t.Fatalf("consent page = %d %.500s", status, page)
	}
	// Browsers apply form-action to the redirects after a submission: the page must
	// allow the app's origin, and only it.
	redirect, _ := url.Parse(base.Query().Get("redirect_uri"))
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' "+redirect.Scheme+"://"+redirect.Host+";") {
		t.Fatalf("consent page CSP = %q, want form-action 'self' and the app's origin", csp)
	}
	m := requestField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no request field in %.500s", page)
	}
	return url.Values{"csrf_token": {oidcCSRF(t, page)}, "request": {htmlUnescape(m[1])}}
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'").Replace(s)
}

// postForm posts a page form (with decision, when not empty) and returns the status and Location.
func oidcPost(t *testing.T, c *http.Client, u string, form url.Values, decision string) (int, string) {
	t.Helper()
	if decision != "" {
		form.Set("decision", decision)
	}
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	pu, _ := url.Parse(u)
	req.Header.Set("Origin", pu.Scheme+"://"+pu.Host)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// TestOIDCAdminCLI registers, lists and removes clients and rotates keys with the CLI,
// on both stores.
func TestOIDCAdminCLI(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		srv := startOIDCServer(t, dbURL)
		cfg := srv.App.Config
		srv.signup(t, "carol", "carol@example.com")
		srv.login(t, "carol")

		// Redirect URIs must be absolute, without a fragment, https or loopback http.
		for _, bad := range []string{"http://app.example.com/cb", "https://app.example.com/cb#x", "/cb", "ftp://app.example.com/cb"} {
			code, out, errs := runCLI(t, cfg, "", "admin", "oidc-client", "add", "--name", "Bad", "--redirect-uri", bad)
			if code == 0 || !strings.Contains(errs, "redirect URI") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Fatalf("add --redirect-uri %s = %d %q %q, want one clear error line", bad, code, out, errs)
			}
		}
		code, out, errs := runCLI(t, cfg, "", "admin", "oidc-client", "add", "--name", "Grafana",
			"--redirect-uri", "https://grafana.example.com/cb", "--redirect-uri", "http://127.0.0.1:3000/cb",
			"--post-logout-redirect-uri", "https://grafana.example.com/", "--require-mfa")
		var added map[string]string
		if code != 0 || json.Unmarshal([]byte(out), &added) != nil || added["client_id"] == "" || len(added["client_secret"]) != 43 {
			t.Fatalf("oidc-client add = %d %q %q", code, out, errs)
		}
		code, out, _ = runCLI(t, cfg, "", "admin", "oidc-client", "add", "--name", "Tool", "--public", "--redirect-uri", "http://127.0.0.1/cb")
		var public map[string]string
		if code != 0 || json.Unmarshal([]byte(out), &public) != nil || public["client_id"] == "" || public["client_secret"] != "" {
			t.Fatalf("oidc-client add --public = %d %q", code, out)
		}
		code, out, _ = runCLI(t, cfg, "", "admin", "oidc-client", "list")
		var list []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 || strings.Contains(out, added["client_secret"]) ||
			list[0]["name"] != "Grafana" || list[0]["require_mfa"] != true || list[1]["public"] != true ||
			len(list[0]["redirect_uris"].([]any)) != 2 || list[0]["post_logout_redirect_uris"].([]any)[0] != "https://grafana.example.com/" {
			t.Fatalf("oidc-client list = %d %s", code, out)
		}

		// The CLI's client signs in (once MFA is there) and its tokens end with it.
		secret, _ := srv.enrol(t, srv.login(t, "carol"))
		mfaSession := srv.login2faNow(t, "carol", secret)
		browser := srv.browser(t, mfaSession)
		app := newRPWith(t, srv, added["client_id"], added["client_secret"], "https://grafana.example.com/cb")
		u, state, nonce, verifier := app.authURL()
		tok, _, _ := app.exchange(app.code(browser, u, state), verifier, nonce)

		// Key rotation by the CLI: the old token still verifies, a new one too.
		code, out, errs = runCLI(t, cfg, "", "admin", "oidc-keys", "rotate", "--alg", "ES256")
		if code != 0 || !strings.Contains(out, "ES256") {
			t.Fatalf("oidc-keys rotate = %d %q %q", code, out, errs)
		}
		fresh := newRPFor(t, srv, app)
		fresh.verify(tok)
		u, state, nonce, verifier = fresh.authURL()
		newTok, _, _ := fresh.exchange(fresh.code(browser, u, state), verifier, nonce)
		if alg := jwtAlg(t, newTok); alg != "ES256" {
			t.Fatalf("after oidc-keys rotate the ID token is %s, want ES256", alg)
		}

		// The retired key stays published for oidc-id-token-ttl after its retirement.
		if n := jwksKeys(t, srv); n != 2 {
			t.Fatalf("JWKS right after rotation has %d keys, want 2", n)
		}
		srv.Clock.Advance(cfg.OIDCIDTokenTTL + time.Second)
		if n := jwksKeys(t, srv); n != 1 {
			t.Fatalf("JWKS after oidc-id-token-ttl has %d keys, want the signing key alone", n)
		}

		code, out, _ = runCLI(t, cfg, "", "admin", "oidc-client", "remove", added["client_id"])
		if code != 0 || !strings.Contains(out, "removed") {
			t.Fatalf("oidc-client remove = %d %q", code, out)
		}
		if _, err := fresh.refresh(newTok.RefreshToken); err == nil {
			t.Fatal("a removed client's refresh token still works")
		}
		if _, err := fresh.provider.UserInfo(t.Context(), oauth2.StaticTokenSource(newTok)); err == nil {
			t.Fatal("a removed client's access token still works")
		}
		if status, loc, _ := visit(t, browser, u); status != http.StatusBadRequest || loc != "" {
			t.Fatalf("authorize for a removed client = %d %q, want the 400 page", status, loc)
		}
		if code, _, errs := runCLI(t, cfg, "", "admin", "oidc-client", "remove", added["client_id"]); code == 0 || !strings.Contains(errs, "no client") {
			t.Fatalf("removing twice = %d %q", code, errs)
		}
		events, err := srv.App.Store.Events(t.Context(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range events {
			names = append(names, e.Event)
		}
		for _, want := range []string{"oidc_client_added", "oidc_client_removed", "oidc_key_rotated"} {
			if !slices.Contains(names, want) {
				t.Fatalf("security log %v lacks %s", names, want)
			}
		}
	})
}

// login2faNow signs in with the password and the app's code at the server's clock,
// a step later than any code used before.
func (s *testServer) login2faNow(t *testing.T, login, secret string) string {
	t.Helper()
	s.Clock.Advance(30 * time.Second)
	r := s.mfa(t, s.pending(t, login), "code", totpNow(t, s, secret)).want(t, 200)
	return r.str("session_token")
}

// jwksKeys counts the keys /oauth2/keys publishes.
func jwksKeys(t *testing.T, srv *testServer) int {
	t.Helper()
	r := srv.call(t, "GET", "/oauth2/keys", "", nil).want(t, 200)
	keys, _ := r.Body["keys"].([]any)
	return len(keys)
}

// TestBrowserOIDCConsent walks a --consent application through the pages in a real
// browser: sign in, the consent page, Allow, back at the application with a code (so
// the page's Content-Security-Policy lets the redirect through), then /settings/apps
// and Revoke.
func TestBrowserOIDCConsent(t *testing.T) {
	chromiumPath(t)
	srv := startOIDCServer(t, "sqlite:"+storetest.SQLitePath(t))
	landed := make(chan url.Values, 4)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		landed <- r.URL.Query()
		_, _ = io.WriteString(w, "<!doctype html><title>Wiki</title><p>signed in")
	}))
	t.Cleanup(app.Close)
	rp := newRP(t, srv, lkoidc.ClientSpec{Name: "Team wiki", Consent: true, RedirectURIs: []string{app.URL + "/cb"}})
	srv.signup(t, "dora", "dora@example.com")

	b := newTab(t, srv.URL)
	b.signIn("dora")
	u, state, _, _ := rp.authURL()
	b.do(chromedp.Navigate(u))
	if loc := b.location(); !strings.HasPrefix(loc, srv.URL+"/oauth2/consent?") {
		t.Fatalf("authorize led to %s, want the consent page", loc)
	}
	if h := b.text("h1"); h != "Allow Team wiki to sign you in?" {
		t.Fatalf("consent page heading = %q", h)
	}
	b.screenshot("oidc-consent")
	b.submit(`button[value="allow"]`)
	select {
	case q := <-landed:
		if q.Get("code") == "" || q.Get("state") != state || q.Get("iss") != srv.URL {
			t.Fatalf("the application got %v, want a code, state and iss", q)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the browser never reached the application; it is at %s", b.location())
	}

	b.open("/settings/apps")
	if !strings.Contains(b.text("main"), "Team wiki") {
		t.Fatalf("/settings/apps = %q, want the application", b.text("main"))
	}
	b.screenshot("oidc-apps")
	b.submit(`form[action$="/revoke"] button`)
	b.wantPath("/settings/apps")
	if txt := b.text("main"); !strings.Contains(txt, "No application has access") {
		t.Fatalf("/settings/apps after Revoke = %q", txt)
	}
}
