package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMFAPolicyAdmins: with the default require-mfa=admins, an operator without MFA can
// do nothing but set it up, the first key lifts that in the same session, ordinary
// accounts are untouched, and grant-admin refuses an account without MFA.
func TestMFAPolicyAdmins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.RequireMFA = "admins"
		srv := startServer(t, cfg, nil)
		if code, _, errs := runCLI(t, cfg, testPassword+"\n", "admin", "create-user", "--username", "olga",
			"--email", "olga@example.com", "--admin"); code != 0 {
			t.Fatalf("create-user --admin: %d %s", code, errs)
		}
		olga := srv.login(t, "olga")
		srv.call(t, "GET", "/api/v1/tokens", olga, nil).want(t, 403, "mfa_setup_required")
		srv.call(t, "GET", "/api/v1/admin/recovery-requests", olga, nil).want(t, 403, "mfa_setup_required")
		me := srv.call(t, "GET", "/api/v1/me", olga, nil).want(t, 200)
		if m := obj(t, me.Body, "mfa"); m["required"] != true || m["setup_deadline"] == nil {
			t.Fatalf("/me mfa of an operator without MFA = %v", m)
		}
		page := srv.callWith(t, jarClient(t), "GET", "/settings/sessions", olga, nil, nil)
		if page.Status != 303 || page.Header.Get("Location") != "/settings/authentication" {
			t.Fatalf("a page for an operator without MFA = %d %q, want 303 to /settings/authentication", page.Status, page.Header.Get("Location"))
		}
		srv.call(t, "GET", "/settings/authentication", olga, nil).want(t, 200)
		// Enrolling is allowed, and lifts the block in the same session.
		key := obj(t, srv.registerKey(t, olga, newSoftKey(t), "Olga's key").want(t, 201).Body, "key")
		srv.call(t, "GET", "/api/v1/tokens", olga, nil).want(t, 200)
		// Her last second factor cannot go while the policy covers her.
		srv.call(t, "DELETE", "/api/v1/mfa/webauthn/"+strconv.FormatInt(int64(key["id"].(float64)), 10), olga, nil).
			want(t, 409, "mfa_required_by_policy")
		srv.call(t, "DELETE", "/api/v1/mfa", olga, nil).want(t, 409, "mfa_required_by_policy")
		if m := obj(t, srv.call(t, "GET", "/api/v1/me", olga, nil).want(t, 200).Body, "mfa"); m["required"] != true || m["setup_deadline"] != nil {
			t.Fatalf("/me mfa after enrolling = %v", m)
		}

		// An ordinary account is not covered.
		srv.signup(t, "bob", "bob@example.com")
		bob := srv.login(t, "bob")
		srv.call(t, "GET", "/api/v1/tokens", bob, nil).want(t, 200)
		if m := obj(t, srv.call(t, "GET", "/api/v1/me", bob, nil).want(t, 200).Body, "mfa"); m["required"] != false {
			t.Fatalf("/me mfa of an ordinary account = %v", m)
		}
		// grant-admin refuses an account without MFA, in one line.
		code, _, errs := runCLI(t, cfg, "", "admin", "grant-admin", "bob", "--reason", "on call")
		if code == 0 || !strings.Contains(errs, "multiple-factor") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Fatalf("grant-admin without MFA = %d %q", code, errs)
		}
		srv.registerKey(t, bob, newSoftKey(t), "Bob's key").want(t, 201)
		if code, _, errs := runCLI(t, cfg, "", "admin", "grant-admin", "bob", "--reason", "on call"); code != 0 {
			t.Fatalf("grant-admin with MFA = %d %q", code, errs)
		}
		// admin users shows each account's MFA and deadline.
		code, out, _ := runCLI(t, cfg, "", "admin", "users")
		if code != 0 || !strings.Contains(out, "MFA DEADLINE") {
			t.Fatalf("admin users = %d %q", code, out)
		}
	})
}

// TestMFAPolicyAllGrace: with require-mfa=all, an ordinary account gets the grace from
// its first sign-in, sees the deadline on every page, and past it is held to setup —
// its personal access tokens too.
func TestMFAPolicyAllGrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.RequireMFA, cfg.RequireMFAGrace = "all", 336*time.Hour
		srv := startServer(t, cfg, nil)
		srv.signup(t, "carol", "carol@example.com")
		carol := srv.login(t, "carol")
		want := srv.Clock.Now().Add(336 * time.Hour)
		m := obj(t, srv.call(t, "GET", "/api/v1/me", carol, nil).want(t, 200).Body, "mfa")
		if m["required"] != true || m["setup_deadline"] != want.UTC().Format(time.RFC3339) {
			t.Fatalf("/me mfa during the grace = %v, want deadline %v", m, want)
		}
		pat := srv.call(t, "POST", "/api/v1/tokens", carol, map[string]any{"name": "ci", "expires_in_days": 90}).want(t, 201).str("token")
		page := srv.call(t, "GET", "/settings/sessions", carol, nil).want(t, 200)
		if !strings.Contains(string(page.Raw), "requires multiple-factor authentication from") ||
			!strings.Contains(string(page.Raw), "Set it up now") {
			t.Fatal("no grace-period banner on the sessions page")
		}
		// A later sign-in does not move the deadline.
		srv.Clock.Advance(24 * time.Hour)
		carol = srv.login(t, "carol")
		m = obj(t, srv.call(t, "GET", "/api/v1/me", carol, nil).want(t, 200).Body, "mfa")
		if m["setup_deadline"] != want.UTC().Format(time.RFC3339) {
			t.Fatalf("deadline moved to %v", m["setup_deadline"])
		}
		// Past the deadline: only setup.
		srv.Clock.Advance(313 * time.Hour)
		carol = srv.login(t, "carol")
		srv.call(t, "GET", "/api/v1/sessions", carol, nil).want(t, 403, "mfa_setup_required")
		srv.call(t, "GET", "/api/v1/tokens", pat, nil).want(t, 403, "mfa_setup_required")
		srv.call(t, "POST", "/api/v1/mfa/totp/setup", carol, nil).want(t, 200)
		srv.registerKey(t, carol, newSoftKey(t), "Carol's key").want(t, 201)
		srv.call(t, "GET", "/api/v1/sessions", carol, nil).want(t, 200)
		srv.call(t, "GET", "/api/v1/tokens", pat, nil).want(t, 200)
	})
}
