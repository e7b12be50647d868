package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

// CreateEmailLink stores the link and retires the user's earlier unused links of the
// same purpose in the same transaction.
func (s *Store) CreateEmailLink(ctx context.Context, l *auth.EmailLink) error {
	return mapErr("create email link", s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM email_links WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL`,
			l.UserID, l.Purpose); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO email_links (token_hash, user_id, purpose, email, email_key, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, l.TokenHash, l.UserID, l.Purpose, l.Email, fold(l.Email), ts(l.CreatedAt), ts(l.ExpiresAt))
		return err
	}))
}

// ConfirmEmail follows an address link in one transaction; see auth.Store. Two
// accounts verifying one address at once cannot both win: the partial unique index
// refuses the second, and its transaction rolls back.
func (s *Store) ConfirmEmail(ctx context.Context, hash []byte, now time.Time, undo *auth.EmailLink) (*auth.EmailConfirmed, error) {
	var res *auth.EmailConfirmed
	err := s.tx(ctx, func(tx pgx.Tx) error {
		res = &auth.EmailConfirmed{}
		l := &res.Link
		var key string
		err := tx.QueryRow(ctx, `UPDATE email_links SET used_at = $1
			WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
			RETURNING user_id, purpose, email, email_key, created_at, expires_at`, ts(now), hash).
			Scan(&l.UserID, &l.Purpose, &l.Email, &key, timeCol{&l.CreatedAt}, timeCol{&l.ExpiresAt})
		if err != nil {
			return err
		}
		// Confirmations of one address take turns: two accounts verifying it at once
		// would otherwise each lock their own row and wait on the other's (the unique
		// index, the drop of the other copy), a deadlock PostgreSQL breaks by failing
		// one of them.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('latchkey-email:' || $1, 0))`, key); err != nil {
			return err
		}
		var curKey string
		var verified bool
		// FOR UPDATE: the account's address is read and then replaced, and sign-ins
		// and other session-ending changes lock this row too.
		if err := tx.QueryRow(ctx, `SELECT email, email_key, email_verified FROM users WHERE id = $1 FOR UPDATE`, l.UserID).
			Scan(&res.Previous, &curKey, &verified); err != nil {
			return err
		}
		if l.Purpose == auth.EmailLinkVerify && (curKey != key || verified) {
			return auth.ErrNotFound
		}
		var taken int
		err = tx.QueryRow(ctx, `SELECT 1 FROM users WHERE email_key = $1 AND email_verified AND id <> $2`, key, l.UserID).Scan(&taken)
		if err == nil {
			return auth.ErrNotFound // verified by another account first: it keeps the address
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET email = $1, email_key = $2, email_verified = TRUE WHERE id = $3`,
			l.Email, key, l.UserID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `UPDATE users SET email = '', email_key = ''
			WHERE email_key = $1 AND NOT email_verified AND id <> $2 RETURNING id`, key, l.UserID)
		if err != nil {
			return err
		}
		res.Dropped, err = pgx.CollectRows(rows, pgx.RowTo[auth.UserID])
		if err != nil {
			return err
		}
		if l.Purpose == auth.EmailLinkVerify {
			return nil
		}
		// The address changed: links sent to, or about, the old one die with it.
		if _, err := tx.Exec(ctx, `DELETE FROM password_resets WHERE user_id = $1`, l.UserID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM email_links WHERE user_id = $1 AND token_hash <> $2 AND purpose <> 'undo'`,
			l.UserID, hash); err != nil {
			return err
		}
		if l.Purpose == auth.EmailLinkUndo {
			if _, err := tx.Exec(ctx, `DELETE FROM email_links WHERE user_id = $1 AND purpose = 'undo' AND token_hash <> $2`,
				l.UserID, hash); err != nil {
				return err
			}
			_, err := deleteSessions(ctx, tx, l.UserID, 0)
			return err
		}
		if undo != nil && verified && res.Previous != "" {
			undo.UserID, undo.Purpose, undo.Email = l.UserID, auth.EmailLinkUndo, res.Previous
			if _, err := tx.Exec(ctx, `INSERT INTO email_links (token_hash, user_id, purpose, email, email_key, created_at, expires_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, undo.TokenHash, undo.UserID, undo.Purpose, undo.Email, fold(undo.Email),
				ts(undo.CreatedAt), ts(undo.ExpiresAt)); err != nil {
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
	err := s.queryRow(ctx, func(r pgx.Row) error {
		return r.Scan(&l.UserID, &l.Purpose, &l.Email, timeCol{&l.CreatedAt}, timeCol{&l.ExpiresAt})
	}, `SELECT user_id, purpose, email, created_at, expires_at FROM email_links
		WHERE user_id = $1 AND purpose = 'change' AND used_at IS NULL AND expires_at > $2
		ORDER BY created_at DESC LIMIT 1`, user, ts(now))
	if err != nil {
		return nil, mapErr("pending email change", err)
	}
	return l, nil
}
