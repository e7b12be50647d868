package e2e

import (
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKillDuringRegeneration kills the server process (SIGKILL) while it regenerates
// recovery codes, again and again, and checks after each restart that exactly one set
// is valid: every old code works or none does, and the count is always 16 codes.
func TestKillDuringRegeneration(t *testing.T) {
	requireTool(t, "oathtool")
	forEachBackend(t, func(t *testing.T, dbURL string) {
		dir := t.TempDir()
		env := []string{"LATCHKEY_DATABASE_URL=" + dbURL, "LATCHKEY_SECRET_KEY_FILE=" + filepath.Join(dir, "secret.key"),
			"LATCHKEY_ARGON2_MEMORY=8192", "LATCHKEY_ARGON2_TIME=1", "LATCHKEY_MFA_MAX_FAILURES=1000"}
		p := startProcess(t, env)
		s := p.server()
		s.Clock.now = time.Now() // the process runs on the real clock
		s.signup(t, "zoe", "zoe@example.com")
		tok := s.login(t, "zoe")
		_, codes := s.enrol(t, tok)

		outcomes := map[string]int{}
		for iter := 0; iter < 12; iter++ {
			// Spend one code of the known set first, so the two sets show different counts.
			s.mfa(t, s.pending(t, "zoe"), "recovery_code", codes[0]).want(t, 200)
			// The request is built here, not in the goroutine: a goroutine scheduled late
			// must still aim at the server being killed, never at its successor.
			req, _ := http.NewRequest("POST", s.URL+"/api/v1/mfa/recovery-codes/regenerate", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			go func() {
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			p.cmd.Process.Kill()
			<-p.done

			p = startProcess(t, env)
			s = p.server()
			n := s.call(t, "GET", "/api/v1/mfa/recovery-codes", tok, nil).want(t, 200)
			total, remaining := n.Body["total"], n.Body["remaining"]
			if total != 16.0 {
				t.Fatalf("iteration %d: total = %v, want 16 (exactly one set)", iter, total)
			}
			valid := 0
			for _, c := range codes[1:] {
				if s.mfa(t, s.pending(t, "zoe"), "recovery_code", c).Status == 200 {
					valid++
				}
			}
			switch {
			case valid == 15 && remaining == 15.0:
				outcomes["old set kept"]++
			case valid == 0 && remaining == 16.0:
				outcomes["new set committed"]++
			default:
				t.Fatalf("iteration %d: %d of the 15 unused old codes work and remaining = %v: a mixed state", iter, valid, remaining)
			}
			// A known set for the next round (the session survives restarts).
			r := s.call(t, "POST", "/api/v1/mfa/recovery-codes/regenerate", tok, nil).want(t, 200)
			codes = codes[:0]
			for _, c := range r.Body["recovery_codes"].([]any) {
				codes = append(codes, c.(string))
			}
		}
		t.Logf("outcomes: %v", outcomes)
		if strings.Contains(p.stderr.String(), "panic") {
			t.Fatalf("the server panicked: %s", p.stderr.String())
		}
	})
}

// TestKillDuringEnrolmentAndRemoval kills the server while it turns MFA on or off and
// checks after each restart that the account is wholly one or the other: recovery codes
// exist exactly when sign-in asks for a second factor — never a half-enrolled account
// that skips MFA, never codes without a secret.
func TestKillDuringEnrolmentAndRemoval(t *testing.T) {
	requireTool(t, "oathtool")
	forEachBackend(t, func(t *testing.T, dbURL string) {
		dir := t.TempDir()
		env := []string{"LATCHKEY_DATABASE_URL=" + dbURL, "LATCHKEY_SECRET_KEY_FILE=" + filepath.Join(dir, "secret.key"),
			"LATCHKEY_ARGON2_MEMORY=8192", "LATCHKEY_ARGON2_TIME=1"}
		p := startProcess(t, env)
		s := p.server()
		s.signup(t, "yuri", "yuri@example.com")
		tok := s.login(t, "yuri")
		outcomes := map[string]int{}
		enabled := false
		for iter := 0; iter < 10; iter++ {
			var req *http.Request
			if enabled {
				req, _ = http.NewRequest("DELETE", s.URL+"/api/v1/mfa", nil)
			} else {
				secret := s.call(t, "POST", "/api/v1/mfa/totp/setup", tok, nil).want(t, 200).str("secret")
				body := `{"code":"` + oathtool(t, secret, time.Now()) + `"}`
				req, _ = http.NewRequest("POST", s.URL+"/api/v1/mfa/totp/confirm", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			go func() {
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
			time.Sleep(time.Duration(rand.IntN(15000)) * time.Microsecond)
			p.cmd.Process.Kill()
			<-p.done
			p = startProcess(t, env)
			s = p.server()

			codes := s.call(t, "GET", "/api/v1/mfa/recovery-codes", tok, nil)
			login := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "yuri", "password": testPassword}).want(t, 200)
			me := s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 200).Body["mfa"].(map[string]any)
			switch {
			case codes.Status == 200 && codes.Body["total"] == 16.0 && login.str("status") == "mfa_required" && me["enabled"] == true:
				enabled = true
			case codes.Status == 409 && login.str("status") == "authenticated" && me["enabled"] == false:
				enabled = false
			default:
				t.Fatalf("iteration %d: inconsistent state: recovery-codes %d %s, login %q, me.mfa %v", iter, codes.Status, codes.Raw, login.str("status"), me)
			}
			outcomes[map[bool]string{true: "on", false: "off"}[enabled]]++
		}
		t.Logf("states after the kills: %v", outcomes)
	})
}
