package e2e

import (
	"strings"
	"testing"
)

// TestOperatorCommands: disable, enable, grant-admin, revoke-admin and delete need a
// reason, which lands in the security log and the mail to the user; a disabled
// account gets 403 account_disabled only after a right password, and its sessions
// and tokens stop working.
func TestOperatorCommands(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		// Granting admin to an account without MFA is refused under require-mfa, which
		// has tests of its own; these are the operator commands themselves.
		cfg.RequireMFA = "off"
		s := startServer(t, cfg, nil)
		s.signup(t, "amy", "amy@example.com")
		tok := s.login(t, "amy")
		pat := s.call(t, "POST", "/api/v1/tokens", tok, map[string]any{"name": "ci"}).want(t, 201).str("token")

		run := func(args ...string) string {
			t.Helper()
			code, out, errs := runCLI(t, cfg, "", append([]string{"admin"}, args...)...)
			if code != 0 {
				t.Fatalf("%v = %d, %q %q", args, code, out, errs)
			}
			return out
		}
		for _, cmd := range []string{"disable", "enable", "delete", "grant-admin", "revoke-admin"} {
			code, _, errs := runCLI(t, cfg, "", "admin", cmd, "amy")
			if code == 0 || !strings.Contains(errs, "reason") || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
				t.Errorf("%s without a reason = %d %q, want one line naming the reason", cmd, code, errs)
			}
		}

		if out := run("disable", "amy", "--reason", "abuse report 17"); !strings.Contains(out, "disabled amy") {
			t.Fatalf("disable = %q", out)
		}
		s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 401)
		s.call(t, "GET", "/api/v1/me", pat, nil).want(t, 401)
		if out := run("users"); !strings.Contains(out, "disabled") {
			t.Errorf("admin users does not show the account disabled:\n%s", out)
		}
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "amy", "password": "a wrong password"}).want(t, 401, "invalid_credentials")
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "amy@example.com", "password": testPassword}).want(t, 403, "account_disabled")
		mail := lastMailBody(s.outbox(t), "amy@example.com", "Your account was disabled")
		if !strings.Contains(mail, "abuse report 17") {
			t.Fatalf("disable mail = %q", mail)
		}

		run("enable", "--reason", "cleared", "amy")
		tok = s.login(t, "amy")
		s.call(t, "GET", "/api/v1/me", pat, nil).want(t, 200)

		run("grant-admin", "amy", "--reason", "joins support")
		if !hasMail(s.outbox(t), "amy@example.com", "You are now an operator") {
			t.Error("grant-admin told nobody")
		}
		s.call(t, "GET", "/api/v1/admin/recovery-requests", tok, nil).want(t, 200)
		run("revoke-admin", "amy", "--reason", "left support")
		s.call(t, "GET", "/api/v1/admin/recovery-requests", tok, nil).want(t, 403)

		want := map[string]string{"account_disabled": "abuse report 17", "account_enabled": "cleared", "admin_granted": "joins support", "admin_revoked": "left support"}
		for _, e := range s.call(t, "GET", "/api/v1/security-log", tok, nil).want(t, 200).Body["events"].([]any) {
			m := e.(map[string]any)
			if r, ok := want[m["event"].(string)]; ok && strings.Contains(m["detail"].(string), r) {
				delete(want, m["event"].(string))
			}
		}
		if len(want) != 0 {
			t.Fatalf("security log lacks %v", want)
		}

		run("delete", "amy", "--reason", "asked by phone")
		s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 401)
		s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": "amy", "email": "amy2@example.com", "password": testPassword}).want(t, 409, "username_taken")
		if !strings.Contains(lastMailBody(s.outbox(t), "amy@example.com", "Your account was deleted"), "asked by phone") {
			t.Error("the deletion mail lacks the reason")
		}
		code, _, errs := runCLI(t, cfg, "", "admin", "disable", "--reason", "x", "amy")
		if code == 0 || !strings.Contains(errs, "no user") {
			t.Fatalf("disable of a deleted account = %d %q", code, errs)
		}
	})
}

// TestOperatorEmail: operator-email hears of every verified recovery request.
func TestOperatorEmail(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.OperatorEmail = "ops@example.com"
		s := startServer(t, cfg, nil)
		s.signup(t, "ben", "ben@example.com")
		tok := s.login(t, "ben")
		_, pat := s.newPAT(t, tok, 0)
		id, _ := s.openRecovery(t, "ben")
		if hasMail(s.outbox(t), "ops@example.com", "A recovery request was verified") {
			t.Fatal("the operator was told before verification")
		}
		s.verifyRecovery(t, id, map[string]string{"personal_access_token": pat}).want(t, 200)
		body := lastMailBody(s.outbox(t), "ops@example.com", "A recovery request was verified")
		if !strings.Contains(body, id) || !strings.Contains(body, "ben") {
			t.Fatalf("operator mail = %q", body)
		}
	})
}
