package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// CreateEmailLink stores the link and retires the user's earlier unused links of the
// same purpose in the same write.
func (s *Store) CreateEmailLink(ctx context.Context, l *auth.EmailLink) error {
	return mapErr("create email link", s.write(ctx, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM email_links WHERE user_id = ? AND purpose = ? AND used_at IS NULL`,
			l.UserID, l.Purpose); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO email_links (token_hash, user_id, purpose, email, email_key, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, l.TokenHash, l.UserID, l.Purpose, l.Email, fold(l.Email), micros(l.CreatedAt), micros(l.ExpiresAt))
		return err
	}))
}

// ConfirmEmail follows an address link in one write; see auth.Store.
func (s *Store) ConfirmEmail(ctx context.Context, hash []byte, now time.Time, undo *auth.EmailLink) (*auth.EmailConfirmed, error) {
	var res *auth.EmailConfirmed
	err := s.write(ctx, func(tx *wtx) error {
		res = &auth.EmailConfirmed{}
		l := &res.Link
		var key string
		// The link is spent by a conditional update, so it works once however many
		// requests race; a later check that fails rolls the spending back.
		err := tx.QueryRowContext(ctx, `UPDATE email_links SET used_at = ?
			WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?
			RETURNING user_id, purpose, email, email_key, created_at, expires_at`, micros(now), hash, micros(now)).
			Scan(&l.UserID, &l.Purpose, &l.Email, &key, timeCol{&l.CreatedAt}, timeCol{&l.ExpiresAt})
		if err != nil {
			return err
		}
		var curKey string
		var verified bool
		if err := tx.QueryRowContext(ctx, `SELECT email, email_key, email_verified FROM users WHERE id = ?`, l.UserID).
			Scan(&res.Previous, &curKey, &verified); err != nil {
			return err
		}
		if l.Purpose == auth.EmailLinkVerify && (curKey != key || verified) {
			return auth.ErrNotFound
		}
		var taken int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE email_key = ? AND email_verified = 1 AND id <> ?`, key, l.UserID).Scan(&taken)
		if err == nil {
			return auth.ErrNotFound // verified by another account first: it keeps the address
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, email_key = ?, email_verified = 1 WHERE id = ?`,
			l.Email, key, l.UserID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `UPDATE users SET email = '', email_key = ''
			WHERE email_key = ? AND email_verified = 0 AND id <> ? RETURNING id`, key, l.UserID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id auth.UserID
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			res.Dropped = append(res.Dropped, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if l.Purpose == auth.EmailLinkVerify {
			return nil
		}
		// The address changed: links sent to, or about, the old one die with it.
		if _, err := tx.ExecContext(ctx, `DELETE FROM password_resets WHERE user_id = ?`, l.UserID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM email_links WHERE user_id = ? AND token_hash <> ? AND purpose <> 'undo'`,
			l.UserID, hash); err != nil {
			return err
		}
		if l.Purpose == auth.EmailLinkUndo {
			if _, err := tx.ExecContext(ctx, `DELETE FROM email_links WHERE user_id = ? AND purpose = 'undo' AND token_hash <> ?`,
				l.UserID, hash); err != nil {
				return err
			}
			_, err := deleteSessions(ctx, tx, l.UserID, 0)
			return err
		}
		if undo != nil && verified && res.Previous != "" {
			undo.UserID, undo.Purpose, undo.Email = l.UserID, auth.EmailLinkUndo, res.Previous
			if _, err := tx.ExecContext(ctx, `INSERT INTO email_links (token_hash, user_id, purpose, email, email_key, created_at, expires_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, undo.TokenHash, undo.UserID, undo.Purpose, undo.Email, fold(undo.Email),
				micros(undo.CreatedAt), micros(undo.ExpiresAt)); err != nil {
				return err
			}
			res.Undo = true
		}
		return nil
	})
	if err != nil {
		return nil, mapErr("confirm email", err)
	}
	return res, nil
}

// PendingEmailChange returns the user's newest live change link.
func (s *Store) PendingEmailChange(ctx context.Context, user auth.UserID, now time.Time) (*auth.EmailLink, error) {
	l := &auth.EmailLink{}
	err := s.queryRow(ctx, `SELECT user_id, purpose, email, created_at, expires_at FROM email_links
		WHERE user_id = ? AND purpose = 'change' AND used_at IS NULL AND expires_at > ?
		ORDER BY created_at DESC LIMIT 1`, user, micros(now)).
		Scan(&l.UserID, &l.Purpose, &l.Email, timeCol{&l.CreatedAt}, timeCol{&l.ExpiresAt})
	if err != nil {
		return nil, mapErr("pending email change", err)
	}
	return l, nil
}
