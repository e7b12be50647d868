package postgres

import (
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/migrations"
	"github.com/latchkey/latchkey/internal/storetest"
)

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) auth.Store {
		s := open(t, storetest.PostgresURL(t))
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate = %v", err)
		}
		return s
	})
}

// TestMigrateConcurrently starts four replicas on one fresh database at once: the
// advisory lock must make every one succeed and apply each migration once.
func TestMigrateConcurrently(t *testing.T) {
	url := storetest.PostgresURL(t)
	stores := make([]*Store, 4)
	for i := range stores {
		stores[i] = open(t, url)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() { errs[i] = s.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: Migrate = %v", i, err)
		}
	}
	if err := stores[0].Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate again = %v", err)
	}
	ms, err := migrations.Load(migrationFiles, "migrations", "postgres")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := stores[0].queryRow(t.Context(), func(r pgx.Row) error { return r.Scan(&n) },
		`SELECT count(*) FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	if n != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
}

func TestOpenHidesURL(t *testing.T) {
	_, err := Open(t.Context(), "postgres://user:hunter2@[::1")
	if err == nil {
		t.Fatal("Open(bad URL) = nil error")
	}
	if got := err.Error(); strings.Contains(got, "hunter2") {
		t.Fatalf("Open(bad URL) error %q shows the password", got)
	}
}
