package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/authz"
	"github.com/latchkey/latchkey/internal/testenv"
)

// nginxSnippet is the nginx configuration of README.md's forward-auth section,
// verbatim: the test runs what operators copy.
func nginxSnippet(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "<!-- nginx-forward-auth: used verbatim by internal/cli/nginx_test.go -->\n```nginx\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no nginx forward-auth block")
	}
	return block
}

// nginxFront runs a real nginx with the README's snippet in front of Latchkey
// (latchkeyAddr) and an application (appAddr), on 127.0.0.1:port with the domain
// example.test. Only the addresses, the port and the domain differ from the README.
func nginxFront(t *testing.T, port int, latchkeyAddr, appAddr string) {
	t.Helper()
	bin := "/usr/sbin/nginx"
	if _, err := os.Stat(bin); err != nil {
		bin = testenv.Tool(t, "nginx", "nginx-light")
	}
	dir := t.TempDir()
	site := nginxSnippet(t)
	for _, r := range [][2]string{
		{"listen 80;", fmt.Sprintf("listen 127.0.0.1:%d;", port)},
		{"http://127.0.0.1:8080", "http://" + latchkeyAddr},
		{"http://127.0.0.1:3000", "http://" + appAddr},
		{"example.com", "example.test"},
	} {
		if !strings.Contains(site, r[0]) {
			t.Fatalf("README's nginx snippet lost %q", r[0])
		}
		site = strings.ReplaceAll(site, r[0], r[1])
	}
	// A single process (no workers to drop privileges to), in the foreground, with
	// every file it writes in the temp directory.
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, site)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", path, "-e", "stderr")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	logs := &lockedBuffer{}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			logs.Write([]byte(sc.Text() + "\n"))
			// nginx logs its limits after it has bound every listening socket.
			if !sent && strings.Contains(sc.Text(), "getrlimit(RLIMIT_NOFILE)") {
				ready <- true
				sent = true
			}
		}
		if !sent {
			ready <- false
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("nginx log:\n%s", tail(logs.String(), 4000))
		}
	})
	if !<-ready {
		_ = cmd.Wait()
		t.Fatalf("nginx did not start:\n%s", logs.String())
	}
}

// freePort returns a port nobody listens on right now, for nginx to take.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// echoApp is the application behind nginx: it answers with the Remote-* headers it
// received, and every header name, so a forged one would show.
func echoApp(t *testing.T) *httptest.Server {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := map[string][]string{}
		for k, v := range r.Header {
			got[k] = v
		}
		got[":host"] = []string{r.Host}
		got[":uri"] = []string{r.RequestURI}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(got)
	}))
	t.Cleanup(app.Close)
	return app
}

// viaNginx is a browser whose every connection goes to nginx on port, whatever the
// host in the URL: hosts are chosen by the Host header, as DNS would, without DNS.
func viaNginx(t *testing.T, port int) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	dialer := &net.Dialer{}
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, fmt.Sprintf("127.0.0.1:%d", port))
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type hop struct {
	Status   int
	Location string
	Body     string
	Seen     map[string][]string // what the application received, on 200 from it
}

func browse(t *testing.T, c *http.Client, method, u string, form url.Values, hdr map[string]string) hop {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	h := hop{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Body: string(raw)}
	if resp.StatusCode == 200 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal(raw, &h.Seen)
	}
	return h
}

var pageCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := pageCSRF.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf_token in page: %s", body)
	}
	return m[1]
}

// TestNginxForwardAuth runs a real nginx, configured with the README's snippet, in
// front of Latchkey and a small application, and walks THREATS.md's forward-auth
// lines: no session → sign-in and back; a password-only session on a two_factor
// host → step-up; a client's own Remote-User never reaches the application; rd on
// a foreign domain and the bypass spellings are refused; denied and unknown hosts
// are refused.
func TestNginxForwardAuth(t *testing.T) {
	requireTool(t, "oathtool")
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		testenv.Tool(t, "nginx", "nginx-light")
	}
	port := freePort(t)
	app := echoApp(t)
	cfg := testConfig(t, "sqlite:"+filepath.Join(t.TempDir(), "lk.db"))
	cfg.PublicURL = fmt.Sprintf("http://id.example.test:%d", port)
	cfg.CookieDomain = "example.test"
	rules, err := authz.ParseRules("grafana.example.test=two_factor,admin.example.test=deny,docs.example.test=one_factor")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ForwardAuthRules = rules
	s := startServer(t, cfg, nil)
	nginxFront(t, port, strings.TrimPrefix(s.URL, "http://"), strings.TrimPrefix(app.URL, "http://"))
	s.signup(t, "alice", "alice@example.com")
	s.signup(t, "bob", "bob@example.com")
	secret, _ := s.enrol(t, s.login(t, "bob"))

	site := func(host, path string) string { return fmt.Sprintf("http://%s.example.test:%d%s", host, port, path) }
	id := func(path string) string { return site("id", path) }
	forged := map[string]string{"Remote-User": "mallory", "Remote-Groups": "admin", "Remote-Email": "mallory@evil.test", "Remote-Name": "mallory"}

	// No session: nginx answers with the sign-in redirect, and the forged headers go nowhere.
	c := viaNginx(t, port)
	want := site("docs", "/hello?x=1&y=%2F")
	h := browse(t, c, "GET", want, nil, forged)
	if h.Status != 302 || h.Location != id("/login?rd="+url.QueryEscape(want)) {
		t.Fatalf("no session: %d %q, want 302 to sign in", h.Status, h.Location)
	}
	login := browse(t, c, "GET", h.Location, nil, nil)
	if login.Status != 200 || !strings.Contains(login.Body, `name="rd" value="`+strings.ReplaceAll(want, "&", "&amp;")+`"`) {
		t.Fatalf("sign-in page through nginx = %d, without rd: %s", login.Status, login.Body)
	}
	h = browse(t, c, "POST", id("/login"), url.Values{"csrf_token": {csrfOf(t, login.Body)}, "login": {"alice"}, "password": {testPassword}, "rd": {want}}, nil)
	if h.Status != 303 || h.Location != want {
		t.Fatalf("sign-in: %d %q, want 303 back to %q", h.Status, h.Location, want)
	}
	h = browse(t, c, "GET", h.Location, nil, forged)
	if h.Status != 200 || h.Seen == nil {
		t.Fatalf("back at the application: %d %s", h.Status, h.Body)
	}
	for name, v := range map[string]string{"Remote-User": "alice", "Remote-Name": "alice"} {
		if got := h.Seen[name]; len(got) != 1 || got[0] != v {
			t.Errorf("the application got %s %q, want %q", name, got, v)
		}
	}
	if got := h.Seen["Remote-Groups"]; len(got) != 0 {
		t.Errorf("the application got Remote-Groups %q from a client's forgery, want none", got)
	}
	if got := h.Seen["Remote-Email"]; len(got) != 1 || got[0] != "alice@example.com" {
		t.Errorf("the application got Remote-Email %q, want only the verified address, never the forged one", got)
	}
	if h.Seen[":uri"][0] != "/hello?x=1&y=%2F" {
		t.Errorf("the application got %q, want the original URI", h.Seen[":uri"])
	}
	// Underscored and odd-cased spellings do not get through either.
	h = browse(t, c, "GET", site("docs", "/"), nil, map[string]string{"remote-user": "mallory", "Remote_User": "mallory", "REMOTE-GROUPS": "admin"})
	if h.Status != 200 || fmt.Sprint(h.Seen["Remote-User"]) != "[alice]" || h.Seen["Remote_user"] != nil || h.Seen["Remote-Groups"] != nil {
		t.Fatalf("odd spellings: %d %v", h.Status, h.Seen)
	}

	// Password only on a two_factor host: step up. alice has no MFA, so the page
	// offers to set it up.
	grafana := site("grafana", "/d/abc")
	h = browse(t, c, "GET", grafana, nil, nil)
	if h.Status != 302 || h.Location != id("/step-up?rd="+url.QueryEscape(grafana)) {
		t.Fatalf("password-only session on grafana: %d %q, want 302 to step up", h.Status, h.Location)
	}
	if p := browse(t, c, "GET", h.Location, nil, nil); p.Status != 200 || !strings.Contains(p.Body, "Add multiple-factor authentication") {
		t.Fatalf("step-up page = %d %s", p.Status, p.Body)
	}

	// bob signs in with his code on the way to grafana and gets there; he is an operator.
	b := viaNginx(t, port)
	h = browse(t, b, "GET", grafana, nil, forged)
	if h.Status != 302 || h.Location != id("/login?rd="+url.QueryEscape(grafana)) {
		t.Fatalf("bob without a session: %d %q", h.Status, h.Location)
	}
	login = browse(t, b, "GET", h.Location, nil, nil)
	h = browse(t, b, "POST", id("/login"), url.Values{"csrf_token": {csrfOf(t, login.Body)}, "login": {"bob"}, "password": {testPassword}, "rd": {grafana}}, nil)
	if h.Status != 303 || h.Location != "/login/mfa?rd="+url.QueryEscape(grafana) {
		t.Fatalf("bob's password step: %d %q", h.Status, h.Location)
	}
	codePage := browse(t, b, "GET", id(h.Location), nil, nil)
	s.Clock.Advance(30 * time.Second)
	h = browse(t, b, "POST", id("/login/mfa"), url.Values{"csrf_token": {csrfOf(t, codePage.Body)}, "code": {oathtool(t, secret, s.Clock.Now())}, "rd": {grafana}}, nil)
	if h.Status != 303 || h.Location != grafana {
		t.Fatalf("bob's code step: %d %q, want back to grafana", h.Status, h.Location)
	}
	bobUser, err := s.App.Store.UserByLogin(context.Background(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.App.Store.SetAdmin(context.Background(), bobUser.ID, true); err != nil {
		t.Fatal(err)
	}
	h = browse(t, b, "GET", grafana, nil, forged)
	if h.Status != 200 || fmt.Sprint(h.Seen["Remote-User"]) != "[bob]" || fmt.Sprint(h.Seen["Remote-Groups"]) != "[admin]" || fmt.Sprint(h.Seen["Remote-Email"]) != "[bob@example.com]" {
		t.Fatalf("bob at grafana: %d %v", h.Status, h.Seen)
	}

	// Denied and unknown hosts: 403 from nginx, for everyone.
	for _, host := range []string{"admin", "wiki"} {
		for _, who := range []*http.Client{b, c, viaNginx(t, port)} {
			if h := browse(t, who, "GET", site(host, "/"), nil, forged); h.Status != 403 || h.Seen != nil {
				t.Fatalf("%s.example.test = %d %v, want 403", host, h.Status, h.Seen)
			}
		}
	}

	// rd on a foreign domain, and the bypass spellings, lead nowhere but home.
	for _, rd := range []string{"https://evil.test/", "//evil.test/", "/\\evil.test", "http://docs.example.test@evil.test/",
		"http://evil.test\\@docs.example.test/", "javascript:alert(1)", "JavaScript:alert(1)//docs.example.test",
		"http:%2F%2Fevil.test", "http://docs.example.test%2F@evil.test/", "http://docs.example.test.evil.test/",
		"\thttp://evil.test/", "http://evil.test\t.example.test/"} {
		if h := browse(t, c, "GET", id("/login?rd="+url.QueryEscape(rd)), nil, nil); h.Status != 303 || h.Location != "/settings/authentication" {
			t.Errorf("signed in, /login?rd=%q: %d %q, want home", rd, h.Status, h.Location)
		}
		fresh := viaNginx(t, port)
		page := browse(t, fresh, "GET", id("/login?rd="+url.QueryEscape(rd)), nil, nil)
		if strings.Contains(page.Body, `name="rd"`) {
			t.Errorf("sign-in page kept rd=%q", rd)
		}
		h := browse(t, fresh, "POST", id("/login"), url.Values{"csrf_token": {csrfOf(t, page.Body)}, "login": {"alice"}, "password": {testPassword}, "rd": {rd}}, nil)
		if h.Status != 303 || h.Location != "/settings/authentication" {
			t.Errorf("sign-in with rd=%q: %d %q, want home", rd, h.Status, h.Location)
		}
	}
}
