package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

const webauthnKeyColumns = `id, user_id, credential_id, name, record, sign_count, passkey, backed_up, created_at, last_used_at`

func scanWebAuthnKey(row pgx.Row) (auth.WebAuthnKey, error) {
	var k auth.WebAuthnKey
	err := row.Scan(&k.ID, &k.UserID, &k.CredentialID, &k.Name, &k.Record, &k.SignCount, &k.Passkey, &k.BackedUp,
		timeCol{&k.CreatedAt}, timeCol{&k.LastUsedAt})
	return k, err
}

// WebAuthnHandle returns the user's handle, storing fresh first if there is none. The
// INSERT … ON CONFLICT DO NOTHING makes racing first calls agree on one handle.
func (s *Store) WebAuthnHandle(ctx context.Context, user auth.UserID, fresh []byte) ([]byte, error) {
	var h []byte
	err := s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&h) },
		`SELECT handle FROM webauthn_users WHERE user_id = $1`, user)
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, mapErr("webauthn handle", err)
	}
	if _, err := s.exec(ctx, `INSERT INTO webauthn_users (user_id, handle) VALUES ($1, $2)
		ON CONFLICT (user_id) DO NOTHING`, user, fresh); err != nil {
		return nil, mapErr("webauthn handle", err)
	}
	err = s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&h) },
		`SELECT handle FROM webauthn_users WHERE user_id = $1`, user)
	return h, mapErr("webauthn handle", err)
}

// UserByWebAuthnHandle returns the account of a handle.
func (s *Store) UserByWebAuthnHandle(ctx context.Context, handle []byte) (auth.UserID, error) {
	var id auth.UserID
	err := s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&id) },
		`SELECT user_id FROM webauthn_users WHERE handle = $1`, handle)
	return id, mapErr("user by webauthn handle", err)
}

// CreateCeremony stores a begun ceremony, replacing one with the same id hash.
func (s *Store) CreateCeremony(ctx context.Context, c *auth.Ceremony) error {
	var user any
	if c.UserID != 0 {
		user = c.UserID
	}
	_, err := s.exec(ctx, `INSERT INTO webauthn_ceremonies
		(id_hash, kind, user_id, binding, session_data, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id_hash) DO UPDATE SET kind = excluded.kind, user_id = excluded.user_id,
			binding = excluded.binding, session_data = excluded.session_data, created_at = excluded.created_at,
			expires_at = excluded.expires_at, used_at = NULL`,
		c.IDHash, c.Kind, user, c.Binding, c.Data, ts(c.CreatedAt), ts(c.ExpiresAt))
	return mapErr("create ceremony", err)
}

// Ceremony returns the ceremony, used or expired alike.
func (s *Store) Ceremony(ctx context.Context, idHash []byte) (*auth.Ceremony, error) {
	var c auth.Ceremony
	var user *int64
	err := s.queryRow(ctx, func(r pgx.Row) error {
		return r.Scan(&c.IDHash, &c.Kind, &user, &c.Binding, &c.Data, timeCol{&c.CreatedAt}, timeCol{&c.ExpiresAt}, timeCol{&c.UsedAt})
	}, `SELECT id_hash, kind, user_id, binding, session_data, created_at, expires_at, used_at
		FROM webauthn_ceremonies WHERE id_hash = $1`, idHash)
	if err != nil {
		return nil, mapErr("ceremony", err)
	}
	if user != nil {
		c.UserID = auth.UserID(*user)
	}
	return &c, nil
}

// UseCeremony uses the ceremony up with one conditional update: of any number of
// racing finishes (on any number of replicas) exactly one changes the row.
func (s *Store) UseCeremony(ctx context.Context, idHash []byte, at time.Time) (bool, error) {
	n, err := s.exec(ctx, `UPDATE webauthn_ceremonies SET used_at = $1
		WHERE id_hash = $2 AND used_at IS NULL AND expires_at > $1`, ts(at), idHash)
	if err != nil {
		return false, mapErr("use ceremony", err)
	}
	return one(n), nil
}

// AddWebAuthnKey inserts the key under the per-account limit and, when it is the
// account's first second factor, issues the recovery codes and ends the other
// sessions, in one transaction. The user's row is locked first (the lock order
// deleteSessions explains), so two adds for one account run one after the other and
// the count and the "was MFA off" test hold until commit.
func (s *Store) AddWebAuthnKey(ctx context.Context, k *auth.WebAuthnKey, codeHashes [][]byte, keep auth.SessionID, max int) (bool, error) {
	var turnedOn bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var keys int
		var totp bool
		if err := tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM webauthn_credentials WHERE user_id = u.id),
			EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = u.id)
			FROM users u WHERE u.id = $1 FOR UPDATE`, k.UserID).Scan(&keys, &totp); err != nil {
			return err
		}
		if keys >= max {
			return auth.ErrLimitReached
		}
		if err := tx.QueryRow(ctx, `INSERT INTO webauthn_credentials
			(user_id, credential_id, name, record, sign_count, passkey, backed_up, created_at, last_used_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
			k.UserID, k.CredentialID, k.Name, k.Record, k.SignCount, k.Passkey, k.BackedUp,
			ts(k.CreatedAt), ts(k.LastUsedAt)).Scan(&k.ID); err != nil {
			return err
		}
		if keys > 0 || totp {
			return nil
		}
		turnedOn = true
		if _, err := deleteSessions(ctx, tx, k.UserID, keep); err != nil {
			return err
		}
		return replaceCodes(ctx, tx, k.UserID, codeHashes, k.CreatedAt)
	})
	err = mapErr("add webauthn key", err)
	var ce *auth.ConflictError
	if errors.As(err, &ce) && ce.Field == "webauthn_credentials_credential_id_key" {
		ce.Field = "credential_id"
	}
	if err != nil {
		return false, err
	}
	return turnedOn, nil
}

// WebAuthnKeys returns the user's keys, oldest first.
func (s *Store) WebAuthnKeys(ctx context.Context, user auth.UserID) ([]auth.WebAuthnKey, error) {
	ks, err := query(ctx, s, func(r pgx.CollectableRow) (auth.WebAuthnKey, error) { return scanWebAuthnKey(r) },
		`SELECT `+webauthnKeyColumns+` FROM webauthn_credentials WHERE user_id = $1 ORDER BY created_at, id`, user)
	return ks, mapErr("webauthn keys", err)
}

// WebAuthnKeyByCredentialID returns the key with this credential ID.
func (s *Store) WebAuthnKeyByCredentialID(ctx context.Context, credentialID []byte) (*auth.WebAuthnKey, error) {
	var k auth.WebAuthnKey
	err := s.queryRow(ctx, func(r pgx.Row) (err error) { k, err = scanWebAuthnKey(r); return err },
		`SELECT `+webauthnKeyColumns+` FROM webauthn_credentials WHERE credential_id = $1`, credentialID)
	if err != nil {
		return nil, mapErr("webauthn key by credential id", err)
	}
	return &k, nil
}

// RenameWebAuthnKey renames the user's key; the user is in the condition so one
// account can never touch another's key by guessing ids.
func (s *Store) RenameWebAuthnKey(ctx context.Context, user auth.UserID, id auth.WebAuthnKeyID, name string) (*auth.WebAuthnKey, error) {
	var k auth.WebAuthnKey
	err := s.queryRow(ctx, func(r pgx.Row) (err error) { k, err = scanWebAuthnKey(r); return err },
		`UPDATE webauthn_credentials SET name = $1 WHERE id = $2 AND user_id = $3 RETURNING `+webauthnKeyColumns,
		name, id, user)
	if err != nil {
		return nil, mapErr("rename webauthn key", err)
	}
	return &k, nil
}

// DeleteWebAuthnKey deletes the user's key and, when no second factor is left, the
// recovery codes and the other sessions, in one transaction that locks the user's row
// first, so two removals of an account's last two keys cannot both see one left.
func (s *Store) DeleteWebAuthnKey(ctx context.Context, user auth.UserID, id auth.WebAuthnKeyID, keep auth.SessionID) (bool, error) {
	var turnedOff bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, user); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2`, id, user)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return auth.ErrNotFound
		}
		var left bool
		if err := tx.QueryRow(ctx, `SELECT
			EXISTS (SELECT 1 FROM webauthn_credentials WHERE user_id = $1)
			OR EXISTS (SELECT 1 FROM totp_credentials WHERE user_id = $1)`, user).Scan(&left); err != nil {
			return err
		}
		if left {
			return nil
		}
		turnedOff = true
		if _, err := deleteSessions(ctx, tx, user, keep); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, user)
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
	n, err := s.exec(ctx, `UPDATE webauthn_credentials SET sign_count = $1, last_used_at = $2
		WHERE id = $3 AND sign_count = $4`, next, ts(at), id, prev)
	if err != nil {
		return false, mapErr("use webauthn key", err)
	}
	return one(n), nil
}
