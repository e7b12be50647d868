package cli

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/config"
)

// BenchmarkForwardAuth compares a forward-auth answer (nginx's auth-request, on a
// two_factor host, with an MFA session) with the plain session check GET /api/v1/me,
// both through the whole handler with the session cookie and without the network.
// Both are one session query; forward auth must stay within 10 % of /me.
func BenchmarkForwardAuth(b *testing.B) {
	stores := map[string]func(b *testing.B) string{
		"sqlite": func(b *testing.B) string { return "sqlite:" + filepath.Join(b.TempDir(), "latchkey.db") },
		"postgres": func(b *testing.B) string {
			server := os.Getenv("LATCHKEY_TEST_POSTGRES")
			if server == "" {
				b.Skip("PostgreSQL benchmarks need LATCHKEY_TEST_POSTGRES=postgres://…")
			}
			return scratchPostgres(b, server)
		},
	}
	for _, store := range []string{"sqlite", "postgres"} {
		b.Run(store, func(b *testing.B) {
			app, tok := forwardAuthBenchApp(b, stores[store](b))
			cookie := &http.Cookie{Name: "latchkey_session", Value: tok}
			b.Run("me", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					req := httptest.NewRequest("GET", "/api/v1/me", nil)
					req.AddCookie(cookie)
					rec := httptest.NewRecorder()
					app.Handler.ServeHTTP(rec, req)
					if rec.Code != 200 {
						b.Fatalf("GET /api/v1/me = %d, want 200", rec.Code)
					}
				}
			})
			b.Run("auth-request", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					req := httptest.NewRequest("GET", "/api/authz/auth-request", nil)
					req.Header.Set("X-Original-URL", "http://grafana.example.test/d/abc?orgId=1")
					req.Header.Set("X-Original-Method", "GET")
					req.AddCookie(cookie)
					rec := httptest.NewRecorder()
					app.Handler.ServeHTTP(rec, req)
					if rec.Code != 200 || rec.Header().Get("Remote-User") != "bench" {
						b.Fatalf("auth-request = %d (%q), want 200 for bench", rec.Code, rec.Header().Get("Remote-User"))
					}
				}
			})
		})
	}
}

// forwardAuthBenchApp is benchApp with forward auth configured and a session that
// passed MFA, so the answer takes its longest path (the two_factor check).
func forwardAuthBenchApp(b *testing.B, dbURL string) (*App, string) {
	args := []string{"--database-url", dbURL, "--secret-key-file", filepath.Join(b.TempDir(), "secret.key"),
		"--public-url", "http://id.example.test", "--cookie-domain", "example.test",
		"--forward-auth-rules", "admin.example.test=deny,grafana.example.test=two_factor,*.example.test=one_factor",
		"--forward-auth-mfa-max-age", "12h"}
	cfg, _, err := config.Load("bench", args, func(string) string { return "" }, io.Discard, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	app, err := NewApp(ctx, cfg, slog.New(slog.DiscardHandler), func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { app.Close() })
	u := &auth.User{Username: "bench", Email: "bench@example.com", PasswordHash: "x", CreatedAt: now}
	if err := app.Store.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	tok, hash := benchToken()
	s := &auth.Session{UserID: u.ID, TokenHash: hash, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour),
		ReauthAt: now, Method: auth.SessionPasswordTOTP, MFAAt: now}
	if err := app.Store.CreateSession(ctx, s); err != nil {
		b.Fatal(err)
	}
	return app, tok
}
