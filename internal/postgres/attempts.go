package postgres

import (
	"context"
	"errors"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

const selectAttempt = `SELECT failures, locks, locked_until, updated_at, in_flight, in_flight_until, version
	FROM attempts WHERE scope = $1 AND key = $2`

func scanAttempt(r pgx.Row, a *auth.AttemptState) error {
	return r.Scan(&a.Failures, &a.Locks, timeCol{&a.LockedUntil}, timeCol{&a.UpdatedAt},
		&a.InFlight, timeCol{&a.InFlightUntil}, &a.Version)
}

// Attempt reads a counter; a missing one is the zero state (Version 0).
func (s *Store) Attempt(ctx context.Context, key auth.AttemptKey) (auth.AttemptState, error) {
	var a auth.AttemptState
	err := s.queryRow(ctx, func(r pgx.Row) error { return scanAttempt(r, &a) }, selectAttempt, key.Scope, key.Key)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.AttemptState{}, nil
	}
	if err != nil {
		return auth.AttemptState{}, mapErr("attempt", err)
	}
	return a, nil
}

// UpdateAttempts runs the steps in one transaction of their own, each on its counter's
// row locked (FOR UPDATE) from the read to the write, so concurrent updates of one
// counter on every replica queue on the row lock instead of racing, and none retries.
// The counters are locked in one order (see sortedAttemptSteps), so two calls cannot
// deadlock. It commits before it returns.
func (s *Store) UpdateAttempts(ctx context.Context, steps []auth.AttemptStep) ([]auth.AttemptState, error) {
	// Sorted by counter, stably: steps on one counter keep their order, so each still
	// sees the writes of the ones before it.
	order := make([]int, len(steps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return compareKeys(steps[a].Key, steps[b].Key) })
	out := make([]auth.AttemptState, len(steps))
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, i := range order {
			next, err := applyAttemptStep(ctx, tx, steps[i])
			if err != nil {
				return err
			}
			out[i] = next
		}
		return nil
	})
	if err != nil {
		return nil, mapErr("update attempts", err)
	}
	return out, nil
}

// applyAttemptStep reads st's counter locked inside the transaction tx is in, runs the
// step and writes what it returns (UpdateAttempts, FinishSignIn). A missing counter is
// first inserted as the zero state, so that there is a row to lock: two transactions
// creating one counter then queue like any others.
func applyAttemptStep(ctx context.Context, tx querier, st auth.AttemptStep) (auth.AttemptState, error) {
	var prev auth.AttemptState
	err := scanAttempt(tx.QueryRow(ctx, selectAttempt+` FOR UPDATE`, st.Key.Scope, st.Key.Key), &prev)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := tx.Exec(ctx, `INSERT INTO attempts (scope, key, failures, locks, in_flight, version)
			VALUES ($1, $2, 0, 0, 0, 0) ON CONFLICT (scope, key) DO NOTHING`, st.Key.Scope, st.Key.Key); err != nil {
			return prev, err
		}
		err = scanAttempt(tx.QueryRow(ctx, selectAttempt+` FOR UPDATE`, st.Key.Scope, st.Key.Key), &prev)
	}
	if err != nil {
		return prev, err
	}
	next, write := st.Step(prev)
	if !write {
		return prev, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE attempts
		SET failures = $1, locks = $2, locked_until = $3, updated_at = $4, in_flight = $5, in_flight_until = $6,
			version = version + 1
		WHERE scope = $7 AND key = $8`,
		next.Failures, next.Locks, ts(next.LockedUntil), ts(next.UpdatedAt), next.InFlight, ts(next.InFlightUntil),
		st.Key.Scope, st.Key.Key); err != nil {
		return prev, err
	}
	next.Version = prev.Version + 1
	return next, nil
}
