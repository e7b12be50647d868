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

// UpdateAttempts reads each counter, lets its step compute the next state, and writes
// it, all inside one write of the group commit (auth.AttemptUpdater). Writes run one
// after another on the one write connection, so nothing comes between a read and its
// write: under any contention every caller's update lands on the first try, where a
// compare-and-swap would have most callers lose and re-read. The write commits before
// UpdateAttempts returns, in its own savepoint, never inside a wider transaction of the
// caller's. The steps run on the writer goroutine: they must only compute.
func (s *Store) UpdateAttempts(ctx context.Context, steps []auth.AttemptStep) ([]auth.AttemptState, int, error) {
	var out []auth.AttemptState
	refused := -1
	var refusal error
	err := s.write(ctx, func(t *wtx) error {
		out, refused, refusal = out[:0], -1, nil
		for i, st := range steps {
			next, ref, err := applyAttemptStep(ctx, t, st)
			if err != nil {
				return err
			}
			if ref != nil {
				refused, refusal = i, ref
				return ref // rolls back the steps before it too
			}
			out = append(out, next)
		}
		return nil
	})
	switch {
	case err == nil:
		return out, -1, nil
	case refused >= 0 && err == refusal:
		return nil, refused, err
	default:
		return nil, -1, mapErr("update attempts", err)
	}
}

// applyAttemptStep reads st's counter, runs the step and writes what it returns,
// inside the caller's write. A step that refuses gives its error as refusal, having
// written nothing; err is a failure of the store.
func applyAttemptStep(ctx context.Context, t *wtx, st auth.AttemptStep) (state auth.AttemptState, refusal, err error) {
	prev, err := scanAttempt(t.QueryRowContext(ctx, selectAttempt, st.Key.Scope, st.Key.Key))
	if err != nil {
		return prev, nil, err
	}
	next, write, refusal := st.Step(prev)
	if refusal != nil || !write {
		return prev, refusal, nil
	}
	n, err := saveAttempt(ctx, t, st.Key, prev, next)
	if err != nil {
		return prev, nil, err
	}
	if !one(n) {
		return prev, nil, errors.New("sqlite: attempt counter changed inside a serialized write")
	}
	next.Version = prev.Version + 1
	return next, nil, nil
}
