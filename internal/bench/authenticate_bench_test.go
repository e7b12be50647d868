package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/cli"
	"github.com/latchkey/latchkey/internal/config"
)

// BenchmarkAuthenticate measures the session check behind every signed-in request,
// Service.Authenticate with a fresh session (no last-seen write), on both stores.
func BenchmarkAuthenticate(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchAuthenticate(b, "sqlite:"+filepath.Join(b.TempDir(), "latchkey.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		server := os.Getenv("LATCHKEY_TEST_POSTGRES")
		if server == "" {
			b.Skip("PostgreSQL benchmarks need LATCHKEY_TEST_POSTGRES=postgres://…")
		}
		benchAuthenticate(b, scratchPostgres(b, server))
	})
}

// scratchPostgres creates an empty database on server, dropped when b ends.
func scratchPostgres(b *testing.B, server string) string {
	b.Helper()
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	name := "lk_bench_" + hex.EncodeToString(raw)
	admin := func(sql string) error {
		conn, err := pgx.Connect(context.Background(), server)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), sql)
		return err
	}
	// The name is our own hex, so building the statement from it is safe.
	if err := admin("CREATE DATABASE " + name); err != nil {
		b.Fatalf("create database: %v", err)
	}
	b.Cleanup(func() { _ = admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u, err := url.Parse(server)
	if err != nil {
		b.Fatalf("LATCHKEY_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// BenchmarkMe measures GET /api/v1/me through the whole handler — middleware, session
// check, MFA status, JSON — without the network, for profiling.
func BenchmarkMe(b *testing.B) {
	app, tok := benchApp(b, "sqlite:"+filepath.Join(b.TempDir(), "latchkey.db"))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/api/v1/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		app.Handler.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("GET /api/v1/me = %d, want 200", rec.Code)
		}
	}
}

func benchAuthenticate(b *testing.B, dbURL string) {
	app, tok := benchApp(b, dbURL)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := app.Service.Authenticate(ctx, tok); err != nil {
			b.Fatalf("Authenticate = %v", err)
		}
	}
}

// benchApp starts an App (without a listener) holding one user with a fresh session,
// whose token it returns.
func benchApp(b *testing.B, dbURL string) (*cli.App, string) {
	args := []string{"--database-url", dbURL, "--secret-key-file", filepath.Join(b.TempDir(), "secret.key")}
	cfg, _, err := config.Load("bench", args, func(string) string { return "" }, io.Discard, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	app, err := cli.NewApp(ctx, cfg, slog.New(slog.DiscardHandler), func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { app.Close() })
	u := &auth.User{Username: "bench", Email: "bench@example.com", PasswordHash: "x", CreatedAt: now}
	if err := app.Store.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	tok, hash := benchToken()
	s := &auth.Session{UserID: u.ID, TokenHash: hash, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), ReauthAt: now}
	if err := app.Store.CreateSession(ctx, s); err != nil {
		b.Fatal(err)
	}
	return app, tok
}
