package e2e

import (
	"html"
	"io"
	"mime/quotedprintable"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/mail/smtptest"
)

var (
	verifyLink = regexp.MustCompile(`/verify-email\?token=([A-Za-z0-9_-]+)`)
	undoLink   = regexp.MustCompile(`/settings/account/undo-email\?token=([A-Za-z0-9_-]+)`)
)

// lastLink returns the token of the newest mail to addr with subject whose body
// matches re, or "".
func lastLink(mails []outboxMail, addr, subject string, re *regexp.Regexp) string {
	for i := len(mails) - 1; i >= 0; i-- {
		if mails[i].To != addr || mails[i].Subject != subject {
			continue
		}
		if m := re.FindStringSubmatch(mails[i].Body); m != nil {
			return m[1]
		}
	}
	return ""
}

// verifyToken returns the newest verification token mailed to addr.
func (s *testServer) verifyToken(t *testing.T, addr string) string {
	t.Helper()
	tok := lastLink(s.outbox(t), addr, "Verify your email address", verifyLink)
	if tok == "" {
		t.Fatalf("no verification link mailed to %s", addr)
	}
	return tok
}

// verifyEmail follows the newest verification link mailed to addr.
func (s *testServer) verifyEmail(t *testing.T, addr string) {
	t.Helper()
	r := s.call(t, "POST", "/api/v1/email/verify", "", map[string]string{"token": s.verifyToken(t, addr)}).want(t, 200)
	if r.Body["email_verified"] != true || !strings.EqualFold(r.str("email"), addr) {
		t.Fatalf("verify = %s", r.Raw)
	}
}

func (s *testServer) signupUnverified(t *testing.T, username, email string) {
	t.Helper()
	s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": username, "email": email, "password": testPassword}).want(t, 201)
}

func meUser(t *testing.T, s *testServer, tok string) map[string]any {
	t.Helper()
	u, _ := s.call(t, "GET", "/api/v1/me", tok, nil).want(t, 200).Body["user"].(map[string]any)
	return u
}

// TestEmailVerification: a new address is unverified until its link is followed; until
// then it gets no reset mail and does not sign in; the link works once, for 24 hours;
// the page behind it asks before it acts.
func TestEmailVerification(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signupUnverified(t, "vera", "vera@example.com")
		tok := s.login(t, "vera")
		if u := meUser(t, s, tok); u["email_verified"] != false || u["email"] != "vera@example.com" {
			t.Fatalf("/me before verifying = %v", u)
		}
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "vera@example.com", "password": testPassword}).want(t, 401, "invalid_credentials")
		s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "vera@example.com"}).want(t, 202)
		mails := s.outbox(t)
		if hasMail(mails, "vera@example.com", "Reset your password") {
			t.Fatal("an unverified address was sent a reset link")
		}
		first := lastLink(mails, "vera@example.com", "Verify your email address", verifyLink)
		if first == "" {
			t.Fatalf("sign-up mailed no verification link: %v", mails)
		}

		// The page behind the link asks first: GET changes nothing.
		page := s.call(t, "GET", "/verify-email?token="+first, "", nil).want(t, 200)
		if !strings.Contains(string(page.Raw), `name="token" value="`+first+`"`) || page.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("verify page does not carry the token in a form: %s", page.Raw)
		}
		if u := meUser(t, s, tok); u["email_verified"] != false {
			t.Fatal("GET /verify-email verified the address")
		}

		// A new link replaces the first.
		s.call(t, "POST", "/api/v1/email/verification", tok, nil).want(t, 202)
		second := s.verifyToken(t, "vera@example.com")
		if second == first {
			t.Fatal("resend mailed the same link")
		}
		s.call(t, "POST", "/api/v1/email/verify", "", map[string]string{"token": first}).want(t, 400, "invalid_token")
		s.call(t, "POST", "/api/v1/email/verify", "", map[string]string{"token": "nonsense"}).want(t, 400, "invalid_token")
		r := s.call(t, "POST", "/api/v1/email/verify", "", map[string]string{"token": second}).want(t, 200)
		if r.Body["email"] != "vera@example.com" || r.Body["email_verified"] != true {
			t.Fatalf("verify = %s", r.Raw)
		}
		s.call(t, "POST", "/api/v1/email/verify", "", map[string]string{"token": second}).want(t, 400, "invalid_token")
		if u := meUser(t, s, tok); u["email_verified"] != true {
			t.Fatalf("/me after verifying = %v", u)
		}
		mustLogin(t, s, "VERA@example.com", testPassword)
		s.call(t, "POST", "/api/v1/email/verification", tok, nil).want(t, 409, "email_already_verified")

		// Links last 24 hours; asking for more is limited.
		s.signupUnverified(t, "late", "late@example.com")
		_ = s.login(t, "late") // a session exists while the link ages
		old := s.verifyToken(t, "late@example.com")
		s.Clock.Advance(24 * time.Hour)
		s.call(t, "POST", "/api/v1/email/verify", "", map[string]string{"token": old}).want(t, 400, "invalid_token")
		late := s.login(t, "late")
		for range 5 {
			s.call(t, "POST", "/api/v1/email/verification", late, nil).want(t, 202)
		}
		s.call(t, "POST", "/api/v1/email/verification", late, nil).want(t, 429, "too_many_attempts")
		s.verifyEmail(t, "late@example.com")
	})
}

// TestEmailSquatterDropped: an unverified address blocks nobody; the first to verify
// keeps it and the other account's copy is dropped, its owner asked for a new one.
func TestEmailSquatterDropped(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signupUnverified(t, "squatter", "owner@example.com")
		squatterLink := s.verifyToken(t, "owner@example.com")
		s.signupUnverified(t, "owner", "Owner@Example.com") // not taken: the squatter never verified
		s.verifyEmail(t, "Owner@Example.com")

		s.call(t, "POST", "/api/v1/email/verify", "", map[string]string{"token": squatterLink}).want(t, 400, "invalid_token")
		s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": "third", "email": "OWNER@example.com", "password": testPassword}).want(t, 409, "email_taken")

		r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "squatter", "password": testPassword}).want(t, 200)
		if r.Body["email_required"] != true {
			t.Fatalf("sign-in of the dropped account does not ask for an address: %s", r.Raw)
		}
		sq := r.str("session_token")
		if u := meUser(t, s, sq); u["email"] != nil || u["email_verified"] != false {
			t.Fatalf("squatter's /me = %v, want email null", u)
		}
		if u := meUser(t, s, s.login(t, "owner@example.com")); u["email"] != "Owner@Example.com" || u["email_verified"] != true {
			t.Fatalf("owner's /me = %v", u)
		}
		// The page sign-in lands on the account page, which says why.
		c := jarClient(t)
		form := s.pageForm(t, c, "/login")
		form.Set("login", "squatter")
		form.Set("password", testPassword)
		resp := s.postForm(t, c, "/login", form)
		if loc := resp.Header.Get("Location"); loc != "/settings/account?done=email_dropped" {
			t.Fatalf("sign-in of the dropped account goes to %q", loc)
		}
		body := s.getPage(t, c, "/settings/account?done=email_dropped")
		if !strings.Contains(body, "Another account verified the email address you had given") {
			t.Fatalf("account page does not say why: %s", body)
		}
		// A new address, verified, and the account is whole again.
		s.call(t, "POST", "/api/v1/email", sq, map[string]string{"email": "owner@example.com"}).want(t, 409, "email_taken")
		s.call(t, "POST", "/api/v1/email", sq, map[string]string{"email": "squat@example.net"}).want(t, 202)
		s.verifyEmail(t, "squat@example.net")
		if u := meUser(t, s, sq); u["email"] != "squat@example.net" || u["email_verified"] != true {
			t.Fatalf("after a new address: %v", u)
		}
	})
}

// TestEmailChange: a change needs a recent sign-in, takes effect when the new address
// follows its link, kills the reset links, and the old address can undo it for 7 days.
func TestEmailChange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "cara", "cara@example.com")
		tok := s.login(t, "cara")
		other := s.login(t, "cara")
		s.Clock.Advance(11 * time.Minute)
		s.call(t, "POST", "/api/v1/email", tok, map[string]string{"email": "cara@new.example"}).want(t, 403, "reauth_required")
		s.call(t, "POST", "/api/v1/reauth", tok, map[string]string{"password": testPassword}).want(t, 200)
		s.call(t, "POST", "/api/v1/email", tok, map[string]string{"email": "not an address"}).want(t, 400, "invalid_input")

		s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "cara@example.com"}).want(t, 202)
		reset := resetLink.FindStringSubmatch(lastMailBody(s.outbox(t), "cara@example.com", "Reset your password"))
		if reset == nil {
			t.Fatal("no reset link")
		}
		s.call(t, "POST", "/api/v1/email", tok, map[string]string{"email": "cara@new.example"}).want(t, 202)
		if u := meUser(t, s, tok); u["email"] != "cara@example.com" || u["email_verified"] != true {
			t.Fatalf("the change took effect before the link was followed: %v", u)
		}
		s.verifyEmail(t, "cara@new.example")
		if u := meUser(t, s, tok); u["email"] != "cara@new.example" || u["email_verified"] != true {
			t.Fatalf("after the change: %v", u)
		}
		s.call(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": reset[1], "new_password": "a brand new password"}).want(t, 400, "invalid_token")
		mustLogin(t, s, "cara@new.example", testPassword)
		s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": "cara@example.com", "password": testPassword}).want(t, 401)

		undo := lastLink(s.outbox(t), "cara@example.com", "Your email address was changed", undoLink)
		if undo == "" {
			t.Fatal("the old address was not told, with an undo link")
		}
		page := s.call(t, "GET", "/settings/account/undo-email?token="+undo, "", nil).want(t, 200)
		if !strings.Contains(string(page.Raw), `value="`+undo+`"`) {
			t.Fatalf("undo page: %s", page.Raw)
		}
		s.call(t, "GET", "/api/v1/me", other, nil).want(t, 200) // GET changed nothing
		c := jarClient(t)
		form := s.pageForm(t, c, "/settings/account/undo-email?token="+undo)
		resp := s.postForm(t, c, "/settings/account/undo-email", form)
		if loc := resp.Header.Get("Location"); loc != "/login?done=email_restored" {
			t.Fatalf("undo answered %d, Location %q", resp.StatusCode, loc)
		}
		s.call(t, "GET", "/api/v1/me", other, nil).want(t, 401)
		tok = mustLogin(t, s, "cara@example.com", testPassword)
		if u := meUser(t, s, tok); u["email"] != "cara@example.com" || u["email_verified"] != true {
			t.Fatalf("after the undo: %v", u)
		}
	})
}

func lastMailBody(mails []outboxMail, to, subject string) string {
	for i := len(mails) - 1; i >= 0; i-- {
		if mails[i].To == to && mails[i].Subject == subject {
			return mails[i].Body
		}
	}
	return ""
}

// smtpBody returns the decoded body of the newest message to addr with subject.
func smtpBody(t *testing.T, mailer *smtptest.Server, addr, subject string) string {
	t.Helper()
	msgs := mailer.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.To == addr && strings.Contains(m.Data, "Subject: "+subject) {
			body, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(m.Data)))
			if err != nil {
				t.Fatalf("decoding the mail: %v", err)
			}
			return string(body)
		}
	}
	t.Fatalf("no mail %q to %s through SMTP; got %d messages", subject, addr, len(msgs))
	return ""
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="(csrf_token|token)" value="([^"]*)">`)

// getPage fetches a page with the browser-like client c and returns its HTML.
func (s *testServer) getPage(t *testing.T, c *http.Client, path string) string {
	t.Helper()
	resp, err := c.Get(s.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// pageForm fetches a page and returns the hidden fields of its forms (the form token,
// and the emailed token where the page carries one).
func (s *testServer) pageForm(t *testing.T, c *http.Client, path string) url.Values {
	t.Helper()
	v := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(s.getPage(t, c, path), -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	if v.Get("csrf_token") == "" {
		t.Fatalf("no form token on %s", path)
	}
	return v
}

// postForm submits a form as a browser would.
func (s *testServer) postForm(t *testing.T, c *http.Client, path string, form url.Values) *http.Response {
	t.Helper()
	resp, err := c.PostForm(s.URL+path, form)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST %s = %d: %s", path, resp.StatusCode, b)
	}
	return resp
}
