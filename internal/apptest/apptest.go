// Package apptest builds a real Latchkey for the tests of the packages it is made
// of (auth, api, web, server): the Service on a SQLite file in t.TempDir(), the HTTP
// handler of server.New, and a clock that moves only when a test says so. Nothing is
// mocked; mail goes to the outbox, which the Service reads back.
//
// Only tests import it. It sits beside cli in the layers, since it wires the same
// pieces; the end-to-end tests that start the binary's own App stay in cli.
package apptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/keys"
	"github.com/latchkey/latchkey/internal/password"
	"github.com/latchkey/latchkey/internal/server"
	"github.com/latchkey/latchkey/internal/sqlite"
	"github.com/latchkey/latchkey/internal/totp"
)

// Password is the password of every account SignUp creates.
const Password = "correct horse battery"

// Clock is a test clock: it starts at a fixed instant and moves only by Advance.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Env is one Latchkey: its store, service and handler, sharing Clock.
type Env struct {
	Store   auth.Store
	Service *auth.Service
	Handler *server.Server
	Clock   *Clock
	logs    *lockedBuffer
}

// Options adjust an Env; the zero value is the defaults of SPEC §3.
type Options struct {
	Config        auth.Config // SiteName and PublicURL default to Latchkey and http://127.0.0.1:8080
	SecureCookies bool
	MaxBodyBytes  int64
	Trusted       []string // trusted proxy prefixes, e.g. "10.0.0.0/8"
}

// New builds an Env on a fresh SQLite file; everything is closed when t ends.
func New(t testing.TB, o Options) *Env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		t.Fatal(err)
	}
	master := make([]byte, 32)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	ring, err := keys.New(master)
	if err != nil {
		t.Fatal(err)
	}
	// Cheap argon2id parameters: these tests are about rules, not hashing cost.
	hasher := password.NewHasher(password.Params{Memory: 8192, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
		2, 5*time.Second, 64, rand.Reader)
	clock := &Clock{now: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := o.Config
	if cfg.SiteName == "" {
		cfg.SiteName = "Latchkey"
	}
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://127.0.0.1:8080"
	}
	svc := auth.New(cfg, auth.Deps{Store: st, Hasher: hasher, Keys: ring, Logger: logger, Clock: clock.Now})
	opts := server.Options{SiteName: cfg.SiteName, PublicURL: cfg.PublicURL, SecureCookies: o.SecureCookies,
		MaxBodyBytes: o.MaxBodyBytes, HashStats: hasher.Stats}
	for _, p := range o.Trusted {
		opts.TrustedProxies = append(opts.TrustedProxies, mustPrefix(t, p))
	}
	h := server.New(opts, server.Deps{Service: svc, Logger: logger})
	e := &Env{Store: st, Service: svc, Handler: h, Clock: clock, logs: logs}
	t.Cleanup(func() {
		svc.Wait()
		st.Close()
		if t.Failed() {
			t.Logf("log:\n%s", tail(logs.String(), 4000))
		}
	})
	return e
}

// Client is the client every helper call comes from.
var Client = auth.Client{IP: "192.0.2.1", UserAgent: "apptest"}

// SignUp creates the account name with email name@example.com and Password.
func (e *Env) SignUp(t testing.TB, name string) *auth.User {
	t.Helper()
	u, err := e.Service.Signup(context.Background(), Client, name, name+"@example.com", Password)
	if err != nil {
		t.Fatalf("Signup(%q) = %v", name, err)
	}
	return e.VerifyEmail(t, u.Email)
}

// VerifyEmail follows the last verification link mailed to addr, as the address's
// owner would, and returns the account that now has it verified.
func (e *Env) VerifyEmail(t testing.TB, addr string) *auth.User {
	t.Helper()
	u, err := e.Service.VerifyEmail(context.Background(), Client, e.LinkToken(t, addr, "/verify-email"))
	if err != nil {
		t.Fatalf("VerifyEmail(%q) = %v", addr, err)
	}
	return u
}

// SignIn signs name in with Password (and, when secret is not nil, a TOTP code of it)
// and returns the session token.
func (e *Env) SignIn(t testing.TB, name string, secret []byte) string {
	t.Helper()
	ctx := context.Background()
	res, err := e.Service.Login(ctx, Client, name, Password)
	if err != nil {
		t.Fatalf("Login(%q) = %v", name, err)
	}
	if res.Status == auth.StatusMFARequired {
		if secret == nil {
			t.Fatalf("Login(%q) asks for a second factor and the test gave no secret", name)
		}
		res, err = e.Service.LoginMFA(ctx, Client, res.MFAToken.Reveal(), e.Code(secret), "")
		if err != nil {
			t.Fatalf("LoginMFA(%q) = %v", name, err)
		}
	}
	return res.SessionToken.Reveal()
}

// Principal authenticates a session token as the middleware would.
func (e *Env) Principal(t testing.TB, token string) *auth.Principal {
	t.Helper()
	p, err := e.Service.Authenticate(context.Background(), token)
	if err != nil {
		t.Fatalf("Authenticate = %v", err)
	}
	return p
}

// EnableMFA turns TOTP on for the session's user and returns the secret and the
// recovery codes. The clock moves past the step used, so the next code is fresh.
func (e *Env) EnableMFA(t testing.TB, token string) (secret []byte, codes []string) {
	t.Helper()
	ctx := context.Background()
	p := e.Principal(t, token)
	setup, err := e.Service.SetupTOTP(ctx, Client, p)
	if err != nil {
		t.Fatalf("SetupTOTP = %v", err)
	}
	codes, err = e.Service.ConfirmTOTP(ctx, Client, p, e.Code(setup.Secret))
	if err != nil {
		t.Fatalf("ConfirmTOTP = %v", err)
	}
	e.Clock.Advance(totp.Period * time.Second)
	return setup.Secret, codes
}

// Code is the TOTP code of secret at the clock's time.
func (e *Env) Code(secret []byte) string { return totp.Code(secret, totp.Step(e.Clock.Now())) }

// Mail returns the bodies of the outbox messages to addr, oldest first.
func (e *Env) Mail(t testing.TB, addr string) []string {
	t.Helper()
	e.Service.Wait()
	msgs, err := e.Service.Outbox(context.Background())
	if err != nil {
		t.Fatalf("Outbox = %v", err)
	}
	var out []string
	for _, m := range msgs {
		if m.To == addr {
			out = append(out, m.Subject+"\n"+m.Body)
		}
	}
	return out
}

// Do serves one request without a network: body, when not nil, is sent as is, and
// header pairs are set on the request.
func (e *Env) Do(method, path string, body io.Reader, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.Handler.ServeHTTP(rec, req)
	return rec
}

// JSON sends a JSON body (nil: none) with a bearer token (empty: none).
func (e *Env) JSON(method, path, token, body string) *httptest.ResponseRecorder {
	h := []string{"Content-Type", "application/json"}
	if token != "" {
		h = append(h, "Authorization", "Bearer "+token)
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return e.Do(method, path, r, h...)
}

// Logs is what the Env has logged so far.
func (e *Env) Logs() string { return e.logs.String() }

// Cookie returns the named cookie set by rec, or nil.
func Cookie(rec *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range rec.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
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

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

func mustPrefix(t testing.TB, s string) netip.Prefix {
	t.Helper()
	p, err := netip.ParsePrefix(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
