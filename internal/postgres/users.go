package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

const userColumns = `id, username, email, email_verified, password_hash, is_admin, created_at, cred_epoch, disabled`

func scanUser(row pgx.Row) (auth.User, error) {
	var u auth.User
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.PasswordHash,
		&u.IsAdmin, timeCol{&u.CreatedAt}, &u.CredEpoch, &u.Disabled)
	return u, err
}

func (s *Store) oneUser(ctx context.Context, op, sql string, args ...any) (*auth.User, error) {
	var u auth.User
	err := s.queryRow(ctx, func(r pgx.Row) (err error) { u, err = scanUser(r); return err }, sql, args...)
	if err != nil {
		return nil, mapErr(op, err)
	}
	return &u, nil
}

// CreateUser inserts u and sets u.ID. Usernames are unique on their case fold, by
// the unique index. An email is taken only by an account that verified it: the insert
// happens only where no such account exists, and the partial unique index keeps two
// verified copies out whatever races.
func (s *Store) CreateUser(ctx context.Context, u *auth.User) error {
	return mapErr("create user", s.tx(ctx, func(tx pgx.Tx) error {
		var taken int
		err := tx.QueryRow(ctx, `SELECT 1 FROM reserved_usernames WHERE username_key = $1 AND reserved_until > $2`,
			fold(u.Username), ts(u.CreatedAt)).Scan(&taken)
		if err == nil {
			return &auth.ConflictError{Field: "username"}
		} else if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		err = tx.QueryRow(ctx, `INSERT INTO users
			(username, username_key, email, email_key, email_verified, password_hash, is_admin, created_at)
			SELECT $1::text, $2::text, $3::text, $4::text, $5::boolean, $6::text, $7::boolean, $8::timestamptz
			WHERE NOT EXISTS (SELECT 1 FROM users WHERE email_key = $4::text AND email_verified) RETURNING id`,
			u.Username, fold(u.Username), u.Email, fold(u.Email), u.EmailVerified,
			u.PasswordHash, u.IsAdmin, ts(u.CreatedAt)).Scan(&u.ID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: create user: %w", &auth.ConflictError{Field: "email"})
		}
		return err
	}))
}

// UserByID returns the user or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id auth.UserID) (*auth.User, error) {
	return s.oneUser(ctx, "user by id", `SELECT `+userColumns+` FROM users WHERE id = $1`, id)
}

// UserByLogin finds a user whose username, or verified email, folds to the same as login.
func (s *Store) UserByLogin(ctx context.Context, login string) (*auth.User, error) {
	// Validation keeps "@" out of usernames and in emails, and a verified email is
	// unique, so at most one row matches;
	// ORDER BY keeps the answer deterministic should old data break that.
	return s.oneUser(ctx, "user by login", `SELECT `+userColumns+` FROM users
		WHERE username_key = $1 OR (email_key = $1 AND email_verified) ORDER BY id LIMIT 1`, fold(login))
}

// UserByEmail finds the user who verified this email, case-insensitively.
func (s *Store) UserByEmail(ctx context.Context, email string) (*auth.User, error) {
	return s.oneUser(ctx, "user by email", `SELECT `+userColumns+` FROM users WHERE email_key = $1 AND email_verified`, fold(email))
}

// ListUsers returns every user ordered by id.
func (s *Store) ListUsers(ctx context.Context) ([]auth.User, error) {
	us, err := query(ctx, s, func(r pgx.CollectableRow) (auth.User, error) { return scanUser(r) },
		`SELECT `+userColumns+` FROM users ORDER BY id`)
	return us, mapErr("list users", err)
}

// SetAdmin grants or removes the operator role; ErrNotFound for an unknown user.
func (s *Store) SetAdmin(ctx context.Context, id auth.UserID, admin bool) error {
	return mapErr("set admin", mustOne(s.exec(ctx, `UPDATE users SET is_admin = $1 WHERE id = $2`, admin, id)))
}

// ChangePassword sets the password hash and deletes every other session in one
// transaction, so no moment exists where the new password is set and a session opened
// with the old one still works. ErrNotFound for an unknown user.
func (s *Store) ChangePassword(ctx context.Context, id auth.UserID, hash string, keep auth.SessionID) error {
	return mapErr("change password", s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, id)
		if err := mustOne(tag.RowsAffected(), err); err != nil {
			return err
		}
		// A reset link dies when the password changes by any path.
		if _, err := tx.Exec(ctx, `DELETE FROM password_resets WHERE user_id = $1`, id); err != nil {
			return err
		}
		_, err = deleteSessions(ctx, tx, id, keep)
		return err
	}))
}

// DeleteUser reserves the username, deletes the user (the foreign keys cascade to
// everything that names them) and writes the tombstone, in one transaction.
func (s *Store) DeleteUser(ctx context.Context, id auth.UserID, reserveUntil time.Time, tombstone *auth.Event) error {
	return mapErr("delete user", s.tx(ctx, func(tx pgx.Tx) error {
		var key string
		if err := tx.QueryRow(ctx, `DELETE FROM users WHERE id = $1 RETURNING username_key`, id).Scan(&key); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO reserved_usernames (username_key, user_id, reserved_until) VALUES ($1, $2, $3)
			ON CONFLICT (username_key) DO UPDATE SET user_id = excluded.user_id, reserved_until = excluded.reserved_until`,
			key, id, ts(reserveUntil)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, insertEvent, insertEventArgs(tombstone)...).Scan(&tombstone.ID)
	}))
}

// SetDisabled sets the flag and, when disabling, ends every session in the same
// transaction.
func (s *Store) SetDisabled(ctx context.Context, id auth.UserID, disabled bool) error {
	return mapErr("set disabled", s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled = $1 WHERE id = $2`, disabled, id)
		if err := mustOne(tag.RowsAffected(), err); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		_, err = deleteSessions(ctx, tx, id, 0)
		return err
	}))
}
