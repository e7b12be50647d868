package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/latchkey/latchkey/internal/auth"
)

const selectAttempt = `SELECT failures, locks, locked_until, updated_at, version
	FROM attempts WHERE scope = ? AND key = ?`

// Attempt reads a failure counter; a missing one is the zero state (Version 0).
func (s *Store) Attempt(ctx context.Context, key auth.AttemptKey) (auth.AttemptState, error) {
	return scanAttempt(s.queryRow(ctx, selectAttempt, key.Scope, key.Key))
}

func scanAttempt(row *sql.Row) (auth.AttemptState, error) {
	var a auth.AttemptState
	err := row.Scan(&a.Failures, &a.Locks, timeCol{&a.LockedUntil}, timeCol{&a.UpdatedAt}, &a.Version)
	if err != nil {
		err = mapErr("attempt", err)
		if isNotFound(err) {
			return auth.AttemptState{}, nil
		}
		return auth.AttemptState{}, err
	}
	return a, nil
}

// SaveAttempt writes next only if the stored version still equals prev.Version, as one
// autocommitted statement (never inside a wider transaction, so a request that fails
// later cannot roll the count back). Of several writers starting from the same state,
// exactly one wins; the losers re-read and try again in the Service.
func (s *Store) SaveAttempt(ctx context.Context, key auth.AttemptKey, prev, next auth.AttemptState) (bool, error) {
	var n int64
	err := s.write(ctx, func(t *wtx) (err error) {
		n, err = saveAttempt(ctx, t, key, prev, next)
		return err
	})
	if err != nil {
		return false, mapErr("save attempt", err)
	}
	return one(n), nil
}

// saveAttempt is SaveAttempt's statement inside a write.
func saveAttempt(ctx context.Context, t *wtx, key auth.AttemptKey, prev, next auth.AttemptState) (int64, error) {
	if prev.Version == 0 {
		return rowsAffected(t.ExecContext(ctx, `INSERT INTO attempts
			(scope, key, failures, locks, locked_until, updated_at, version)
			VALUES (?, ?, ?, ?, ?, ?, 1)
			ON CONFLICT (scope, key) DO NOTHING`,
			key.Scope, key.Key, next.Failures, next.Locks, micros(next.LockedUntil), micros(next.UpdatedAt)))
	}
	return rowsAffected(t.ExecContext(ctx, `UPDATE attempts
		SET failures = ?, locks = ?, locked_until = ?, updated_at = ?, version = version + 1
		WHERE scope = ? AND key = ? AND version = ?`,
		next.Failures, next.Locks, micros(next.LockedUntil), micros(next.UpdatedAt),
		key.Scope, key.Key, prev.Version))
}

// UpdateAttempt reads the counter, lets step compute the next state, and writes it,
// all inside one write of the group commit (auth.AttemptUpdater). Writes run one after
// another on the one write connection, so nothing comes between the read and the
// write: under any contention every caller's update lands on the first try, where a
// compare-and-swap would have most callers lose and re-read. The write commits before
// UpdateAttempt returns, in its own savepoint, never inside a wider transaction of
// the caller's. step runs on the writer goroutine: it must only compute.
func (s *Store) UpdateAttempt(ctx context.Context, key auth.AttemptKey,
	step func(prev auth.AttemptState) (next auth.AttemptState, write bool, err error)) (auth.AttemptState, error) {
	var out auth.AttemptState
	var stepErr error
	err := s.write(ctx, func(t *wtx) error {
		prev, err := scanAttempt(t.QueryRowContext(ctx, selectAttempt, key.Scope, key.Key))
		if err != nil {
			return err
		}
		next, write, err := step(prev)
		out, stepErr = prev, err
		if err != nil || !write {
			return err
		}
		n, err := saveAttempt(ctx, t, key, prev, next)
		if err != nil {
			return err
		}
		if !one(n) {
			return errors.New("sqlite: attempt counter changed inside a serialized write")
		}
		out = next
		out.Version = prev.Version + 1
		return nil
	})
	if err != nil && (stepErr == nil || err != stepErr) {
		return out, mapErr("update attempt", err)
	}
	return out, err
}
