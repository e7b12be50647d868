package sqlite

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// CreatePasswordReset stores a reset link (only its hash) and deletes the user's
// other links in the same write: a newer link kills the older ones.
func (s *Store) CreatePasswordReset(ctx context.Context, r *auth.PasswordReset) error {
	return mapErr("create password reset", s.write(ctx, func(tx *wtx) error {
		return insertPasswordReset(ctx, tx, r)
	}))
}

func insertPasswordReset(ctx context.Context, tx *wtx, r *auth.PasswordReset) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM password_resets WHERE user_id = ?`, r.UserID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO password_resets (token_hash, user_id, created_at, expires_at)
		VALUES (?, ?, ?, ?)`, r.TokenHash, r.UserID, micros(r.CreatedAt), micros(r.ExpiresAt))
	return err
}

// PasswordReset returns the live link with this hash.
func (s *Store) PasswordReset(ctx context.Context, hash []byte, now time.Time) (*auth.PasswordReset, error) {
	r := &auth.PasswordReset{}
	err := s.queryRow(ctx, `SELECT token_hash, user_id, created_at, expires_at FROM password_resets
		WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?`, hash, micros(now)).
		Scan(&r.TokenHash, &r.UserID, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt})
	if err != nil {
		return nil, mapErr("password reset", err)
	}
	return r, nil
}

// ResetPassword consumes the link with one conditional update (unused and unexpired at
// now), so a link works once however many requests race; then, in the same
// transaction, it sets the password and ends every session and every other link, and
// with revokeCredentials every token and SSH key.
func (s *Store) ResetPassword(ctx context.Context, hash []byte, passwordHash string, now time.Time, revokeCredentials bool) (auth.UserID, error) {
	var user auth.UserID
	err := s.write(ctx, func(tx *wtx) error {
		err := tx.QueryRowContext(ctx, `UPDATE password_resets SET used_at = ?
			WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
			RETURNING user_id`, micros(now), hash, micros(now)).Scan(&user)
		if err != nil {
			return err // no row: unknown, used or expired, all ErrNotFound
		}
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, passwordHash, user)
		if err := mustOne(rowsAffected(res, err)); err != nil {
			return err
		}
		if _, err := deleteSessions(ctx, tx, user, 0); err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, `DELETE FROM password_resets WHERE user_id = ? AND token_hash <> ?`, user, hash); err != nil {
			return err
		}
		if !revokeCredentials {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM access_tokens WHERE user_id = ?`, user); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM ssh_keys WHERE user_id = ?`, user)
		return err
	})
	if err != nil {
		return 0, mapErr("reset password", err)
	}
	return user, nil
}
