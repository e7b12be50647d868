package cli

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// flatJar is a cookie jar that sends every cookie it was given to every host: the
// test server answers on 127.0.0.1 while the session cookie names the cookie domain
// (which net/http/cookiejar would rightly refuse to store for that host).
type flatJar struct {
	mu      sync.Mutex
	cookies map[string]*http.Cookie
}

func (j *flatJar) SetCookies(_ *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, c := range cs {
		if c.MaxAge < 0 || c.Value == "" {
			delete(j.cookies, c.Name)
		} else {
			j.cookies[c.Name] = c
		}
	}
}

func (j *flatJar) Cookies(*url.URL) []*http.Cookie {
	j.mu.Lock()
	defer j.mu.Unlock()
	var out []*http.Cookie
	for _, c := range j.cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	return out
}

func (j *flatJar) get(name string) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if c, ok := j.cookies[name]; ok {
		return c.Value
	}
	return ""
}

func flatClient() (*http.Client, *flatJar) {
	jar := &flatJar{cookies: map[string]*http.Cookie{}}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, jar
}

// stepUpConfig is a server whose public URL and cookie domain put applications on
// *.example.test: return URLs there are followed, others ignored.
func stepUpServer(t *testing.T, dbURL string, maxAge time.Duration) *testServer {
	t.Helper()
	cfg := testConfig(t, dbURL)
	cfg.PublicURL, cfg.CookieDomain, cfg.ForwardAuthMFAMaxAge = "http://id.example.test", "example.test", maxAge
	return startServer(t, cfg, nil)
}

var rdField = regexp.MustCompile(`name="rd" value="([^"]*)"`)

// hiddenRD returns the rd a page's forms carry ("" when none).
func hiddenRD(body string) string {
	m := rdField.FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "&amp;", "&")
}

// TestLoginReturnURL: /login?rd= brings the user back to an allowed URL after the
// password (and the code when MFA is on), straight away when already signed in, and
// ignores every URL it may not lead to.
func TestLoginReturnURL(t *testing.T) {
	requireTool(t, "oathtool")
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := stepUpServer(t, dbURL, 0)
		s.signup(t, "alice", "alice@example.com")
		s.signup(t, "bob", "bob@example.com")
		secret, _ := s.enrol(t, s.login(t, "bob"))
		const app = "http://grafana.example.test/d/1?orgId=1&x=y"

		c, jar := flatClient()
		tok := formToken(t, c, s, "/login?rd="+url.QueryEscape(app))
		if got := hiddenRD(getPage(t, c, s, "/login?rd="+url.QueryEscape(app)).Body); got != app {
			t.Fatalf("login page carries rd %q, want %q", got, app)
		}
		req, _ := http.NewRequest("POST", s.URL+"/login", strings.NewReader(url.Values{"csrf_token": {tok}, "login": {"alice"},
			"password": {testPassword}, "rd": {app}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 303 || resp.Header.Get("Location") != app {
			t.Fatalf("password step with rd = %d %q, want 303 %q", resp.StatusCode, resp.Header.Get("Location"), app)
		}
		var sc *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "latchkey_session" {
				sc = ck
			}
		}
		if sc == nil || sc.Domain != "example.test" || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode {
			t.Fatalf("session cookie = %+v, want Domain=example.test, HttpOnly, SameSite=Lax", sc)
		}
		if r := getPage(t, c, s, "/login?rd="+url.QueryEscape(app)); r.Status != 303 || r.Location != app {
			t.Fatalf("signed-in /login?rd = %d %q, want 303 %q", r.Status, r.Location, app)
		}

		bad := []string{"https://evil.example/", "//evil.example/", "http://grafana.example.test@evil.example/",
			"javascript:alert(1)", "http://grafana.example.test\\@evil.example/", "http://evil.example\\.example.test/",
			" http://grafana.example.test/", "http://grafana.example.test/\r\nX: y", "http:%2f%2fevil.example",
			"http://grafana.example.test.evil.example/", "/login?rd=https://evil.example/"}
		for _, rd := range bad {
			if r := getPage(t, c, s, "/login?rd="+url.QueryEscape(rd)); r.Status != 303 || r.Location != "/settings/authentication" {
				t.Errorf("signed-in /login?rd=%q = %d %q, want 303 /settings/authentication", rd, r.Status, r.Location)
			}
			fresh, _ := flatClient()
			tok := formToken(t, fresh, s, "/login")
			r := postPage(t, fresh, s, "/login", url.Values{"csrf_token": {tok}, "login": {"alice"}, "password": {testPassword}, "rd": {rd}})
			if r.Status != 303 || r.Location != "/settings/authentication" {
				t.Errorf("sign-in with rd=%q = %d %q, want 303 /settings/authentication", rd, r.Status, r.Location)
			}
		}
		if jar.get("latchkey_session") == "" {
			t.Fatal("no session cookie kept")
		}

		// MFA on: the code step carries rd, in the form and in the recovery-code link.
		c, _ = flatClient()
		tok = formToken(t, c, s, "/login")
		r := postPage(t, c, s, "/login", url.Values{"csrf_token": {tok}, "login": {"bob"}, "password": {testPassword}, "rd": {app}})
		if want := "/login/mfa?rd=" + url.QueryEscape(app); r.Status != 303 || r.Location != want {
			t.Fatalf("password step of an MFA account = %d %q, want 303 %q", r.Status, r.Location, want)
		}
		pg := getPage(t, c, s, r.Location)
		if hiddenRD(pg.Body) != app || !strings.Contains(pg.Body, `/login/recovery-code?rd=`+url.QueryEscape(app)) {
			t.Fatalf("code page lost rd: %s", pg.Body)
		}
		s.Clock.Advance(30 * time.Second)
		r = postPage(t, c, s, "/login/mfa", url.Values{"csrf_token": {tok}, "code": {oathtool(t, secret, s.Clock.Now())}, "rd": {app}})
		if r.Status != 303 || r.Location != app {
			t.Fatalf("code step with rd = %d %q, want 303 %q", r.Status, r.Location, app)
		}
	})
}

var secretShown = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`)

// TestStepUpPage: /step-up sends a signed-out browser to sign in first; an account
// without MFA sets it up and comes back; an account whose MFA is older than
// forward-auth-mfa-max-age enters a code (or a recovery code) and comes back; wrong
// codes count in the same per-account limit as sign-in.
func TestStepUpPage(t *testing.T) {
	requireTool(t, "oathtool")
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := stepUpServer(t, dbURL, time.Hour)
		s.signup(t, "alice", "alice@example.com")
		s.signup(t, "bob", "bob@example.com")
		secret, codes := s.enrol(t, s.login(t, "bob"))
		const app = "https://wiki.example.test/page"
		stepUp := "/step-up?rd=" + url.QueryEscape(app)

		anon, _ := flatClient()
		if r := getPage(t, anon, s, stepUp); r.Status != 303 || r.Location != "/login?rd="+url.QueryEscape(stepUp) {
			t.Fatalf("signed-out step-up = %d %q, want 303 to sign in and back", r.Status, r.Location)
		}
		if hiddenRD(getPage(t, anon, s, "/login?rd="+url.QueryEscape(stepUp)).Body) != stepUp {
			t.Fatal("the sign-in page does not carry the step-up page as rd")
		}

		// alice has no MFA: set it up, carrying rd, and land back on the app.
		c, _ := flatClient()
		tok := formToken(t, c, s, "/login")
		r := postPage(t, c, s, "/login", url.Values{"csrf_token": {tok}, "login": {"alice"}, "password": {testPassword}, "rd": {stepUp}})
		if r.Status != 303 || r.Location != stepUp {
			t.Fatalf("sign-in towards step-up = %d %q", r.Status, r.Location)
		}
		pg := getPage(t, c, s, stepUp)
		if pg.Status != 200 || !strings.Contains(pg.Body, "Add multiple-factor authentication") || hiddenRD(pg.Body) != app ||
			!strings.Contains(pg.Body, "wiki.example.test") {
			t.Fatalf("step-up without MFA = %d %s", pg.Status, pg.Body)
		}
		tok = formToken(t, c, s, stepUp)
		r = postPage(t, c, s, "/settings/authentication/totp", url.Values{"csrf_token": {tok}, "rd": {app}})
		if want := "/settings/authentication?rd=" + url.QueryEscape(app) + "#setup"; r.Status != 303 || r.Location != want {
			t.Fatalf("setup = %d %q, want %q", r.Status, r.Location, want)
		}
		pg = getPage(t, c, s, strings.TrimSuffix(r.Location, "#setup"))
		m := secretShown.FindStringSubmatch(pg.Body)
		if m == nil || hiddenRD(pg.Body) != app {
			t.Fatalf("settings page during setup lost the secret or rd: %s", pg.Body)
		}
		aliceSecret := strings.ReplaceAll(m[1], " ", "")
		r = postPage(t, c, s, "/settings/authentication/totp/confirm", url.Values{"csrf_token": {tok}, "rd": {app},
			"code": {oathtool(t, aliceSecret, s.Clock.Now())}})
		if r.Status != 200 || !strings.Contains(r.Body, `href="`+app+`"`) || !strings.Contains(r.Body, "continue to wiki.example.test") {
			t.Fatalf("codes page = %d, want a link on to %s: %s", r.Status, app, r.Body)
		}
		if r := getPage(t, c, s, stepUp); r.Status != 303 || r.Location != app {
			t.Fatalf("step-up after enrolment = %d %q, want 303 %q", r.Status, r.Location, app)
		}

		// bob signed in with a code; after the max age the step-up asks again.
		c, _ = flatClient()
		tok = formToken(t, c, s, "/login")
		postPage(t, c, s, "/login", url.Values{"csrf_token": {tok}, "login": {"bob"}, "password": {testPassword}})
		s.Clock.Advance(30 * time.Second)
		if r := postPage(t, c, s, "/login/mfa", url.Values{"csrf_token": {tok}, "code": {oathtool(t, secret, s.Clock.Now())}}); r.Status != 303 {
			t.Fatalf("bob's code step = %d %q", r.Status, r.Location)
		}
		if r := getPage(t, c, s, stepUp); r.Status != 303 || r.Location != app {
			t.Fatalf("fresh MFA step-up = %d %q, want straight on", r.Status, r.Location)
		}
		s.Clock.Advance(time.Hour + time.Minute)
		pg = getPage(t, c, s, stepUp)
		if pg.Status != 200 || !strings.Contains(pg.Body, `name="code"`) || hiddenRD(pg.Body) != app {
			t.Fatalf("stale MFA step-up = %d %s", pg.Status, pg.Body)
		}
		tok = formToken(t, c, s, stepUp)
		if r := postPage(t, c, s, "/step-up", url.Values{"csrf_token": {tok}, "code": {"000000"}, "rd": {app}}); r.Status != 401 || hiddenRD(r.Body) != app {
			t.Fatalf("wrong step-up code = %d, want 401 with rd kept", r.Status)
		}
		if r := postPage(t, c, s, "/step-up", url.Values{"csrf_token": {tok}, "code": {oathtool(t, secret, s.Clock.Now())}, "rd": {app}}); r.Status != 303 || r.Location != app {
			t.Fatalf("step-up code = %d %q, want 303 %q", r.Status, r.Location, app)
		}
		s.Clock.Advance(2 * time.Hour)
		if r := postPage(t, c, s, "/step-up", url.Values{"csrf_token": {tok}, "recovery_code": {codes[0]}, "rd": {app}}); r.Status != 303 || r.Location != app {
			t.Fatalf("step-up recovery code = %d %q, want 303 %q", r.Status, r.Location, app)
		}
		if r := getPage(t, c, s, stepUp); r.Status != 303 || r.Location != app {
			t.Fatalf("step-up after a recovery code = %d %q, want straight on", r.Status, r.Location)
		}

		// Five wrong codes lock the account's second factor for step-up as for sign-in.
		s.Clock.Advance(2 * time.Hour)
		for i := range 5 {
			if r := postPage(t, c, s, "/step-up", url.Values{"csrf_token": {tok}, "code": {"000000"}}); r.Status != 401 {
				t.Fatalf("wrong code %d = %d, want 401", i+1, r.Status)
			}
		}
		r = postPage(t, c, s, "/step-up", url.Values{"csrf_token": {tok}, "code": {oathtool(t, secret, s.Clock.Now())}})
		if r.Status != 429 {
			t.Fatalf("right code during the lock = %d, want 429", r.Status)
		}
		if p := s.pending(t, "bob"); s.mfa(t, p, "code", oathtool(t, secret, s.Clock.Now())).Status != 429 {
			t.Fatal("the step-up lock does not hold for sign-in")
		}
	})
}
