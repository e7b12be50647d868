package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/latchkey/latchkey/internal/auth"
)

// Attempt reads a failure counter; a missing one is the zero state (Version 0).
func (s *Store) Attempt(ctx context.Context, key auth.AttemptKey) (auth.AttemptState, error) {
	var a auth.AttemptState
	err := s.queryRow(ctx, func(r pgx.Row) error {
		return r.Scan(&a.Failures, &a.Locks, timeCol{&a.LockedUntil}, timeCol{&a.UpdatedAt}, &a.Version)
	}, `SELECT failures, locks, locked_until, updated_at, version
		FROM attempts WHERE scope = $1 AND key = $2`, key.Scope, key.Key)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.AttemptState{}, nil
	}
	if err != nil {
		return auth.AttemptState{}, mapErr("attempt", err)
	}
	return a, nil
}

// SaveAttempt writes next only if the stored version still equals prev.Version, as one
// autocommitted statement (never inside a wider transaction, so a request that fails
// later cannot roll the count back). Of several writers starting from the same state,
// exactly one wins: a concurrent INSERT waits for the first and then does nothing, a
// concurrent UPDATE waits for the row lock and then finds the version changed.
func (s *Store) SaveAttempt(ctx context.Context, key auth.AttemptKey, prev, next auth.AttemptState) (bool, error) {
	var n int64
	var err error
	if prev.Version == 0 {
		n, err = s.exec(ctx, `INSERT INTO attempts
			(scope, key, failures, locks, locked_until, updated_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, 1)
			ON CONFLICT (scope, key) DO NOTHING`,
			key.Scope, key.Key, next.Failures, next.Locks, ts(next.LockedUntil), ts(next.UpdatedAt))
	} else {
		n, err = s.exec(ctx, `UPDATE attempts
			SET failures = $1, locks = $2, locked_until = $3, updated_at = $4, version = version + 1
			WHERE scope = $5 AND key = $6 AND version = $7`,
			next.Failures, next.Locks, ts(next.LockedUntil), ts(next.UpdatedAt),
			key.Scope, key.Key, prev.Version)
	}
	if err != nil {
		return false, mapErr("save attempt", err)
	}
	return one(n), nil
}

// applyAttemptStep reads st's counter locked (FOR UPDATE) inside the transaction tx is
// in, runs the step and writes what it returns, so nothing comes between the read and
// the write until the transaction ends. A refusing step's error comes back unchanged,
// having written nothing.
func applyAttemptStep(ctx context.Context, tx querier, st auth.AttemptStep) error {
	var prev auth.AttemptState
	err := tx.QueryRow(ctx, `SELECT failures, locks, locked_until, updated_at, version
		FROM attempts WHERE scope = $1 AND key = $2 FOR UPDATE`, st.Key.Scope, st.Key.Key).
		Scan(&prev.Failures, &prev.Locks, timeCol{&prev.LockedUntil}, timeCol{&prev.UpdatedAt}, &prev.Version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	next, write, refusal := st.Step(prev)
	if refusal != nil || !write {
		return refusal
	}
	var tag pgconn.CommandTag
	if prev.Version == 0 {
		// No row to lock: a counter created meanwhile makes this insert do nothing.
		tag, err = tx.Exec(ctx, `INSERT INTO attempts
			(scope, key, failures, locks, locked_until, updated_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, 1)
			ON CONFLICT (scope, key) DO NOTHING`,
			st.Key.Scope, st.Key.Key, next.Failures, next.Locks, ts(next.LockedUntil), ts(next.UpdatedAt))
	} else {
		tag, err = tx.Exec(ctx, `UPDATE attempts
			SET failures = $1, locks = $2, locked_until = $3, updated_at = $4, version = version + 1
			WHERE scope = $5 AND key = $6`,
			next.Failures, next.Locks, ts(next.LockedUntil), ts(next.UpdatedAt), st.Key.Scope, st.Key.Key)
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return errors.New("postgres: attempt counter created by another transaction meanwhile")
	}
	return nil
}
