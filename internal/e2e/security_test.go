package e2e

import (
	"io"
	"mime/quotedprintable"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/mail/smtptest"
)

// TestForgotAndResetThroughSMTP runs the reset flow with mail going through a real SMTP
// conversation (AUTH PLAIN) instead of the outbox.
func TestForgotAndResetThroughSMTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		mailer := smtptest.Start(t, smtptest.Options{User: "latchkey", Pass: "s3cret"})
		cfg := testConfig(t, dbURL)
		cfg.SMTPURL = "smtp://latchkey:s3cret@" + mailer.Addr
		cfg.MailFrom = "no-reply@latchkey.test"
		s := startServer(t, cfg, nil)
		s.signupUnverified(t, "nina", "nina@example.com")
		s.App.Service.Wait()
		verify := verifyLink.FindStringSubmatch(smtpBody(t, mailer, "nina@example.com", "Verify your email address"))
		if verify == nil {
			t.Fatal("no verification link in the mail sent through SMTP")
		}
		s.call(t, "POST", "/api/v1/email/verify", "", map[string]string{"token": verify[1]}).want(t, 200)
		s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "nina@example.com"}).want(t, 202)
		s.App.Service.Wait()
		var token string
		for _, m := range mailer.Messages() {
			if m.To == "nina@example.com" && m.User == "latchkey" && strings.Contains(m.Data, "Subject: Reset your password") {
				// The body is quoted-printable, as a mail client would decode it.
				body, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(m.Data)))
				if err != nil {
					t.Fatalf("decoding the mail: %v", err)
				}
				if match := resetLink.FindStringSubmatch(string(body)); match != nil {
					token = match[1]
				}
			}
		}
		if token == "" {
			t.Fatalf("no reset mail through SMTP; got %d messages", len(mailer.Messages()))
		}
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": token, "new_password": "fresh password here"}).want(t, 204)
		mustLogin(t, s, "nina", "fresh password here")
		if msgs := s.outbox(t); len(msgs) != 0 {
			t.Fatalf("with SMTP set, %d messages went to the outbox", len(msgs))
		}
	})
}

// TestCookieCSRF: API calls carrying the session cookie are checked for cross-origin
// requests; Bearer calls are not at risk and pass.
func TestCookieCSRF(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	s.signup(t, "oscar", "oscar@example.com")
	tok := s.login(t, "oscar")
	cookie := map[string]string{"Cookie": "latchkey_session=" + tok}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range cookie {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	c := jarClient(t)
	body := map[string]any{"name": "csrf"}
	s.callWith(t, c, "GET", "/api/v1/me", "", nil, cookie).want(t, 200)
	s.callWith(t, c, "POST", "/api/v1/tokens", "", body, with(map[string]string{"Origin": "https://evil.example"})).want(t, 403, "cross_origin_request")
	s.callWith(t, c, "POST", "/api/v1/tokens", "", body, with(map[string]string{"Sec-Fetch-Site": "cross-site"})).want(t, 403, "cross_origin_request")
	s.callWith(t, c, "POST", "/api/v1/tokens", "", `{"name":"csrf"}`, with(map[string]string{"Content-Type": "text/plain"})).want(t, 403, "cross_origin_request")
	s.callWith(t, c, "POST", "/api/v1/logout", "", nil, with(map[string]string{"Origin": "https://evil.example"})).want(t, 403)
	s.callWith(t, c, "GET", "/api/v1/me", "", nil, cookie).want(t, 200)
	s.callWith(t, c, "POST", "/api/v1/tokens", "", body, with(map[string]string{"Origin": s.URL, "Sec-Fetch-Site": "same-origin"})).want(t, 201)
	// A Bearer request from a foreign origin is not a CSRF risk.
	s.callWith(t, c, "POST", "/api/v1/tokens", tok, body, map[string]string{"Origin": "https://evil.example"}).want(t, 201)
	// GET never changes state: a GET to a state-changing path is not routed.
	s.callWith(t, c, "GET", "/api/v1/logout", "", nil, cookie).want(t, 404)
	s.callWith(t, c, "GET", "/api/v1/me", "", nil, cookie).want(t, 200)
}

// TestPasswordBackoff: per account and per client IP, and X-Forwarded-For believed only
// from a configured proxy.
func TestPasswordBackoff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.IPMaxFailures = 12
		s := startServer(t, cfg, nil)
		s.signup(t, "paul", "paul@example.com")
		wrong := map[string]string{"login": "Paul", "password": "wrong password"}
		for i := 0; i < 5; i++ {
			s.call(t, "POST", "/api/v1/login", "", wrong).want(t, 401, "invalid_credentials")
		}
		r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "paul@example.com", "password": testPassword}).want(t, 429, "too_many_attempts")
		if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); ra < 1 || ra > 30 {
			t.Fatalf("Retry-After = %q", r.Header.Get("Retry-After"))
		}
		s.Clock.Advance(31 * time.Second)
		s.call(t, "POST", "/api/v1/login", "", wrong).want(t, 401)
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "paul", "password": testPassword}).want(t, 429) // locked again, 60 s
		s.Clock.Advance(61 * time.Second)
		s.login(t, "paul") // success resets
		for i := 0; i < 4; i++ {
			s.call(t, "POST", "/api/v1/login", "", wrong).want(t, 401)
		}
		s.login(t, "paul")

		// The IP bucket (12 failures) already holds the 10 wrong passwords above; a
		// few more: wrong passwords of any account, and of unknown users, count against it,
		// and an untrusted peer can't escape it with X-Forwarded-For.
		for i := 0; ; i++ {
			r := s.callWith(t, jarClient(t), "POST", "/api/v1/login", "", map[string]string{"login": "ghost" + strconv.Itoa(i), "password": "wrong password"},
				map[string]string{"X-Forwarded-For": "203.0.113." + strconv.Itoa(i)})
			if r.Status == 429 {
				break
			}
			if i > 10 {
				t.Fatal("the client IP was never locked: X-Forwarded-For was believed")
			}
		}
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "paul", "password": testPassword}).want(t, 429)
	})
}

func TestTrustedProxy(t *testing.T) {
	cfg := testConfig(t, "sqlite:"+t.TempDir()+"/db")
	cfg.IPMaxFailures = 3
	var err error
	if cfg.TrustedProxies, err = config.ParseTrustedProxies("127.0.0.1/32"); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cfg, nil)
	s.signup(t, "quinn", "quinn@example.com")
	bad := map[string]string{"login": "nobody", "password": "wrong password"}
	xff := func(ip string) map[string]string { return map[string]string{"X-Forwarded-For": "198.51.100.7, " + ip} }
	for i := 0; i < 3; i++ {
		s.callWith(t, jarClient(t), "POST", "/api/v1/login", "", bad, xff("203.0.113.1")).want(t, 401)
	}
	s.callWith(t, jarClient(t), "POST", "/api/v1/login", "", bad, xff("203.0.113.1")).want(t, 429)
	// Another client behind the same proxy has its own bucket; the left-most entry
	// (which a client can forge) is ignored.
	r := s.callWith(t, jarClient(t), "POST", "/api/v1/login", "", map[string]string{"login": "quinn", "password": testPassword}, xff("203.0.113.2")).want(t, 200)
	tok := r.str("session_token")
	ev := s.call(t, "GET", "/api/v1/security-log", tok, nil).Body["events"].([]any)
	if ip := ev[0].(map[string]any)["ip"]; ip != "203.0.113.2" {
		t.Fatalf("logged ip = %v, want the right-most untrusted hop 203.0.113.2", ip)
	}
}

// TestDatabaseDown: with the database gone, checks deny — never "signed in",
// "unlocked" or "unused".
func TestDatabaseDown(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "ruth", "ruth@example.com")
		tok := s.login(t, "ruth")
		_, codes := s.enrol(t, tok)
		mt := s.pending(t, "ruth")
		s.App.Store.Close()
		s.call(t, "GET", "/healthz", "", nil).want(t, 503)
		if r := s.call(t, "GET", "/api/v1/me", tok, nil); r.Status < 500 {
			t.Fatalf("/me with the database down = %d, want 5xx", r.Status)
		}
		if r := s.mfa(t, mt, "recovery_code", codes[0]); r.Status < 500 {
			t.Fatalf("recovery code with the database down = %d, want 5xx", r.Status)
		}
		if r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "ruth", "password": testPassword}); r.Status < 500 {
			t.Fatalf("login with the database down = %d, want 5xx", r.Status)
		}
	})
}

// TestSessionExpiry: 7 days idle or 30 days in all end a session, on the server.
func TestSessionExpiry(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	s.signup(t, "sam", "sam@example.com")
	idle := s.login(t, "sam")
	busy := s.login(t, "sam")
	for step := 0; step < 4; step++ { // used every 6 days: alive after 24 days
		s.Clock.Advance(6 * 24 * time.Hour)
		s.call(t, "GET", "/api/v1/me", busy, nil).want(t, 200)
		if step == 1 { // 12 days unused
			s.call(t, "GET", "/api/v1/me", idle, nil).want(t, 401)
		}
	}
	s.Clock.Advance(5 * 24 * time.Hour) // 29 days after sign-in
	s.call(t, "GET", "/api/v1/me", busy, nil).want(t, 200)
	s.Clock.Advance(24 * time.Hour) // 30 days: the absolute limit, though used yesterday
	s.call(t, "GET", "/api/v1/me", busy, nil).want(t, 401)
}

// TestInvalidUTF8UserAgent: a User-Agent of bytes that are not UTF-8 must not make the
// database refuse the security-log row (PostgreSQL would) and so hide the attempt.
func TestInvalidUTF8UserAgent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "xena", "xena@example.com")
		ua := map[string]string{"User-Agent": "evil\xff\xfe"}
		s.callWith(t, jarClient(t), "POST", "/api/v1/login", "", map[string]string{"login": "xena", "password": "wrong password"}, ua).want(t, 401)
		r := s.callWith(t, jarClient(t), "POST", "/api/v1/login", "", map[string]string{"login": "xena", "password": testPassword}, ua).want(t, 200)
		ev := s.call(t, "GET", "/api/v1/security-log", r.str("session_token"), nil).want(t, 200).Body["events"].([]any)
		failures := 0
		for _, e := range ev {
			m := e.(map[string]any)
			if m["event"] == "login" && m["outcome"] == "failure" && strings.HasPrefix(m["user_agent"].(string), "evil") {
				failures++
			}
		}
		if failures != 1 {
			t.Fatalf("the failed sign-in with a bad User-Agent is missing from the security log: %v", ev)
		}
	})
}

// TestAddressCountsFailuresOnly: per client address only failures count: any number
// of right passwords leave its counter as it was, and the failure that reaches the
// limit locks the address, for right passwords too.
func TestAddressCountsFailuresOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.IPMaxFailures = 20
		s := startServer(t, cfg, nil)
		s.signup(t, "yara", "yara@example.com")
		for i := range 19 {
			s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "spray" + strconv.Itoa(i), "password": "wrong password"}).want(t, 401)
		}
		counts := parallel(t, 30, func(int) int {
			return s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "yara", "password": testPassword}).Status
		})
		// One account, so most wait for one of its 5 slots; on a loaded machine some
		// wait past 2 s and get 503. None is refused for the address.
		if counts[429] != 0 || counts[200] == 0 || counts[200]+counts[503] != 30 {
			t.Fatalf("30 right passwords at once after 19 failures: %v, want 200 or 503, never 429", counts)
		}
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "spray", "password": "wrong password"}).want(t, 401)
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "yara", "password": testPassword}).want(t, 429)
	})
}

// TestResetAttemptsPerIP: random reset tokens cost an argon2id hash each, so they are
// limited per client IP before any hashing; forgot answers 202 whatever it is sent.
func TestResetAttemptsPerIP(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	for i := 0; i < 20; i++ {
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": "guess" + strconv.Itoa(i), "new_password": "long enough password"}).want(t, 400, "invalid_token")
	}
	s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": "guess", "new_password": "long enough password"}).want(t, 429, "too_many_attempts")
	for _, body := range []string{`{}`, `{"email":""}`, `{"email":"` + strings.Repeat("a", 300) + `"}`, `{"email":"nobody@example.com"}`} {
		s.call(t, "POST", "/api/v1/password/forgot", "", body).want(t, 202)
	}
}

// TestTokenCannotEndSessions: a leaked personal access token cannot sign the owner out.
func TestTokenCannotEndSessions(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	s.signup(t, "zack", "zack@example.com")
	tok := s.login(t, "zack")
	pat := s.call(t, "POST", "/api/v1/tokens", tok, map[string]any{"name": "ci"}).want(t, 201).str("token")
	id := s.call(t, "GET", "/api/v1/sessions", tok, nil).want(t, 200).Body["sessions"].([]any)[0].(map[string]any)["id"].(float64)
	s.call(t, "DELETE", "/api/v1/sessions/"+ftoa(id), pat, nil).want(t, 403, "forbidden_for_token")
	s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 200)
}

// TestNoRequesterTextInOwnerMail: the mail telling the owner of a recovery request
// must not carry the requester's own words (their User-Agent).
func TestNoRequesterTextInOwnerMail(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+t.TempDir()+"/db"), nil)
	s.signup(t, "vic", "vic@example.com")
	s.callWith(t, jarClient(t), "POST", "/api/v1/recovery", "", map[string]string{"login": "vic"},
		map[string]string{"User-Agent": "URGENT visit https://evil.example/login"}).want(t, 202)
	found := false
	for _, m := range s.outbox(t) {
		if m.To == "vic@example.com" && strings.Contains(m.Subject, "recovery request") {
			found = true
			if strings.Contains(m.Body, "evil.example") {
				t.Fatalf("the owner's mail quotes the requester's User-Agent: %q", m.Body)
			}
		}
	}
	if !found {
		t.Fatal("no recovery-request mail to the owner")
	}
}

// TestRefundUndoesItsOwnLock: a right password never counts against its address.
// After an address lock runs out, the failures stay at the limit (until forgotten), so
// the next failure locks again; right passwords must not, sign-in after sign-in. Nor
// may an attempt refused for its account's lock count against the address, on either
// store.
func TestRefundUndoesItsOwnLock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.IPMaxFailures, cfg.PasswordMaxFailures = 3, 2
		ck := newClock()
		s := startServer(t, cfg, ck)
		s.signup(t, "ola", "ola@example.com")
		s.signup(t, "pia", "pia@example.com")
		wrong := func(login string) int {
			return s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": login, "password": "wrong password"}).Status
		}
		right := func(login string) int {
			return s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": login, "password": testPassword}).Status
		}
		for i := range 3 {
			if st := wrong("ghost" + strconv.Itoa(i)); st != 401 {
				t.Fatalf("wrong password %d = %d, want 401", i, st)
			}
		}
		if st := right("ola"); st != 429 {
			t.Fatalf("right password while the IP is locked = %d, want 429", st)
		}
		ck.Advance(cfg.PasswordLock + time.Second)
		for i := range 3 {
			if st := right("ola"); st != 200 {
				t.Fatalf("right password %d after the IP lock ran out = %d, want 200: a success re-locked the IP", i, st)
			}
		}
		// Once the IP's counter is forgotten (an idle hour), lock ola's account with two
		// wrong passwords (two of the IP's three), then try ola once more: refused for
		// the account, it must not count as the IP's third failure.
		ck.Advance(2 * time.Hour)
		wrong("ola")
		wrong("ola")
		if st := right("ola"); st != 429 {
			t.Fatalf("right password on a locked account = %d, want 429", st)
		}
		if st := right("pia"); st != 200 {
			t.Fatalf("another account from the same IP = %d, want 200: the refused attempt locked the IP", st)
		}
	})
}
