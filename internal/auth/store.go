package auth

import (
	"context"
	"time"
)

// Store is everything the Service needs from a database. Both implementations
// (internal/sqlite, internal/postgres) pass the same conformance suite
// (internal/storetest).
//
// Rules live in the Service; stores persist and guarantee atomicity. Every method that
// settles a race does it with one conditional statement and a rows-affected check, and
// reports whether it won. Times come from the Service's clock, never the database's, and
// round-trip at microsecond precision. Lookups of a missing row return ErrNotFound;
// unique violations return a *ConflictError (errors.Is(err, ErrConflict)).
type Store interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the connections.
	Close() error

	// CreateUser inserts u and sets u.ID. Username and email are each unique
	// case-insensitively: ConflictError{"username"} or ConflictError{"email"}. (An email
	// can never equal a username: validation requires "@" in one and forbids it in the
	// other.)
	CreateUser(ctx context.Context, u *User) error
	// UserByID returns the user or ErrNotFound.
	UserByID(ctx context.Context, id UserID) (*User, error)
	// UserByLogin finds a user whose username or email equals login case-insensitively.
	UserByLogin(ctx context.Context, login string) (*User, error)
	// UserByEmail finds a user by email, case-insensitively.
	UserByEmail(ctx context.Context, email string) (*User, error)
	// ListUsers returns every user ordered by id.
	ListUsers(ctx context.Context) ([]User, error)
	// SetAdmin grants or removes the operator role.
	SetAdmin(ctx context.Context, id UserID, admin bool) error
	// SetDisabled disables or enables the account; disabling also deletes every
	// session (as ChangePassword does, with keep 0), in one transaction. ErrNotFound
	// for an unknown user.
	SetDisabled(ctx context.Context, id UserID, disabled bool) error
	// ChangePassword sets the password hash and deletes every session of the user
	// except keep (0: all) and every reset link of the user, in one transaction.
	//
	// Wherever a method here deletes a user's sessions (ChangePassword,
	// ResetPassword, EnableTOTP, DisableMFA, DeleteSessions, ApproveRecoveryRequest), in
	// the same transaction it also deletes every pending login of that user, adds one to
	// the user's cred_epoch, and gives the kept session (if any) the new epoch: a
	// half-done sign-in never outlives the sessions' end, and a sign-in racing the change
	// cannot create a session under the old epoch afterwards.
	ChangePassword(ctx context.Context, id UserID, hash string, keep SessionID) error

	// CreateSession inserts s and sets s.ID, only while the user's cred_epoch equals
	// s.CredEpoch (one conditional INSERT … SELECT): otherwise it changes nothing and
	// returns ErrCredentialsChanged.
	CreateSession(ctx context.Context, s *Session) error
	// SessionByTokenHash returns the session, expired or not (the Service decides).
	SessionByTokenHash(ctx context.Context, hash []byte) (*Session, error)
	// SessionWithUser returns the session (expired or not), its user and the user's
	// MFA state in one query, or ErrNotFound when the session or user is missing: the
	// check behind every signed-in request, and all /me needs, is one round trip. It
	// reads only what a request needs: the session's IP and user agent and the user's
	// PasswordHash are left empty (ListSessions and UserByID have them), so the
	// password hash is not loaded on every request.
	SessionWithUser(ctx context.Context, hash []byte) (*Session, *User, MFAState, error)
	// TouchSession sets last_seen_at.
	TouchSession(ctx context.Context, id SessionID, at time.Time) error
	// SetSessionReauth sets reauth_at.
	SetSessionReauth(ctx context.Context, id SessionID, at time.Time) error
	// SetSessionMFA records that the session proved a second factor at at: method and
	// mfa_at. ErrNotFound when the session is gone.
	SetSessionMFA(ctx context.Context, id SessionID, method string, at time.Time) error
	// ListSessions returns the user's sessions, newest first.
	ListSessions(ctx context.Context, user UserID) ([]Session, error)
	// DeleteSession deletes the user's session id; ErrNotFound when it is not theirs.
	DeleteSession(ctx context.Context, user UserID, id SessionID) error
	// DeleteSessions deletes every session of the user except keep (0: all) and
	// returns how many went.
	DeleteSessions(ctx context.Context, user UserID, keep SessionID) (int, error)

	// CreatePendingLogin stores the state after a correct password, only while the
	// user's cred_epoch equals p.CredEpoch; otherwise ErrCredentialsChanged.
	CreatePendingLogin(ctx context.Context, p *PendingLogin) error
	// PendingSignIn returns the pending login (expired or not) with its user and the
	// user's TOTP credential, in one query; ErrNotFound when there is no such login.
	PendingSignIn(ctx context.Context, hash []byte) (*PendingSignIn, error)
	// ConsumePendingLogin deletes it and reports whether this call deleted it.
	ConsumePendingLogin(ctx context.Context, hash []byte) (bool, error)

	// Attempt reads a counter; a missing one is the zero state (Version 0). It
	// decides nothing on its own: only UpdateAttempts counts.
	Attempt(ctx context.Context, key AttemptKey) (AttemptState, error)
	// UpdateAttempts is the one write of every counter: for each step in order it
	// reads the counter (the zero state when missing), runs the step on it and writes
	// what the step returns, with nothing written to that counter in between by anyone
	// (on any replica), so parallel updates of one counter never lose one another and
	// never retry. The whole call is one write committed before it returns, never part
	// of a wider transaction of the caller's, so a request that fails later cannot
	// take a count back. It returns the states written (or read, where a step
	// declined to write).
	UpdateAttempts(ctx context.Context, steps []AttemptStep) ([]AttemptState, error)

	// SetPendingTOTP stores (replacing any earlier) a setup awaiting confirmation.
	SetPendingTOTP(ctx context.Context, p *PendingTOTP) error
	// PendingTOTP returns the user's pending setup, expired or not.
	PendingTOTP(ctx context.Context, user UserID) (*PendingTOTP, error)
	// EnableTOTP, in one transaction: fails with ErrConflict if TOTP is already
	// enabled; inserts the credential (with its accepted step as LastStep), deletes the
	// pending setup, and, unless the user has a WebAuthn key (MFA is on already and the
	// app joins it), replaces the recovery codes with codeHashes and deletes every
	// session of the user except keep.
	EnableTOTP(ctx context.Context, c *TOTPCredential, codeHashes [][]byte, keep SessionID) error
	// TOTP returns the enabled credential or ErrNotFound.
	TOTP(ctx context.Context, user UserID) (*TOTPCredential, error)
	// AdvanceTOTPStep sets last_step = step only where last_step < step, and reports
	// whether it did: a step is accepted at most once, and never an earlier one.
	AdvanceTOTPStep(ctx context.Context, user UserID, step int64) (bool, error)
	// DisableMFA, in one transaction: deletes the TOTP credential, every WebAuthn key,
	// the pending setup and every recovery code, and every session except keep (0: all).
	// It reports whether a second factor existed.
	DisableMFA(ctx context.Context, user UserID, keep SessionID) (bool, error)

	// UseRecoveryCode marks the user's unused code with this hash as used
	// (… WHERE used_at IS NULL) and reports whether exactly one row changed.
	UseRecoveryCode(ctx context.Context, user UserID, hash []byte, at time.Time) (bool, error)
	// ReplaceRecoveryCodes deletes the user's codes and inserts the new ones in one
	// transaction. It fails with ErrNotFound (and changes nothing) if MFA is not on (no
	// TOTP credential and no WebAuthn key).
	ReplaceRecoveryCodes(ctx context.Context, user UserID, hashes [][]byte, at time.Time) error
	// RecoveryCodeCounts counts the user's codes.
	RecoveryCodeCounts(ctx context.Context, user UserID) (RecoveryCodeCounts, error)
	// MFAState reports in one query which second factors the user has (TOTP, how many
	// WebAuthn keys; Enabled when any) and how many recovery codes: what every /me and
	// settings page asks.
	MFAState(ctx context.Context, user UserID) (MFAState, error)
	// SetMFADeadline stores at as the user's MFA deadline unless an earlier one is
	// stored, and returns the deadline in force.
	SetMFADeadline(ctx context.Context, user UserID, at time.Time) (time.Time, error)

	// CreatePasswordReset stores a reset link and, in the same transaction, deletes the
	// user's other reset links: only the newest link works. (ChangePassword and
	// ConfirmEmail delete them too: a link dies when the password or the address
	// changes.)
	CreatePasswordReset(ctx context.Context, r *PasswordReset) error
	// PasswordReset returns the unused reset link with this hash that is unexpired at
	// now, or ErrNotFound.
	PasswordReset(ctx context.Context, hash []byte, now time.Time) (*PasswordReset, error)
	// ResetPassword, in one transaction: consumes the unused, unexpired (at now) reset
	// link with this hash, sets the password hash, deletes every session and every
	// other reset link of the user, and with revokeCredentials every personal access
	// token and SSH key of the user. It returns the user, or ErrNotFound when the link
	// is unknown, used or expired.
	ResetPassword(ctx context.Context, hash []byte, passwordHash string, now time.Time, revokeCredentials bool) (UserID, error)

	// AddEvent appends to the security log.
	AddEvent(ctx context.Context, e *Event) error
	// Events returns the user's events newest first (user 0: every event), at most limit.
	Events(ctx context.Context, user UserID, limit int) ([]Event, error)
	// PurgeEvents deletes security-log rows older than before, at most batch rows per
	// statement so that a first purge of a large log never holds the database in one
	// long write, and returns how many went.
	PurgeEvents(ctx context.Context, before time.Time, batch int) (int64, error)

	// AddOutbox stores a mail that was not sent through SMTP.
	AddOutbox(ctx context.Context, m *OutboxMessage) error
	// Outbox returns the stored mail, oldest first.
	Outbox(ctx context.Context) ([]OutboxMessage, error)

	// CreateToken inserts a personal access token and sets t.ID.
	CreateToken(ctx context.Context, t *AccessToken) error
	// TokenByHash returns the token (expired or not) or ErrNotFound.
	TokenByHash(ctx context.Context, hash []byte) (*AccessToken, error)
	// ListTokens returns the user's tokens, newest first.
	ListTokens(ctx context.Context, user UserID) ([]AccessToken, error)
	// DeleteToken deletes the user's token; ErrNotFound when it is not theirs.
	DeleteToken(ctx context.Context, user UserID, id TokenID) error
	// TouchToken sets last_used_at.
	TouchToken(ctx context.Context, id TokenID, at time.Time) error

	// Purge deletes what can never be used again and returns how many rows went:
	// sessions past their absolute expiry or idle since IdleBefore, pending logins,
	// pending TOTP setups, WebAuthn ceremonies, reset and address links past expiry (and
	// used ones), username reservations that ended, and the
	// attempt counters of AttemptScopes not updated since StaleAttemptsBefore whose
	// lock has ended. Second-factor counters are never listed: only a success resets them.
	Purge(ctx context.Context, p PurgeBefore) (int64, error)

	// CreateSSHKey inserts k and sets k.ID. A fingerprint is unique per account:
	// ConflictError{"ssh_key"}.
	CreateSSHKey(ctx context.Context, k *SSHKey) error
	// ListSSHKeys returns the user's keys, newest first.
	ListSSHKeys(ctx context.Context, user UserID) ([]SSHKey, error)
	// DeleteSSHKey deletes the user's key; ErrNotFound when it is not theirs.
	DeleteSSHKey(ctx context.Context, user UserID, id SSHKeyID) error
	// TouchSSHKey sets last_used_at.
	TouchSSHKey(ctx context.Context, id SSHKeyID, at time.Time) error

	// OpenRecoveryRequest inserts r unless a limit is reached, in one transaction
	// serialised against every other OpenRecoveryRequest (on every replica): it counts
	// the requests created at or after lim.Since with r's Subject and with r's IP, and
	// when either count has reached its limit inserts nothing and returns false and the
	// creation time of the oldest request counted against that limit.
	OpenRecoveryRequest(ctx context.Context, r *RecoveryRequest, lim RecoveryLimit) (bool, time.Time, error)
	// RecoveryRequest returns the request (decoys included) or ErrNotFound.
	RecoveryRequest(ctx context.Context, id RecoveryRequestID) (*RecoveryRequest, error)
	// ListRecoveryRequests returns the requests of real accounts (never decoys) with
	// this stored status ("": any), newest first, at most limit.
	ListRecoveryRequests(ctx context.Context, status string, limit int) ([]RecoveryRequest, error)
	// VerifyRecoveryRequest marks the request verified with one conditional update —
	// status pending, unexpired at now — and reports whether it won: of any number of
	// racing verifications, exactly one does. (Its attempts are counted by the attempt
	// limiter, under its own key.)
	VerifyRecoveryRequest(ctx context.Context, id RecoveryRequestID, ev RecoveryEvidence, now time.Time) (bool, error)
	// SetRecoveryStatus moves the request from one of from to status to, recording at
	// as DecidedAt and reason, and reports whether it did.
	SetRecoveryStatus(ctx context.Context, id RecoveryRequestID, from []string, to string, at time.Time, reason string) (bool, error)
	// CancelRecoveryRequest cancels the pending or verified request whose cancel
	// token hashes to hash, and returns it; ErrNotFound when there is none.
	CancelRecoveryRequest(ctx context.Context, hash []byte, now time.Time) (*RecoveryRequest, error)
	// ApproveRecoveryRequest, in one transaction: moves the verified request to
	// approved — only while its evidence holds: the token that verified it still
	// exists, is the account's and is unexpired at now, or the SSH key still exists and
	// is the account's (requests verified without recorded evidence ids are not
	// re-checked) — (ErrNotFound, changing nothing, when it is not verified or its
	// evidence is gone), closes the
	// account's other pending and verified requests, deletes the TOTP credential, the
	// pending setup and the recovery codes, every session and pending login, and
	// stores reset (its UserID set to the request's account). The password stays.
	ApproveRecoveryRequest(ctx context.Context, id RecoveryRequestID, reason string, now time.Time, reset *PasswordReset) (UserID, error)
	// CancelRecoveryRequests moves the user's requests that match m (see
	// RecoveryMatch) to cancelled, recording now as DecidedAt and reason, with one
	// conditional update, and returns their ids.
	CancelRecoveryRequests(ctx context.Context, user UserID, m RecoveryMatch, now time.Time, reason string) ([]RecoveryRequestID, error)
	// MarkRecoveryReminder sets reminders = n where the request is verified and fewer
	// than n reminders were recorded, and reports whether it did: each reminder is
	// sent once, whichever replica gets there first.
	MarkRecoveryReminder(ctx context.Context, id RecoveryRequestID, n int) (bool, error)

	WebAuthnStore

	// FinishSignIn applies a successful sign-in step in one transaction, in this
	// order: consume the pending login (ErrPendingGone if it is gone), accept the TOTP
	// step or spend the recovery code (ErrFactorUsed if the step is not later than
	// last_step or the code is used or unknown), insert the session
	// (ErrCredentialsChanged if the user's cred_epoch moved on), apply the counter
	// steps (as UpdateAttempts would), append the event. On any error nothing changes; on success f.Session.ID
	// is set.
	FinishSignIn(ctx context.Context, f *SignInFinish) error

	// CreateEmailLink stores l and, in the same transaction, deletes the user's other
	// unused links of the same purpose: only the newest link of a kind works.
	CreateEmailLink(ctx context.Context, l *EmailLink) error
	// ConfirmEmail follows an emailed address link, in one transaction: it consumes the
	// unused link with this hash that is unexpired at now, and sets the account's email
	// to the link's address, verified. A "verify" link counts only while its address is
	// still the account's and not yet verified. No address is taken from another
	// account that verified it. Every other account's unverified copy of the address is
	// dropped (email set empty). When the address changes ("change", "undo"), the
	// user's reset links and other address links go in the same transaction; "undo"
	// also ends every session (see ChangePassword); and after a "change" away from a
	// verified address, undo (its UserID, Email and Purpose set here) is stored. It
	// returns ErrNotFound, changing nothing, when the link is unknown, used, expired or
	// no longer applies.
	ConfirmEmail(ctx context.Context, hash []byte, now time.Time, undo *EmailLink) (*EmailConfirmed, error)
	// PendingEmailChange returns the user's newest unused, unexpired "change" link
	// (without its hash) or ErrNotFound.
	PendingEmailChange(ctx context.Context, user UserID, now time.Time) (*EmailLink, error)

	// DeleteUser, in one transaction: reserves the user's username (its case fold)
	// until reserveUntil, deletes the user and with it everything that names them
	// (sessions, pending logins, tokens, SSH keys, MFA, reset and address links,
	// recovery requests, security-log rows), and appends tombstone, an event of no
	// account, to the security log. ErrNotFound when there is no such user. CreateUser
	// refuses a reserved username (ConflictError{"username"}) until its reservation
	// ends at the new user's CreatedAt.
	DeleteUser(ctx context.Context, id UserID, reserveUntil time.Time, tombstone *Event) error
}

// WebAuthnStore is the part of Store that keeps security keys, passkeys and their
// ceremonies (SPEC §8).
type WebAuthnStore interface {
	// WebAuthnHandle returns the user's WebAuthn user handle, storing fresh as it first
	// if the user has none (racing callers all get the one stored).
	WebAuthnHandle(ctx context.Context, user UserID, fresh []byte) ([]byte, error)
	// UserByWebAuthnHandle returns the account whose handle this is, or ErrNotFound.
	UserByWebAuthnHandle(ctx context.Context, handle []byte) (UserID, error)
	// CreateCeremony stores a begun ceremony (replacing one with the same id hash).
	CreateCeremony(ctx context.Context, c *Ceremony) error
	// Ceremony returns the ceremony (used or expired alike) or ErrNotFound.
	Ceremony(ctx context.Context, idHash []byte) (*Ceremony, error)
	// UseCeremony sets used_at = at where the ceremony is unused and unexpired at at
	// (… WHERE used_at IS NULL), and reports whether exactly one row changed: a
	// ceremony is used up by its first success, whatever races it.
	UseCeremony(ctx context.Context, idHash []byte, at time.Time) (bool, error)
	// AddWebAuthnKey, in one transaction: fails with ErrLimitReached when the user
	// already has max keys, with ConflictError{"credential_id"} when the credential ID
	// is registered on any account; inserts k (setting k.ID); and when the user had no
	// second factor before (MFA turns on), replaces the recovery codes with codeHashes
	// and deletes every session except keep. It reports whether MFA turned on.
	AddWebAuthnKey(ctx context.Context, k *WebAuthnKey, codeHashes [][]byte, keep SessionID, max int) (bool, error)
	// WebAuthnKeys returns the user's keys, oldest first.
	WebAuthnKeys(ctx context.Context, user UserID) ([]WebAuthnKey, error)
	// WebAuthnKeyByCredentialID returns the key with this credential ID, or ErrNotFound.
	WebAuthnKeyByCredentialID(ctx context.Context, credentialID []byte) (*WebAuthnKey, error)
	// RenameWebAuthnKey renames the user's key and returns it; ErrNotFound when it is
	// not theirs.
	RenameWebAuthnKey(ctx context.Context, user UserID, id WebAuthnKeyID, name string) (*WebAuthnKey, error)
	// DeleteWebAuthnKey, in one transaction: deletes the user's key (ErrNotFound when it
	// is not theirs) and, when it was the user's last second factor (MFA turns off),
	// deletes the recovery codes and every session except keep. It reports whether MFA
	// turned off.
	DeleteWebAuthnKey(ctx context.Context, user UserID, id WebAuthnKeyID, keep SessionID) (bool, error)
	// UseWebAuthnKey sets sign_count = next and last_used_at = at where the key's
	// sign_count still equals prev, in one conditional write, and reports whether it did.
	UseWebAuthnKey(ctx context.Context, id WebAuthnKeyID, prev, next int64, at time.Time) (bool, error)
}

// PurgeBefore says what Purge may delete.
type PurgeBefore struct {
	Now                 time.Time
	IdleBefore          time.Time
	StaleAttemptsBefore time.Time
	AttemptScopes       []string
}
