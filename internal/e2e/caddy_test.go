package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/latchkey/latchkey/internal/authz"
	"github.com/latchkey/latchkey/internal/testenv"
)

// caddySnippet is the Caddyfile of README.md's forward-auth section, verbatim.
func caddySnippet(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(raw), "<!-- caddy-forward-auth: used verbatim by internal/cli/caddy_test.go -->\n```caddyfile\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no Caddy forward-auth block")
	}
	return block
}

// caddyFront runs a real Caddy with the README's Caddyfile on 127.0.0.1:port, plain
// HTTP, with the domain example.test; docs and admin are served by the same site
// block as grafana. Only addresses, port, scheme and domain differ from the README.
func caddyFront(t *testing.T, port int, latchkeyAddr, appAddr string) {
	t.Helper()
	bin := testenv.Tool(t, "caddy", "caddy")
	dir := t.TempDir()
	site := caddySnippet(t)
	for _, r := range [][2]string{
		{"id.example.com {", fmt.Sprintf("http://id.example.test:%d {", port)},
		{"grafana.example.com {", fmt.Sprintf("http://grafana.example.test:%[1]d, http://docs.example.test:%[1]d, http://admin.example.test:%[1]d {", port)},
		{"127.0.0.1:8080", latchkeyAddr},
		{"127.0.0.1:3000", appAddr},
	} {
		if !strings.Contains(site, r[0]) {
			t.Fatalf("README's Caddyfile lost %q", r[0])
		}
		site = strings.ReplaceAll(site, r[0], r[1])
	}
	conf := "{\n\tadmin off\n\tauto_https off\n}\n\n" + site
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	// Caddy keeps its state under the XDG directories: a temp directory, not $HOME.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting caddy: %v", err)
	}
	logs := &lockedBuffer{}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			logs.Write([]byte(sc.Text() + "\n"))
			if !sent && strings.Contains(sc.Text(), `"serving initial configuration"`) {
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
			t.Logf("caddy log:\n%s", tail(logs.String(), 4000))
		}
	})
	if !<-ready {
		_ = cmd.Wait()
		t.Fatalf("caddy did not start:\n%s", logs.String())
	}
}

// TestCaddyForwardAuth runs a real Caddy, configured with the README's Caddyfile, in
// front of Latchkey and the echo application: sign-in and back, step-up on a
// two_factor host, forged Remote-* headers dropped, a denied host refused, and a 303
// after a POST.
func TestCaddyForwardAuth(t *testing.T) {
	testenv.Tool(t, "caddy", "caddy")
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
	caddyFront(t, port, strings.TrimPrefix(s.URL, "http://"), strings.TrimPrefix(app.URL, "http://"))
	s.signup(t, "alice", "alice@example.com")

	id := func(path string) string { return fmt.Sprintf("http://id.example.test:%d%s", port, path) }
	site := func(host, path string) string { return fmt.Sprintf("http://%s.example.test:%d%s", host, port, path) }
	forged := map[string]string{"Remote-User": "mallory", "Remote-Groups": "admin", "Remote-Email": "mallory@evil.test", "Remote-Name": "mallory"}
	asked := site // Caddy's X-Forwarded-Host keeps the port, so the URL asked is the URL browsed

	c := viaNginx(t, port) // any client whose connections all go to the proxy
	h := browse(t, c, "GET", site("docs", "/hello?x=1"), nil, forged)
	if want := id("/login?rd=" + url.QueryEscape(asked("docs", "/hello?x=1"))); h.Status != 302 || h.Location != want {
		t.Fatalf("no session: %d %q, want 302 %q", h.Status, h.Location, want)
	}
	if h := browse(t, c, "POST", site("docs", "/form"), url.Values{"a": {"b"}}, nil); h.Status != 303 ||
		h.Location != id("/login?rd="+url.QueryEscape(asked("docs", "/form"))) {
		t.Fatalf("no session after a POST: %d %q, want 303 to sign in", h.Status, h.Location)
	}
	login := browse(t, c, "GET", h.Location, nil, nil)
	if login.Status != 200 {
		t.Fatalf("sign-in page through caddy = %d", login.Status)
	}
	rd := asked("docs", "/hello?x=1")
	h = browse(t, c, "POST", id("/login"), url.Values{"csrf_token": {csrfOf(t, login.Body)}, "login": {"alice"}, "password": {testPassword}, "rd": {rd}}, nil)
	if h.Status != 303 || h.Location != rd {
		t.Fatalf("sign-in: %d %q, want back to %q", h.Status, h.Location, rd)
	}
	h = browse(t, c, "GET", h.Location, nil, forged)
	if h.Status != 200 || fmt.Sprint(h.Seen["Remote-User"]) != "[alice]" || fmt.Sprint(h.Seen["Remote-Name"]) != "[alice]" {
		t.Fatalf("back at the application: %d %v", h.Status, h.Seen)
	}
	for _, v := range h.Seen["Remote-Groups"] {
		if v != "" {
			t.Errorf("the application got Remote-Groups %q from a client's forgery, want none", v)
		}
	}
	if got := fmt.Sprint(h.Seen["Remote-Email"]); got != "[alice@example.com]" {
		t.Errorf("the application got Remote-Email %s, want only the verified address, never the forged one", got)
	}

	h = browse(t, c, "GET", site("grafana", "/d/1"), nil, nil)
	if want := id("/step-up?rd=" + url.QueryEscape(asked("grafana", "/d/1"))); h.Status != 302 || h.Location != want {
		t.Fatalf("password-only session on grafana: %d %q, want 302 %q", h.Status, h.Location, want)
	}
	for _, who := range []*http.Client{c, viaNginx(t, port)} {
		if h := browse(t, who, "GET", site("admin", "/"), nil, forged); h.Status != 403 || h.Seen != nil {
			t.Fatalf("admin.example.test = %d %v, want 403", h.Status, h.Seen)
		}
	}
}
