package sqlite

import (
	"context"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

const tokenColumns = `id, user_id, name, token_hash, created_at, expires_at, last_used_at`

func scanToken(row interface{ Scan(...any) error }) (*auth.AccessToken, error) {
	var t auth.AccessToken
	err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, timeCol{&t.CreatedAt},
		timeCol{&t.ExpiresAt}, timeCol{&t.LastUsedAt})
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateToken inserts a personal access token and sets t.ID.
func (s *Store) CreateToken(ctx context.Context, t *auth.AccessToken) error {
	id, err := s.insert(ctx, `INSERT INTO access_tokens
		(user_id, name, token_hash, created_at, expires_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?)`,
		t.UserID, t.Name, t.TokenHash, micros(t.CreatedAt), micros(t.ExpiresAt), micros(t.LastUsedAt))
	if err != nil {
		return mapErr("create token", err)
	}
	t.ID = auth.TokenID(id)
	return nil
}

// TokenByHash returns the token (expired or not) or ErrNotFound.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (*auth.AccessToken, error) {
	t, err := scanToken(s.queryRow(ctx,
		`SELECT `+tokenColumns+` FROM access_tokens WHERE token_hash = ?`, hash))
	return t, mapErr("token by hash", err)
}

// ListTokens returns the user's tokens, newest first.
func (s *Store) ListTokens(ctx context.Context, user auth.UserID) ([]auth.AccessToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM access_tokens
		WHERE user_id = ? ORDER BY created_at DESC, id DESC`, user)
	if err != nil {
		return nil, mapErr("list tokens", err)
	}
	defer rows.Close()
	var ts []auth.AccessToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, mapErr("list tokens", err)
		}
		ts = append(ts, *t)
	}
	return ts, mapErr("list tokens", rows.Err())
}

// DeleteToken deletes the user's token; ErrNotFound when it is not theirs.
func (s *Store) DeleteToken(ctx context.Context, user auth.UserID, id auth.TokenID) error {
	return mapErr("delete token", mustOne(s.exec(ctx,
		`DELETE FROM access_tokens WHERE id = ? AND user_id = ?`, id, user)))
}

// TouchToken sets last_used_at; ErrNotFound when the token is gone.
func (s *Store) TouchToken(ctx context.Context, id auth.TokenID, at time.Time) error {
	return mapErr("touch token", mustOne(s.exec(ctx,
		`UPDATE access_tokens SET last_used_at = ? WHERE id = ?`, micros(at), id)))
}
