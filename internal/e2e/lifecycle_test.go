package e2e

import (
	"encoding/base32"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/totp"
)

// enrolTOTP turns MFA on for the session with codes computed by the totp package (so
// the test needs no oathtool) and returns the base32 secret.
func (s *testServer) enrolTOTP(t *testing.T, tok string) string {
	t.Helper()
	secret := s.call(t, "POST", "/api/v1/mfa/totp/setup", tok, nil).want(t, 200).str("secret")
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret))
	if err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	s.call(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": totp.Code(raw, totp.Step(s.Clock.Now()))}).want(t, 200)
	return secret
}

// codeAt is the TOTP code of a base32 secret at now, computed by the totp package.
func codeAt(t *testing.T, secret string, now time.Time) string {
	t.Helper()
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret))
	if err != nil {
		t.Fatalf("secret %q: %v", secret, err)
	}
	return totp.Code(raw, totp.Step(now))
}

// TestExportAccount: the export holds everything stored about the account and never a
// secret; a personal access token cannot ask for it.
func TestExportAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "xena", "xena@example.com")
		tok := s.login(t, "xena")
		secret := s.enrolTOTP(t, tok)
		pat := s.call(t, "POST", "/api/v1/tokens", tok, map[string]any{"name": "backup script"}).want(t, 201).str("token")
		s.call(t, "POST", "/api/v1/ssh-keys", tok, map[string]string{"title": "work laptop", "public_key": authorizedKey(t)}).want(t, 201)

		s.call(t, "GET", "/api/v1/me/export", pat, nil).want(t, 403, "forbidden_for_token")
		r := s.call(t, "GET", "/api/v1/me/export", tok, nil).want(t, 200)
		raw := string(r.Raw)
		for _, want := range []string{`"username":"xena"`, `"email":"xena@example.com"`, `"email_verified":true`, `"backup script"`,
			`"work laptop"`, `"SHA256:`, `"enabled":true`, `"remaining":16`, `"event":"mfa_enabled"`, `"event":"signup"`, `"current":true`} {
			if !strings.Contains(raw, want) {
				t.Errorf("export lacks %s:\n%s", want, raw)
			}
		}
		for _, secretText := range []string{tok, pat, secret, strings.ToLower(secret), "$argon2", "password_hash", "token_hash"} {
			if strings.Contains(raw, secretText) {
				t.Fatalf("export holds a secret (%q):\n%s", secretText, raw)
			}
		}
		c := jarClient(t)
		c.Jar.SetCookies(mustURL(t, s.URL), []*httpCookie{{Name: "latchkey_session", Value: tok}})
		resp, err := c.Get(s.URL + "/settings/account/export")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// The page hands the download to the API's export, which the session may read.
		if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/api/v1/me/export?download=1" {
			t.Fatalf("page export = %d to %q, want 303 to the API's download", resp.StatusCode, loc)
		}
		if resp, err = c.Get(s.URL + resp.Header.Get("Location")); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Disposition"), `filename="latchkey-account.json"`) {
			t.Fatalf("page export = %d %v", resp.StatusCode, resp.Header)
		}
	})
}

// TestDeleteAccount: deletion needs a recent sign-in and the typed username; sessions,
// tokens, keys and MFA go; a tombstone stays; the username is reserved for 30 days
// (the address is free at once).
func TestDeleteAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "dora", "dora@example.com")
		tok := s.login(t, "dora")
		s.enrolTOTP(t, tok)
		pat := s.call(t, "POST", "/api/v1/tokens", tok, map[string]any{"name": "ci"}).want(t, 201).str("token")
		s.call(t, "POST", "/api/v1/ssh-keys", tok, map[string]string{"title": "k", "public_key": authorizedKey(t)}).want(t, 201)

		s.call(t, "DELETE", "/api/v1/me", pat, map[string]string{"username": "dora"}).want(t, 403, "forbidden_for_token")
		s.Clock.Advance(11 * time.Minute)
		s.call(t, "DELETE", "/api/v1/me", tok, map[string]string{"username": "dora"}).want(t, 403, "reauth_required")
		s.Clock.Advance(-11 * time.Minute) // back inside the sign-in's window
		s.call(t, "DELETE", "/api/v1/me", tok, map[string]string{"username": "someone"}).want(t, 400, "invalid_input")
		s.call(t, "DELETE", "/api/v1/me", tok, map[string]string{"username": "Dora"}).want(t, 204)

		s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 401)
		s.call(t, "GET", "/api/v1/me", pat, nil).want(t, 401)
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "dora", "password": testPassword}).want(t, 401)
		if !hasMail(s.outbox(t), "dora@example.com", "Your account was deleted") {
			t.Error("the owner was not told")
		}
		events, err := s.App.Store.Events(t.Context(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		tomb := false
		for _, e := range events {
			if e.UserID != 0 && e.Event != "account_deleted" {
				t.Errorf("a security-log row of the deleted account stayed: %+v", e)
			}
			tomb = tomb || e.Event == "account_deleted" && strings.Contains(e.Detail, "dora")
		}
		if !tomb {
			t.Fatalf("no tombstone in the security log: %+v", events)
		}

		s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": "DORA", "email": "else@example.com", "password": testPassword}).want(t, 409, "username_taken")
		s.signup(t, "dora2", "dora@example.com") // the address is free at once
		s.Clock.Advance(30 * 24 * time.Hour)
		s.signup(t, "dora", "dora3@example.com")
	})
}

type httpCookie = http.Cookie

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
