package auth

import (
	"context"
	"slices"
	"time"
)

// OIDCClient is an application registered to sign people in through the OpenID
// Connect provider. A confidential client's secret is stored only as HMAC-SHA256 under
// the secret key (SecretHash); a public client has none and must use PKCE.
type OIDCClient struct {
	ID                     string
	Name                   string
	SecretHash             []byte // nil for a public client
	Public                 bool
	RequireMFA             bool
	Consent                bool
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	CreatedAt              time.Time
}

// OIDCGrant is one authorization: the request a user's session approved, the code that
// redeems it (stored as SHA-256, never usable in the clear), and what every token
// issued from it inherits. Its ID names the token family: a code used twice, or a
// refresh token presented again, revokes every token of the family.
type OIDCGrant struct {
	ID            string
	CodeHash      []byte
	ClientID      string
	UserID        UserID
	SessionID     SessionID
	RedirectURI   string
	Scopes        []string
	Nonce         string
	CodeChallenge string // S256 challenge, "" when none was sent
	AuthTime      time.Time
	AMR           []string
	ACR           string
	CreatedAt     time.Time
	ExpiresAt     time.Time // of the code
	RedeemedAt    time.Time // zero until the code is exchanged
}

// OIDC token kinds.
const (
	OIDCAccessToken  = "access"
	OIDCRefreshToken = "refresh"
)

// OIDCToken is an access or refresh token. An access token is handed out sealed
// (AES-256-GCM under the secret key) around its ID; a refresh token is random and only
// its SHA-256 (Hash) is stored. Both carry their grant's claims so a refresh needs no
// other row.
type OIDCToken struct {
	ID        string
	Kind      string
	Hash      []byte // refresh tokens only
	GrantID   string // the family
	ClientID  string
	UserID    UserID
	SessionID SessionID
	Scopes    []string
	AuthTime  time.Time
	AMR       []string
	ACR       string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // refresh tokens: when it was rotated away
	RevokedAt time.Time
}

// OIDCConsent records that a user let a client have these scopes, until revoked.
type OIDCConsent struct {
	UserID     UserID
	ClientID   string
	ClientName string // filled by ListOIDCConsents
	Scopes     []string
	CreatedAt  time.Time
}

// Covers reports whether the consent includes every scope in want.
func (c *OIDCConsent) Covers(want []string) bool {
	for _, s := range want {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// OIDCKey is an ID-token signing key. The private key (PKCS#8 DER) is sealed with
// AES-256-GCM under the secret key; the public half is derived from it when loaded.
type OIDCKey struct {
	ID        string
	Alg       string // RS256 or ES256
	Private   EncryptedSecret
	CreatedAt time.Time
	RetiredAt time.Time // zero: the current signing key
}

// OIDCStore is what the OpenID Connect provider needs from a database, beside Store.
// Both stores implement it and pass storetest's OIDC area. Races (a code exchanged
// twice, a refresh token rotated twice) are settled by one conditional update each.
type OIDCStore interface {
	// CreateOIDCClient inserts c; ConflictError when the ID exists.
	CreateOIDCClient(ctx context.Context, c *OIDCClient) error
	// OIDCClient returns the client or ErrNotFound.
	OIDCClient(ctx context.Context, id string) (*OIDCClient, error)
	// ListOIDCClients returns every client, oldest first.
	ListOIDCClients(ctx context.Context) ([]OIDCClient, error)
	// DeleteOIDCClient deletes the client with its grants, tokens and consents in one
	// transaction; ErrNotFound when there is no such client.
	DeleteOIDCClient(ctx context.Context, id string) error

	// CreateOIDCGrant stores an approved authorization with its code.
	CreateOIDCGrant(ctx context.Context, g *OIDCGrant) error
	// RedeemOIDCCode marks the grant whose code hashes to codeHash redeemed at now,
	// only where it was not redeemed yet (one conditional update), and returns the
	// grant and whether this call redeemed it. ErrNotFound when no grant has the code.
	RedeemOIDCCode(ctx context.Context, codeHash []byte, now time.Time) (*OIDCGrant, bool, error)

	// CreateOIDCTokens inserts the tokens (one access token, and a refresh token or not).
	CreateOIDCTokens(ctx context.Context, ts ...*OIDCToken) error
	// OIDCTokenByID returns the token or ErrNotFound.
	OIDCTokenByID(ctx context.Context, id string) (*OIDCToken, error)
	// OIDCRefreshToken returns the refresh token with this hash (used, revoked or
	// expired alike) or ErrNotFound.
	OIDCRefreshToken(ctx context.Context, hash []byte) (*OIDCToken, error)
	// RotateOIDCRefreshToken, in one transaction, marks the refresh token oldID used at
	// now only where it is neither used nor revoked, and if it did inserts next (the new
	// access and refresh tokens). It reports whether it rotated.
	RotateOIDCRefreshToken(ctx context.Context, oldID string, now time.Time, next ...*OIDCToken) (bool, error)
	// RevokeOIDCToken marks one token revoked (no error when it is unknown).
	RevokeOIDCToken(ctx context.Context, id string, now time.Time) error
	// RevokeOIDCGrant marks every token of the grant (its family) revoked and the
	// grant's code redeemed, and reports how many tokens it revoked.
	RevokeOIDCGrant(ctx context.Context, grantID string, now time.Time) (int, error)

	// SaveOIDCConsent records (replacing) the user's consent for the client.
	SaveOIDCConsent(ctx context.Context, c *OIDCConsent) error
	// OIDCConsent returns the user's consent for the client or ErrNotFound.
	OIDCConsent(ctx context.Context, user UserID, clientID string) (*OIDCConsent, error)
	// ListOIDCApps returns one entry per client the user has a consent or an unrevoked,
	// unexpired (at now) token for, with the client's name, oldest first; Scopes and
	// CreatedAt are the consent's when there is one.
	ListOIDCApps(ctx context.Context, user UserID, now time.Time) ([]OIDCConsent, error)
	// RevokeOIDCApp deletes the user's consent for the client and revokes every token
	// the client holds for the user, in one transaction.
	RevokeOIDCApp(ctx context.Context, user UserID, clientID string, now time.Time) error

	// AddOIDCKey inserts k as the signing key and retires (RetiredAt = k.CreatedAt)
	// every key that was current, in one transaction.
	AddOIDCKey(ctx context.Context, k *OIDCKey) error
	// OIDCKeys returns every key not retired before retiredSince, newest first.
	OIDCKeys(ctx context.Context, retiredSince time.Time) ([]OIDCKey, error)

	// PurgeOIDC deletes tokens expired at now, and grants whose code expired and that
	// have no token left, and returns how many rows went.
	PurgeOIDC(ctx context.Context, now time.Time) (int64, error)

	// OIDCSession returns the session with this ID and its user's current credentials
	// epoch, or ErrNotFound: refresh tokens die with the session that granted them.
	OIDCSession(ctx context.Context, id SessionID) (*Session, int64, error)
}

// OIDC authentication context classes (SPEC §9.1).
const (
	ACRMFA       = "urn:latchkey:acr:mfa"
	ACROneFactor = "urn:latchkey:acr:1fa"
)

// SessionAMR returns the RFC 8176 methods the session earned and its acr. Methods it
// does not know claim only what is certain, never a factor nobody recorded: a method
// that starts with a password claims "pwd", anything else nothing, and neither "mfa".
func SessionAMR(s *Session) (amr []string, acr string) {
	if s == nil {
		return nil, ACROneFactor
	}
	switch s.Method {
	case SessionPassword, "":
		return []string{"pwd"}, ACROneFactor
	case SessionPasswordTOTP, SessionPasswordRecoveryCode:
		amr = []string{"pwd", "otp", "mfa"}
	case "password+webauthn":
		amr = []string{"pwd", "hwk", "mfa"}
	case "passkey":
		amr = []string{"hwk", "mfa"}
	case "trusted_device":
		amr = []string{"pwd", "mfa"}
	default:
		if len(s.Method) >= 8 && s.Method[:8] == "password" {
			return []string{"pwd"}, ACROneFactor
		}
		return []string{}, ACROneFactor
	}
	if s.MFAAt.IsZero() {
		// A method claiming a factor without its time is inconsistent: trust neither.
		return []string{"pwd"}, ACROneFactor
	}
	return amr, ACRMFA
}

// LogEvent writes one line of the security log for a collaborator of the Service (the
// OpenID Connect provider: refused redirects, reused refresh tokens, clients added or
// removed). A failure to write is logged, not returned.
func (s *Service) LogEvent(ctx context.Context, user UserID, c Client, name, outcome, detail string) {
	s.event(ctx, user, c, name, outcome, detail)
}
