package sqlite

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/migrations"
	"github.com/latchkey/latchkey/internal/storetest"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), storetest.SQLitePath(t))
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) auth.Store { return newStore(t) })
}

func TestOpenCreatesPrivateFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "nested", "latchkey.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Dir(path), 0o700},
		{path, 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != c.mode {
			t.Errorf("mode of %s = %o, want %o", c.path, got, c.mode)
		}
	}
	var mode, sync, fk, busy string
	for _, p := range []struct {
		pragma string
		dst    *string
	}{
		{"journal_mode", &mode}, {"synchronous", &sync}, {"foreign_keys", &fk}, {"busy_timeout", &busy},
	} {
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+p.pragma).Scan(p.dst); err != nil {
			t.Fatalf("PRAGMA %s: %v", p.pragma, err)
		}
	}
	if mode != "wal" || sync != "2" || fk != "1" || busy != "10000" {
		t.Errorf("pragmas journal_mode=%s synchronous=%s foreign_keys=%s busy_timeout=%s, want wal 2 1 10000",
			mode, sync, fk, busy)
	}
}

func TestOpenRejectsURIs(t *testing.T) {
	for _, path := range []string{"", "file:x.db", filepath.Join(t.TempDir(), "a.db?mode=ro")} {
		if s, err := Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q) = nil error, want one", path)
		}
	}
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	path := storetest.SQLitePath(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := Open(t.Context(), path)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Migrate(t.Context())
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Migrate = %v", err)
		}
	}
	s := newStoreAt(t, path)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate = %v", err)
	}
	ms, err := migrations.Load(migrationFiles, "migrations", "sqlite")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(t.Context(), `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
}

func newStoreAt(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestConcurrentWritersNeverBusy loads the single SQLite writer from many goroutines
// with both autocommitted writes and transactions: IMMEDIATE transactions and
// busy_timeout must turn the contention into waiting, never into SQLITE_BUSY.
func TestConcurrentWritersNeverBusy(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	u := &auth.User{Username: "alice", Email: "alice@example.com", PasswordHash: "h", CreatedAt: time.Unix(1, 0)}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	cred := &auth.TOTPCredential{UserID: u.ID, Secret: auth.EncryptedSecret{KeyID: "k", Ciphertext: []byte("c")},
		LastStep: 1, CreatedAt: time.Unix(1, 0)}
	if err := s.EnableTOTP(ctx, cred, nil, 0); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 32*16)
	for g := range 32 {
		wg.Go(func() {
			for i := range 16 {
				var err error
				switch i % 4 {
				case 0:
					key := auth.AttemptKey{Scope: "pw-ip", Key: fmt.Sprint(g)}
					_, err = s.UpdateAttempts(ctx, []auth.AttemptStep{{Key: key, Step: func(prev auth.AttemptState) (auth.AttemptState, bool) {
						return auth.AttemptState{Failures: i, UpdatedAt: time.Unix(int64(i), 0)}, true
					}}})
				case 1:
					err = s.ReplaceRecoveryCodes(ctx, u.ID, [][]byte{[]byte(fmt.Sprint(g, i))}, time.Unix(2, 0))
				case 2:
					err = s.AddEvent(ctx, &auth.Event{UserID: u.ID, Time: time.Unix(3, 0), Event: "e", Outcome: "o"})
				case 3:
					_, err = s.AdvanceTOTPStep(ctx, u.ID, int64(g*16+i))
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}
}
