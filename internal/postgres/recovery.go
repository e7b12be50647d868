package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

// recoveryLockKey is the transaction-level advisory lock that serialises
// OpenRecoveryRequest across replicas ("lkrecovr" in ASCII), so the per-account and
// per-IP counts cannot both be read as "room left" by two racing requests. Opening a
// request is rare and rate-limited, so one lock for all of them costs nothing.
const recoveryLockKey int64 = 0x6c6b7265636f7672

const recoveryColumns = `id, coalesce(user_id, 0), subject, status, challenge, cancel_hash, failures,
	created_at, expires_at, ip, user_agent, method, key_fingerprint, key_created_at, token_name,
	verified_at, decided_at, reason, cancelled_at, reminders`

func scanRecovery(row pgx.Row) (auth.RecoveryRequest, error) {
	var r auth.RecoveryRequest
	err := row.Scan(&r.ID, &r.UserID, &r.Subject, &r.Status, &r.Challenge, &r.CancelHash, &r.Failures,
		timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt}, &r.IP, &r.UserAgent, &r.Method, &r.KeyFingerprint,
		timeCol{&r.KeyCreatedAt}, &r.TokenName, timeCol{&r.VerifiedAt}, timeCol{&r.DecidedAt}, &r.Reason,
		timeCol{&r.CancelledAt}, &r.Reminders)
	return r, err
}

// OpenRecoveryRequest counts and inserts in one transaction under recoveryLockKey.
func (s *Store) OpenRecoveryRequest(ctx context.Context, r *auth.RecoveryRequest, lim auth.RecoveryLimit) (bool, time.Time, error) {
	var (
		opened bool
		oldest time.Time
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		opened, oldest = false, time.Time{}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, recoveryLockKey); err != nil {
			return err
		}
		for _, c := range []struct {
			col, val string
			limit    int
		}{{"subject", r.Subject, lim.PerSubject}, {"ip", r.IP, lim.PerIP}} {
			var n int
			var first time.Time
			// col is one of two constants above, never input.
			if err := tx.QueryRow(ctx, `SELECT count(*), min(created_at) FROM recovery_requests
				WHERE `+c.col+` = $1 AND created_at >= $2`, c.val, ts(lim.Since)).Scan(&n, timeCol{&first}); err != nil {
				return err
			}
			if n >= c.limit {
				oldest = first
				return nil
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO recovery_requests
			(id, user_id, subject, status, challenge, cancel_hash, failures, created_at, expires_at, ip, user_agent)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
			r.ID, nullUser(r.UserID), r.Subject, r.Status, r.Challenge, r.CancelHash, r.Failures,
			ts(r.CreatedAt), ts(r.ExpiresAt), r.IP, r.UserAgent)
		opened = err == nil
		return err
	})
	if err != nil {
		return false, time.Time{}, mapErr("open recovery request", err)
	}
	return opened, oldest, nil
}

// RecoveryRequest returns the request (decoys included) or ErrNotFound.
func (s *Store) RecoveryRequest(ctx context.Context, id auth.RecoveryRequestID) (*auth.RecoveryRequest, error) {
	var r auth.RecoveryRequest
	err := s.queryRow(ctx, func(row pgx.Row) (err error) { r, err = scanRecovery(row); return err },
		`SELECT `+recoveryColumns+` FROM recovery_requests WHERE id = $1`, id)
	if err != nil {
		return nil, mapErr("recovery request", err)
	}
	return &r, nil
}

// ListRecoveryRequests returns the requests of real accounts, newest first.
func (s *Store) ListRecoveryRequests(ctx context.Context, status string, limit int) ([]auth.RecoveryRequest, error) {
	rs, err := query(ctx, s, func(r pgx.CollectableRow) (auth.RecoveryRequest, error) { return scanRecovery(r) },
		`SELECT `+recoveryColumns+` FROM recovery_requests
		WHERE user_id IS NOT NULL AND ($1 = '' OR status = $1)
		ORDER BY created_at DESC, id DESC LIMIT $2`, status, limit)
	return rs, mapErr("list recovery requests", err)
}

// VerifyRecoveryRequest is the exactly-once step: one conditional update.
func (s *Store) VerifyRecoveryRequest(ctx context.Context, id auth.RecoveryRequestID, ev auth.RecoveryEvidence, now time.Time) (bool, error) {
	n, err := s.exec(ctx, `UPDATE recovery_requests SET status = $1,
			method = $2, key_fingerprint = $3, key_created_at = $4, token_name = $5, verified_at = $6,
			evidence_token_id = $10, evidence_key_id = $11
		WHERE id = $7 AND status = $8 AND expires_at > $9`,
		auth.RecoveryVerified, ev.Method, ev.KeyFingerprint, ts(ev.KeyCreatedAt), ev.TokenName,
		ts(ev.VerifiedAt), id, auth.RecoveryPending, ts(now), nullID(int64(ev.TokenID)), nullID(int64(ev.KeyID)))
	if err != nil {
		return false, mapErr("verify recovery request", err)
	}
	return one(n), nil
}

// SetRecoveryStatus moves the request between statuses with one conditional update.
func (s *Store) SetRecoveryStatus(ctx context.Context, id auth.RecoveryRequestID, from []string, to string, at time.Time, reason string) (bool, error) {
	n, err := s.exec(ctx, `UPDATE recovery_requests SET status = $1, decided_at = $2, reason = $3
		WHERE id = $4 AND status = ANY($5)`, to, ts(at), reason, id, from)
	if err != nil {
		return false, mapErr("set recovery status", err)
	}
	return one(n), nil
}

// CancelRecoveryRequest cancels an open request by its cancel token's hash.
func (s *Store) CancelRecoveryRequest(ctx context.Context, hash []byte, now time.Time) (*auth.RecoveryRequest, error) {
	var r auth.RecoveryRequest
	err := s.queryRow(ctx, func(row pgx.Row) (err error) { r, err = scanRecovery(row); return err },
		`UPDATE recovery_requests SET status = $1, cancelled_at = $2, decided_at = $2
		WHERE cancel_hash = $3 AND status IN ($4, $5) RETURNING `+recoveryColumns,
		auth.RecoveryCancelled, ts(now), hash, auth.RecoveryPending, auth.RecoveryVerified)
	if err != nil {
		return nil, mapErr("cancel recovery request", err)
	}
	return &r, nil
}

// ApproveRecoveryRequest does every effect of an approval in one transaction, so a
// crash leaves either nothing done or an account with no MFA, no session and a
// working reset link.
func (s *Store) ApproveRecoveryRequest(ctx context.Context, id auth.RecoveryRequestID, reason string, now time.Time, reset *auth.PasswordReset) (auth.UserID, error) {
	var user auth.UserID
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// The evidence is re-checked in the approving statement itself, so a token
		// revoked or a key removed before it ran can never be approved on; one removed
		// after it is removed after the approval.
		err := tx.QueryRow(ctx, `UPDATE recovery_requests SET status = $1, decided_at = $2, reason = $3
			WHERE id = $4 AND status = $5 AND user_id IS NOT NULL AND (
				(evidence_token_id IS NULL AND evidence_key_id IS NULL)
				OR EXISTS (SELECT 1 FROM access_tokens t WHERE t.id = recovery_requests.evidence_token_id
					AND t.user_id = recovery_requests.user_id AND (t.expires_at IS NULL OR t.expires_at > $2))
				OR EXISTS (SELECT 1 FROM ssh_keys k WHERE k.id = recovery_requests.evidence_key_id
					AND k.user_id = recovery_requests.user_id))
			RETURNING user_id`,
			auth.RecoveryApproved, ts(now), reason, id, auth.RecoveryVerified).Scan(&user)
		if err != nil {
			return err // no row: unknown or not verified, ErrNotFound
		}
		if _, err := tx.Exec(ctx, `UPDATE recovery_requests SET status = $1, decided_at = $2, reason = $3
			WHERE user_id = $4 AND id <> $5 AND status IN ($6, $7)`,
			auth.RecoveryClosed, ts(now), "another recovery request was approved", user, id,
			auth.RecoveryPending, auth.RecoveryVerified); err != nil {
			return err
		}
		// Before the factors: it locks the user's row (the lock order deleteSessions explains).
		if _, err := deleteSessions(ctx, tx, user, 0); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM totp_credentials WHERE user_id = $1`,
			`DELETE FROM webauthn_credentials WHERE user_id = $1`,
			`DELETE FROM totp_pending WHERE user_id = $1`,
			`DELETE FROM recovery_codes WHERE user_id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, user); err != nil {
				return err
			}
		}
		reset.UserID = user
		return insertPasswordReset(ctx, tx, reset)
	})
	if err != nil {
		return 0, mapErr("approve recovery request", err)
	}
	return user, nil
}

// MarkRecoveryReminder records reminder n once.
func (s *Store) MarkRecoveryReminder(ctx context.Context, id auth.RecoveryRequestID, n int) (bool, error) {
	c, err := s.exec(ctx, `UPDATE recovery_requests SET reminders = $1
		WHERE id = $2 AND status = $3 AND reminders < $1`, n, id, auth.RecoveryVerified)
	if err != nil {
		return false, mapErr("mark recovery reminder", err)
	}
	return one(c), nil
}

// nullID stores an absent id (0) as NULL.
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// CancelRecoveryRequests cancels the user's matching requests with one update.
func (s *Store) CancelRecoveryRequests(ctx context.Context, user auth.UserID, m auth.RecoveryMatch, now time.Time, reason string) ([]auth.RecoveryRequestID, error) {
	q := `UPDATE recovery_requests SET status = $1, decided_at = $2, reason = $3
		WHERE user_id = $4 AND status = $5 AND (evidence_token_id = $6 OR evidence_key_id = $7) RETURNING id`
	args := []any{auth.RecoveryCancelled, ts(now), reason, user, auth.RecoveryVerified, int64(m.TokenID), int64(m.KeyID)}
	if m.Open {
		q = `UPDATE recovery_requests SET status = $1, decided_at = $2, reason = $3
			WHERE user_id = $4 AND status IN ($5, $6) RETURNING id`
		args = []any{auth.RecoveryCancelled, ts(now), reason, user, auth.RecoveryPending, auth.RecoveryVerified}
	}
	ids, err := query(ctx, s, pgx.RowTo[auth.RecoveryRequestID], q, args...)
	return ids, mapErr("cancel recovery requests", err)
}
