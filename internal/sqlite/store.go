// Package sqlite implements auth.Store on an embedded SQLite file through the pure-Go
// modernc.org/sqlite driver, so the single binary needs no C toolchain.
//
// Every connection runs in WAL mode with synchronous=FULL (a committed code use or
// regeneration survives power loss), enforces foreign keys, waits up to ten seconds
// for a lock, and begins transactions IMMEDIATE: a write transaction takes the write
// lock up front instead of upgrading a read lock later, which is what lets SQLite
// deadlock and answer SQLITE_BUSY at once. Readers run concurrently beside the one
// writer. Times are stored as INTEGER Unix microseconds, NULL for the zero time.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey/latchkey/internal/auth"
)

// maxOpenConns bounds the pool. WAL lets readers proceed beside the single writer;
// writers queue on busy_timeout, so more connections would only add waiting writers.
const maxOpenConns = 8

// busyRetries is how many times a write is tried again when SQLite still answers
// SQLITE_BUSY after busy_timeout, so that heavy load shows as latency, not as a
// spurious failure. A statement that answered BUSY changed nothing, so retrying it is
// safe even for the race-settling updates.
const busyRetries = 3

// Store is auth.Store on SQLite. It is safe for concurrent use.
type Store struct {
	db *sql.DB // readers; writes go through w (writer.go)
	w  *writer
	// stmts holds the prepared statements of the hot paths, by query text.
	// SQLite parses and plans a short query in more time than it takes to run it
	// (the session check spent a third of its CPU in the parser), so each query is
	// prepared once and database/sql re-prepares it on each connection as needed.
	stmts sync.Map
}

var _ auth.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path. The parent directory is
// created mode 0700 and the file mode 0600 before SQLite touches it, because the file
// holds password hashes and sealed secrets; SQLite gives the -wal and -shm files the
// same mode. Open does not migrate: call Migrate.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: empty database path")
	}
	// The driver cuts a plain file name at '?' to read its parameters; a path that
	// holds one would open a different file than the one named.
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: database path %q must be a plain file path", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: create database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: create database file: %w", err)
	}

	// busy_timeout comes first so that switching to WAL, which needs a lock, already
	// waits for it when several connections open at once.
	dsn := path + "?_pragma=busy_timeout(10000)" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(ON)" +
		"&_txlock=immediate" +
		"&_dqs=0"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.SetMaxOpenConns(maxOpenConns)
	db.SetMaxIdleConns(maxOpenConns)
	s := &Store{db: db}
	if err := s.Ping(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	// The one write connection, owned by the group-commit goroutine.
	wdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	if s.w, err = newWriter(ctx, wdb); err != nil {
		_ = wdb.Close()
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: open write connection: %w", err)
	}
	return s, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close lets the write in progress finish, then releases the statements and
// connections. Calling it again is harmless.
func (s *Store) Close() error {
	werr := s.w.close()
	s.stmts.Range(func(k, v any) bool {
		_ = v.(*sql.Stmt).Close()
		s.stmts.Delete(k)
		return true
	})
	return errors.Join(werr, s.db.Close())
}

// stmt returns the prepared statement for query, preparing it on first use. Only
// constant query texts may come here: the cache is never pruned.
func (s *Store) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// queryRow is QueryRowContext through a prepared statement. If preparing fails, the
// unprepared query runs instead, so the caller sees the same error from Scan.
func (s *Store) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, query)
	if err != nil {
		return s.db.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// exec runs one write statement, committed in the next batch, and returns how many
// rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	var n int64
	err := s.write(ctx, func(t *wtx) error {
		res, err := t.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// insert runs one INSERT, committed in the next batch, and returns the new row's id.
func (s *Store) insert(ctx context.Context, query string, args ...any) (int64, error) {
	var id int64
	err := s.write(ctx, func(t *wtx) error {
		res, err := t.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	return id, err
}

// retryBusy runs fn again while it fails with SQLITE_BUSY, a bounded number of times.
func retryBusy(ctx context.Context, fn func() error) error {
	var err error
	for range busyRetries {
		if err = fn(); !isBusy(err) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
	}
	return err
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

func isBusy(err error) bool {
	return sqliteCode(err)&0xff == sqlite3.SQLITE_BUSY
}

// mapErr turns constraint violations into the auth package's errors and wraps
// everything else with what was being done. It never hides an error.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		// SQLite names an expression index in the message ("UNIQUE constraint failed:
		// index 'x'") and the columns ("t.c") otherwise, so both spellings are listed.
		conflictFields := []struct{ match, field string }{
			{"users_username_key", "username"},
			{"users.username_key", "username"},
			{"users_email_key", "email"},
			{"users.email_key", "email"},
			{"totp_credentials.user_id", "totp"},
			{"recovery_codes.user_id, recovery_codes.code_hash", "recovery_code"},
			{"token_hash", "token_hash"},
		}
		msg := err.Error()
		for _, c := range conflictFields {
			if strings.Contains(msg, c.match) {
				return fmt.Errorf("sqlite: %s: %w", op, &auth.ConflictError{Field: c.field})
			}
		}
		return fmt.Errorf("sqlite: %s: %w: %w", op, &auth.ConflictError{Field: "unknown"}, err)
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		// The row names a user that does not exist (or was deleted meanwhile).
		return fmt.Errorf("sqlite: %s: user: %w", op, auth.ErrNotFound)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlite: %s: %w", op, auth.ErrNotFound)
	}
	if errors.Is(err, auth.ErrNotFound) || errors.Is(err, auth.ErrConflict) {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// one reports whether exactly one row changed: the only answer that means a
// race-settling statement won.
func one(n int64) bool { return n == 1 }

// mustOne turns "no row changed" into ErrNotFound for updates of a row by id.
func mustOne(n int64, err error) error {
	if err != nil {
		return err
	}
	if n == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// micros is the stored form of t: Unix microseconds, NULL for the zero time so that
// "never" stays distinct from the Unix epoch.
func micros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

// timeCol scans an INTEGER microsecond column (or NULL) into a UTC time.Time.
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(v any) error {
	switch v := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(v).UTC()
	default:
		return fmt.Errorf("sqlite: time column holds %T, want INTEGER", v)
	}
	return nil
}

// fold is the case fold under which usernames and emails are unique. It is done in Go
// because SQLite's lower() and NOCASE fold only ASCII; the postgres store folds the
// same way, so both stores agree on which logins collide.
func fold(s string) string { return strings.ToLower(s) }

func isNotFound(err error) bool { return errors.Is(err, auth.ErrNotFound) }
