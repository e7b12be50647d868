package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/cli"
)

// dirSize sums the sizes of the files in dir: the database, its WAL and shared memory.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSecurityLogFlood: ten seconds (or 20,000 requests, whichever comes first) of
// anonymous flood from one client, with a 4 KiB User-Agent, over every kind of event an
// anonymous client can repeat (unknown accounts, a locked address and a locked
// account, malformed ids, bad reset links, forgot-password for known and unknown
// addresses), grows the SQLite data directory (WAL included) by at most 1 MiB, and the
// security log by a number of rows that does not depend on how many requests were
// made. The clock is fixed, so every request falls in one minute: the bound is exact,
// not a matter of timing. The folded events are all accounted for in "N more" rows.
func TestSecurityLogFlood(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		data := ""
		if strings.HasPrefix(dbURL, "sqlite:") {
			data = filepath.Join(t.TempDir(), "data")
			dbURL = "sqlite:" + filepath.Join(data, "latchkey.db")
		}
		cfg := testConfig(t, dbURL)
		cfg.IPMaxFailures = 20
		s := startServer(t, cfg, nil)
		s.signup(t, "alice", "alice@example.com")
		ctx := context.Background()
		before, err := s.App.Store.Events(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var sizeBefore int64
		if data != "" {
			sizeBefore = dirSize(t, data)
		}

		ua := strings.Repeat("Mozilla/5.0 (flood) ", 205) // 4,100 bytes
		requests := []struct{ path, body string }{
			{"/api/v1/password/forgot", `{"email":"nobody%d@example.com"}`},
			{"/api/v1/password/forgot", `{"email":"alice@example.com"}`},
			{"/api/v1/login", `{"login":"ghost%d","password":"wrong password"}`},
			{"/api/v1/login", `{"login":"alice","password":"wrong password %d"}`},
			{"/api/v1/recovery/not-an-id-%d/verify", `{"personal_access_token":"lk_x"}`},
			{"/api/v1/password/reset", `{"token":"bad-token-%d","new_password":"a long new password"}`},
			{"/api/v1/password/forgot", `{"email":""}`},
		}
		const maxRequests = 20000
		deadline := time.Now().Add(10 * time.Second)
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: time.Minute}
		var sent, unexpected atomic.Int64
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; time.Now().Before(deadline); i += 8 {
					if sent.Add(1) > maxRequests {
						return
					}
					rq := requests[i%len(requests)]
					path, body := rq.path, rq.body
					if strings.Contains(path, "%d") {
						path = fmt.Sprintf(path, i)
					}
					if strings.Contains(body, "%d") {
						body = fmt.Sprintf(body, i)
					}
					req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("User-Agent", ua)
					resp, err := client.Do(req)
					if err != nil {
						unexpected.Add(1)
						continue
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode >= 500 && resp.StatusCode != 503 {
						unexpected.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		n := min(sent.Load(), maxRequests)
		if unexpected.Load() > 0 {
			t.Fatalf("%d of %d flood requests failed or got a 5xx other than 503", unexpected.Load(), n)
		}
		// The pending "N more" rows are written when their minute is over: move the
		// clock on and let one more anonymous event sweep them out.
		s.App.Service.Wait()
		s.Clock.Advance(time.Minute)
		s.call(t, "POST", "/api/v1/recovery/not-an-id/verify", "", map[string]string{"personal_access_token": "lk_x"}).want(t, 400)
		s.App.Service.Wait()

		after, err := s.App.Store.Events(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		added := after[:len(after)-len(before)]
		// Per address and minute: 10 rows as they come, one "N more" row per kind folded
		// (7 kinds of request, some with two outcomes), and the account's own 5 wrong
		// passwords before its lock, which are never folded; the sweeping request's row.
		const maxRows = 10 + 16 + 5 + 1
		if len(added) > maxRows {
			t.Fatalf("%d requests added %d security-log rows, want at most %d", n, len(added), maxRows)
		}
		more, folded := 0, 0
		for _, e := range added {
			if len(e.UserAgent) > 200 || !utf8.ValidString(e.UserAgent) {
				t.Fatalf("stored User-Agent of %d bytes (valid UTF-8: %v), want at most 200", len(e.UserAgent), utf8.ValidString(e.UserAgent))
			}
			var k int
			if _, err := fmt.Sscanf(e.Detail, "and %d more like this", &k); err == nil {
				more++
				folded += k
			}
		}
		if more == 0 || folded < int(n)/4 {
			t.Fatalf("%d requests: %d \"N more\" rows accounting for %d events; want the flood folded into them", n, more, folded)
		}
		t.Logf("%d requests in the flood: %d rows added, %d of them \"N more\" rows for %d folded events", n, len(added), more, folded)
		if data != "" {
			grown := dirSize(t, data) - sizeBefore
			entries, _ := os.ReadDir(data)
			for _, e := range entries {
				if fi, err := e.Info(); err == nil {
					t.Logf("%s: %d bytes", e.Name(), fi.Size())
				}
			}
			t.Logf("data directory grew by %d bytes", grown)
			db, _ := sql.Open("sqlite", filepath.Join(data, "latchkey.db"))
			for _, tb := range []string{"attempts", "security_events", "password_resets", "outbox", "recovery_requests", "users", "sessions"} {
				var c int
				db.QueryRow("SELECT count(*) FROM " + tb).Scan(&c)
				t.Logf("%s: %d rows", tb, c)
			}
			db.Close()
			if grown > 1<<20 {
				t.Fatalf("%d requests grew the data directory by %d bytes, want at most 1 MiB", n, grown)
			}
		}
	})
}

// TestSecurityLogRetention: rows older than security-log-retention go, newer ones and
// every row under retention 0 stay; on both stores.
func TestSecurityLogRetention(t *testing.T) {
	forEachBackend(t, func(t *testing.T, dbURL string) {
		cfg := testConfig(t, dbURL)
		cfg.SecurityLogRetention = 30 * 24 * time.Hour
		s := startServer(t, cfg, nil)
		s.signup(t, "rita", "rita@example.com")
		s.login(t, "rita")
		s.Clock.Advance(30*24*time.Hour + time.Second)
		tok := s.login(t, "rita")
		ctx := context.Background()
		n, err := s.App.Service.PurgeSecurityLog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("PurgeSecurityLog removed %d rows, want the 3 older than 30 days (sign-up, address verified, first sign-in)", n)
		}
		ev := s.call(t, "GET", "/api/v1/security-log", tok, nil).want(t, 200).Body["events"].([]any)
		if len(ev) != 1 || ev[0].(map[string]any)["event"] != "login" {
			t.Fatalf("security log after the purge = %v, want only the recent sign-in", ev)
		}

		cfg = testConfig(t, dbURL)
		cfg.SecurityLogRetention = 0
		keep := startServer(t, cfg, s.Clock)
		if n, err := keep.App.Service.PurgeSecurityLog(ctx); err != nil || n != 0 {
			t.Fatalf("PurgeSecurityLog with retention 0 = %d, %v; want nothing removed", n, err)
		}
	})
}

// TestSecurityLogFlushedAtShutdown: the "N more" rows of a minute not yet over are
// written when the server closes, so a restart loses no count.
func TestSecurityLogFlushedAtShutdown(t *testing.T) {
	cfg := testConfig(t, "sqlite:"+filepath.Join(t.TempDir(), "latchkey.db"))
	ctx, cancel := context.WithCancel(context.Background())
	app, err := cli.NewApp(ctx, cfg, testLogger(), newClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	s := &testServer{URL: srv.URL, App: app}
	for range 15 {
		s.call(t, "POST", "/api/v1/recovery/not-an-id/verify", "", map[string]string{"personal_access_token": "lk_x"}).want(t, 400)
	}
	srv.Close()
	cancel()
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}

	again, err := cli.NewApp(context.Background(), cfg, testLogger(), newClock().Now)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	es, err := again.Store.Events(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 11 || !strings.HasPrefix(es[0].Detail, "and 5 more like this from 127.0.0.1") {
		t.Fatalf("after shutdown the log holds %d rows, newest %+v; want 10 rows and one \"and 5 more\" row", len(es), es[0])
	}
}
