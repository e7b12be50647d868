package auth_test

import (
	"path/filepath"
	"testing"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/sqlite"
)

// openStore opens a migrated SQLite store in a fresh file, closed when t ends. The
// Service's tests run on it through auth.Store; that both stores keep the interface's
// promises is the conformance suite's job (internal/storetest).
func openStore(t *testing.T) auth.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "latchkey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	return st
}
