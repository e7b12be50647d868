package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

const userColumns = `id, username, email, email_verified, password_hash, is_admin, created_at, cred_epoch, disabled`

func scanUser(row interface{ Scan(...any) error }) (*auth.User, error) {
	var u auth.User
	err := row.Scan(&u.ID, &u.Username, &u.Email, &u.EmailVerified, &u.PasswordHash,
		&u.IsAdmin, timeCol{&u.CreatedAt}, &u.CredEpoch, &u.Disabled)
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// CreateUser inserts u and sets u.ID. Usernames are unique on their case fold, by
// the unique index. An email is taken only by an account that verified it: the check
// and the insert are one serialized write, and the partial unique index keeps two
// verified copies out whatever happens.
func (s *Store) CreateUser(ctx context.Context, u *auth.User) error {
	var id int64
	err := s.write(ctx, func(tx *wtx) error {
		var taken int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM reserved_usernames WHERE username_key = ? AND reserved_until > ?`,
			fold(u.Username), micros(u.CreatedAt)).Scan(&taken)
		if err == nil {
			return &auth.ConflictError{Field: "username"}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM users WHERE email_key = ? AND email_verified = 1`, fold(u.Email)).Scan(&taken)
		if err == nil {
			return &auth.ConflictError{Field: "email"}
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO users
			(username, username_key, email, email_key, email_verified, password_hash, is_admin, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			u.Username, fold(u.Username), u.Email, fold(u.Email), u.EmailVerified,
			u.PasswordHash, u.IsAdmin, micros(u.CreatedAt))
		if err != nil {
			return err
		}
		id, err = res.LastInsertId()
		return err
	})
	if err != nil {
		return mapErr("create user", err)
	}
	u.ID = auth.UserID(id)
	return nil
}

// UserByID returns the user or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id auth.UserID) (*auth.User, error) {
	u, err := scanUser(s.queryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, mapErr("user by id", err)
}

// UserByLogin finds a user whose username, or verified email, folds to the same as
// login.
func (s *Store) UserByLogin(ctx context.Context, login string) (*auth.User, error) {
	k := fold(login)
	// Validation keeps "@" out of usernames and in emails, and a verified email is
	// unique, so at most one row matches; ORDER BY keeps the answer deterministic
	// should old data break that.
	u, err := scanUser(s.queryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE username_key = ? OR (email_key = ? AND email_verified = 1) ORDER BY id LIMIT 1`, k, k))
	return u, mapErr("user by login", err)
}

// UserByEmail finds the user who verified this email, case-insensitively.
func (s *Store) UserByEmail(ctx context.Context, email string) (*auth.User, error) {
	u, err := scanUser(s.queryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE email_key = ? AND email_verified = 1`, fold(email)))
	return u, mapErr("user by email", err)
}

// ListUsers returns every user ordered by id.
func (s *Store) ListUsers(ctx context.Context) ([]auth.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY id`)
	if err != nil {
		return nil, mapErr("list users", err)
	}
	defer rows.Close()
	var us []auth.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, mapErr("list users", err)
		}
		us = append(us, *u)
	}
	return us, mapErr("list users", rows.Err())
}

// SetAdmin grants or removes the operator role; ErrNotFound for an unknown user.
func (s *Store) SetAdmin(ctx context.Context, id auth.UserID, admin bool) error {
	return mapErr("set admin", mustOne(s.exec(ctx, `UPDATE users SET is_admin = ? WHERE id = ?`, admin, id)))
}

// ChangePassword sets the password hash and deletes every other session in one
// transaction, so no moment exists where the new password is set and a session opened
// with the old one still works. ErrNotFound for an unknown user.
func (s *Store) ChangePassword(ctx context.Context, id auth.UserID, hash string, keep auth.SessionID) error {
	return mapErr("change password", s.write(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, hash, id)
		if err := mustOne(rowsAffected(res, err)); err != nil {
			return err
		}
		// A reset link dies when the password changes by any path.
		if _, err := tx.ExecContext(ctx, `DELETE FROM password_resets WHERE user_id = ?`, id); err != nil {
			return err
		}
		_, err = deleteSessions(ctx, tx, id, keep)
		return err
	}))
}

// rowsAffected folds an Exec result into a count.
func rowsAffected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DeleteUser reserves the username, deletes the user (the foreign keys cascade to
// everything that names them) and writes the tombstone, in one write.
func (s *Store) DeleteUser(ctx context.Context, id auth.UserID, reserveUntil time.Time, tombstone *auth.Event) error {
	return mapErr("delete user", s.write(ctx, func(tx *wtx) error {
		var key string
		if err := tx.QueryRowContext(ctx, `DELETE FROM users WHERE id = ? RETURNING username_key`, id).Scan(&key); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO reserved_usernames (username_key, user_id, reserved_until) VALUES (?, ?, ?)
			ON CONFLICT (username_key) DO UPDATE SET user_id = excluded.user_id, reserved_until = excluded.reserved_until`,
			key, id, micros(reserveUntil)); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, insertEvent, insertEventArgs(tombstone)...)
		if err != nil {
			return err
		}
		tombstone.ID, err = res.LastInsertId()
		return err
	}))
}

// SetDisabled sets the flag and, when disabling, ends every session in the same write.
func (s *Store) SetDisabled(ctx context.Context, id auth.UserID, disabled bool) error {
	return mapErr("set disabled", s.write(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE id = ?`, disabled, id)
		if err := mustOne(rowsAffected(res, err)); err != nil {
			return err
		}
		if !disabled {
			return nil
		}
		_, err = deleteSessions(ctx, tx, id, 0)
		return err
	}))
}
