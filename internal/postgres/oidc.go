package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/latchkey/latchkey/internal/auth"
)

var _ auth.OIDCStore = (*Store)(nil)

// Lists are stored as text, as in the SQLite store (migration 0007): words
// space-separated, URIs one per line.
func words(s []string) string { return strings.Join(s, " ") }
func unwords(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, " ")
}
func lines(s []string) string { return strings.Join(s, "\n") }
func unlines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

const oidcClientColumns = `id, name, secret_hash, public, require_mfa, consent, redirect_uris,
	post_logout_redirect_uris, created_at`

func scanOIDCClient(row pgx.Row) (auth.OIDCClient, error) {
	var c auth.OIDCClient
	var redirects, logouts string
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &c.RequireMFA, &c.Consent, &redirects,
		&logouts, timeCol{&c.CreatedAt})
	c.RedirectURIs, c.PostLogoutRedirectURIs = unlines(redirects), unlines(logouts)
	return c, err
}

// CreateOIDCClient inserts c.
func (s *Store) CreateOIDCClient(ctx context.Context, c *auth.OIDCClient) error {
	_, err := s.exec(ctx, `INSERT INTO oidc_clients (`+oidcClientColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		c.ID, c.Name, c.SecretHash, c.Public, c.RequireMFA, c.Consent, lines(c.RedirectURIs),
		lines(c.PostLogoutRedirectURIs), ts(c.CreatedAt))
	return mapErr("create oidc client", err)
}

// OIDCClient returns the client or ErrNotFound.
func (s *Store) OIDCClient(ctx context.Context, id string) (*auth.OIDCClient, error) {
	var c auth.OIDCClient
	err := s.queryRow(ctx, func(r pgx.Row) (err error) { c, err = scanOIDCClient(r); return err },
		`SELECT `+oidcClientColumns+` FROM oidc_clients WHERE id = $1`, id)
	if err != nil {
		return nil, mapErr("oidc client", err)
	}
	return &c, nil
}

// ListOIDCClients returns every client, oldest first.
func (s *Store) ListOIDCClients(ctx context.Context) ([]auth.OIDCClient, error) {
	out, err := query(ctx, s, func(r pgx.CollectableRow) (auth.OIDCClient, error) { return scanOIDCClient(r) },
		`SELECT `+oidcClientColumns+` FROM oidc_clients ORDER BY created_at, id`)
	return out, mapErr("list oidc clients", err)
}

// DeleteOIDCClient deletes the client; its grants, tokens and consents go with it
// (ON DELETE CASCADE) in the same statement.
func (s *Store) DeleteOIDCClient(ctx context.Context, id string) error {
	return mapErr("delete oidc client", mustOne(s.exec(ctx, `DELETE FROM oidc_clients WHERE id = $1`, id)))
}

const oidcGrantColumns = `id, code_hash, client_id, user_id, session_id, redirect_uri, scopes, nonce,
	code_challenge, auth_time, amr, acr, created_at, expires_at, redeemed_at`

func scanOIDCGrant(row pgx.Row) (*auth.OIDCGrant, error) {
	var g auth.OIDCGrant
	var scopes, amr string
	err := row.Scan(&g.ID, &g.CodeHash, &g.ClientID, &g.UserID, &g.SessionID, &g.RedirectURI, &scopes,
		&g.Nonce, &g.CodeChallenge, timeCol{&g.AuthTime}, &amr, &g.ACR, timeCol{&g.CreatedAt},
		timeCol{&g.ExpiresAt}, timeCol{&g.RedeemedAt})
	if err != nil {
		return nil, err
	}
	g.Scopes, g.AMR = unwords(scopes), unwords(amr)
	return &g, nil
}

// CreateOIDCGrant stores an approved authorization with its code.
func (s *Store) CreateOIDCGrant(ctx context.Context, g *auth.OIDCGrant) error {
	_, err := s.exec(ctx, `INSERT INTO oidc_grants (`+oidcGrantColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		g.ID, g.CodeHash, g.ClientID, g.UserID, g.SessionID, g.RedirectURI, words(g.Scopes), g.Nonce,
		g.CodeChallenge, ts(g.AuthTime), words(g.AMR), g.ACR, ts(g.CreatedAt), ts(g.ExpiresAt), ts(g.RedeemedAt))
	return mapErr("create oidc grant", err)
}

// RedeemOIDCCode marks the code redeemed with one conditional update, then reads the
// grant back in the same transaction.
func (s *Store) RedeemOIDCCode(ctx context.Context, codeHash []byte, now time.Time) (*auth.OIDCGrant, bool, error) {
	var (
		g   *auth.OIDCGrant
		won bool
	)
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE oidc_grants SET redeemed_at = $1
			WHERE code_hash = $2 AND redeemed_at IS NULL`, ts(now), codeHash)
		if err != nil {
			return err
		}
		won = one(tag.RowsAffected())
		g, err = scanOIDCGrant(tx.QueryRow(ctx, `SELECT `+oidcGrantColumns+` FROM oidc_grants WHERE code_hash = $1`, codeHash))
		return err
	})
	if err != nil {
		return nil, false, mapErr("redeem oidc code", err)
	}
	return g, won, nil
}

const oidcTokenColumns = `id, kind, hash, grant_id, client_id, user_id, session_id, scopes, auth_time,
	amr, acr, created_at, expires_at, used_at, revoked_at`

func scanOIDCToken(row pgx.Row) (*auth.OIDCToken, error) {
	var t auth.OIDCToken
	var scopes, amr string
	err := row.Scan(&t.ID, &t.Kind, &t.Hash, &t.GrantID, &t.ClientID, &t.UserID, &t.SessionID, &scopes,
		timeCol{&t.AuthTime}, &amr, &t.ACR, timeCol{&t.CreatedAt}, timeCol{&t.ExpiresAt},
		timeCol{&t.UsedAt}, timeCol{&t.RevokedAt})
	if err != nil {
		return nil, err
	}
	t.Scopes, t.AMR = unwords(scopes), unwords(amr)
	return &t, nil
}

func insertOIDCTokens(ctx context.Context, tx pgx.Tx, tokens []*auth.OIDCToken) error {
	for _, t := range tokens {
		var hash any
		if t.Hash != nil {
			hash = t.Hash
		}
		if _, err := tx.Exec(ctx, `INSERT INTO oidc_tokens (`+oidcTokenColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			t.ID, t.Kind, hash, t.GrantID, t.ClientID, t.UserID, t.SessionID, words(t.Scopes),
			ts(t.AuthTime), words(t.AMR), t.ACR, ts(t.CreatedAt), ts(t.ExpiresAt), ts(t.UsedAt),
			ts(t.RevokedAt)); err != nil {
			return err
		}
	}
	return nil
}

// CreateOIDCTokens inserts the tokens in one transaction.
func (s *Store) CreateOIDCTokens(ctx context.Context, tokens ...*auth.OIDCToken) error {
	return mapErr("create oidc tokens", s.tx(ctx, func(tx pgx.Tx) error { return insertOIDCTokens(ctx, tx, tokens) }))
}

// OIDCTokenByID returns the token or ErrNotFound.
func (s *Store) OIDCTokenByID(ctx context.Context, id string) (*auth.OIDCToken, error) {
	var t *auth.OIDCToken
	err := s.queryRow(ctx, func(r pgx.Row) (err error) { t, err = scanOIDCToken(r); return err },
		`SELECT `+oidcTokenColumns+` FROM oidc_tokens WHERE id = $1`, id)
	return t, mapErr("oidc token", err)
}

// OIDCRefreshToken returns the refresh token with this hash or ErrNotFound.
func (s *Store) OIDCRefreshToken(ctx context.Context, hash []byte) (*auth.OIDCToken, error) {
	var t *auth.OIDCToken
	err := s.queryRow(ctx, func(r pgx.Row) (err error) { t, err = scanOIDCToken(r); return err },
		`SELECT `+oidcTokenColumns+` FROM oidc_tokens WHERE hash = $1 AND kind = 'refresh'`, hash)
	return t, mapErr("oidc refresh token", err)
}

// RotateOIDCRefreshToken spends the old refresh token and inserts its successors in
// one transaction.
func (s *Store) RotateOIDCRefreshToken(ctx context.Context, oldID string, now time.Time, next ...*auth.OIDCToken) (bool, error) {
	var won bool
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE oidc_tokens SET used_at = $1
			WHERE id = $2 AND kind = 'refresh' AND used_at IS NULL AND revoked_at IS NULL`, ts(now), oldID)
		if err != nil {
			return err
		}
		if won = one(tag.RowsAffected()); !won {
			return nil
		}
		return insertOIDCTokens(ctx, tx, next)
	})
	if err != nil {
		return false, mapErr("rotate oidc refresh token", err)
	}
	return won, nil
}

// RevokeOIDCToken marks one token revoked.
func (s *Store) RevokeOIDCToken(ctx context.Context, id string, now time.Time) error {
	_, err := s.exec(ctx, `UPDATE oidc_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL`, ts(now), id)
	return mapErr("revoke oidc token", err)
}

// RevokeOIDCGrant revokes the whole family and spends the grant's code.
func (s *Store) RevokeOIDCGrant(ctx context.Context, grantID string, now time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE oidc_tokens SET revoked_at = $1
			WHERE grant_id = $2 AND revoked_at IS NULL`, ts(now), grantID)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		_, err = tx.Exec(ctx, `UPDATE oidc_grants SET redeemed_at = $1 WHERE id = $2 AND redeemed_at IS NULL`,
			ts(now), grantID)
		return err
	})
	return int(n), mapErr("revoke oidc grant", err)
}

// SaveOIDCConsent records (replacing) the user's consent for the client.
func (s *Store) SaveOIDCConsent(ctx context.Context, c *auth.OIDCConsent) error {
	_, err := s.exec(ctx, `INSERT INTO oidc_consents (user_id, client_id, scopes, created_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, created_at = excluded.created_at`,
		c.UserID, c.ClientID, words(c.Scopes), ts(c.CreatedAt))
	return mapErr("save oidc consent", err)
}

// OIDCConsent returns the user's consent for the client or ErrNotFound.
func (s *Store) OIDCConsent(ctx context.Context, user auth.UserID, clientID string) (*auth.OIDCConsent, error) {
	c := auth.OIDCConsent{UserID: user, ClientID: clientID}
	var scopes string
	err := s.queryRow(ctx, func(r pgx.Row) error { return r.Scan(&scopes, timeCol{&c.CreatedAt}) },
		`SELECT scopes, created_at FROM oidc_consents WHERE user_id = $1 AND client_id = $2`, user, clientID)
	if err != nil {
		return nil, mapErr("oidc consent", err)
	}
	c.Scopes = unwords(scopes)
	return &c, nil
}

// ListOIDCApps returns the clients the user has a consent or a live token for.
func (s *Store) ListOIDCApps(ctx context.Context, user auth.UserID, now time.Time) ([]auth.OIDCConsent, error) {
	out, err := query(ctx, s, func(r pgx.CollectableRow) (auth.OIDCConsent, error) {
		c := auth.OIDCConsent{UserID: user}
		var scopes string
		err := r.Scan(&c.ClientID, &c.ClientName, &scopes, timeCol{&c.CreatedAt})
		c.Scopes = unwords(scopes)
		return c, err
	}, `SELECT c.id, c.name, coalesce(k.scopes, ''),
			coalesce(k.created_at, (SELECT min(t.created_at) FROM oidc_tokens t WHERE t.client_id = c.id AND t.user_id = $1)) AS since
		FROM oidc_clients c LEFT JOIN oidc_consents k ON k.client_id = c.id AND k.user_id = $1
		WHERE k.user_id IS NOT NULL OR EXISTS (SELECT 1 FROM oidc_tokens t WHERE t.client_id = c.id
			AND t.user_id = $1 AND t.revoked_at IS NULL AND t.used_at IS NULL AND t.expires_at > $2)
		ORDER BY since, c.id`, user, ts(now))
	return out, mapErr("list oidc apps", err)
}

// RevokeOIDCApp deletes the consent and revokes the client's tokens for the user.
func (s *Store) RevokeOIDCApp(ctx context.Context, user auth.UserID, clientID string, now time.Time) error {
	return mapErr("revoke oidc app", s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM oidc_consents WHERE user_id = $1 AND client_id = $2`, user, clientID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE oidc_tokens SET revoked_at = $1
			WHERE user_id = $2 AND client_id = $3 AND revoked_at IS NULL`, ts(now), user, clientID)
		return err
	}))
}

// AddOIDCKey retires the current key and inserts k in one transaction.
func (s *Store) AddOIDCKey(ctx context.Context, k *auth.OIDCKey) error {
	return mapErr("add oidc key", s.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE oidc_keys SET retired_at = $1 WHERE retired_at IS NULL`, ts(k.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO oidc_keys (id, alg, seal_key_id, private_key, created_at, retired_at)
			VALUES ($1, $2, $3, $4, $5, NULL)`, k.ID, k.Alg, k.Private.KeyID, k.Private.Ciphertext, ts(k.CreatedAt))
		return err
	}))
}

// OIDCKeys returns the current key and those retired at or after retiredSince.
func (s *Store) OIDCKeys(ctx context.Context, retiredSince time.Time) ([]auth.OIDCKey, error) {
	out, err := query(ctx, s, func(r pgx.CollectableRow) (auth.OIDCKey, error) {
		var k auth.OIDCKey
		err := r.Scan(&k.ID, &k.Alg, &k.Private.KeyID, &k.Private.Ciphertext, timeCol{&k.CreatedAt}, timeCol{&k.RetiredAt})
		return k, err
	}, `SELECT id, alg, seal_key_id, private_key, created_at, retired_at FROM oidc_keys
		WHERE retired_at IS NULL OR retired_at >= $1 ORDER BY created_at DESC, id`, ts(retiredSince))
	return out, mapErr("oidc keys", err)
}

// PurgeOIDC deletes expired tokens and the grants nothing refers to any more.
func (s *Store) PurgeOIDC(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx pgx.Tx) error {
		n = 0
		for _, q := range []string{`DELETE FROM oidc_tokens WHERE expires_at <= $1`,
			`DELETE FROM oidc_grants WHERE expires_at <= $1 AND NOT EXISTS
				(SELECT 1 FROM oidc_tokens t WHERE t.grant_id = oidc_grants.id)`} {
			tag, err := tx.Exec(ctx, q, ts(now))
			if err != nil {
				return err
			}
			n += tag.RowsAffected()
		}
		return nil
	})
	return n, mapErr("purge oidc", err)
}

// OIDCSession returns the session and its user's current credentials epoch.
func (s *Store) OIDCSession(ctx context.Context, id auth.SessionID) (*auth.Session, int64, error) {
	var sess auth.Session
	var epoch int64
	err := s.queryRow(ctx, func(r pgx.Row) error {
		return r.Scan(&sess.ID, &sess.UserID, timeCol{&sess.CreatedAt}, timeCol{&sess.LastSeenAt},
			timeCol{&sess.ExpiresAt}, timeCol{&sess.ReauthAt}, &sess.CredEpoch, &sess.Method, timeCol{&sess.MFAAt}, &epoch)
	}, `SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.reauth_at, s.cred_epoch,
			s.method, s.mfa_at, u.cred_epoch
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`, id)
	if err != nil {
		return nil, 0, mapErr("oidc session", err)
	}
	return &sess, epoch, nil
}
