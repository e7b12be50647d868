package e2e

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// secrets collects every secret a user saw, to look for them where they must not be.
type secrets map[string]string // value → what it is

func (sc secrets) add(what, v string) {
	if v != "" {
		sc[v] = what
	}
}

// exerciseSecrets runs every flow that mints a secret and returns them all.
func exerciseSecrets(t *testing.T, s *testServer) secrets {
	t.Helper()
	sc := secrets{}
	s.signup(t, "mallory", "mallory@example.com")
	tok := s.login(t, "mallory")
	sc.add("session token", tok)
	secret, codes := s.enrol(t, tok)
	sc.add("TOTP secret (base32)", secret)
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(secret)
	if err != nil {
		t.Fatal(err)
	}
	sc.add("TOTP secret (bytes)", string(raw))
	sc.add("TOTP secret (hex)", hex.EncodeToString(raw))
	for _, c := range codes {
		sc.add("recovery code", c)
		sc.add("recovery code (canonical)", strings.ReplaceAll(c, "-", ""))
	}
	mt := s.pending(t, "mallory")
	sc.add("mfa token", mt)
	tok2 := s.mfa(t, mt, "recovery_code", codes[0]).want(t, 200).str("session_token")
	sc.add("session token", tok2)
	pat := s.call(t, "POST", "/api/v1/tokens", tok2, map[string]any{"name": "dump"}).want(t, 201).str("token")
	sc.add("personal access token", pat)
	s.call(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "mallory@example.com"}).want(t, 202)
	for _, m := range s.outbox(t) {
		if match := resetLink.FindStringSubmatch(m.Body); match != nil {
			sc.add("reset link token", match[1])
		}
	}
	if len(sc) < 20 {
		t.Fatalf("collected only %d secrets", len(sc))
	}
	return sc
}

func (sc secrets) findIn(t *testing.T, where string, data []byte) {
	t.Helper()
	lower := bytes.ToLower(data)
	for v, what := range sc {
		if bytes.Contains(data, []byte(v)) || bytes.Contains(lower, bytes.ToLower([]byte(v))) {
			t.Errorf("%s holds a %s in the clear", where, what)
		}
	}
}

// TestNoSecretInDatabaseOrLogs reads the raw SQLite files (WAL included) and every
// PostgreSQL row, and the server log, looking for any secret a user was shown.
func TestNoSecretInDatabaseOrLogs(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(t, "sqlite:"+filepath.Join(dir, "latchkey.db"))
		s := startServer(t, cfg, nil)
		sc := exerciseSecrets(t, s)
		files, _ := filepath.Glob(filepath.Join(dir, "latchkey.db*"))
		if len(files) < 2 {
			t.Fatalf("expected the database and its WAL, found %v", files)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			sc.findIn(t, filepath.Base(f), data)
			if st, _ := os.Stat(f); st.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s has mode %v, want no group/other access", f, st.Mode().Perm())
			}
		}
		sc.findIn(t, "the server log", []byte(s.Logs.String()))
		st, err := os.Stat(cfg.SecretKeyFile)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("secret key file mode = %v (%v), want 0600", st.Mode().Perm(), err)
		}
	})
	t.Run("postgres", func(t *testing.T) {
		for _, b := range backends() {
			if b.name != "postgres" {
				continue
			}
			url := b.url(t)
			s := startServer(t, testConfig(t, url), nil)
			sc := exerciseSecrets(t, s)
			sc.findIn(t, "the PostgreSQL dump", dumpPostgres(t, url))
			sc.findIn(t, "the server log", []byte(s.Logs.String()))
		}
	})
}

// dumpPostgres returns every row of every table in the public schema as JSON text
// (bytea comes out as \x hex, which the hex secrets cover).
func dumpPostgres(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, tbl := range tables {
		rows, err := conn.Query(ctx, `SELECT row_to_json(t)::text FROM `+pgx.Identifier{tbl}.Sanitize()+` t`)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			buf.WriteString(l + "\n")
		}
	}
	if buf.Len() < 1000 {
		t.Fatalf("the dump is suspiciously small (%d bytes, tables %v)", buf.Len(), tables)
	}
	return buf.Bytes()
}
