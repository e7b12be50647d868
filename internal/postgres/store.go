// Package postgres implements auth.Store on PostgreSQL through pgx, for sites that
// run several Latchkey replicas: every piece of state lives in the database, so a code
// accepted by one replica is refused by another and attempt counts are shared.
//
// Races are settled by single conditional statements under READ COMMITTED: a
// concurrent UPDATE waits for the row lock and re-checks its WHERE clause against the
// committed row, so exactly one of several racers changes it. Times are timestamptz,
// written in UTC at microsecond precision, NULL for the zero time.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/latchkey/latchkey/internal/auth"
)

// maxConns bounds the connections each replica holds, so that several replicas stay
// well inside PostgreSQL's max_connections (100 by default).
const maxConns = 16

// Store is auth.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool *pool
}

var _ auth.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or key=value string) and
// checks that it answers. Open does not migrate: call Migrate.
func Open(ctx context.Context, url string) (*Store, error) {
	p, err := newPool(url, maxConns)
	if err != nil {
		return nil, err
	}
	s := &Store{pool: p}
	if err := s.Ping(ctx); err != nil {
		s.pool.close()
		return nil, err
	}
	return s, nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return mapErr("ping", s.pool.withConn(ctx, func(c *pgx.Conn) error { return c.Ping(ctx) }))
}

// Close releases the connections. Calling it again is harmless.
func (s *Store) Close() error {
	s.pool.close()
	return nil
}

// querier is what both a connection and a transaction offer, so helpers serve both.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// exec runs one autocommitted statement and returns how many rows it changed.
func (s *Store) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	var n int64
	err := s.pool.withConn(ctx, func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, sql, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// queryRow runs a one-row query and scans it with scan.
func (s *Store) queryRow(ctx context.Context, scan func(pgx.Row) error, sql string, args ...any) error {
	return s.pool.withConn(ctx, func(c *pgx.Conn) error { return scan(c.QueryRow(ctx, sql, args...)) })
}

// query runs a query and collects every row with scan.
func query[T any](ctx context.Context, s *Store, scan func(pgx.CollectableRow) (T, error), sql string, args ...any) ([]T, error) {
	var out []T
	err := s.pool.withConn(ctx, func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, scan)
		return err
	})
	return out, err
}

// tx runs fn in one transaction, committing only when fn succeeds.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return s.pool.withConn(ctx, func(c *pgx.Conn) error { return pgx.BeginFunc(ctx, c, fn) })
}

// batchTx runs one transaction whose BEGIN travels in b's round trip (pgx's
// Batch.BeginTx): BEGIN and b's statements go out together, read takes b's results in
// the order queued, then fn, if not nil, may run more statements in the transaction,
// and COMMIT ends it. That is two round trips where tx and a batch take three. Any
// error rolls the transaction back; pgx closes a connection whose rollback fails, and
// the pool destroys one left inside a transaction, so none is reused half-way.
func (s *Store) batchTx(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error, fn func(pgx.Tx) error) error {
	full := &pgx.Batch{}
	full.BeginTx(pgx.TxOptions{})
	full.QueuedQueries = append(full.QueuedQueries, b.QueuedQueries...)
	return s.pool.withConn(ctx, func(c *pgx.Conn) (err error) {
		br := c.SendBatch(ctx, full)
		tx := br.Tx()
		defer func() {
			if err != nil {
				_ = tx.Rollback(ctx) // after the batch is closed; a no-op on a closed transaction
			}
		}()
		if err := readBatch(br, read); err != nil {
			return err
		}
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		return tx.Commit(ctx)
	})
}

// readBatch reads BEGIN's result and then the rest with read, returns the first
// failure, and always closes the batch.
func readBatch(br pgx.BatchResults, read func(pgx.BatchResults) error) (err error) {
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := br.Exec(); err != nil {
		return err
	}
	return read(br)
}

// mapErr turns constraint violations into the auth package's errors and wraps
// everything else with what was being done. It never hides an error.
func mapErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			fields := map[string]string{
				"users_username_key":           "username",
				"users_email_key":              "email",
				"totp_credentials_pkey":        "totp",
				"recovery_codes_user_code_key": "recovery_code",
				"sessions_token_hash_key":      "token_hash",
				"access_tokens_token_hash_key": "token_hash",
				"pending_logins_pkey":          "token_hash",
				"password_resets_pkey":         "token_hash",
			}
			field, ok := fields[pe.ConstraintName]
			if !ok {
				field = pe.ConstraintName
			}
			return fmt.Errorf("postgres: %s: %w", op, &auth.ConflictError{Field: field})
		case "23503": // foreign_key_violation: the user does not exist (any more)
			return fmt.Errorf("postgres: %s: user: %w", op, auth.ErrNotFound)
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("postgres: %s: %w", op, auth.ErrNotFound)
	}
	if errors.Is(err, auth.ErrNotFound) || errors.Is(err, auth.ErrConflict) {
		return err
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
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

// ts is the stored form of t: UTC, truncated to the microsecond (as the SQLite store
// does) so both stores round-trip the same value; NULL for the zero time.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Truncate(time.Microsecond)
}

// timeCol scans a timestamptz (or NULL) into a UTC time.Time.
type timeCol struct{ t *time.Time }

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (c timeCol) ScanTimestamptz(v pgtype.Timestamptz) error {
	switch {
	case !v.Valid:
		*c.t = time.Time{}
	case v.InfinityModifier != pgtype.Finite:
		return errors.New("postgres: infinite timestamp")
	default:
		*c.t = v.Time.UTC()
	}
	return nil
}

// fold is the case fold under which usernames and emails are unique; it must match
// the SQLite store's so both agree on which logins collide.
func fold(s string) string { return strings.ToLower(s) }
