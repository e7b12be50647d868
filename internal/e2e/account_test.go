package e2e

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAccountLifecycle(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)

		s.call(t, "GET", "/healthz", "", nil).want(t, 200)
		r := s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": "Alice", "email": "alice@example.com", "password": testPassword}).want(t, 201)
		user := r.Body["user"].(map[string]any)
		if user["username"] != "Alice" || user["email"] != "alice@example.com" || user["email_verified"] != false || user["created_at"] == nil || user["id"] == nil {
			t.Fatalf("signup user = %v", user)
		}
		if _, ok := user["password_hash"]; ok {
			t.Fatal("signup leaks the password hash")
		}
		// Uniqueness is case-insensitive, for usernames and verified emails.
		s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": "alice", "email": "other@example.com", "password": testPassword}).want(t, 409, "username_taken")
		s.verifyEmail(t, "alice@example.com")
		s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": "alice2", "email": "ALICE@example.com", "password": testPassword}).want(t, 409, "email_taken")

		// Sign in by username (any case) and by email; each sign-in gets a new token.
		tok1 := s.login(t, "alice")
		tok2 := s.login(t, "ALICE@EXAMPLE.COM")
		if tok1 == tok2 || len(tok1) < 40 {
			t.Fatalf("session tokens not fresh/long: %q %q", tok1, tok2)
		}
		me := s.call(t, "GET", "/api/v1/me", tok1, nil).want(t, 200)
		mfa := me.Body["mfa"].(map[string]any)
		if mfa["enabled"] != false || mfa["recovery_codes_remaining"] != nil {
			t.Fatalf("me.mfa = %v, want enabled false and recovery_codes_remaining null", mfa)
		}

		// Wrong password and unknown user: the same answer.
		a := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "alice", "password": "wrong password"}).want(t, 401, "invalid_credentials")
		b := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "nobody", "password": "wrong password"}).want(t, 401, "invalid_credentials")
		if string(a.Raw) != string(b.Raw) {
			t.Fatalf("unknown user answer %s differs from wrong password %s", b.Raw, a.Raw)
		}

		// Sessions: both listed, the current one marked; revoke the other.
		list := s.call(t, "GET", "/api/v1/sessions", tok1, nil).want(t, 200).Body["sessions"].([]any)
		if len(list) != 2 {
			t.Fatalf("sessions = %d, want 2", len(list))
		}
		var other float64
		for _, x := range list {
			m := x.(map[string]any)
			if m["current"] != true {
				other = m["id"].(float64)
			}
		}
		s.call(t, "DELETE", "/api/v1/sessions/"+ftoa(other), tok1, nil).want(t, 204)
		s.call(t, "GET", "/api/v1/me", tok2, nil).want(t, 401, "unauthenticated")
		s.call(t, "DELETE", "/api/v1/sessions/999999", tok1, nil).want(t, 404)

		// Password change ends every other session and the old password stops working.
		tok3 := s.login(t, "alice")
		s.call(t, "POST", "/api/v1/password", tok1, map[string]string{"current_password": "nope nope nope", "new_password": "a brand new password"}).want(t, 400, "invalid_input")
		s.call(t, "POST", "/api/v1/password", tok1, map[string]string{"current_password": testPassword, "new_password": "short"}).want(t, 400, "invalid_input")
		s.call(t, "POST", "/api/v1/password", tok1, map[string]string{"current_password": testPassword, "new_password": "a brand new password"}).want(t, 204)
		s.call(t, "GET", "/api/v1/me", tok3, nil).want(t, 401)
		s.call(t, "GET", "/api/v1/me", tok1, nil).want(t, 200)
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "alice", "password": testPassword}).want(t, 401)
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "alice", "password": "a brand new password"}).want(t, 200)

		// Logout is enforced on the server.
		s.call(t, "POST", "/api/v1/logout", tok1, nil).want(t, 204)
		s.call(t, "GET", "/api/v1/me", tok1, nil).want(t, 401)

		// The security log has the story, newest first.
		tok := mustLogin(t, s, "alice", "a brand new password")
		ev := s.call(t, "GET", "/api/v1/security-log", tok, nil).want(t, 200).Body["events"].([]any)
		seen := map[string]bool{}
		for _, e := range ev {
			m := e.(map[string]any)
			seen[m["event"].(string)+"/"+m["outcome"].(string)] = true
			if m["ip"] == "" || m["time"] == nil {
				t.Fatalf("event without ip/time: %v", m)
			}
		}
		for _, want := range []string{"signup/success", "login/success", "login/failure", "logout/success", "password_change/success", "session_revoked/success"} {
			if !seen[want] {
				t.Errorf("security log lacks %s; has %v", want, seen)
			}
		}
		if first := ev[0].(map[string]any); first["event"] != "login" {
			t.Errorf("newest event = %v, want the last login", first)
		}
		// Mail told the user of the password change.
		if !hasMail(s.outbox(t), "alice@example.com", "Your password was changed") {
			t.Error("no password-change mail")
		}
	})
}

func mustLogin(t *testing.T, s *testServer, login, pw string) string {
	t.Helper()
	r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": login, "password": pw}).want(t, 200)
	return r.str("session_token")
}

func hasMail(msgs []outboxMail, to, subject string) bool {
	for _, m := range msgs {
		if m.To == to && m.Subject == subject {
			return true
		}
	}
	return false
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'f', 0, 64) }

var resetLink = regexp.MustCompile(`/password/reset\?token=([A-Za-z0-9_-]+)`)

func TestForgotAndResetThroughOutbox(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "bob", "bob@example.com")
		keep := s.login(t, "bob")

		// Unknown and known addresses get the same 202.
		a := s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "nobody@example.com"}).want(t, 202)
		b := s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "BOB@example.com"}).want(t, 202)
		if string(a.Raw) != string(b.Raw) {
			t.Fatalf("forgot answers differ: %s vs %s", a.Raw, b.Raw)
		}
		var link string
		for _, m := range s.outbox(t) {
			if m.To == "bob@example.com" && m.Subject == "Reset your password" {
				link = m.Body
			}
		}
		match := resetLink.FindStringSubmatch(link)
		if match == nil {
			t.Fatalf("no reset link in the outbox mail %q", link)
		}
		token := match[1]
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": token, "new_password": "x"}).want(t, 400, "invalid_input")
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": "not-a-token", "new_password": "another good password"}).want(t, 400, "invalid_token")
		r := s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": token, "new_password": "another good password"}).want(t, 204)
		if len(r.Raw) != 0 {
			t.Fatalf("reset answered a body (it must never sign in): %s", r.Raw)
		}
		// Single use; sessions ended; the new password works.
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": token, "new_password": "yet another password"}).want(t, 400, "invalid_token")
		s.call(t, "GET", "/api/v1/me", keep, nil).want(t, 401)
		mustLogin(t, s, "bob", "another good password")

		// A link expires after an hour.
		s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "bob@example.com"}).want(t, 202)
		msgs := s.outbox(t)
		last := resetLink.FindStringSubmatch(msgs[len(msgs)-1].Body)
		if last == nil {
			t.Fatalf("second reset mail has no link: %v", msgs[len(msgs)-1])
		}
		s.Clock.Advance(61 * time.Minute)
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": last[1], "new_password": "too late password"}).want(t, 400, "invalid_token")
	})
}

func TestBadInput(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	s.signup(t, "carol", "carol@example.com")
	tok := s.login(t, "carol")
	long := strings.Repeat("p", 129)
	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		status int
		code   string
	}{
		{"signup not JSON", "POST", "/api/v1/signup", "", "username=x", 400, "invalid_input"},
		{"signup empty body", "POST", "/api/v1/signup", "", "", 400, "invalid_input"},
		{"signup trailing data", "POST", "/api/v1/signup", "", `{"username":"dave"} {}`, 400, "invalid_input"},
		{"signup number username", "POST", "/api/v1/signup", "", `{"username":5,"email":"d@example.com","password":"long enough pw"}`, 400, "invalid_input"},
		{"signup short username", "POST", "/api/v1/signup", "", map[string]string{"username": "d", "email": "d@example.com", "password": testPassword}, 400, "invalid_input"},
		{"signup bad username chars", "POST", "/api/v1/signup", "", map[string]string{"username": "da ve", "email": "d@example.com", "password": testPassword}, 400, "invalid_input"},
		{"signup 40-char username", "POST", "/api/v1/signup", "", map[string]string{"username": strings.Repeat("d", 40), "email": "d@example.com", "password": testPassword}, 400, "invalid_input"},
		{"signup bad email", "POST", "/api/v1/signup", "", map[string]string{"username": "dave", "email": "dave", "password": testPassword}, 400, "invalid_input"},
		{"signup display-name email", "POST", "/api/v1/signup", "", map[string]string{"username": "dave", "email": "Dave <d@example.com>", "password": testPassword}, 400, "invalid_input"},
		{"signup short password", "POST", "/api/v1/signup", "", map[string]string{"username": "dave", "email": "d@example.com", "password": "1234567"}, 400, "invalid_input"},
		{"signup 129-char password", "POST", "/api/v1/signup", "", map[string]string{"username": "dave", "email": "d@example.com", "password": long}, 400, "invalid_input"},
		{"login 129-char password", "POST", "/api/v1/login", "", map[string]string{"login": "carol", "password": long}, 400, "invalid_input"},
		{"login missing fields", "POST", "/api/v1/login", "", `{}`, 400, "invalid_input"},
		{"login array", "POST", "/api/v1/login", "", `[]`, 400, "invalid_input"},
		{"mfa code as number", "POST", "/api/v1/login/mfa", "", `{"mfa_token":"x","code":81804}`, 400, "invalid_input"},
		{"mfa unknown token", "POST", "/api/v1/login/mfa", "", map[string]string{"mfa_token": "nope", "code": "123456"}, 401, "invalid_mfa_token"},
		{"me without auth", "GET", "/api/v1/me", "", nil, 401, "unauthenticated"},
		{"me bad bearer", "GET", "/api/v1/me", "garbage", nil, 401, "unauthenticated"},
		{"token bad expiry", "POST", "/api/v1/tokens", tok, map[string]any{"name": "ci", "expires_in_days": 366}, 400, "invalid_input"},
		{"token zero expiry", "POST", "/api/v1/tokens", tok, map[string]any{"name": "ci", "expires_in_days": 0}, 400, "invalid_input"},
		{"token no name", "POST", "/api/v1/tokens", tok, map[string]any{"name": " "}, 400, "invalid_input"},
		{"session id not a number", "DELETE", "/api/v1/sessions/abc", tok, nil, 404, "not_found"},
		{"unknown api path", "GET", "/api/v1/nope", "", nil, 404, "not_found"},
		{"forgot not JSON", "POST", "/api/v1/password/forgot", "", `email=x`, 400, "invalid_input"},
		{"reset no token", "POST", "/api/v1/password/reset", "", map[string]string{"new_password": "long enough password"}, 400, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.call(t, tt.method, tt.path, tt.token, tt.body).want(t, tt.status, tt.code)
			if msg, _ := r.Body["error"].(map[string]any)["message"].(string); msg == "" {
				t.Fatalf("error without a message: %s", r.Raw)
			}
		})
	}
	t.Run("1 MB body refused before any work", func(t *testing.T) {
		big := `{"username":"` + strings.Repeat("a", 1<<20) + `"}`
		s.call(t, "POST", "/api/v1/signup", "", big).want(t, 413, "body_too_large")
	})
	t.Run("chunked oversized body", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/login", &endless{})
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("status = %d, want 413", resp.StatusCode)
		}
	})
}

// endless is a body of unknown length that never ends ("{"aaaa…).
type endless struct{ started bool }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'a'
	}
	if !e.started && len(p) > 2 {
		copy(p, `{"`)
		e.started = true
	}
	return len(p), nil
}

func TestSecurityHeaders(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	r := s.call(t, "GET", "/healthz", "", nil).want(t, 200)
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if !strings.Contains(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", r.Header.Get("Content-Security-Policy"))
	}
}
