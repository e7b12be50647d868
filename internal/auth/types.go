package auth

import (
	"sort"
	"time"
)

// Typed identifiers keep a user id from being passed where a session id is meant.
type (
	// UserID identifies an account.
	UserID int64
	// SessionID identifies a session.
	SessionID int64
	// TokenID identifies a personal access token.
	TokenID int64
	// SSHKeyID identifies a registered SSH public key.
	SSHKeyID int64
)

// User is an account.
type User struct {
	ID            UserID
	Username      string // as typed at sign-up; uniqueness is case-insensitive
	Email         string // as typed; uniqueness is case-insensitive
	EmailVerified bool
	PasswordHash  string // argon2id PHC string
	IsAdmin       bool
	CreatedAt     time.Time
}

// Session is a signed-in browser or API session. The token itself is never stored:
// TokenHash is SHA-256 of it.
type Session struct {
	ID         SessionID
	UserID     UserID
	TokenHash  []byte
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time // absolute expiry (30 days after creation by default)
	ReauthAt   time.Time // last sign-in or re-authentication; sensitive actions need it recent
	IP         string
	UserAgent  string
}

// PendingLogin is the state between a correct password and the second factor. It
// grants nothing but the second-factor step.
type PendingLogin struct {
	TokenHash []byte
	UserID    UserID
	CreatedAt time.Time
	ExpiresAt time.Time
	IP        string
	UserAgent string
}

// AttemptKey names one failure counter: Scope is "mfa", "pw-account" or "pw-ip".
type AttemptKey struct {
	Scope string
	Key   string
}

// AttemptState is one failure counter. Version is 0 when no row exists yet; every
// write bumps it so that stores can settle races with a compare-and-swap.
type AttemptState struct {
	Failures    int
	Locks       int // how many times the counter has locked; the lock doubles each time
	LockedUntil time.Time
	UpdatedAt   time.Time
	Version     int64
}

// EncryptedSecret is a TOTP secret sealed with AES-256-GCM under the key named KeyID.
type EncryptedSecret struct {
	KeyID      string
	Ciphertext []byte // nonce || sealed
}

// TOTPCredential is an enabled authenticator-app registration.
type TOTPCredential struct {
	UserID    UserID
	Secret    EncryptedSecret
	LastStep  int64 // the last accepted time step; only later steps are accepted
	CreatedAt time.Time
}

// PendingTOTP is an authenticator-app setup that is not confirmed yet.
type PendingTOTP struct {
	UserID    UserID
	Secret    EncryptedSecret
	ExpiresAt time.Time
}

// RecoveryCodeCounts says how many recovery codes an account has and how many are unused.
type RecoveryCodeCounts struct {
	Total     int
	Remaining int
}

// PasswordReset is an emailed single-use reset link; only its SHA-256 is stored.
type PasswordReset struct {
	TokenHash []byte
	UserID    UserID
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Event is one line of the security log.
type Event struct {
	ID        int64
	UserID    UserID // 0 when no account is known
	Time      time.Time
	Event     string // e.g. "login", "login_mfa", "mfa_enabled"
	Outcome   string // "success", "failure", "locked", ...
	IP        string
	UserAgent string
	Detail    string // never a secret
}

// OutboxMessage is a mail that was not sent through SMTP. Body is sealed with the
// secret key because it may hold a reset link.
type OutboxMessage struct {
	ID        int64
	To        string
	Subject   string
	Body      EncryptedSecret
	CreatedAt time.Time
}

// AccessToken is a personal access token. Only the SHA-256 of the token is stored.
type AccessToken struct {
	ID         TokenID
	UserID     UserID
	Name       string
	TokenHash  []byte
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never expires
	LastUsedAt time.Time // zero: never used
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
