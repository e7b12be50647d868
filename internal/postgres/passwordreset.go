package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

// CreatePasswordReset stores a reset link (only its hash).
func (s *Store) CreatePasswordReset(ctx context.Context, r *auth.PasswordReset) error {
	_, err := s.exec(ctx, `INSERT INTO password_resets (token_hash, user_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4)`, r.TokenHash, r.UserID, ts(r.CreatedAt), ts(r.ExpiresAt))
	return mapErr("create password reset", err)
}

// ResetPassword consumes the link with one conditional update (unused and unexpired at
// now), so a link works once however many requests race; then, in the same
// transaction, it sets the password and ends every session and every other link.
func (s *Store) ResetPassword(ctx context.Context, hash []byte, passwordHash string, now time.Time) (auth.UserID, error) {
	var user auth.UserID
	err := s.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE password_resets SET used_at = $1
			WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
			RETURNING user_id`, ts(now), hash).Scan(&user)
		if err != nil {
			return err // no row: unknown, used or expired, all ErrNotFound
		}
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, passwordHash, user)
		if err := mustOne(tag.RowsAffected(), err); err != nil {
			return err
		}
		if _, err := deleteSessions(ctx, tx, user, 0); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM password_resets WHERE user_id = $1 AND token_hash <> $2`, user, hash)
		return err
	})
	if err != nil {
		return 0, mapErr("reset password", err)
	}
	return user, nil
}
