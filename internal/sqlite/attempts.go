package sqlite

import (
	"context"

	"github.com/latchkey/latchkey/internal/auth"
)

// Attempt reads a failure counter; a missing one is the zero state (Version 0).
func (s *Store) Attempt(ctx context.Context, key auth.AttemptKey) (auth.AttemptState, error) {
	var a auth.AttemptState
	err := s.queryRow(ctx, `SELECT failures, locks, locked_until, updated_at, version
		FROM attempts WHERE scope = ? AND key = ?`, key.Scope, key.Key).
		Scan(&a.Failures, &a.Locks, timeCol{&a.LockedUntil}, timeCol{&a.UpdatedAt}, &a.Version)
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
	var err error
	if prev.Version == 0 {
		n, err = s.exec(ctx, `INSERT INTO attempts
			(scope, key, failures, locks, locked_until, updated_at, version)
			VALUES (?, ?, ?, ?, ?, ?, 1)
			ON CONFLICT (scope, key) DO NOTHING`,
			key.Scope, key.Key, next.Failures, next.Locks, micros(next.LockedUntil), micros(next.UpdatedAt))
	} else {
		n, err = s.exec(ctx, `UPDATE attempts
			SET failures = ?, locks = ?, locked_until = ?, updated_at = ?, version = version + 1
			WHERE scope = ? AND key = ? AND version = ?`,
			next.Failures, next.Locks, micros(next.LockedUntil), micros(next.UpdatedAt),
			key.Scope, key.Key, prev.Version)
	}
	if err != nil {
		return false, mapErr("save attempt", err)
	}
	return one(n), nil
}
