package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/latchkey/latchkey/internal/auth"
)

const sshKeyColumns = `id, user_id, title, public_key, fingerprint, created_at, last_used_at`

func scanSSHKey(row interface{ Scan(...any) error }) (*auth.SSHKey, error) {
	var k auth.SSHKey
	err := row.Scan(&k.ID, &k.UserID, &k.Title, &k.PublicKey, &k.Fingerprint,
		timeCol{&k.CreatedAt}, timeCol{&k.LastUsedAt})
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// CreateSSHKey inserts k and sets k.ID. The unique index on (user, fingerprint)
// settles one account adding the same key twice at once: one gets ConflictError{"ssh_key"}.
func (s *Store) CreateSSHKey(ctx context.Context, k *auth.SSHKey) error {
	id, err := s.insert(ctx, `INSERT INTO ssh_keys
		(user_id, title, public_key, fingerprint, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?)`,
		k.UserID, k.Title, k.PublicKey, k.Fingerprint, micros(k.CreatedAt), micros(k.LastUsedAt))
	if err == nil {
		k.ID = auth.SSHKeyID(id)
	}
	if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE && strings.Contains(err.Error(), "ssh_keys.fingerprint") {
		return fmt.Errorf("sqlite: create ssh key: %w", &auth.ConflictError{Field: "ssh_key"})
	}
	return mapErr("create ssh key", err)
}

// ListSSHKeys returns the user's keys, newest first.
func (s *Store) ListSSHKeys(ctx context.Context, user auth.UserID) ([]auth.SSHKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sshKeyColumns+` FROM ssh_keys
		WHERE user_id = ? ORDER BY created_at DESC, id DESC`, user)
	if err != nil {
		return nil, mapErr("list ssh keys", err)
	}
	defer rows.Close()
	var ks []auth.SSHKey
	for rows.Next() {
		k, err := scanSSHKey(rows)
		if err != nil {
			return nil, mapErr("list ssh keys", err)
		}
		ks = append(ks, *k)
	}
	return ks, mapErr("list ssh keys", rows.Err())
}

// DeleteSSHKey deletes the user's key; the user is in the condition so one account
// can never delete another's key by guessing ids.
func (s *Store) DeleteSSHKey(ctx context.Context, user auth.UserID, id auth.SSHKeyID) error {
	return mapErr("delete ssh key", mustOne(s.exec(ctx,
		`DELETE FROM ssh_keys WHERE id = ? AND user_id = ?`, id, user)))
}

// TouchSSHKey sets last_used_at; ErrNotFound when the key is gone.
func (s *Store) TouchSSHKey(ctx context.Context, id auth.SSHKeyID, at time.Time) error {
	return mapErr("touch ssh key", mustOne(s.exec(ctx,
		`UPDATE ssh_keys SET last_used_at = ? WHERE id = ?`, micros(at), id)))
}
