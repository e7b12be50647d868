package sqlite

import (
	"context"
	"database/sql"

	"github.com/latchkey/latchkey/internal/auth"
)

const selectAttempt = `SELECT failures, locks, locked_until, updated_at, in_flight, in_flight_until, version
	FROM attempts WHERE scope = ? AND key = ?`

// Attempt reads a counter; a missing one is the zero state (Version 0).
func (s *Store) Attempt(ctx context.Context, key auth.AttemptKey) (auth.AttemptState, error) {
	return scanAttempt(s.queryRow(ctx, selectAttempt, key.Scope, key.Key))
}

func scanAttempt(row *sql.Row) (auth.AttemptState, error) {
	var a auth.AttemptState
	err := row.Scan(&a.Failures, &a.Locks, timeCol{&a.LockedUntil}, timeCol{&a.UpdatedAt},
		&a.InFlight, timeCol{&a.InFlightUntil}, &a.Version)
	if err != nil {
		err = mapErr("attempt", err)
		if isNotFound(err) {
			return auth.AttemptState{}, nil
		}
		return auth.AttemptState{}, err
	}
	return a, nil
}

// UpdateAttempts reads each counter, lets its step compute the next state, and writes
// it, all inside one write of the group commit. Writes run one after another on the
// one write connection, so nothing comes between a read and its write: under any
// contention every caller's update lands on the first try. The write commits before
// UpdateAttempts returns, in its own savepoint, never inside a wider transaction of the
// caller's. The steps run on the writer goroutine: they must only compute.
func (s *Store) UpdateAttempts(ctx context.Context, steps []auth.AttemptStep) ([]auth.AttemptState, error) {
	var out []auth.AttemptState
	err := s.write(ctx, func(t *wtx) error {
		out = out[:0]
		for _, st := range steps {
			next, err := applyAttemptStep(ctx, t, st)
			if err != nil {
				return err
			}
			out = append(out, next)
		}
		return nil
	})
	if err != nil {
		return nil, mapErr("update attempts", err)
	}
	return out, nil
}

// applyAttemptStep reads st's counter, runs the step and writes what it returns,
// inside the caller's write (UpdateAttempts, FinishSignIn).
func applyAttemptStep(ctx context.Context, t *wtx, st auth.AttemptStep) (auth.AttemptState, error) {
	prev, err := scanAttempt(t.QueryRowContext(ctx, selectAttempt, st.Key.Scope, st.Key.Key))
	if err != nil {
		return prev, err
	}
	next, write := st.Step(prev)
	if !write {
		return prev, nil
	}
	// The writer is the only one writing: the row read above is the row written.
	_, err = t.ExecContext(ctx, `INSERT INTO attempts
		(scope, key, failures, locks, locked_until, updated_at, in_flight, in_flight_until, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)
		ON CONFLICT (scope, key) DO UPDATE SET failures = excluded.failures, locks = excluded.locks,
			locked_until = excluded.locked_until, updated_at = excluded.updated_at,
			in_flight = excluded.in_flight, in_flight_until = excluded.in_flight_until,
			version = attempts.version + 1`,
		st.Key.Scope, st.Key.Key, next.Failures, next.Locks, micros(next.LockedUntil), micros(next.UpdatedAt),
		next.InFlight, micros(next.InFlightUntil))
	if err != nil {
		return prev, err
	}
	next.Version = prev.Version + 1
	return next, nil
}
