package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

const sshKeyColumns = `id, user_id, title, public_key, fingerprint, created_at, last_used_at`

func scanSSHKey(row pgx.Row) (auth.SSHKey, error) {
	var k auth.SSHKey
	err := row.Scan(&k.ID, &k.UserID, &k.Title, &k.PublicKey, &k.Fingerprint,
		timeCol{&k.CreatedAt}, timeCol{&k.LastUsedAt})
	return k, err
}

// CreateSSHKey inserts k and sets k.ID. The unique index on (user, fingerprint)
// settles one account adding the same key twice at once: one gets ConflictError{"ssh_key"}.
func (s *Store) CreateSSHKey(ctx context.Context, k *auth.SSHKey) error {
	err := mapErr("create ssh key", s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&k.ID) },
		`INSERT INTO ssh_keys (user_id, title, public_key, fingerprint, created_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		k.UserID, k.Title, k.PublicKey, k.Fingerprint, ts(k.CreatedAt), ts(k.LastUsedAt)))
	// mapErr names an unlisted constraint by its name; the Service expects "ssh_key".
	var ce *auth.ConflictError
	if errors.As(err, &ce) && ce.Field == "ssh_keys_user_fingerprint_key" {
		ce.Field = "ssh_key"
	}
	return err
}

// ListSSHKeys returns the user's keys, newest first.
func (s *Store) ListSSHKeys(ctx context.Context, user auth.UserID) ([]auth.SSHKey, error) {
	ks, err := query(ctx, s, func(r pgx.CollectableRow) (auth.SSHKey, error) { return scanSSHKey(r) },
		`SELECT `+sshKeyColumns+` FROM ssh_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, user)
	return ks, mapErr("list ssh keys", err)
}

// DeleteSSHKey deletes the user's key; the user is in the condition so one account
// can never delete another's key by guessing ids.
func (s *Store) DeleteSSHKey(ctx context.Context, user auth.UserID, id auth.SSHKeyID) error {
	return mapErr("delete ssh key", mustOne(s.exec(ctx,
		`DELETE FROM ssh_keys WHERE id = $1 AND user_id = $2`, id, user)))
}

// TouchSSHKey sets last_used_at; ErrNotFound when the key is gone.
func (s *Store) TouchSSHKey(ctx context.Context, id auth.SSHKeyID, at time.Time) error {
	return mapErr("touch ssh key", mustOne(s.exec(ctx,
		`UPDATE ssh_keys SET last_used_at = $1 WHERE id = $2`, ts(at), id)))
}
