package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// holdDatabase takes a lock that stops the Service's work on a forgot-password: on
// PostgreSQL an exclusive lock on users (no lookup by email can even read), on SQLite
// the write lock (no link, counter or log row can be written). It returns the release.
func holdDatabase(t *testing.T, dbURL string) func() {
	t.Helper()
	ctx := context.Background()
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatal(err)
		}
		return func() {
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Error(err)
			}
			conn.Close()
			db.Close()
		}
	}
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		if err := tx.Rollback(ctx); err != nil {
			t.Error(err)
		}
		conn.Close(ctx)
	}
}

// TestForgotPasswordAnswersFirst: the answer to a forgot-password comes before any
// work on the address, for a known and an unknown one alike: with the database held
// so that no lookup (PostgreSQL) or no write (SQLite) can happen, both still get their
// 202 at once, and the reset mail follows once the database is free. So the answer's
// timing cannot depend on whether the address has an account.
func TestForgotPasswordAnswersFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		s := startServer(t, testConfig(t, dbURL), nil)
		s.signup(t, "fred", "fred@example.com")
		s.App.Service.Wait()
		release := holdDatabase(t, dbURL)
		held := true
		defer func() {
			if held {
				release()
			}
		}()
		// The client gives up long before the hold would end on its own: a request that
		// waited for the database would fail here, not pass late.
		c := &http.Client{Timeout: 5 * time.Second}
		for _, email := range []string{"fred@example.com", "nobody@example.com", "", "FRED@example.com"} {
			s.callWith(t, c, "POST", "/api/v1/password/forgot", "", map[string]string{"email": email}, nil).want(t, 202)
		}
		// The page answers first too.
		jar := jarClient(t)
		jar.Timeout = 5 * time.Second
		tok := formToken(t, jar, s, "/password/forgot")
		resp := postForm(t, jar, s, "/password/forgot", map[string][]string{"email": {"fred@example.com"}, "csrf_token": {tok}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("POST /password/forgot while the database is held = %d, want 303", resp.StatusCode)
		}
		release()
		held = false

		mails := 0
		for _, m := range s.outbox(t) {
			if m.To == "fred@example.com" && m.Subject == "Reset your password" {
				mails++
			}
		}
		if mails != 3 {
			t.Fatalf("%d reset mails for fred after the database was freed, want 3 (two from the API, in two spellings, and the page's)", mails)
		}
		// One row per request on the account, not two.
		ev := s.call(t, "GET", "/api/v1/security-log", s.login(t, "fred"), nil).want(t, 200).Body["events"].([]any)
		forgot := 0
		for _, e := range ev {
			if e.(map[string]any)["event"] == "password_forgot" {
				forgot++
			}
		}
		if forgot != 3 {
			t.Fatalf("%d password_forgot rows on the account for 3 requests, want 3: %v", forgot, ev)
		}
	})
}

// TestForgotPasswordQueueBounded: with the workers stuck (the database's write lock
// held), forgot-password requests still get their 202 at once; at most 256 wait beside
// the two in the workers' hands, the rest are dropped with a log line each; once the
// database is free every kept request is done and logged (in rows or "N more" rows).
func TestForgotPasswordQueueBounded(t *testing.T) {
	dbURL := "sqlite:" + filepath.Join(t.TempDir(), "latchkey.db")
	s := startServer(t, testConfig(t, dbURL), nil)
	s.signup(t, "quinn", "quinn@example.com")
	s.App.Service.Wait()
	release := holdDatabase(t, dbURL)
	c := &http.Client{Timeout: 5 * time.Second}
	const sent = 300
	for range sent {
		s.callWith(t, c, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "quinn@example.com"}, nil).want(t, 202)
	}
	dropped := strings.Count(s.Logs.String(), "forgot-password queue is full")
	release()
	s.App.Service.Wait()
	if dropped < sent-256-2 || dropped > sent-256 {
		t.Fatalf("%d of %d requests dropped, want %d to %d (256 waiting, up to 2 in the workers' hands)", dropped, sent, sent-256-2, sent-256)
	}
	s.App.Service.FlushSecurityLog(context.Background(), true)
	es, err := s.App.Store.Events(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	logged := 0
	for _, e := range es {
		if e.Event != "password_forgot" {
			continue
		}
		var n int
		if _, err := fmt.Sscanf(e.Detail, "and %d more like this", &n); err == nil {
			logged += n
		} else {
			logged++
		}
	}
	if logged != sent-dropped {
		t.Fatalf("%d forgot-password requests logged, want the %d kept", logged, sent-dropped)
	}
	mails := 0
	for _, m := range s.outbox(t) {
		if m.Subject == "Reset your password" {
			mails++
		}
	}
	if mails != 5 {
		t.Fatalf("%d reset mails, want 5 (the hourly limit per account)", mails)
	}
}
