package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

// SetPendingTOTP stores, replacing any earlier one, a setup awaiting confirmation.
func (s *Store) SetPendingTOTP(ctx context.Context, p *auth.PendingTOTP) error {
	_, err := s.exec(ctx, `INSERT INTO totp_pending (user_id, key_id, ciphertext, expires_at, session_id)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id) DO UPDATE SET key_id = excluded.key_id,
			ciphertext = excluded.ciphertext, expires_at = excluded.expires_at, session_id = excluded.session_id`,
		p.UserID, p.Secret.KeyID, p.Secret.Ciphertext, ts(p.ExpiresAt), p.SessionID)
	return mapErr("set pending totp", err)
}

// PendingTOTP returns the user's pending setup, expired or not.
func (s *Store) PendingTOTP(ctx context.Context, user auth.UserID) (*auth.PendingTOTP, error) {
	var p auth.PendingTOTP
	err := s.queryRow(ctx, func(r pgx.Row) error {
		return r.Scan(&p.UserID, &p.Secret.KeyID, &p.Secret.Ciphertext, timeCol{&p.ExpiresAt}, &p.SessionID)
	}, `SELECT user_id, key_id, ciphertext, expires_at, session_id FROM totp_pending WHERE user_id = $1`, user)
	if err != nil {
		return nil, mapErr("pending totp", err)
	}
	return &p, nil
}

// EnableTOTP inserts the credential, drops the pending setup, replaces the recovery
// codes and ends the other sessions in one transaction: a crash leaves either the old
// state or a fully enrolled account, never a credential without codes. An existing
// credential fails the INSERT on the primary key inside the transaction (a concurrent
// one waits for the first to commit, then fails), so two confirmations cannot both
// enable (ErrConflict).
func (s *Store) EnableTOTP(ctx context.Context, c *auth.TOTPCredential, codeHashes [][]byte, keep auth.SessionID) error {
	return mapErr("enable totp", s.tx(ctx, func(tx pgx.Tx) error {
		// First: it locks the user's row (the lock order deleteSessions explains).
		// With a security key MFA is on already: the app only joins it, and the codes
		// and the other sessions stay.
		var joins bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = u.id)
			FROM users u WHERE u.id = $1 FOR UPDATE`, c.UserID).Scan(&joins); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if !joins {
			if _, err := deleteSessions(ctx, tx, c.UserID, keep); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO totp_credentials
			(user_id, key_id, ciphertext, last_step, created_at) VALUES ($1, $2, $3, $4, $5)`,
			c.UserID, c.Secret.KeyID, c.Secret.Ciphertext, c.LastStep, ts(c.CreatedAt)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM totp_pending WHERE user_id = $1`, c.UserID); err != nil {
			return err
		}
		if joins {
			return nil
		}
		return replaceCodes(ctx, tx, c.UserID, codeHashes, c.CreatedAt)
	}))
}

// TOTP returns the enabled credential or ErrNotFound.
func (s *Store) TOTP(ctx context.Context, user auth.UserID) (*auth.TOTPCredential, error) {
	var c auth.TOTPCredential
	err := s.queryRow(ctx, func(r pgx.Row) error {
		return r.Scan(&c.UserID, &c.Secret.KeyID, &c.Secret.Ciphertext, &c.LastStep, timeCol{&c.CreatedAt})
	}, `SELECT user_id, key_id, ciphertext, last_step, created_at FROM totp_credentials WHERE user_id = $1`, user)
	if err != nil {
		return nil, mapErr("totp", err)
	}
	return &c, nil
}

// AdvanceTOTPStep records step as the last accepted one only if it is later than the
// stored one, in one conditional statement: a code is accepted at most once, and never
// one of an earlier step, however many requests (on however many replicas) race.
func (s *Store) AdvanceTOTPStep(ctx context.Context, user auth.UserID, step int64) (bool, error) {
	n, err := s.exec(ctx, `UPDATE totp_credentials SET last_step = $1 WHERE user_id = $2 AND last_step < $1`,
		step, user)
	if err != nil {
		return false, mapErr("advance totp step", err)
	}
	return one(n), nil
}

// DisableMFA deletes the credential, the pending setup, every recovery code and the
// other sessions in one transaction, and reports whether a credential existed.
func (s *Store) DisableMFA(ctx context.Context, user auth.UserID, keep auth.SessionID) (bool, error) {
	var existed bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// First: it locks the user's row (the lock order deleteSessions explains).
		if _, err := deleteSessions(ctx, tx, user, keep); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM totp_credentials WHERE user_id = $1`, user)
		if err != nil {
			return err
		}
		existed = one(tag.RowsAffected())
		tag, err = tx.Exec(ctx, `DELETE FROM webauthn_credentials WHERE user_id = $1`, user)
		if err != nil {
			return err
		}
		existed = existed || tag.RowsAffected() > 0
		for _, q := range []string{
			`DELETE FROM totp_pending WHERE user_id = $1`,
			`DELETE FROM recovery_codes WHERE user_id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, user); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, mapErr("disable mfa", err)
	}
	return existed, nil
}

// UseRecoveryCode marks the user's unused code with this hash as used, in one
// conditional statement: under any concurrency a code succeeds at most once, and the
// user id in the condition keeps one account's code from working on another.
func (s *Store) UseRecoveryCode(ctx context.Context, user auth.UserID, hash []byte, at time.Time) (bool, error) {
	n, err := s.exec(ctx, `UPDATE recovery_codes SET used_at = $1
		WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL`, ts(at), user, hash)
	if err != nil {
		return false, mapErr("use recovery code", err)
	}
	return one(n), nil
}

// ReplaceRecoveryCodes deletes the user's codes and inserts the new ones in one
// transaction, so after the commit no old code works and a crash leaves exactly one
// set. The credential is read FOR SHARE inside the transaction: a concurrent
// DisableMFA must wait for this commit (and then deletes the new codes too), or has
// already committed and this call finds no credential and changes nothing.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, user auth.UserID, hashes [][]byte, at time.Time) error {
	return mapErr("replace recovery codes", s.tx(ctx, func(tx pgx.Tx) error {
		// The user's row, read FOR SHARE, serialises this with every change of second
		// factors (each locks that row first).
		var on bool
		err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = u.id)
			OR EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = u.id)
			FROM users u WHERE u.id = $1 FOR SHARE`, user).Scan(&on)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && !on) {
			return auth.ErrNotFound
		}
		if err != nil {
			return err
		}
		return replaceCodes(ctx, tx, user, hashes, at)
	}))
}

// replaceCodes swaps the user's recovery codes inside the caller's transaction, the
// new set in one statement.
func replaceCodes(ctx context.Context, tx pgx.Tx, user auth.UserID, hashes [][]byte, at time.Time) error {
	if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, user); err != nil {
		return err
	}
	if len(hashes) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at)
		SELECT $1, h, $3 FROM unnest($2::bytea[]) AS h`, user, hashes, ts(at))
	return err
}

// RecoveryCodeCounts counts the user's codes and the unused ones.
// MFAState reports which second factors the user has and counts the codes, in one query.
func (s *Store) MFAState(ctx context.Context, user auth.UserID) (auth.MFAState, error) {
	var m auth.MFAState
	err := s.queryRow(ctx, func(r pgx.Row) error {
		return r.Scan(&m.TOTP, &m.WebAuthnKeys, timeCol{&m.Deadline}, &m.Codes.Total, &m.Codes.Remaining)
	}, `SELECT EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = $1),
		(SELECT count(*) FROM webauthn_credentials WHERE user_id = $1),
		(SELECT deadline FROM mfa_deadlines WHERE user_id = $1),
		count(*), count(*) FILTER (WHERE used_at IS NULL) FROM recovery_codes WHERE user_id = $1`, user)
	m.Enabled = m.TOTP || m.WebAuthnKeys > 0
	return m, mapErr("mfa state", err)
}

func (s *Store) RecoveryCodeCounts(ctx context.Context, user auth.UserID) (auth.RecoveryCodeCounts, error) {
	var c auth.RecoveryCodeCounts
	err := s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&c.Total, &c.Remaining) },
		`SELECT count(*), count(*) FILTER (WHERE used_at IS NULL) FROM recovery_codes WHERE user_id = $1`, user)
	return c, mapErr("recovery code counts", err)
}

// SetMFADeadline stores the deadline unless an earlier one is stored (one upsert whose
// update is conditional), and returns the one in force.
func (s *Store) SetMFADeadline(ctx context.Context, user auth.UserID, at time.Time) (time.Time, error) {
	var d time.Time
	err := s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(timeCol{&d}) },
		`WITH up AS (INSERT INTO mfa_deadlines (user_id, deadline) VALUES ($1, $2)
			ON CONFLICT (user_id) DO UPDATE SET deadline = LEAST(mfa_deadlines.deadline, excluded.deadline)
			RETURNING deadline)
		SELECT deadline FROM up`, user, ts(at))
	return d, mapErr("set mfa deadline", err)
}
