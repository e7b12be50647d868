package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/internal/auth"
)

// storage is op.Storage over auth.OIDCStore. The authorize flow is ours (authorize.go),
// so the library's auth-request methods that only its own authorize handler calls
// refuse; the token endpoint redeems codes through AuthRequestByCode.
type storage struct{ p *Provider }

var _ op.Storage = (*storage)(nil)

// errNotHere answers the library's methods for flows Latchkey does not offer.
var errNotHere = oidc.ErrRequestNotSupported().WithDescription("not supported by this provider")

// randomID returns n random bytes as unpadded base64url: codes, token ids and refresh
// tokens carry 256 bits, client ids 128.
func randomID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("oidc: reading randomness: %v", err)) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// hashSecret is how codes and refresh tokens are stored: SHA-256 suffices for 256
// random bits.
func hashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errNotHere
}

func (s *storage) AuthRequestByID(context.Context, string) (op.AuthRequest, error) {
	return nil, errNotHere
}

func (s *storage) SaveAuthCode(context.Context, string, string) error { return errNotHere }

// DeleteAuthRequest is called after a code's tokens are issued. The grant stays (its
// code already redeemed) so that a second use of the code can revoke those tokens.
func (s *storage) DeleteAuthRequest(context.Context, string) error { return nil }

// AuthRequestByCode redeems a code: once, within its 60 s, while the session that
// approved it lasts. A code presented again revokes everything the first use issued
// (RFC 9700 §4.5.3) and answers invalid_grant.
func (s *storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	p := s.p
	now := p.now()
	g, won, err := p.store.RedeemOIDCCode(ctx, hashSecret(code), now)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, oidc.ErrInvalidGrant().WithDescription("unknown code")
	}
	if err != nil {
		return nil, err
	}
	if !won {
		n, err := p.store.RevokeOIDCGrant(ctx, g.ID, now)
		if err != nil {
			return nil, err
		}
		p.logEvent(ctx, g.UserID, "oidc_code_reused", "refused",
			fmt.Sprintf("client %s; %d tokens issued from the code revoked", g.ClientID, n))
		return nil, oidc.ErrInvalidGrant().WithDescription("code already used")
	}
	if !now.Before(g.ExpiresAt) {
		return nil, oidc.ErrInvalidGrant().WithDescription("code expired")
	}
	if alive, err := p.sessionAlive(ctx, g.SessionID); err != nil {
		return nil, err
	} else if !alive {
		return nil, oidc.ErrInvalidGrant().WithDescription("the sign-in behind the code has ended")
	}
	return &grantRequest{g: g}, nil
}

// newTokens builds the access token (and refresh token, when asked) that inherit
// from: a grant's or a rotated refresh token's claims.
func (p *Provider) newTokens(from tokenSource, withRefresh bool) (access, refresh *auth.OIDCToken, refreshSecret string) {
	now := p.now()
	base := auth.OIDCToken{GrantID: from.grantID(), ClientID: from.GetClientID(), UserID: from.userID(),
		SessionID: from.sessionID(), Scopes: from.GetScopes(), AuthTime: from.GetAuthTime(), AMR: from.GetAMR(),
		ACR: from.GetACR(), CreatedAt: now}
	a := base
	a.ID, a.Kind, a.ExpiresAt = randomID(32), auth.OIDCAccessToken, now.Add(p.opts.AccessTokenTTL)
	if !withRefresh {
		return &a, nil, ""
	}
	r := base
	refreshSecret = randomID(32)
	r.ID, r.Kind, r.Hash, r.ExpiresAt = randomID(16), auth.OIDCRefreshToken, hashSecret(refreshSecret),
		now.Add(p.opts.RefreshTokenTTL)
	return &a, &r, refreshSecret
}

// tokenSource is what tokens are issued from: a redeemed grant or a refresh token.
type tokenSource interface {
	op.AuthRequest
	grantID() string
	userID() auth.UserID
	sessionID() auth.SessionID
}

func (s *storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	from, ok := req.(tokenSource)
	if !ok {
		return "", time.Time{}, errNotHere
	}
	a, _, _ := s.p.newTokens(from, false)
	if err := s.p.store.CreateOIDCTokens(ctx, a); err != nil {
		return "", time.Time{}, err
	}
	return a.ID, a.ExpiresAt, nil
}

// CreateAccessAndRefreshTokens issues tokens for a redeemed code, or rotates a refresh
// token: the old one is spent by one conditional update, so of two racing uses one
// rotates and the other is a reuse, which revokes the family.
func (s *storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	p := s.p
	from, ok := req.(tokenSource)
	if !ok {
		return "", "", time.Time{}, errNotHere
	}
	a, r, secret := p.newTokens(from, true)
	if current == "" {
		if err := p.store.CreateOIDCTokens(ctx, a, r); err != nil {
			return "", "", time.Time{}, err
		}
		return a.ID, secret, a.ExpiresAt, nil
	}
	old, ok := req.(*refreshRequest)
	if !ok {
		return "", "", time.Time{}, errNotHere
	}
	won, err := p.store.RotateOIDCRefreshToken(ctx, old.t.ID, p.now(), a, r)
	if err != nil {
		return "", "", time.Time{}, err
	}
	if !won {
		p.refreshReused(ctx, old.t)
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	}
	return a.ID, secret, a.ExpiresAt, nil
}

// refreshReused revokes the family of a refresh token presented after it was rotated
// (or revoked): whoever holds the family now may be an attacker who copied it.
func (p *Provider) refreshReused(ctx context.Context, t *auth.OIDCToken) {
	n, err := p.store.RevokeOIDCGrant(ctx, t.GrantID, p.now())
	if err != nil {
		p.log.Error("oidc: revoking a reused refresh token's family", "err", err)
	}
	p.logEvent(ctx, t.UserID, "oidc_refresh_token_reused", "refused",
		fmt.Sprintf("client %s; %d tokens of the family revoked", t.ClientID, n))
}

// TokenRequestByRefreshToken accepts a refresh token that is unused, unrevoked,
// unexpired, and whose session still stands.
func (s *storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	p := s.p
	t, err := p.store.OIDCRefreshToken(ctx, hashSecret(token))
	if errors.Is(err, auth.ErrNotFound) {
		return nil, op.ErrInvalidRefreshToken
	}
	if err != nil {
		return nil, err
	}
	now := p.now()
	switch {
	case !t.UsedAt.IsZero():
		p.refreshReused(ctx, t)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token already used")
	case !t.RevokedAt.IsZero(), !now.Before(t.ExpiresAt):
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token revoked or expired")
	}
	alive, err := p.sessionAlive(ctx, t.SessionID)
	if err != nil {
		return nil, err
	}
	if !alive {
		// The sign-in that granted the family has ended: so does the family.
		if _, err := p.store.RevokeOIDCGrant(ctx, t.GrantID, now); err != nil {
			return nil, err
		}
		return nil, oidc.ErrInvalidGrant().WithDescription("the sign-in behind the refresh token has ended")
	}
	return &refreshRequest{t: t}, nil
}

// TerminateSession is the library's end_session hook; logout is ours (logout.go).
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// RevokeToken revokes an access token alone, or a refresh token with its family
// (RFC 7009 §2.1 allows both; SPEC asks for the family). Unknown tokens and tokens of
// other clients change nothing and answer 200.
func (s *storage) RevokeToken(ctx context.Context, tokenOrID, _ string, clientID string) *oidc.Error {
	p := s.p
	t, err := p.store.OIDCTokenByID(ctx, tokenOrID)
	if errors.Is(err, auth.ErrNotFound) {
		return nil
	}
	if err != nil {
		return oidc.ErrServerError()
	}
	if t.ClientID != clientID {
		return nil
	}
	if t.Kind == auth.OIDCRefreshToken {
		_, err = p.store.RevokeOIDCGrant(ctx, t.GrantID, p.now())
	} else {
		err = p.store.RevokeOIDCToken(ctx, t.ID, p.now())
	}
	if err != nil {
		return oidc.ErrServerError()
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(ctx context.Context, _ string, token string) (string, string, error) {
	t, err := s.p.store.OIDCRefreshToken(ctx, hashSecret(token))
	if errors.Is(err, auth.ErrNotFound) {
		return "", "", op.ErrInvalidRefreshToken
	}
	if err != nil {
		return "", "", err
	}
	return strconv.FormatInt(int64(t.UserID), 10), t.ID, nil
}

func (s *storage) SigningKey(ctx context.Context) (op.SigningKey, error) { return s.p.signingKey(ctx) }

func (s *storage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	ks, err := s.p.publishedKeys(ctx)
	if err != nil {
		return nil, err
	}
	algs := []jose.SignatureAlgorithm{jose.RS256}
	for _, k := range ks {
		if !slices.Contains(algs, k.alg) {
			algs = append(algs, k.alg)
		}
	}
	return algs, nil
}

func (s *storage) KeySet(ctx context.Context) ([]op.Key, error) {
	ks, err := s.p.publishedKeys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, len(ks))
	for i, k := range ks {
		out[i] = publicKey{k}
	}
	return out, nil
}

func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.p.store.OIDCClient(ctx, id)
	if errors.Is(err, auth.ErrNotFound) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if err != nil {
		return nil, err
	}
	return &client{c: c, idTTL: s.p.opts.IDTokenTTL}, nil
}

// AuthorizeClientIDSecret checks a confidential client's secret in constant time.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.p.store.OIDCClient(ctx, id)
	if err != nil {
		return oidc.ErrInvalidClient()
	}
	if c.Public || len(c.SecretHash) == 0 || !hmac.Equal(c.SecretHash, clientSecretMAC(s.p.keys, id, secret)) {
		return oidc.ErrInvalidClient()
	}
	return nil
}

// SetUserinfoFromScopes fills the claims the scopes allow: sub always,
// preferred_username for profile, email (once verified) and email_verified for email.
func (s *storage) SetUserinfoFromScopes(ctx context.Context, info *oidc.UserInfo, userID, _ string, scopes []string) error {
	id, err := strconv.ParseInt(userID, 10, 64)
	if err != nil {
		return oidc.ErrInvalidRequest()
	}
	u, err := s.p.svc.Store().UserByID(ctx, auth.UserID(id))
	if err != nil {
		return err
	}
	info.Subject = userID
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.PreferredUsername = u.Username
	}
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.EmailVerified = oidc.Bool(u.EmailVerified && u.Email != "")
		if u.EmailVerified {
			info.Email = u.Email
		}
	}
	return nil
}

// SetUserinfoFromToken answers /oauth2/userinfo for a live access token.
func (s *storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.p.store.OIDCTokenByID(ctx, tokenID)
	if err != nil || t.Kind != auth.OIDCAccessToken || !t.RevokedAt.IsZero() || !s.p.now().Before(t.ExpiresAt) ||
		strconv.FormatInt(int64(t.UserID), 10) != subject {
		return oidc.ErrAccessDenied().WithDescription("access token invalid or expired")
	}
	// An access token, like its family's refresh token, ends with the sign-in behind it.
	if alive, err := s.p.sessionAlive(ctx, t.SessionID); err != nil || !alive {
		return oidc.ErrAccessDenied().WithDescription("the sign-in behind the access token has ended")
	}
	return s.SetUserinfoFromScopes(ctx, info, subject, t.ClientID, t.Scopes)
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotHere
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotHere
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotHere
}

func (s *storage) Health(ctx context.Context) error { return s.p.svc.Store().Ping(ctx) }

// grantRequest is a redeemed grant as the library sees an auth request.
type grantRequest struct{ g *auth.OIDCGrant }

func (r *grantRequest) GetID() string          { return r.g.ID }
func (r *grantRequest) GetACR() string         { return r.g.ACR }
func (r *grantRequest) GetAMR() []string       { return r.g.AMR }
func (r *grantRequest) GetAudience() []string  { return []string{r.g.ClientID} }
func (r *grantRequest) GetAuthTime() time.Time { return r.g.AuthTime }
func (r *grantRequest) GetClientID() string    { return r.g.ClientID }
func (r *grantRequest) GetNonce() string       { return r.g.Nonce }
func (r *grantRequest) GetRedirectURI() string { return r.g.RedirectURI }
func (r *grantRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseTypeCode
}
func (r *grantRequest) GetResponseMode() oidc.ResponseMode { return "" }
func (r *grantRequest) GetScopes() []string                { return r.g.Scopes }
func (r *grantRequest) GetState() string                   { return "" }
func (r *grantRequest) GetSubject() string                 { return strconv.FormatInt(int64(r.g.UserID), 10) }
func (r *grantRequest) Done() bool                         { return true }
func (r *grantRequest) grantID() string                    { return r.g.ID }
func (r *grantRequest) userID() auth.UserID                { return r.g.UserID }
func (r *grantRequest) sessionID() auth.SessionID          { return r.g.SessionID }
func (r *grantRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if r.g.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: r.g.CodeChallenge, Method: oidc.CodeChallengeMethodS256}
}

// refreshRequest is a refresh token as the library sees a refresh request. It is an
// op.AuthRequest too, so that refreshed ID tokens keep their acr (the library reads
// acr only from auth requests); it carries no nonce (OIDC Core §12.2).
type refreshRequest struct{ t *auth.OIDCToken }

func (r *refreshRequest) GetID() string                         { return r.t.ID }
func (r *refreshRequest) GetACR() string                        { return r.t.ACR }
func (r *refreshRequest) GetAMR() []string                      { return r.t.AMR }
func (r *refreshRequest) GetAudience() []string                 { return []string{r.t.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time                { return r.t.AuthTime }
func (r *refreshRequest) GetClientID() string                   { return r.t.ClientID }
func (r *refreshRequest) GetNonce() string                      { return "" }
func (r *refreshRequest) GetRedirectURI() string                { return "" }
func (r *refreshRequest) GetResponseType() oidc.ResponseType    { return oidc.ResponseTypeCode }
func (r *refreshRequest) GetResponseMode() oidc.ResponseMode    { return "" }
func (r *refreshRequest) GetScopes() []string                   { return r.t.Scopes }
func (r *refreshRequest) GetState() string                      { return "" }
func (r *refreshRequest) GetSubject() string                    { return strconv.FormatInt(int64(r.t.UserID), 10) }
func (r *refreshRequest) Done() bool                            { return true }
func (r *refreshRequest) GetCodeChallenge() *oidc.CodeChallenge { return nil }
func (r *refreshRequest) SetCurrentScopes(scopes []string)      { r.t.Scopes = scopes }
func (r *refreshRequest) grantID() string                       { return r.t.GrantID }
func (r *refreshRequest) userID() auth.UserID                   { return r.t.UserID }
func (r *refreshRequest) sessionID() auth.SessionID             { return r.t.SessionID }

// client is a registered client as the library sees it.
type client struct {
	c     *auth.OIDCClient
	idTTL time.Duration
}

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }
func (c *client) ApplicationType() op.ApplicationType {
	if c.c.Public {
		return op.ApplicationTypeNative
	}
	return op.ApplicationTypeWeb
}
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.Public {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken}
}
func (c *client) LoginURL(string) string               { return "/login" }
func (c *client) AccessTokenType() op.AccessTokenType  { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration       { return c.idTTL }
func (c *client) DevMode() bool                        { return false }
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func remarshal(in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}
