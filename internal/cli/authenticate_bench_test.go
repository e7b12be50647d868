package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
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

func benchAuthenticate(b *testing.B, dbURL string) {
	args := []string{"--database-url", dbURL, "--secret-key-file", filepath.Join(b.TempDir(), "secret.key")}
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
	defer app.Close()
	u := &auth.User{Username: "bench", Email: "bench@example.com", PasswordHash: "x", CreatedAt: now}
	if err := app.Store.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	tok, hash := benchToken()
	s := &auth.Session{UserID: u.ID, TokenHash: hash, CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(time.Hour), ReauthAt: now}
	if err := app.Store.CreateSession(ctx, s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := app.Service.Authenticate(ctx, tok); err != nil {
			b.Fatalf("Authenticate = %v", err)
		}
	}
}
