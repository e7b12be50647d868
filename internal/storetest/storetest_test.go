package storetest

import (
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgresURLIsFreshDatabase(t *testing.T) {
	u := PostgresURL(t)
	parsed, err := url.Parse(u)
	if err != nil {
		t.Fatalf("PostgresURL = %q: %v", u, err)
	}
	name := strings.TrimPrefix(parsed.Path, "/")
	if !strings.HasPrefix(name, "lk_test_") {
		t.Fatalf("database name %q, want lk_test_…", name)
	}
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatalf("connect to %s: %v", name, err)
	}
	defer conn.Close(t.Context())
	var current string
	var tables int
	if err := conn.QueryRow(t.Context(), `SELECT current_database(),
		(SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public')`).
		Scan(&current, &tables); err != nil {
		t.Fatal(err)
	}
	if current != name || tables != 0 {
		t.Fatalf("connected to %q with %d tables, want %q and none", current, tables, name)
	}
	if other := PostgresURL(t); other == u {
		t.Fatalf("two calls returned the same database %s", u)
	}
}

func TestSQLitePathIsPerTest(t *testing.T) {
	a, b := SQLitePath(t), SQLitePath(t)
	if a == b || !strings.HasSuffix(a, ".db") {
		t.Fatalf("SQLitePath = %q, %q: want two distinct .db paths", a, b)
	}
}
