package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

const recoveryColumns = `id, coalesce(user_id, 0), subject, status, challenge, cancel_hash, failures,
	created_at, expires_at, ip, user_agent, method, key_fingerprint, key_created_at, token_name,
	verified_at, decided_at, reason, cancelled_at, reminders`

func scanRecovery(row interface{ Scan(...any) error }) (*auth.RecoveryRequest, error) {
	var r auth.RecoveryRequest
	err := row.Scan(&r.ID, &r.UserID, &r.Subject, &r.Status, &r.Challenge, &r.CancelHash, &r.Failures,
		timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt}, &r.IP, &r.UserAgent, &r.Method, &r.KeyFingerprint,
		timeCol{&r.KeyCreatedAt}, &r.TokenName, timeCol{&r.VerifiedAt}, timeCol{&r.DecidedAt}, &r.Reason,
		timeCol{&r.CancelledAt}, &r.Reminders)
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// OpenRecoveryRequest counts and inserts in one IMMEDIATE transaction: SQLite has one
// writer at a time, so two requests racing for the last slot cannot both see room.
func (s *Store) OpenRecoveryRequest(ctx context.Context, r *auth.RecoveryRequest, lim auth.RecoveryLimit) (bool, time.Time, error) {
	var (
		opened bool
		oldest time.Time
	)
	err := s.write(ctx, func(tx *wtx) error {
		opened, oldest = false, time.Time{}
		for _, c := range []struct {
			col, val string
			limit    int
		}{{"subject", r.Subject, lim.PerSubject}, {"ip", r.IP, lim.PerIP}} {
			var n int
			var first sql.NullInt64
			// col is one of two constants above, never input.
			if err := tx.QueryRowContext(ctx, `SELECT count(*), min(created_at) FROM recovery_requests
				WHERE `+c.col+` = ? AND created_at >= ?`, c.val, micros(lim.Since)).Scan(&n, &first); err != nil {
				return err
			}
			if n >= c.limit {
				if first.Valid {
					oldest = time.UnixMicro(first.Int64).UTC()
				}
				return nil
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO recovery_requests
			(id, user_id, subject, status, challenge, cancel_hash, failures, created_at, expires_at, ip, user_agent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, nullUser(r.UserID), r.Subject, r.Status, r.Challenge, r.CancelHash, r.Failures,
			micros(r.CreatedAt), micros(r.ExpiresAt), r.IP, r.UserAgent)
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
	r, err := scanRecovery(s.db.QueryRowContext(ctx,
		`SELECT `+recoveryColumns+` FROM recovery_requests WHERE id = ?`, id))
	return r, mapErr("recovery request", err)
}

// ListRecoveryRequests returns the requests of real accounts, newest first.
func (s *Store) ListRecoveryRequests(ctx context.Context, status string, limit int) ([]auth.RecoveryRequest, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+recoveryColumns+` FROM recovery_requests
		WHERE user_id IS NOT NULL AND (? = '' OR status = ?)
		ORDER BY created_at DESC, id DESC LIMIT ?`, status, status, limit)
	if err != nil {
		return nil, mapErr("list recovery requests", err)
	}
	defer rows.Close()
	var rs []auth.RecoveryRequest
	for rows.Next() {
		r, err := scanRecovery(rows)
		if err != nil {
			return nil, mapErr("list recovery requests", err)
		}
		rs = append(rs, *r)
	}
	return rs, mapErr("list recovery requests", rows.Err())
}

// VerifyRecoveryRequest is the exactly-once step: one conditional update.
func (s *Store) VerifyRecoveryRequest(ctx context.Context, id auth.RecoveryRequestID, ev auth.RecoveryEvidence, now time.Time) (bool, error) {
	n, err := s.exec(ctx, `UPDATE recovery_requests SET status = ?,
			method = ?, key_fingerprint = ?, key_created_at = ?, token_name = ?, verified_at = ?,
			evidence_token_id = ?, evidence_key_id = ?
		WHERE id = ? AND status = ? AND expires_at > ?`,
		auth.RecoveryVerified, ev.Method, ev.KeyFingerprint, micros(ev.KeyCreatedAt), ev.TokenName,
		micros(ev.VerifiedAt), nullID(int64(ev.TokenID)), nullID(int64(ev.KeyID)), id, auth.RecoveryPending, micros(now))
	if err != nil {
		return false, mapErr("verify recovery request", err)
	}
	return one(n), nil
}

// SetRecoveryStatus moves the request between statuses with one conditional update.
func (s *Store) SetRecoveryStatus(ctx context.Context, id auth.RecoveryRequestID, from []string, to string, at time.Time, reason string) (bool, error) {
	if len(from) == 0 {
		return false, nil
	}
	args := []any{to, micros(at), reason, id}
	for _, f := range from {
		args = append(args, f)
	}
	n, err := s.exec(ctx, `UPDATE recovery_requests SET status = ?, decided_at = ?, reason = ?
		WHERE id = ? AND status IN (?`+strings.Repeat(", ?", len(from)-1)+`)`, args...)
	if err != nil {
		return false, mapErr("set recovery status", err)
	}
	return one(n), nil
}

// CancelRecoveryRequest cancels an open request by its cancel token's hash.
func (s *Store) CancelRecoveryRequest(ctx context.Context, hash []byte, now time.Time) (*auth.RecoveryRequest, error) {
	var r *auth.RecoveryRequest
	err := s.write(ctx, func(t *wtx) error {
		var err error
		r, err = scanRecovery(t.QueryRowContext(ctx, `UPDATE recovery_requests
			SET status = ?, cancelled_at = ?, decided_at = ?
			WHERE cancel_hash = ? AND status IN (?, ?) RETURNING `+recoveryColumns,
			auth.RecoveryCancelled, micros(now), micros(now), hash, auth.RecoveryPending, auth.RecoveryVerified))
		return err
	})
	if err != nil {
		return nil, mapErr("cancel recovery request", err)
	}
	return r, nil
}

// ApproveRecoveryRequest does every effect of an approval in one transaction, so a
// crash leaves either nothing done or an account with no MFA, no session and a
// working reset link.
func (s *Store) ApproveRecoveryRequest(ctx context.Context, id auth.RecoveryRequestID, reason string, now time.Time, reset *auth.PasswordReset) (auth.UserID, error) {
	var user auth.UserID
	err := s.write(ctx, func(tx *wtx) error {
		// The evidence is re-checked in the approving statement itself, so a token
		// revoked or a key removed a moment earlier can never be approved on.
		err := tx.QueryRowContext(ctx, `UPDATE recovery_requests SET status = ?, decided_at = ?, reason = ?
			WHERE id = ? AND status = ? AND user_id IS NOT NULL AND (
				(evidence_token_id IS NULL AND evidence_key_id IS NULL)
				OR EXISTS (SELECT 1 FROM access_tokens t WHERE t.id = recovery_requests.evidence_token_id
					AND t.user_id = recovery_requests.user_id AND (t.expires_at IS NULL OR t.expires_at > ?))
				OR EXISTS (SELECT 1 FROM ssh_keys k WHERE k.id = recovery_requests.evidence_key_id
					AND k.user_id = recovery_requests.user_id))
			RETURNING user_id`,
			auth.RecoveryApproved, micros(now), reason, id, auth.RecoveryVerified, micros(now)).Scan(&user)
		if err != nil {
			return err // no row: unknown or not verified, ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `UPDATE recovery_requests SET status = ?, decided_at = ?, reason = ?
			WHERE user_id = ? AND id <> ? AND status IN (?, ?)`,
			auth.RecoveryClosed, micros(now), "another recovery request was approved", user, id,
			auth.RecoveryPending, auth.RecoveryVerified); err != nil {
			return err
		}
		if _, err := deleteSessions(ctx, tx, user, 0); err != nil {
			return err
		}
		for _, q := range []string{
			`DELETE FROM totp_credentials WHERE user_id = ?`,
			`DELETE FROM webauthn_credentials WHERE user_id = ?`,
			`DELETE FROM totp_pending WHERE user_id = ?`,
			`DELETE FROM recovery_codes WHERE user_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, user); err != nil {
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
	c, err := s.exec(ctx, `UPDATE recovery_requests SET reminders = ?
		WHERE id = ? AND status = ? AND reminders < ?`, n, id, auth.RecoveryVerified, n)
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
	var ids []auth.RecoveryRequestID
	err := s.write(ctx, func(tx *wtx) error {
		ids = nil
		q := `UPDATE recovery_requests SET status = ?, decided_at = ?, reason = ?
			WHERE user_id = ? AND status = ? AND (evidence_token_id = ? OR evidence_key_id = ?) RETURNING id`
		args := []any{auth.RecoveryCancelled, micros(now), reason, user, auth.RecoveryVerified, int64(m.TokenID), int64(m.KeyID)}
		if m.Open {
			q = `UPDATE recovery_requests SET status = ?, decided_at = ?, reason = ?
				WHERE user_id = ? AND status IN (?, ?) RETURNING id`
			args = []any{auth.RecoveryCancelled, micros(now), reason, user, auth.RecoveryPending, auth.RecoveryVerified}
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id auth.RecoveryRequestID
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, mapErr("cancel recovery requests", err)
	}
	return ids, nil
}
