package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// chromiumPath finds Debian's Chromium, skipping (or failing under
// LATCHKEY_TEST_REQUIRE_ALL=1) when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "browser tests need Chromium at /usr/bin/chromium (apt-get install chromium)"
	if os.Getenv("LATCHKEY_TEST_REQUIRE_ALL") == "1" {
		t.Fatal(msg + "; LATCHKEY_TEST_REQUIRE_ALL=1 makes this a failure")
	}
	t.Skip(msg)
	return ""
}

// tab is one headless Chromium tab with a fresh profile, pointed at a test server.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

const desktopWidth, phoneWidth = 1280, 375

func newTab(t *testing.T, base string) *tab {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(desktopWidth, 900),
	}
	ctx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelTab(); cancelAlloc() })
	b := &tab{t: t, ctx: ctx, base: base}
	b.do(chromedp.EmulateViewport(desktopWidth, 900))
	return b
}

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatalf("browser at %s: %v", b.location(), err)
	}
}

func (b *tab) location() string {
	loc, err := chromedp.Run(b.ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return loc
}

// open loads a path of the server.
func (b *tab) open(path string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base + path))
}

// submit clicks a button that sends a form and waits for the page it leads to.
func (b *tab) submit(button string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(button)))); err != nil {
		b.t.Fatalf("clicking %s at %s: %v", button, b.location(), err)
	}
}

func (b *tab) fill(id, value string) {
	b.t.Helper()
	b.do(chromedp.Clear(chromedp.ID(id)), chromedp.SendKeys(chromedp.ID(id), value))
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("reading %s at %s: %v", sel, b.location(), err)
	}
	return strings.TrimSpace(s)
}

// has reports whether an element exists on the current page, without waiting for it.
func (b *tab) has(sel string) bool {
	b.t.Helper()
	n, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf("document.querySelector(%q) !== null", sel)))
	if err != nil {
		b.t.Fatalf("looking for %s: %v", sel, err)
	}
	return n
}

// wantPath fails unless the tab shows path (and, if given, the query).
func (b *tab) wantPath(want string) {
	b.t.Helper()
	u, err := url.Parse(b.location())
	if err != nil {
		b.t.Fatalf("location: %v", err)
	}
	got := u.Path
	if strings.Contains(want, "?") {
		got += "?" + u.RawQuery
	}
	if got != want {
		b.t.Fatalf("page = %s, want %s; body: %s", got, want, b.text("main"))
	}
}

// screenshot writes light and dark, phone and desktop PNGs of the current page into
// docs/screenshots when LATCHKEY_SCREENSHOTS=1, so ordinary runs leave the tree clean.
func (b *tab) screenshot(name string) {
	b.t.Helper()
	if os.Getenv("LATCHKEY_SCREENSHOTS") != "1" {
		return
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	for _, scheme := range []string{"light", "dark"} {
		for _, w := range []struct {
			name  string
			width int64
		}{{"phone", phoneWidth}, {"desktop", desktopWidth}} {
			b.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
				_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
					Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}})
				return err
			}))
			opts := []chromedp.EmulateViewportOption{}
			if w.width == phoneWidth {
				opts = append(opts, chromedp.EmulateMobile)
			}
			b.do(chromedp.EmulateViewport(w.width, 800, opts...))
			png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
			if err != nil {
				b.t.Fatalf("screenshot %s: %v", name, err)
			}
			file := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.png", name, w.name, scheme))
			if err := os.WriteFile(file, png, 0o644); err != nil {
				b.t.Fatal(err)
			}
		}
	}
	b.do(chromedp.EmulateViewport(desktopWidth, 900), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{})
		return err
	}))
}

// download clicks a button whose answer is a file and returns the saved file's name
// and content.
func (b *tab) download(button string) (string, []byte) {
	b.t.Helper()
	dir := b.t.TempDir()
	b.do(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		enabled := true
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dir, EventsEnabled: &enabled})
		return err
	}))
	begin := chromedp.Events(b.ctx, browser.DownloadWillBegin)
	progress := chromedp.Events(b.ctx, browser.DownloadProgress)
	b.do(chromedp.Click(chromedp.CSS(button)))
	var name string
	for ev, err := range begin {
		if err != nil {
			b.t.Fatalf("waiting for the download: %v", err)
		}
		name = ev.SuggestedFilename
		break
	}
	for ev, err := range progress {
		if err != nil {
			b.t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			b.t.Fatalf("download canceled")
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		b.t.Fatalf("reading the download: %v", err)
	}
	return name, data
}

// codesIn returns every recovery code in text, in order.
func codesIn(text string) []string {
	var out []string
	for _, f := range strings.Fields(text) {
		if codeFormat.MatchString(f) {
			out = append(out, f)
		}
	}
	return out
}

// browserSignIn runs the password step in the tab.
func (b *tab) signIn(login string) {
	b.t.Helper()
	b.open("/login")
	b.fill("f-login", login)
	b.fill("f-password", testPassword)
	b.submit(`form[action="/login"] button`)
}

func (b *tab) signOut() {
	b.t.Helper()
	b.submit(`form[action="/logout"] button`)
	b.wantPath("/login?done=signed_out")
}

func (s *testServer) mfaEnabled(t *testing.T, login string) bool {
	t.Helper()
	u, err := s.App.Service.UserByLogin(context.Background(), login)
	if err != nil {
		t.Fatalf("UserByLogin(%q): %v", login, err)
	}
	st, err := s.App.Service.MFAStatus(context.Background(), u.ID)
	if err != nil {
		t.Fatalf("MFAStatus: %v", err)
	}
	return st.Enabled
}

// TestBrowserSeedStory walks SPEC §2 items 1–6 through the pages in a real browser:
// sign up, add MFA with a real TOTP code, download the codes, sign in with a code and
// with a recovery code, re-authenticate, regenerate, remove.
func TestBrowserSeedStory(t *testing.T) {
	chromiumPath(t)
	requireTool(t, "oathtool")
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		b := newTab(t, s.URL)
		shots := strings.HasSuffix(t.Name(), "/sqlite")
		shoot := func(name string) {
			if shots {
				b.screenshot(name)
			}
		}

		// Sign up: the account is created and signed in.
		b.open("/")
		b.wantPath("/login")
		shoot("login")
		b.open("/signup")
		shoot("signup")
		b.fill("f-username", "alice")
		b.fill("f-email", "alice@example.com")
		b.fill("f-password", testPassword)
		b.submit(`form[action="/signup"] button`)
		b.wantPath("/settings/authentication?done=signed_up")
		shoot("authentication-off")

		// Add multiple-factor authentication: the QR code and the manual details.
		b.submit(`form[action="/settings/authentication/totp"] button`)
		b.wantPath("/settings/authentication")
		if !b.has(".qr svg") {
			t.Fatal("setup page shows no QR code")
		}
		shown := b.text("#totp-secret")
		secret := strings.ReplaceAll(shown, " ", "")
		if len(secret) != 32 || !regexp.MustCompile(`^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$`).MatchString(shown) {
			t.Fatalf("secret on the page = %q, want 32 base32 characters in groups of four", shown)
		}
		details := b.text(".manual dl")
		for _, want := range []string{"alice", "Latchkey", "SHA1", "6", "30 seconds"} {
			if !strings.Contains(details, want) {
				t.Fatalf("manual details %q lack %q", details, want)
			}
		}
		shoot("mfa-setup")

		// A wrong code: an error next to Code, and nothing changes.
		right := oathtool(t, secret, s.Clock.Now())
		n, _ := strconv.Atoi(right)
		b.fill("f-code", fmt.Sprintf("%06d", (n+1)%1000000))
		b.submit(`form[action="/settings/authentication/totp/confirm"] button`)
		if msg := b.text("#e-code"); !strings.Contains(msg, "not valid") {
			t.Fatalf("error next to Code = %q", msg)
		}
		if got, _ := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID("f-code"), "aria-describedby")); !strings.Contains(got.Value, "e-code") {
			t.Fatalf("Code field aria-describedby = %q, want it to name e-code", got.Value)
		}
		if again := strings.ReplaceAll(b.text("#totp-secret"), " ", ""); again != secret {
			t.Fatalf("secret changed after a wrong code: %q, want %q", again, secret)
		}
		if s.mfaEnabled(t, "alice") {
			t.Fatal("a wrong code turned MFA on")
		}
		shoot("mfa-setup-wrong-code")

		// The right code: MFA on, 16 recovery codes shown once.
		b.fill("f-code", right)
		b.submit(`form[action="/settings/authentication/totp/confirm"] button`)
		codes := codesIn(b.text("#recovery-codes"))
		if len(codes) != 16 {
			t.Fatalf("recovery codes on the page = %q, want 16", codes)
		}
		if !s.mfaEnabled(t, "alice") {
			t.Fatal("MFA is not on after Save")
		}
		shoot("recovery-codes")

		// Download codes: the file holds exactly the codes shown.
		name, data := b.download(`form[action="/settings/authentication/recovery-codes.txt"] button`)
		if name != "latchkey-recovery-codes.txt" {
			t.Fatalf("download name = %q, want latchkey-recovery-codes.txt", name)
		}
		if got := codesIn(string(data)); !slices.Equal(got, codes) {
			t.Fatalf("codes in the file = %q, want %q", got, codes)
		}
		if !strings.Contains(string(data), "alice") || !strings.HasPrefix(string(data), "Latchkey") {
			t.Fatalf("file header lacks the site or the account:\n%s", data)
		}

		b.open("/settings/authentication")
		if got := b.text("#rc-remaining"); got != "16" {
			t.Fatalf("remaining recovery codes = %q, want 16", got)
		}
		shoot("authentication-on")
		b.signOut()

		// Sign in with a TOTP code. The enrolment step is used, so move to the next one.
		s.Clock.Advance(30 * time.Second)
		b.signIn("alice")
		b.wantPath("/login/mfa")
		link := b.text(`a[href^="/login/recovery-code"]`)
		if link != "Lost access to your multiple-factor authentication app? Use a recovery code" {
			t.Fatalf("recovery link text = %q", link)
		}
		shoot("login-mfa")
		b.fill("f-code", oathtool(t, secret, s.Clock.Now()))
		b.submit(`form[action="/login/mfa"] button`)
		b.wantPath("/settings/authentication")
		b.signOut()

		// Sign in with a recovery code: a notice with what is left.
		b.signIn("alice")
		b.wantPath("/login/mfa")
		b.submit(`a[href^="/login/recovery-code"]`)
		b.wantPath("/login/recovery-code")
		shoot("login-recovery-code")
		b.fill("f-recovery_code", strings.ToUpper(codes[0]))
		b.submit(`form[action="/login/recovery-code"] button`)
		b.wantPath("/settings/authentication?done=recovery_used")
		if got := b.text("#rc-remaining"); got != "15" {
			t.Fatalf("remaining recovery codes = %q, want 15", got)
		}

		// Regenerate after the re-authentication window: the form asks again first.
		s.Clock.Advance(11 * time.Minute)
		b.do(chromedp.Click(chromedp.ID("f-confirm_regenerate")))
		b.submit(`form[action="/settings/authentication/recovery-codes/regenerate"] button`)
		b.wantPath("/settings/reauth?next=%2Fsettings%2Fauthentication")
		shoot("reauth")
		b.fill("f-password", testPassword)
		b.fill("f-code", oathtool(t, secret, s.Clock.Now()))
		b.submit(`form[action="/settings/reauth"] button`)
		b.wantPath("/settings/authentication?done=reauthenticated")
		b.do(chromedp.Click(chromedp.ID("f-confirm_regenerate")))
		b.submit(`form[action="/settings/authentication/recovery-codes/regenerate"] button`)
		fresh := codesIn(b.text("#recovery-codes"))
		if len(fresh) != 16 || slices.Contains(fresh, codes[1]) {
			t.Fatalf("regenerated codes = %q", fresh)
		}
		// An earlier code stopped working at once; a new one works.
		s.mfa(t, s.pending(t, "alice"), "recovery_code", codes[1]).want(t, 401, "invalid_code")
		s.mfa(t, s.pending(t, "alice"), "recovery_code", fresh[0]).want(t, 200)

		// Remove, behind its confirmation box (the browser will not send the form
		// without it; TestBrowserFormProtection checks the server refuses it too).
		b.open("/settings/authentication")
		b.do(chromedp.Click(chromedp.ID("f-confirm_remove")))
		b.submit(`form[action="/settings/authentication/remove"] button.danger`)
		b.wantPath("/settings/authentication?done=mfa_removed")
		if s.mfaEnabled(t, "alice") {
			t.Fatal("MFA is still on after Remove")
		}
		if !b.has(`form[action="/settings/authentication/totp"] button`) {
			t.Fatal("no Add multiple-factor authentication button after Remove")
		}

		b.open("/settings/sessions")
		shoot("sessions")
		b.open("/settings/security-log")
		if log := b.text("table"); !strings.Contains(log, "mfa_enabled") || !strings.Contains(log, "mfa_disabled") {
			t.Fatalf("security log lacks the MFA events: %s", log)
		}
		shoot("security-log")
		b.open("/no/such/page")
		if b.text("h1") != "Page not found" {
			t.Fatalf("404 page heading = %q", b.text("h1"))
		}
	})
}

// TestBrowserCrossSitePost has a page on another site post a settings form to
// Latchkey in a signed-in browser: the request is refused and nothing changes.
func TestBrowserCrossSitePost(t *testing.T) {
	chromiumPath(t)
	s := startServer(t, testConfig(t, "sqlite:"+filepath.Join(t.TempDir(), "lk.db")), nil)
	s.signup(t, "mallory-target", "target@example.com")
	b := newTab(t, s.URL)
	b.signIn("mallory-target")
	b.wantPath("/settings/authentication")

	// "localhost" and "127.0.0.1" are different sites to the browser.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	evil := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/settings/authentication/totp">`+
			`<input type="hidden" name="csrf_token" value="guess"><button id="go">Win a prize</button></form>`, s.URL)
	})}
	go func() { _ = evil.Serve(l) }()
	t.Cleanup(func() { _ = evil.Close() })
	_, port, _ := net.SplitHostPort(l.Addr().String())

	b.do(chromedp.Navigate("http://localhost:" + port + "/"))
	resp, err := chromedp.RunResponse(b.ctx, chromedp.Click(chromedp.ID("go")))
	if err != nil {
		t.Fatalf("submitting the cross-site form: %v", err)
	}
	if resp.Status != http.StatusForbidden {
		t.Fatalf("cross-site POST status = %d, want 403", resp.Status)
	}
	b.open("/settings/authentication")
	if b.has("#totp-secret") {
		t.Fatal("the cross-site POST started an MFA setup")
	}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// formToken fetches a page with c and returns its csrf_token.
func formToken(t *testing.T, c *http.Client, s *testServer, path string) string {
	t.Helper()
	resp, err := c.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := csrfField.FindSubmatch(body)
	if m == nil {
		t.Fatalf("GET %s (%d): no csrf_token in the page", path, resp.StatusCode)
	}
	return string(m[1])
}

// postForm sends a form the way a browser without Origin or Sec-Fetch-Site would.
func postForm(t *testing.T, c *http.Client, s *testServer, path string, form url.Values, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// TestBrowserFormProtection checks both CSRF layers of the pages without a browser:
// http.CrossOriginProtection refuses a foreign Origin, and the form token refuses a
// request that carries neither Origin nor Sec-Fetch-Site (an old browser) unless it
// has the page's csrf_token. It also checks the codes download refuses what is not a
// recovery code.
func TestBrowserFormProtection(t *testing.T) {
	s := startServer(t, testConfig(t, "sqlite:"+filepath.Join(t.TempDir(), "lk.db")), nil)
	s.signup(t, "bob", "bob@example.com")
	c := jarClient(t)
	tok := formToken(t, c, s, "/login")
	creds := url.Values{"login": {"bob"}, "password": {testPassword}}
	with := func(extra url.Values) url.Values {
		v := url.Values{}
		for k, x := range creds {
			v[k] = x
		}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}

	cases := []struct {
		name string
		form url.Values
		hdr  map[string]string
		want int
	}{
		{"foreign origin with the right token", with(url.Values{"csrf_token": {tok}}), map[string]string{"Origin": "https://evil.example"}, 403},
		{"cross-site fetch metadata", with(url.Values{"csrf_token": {tok}}), map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"no headers, no token", with(nil), nil, 403},
		{"no headers, wrong token", with(url.Values{"csrf_token": {"AAAA" + tok[4:]}}), nil, 403},
		{"no headers, right token", with(url.Values{"csrf_token": {tok}}), nil, 303},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := postForm(t, c, s, "/login", tc.form, tc.hdr)
			if resp.StatusCode != tc.want {
				t.Fatalf("POST /login status = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}

	// Signed in, the token is bound to the session cookie.
	tok = formToken(t, c, s, "/settings/authentication")
	if resp := postForm(t, c, s, "/settings/authentication/totp", url.Values{}, nil); resp.StatusCode != 403 {
		t.Fatalf("setup without a token = %d, want 403", resp.StatusCode)
	}
	if resp := postForm(t, c, s, "/settings/authentication/totp", url.Values{"csrf_token": {tok}}, nil); resp.StatusCode != 303 {
		t.Fatalf("setup with the token = %d, want 303", resp.StatusCode)
	}

	// The download serves recovery codes only.
	good := "abcd-efgh-jkmn-pqrs"
	for _, tc := range []struct {
		name  string
		codes []string
		want  int
	}{
		{"a recovery code", []string{good}, 200},
		{"script", []string{"<script>alert(1)</script>"}, 400},
		{"upper case", []string{strings.ToUpper(good)}, 400},
		{"no codes", nil, 400},
		{"seventeen codes", slices.Repeat([]string{good}, 17), 400},
	} {
		t.Run("download "+tc.name, func(t *testing.T) {
			resp := postForm(t, c, s, "/settings/authentication/recovery-codes.txt", url.Values{"csrf_token": {tok}, "code": tc.codes}, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("download status = %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == 200 {
				h := resp.Header
				if h.Get("Content-Disposition") != `attachment; filename="latchkey-recovery-codes.txt"` ||
					h.Get("Content-Type") != "text/plain; charset=utf-8" || h.Get("Cache-Control") != "no-store" {
					t.Fatalf("download headers = %v", h)
				}
			}
		})
	}

	// The destructive forms need their confirmation box even without a browser.
	for _, path := range []string{"/settings/authentication/remove", "/settings/authentication/recovery-codes/regenerate"} {
		if resp := postForm(t, c, s, path, url.Values{"csrf_token": {tok}}, nil); resp.StatusCode != 400 {
			t.Fatalf("POST %s without confirm = %d, want 400", path, resp.StatusCode)
		}
	}

	// next= never leaves the site.
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/\\evil.example"} {
		fresh := jarClient(t)
		tok := formToken(t, fresh, s, "/login")
		resp := postForm(t, fresh, s, "/login", with(url.Values{"csrf_token": {tok}, "next": {next}}), nil)
		if loc := resp.Header.Get("Location"); loc != "/settings/authentication" {
			t.Fatalf("login with next=%q redirects to %q, want /settings/authentication", next, loc)
		}
	}
}

// TestBrowserTooManyAttempts checks the code page's answer to a locked account: the
// sixth wrong code in a row gets "Too many attempts" with the wait and Retry-After.
func TestBrowserTooManyAttempts(t *testing.T) {
	requireTool(t, "oathtool")
	s := startServer(t, testConfig(t, "sqlite:"+filepath.Join(t.TempDir(), "lk.db")), nil)
	s.signup(t, "carol", "carol@example.com")
	s.enrol(t, s.login(t, "carol"))

	c := jarClient(t)
	tok := formToken(t, c, s, "/login")
	resp := postForm(t, c, s, "/login", url.Values{"csrf_token": {tok}, "login": {"carol"}, "password": {testPassword}}, nil)
	if loc := resp.Header.Get("Location"); resp.StatusCode != 303 || loc != "/login/mfa" {
		t.Fatalf("password step = %d %q, want 303 /login/mfa", resp.StatusCode, loc)
	}
	for i := range 6 {
		req, _ := http.NewRequest("POST", s.URL+"/login/mfa", strings.NewReader(url.Values{"csrf_token": {tok}, "code": {"000000"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := http.StatusUnauthorized
		if i == 5 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("wrong code %d: status %d, want %d", i+1, resp.StatusCode, want)
		}
		if i == 5 && (!strings.Contains(string(body), "Too many attempts") || !strings.Contains(string(body), "Try again in 30 seconds") ||
			resp.Header.Get("Retry-After") != "30") {
			t.Fatalf("locked page: Retry-After %q, body %s", resp.Header.Get("Retry-After"), body)
		}
	}
}
