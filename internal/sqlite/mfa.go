package sqlite

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// SetPendingTOTP stores, replacing any earlier one, a setup awaiting confirmation.
func (s *Store) SetPendingTOTP(ctx context.Context, p *auth.PendingTOTP) error {
	_, err := s.exec(ctx, `INSERT INTO totp_pending (user_id, key_id, ciphertext, expires_at, session_id)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET key_id = excluded.key_id,
			ciphertext = excluded.ciphertext, expires_at = excluded.expires_at, session_id = excluded.session_id`,
		p.UserID, p.Secret.KeyID, p.Secret.Ciphertext, micros(p.ExpiresAt), p.SessionID)
	return mapErr("set pending totp", err)
}

// PendingTOTP returns the user's pending setup, expired or not.
func (s *Store) PendingTOTP(ctx context.Context, user auth.UserID) (*auth.PendingTOTP, error) {
	var p auth.PendingTOTP
	err := s.queryRow(ctx, `SELECT user_id, key_id, ciphertext, expires_at, session_id
		FROM totp_pending WHERE user_id = ?`, user).
		Scan(&p.UserID, &p.Secret.KeyID, &p.Secret.Ciphertext, timeCol{&p.ExpiresAt}, &p.SessionID)
	if err != nil {
		return nil, mapErr("pending totp", err)
	}
	return &p, nil
}

// EnableTOTP inserts the credential, drops the pending setup, replaces the recovery
// codes and ends the other sessions in one transaction: a crash leaves either the old
// state or a fully enrolled account, never a credential without codes. An existing
// credential fails the INSERT on the primary key inside the transaction, so two
// concurrent confirmations cannot both enable (ErrConflict).
func (s *Store) EnableTOTP(ctx context.Context, c *auth.TOTPCredential, codeHashes [][]byte, keep auth.SessionID) error {
	return mapErr("enable totp", s.write(ctx, func(tx *wtx) error {
		// With a security key MFA is on already: the app only joins it, and the codes
		// and the other sessions stay.
		var joins bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = ?)`,
			c.UserID).Scan(&joins); err != nil {
			return err
		}
		if !joins {
			if _, err := deleteSessions(ctx, tx, c.UserID, keep); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO totp_credentials
			(user_id, key_id, ciphertext, last_step, created_at) VALUES (?, ?, ?, ?, ?)`,
			c.UserID, c.Secret.KeyID, c.Secret.Ciphertext, c.LastStep, micros(c.CreatedAt)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM totp_pending WHERE user_id = ?`, c.UserID); err != nil {
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
	err := s.queryRow(ctx, `SELECT user_id, key_id, ciphertext, last_step, created_at
		FROM totp_credentials WHERE user_id = ?`, user).
		Scan(&c.UserID, &c.Secret.KeyID, &c.Secret.Ciphertext, &c.LastStep, timeCol{&c.CreatedAt})
	if err != nil {
		return nil, mapErr("totp", err)
	}
	return &c, nil
}

const advanceStep = `UPDATE totp_credentials SET last_step = ? WHERE user_id = ? AND last_step < ?`

// AdvanceTOTPStep records step as the last accepted one only if it is later than the
// stored one, in one conditional statement: a code is accepted at most once, and never
// one of an earlier step, however many requests race.
func (s *Store) AdvanceTOTPStep(ctx context.Context, user auth.UserID, step int64) (bool, error) {
	n, err := s.exec(ctx, advanceStep, step, user, step)
	if err != nil {
		return false, mapErr("advance totp step", err)
	}
	return one(n), nil
}

// DisableMFA deletes the credential, the pending setup, every recovery code and the
// other sessions in one transaction, and reports whether a credential existed.
func (s *Store) DisableMFA(ctx context.Context, user auth.UserID, keep auth.SessionID) (bool, error) {
	var existed bool
	err := s.write(ctx, func(tx *wtx) error {
		if _, err := deleteSessions(ctx, tx, user, keep); err != nil {
			return err
		}
		n, err := rowsAffected(tx.ExecContext(ctx, `DELETE FROM totp_credentials WHERE user_id = ?`, user))
		if err != nil {
			return err
		}
		existed = one(n)
		n, err = rowsAffected(tx.ExecContext(ctx, `DELETE FROM webauthn_credentials WHERE user_id = ?`, user))
		if err != nil {
			return err
		}
		existed = existed || n > 0
		for _, q := range []string{
			`DELETE FROM totp_pending WHERE user_id = ?`,
			`DELETE FROM recovery_codes WHERE user_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, user); err != nil {
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
	n, err := s.exec(ctx, `UPDATE recovery_codes SET used_at = ?
		WHERE user_id = ? AND code_hash = ? AND used_at IS NULL`, micros(at), user, hash)
	if err != nil {
		return false, mapErr("use recovery code", err)
	}
	return one(n), nil
}

// ReplaceRecoveryCodes deletes the user's codes and inserts the new ones in one
// transaction, so after the commit no old code works and a crash leaves exactly one
// set. The credential is checked inside the same IMMEDIATE transaction, so a
// concurrent DisableMFA cannot leave codes behind on an account without TOTP.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, user auth.UserID, hashes [][]byte, at time.Time) error {
	return mapErr("replace recovery codes", s.write(ctx, func(tx *wtx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM totp_credentials WHERE user_id = ?)
			+ (SELECT count(*) FROM webauthn_credentials WHERE user_id = ?)`, user, user).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return auth.ErrNotFound
		}
		return replaceCodes(ctx, tx, user, hashes, at)
	}))
}

// replaceCodes swaps the user's recovery codes inside the caller's transaction.
func replaceCodes(ctx context.Context, tx *wtx, user auth.UserID, hashes [][]byte, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, user); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`, user, h, micros(at)); err != nil {
			return err
		}
	}
	return nil
}

// RecoveryCodeCounts counts the user's codes and the unused ones.
// MFAState reports which second factors the user has and counts the codes, in one query.
func (s *Store) MFAState(ctx context.Context, user auth.UserID) (auth.MFAState, error) {
	var m auth.MFAState
	err := s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = ?),
		(SELECT count(*) FROM webauthn_credentials WHERE user_id = ?),
		(SELECT deadline FROM mfa_deadlines WHERE user_id = ?),
		count(*), count(*) FILTER (WHERE used_at IS NULL) FROM recovery_codes WHERE user_id = ?`, user, user, user, user).
		Scan(&m.TOTP, &m.WebAuthnKeys, timeCol{&m.Deadline}, &m.Codes.Total, &m.Codes.Remaining)
	m.Enabled = m.TOTP || m.WebAuthnKeys > 0
	return m, mapErr("mfa state", err)
}

func (s *Store) RecoveryCodeCounts(ctx context.Context, user auth.UserID) (auth.RecoveryCodeCounts, error) {
	var c auth.RecoveryCodeCounts
	err := s.queryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE used_at IS NULL)
		FROM recovery_codes WHERE user_id = ?`, user).Scan(&c.Total, &c.Remaining)
	return c, mapErr("recovery code counts", err)
}

// SetMFADeadline stores the deadline unless an earlier one is stored (one upsert whose
// update is conditional), and returns the one in force.
func (s *Store) SetMFADeadline(ctx context.Context, user auth.UserID, at time.Time) (time.Time, error) {
	if _, err := s.exec(ctx, `INSERT INTO mfa_deadlines (user_id, deadline) VALUES (?, ?)
		ON CONFLICT (user_id) DO UPDATE SET deadline = excluded.deadline WHERE mfa_deadlines.deadline > excluded.deadline`,
		user, micros(at)); err != nil {
		return time.Time{}, mapErr("set mfa deadline", err)
	}
	var d time.Time
	err := s.queryRow(ctx, `SELECT deadline FROM mfa_deadlines WHERE user_id = ?`, user).Scan(timeCol{&d})
	return d, mapErr("set mfa deadline", err)
}
