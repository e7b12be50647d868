package e2e

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/server"
)

// TestRegenerationRacingSignIns: old codes used while a regeneration runs either win
// before it commits or fail; after it returns, no old code ever works.
func TestRegenerationRacingSignIns(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.MFAMaxFailures = 1000
		s := startServer(t, cfg, nil)
		s.signup(t, "uma", "uma@example.com")
		tok := s.login(t, "uma")
		_, codes := s.enrol(t, tok)
		tokens := make([]string, len(codes))
		for i := range tokens {
			tokens[i] = s.pending(t, "uma")
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, c := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				s.mfa(t, tokens[i], "recovery_code", c)
			}()
		}
		close(start)
		fresh := s.call(t, "POST", "/api/v1/mfa/recovery-codes/regenerate", tok, nil).want(t, 200).Body["recovery_codes"].([]any)
		wg.Wait()
		for _, c := range codes {
			s.mfa(t, s.pending(t, "uma"), "recovery_code", c).want(t, 401, "invalid_code")
		}
		n := s.call(t, "GET", "/api/v1/mfa/recovery-codes", tok, nil).want(t, 200)
		if n.Body["total"] != 16.0 || n.Body["remaining"] != 16.0 {
			t.Fatalf("after the race: %s, want the 16 fresh codes untouched", n.Raw)
		}
		s.mfa(t, s.pending(t, "uma"), "recovery_code", fresh[15].(string)).want(t, 200)
	})
}

// TestMFAOffEndsOtherSessions, and a reset that neither signs in nor skips MFA, and an
// MFA account's wrong password answering like any other.
func TestSessionsAndResetWithMFA(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "vera", "vera@example.com")
		tok := s.login(t, "vera")
		secret, _ := s.enrol(t, tok)

		wrongMFA := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "vera", "password": "wrong password"}).want(t, 401)
		wrongUnknown := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "nobody-at-all", "password": "wrong password"}).want(t, 401)
		if string(wrongMFA.Raw) != string(wrongUnknown.Raw) {
			t.Fatalf("MFA account's wrong password %s differs from unknown user %s", wrongMFA.Raw, wrongUnknown.Raw)
		}

		other := s.login2fa(t, "vera", secret)
		// A reset never signs in, ends every session, and MFA stays on.
		s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "vera@example.com"}).want(t, 202)
		msgs := s.outbox(t)
		link := resetLink.FindStringSubmatch(msgs[len(msgs)-1].Body)
		if link == nil {
			t.Fatal("no reset link")
		}
		pendingBefore := s.pending(t, "vera")
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": link[1], "new_password": "after the reset"}).want(t, 204)
		s.call(t, "GET", "/api/v1/me", other, nil).want(t, 401)
		s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 401)
		// A sign-in half done with the old password cannot be finished after the reset.
		s.Clock.Advance(30 * time.Second)
		s.mfa(t, pendingBefore, "code", oathtool(t, secret, s.Clock.Now())).want(t, 401, "invalid_mfa_token")
		r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "vera", "password": "after the reset"}).want(t, 200)
		if r.str("status") != "mfa_required" {
			t.Fatalf("after a reset, login status = %q: the reset skipped MFA", r.str("status"))
		}
		cur := s.mfa(t, r.str("mfa_token"), "code", oathtool(t, secret, s.Clock.Now())).want(t, 200).str("session_token")

		// Remove ends every other session too.
		s.Clock.Advance(30 * time.Second)
		r2 := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "vera", "password": "after the reset"}).want(t, 200)
		second := s.mfa(t, r2.str("mfa_token"), "code", oathtool(t, secret, s.Clock.Now())).want(t, 200).str("session_token")
		s.call(t, "DELETE", "/api/v1/mfa", cur, nil).want(t, 200)
		s.call(t, "GET", "/api/v1/me", second, nil).want(t, 401)
		s.call(t, "GET", "/api/v1/me", cur, nil).want(t, 200)

		// A stale session can't start an enrolment.
		s.Clock.Advance(11 * time.Minute)
		s.call(t, "POST", "/api/v1/mfa/totp/setup", cur, nil).want(t, 403, "reauth_required")
	})
}

// TestServerTimeouts: slow clients cannot hold connections.
func TestServerTimeouts(t *testing.T) {
	srv := server.HTTPServer("127.0.0.1:0", nil, testLogger())
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("timeouts not all set: header %v read %v write %v idle %v max header %d",
			srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

// TestPendingSetupBelongsToItsSession: another session of the same account — an old
// stolen one, or even a fresh one — can neither read the secret being enrolled nor
// confirm it (which would hand it the recovery codes and end the enrolling session).
func TestPendingSetupBelongsToItsSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "wes", "wes@example.com")
		stolen := s.login(t, "wes")
		s.Clock.Advance(11 * time.Minute)
		other := s.login(t, "wes")
		owner := s.login(t, "wes")
		secret := s.call(t, "POST", "/api/v1/mfa/totp/setup", owner, nil).want(t, 200).str("secret")
		code := oathtool(t, secret, s.Clock.Now())
		for name, tok := range map[string]string{"stale session": stolen, "fresh other session": other} {
			for _, path := range []string{"/api/v1/mfa/totp/setup/qr.png", "/api/v1/mfa/totp/setup/qr.svg"} {
				if r := s.call(t, "GET", path, tok, nil); r.Status != 404 || strings.Contains(string(r.Raw), secret) {
					t.Fatalf("%s GET %s = %d %.80s, want 404 no_pending_setup", name, path, r.Status, r.Raw)
				}
			}
			r := s.call(t, "POST", "/api/v1/mfa/totp/confirm", tok, map[string]string{"code": code})
			if r.Status != 404 && r.Status != 403 {
				t.Fatalf("%s confirm = %d %s, want 403 or 404", name, r.Status, r.Raw)
			}
		}
		s.call(t, "POST", "/api/v1/mfa/totp/confirm", stolen, map[string]string{"code": code}).want(t, 403, "reauth_required")
		s.call(t, "POST", "/api/v1/mfa/totp/confirm", other, map[string]string{"code": code}).want(t, 404, "no_pending_setup")
		// The owner finishes; the other sessions end.
		s.call(t, "POST", "/api/v1/mfa/totp/confirm", owner, map[string]string{"code": code}).want(t, 200)
		s.call(t, "GET", "/api/v1/me", stolen, nil).want(t, 401)
		s.call(t, "GET", "/api/v1/me", other, nil).want(t, 401)
	})
}

// TestSignInRacingPasswordChange: sign-ins with the old password run in parallel with a
// password change. Whatever each of them answered, once the change has returned, no
// session they opened works — even one inserted after the change committed.
func TestSignInRacingPasswordChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.PasswordMaxFailures = 1000
		s := startServer(t, cfg, nil)
		s.signup(t, "abel", "abel@example.com")
		old := testPassword
		for round := 0; round < 4; round++ {
			owner := mustLogin(t, s, "abel", old)
			var mu sync.Mutex
			var stolen []string
			var wg sync.WaitGroup
			for i := 0; i < 8; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "abel", "password": old})
					if r.Status == 200 {
						mu.Lock()
						stolen = append(stolen, r.str("session_token"))
						mu.Unlock()
					}
				}()
			}
			next := old + "!"
			s.call(t, "POST", "/api/v1/password", owner, map[string]string{"current_password": old, "new_password": next}).want(t, 204)
			wg.Wait()
			for _, tok := range stolen {
				s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 401)
			}
			s.call(t, "GET", "/api/v1/me", owner, nil).want(t, 200)
			old = next
		}
	})
}
