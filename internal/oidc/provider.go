// Package oidc is Latchkey's OpenID Connect provider (SPEC §9.1): discovery, keys,
// authorize, token, userinfo, revocation and RP-initiated logout, so that other
// applications sign people in with the ordinary Latchkey session.
//
// The protocol endpoints that need no browser (token, userinfo, revocation, keys) are
// github.com/zitadel/oidc/v3's pkg/op, over the storage in storage.go. The authorize
// and logout endpoints are ours, because SPEC's rules differ from the library's where
// they matter most: PKCE is refused at the authorize step (the library refuses it only
// at the token endpoint), the ordinary session cookie decides who is signed in,
// prompt/max_age/acr_values send the user to sign in, re-authenticate or step up and
// back, and unregistered redirect URIs get a page, never a redirect. Discovery is the
// library's document with what SPEC adds (acr_values_supported, the RFC 9207 iss
// parameter) and without what Latchkey does not serve.
//
// This package imports auth and never a store: it reaches the database through
// auth.OIDCStore, which both stores implement.
package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/keys"
	"github.com/latchkey/latchkey/internal/web"
)

// Paths of the provider, relative to the issuer (public-url).
const (
	PathDiscovery = "/.well-known/openid-configuration"
	PathAuthorize = "/oauth2/authorize"
	PathToken     = "/oauth2/token"
	PathUserinfo  = "/oauth2/userinfo"
	PathRevoke    = "/oauth2/revoke"
	PathLogout    = "/oauth2/logout"
	PathKeys      = "/oauth2/keys"
	PathConsent   = "/oauth2/consent"
)

// Options configure the provider.
type Options struct {
	// Issuer is public-url exactly; an http issuer is allowed (for loopback and tests).
	Issuer string
	// Token lifetimes; zero takes SPEC's defaults (10m, 10m, 720h).
	AccessTokenTTL  time.Duration
	IDTokenTTL      time.Duration
	RefreshTokenTTL time.Duration
}

// Provider serves the OpenID Connect endpoints.
type Provider struct {
	svc    *auth.Service
	store  auth.OIDCStore
	keys   *keys.Keyring
	pages  *web.Handler
	log    *slog.Logger
	opts   Options
	op     *op.Provider
	issuer string // public-url exactly: the iss of every token and response
	base   string // the issuer without a trailing slash, to build URLs on

	// signers caches parsed private keys by id: parsing an RSA key for every token
	// would cost more than the rest of the exchange.
	mu      sync.Mutex
	signers map[string]*signingKey
}

// New builds the provider on svc's store, which must implement auth.OIDCStore, and
// makes sure a signing key exists (the first start creates an RS256 key). The server
// hands it the pages (UsePages) before it serves.
func New(ctx context.Context, svc *auth.Service, ring *keys.Keyring, log *slog.Logger, opts Options) (*Provider, error) {
	st, ok := svc.Store().(auth.OIDCStore)
	if !ok {
		return nil, fmt.Errorf("oidc: the store %T cannot hold OpenID Connect state", svc.Store())
	}
	if opts.AccessTokenTTL <= 0 {
		opts.AccessTokenTTL = 10 * time.Minute
	}
	if opts.IDTokenTTL <= 0 {
		opts.IDTokenTTL = 10 * time.Minute
	}
	if opts.RefreshTokenTTL <= 0 {
		opts.RefreshTokenTTL = 720 * time.Hour
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Provider{svc: svc, store: st, keys: ring, log: log, opts: opts,
		issuer: opts.Issuer, base: strings.TrimSuffix(opts.Issuer, "/"), signers: map[string]*signingKey{}}
	if u, err := url.Parse(opts.Issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("oidc: public-url %q is not an absolute http(s) URL", opts.Issuer)
	}

	// Access tokens are opaque: the library seals "id:subject" with AES-256-GCM under
	// a key derived from the secret key, and storage finds the row by the id.
	var cryptoKey [32]byte
	copy(cryptoKey[:], ring.MAC("oidc-access-token", nil))
	cfg := &op.Config{
		CryptoKey:             cryptoKey,
		CryptoKeyId:           "1",
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       supportedScopes,
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "azp",
			"at_hash", "c_hash", "preferred_username", "email", "email_verified"},
	}
	opOpts := []op.Option{
		op.WithCustomEndpoints(op.NewEndpoint(PathAuthorize[1:]), op.NewEndpoint(PathToken[1:]),
			op.NewEndpoint(PathUserinfo[1:]), op.NewEndpoint(PathRevoke[1:]), op.NewEndpoint(PathLogout[1:]),
			op.NewEndpoint(PathKeys[1:])),
		op.WithCrypto(op.NewAES256GCMCrypto(cryptoKey, "1")),
		// Browser-based public clients call the token, userinfo and revocation endpoints
		// from their own origin, so any origin may read the answers; never with
		// credentials (the library's default), because no endpoint here may act on the
		// session cookie.
		op.WithCORSOptions(&cors.Options{AllowedOrigins: []string{"*"},
			AllowedMethods: []string{http.MethodGet, http.MethodPost},
			AllowedHeaders: []string{"Authorization", "Content-Type", "Accept"}}),
	}
	if strings.HasPrefix(opts.Issuer, "http://") {
		opOpts = append(opOpts, op.WithAllowInsecure())
	}
	var err error
	p.op, err = op.NewProvider(cfg, &storage{p: p}, op.StaticIssuer(opts.Issuer), opOpts...)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if err := p.ensureKey(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// UsePages gives the provider the site's pages, for its consent, sign-out and error
// pages.
func (p *Provider) UsePages(h *web.Handler) { p.pages = h }

var supportedScopes = []string{"openid", "profile", "email", "offline_access"}

// Protocol serves the endpoints the library answers: token, userinfo, revocation and
// keys. Clients call them from anywhere and never with the session cookie.
func (p *Provider) Protocol() http.Handler { return p.op }

// Discovery serves /.well-known/openid-configuration: the library's document with
// SPEC's additions, and without the endpoints and grants Latchkey does not offer.
func (p *Provider) Discovery(w http.ResponseWriter, r *http.Request) {
	ctx := op.ContextWithIssuer(r.Context(), p.issuer)
	d := op.CreateDiscoveryConfig(ctx, p.op, &storage{p: p})
	d.IntrospectionEndpoint, d.DeviceAuthorizationEndpoint, d.CheckSessionIframe = "", "", ""
	d.IntrospectionEndpointAuthMethodsSupported = nil
	d.IntrospectionEndpointAuthSigningAlgValuesSupported = nil
	d.ResponseTypesSupported = []string{"code"}
	d.ResponseModesSupported = []string{"query"}
	d.GrantTypesSupported = nil
	d.ACRValuesSupported = []string{auth.ACRMFA, auth.ACROneFactor}
	d.ScopesSupported = supportedScopes
	d.TokenEndpointAuthMethodsSupported = nil
	d.RevocationEndpointAuthMethodsSupported = nil
	d.RequestParameterSupported = false
	doc := map[string]any{}
	if err := remarshal(d, &doc); err != nil {
		p.log.Error("oidc discovery", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	doc["grant_types_supported"] = []string{"authorization_code", "refresh_token"}
	methods := []string{"client_secret_basic", "client_secret_post", "none"}
	doc["token_endpoint_auth_methods_supported"] = methods
	doc["revocation_endpoint_auth_methods_supported"] = methods
	doc["authorization_response_iss_parameter_supported"] = true
	doc["code_challenge_methods_supported"] = []string{"S256"}
	doc["claims_parameter_supported"] = false
	doc["request_uri_parameter_supported"] = false
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, doc)
}

// now is the Service's clock, so that codes, tokens and sessions expire by one clock.
// It is truncated to the microsecond, the precision both stores keep.
func (p *Provider) now() time.Time { return p.svc.Now().UTC().Truncate(time.Microsecond) }

// logEvent writes a security-log row about the provider.
func (p *Provider) logEvent(ctx context.Context, user auth.UserID, name, outcome, detail string) {
	p.svc.LogEvent(ctx, user, auth.ClientFrom(ctx), name, outcome, detail)
}

// Purge deletes expired tokens and the grants nothing refers to any more; the
// server's purge loop calls it. Correctness never depends on it.
func (p *Provider) Purge(ctx context.Context) (int64, error) { return p.store.PurgeOIDC(ctx, p.now()) }

// sessionAlive reports whether the session that granted something still stands:
// not ended, not expired or idle, and not cut off by a credential change.
func (p *Provider) sessionAlive(ctx context.Context, id auth.SessionID) (bool, error) {
	s, epoch, err := p.store.OIDCSession(ctx, id)
	if errors.Is(err, auth.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	now := p.now()
	cfg := p.svc.Config()
	return now.Before(s.ExpiresAt) && now.Sub(s.LastSeenAt) < cfg.SessionIdle && s.CredEpoch == epoch, nil
}
