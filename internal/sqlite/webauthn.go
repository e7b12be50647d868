package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey/latchkey/internal/auth"
)

const webauthnKeyColumns = `id, user_id, credential_id, name, record, sign_count, passkey, backed_up, created_at, last_used_at`

func scanWebAuthnKey(row interface{ Scan(...any) error }) (*auth.WebAuthnKey, error) {
	var k auth.WebAuthnKey
	err := row.Scan(&k.ID, &k.UserID, &k.CredentialID, &k.Name, &k.Record, &k.SignCount, &k.Passkey, &k.BackedUp,
		timeCol{&k.CreatedAt}, timeCol{&k.LastUsedAt})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// WebAuthnHandle returns the user's handle, storing fresh first if there is none. The
// INSERT … ON CONFLICT DO NOTHING makes racing first calls agree on one handle.
func (s *Store) WebAuthnHandle(ctx context.Context, user auth.UserID, fresh []byte) ([]byte, error) {
	var h []byte
	err := s.queryRow(ctx, `SELECT handle FROM webauthn_users WHERE user_id = ?`, user).Scan(&h)
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, mapErr("webauthn handle", err)
	}
	if _, err := s.exec(ctx, `INSERT INTO webauthn_users (user_id, handle) VALUES (?, ?)
		ON CONFLICT (user_id) DO NOTHING`, user, fresh); err != nil {
		return nil, mapErr("webauthn handle", err)
	}
	err = s.queryRow(ctx, `SELECT handle FROM webauthn_users WHERE user_id = ?`, user).Scan(&h)
	return h, mapErr("webauthn handle", err)
}

// UserByWebAuthnHandle returns the account of a handle.
func (s *Store) UserByWebAuthnHandle(ctx context.Context, handle []byte) (auth.UserID, error) {
	var id auth.UserID
	err := s.queryRow(ctx, `SELECT user_id FROM webauthn_users WHERE handle = ?`, handle).Scan(&id)
	return id, mapErr("user by webauthn handle", err)
}

// CreateCeremony stores a begun ceremony, replacing one with the same id hash (a
// pending login's second-factor ceremony is begun once per pending login).
func (s *Store) CreateCeremony(ctx context.Context, c *auth.Ceremony) error {
	var user any
	if c.UserID != 0 {
		user = c.UserID
	}
	_, err := s.exec(ctx, `INSERT INTO webauthn_ceremonies
		(id_hash, kind, user_id, binding, session_data, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (id_hash) DO UPDATE SET kind = excluded.kind, user_id = excluded.user_id,
			binding = excluded.binding, session_data = excluded.session_data, created_at = excluded.created_at,
			expires_at = excluded.expires_at, used_at = NULL`,
		c.IDHash, c.Kind, user, c.Binding, c.Data, micros(c.CreatedAt), micros(c.ExpiresAt))
	return mapErr("create ceremony", err)
}

// Ceremony returns the ceremony, used or expired alike.
func (s *Store) Ceremony(ctx context.Context, idHash []byte) (*auth.Ceremony, error) {
	var c auth.Ceremony
	var user sql.NullInt64
	err := s.queryRow(ctx, `SELECT id_hash, kind, user_id, binding, session_data, created_at, expires_at, used_at
		FROM webauthn_ceremonies WHERE id_hash = ?`, idHash).
		Scan(&c.IDHash, &c.Kind, &user, &c.Binding, &c.Data, timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt}, timeCol{&c.UsedAt})
	if err != nil {
		return nil, mapErr("ceremony", err)
	}
	c.UserID = auth.UserID(user.Int64)
	return &c, nil
}

// UseCeremony uses the ceremony up with one conditional update: of any number of
// racing finishes exactly one changes the row.
func (s *Store) UseCeremony(ctx context.Context, idHash []byte, at time.Time) (bool, error) {
	n, err := s.exec(ctx, `UPDATE webauthn_ceremonies SET used_at = ?
		WHERE id_hash = ? AND used_at IS NULL AND expires_at > ?`, micros(at), idHash, micros(at))
	if err != nil {
		return false, mapErr("use ceremony", err)
	}
	return one(n), nil
}

// AddWebAuthnKey inserts the key under the per-account limit and, when it is the
// account's first second factor, issues the recovery codes and ends the other
// sessions, all in one IMMEDIATE transaction: the count and the "was MFA off" test
// cannot be raced by another writer.
func (s *Store) AddWebAuthnKey(ctx context.Context, k *auth.WebAuthnKey, codeHashes [][]byte, keep auth.SessionID, max int) (bool, error) {
	var turnedOn bool
	err := s.write(ctx, func(tx *wtx) error {
		var keys int
		var totp bool
		if err := tx.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM webauthn_credentials WHERE user_id = ?),
			EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = ?)`, k.UserID, k.UserID).Scan(&keys, &totp); err != nil {
			return err
		}
		if keys >= max {
			return auth.ErrLimitReached
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO webauthn_credentials
			(user_id, credential_id, name, record, sign_count, passkey, backed_up, created_at, last_used_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			k.UserID, k.CredentialID, k.Name, k.Record, k.SignCount, k.Passkey, k.BackedUp,
			micros(k.CreatedAt), micros(k.LastUsedAt))
		if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE && strings.Contains(err.Error(), "credential_id") {
			return fmt.Errorf("sqlite: add webauthn key: %w", &auth.ConflictError{Field: "credential_id"})
		}
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		k.ID = auth.WebAuthnKeyID(id)
		if keys > 0 || totp {
			return nil
		}
		turnedOn = true
		if _, err := deleteSessions(ctx, tx, k.UserID, keep); err != nil {
			return err
		}
		return replaceCodes(ctx, tx, k.UserID, codeHashes, k.CreatedAt)
	})
	if err != nil {
		return false, mapErr("add webauthn key", err)
	}
	return turnedOn, nil
}

// WebAuthnKeys returns the user's keys, oldest first.
func (s *Store) WebAuthnKeys(ctx context.Context, user auth.UserID) ([]auth.WebAuthnKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+webauthnKeyColumns+` FROM webauthn_credentials
		WHERE user_id = ? ORDER BY created_at, id`, user)
	if err != nil {
		return nil, mapErr("webauthn keys", err)
	}
	defer rows.Close()
	var ks []auth.WebAuthnKey
	for rows.Next() {
		k, err := scanWebAuthnKey(rows)
		if err != nil {
			return nil, mapErr("webauthn keys", err)
		}
		ks = append(ks, *k)
	}
	return ks, mapErr("webauthn keys", rows.Err())
}

// WebAuthnKeyByCredentialID returns the key with this credential ID.
func (s *Store) WebAuthnKeyByCredentialID(ctx context.Context, credentialID []byte) (*auth.WebAuthnKey, error) {
	k, err := scanWebAuthnKey(s.queryRow(ctx, `SELECT `+webauthnKeyColumns+` FROM webauthn_credentials
		WHERE credential_id = ?`, credentialID))
	return k, mapErr("webauthn key by credential id", err)
}

// RenameWebAuthnKey renames the user's key; the user is in the condition so one
// account can never touch another's key by guessing ids.
func (s *Store) RenameWebAuthnKey(ctx context.Context, user auth.UserID, id auth.WebAuthnKeyID, name string) (*auth.WebAuthnKey, error) {
	var k *auth.WebAuthnKey
	err := s.write(ctx, func(tx *wtx) (err error) {
		k, err = scanWebAuthnKey(tx.QueryRowContext(ctx, `UPDATE webauthn_credentials SET name = ?
			WHERE id = ? AND user_id = ? RETURNING `+webauthnKeyColumns, name, id, user))
		return err
	})
	return k, mapErr("rename webauthn key", err)
}

// DeleteWebAuthnKey deletes the user's key and, when no second factor is left, the
// recovery codes and the other sessions, in one IMMEDIATE transaction.
func (s *Store) DeleteWebAuthnKey(ctx context.Context, user auth.UserID, id auth.WebAuthnKeyID, keep auth.SessionID) (bool, error) {
	var turnedOff bool
	err := s.write(ctx, func(tx *wtx) error {
		if err := mustOne(rowsAffected(tx.ExecContext(ctx,
			`DELETE FROM webauthn_credentials WHERE id = ? AND user_id = ?`, id, user))); err != nil {
			return err
		}
		var left bool
		if err := tx.QueryRowContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = ?)
			OR EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = ?)`, user, user).Scan(&left); err != nil {
			return err
		}
		if left {
			return nil
		}
		turnedOff = true
		if _, err := deleteSessions(ctx, tx, user, keep); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, user)
		return err
	})
	if err != nil {
		return false, mapErr("delete webauthn key", err)
	}
	return turnedOff, nil
}

// UseWebAuthnKey moves the key's counter and last use in one conditional write: the
// counter must still be the one the assertion was checked against.
func (s *Store) UseWebAuthnKey(ctx context.Context, id auth.WebAuthnKeyID, prev, next int64, at time.Time) (bool, error) {
	n, err := s.exec(ctx, `UPDATE webauthn_credentials SET sign_count = ?, last_used_at = ?
		WHERE id = ? AND sign_count = ?`, next, micros(at), id, prev)
	if err != nil {
		return false, mapErr("use webauthn key", err)
	}
	return one(n), nil
}
