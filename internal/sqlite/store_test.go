package sqlite

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey/internal/auth"
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
	ms, err := migrations()
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
