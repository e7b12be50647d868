package web_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/apptest"
	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/totp"
)

// browser keeps cookies and the last page's form token, as a browser would.
type browser struct {
	t       *testing.T
	e       *apptest.Env
	cookies map[string]string
	csrf    string
	body    string
}

func newBrowser(t *testing.T, e *apptest.Env) *browser {
	return &browser{t: t, e: e, cookies: map[string]string{}}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]*)"`)

func (b *browser) do(method, path string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range b.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	rec := httptest.NewRecorder()
	b.e.Handler.ServeHTTP(rec, req)
	for _, c := range rec.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	b.body = rec.Body.String()
	if m := csrfField.FindStringSubmatch(b.body); m != nil {
		b.csrf = html.UnescapeString(m[1])
	}
	return rec
}

// get loads a page and wants status.
func (b *browser) get(path string, status int) string {
	b.t.Helper()
	rec := b.do("GET", path, nil)
	if rec.Code != status {
		b.t.Fatalf("GET %s = %d, want %d; body %.300s", path, rec.Code, status, rec.Body)
	}
	return rec.Body.String()
}

// post submits a form with the last page's token and wants status; for a redirect it
// returns the Location, otherwise the page.
func (b *browser) post(path string, status int, kv ...string) string {
	b.t.Helper()
	form := url.Values{"csrf_token": {b.csrf}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Add(kv[i], kv[i+1])
	}
	rec := b.do("POST", path, form)
	if rec.Code != status {
		b.t.Fatalf("POST %s = %d, want %d; body %.600s", path, rec.Code, status, rec.Body)
	}
	if status == http.StatusSeeOther {
		return rec.Header().Get("Location")
	}
	return rec.Body.String()
}

func wantIn(t *testing.T, what, page string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(page, p) {
			t.Fatalf("%s lacks %q:\n%.1500s", what, p, page)
		}
	}
}

// TestPagesStory: sign up, enrol, sign in with a code and a recovery code, re-
// authenticate, regenerate, download, change the password, remove, sign out.
func TestPagesStory(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	b := newBrowser(t, e)
	if loc := b.do("GET", "/", nil).Header().Get("Location"); loc != "/login" {
		t.Fatalf("GET / signed out goes to %q, want /login", loc)
	}
	b.get("/signup", 200)
	page := b.post("/signup", 400, "username", "x", "email", "nope", "password", "short")
	wantIn(t, "sign-up with problems", page, "Please correct the marked fields.")
	b.get("/signup", 200)
	if loc := b.post("/signup", 303, "username", "erin", "email", "erin@example.com", "password", apptest.Password); loc != "/settings/authentication?done=signed_up" && !strings.HasPrefix(loc, "/settings/authentication") {
		t.Fatalf("sign-up goes to %q", loc)
	}
	if b.do("POST", "/logout", url.Values{"csrf_token": {"forged"}}).Code != http.StatusForbidden {
		t.Fatal("a form with a wrong token was accepted")
	}

	// Enrolment on the settings page.
	b.get("/settings/authentication", 200)
	b.post("/settings/authentication/totp", 303)
	page = b.get("/settings/authentication", 200)
	wantIn(t, "setup page", page, "<svg", "f-code")
	st, err := e.Service.PendingSetup(context.Background(), principalOf(t, e, b))
	if err != nil {
		t.Fatal(err)
	}
	page = b.post("/settings/authentication/totp/confirm", 400, "code", "000000")
	wantIn(t, "a wrong code", page, "f-code")
	page = b.post("/settings/authentication/totp/confirm", 200, "code", totp.Code(st.Secret, totp.Step(e.Clock.Now())))
	codes := regexp.MustCompile(`[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4}`).FindAllString(page, -1)
	if len(codes) < 16 {
		t.Fatalf("recovery codes page shows %d codes:\n%.1500s", len(codes), page)
	}
	form := []string{}
	for _, c := range codes[:16] {
		form = append(form, "code", c)
	}
	rec := b.do("POST", "/settings/authentication/recovery-codes.txt", withToken(b, form...))
	if rec.Code != 200 || !strings.Contains(rec.Header().Get("Content-Disposition"), "latchkey-recovery-codes.txt") {
		t.Fatalf("download = %d %v", rec.Code, rec.Header())
	}
	page = b.get("/settings/authentication", 200)
	wantIn(t, "settings with MFA on", page, `<strong id="rc-remaining">16</strong> of 16`)
	e.Clock.Advance(30 * time.Second)

	// Sign out, and back in with a code, then with a recovery code.
	b.post("/logout", 303)
	b.get("/login", 200)
	b.post("/login", 401, "login", "erin", "password", "wrong password")
	if loc := b.post("/login", 303, "login", "erin", "password", apptest.Password); loc != "/login/mfa" {
		t.Fatalf("password step goes to %q, want /login/mfa", loc)
	}
	b.get("/login/mfa", 200)
	b.post("/login/mfa", 401, "code", "000000")
	b.post("/login/mfa", 303, "code", totp.Code(st.Secret, totp.Step(e.Clock.Now())))
	b.get("/settings/authentication", 200)
	b.post("/logout", 303)
	b.get("/login", 200)
	b.post("/login", 303, "login", "erin", "password", apptest.Password)
	b.get("/login/recovery-code", 200)
	b.post("/login/recovery-code", 303, "recovery_code", strings.ToUpper(codes[0]))
	page = b.get("/settings/authentication", 200)
	wantIn(t, "settings after a recovery code", page, `<strong id="rc-remaining">15</strong> of 16`)

	// Past the re-authentication window, a sensitive form asks for it first.
	e.Clock.Advance(11 * time.Minute)
	if loc := b.post("/settings/authentication/recovery-codes/regenerate", 303, "confirm", "yes"); !strings.HasPrefix(loc, "/settings/reauth") {
		t.Fatalf("regenerate without a recent sign-in goes to %q", loc)
	}
	b.get("/settings/reauth", 200)
	b.post("/settings/reauth", 401, "password", "wrong password", "code", totp.Code(st.Secret, totp.Step(e.Clock.Now())))
	b.post("/settings/reauth", 303, "password", apptest.Password, "code", totp.Code(st.Secret, totp.Step(e.Clock.Now())))
	b.get("/settings/authentication", 200)
	b.post("/settings/authentication/recovery-codes/regenerate", 400)
	page = b.post("/settings/authentication/recovery-codes/regenerate", 200, "confirm", "yes")
	wantIn(t, "regenerated codes", page, "recovery-codes.txt")
	b.get("/settings/authentication", 200)
	b.post("/settings/password", 400, "current_password", "wrong password", "new_password", "another good password")
	b.post("/settings/password", 303, "current_password", apptest.Password, "new_password", "another good password")
	b.get("/settings/authentication", 200)
	b.post("/settings/authentication/remove", 400)
	b.post("/settings/authentication/remove", 303, "confirm", "yes")
	page = b.get("/settings/authentication", 200)
	if strings.Contains(page, "rc-remaining") {
		t.Fatal("the settings page still shows recovery codes after removal")
	}
	b.get("/settings/security-log", 200)
	b.post("/logout", 303)
	if loc := b.do("GET", "/settings/authentication", nil).Header().Get("Location"); !strings.HasPrefix(loc, "/login?next=") {
		t.Fatalf("settings signed out goes to %q", loc)
	}
}

func withToken(b *browser, kv ...string) url.Values {
	form := url.Values{"csrf_token": {b.csrf}}
	for i := 0; i+1 < len(kv); i += 2 {
		form.Add(kv[i], kv[i+1])
	}
	return form
}

func principalOf(t *testing.T, e *apptest.Env, b *browser) *auth.Principal {
	t.Helper()
	return e.Principal(t, b.cookies["latchkey_session"])
}

// TestSessionsTokensKeysAndRecovery: the other settings pages, the forgot and reset
// forms, and recovery through the pages with an operator's decision.
func TestSessionsTokensKeysAndRecovery(t *testing.T) {
	e := apptest.New(t, apptest.Options{})
	if _, err := e.Service.CreateUser(context.Background(), apptest.Client, "root", "root@example.com", apptest.Password, true); err != nil {
		t.Fatal(err)
	}
	e.SignUp(t, "finn")
	e.SignIn(t, "finn", nil) // a second session to revoke
	b := newBrowser(t, e)
	b.get("/login?next=/settings/sessions", 200)
	if loc := b.post("/login", 303, "login", "finn", "password", apptest.Password, "next", "/settings/sessions"); loc != "/settings/sessions" {
		t.Fatalf("sign-in with next goes to %q", loc)
	}
	page := b.get("/settings/sessions", 200)
	ids := regexp.MustCompile(`/settings/sessions/(\d+)/revoke`).FindAllStringSubmatch(page, -1)
	if len(ids) != 2 {
		t.Fatalf("sessions page offers %d revocations, want 2", len(ids))
	}
	// The other session was opened first, so it has the lower ID.
	other := ids[0][1]
	if len(ids[1][1]) < len(other) || len(ids[1][1]) == len(other) && ids[1][1] < other {
		other = ids[1][1]
	}
	b.post("/settings/sessions/"+other+"/revoke", 303)
	b.get("/settings/sessions", 200)
	b.post("/settings/sessions/99999/revoke", 404)

	b.get("/settings/tokens", 200)
	b.post("/settings/tokens", 400, "name", "ci", "expiry", "days", "expires_in_days", "0")
	page = b.post("/settings/tokens", 200, "name", "ci", "expiry", "never")
	wantIn(t, "new token", page, "lk_")
	page = b.get("/settings/tokens", 200)
	tid := regexp.MustCompile(`/settings/tokens/(\d+)/revoke`).FindStringSubmatch(page)
	if tid == nil {
		t.Fatalf("tokens page:\n%.1500s", page)
	}
	b.post("/settings/tokens/"+tid[1]+"/revoke", 303)

	key := apptest.NewSSHKey(t)
	b.get("/settings/ssh-keys", 200)
	page = b.post("/settings/ssh-keys", 400, "title", "laptop", "public_key", "not a key")
	wantIn(t, "bad key", page, "not a key")
	b.post("/settings/ssh-keys", 303, "title", "laptop", "public_key", key.AuthorizedKey)
	page = b.get("/settings/ssh-keys", 200)
	kid := regexp.MustCompile(`/settings/ssh-keys/(\d+)/delete`).FindStringSubmatch(page)
	if kid == nil {
		t.Fatalf("ssh keys page:\n%.1500s", page)
	}
	b.get("/admin/recovery", 403)
	b.post("/logout", 303)

	// Forgot and reset.
	b.get("/password/forgot", 200)
	b.post("/password/forgot", 303, "email", "finn@example.com")
	link := e.LinkToken(t, "finn@example.com", "/password/reset")
	b.get("/password/reset?token="+link, 200)
	b.post("/password/reset", 400, "token", link, "new_password", "short")
	b.post("/password/reset", 303, "token", link, "new_password", "a brand new password")

	// Recovery: open, verify with the key, an operator approves.
	b.get("/recover", 200)
	page = b.post("/recover", 200, "login", "finn")
	id := regexp.MustCompile(`name="request_id" value="([^"]+)"`).FindStringSubmatch(page)
	challenge := regexp.MustCompile(`name="challenge" value="([^"]+)"`).FindStringSubmatch(page)
	expires := regexp.MustCompile(`name="expires_at" value="([^"]+)"`).FindStringSubmatch(page)
	if id == nil || challenge == nil || expires == nil {
		t.Fatalf("challenge page:\n%.2000s", page)
	}
	ch := html.UnescapeString(challenge[1])
	b.post("/recover/verify", 400, "request_id", id[1], "challenge", ch, "expires_at", expires[1],
		"ssh_signature", key.Sign(t, "latchkey-recovery", "something else"))
	b.post("/recover/verify", 200, "request_id", id[1], "challenge", ch, "expires_at", expires[1],
		"ssh_signature", key.Sign(t, "latchkey-recovery", ch))

	admin := newBrowser(t, e)
	admin.get("/login", 200)
	admin.post("/login", 303, "login", "root", "password", apptest.Password)
	page = admin.get("/admin/recovery", 200)
	wantIn(t, "admin page", page, id[1])
	admin.post("/admin/recovery/"+id[1]+"/approve", 400, "reason", "")
	admin.post("/admin/recovery/"+id[1]+"/approve", 303, "reason", "key on file")

	// A second request, cancelled from the mailed link.
	b.get("/recover", 200)
	b.post("/recover", 200, "login", "finn")
	cancel := e.LinkToken(t, "finn@example.com", "/recover/cancel")
	b.get("/recover/cancel?token="+cancel, 200)
	b.post("/recover/cancel", 200, "token", cancel)
	b.get("/no/such/page", 404)
}
