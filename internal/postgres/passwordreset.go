package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

// CreatePasswordReset stores a reset link (only its hash) and deletes the user's
// other links in the same transaction: a newer link kills the older ones.
func (s *Store) CreatePasswordReset(ctx context.Context, r *auth.PasswordReset) error {
	return mapErr("create password reset", s.tx(ctx, func(tx pgx.Tx) error {
		return insertPasswordReset(ctx, tx, r)
	}))
}

func insertPasswordReset(ctx context.Context, tx pgx.Tx, r *auth.PasswordReset) error {
	if _, err := tx.Exec(ctx, `DELETE FROM password_resets WHERE user_id = $1`, r.UserID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO password_resets (token_hash, user_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4)`, r.TokenHash, r.UserID, ts(r.CreatedAt), ts(r.ExpiresAt))
	return err
}

// PasswordReset returns the live link with this hash.
func (s *Store) PasswordReset(ctx context.Context, hash []byte, now time.Time) (*auth.PasswordReset, error) {
	r := &auth.PasswordReset{}
	err := s.queryRow(ctx, func(row pgx.Row) error {
		return row.Scan(&r.TokenHash, &r.UserID, timeCol{&r.CreatedAt}, timeCol{&r.ExpiresAt})
	}, `SELECT token_hash, user_id, created_at, expires_at FROM password_resets
		WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2`, hash, ts(now))
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
		if _, err = tx.Exec(ctx, `DELETE FROM password_resets WHERE user_id = $1 AND token_hash <> $2`, user, hash); err != nil {
			return err
		}
		if !revokeCredentials {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM access_tokens WHERE user_id = $1`, user); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM ssh_keys WHERE user_id = $1`, user)
		return err
	})
	if err != nil {
		return 0, mapErr("reset password", err)
	}
	return user, nil
}
