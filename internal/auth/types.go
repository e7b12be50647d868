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
	// Disabled is set by an operator: the account cannot sign in. Only UserByID,
	// UserByLogin, UserByEmail and ListUsers read it.
	Disabled  bool
	CreatedAt time.Time
	// CredEpoch counts the credential changes that end sessions (password change or
	// reset, MFA on or off, an approved recovery). Sessions and pending logins carry the
	// epoch they were opened under and are dead once it moves on, so a sign-in that
	// checked the old password just before a change can never open a session after it.
	CredEpoch int64
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
	CredEpoch  int64 // the user's CredEpoch when the session was opened
	// Method says how the session was signed in: SessionPassword, or with a second
	// factor SessionPasswordTOTP, SessionPasswordRecoveryCode, SessionPasswordWebAuthn,
	// or SessionPasskey (a passkey alone, which counts as MFA); a step-up or
	// re-authentication with a factor upgrades it.
	Method string
	// MFAAt is when this session last proved a second factor (zero: never). Protocols
	// that ask "did this session pass MFA, and how long ago" read it.
	MFAAt time.Time
}

// Session methods: which factors a session has proved. A method other than
// SessionPassword implies MFAAt is set.
const (
	SessionPassword             = "password"
	SessionPasswordTOTP         = "password+totp"
	SessionPasswordRecoveryCode = "password+recovery_code"
)

// SessionMethodFor is the session method after a password and then the second factor
// named by factorMethod (MethodTOTP, MethodRecoveryCode or MethodWebAuthn).
func SessionMethodFor(factorMethod string) string {
	switch factorMethod {
	case MethodWebAuthn:
		return SessionPasswordWebAuthn
	case MethodTOTP:
		return SessionPasswordTOTP
	case MethodRecoveryCode:
		return SessionPasswordRecoveryCode
	}
	return SessionPassword
}

// HasMFA reports whether the session proved a second factor.
func (s *Session) HasMFA() bool {
	return s.Method != SessionPassword && s.Method != "" && !s.MFAAt.IsZero()
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
	CredEpoch int64 // the user's CredEpoch when the password was checked
}

// AttemptStep is one counter change computed from the counter's current state: Step
// returns the next state and whether to write it. It must only compute (stores run it
// inside their write, and may run it more than once; the last run is the one written).
type AttemptStep struct {
	Key  AttemptKey
	Step func(prev AttemptState) (next AttemptState, write bool)
}

// AttemptKey names one counter: Scope says what is limited ("mfa", "pw-account",
// "pw-ip", "signup-ip", …), Key whose (an account id, a client address).
type AttemptKey struct {
	Scope string
	Key   string
}

// AttemptState is one counter as stored. Version is 0 when no row exists yet and is
// bumped by every write. InFlight counts checks that took a slot and have not settled
// yet; the slots lapse together at InFlightUntil, so a crashed process cannot hold
// them for ever.
type AttemptState struct {
	Failures      int
	Locks         int // how many times the counter has locked; the lock doubles each time
	LockedUntil   time.Time
	UpdatedAt     time.Time
	InFlight      int
	InFlightUntil time.Time
	Version       int64
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

// PendingTOTP is an authenticator-app setup that is not confirmed yet. It belongs to
// the session that started it: no other session may see its secret or confirm it.
type PendingTOTP struct {
	UserID    UserID
	SessionID SessionID
	Secret    EncryptedSecret
	ExpiresAt time.Time
}

// RecoveryCodeCounts says how many recovery codes an account has and how many are unused.
type RecoveryCodeCounts struct {
	Total     int
	Remaining int
}

// MFAState is a user's second factors as stored: whether any is registered (a TOTP app
// or a WebAuthn key), which, the counts of recovery codes (zero while MFA is off), and
// the require-mfa deadline.
type MFAState struct {
	Enabled bool // TOTP || WebAuthnKeys > 0
	TOTP    bool
	// WebAuthnKeys counts the security keys and passkeys.
	WebAuthnKeys int
	Codes        RecoveryCodeCounts
	// Deadline is when the require-mfa policy wants a second factor (zero: none set).
	Deadline time.Time
}

// PendingSignIn is not stored: it is what the second-factor step reads, in one query:
// the PendingLogin, its user, and the user's TOTP credential (nil when there is none).
type PendingSignIn struct {
	Pending PendingLogin
	User    User
	TOTP    *TOTPCredential
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

// SSHKey is an SSH public key registered on an account as a recovery factor.
type SSHKey struct {
	ID          SSHKeyID
	UserID      UserID
	Title       string
	PublicKey   string // authorized_keys form without the comment: "ssh-ed25519 AAAA…"
	Fingerprint string // "SHA256:…", exactly as `ssh-keygen -lf` prints it
	CreatedAt   time.Time
	LastUsedAt  time.Time // zero: never used for recovery
}

// RecoveryRequestID names a recovery request: 128 random bits in hex, so that it is
// unguessable and a request can only be verified by whoever opened it.
type RecoveryRequestID string

// Recovery request statuses. A request starts pending; its first successful
// verification makes it verified; an operator (or the auto-approval) then approves or
// denies it. The owner's cancel link makes it cancelled; five failed verifications, or
// the approval of another request of the account, make it closed. A pending request
// past its ExpiresAt is shown as expired but keeps the stored status pending.
const (
	RecoveryPending   = "pending"
	RecoveryVerified  = "verified"
	RecoveryApproved  = "approved"
	RecoveryDenied    = "denied"
	RecoveryCancelled = "cancelled"
	RecoveryClosed    = "closed"
	RecoveryExpired   = "expired" // shown only; never stored
)

// RecoveryRequest is one "lost everything" request. Decoys, opened for logins that
// name no account, have UserID 0 so that their verification fails like a wrong
// signature.
type RecoveryRequest struct {
	ID         RecoveryRequestID
	UserID     UserID // 0: a decoy for an unknown login
	Subject    string // what the per-account limit counts: "user:<id>", or "login:<fold>" for decoys
	Status     string
	Challenge  string // the exact ASCII bytes to sign
	CancelHash []byte // SHA-256 of the emailed cancel token
	Failures   int    // failed verifications, as the request's attempt counter holds them
	CreatedAt  time.Time
	ExpiresAt  time.Time // end of the verification window
	IP         string
	UserAgent  string

	// Evidence, set by the successful verification.
	Method         string    // "ssh_key" or "personal_access_token"
	KeyFingerprint string    // the SSH key that signed
	KeyCreatedAt   time.Time // when that key (or token) was registered: its age is evidence
	TokenName      string    // the personal access token shown
	VerifiedAt     time.Time

	DecidedAt   time.Time // approved, denied or closed
	Reason      string    // the operator's reason, or why the request was closed
	CancelledAt time.Time // the owner used the emailed cancel link
	Reminders   int       // auto-approval reminders sent after verification
}

// RecoveryEvidence is what a successful verification records on the request.
type RecoveryEvidence struct {
	Method         string
	KeyFingerprint string
	KeyCreatedAt   time.Time
	TokenName      string
	VerifiedAt     time.Time
	// KeyID or TokenID names the SSH key or token that verified the request, so
	// that approval can check it still holds.
	KeyID   SSHKeyID
	TokenID TokenID
}

// RecoveryMatch says which of an account's recovery requests CancelRecoveryRequests
// ends: every open one (Open), or the verified ones whose evidence is the token
// TokenID or the SSH key KeyID.
type RecoveryMatch struct {
	Open    bool
	TokenID TokenID
	KeyID   SSHKeyID
}

// RecoveryLimit bounds how many requests may be opened: at most PerSubject per
// account and PerIP per client IP among those created at or after Since.
type RecoveryLimit struct {
	Since      time.Time
	PerSubject int
	PerIP      int
}

// RecoveryRetention is how long an expired, never verified recovery request is kept
// (for the operator's view and the security record) before Purge deletes it.
const RecoveryRetention = 24 * time.Hour

// SignInFinish is everything that ends a successful sign-in step, applied by
// Store.FinishSignIn in one transaction.
type SignInFinish struct {
	// Session is inserted (its ID set) only while the user's CredEpoch still equals
	// Session.CredEpoch.
	Session *Session
	// PendingHash, if set, names the pending login to consume; it must still exist.
	PendingHash []byte
	// TOTPStep, if > 0, is the step to accept: last_step must be lower, and becomes it.
	TOTPStep int64
	// RecoveryCodeHash, if set, is the user's unused recovery code to spend (used_at =
	// Session.CreatedAt).
	RecoveryCodeHash []byte
	// Counters are the counter changes made in the same transaction (the success that
	// settles the attempt's slot), each computed from the counter as it is then.
	Counters []AttemptStep
	// Event is appended to the security log.
	Event *Event
}
