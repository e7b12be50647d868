package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/config"
	"github.com/latchkey/latchkey/internal/storetest"
	"github.com/latchkey/latchkey/internal/testenv"
)

// clock is a test clock: real time is never read, tests move it explicitly.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// backend is one database kind the end-to-end tests run against.
type backend struct {
	name string
	url  func(t *testing.T) string
}

func backends() []backend {
	return []backend{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + storetest.SQLitePath(t) }},
		{"postgres", storetest.PostgresURL},
	}
}

// forEachBackend runs f as a subtest on SQLite and on PostgreSQL.
func forEachBackend(t *testing.T, f func(t *testing.T, dbURL string)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b.url(t)) })
	}
}

// testServer is a real Latchkey on 127.0.0.1:0.
type testServer struct {
	URL   string
	App   *cli.App
	Clock *clock
	Logs  *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testConfig is the configuration tests start from: cheap argon2id parameters (the
// default ones are exercised by the flood test and the benchmarks) and a temp key.
func testConfig(t *testing.T, dbURL string) config.Config {
	t.Helper()
	dir := t.TempDir()
	args := []string{"--database-url", dbURL, "--secret-key-file", filepath.Join(dir, "secret.key"),
		"--addr", "127.0.0.1:0", "--argon2-memory", "8192", "--argon2-time", "1", "--ip-max-failures", "1000",
		"--signups-per-address", "1000"}
	cfg, _, err := config.Load("test", args, func(string) string { return "" }, io.Discard, nil)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// startServer starts a server sharing ck (nil: a new clock) with cfg adjusted by mod.
func startServer(t *testing.T, cfg config.Config, ck *clock) *testServer {
	t.Helper()
	if ck == nil {
		ck = newClock()
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := cli.NewApp(ctx, cfg, logger, ck.Now)
	if err != nil {
		cancel()
		t.Fatalf("NewApp: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		app.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(logs.String(), 4000))
		}
	})
	return &testServer{URL: "http://" + l.Addr().String(), App: app, Clock: ck, Logs: logs}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (r *response) str(key string) string {
	v, _ := r.Body[key].(string)
	return v
}

func (r *response) errCode() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// call sends one API request with an optional bearer token. body may be a string
// (sent as is), nil, or a value encoded as JSON.
func (s *testServer) call(t *testing.T, method, path, token string, body any) *response {
	t.Helper()
	return s.callWith(t, http.DefaultClient, method, path, token, body, nil)
}

func (s *testServer) callWith(t *testing.T, c *http.Client, method, path, token string, body any, hdr map[string]string) *response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("%s %s: bad JSON %q: %v", method, path, raw, err)
		}
	}
	return out
}

// want fails unless the response has the status (and error code, if given).
func (r *response) want(t *testing.T, status int, code ...string) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Raw)
	}
	if len(code) > 0 && r.errCode() != code[0] {
		t.Fatalf("error code = %q, want %q; body %s", r.errCode(), code[0], r.Raw)
	}
	return r
}

const testPassword = "correct horse battery"

// signup creates a user and verifies its address with the mailed link; login returns
// a session token.
func (s *testServer) signup(t *testing.T, username, email string) {
	t.Helper()
	s.call(t, "POST", "/api/v1/signup", "", map[string]string{"username": username, "email": email, "password": testPassword}).want(t, 201)
	if s.App == nil {
		return // a child process: its mail is not readable here, and its tests sign in by username
	}
	s.verifyEmail(t, email)
}

func (s *testServer) login(t *testing.T, login string) string {
	t.Helper()
	r := s.call(t, "POST", "/api/v1/login", "", map[string]string{"login": login, "password": testPassword}).want(t, 200)
	if r.str("status") != "authenticated" {
		t.Fatalf("login status = %q, want authenticated", r.str("status"))
	}
	return r.str("session_token")
}

// outbox waits for queued mail and returns it.
func (s *testServer) outbox(t *testing.T) []outboxMail {
	t.Helper()
	s.App.Service.Wait()
	msgs, err := s.App.Service.Outbox(context.Background())
	if err != nil {
		t.Fatalf("outbox: %v", err)
	}
	out := make([]outboxMail, len(msgs))
	for i, m := range msgs {
		out[i] = outboxMail{To: m.To, Subject: m.Subject, Body: m.Body}
	}
	return out
}

type outboxMail struct{ To, Subject, Body string }

func jarClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// requireTool finds an external program (see testenv.Tool).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return testenv.Tool(t, name, map[string]string{"oathtool": "oathtool", "zbarimg": "zbar-tools", "ssh-keygen": "openssh-client"}[name])
}

func testLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
