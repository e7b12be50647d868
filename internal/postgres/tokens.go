package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

const tokenColumns = `id, user_id, name, token_hash, created_at, expires_at, last_used_at`

func scanToken(row pgx.Row) (auth.AccessToken, error) {
	var t auth.AccessToken
	err := row.Scan(&t.ID, &t.UserID, &t.Name, &t.TokenHash, timeCol{&t.CreatedAt},
		timeCol{&t.ExpiresAt}, timeCol{&t.LastUsedAt})
	return t, err
}

// CreateToken inserts a personal access token and sets t.ID.
func (s *Store) CreateToken(ctx context.Context, t *auth.AccessToken) error {
	return mapErr("create token", s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&t.ID) },
		`INSERT INTO access_tokens (user_id, name, token_hash, created_at, expires_at, last_used_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		t.UserID, t.Name, t.TokenHash, ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.LastUsedAt)))
}

// TokenByHash returns the token (expired or not) or ErrNotFound.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (*auth.AccessToken, error) {
	var t auth.AccessToken
	err := s.queryRow(ctx, func(r pgx.Row) (err error) { t, err = scanToken(r); return err },
		`SELECT `+tokenColumns+` FROM access_tokens WHERE token_hash = $1`, hash)
	if err != nil {
		return nil, mapErr("token by hash", err)
	}
	return &t, nil
}

// ListTokens returns the user's tokens, newest first.
func (s *Store) ListTokens(ctx context.Context, user auth.UserID) ([]auth.AccessToken, error) {
	toks, err := query(ctx, s, func(r pgx.CollectableRow) (auth.AccessToken, error) { return scanToken(r) },
		`SELECT `+tokenColumns+` FROM access_tokens WHERE user_id = $1 ORDER BY created_at DESC, id DESC`, user)
	return toks, mapErr("list tokens", err)
}

// DeleteToken deletes the user's token; ErrNotFound when it is not theirs.
func (s *Store) DeleteToken(ctx context.Context, user auth.UserID, id auth.TokenID) error {
	return mapErr("delete token", mustOne(s.exec(ctx,
		`DELETE FROM access_tokens WHERE id = $1 AND user_id = $2`, id, user)))
}

// TouchToken sets last_used_at; ErrNotFound when the token is gone.
func (s *Store) TouchToken(ctx context.Context, id auth.TokenID, at time.Time) error {
	return mapErr("touch token", mustOne(s.exec(ctx,
		`UPDATE access_tokens SET last_used_at = $1 WHERE id = $2`, ts(at), id)))
}
