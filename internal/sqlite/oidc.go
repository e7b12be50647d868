package sqlite

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

var _ auth.OIDCStore = (*Store)(nil)

// Lists are stored as text (see migration 0007): words space-separated, URIs one per line.
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

func scanOIDCClient(row interface{ Scan(...any) error }) (*auth.OIDCClient, error) {
	var c auth.OIDCClient
	var redirects, logouts string
	err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &c.RequireMFA, &c.Consent, &redirects,
		&logouts, timeCol{&c.CreatedAt})
	if err != nil {
		return nil, err
	}
	c.RedirectURIs, c.PostLogoutRedirectURIs = unlines(redirects), unlines(logouts)
	return &c, nil
}

// CreateOIDCClient inserts c.
func (s *Store) CreateOIDCClient(ctx context.Context, c *auth.OIDCClient) error {
	_, err := s.exec(ctx, `INSERT INTO oidc_clients (`+oidcClientColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.SecretHash, c.Public, c.RequireMFA, c.Consent, lines(c.RedirectURIs),
		lines(c.PostLogoutRedirectURIs), micros(c.CreatedAt))
	return mapErr("create oidc client", err)
}

// OIDCClient returns the client or ErrNotFound.
func (s *Store) OIDCClient(ctx context.Context, id string) (*auth.OIDCClient, error) {
	c, err := scanOIDCClient(s.queryRow(ctx, `SELECT `+oidcClientColumns+` FROM oidc_clients WHERE id = ?`, id))
	return c, mapErr("oidc client", err)
}

// ListOIDCClients returns every client, oldest first.
func (s *Store) ListOIDCClients(ctx context.Context) ([]auth.OIDCClient, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+oidcClientColumns+` FROM oidc_clients ORDER BY created_at, id`)
	if err != nil {
		return nil, mapErr("list oidc clients", err)
	}
	defer rows.Close()
	var out []auth.OIDCClient
	for rows.Next() {
		c, err := scanOIDCClient(rows)
		if err != nil {
			return nil, mapErr("list oidc clients", err)
		}
		out = append(out, *c)
	}
	return out, mapErr("list oidc clients", rows.Err())
}

// DeleteOIDCClient deletes the client; its grants, tokens and consents go with it
// (ON DELETE CASCADE) in the same statement.
func (s *Store) DeleteOIDCClient(ctx context.Context, id string) error {
	return mapErr("delete oidc client", mustOne(s.exec(ctx, `DELETE FROM oidc_clients WHERE id = ?`, id)))
}

const oidcGrantColumns = `id, code_hash, client_id, user_id, session_id, redirect_uri, scopes, nonce,
	code_challenge, auth_time, amr, acr, created_at, expires_at, redeemed_at`

func scanOIDCGrant(row interface{ Scan(...any) error }) (*auth.OIDCGrant, error) {
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
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.CodeHash, g.ClientID, g.UserID, g.SessionID, g.RedirectURI, words(g.Scopes), g.Nonce,
		g.CodeChallenge, micros(g.AuthTime), words(g.AMR), g.ACR, micros(g.CreatedAt), micros(g.ExpiresAt),
		micros(g.RedeemedAt))
	return mapErr("create oidc grant", err)
}

// RedeemOIDCCode marks the code redeemed with one conditional update and reads the
// grant back in the same write.
func (s *Store) RedeemOIDCCode(ctx context.Context, codeHash []byte, now time.Time) (*auth.OIDCGrant, bool, error) {
	var (
		g   *auth.OIDCGrant
		won bool
	)
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE oidc_grants SET redeemed_at = ?
			WHERE code_hash = ? AND redeemed_at IS NULL`, micros(now), codeHash)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		won = one(n)
		g, err = scanOIDCGrant(tx.QueryRowContext(ctx, `SELECT `+oidcGrantColumns+` FROM oidc_grants WHERE code_hash = ?`, codeHash))
		return err
	})
	if err != nil {
		return nil, false, mapErr("redeem oidc code", err)
	}
	return g, won, nil
}

const oidcTokenColumns = `id, kind, hash, grant_id, client_id, user_id, session_id, scopes, auth_time,
	amr, acr, created_at, expires_at, used_at, revoked_at`

func scanOIDCToken(row interface{ Scan(...any) error }) (*auth.OIDCToken, error) {
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

func insertOIDCTokens(ctx context.Context, tx *wtx, ts []*auth.OIDCToken) error {
	for _, t := range ts {
		var hash any
		if t.Hash != nil {
			hash = t.Hash
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO oidc_tokens (`+oidcTokenColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.ID, t.Kind, hash, t.GrantID, t.ClientID, t.UserID, t.SessionID, words(t.Scopes),
			micros(t.AuthTime), words(t.AMR), t.ACR, micros(t.CreatedAt), micros(t.ExpiresAt),
			micros(t.UsedAt), micros(t.RevokedAt)); err != nil {
			return err
		}
	}
	return nil
}

// CreateOIDCTokens inserts the tokens in one transaction.
func (s *Store) CreateOIDCTokens(ctx context.Context, ts ...*auth.OIDCToken) error {
	return mapErr("create oidc tokens", s.write(ctx, func(tx *wtx) error { return insertOIDCTokens(ctx, tx, ts) }))
}

// OIDCTokenByID returns the token or ErrNotFound.
func (s *Store) OIDCTokenByID(ctx context.Context, id string) (*auth.OIDCToken, error) {
	t, err := scanOIDCToken(s.queryRow(ctx, `SELECT `+oidcTokenColumns+` FROM oidc_tokens WHERE id = ?`, id))
	return t, mapErr("oidc token", err)
}

// OIDCRefreshToken returns the refresh token with this hash or ErrNotFound.
func (s *Store) OIDCRefreshToken(ctx context.Context, hash []byte) (*auth.OIDCToken, error) {
	t, err := scanOIDCToken(s.queryRow(ctx, `SELECT `+oidcTokenColumns+` FROM oidc_tokens
		WHERE hash = ? AND kind = 'refresh'`, hash))
	return t, mapErr("oidc refresh token", err)
}

// RotateOIDCRefreshToken spends the old refresh token and inserts its successors in
// one transaction.
func (s *Store) RotateOIDCRefreshToken(ctx context.Context, oldID string, now time.Time, next ...*auth.OIDCToken) (bool, error) {
	var won bool
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE oidc_tokens SET used_at = ?
			WHERE id = ? AND kind = 'refresh' AND used_at IS NULL AND revoked_at IS NULL`, micros(now), oldID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if won = one(n); !won {
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
	_, err := s.exec(ctx, `UPDATE oidc_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, micros(now), id)
	return mapErr("revoke oidc token", err)
}

// RevokeOIDCGrant revokes the whole family and spends the grant's code.
func (s *Store) RevokeOIDCGrant(ctx context.Context, grantID string, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE oidc_tokens SET revoked_at = ?
			WHERE grant_id = ? AND revoked_at IS NULL`, micros(now), grantID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE oidc_grants SET redeemed_at = ?
			WHERE id = ? AND redeemed_at IS NULL`, micros(now), grantID)
		return err
	})
	return int(n), mapErr("revoke oidc grant", err)
}

// SaveOIDCConsent records (replacing) the user's consent for the client.
func (s *Store) SaveOIDCConsent(ctx context.Context, c *auth.OIDCConsent) error {
	_, err := s.exec(ctx, `INSERT INTO oidc_consents (user_id, client_id, scopes, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, created_at = excluded.created_at`,
		c.UserID, c.ClientID, words(c.Scopes), micros(c.CreatedAt))
	return mapErr("save oidc consent", err)
}

// OIDCConsent returns the user's consent for the client or ErrNotFound.
func (s *Store) OIDCConsent(ctx context.Context, user auth.UserID, clientID string) (*auth.OIDCConsent, error) {
	c := auth.OIDCConsent{UserID: user, ClientID: clientID}
	var scopes string
	err := s.queryRow(ctx, `SELECT scopes, created_at FROM oidc_consents WHERE user_id = ? AND client_id = ?`,
		user, clientID).Scan(&scopes, timeCol{&c.CreatedAt})
	if err != nil {
		return nil, mapErr("oidc consent", err)
	}
	c.Scopes = unwords(scopes)
	return &c, nil
}

// ListOIDCApps returns the clients the user has a consent or a live token for.
func (s *Store) ListOIDCApps(ctx context.Context, user auth.UserID, now time.Time) ([]auth.OIDCConsent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT c.id, c.name, coalesce(k.scopes, ''),
			coalesce(k.created_at, (SELECT min(t.created_at) FROM oidc_tokens t WHERE t.client_id = c.id AND t.user_id = ?1))
		FROM oidc_clients c LEFT JOIN oidc_consents k ON k.client_id = c.id AND k.user_id = ?1
		WHERE k.user_id IS NOT NULL OR EXISTS (SELECT 1 FROM oidc_tokens t WHERE t.client_id = c.id
			AND t.user_id = ?1 AND t.revoked_at IS NULL AND t.used_at IS NULL AND t.expires_at > ?2)
		ORDER BY 4, c.id`, user, micros(now))
	if err != nil {
		return nil, mapErr("list oidc apps", err)
	}
	defer rows.Close()
	var out []auth.OIDCConsent
	for rows.Next() {
		c := auth.OIDCConsent{UserID: user}
		var scopes string
		var created sql.NullInt64
		if err := rows.Scan(&c.ClientID, &c.ClientName, &scopes, &created); err != nil {
			return nil, mapErr("list oidc apps", err)
		}
		c.Scopes = unwords(scopes)
		if created.Valid {
			c.CreatedAt = time.UnixMicro(created.Int64).UTC()
		}
		out = append(out, c)
	}
	return out, mapErr("list oidc apps", rows.Err())
}

// RevokeOIDCApp deletes the consent and revokes the client's tokens for the user.
func (s *Store) RevokeOIDCApp(ctx context.Context, user auth.UserID, clientID string, now time.Time) error {
	return mapErr("revoke oidc app", s.write(ctx, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oidc_consents WHERE user_id = ? AND client_id = ?`, user, clientID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE oidc_tokens SET revoked_at = ?
			WHERE user_id = ? AND client_id = ? AND revoked_at IS NULL`, micros(now), user, clientID)
		return err
	}))
}

// AddOIDCKey retires the current key and inserts k in one transaction.
func (s *Store) AddOIDCKey(ctx context.Context, k *auth.OIDCKey) error {
	return mapErr("add oidc key", s.write(ctx, func(tx *wtx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE oidc_keys SET retired_at = ? WHERE retired_at IS NULL`,
			micros(k.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oidc_keys (id, alg, seal_key_id, private_key, created_at, retired_at)
			VALUES (?, ?, ?, ?, ?, NULL)`, k.ID, k.Alg, k.Private.KeyID, k.Private.Ciphertext, micros(k.CreatedAt))
		return err
	}))
}

// OIDCKeys returns the current key and those retired at or after retiredSince.
func (s *Store) OIDCKeys(ctx context.Context, retiredSince time.Time) ([]auth.OIDCKey, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, alg, seal_key_id, private_key, created_at, retired_at
		FROM oidc_keys WHERE retired_at IS NULL OR retired_at >= ? ORDER BY created_at DESC, id`, micros(retiredSince))
	if err != nil {
		return nil, mapErr("oidc keys", err)
	}
	defer rows.Close()
	var out []auth.OIDCKey
	for rows.Next() {
		var k auth.OIDCKey
		if err := rows.Scan(&k.ID, &k.Alg, &k.Private.KeyID, &k.Private.Ciphertext, timeCol{&k.CreatedAt},
			timeCol{&k.RetiredAt}); err != nil {
			return nil, mapErr("oidc keys", err)
		}
		out = append(out, k)
	}
	return out, mapErr("oidc keys", rows.Err())
}

// PurgeOIDC deletes expired tokens and the grants nothing refers to any more.
func (s *Store) PurgeOIDC(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(tx *wtx) error {
		n = 0
		for _, q := range []string{`DELETE FROM oidc_tokens WHERE expires_at <= ?`,
			`DELETE FROM oidc_grants WHERE expires_at <= ? AND NOT EXISTS
				(SELECT 1 FROM oidc_tokens t WHERE t.grant_id = oidc_grants.id)`} {
			res, err := tx.ExecContext(ctx, q, micros(now))
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	return n, mapErr("purge oidc", err)
}

// OIDCSession returns the session and its user's current credentials epoch.
func (s *Store) OIDCSession(ctx context.Context, id auth.SessionID) (*auth.Session, int64, error) {
	var sess auth.Session
	var epoch int64
	err := s.queryRow(ctx, `SELECT s.id, s.user_id, s.created_at, s.last_seen_at, s.expires_at, s.reauth_at,
			s.cred_epoch, s.method, s.mfa_at, u.cred_epoch
		FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`, id).Scan(&sess.ID, &sess.UserID,
		timeCol{&sess.CreatedAt}, timeCol{&sess.LastSeenAt}, timeCol{&sess.ExpiresAt}, timeCol{&sess.ReauthAt},
		&sess.CredEpoch, &sess.Method, timeCol{&sess.MFAAt}, &epoch)
	if err != nil {
		return nil, 0, mapErr("oidc session", err)
	}
	return &sess, epoch, nil
}
