package auth

import (
	"errors"
	"fmt"
	"time"
)

// Kind is the small closed set of error kinds every surface knows how to show.
type Kind int

// The error kinds. Each surface maps a Kind to a status code in one place.
const (
	KindInternal Kind = iota
	KindNotFound
	KindConflict
	KindInvalidInput
	KindInvalidCredentials
	KindRateLimited
	KindReauthRequired
	KindForbidden
	KindUnauthenticated
	KindOverloaded
	KindTooLarge
)

// Error is a domain error: a kind, a stable machine code, a message safe to show to
// the client, and optionally the per-field problems of invalid input and a retry delay.
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	Fields     map[string]string
	RetryAfter time.Duration
	Err        error // the underlying cause, for the log only
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// E builds a domain error.
func E(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// AsError returns the domain error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// ErrNotFound is returned by stores when a row does not exist. It is not shown to
// clients: the Service answers with a domain Error such as ErrUnknownID.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by stores when a unique constraint is violated. Stores wrap
// it in a *ConflictError naming the field when they can tell which one.
var ErrConflict = errors.New("conflict")

// Errors of Store.FinishSignIn, CreateSession and CreatePendingLogin: each means the
// transaction changed nothing.
var (
	// ErrPendingGone: the pending login was consumed meanwhile (or never existed).
	ErrPendingGone = errors.New("pending login gone")
	// ErrFactorUsed: the TOTP step was not later than the last one accepted, or the
	// recovery code was used or unknown.
	ErrFactorUsed = errors.New("second factor already used")
	// ErrCredentialsChanged: the user's credentials changed since the password check.
	ErrCredentialsChanged = errors.New("credentials changed")
)

// ConflictError names the unique field that was violated ("username", "email", ...).
type ConflictError struct{ Field string }

func (e *ConflictError) Error() string { return "conflict on " + e.Field }

// Unwrap makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Errors returned by Service methods. They are values so that tests can compare codes;
// handlers use AsError to read the kind and code.
var (
	ErrInvalidCredentials = E(KindInvalidCredentials, "invalid_credentials", "The login or password is incorrect.")
	ErrUnauthenticated    = E(KindUnauthenticated, "unauthenticated", "Sign in first.")
	ErrInvalidCode        = E(KindInvalidCredentials, "invalid_code", "That code is not valid.")
	ErrInvalidMFAToken    = E(KindInvalidCredentials, "invalid_mfa_token", "The sign-in attempt has expired or is not valid. Sign in again.")
	ErrReauthRequired     = E(KindReauthRequired, "reauth_required", "Confirm your password (and code) to continue.")
	ErrForbiddenForToken  = E(KindForbidden, "forbidden_for_token", "A personal access token cannot do this; sign in with a browser session.")
	ErrForbidden          = E(KindForbidden, "forbidden", "You are not allowed to do this.")
	ErrMFAAlreadyEnabled  = E(KindConflict, "mfa_already_enabled", "Multiple-factor authentication is already on.")
	ErrMFANotEnabled      = E(KindConflict, "mfa_not_enabled", "Multiple-factor authentication is not on.")
	ErrNoPendingSetup     = E(KindNotFound, "no_pending_setup", "Start the setup first; it expires after 15 minutes.")
	ErrInvalidToken       = E(KindInvalidInput, "invalid_token", "The link is not valid or has expired.")
	// ErrUnknownID answers a request naming an ID that does not exist or is not the
	// caller's: the same answer for both, so that others' IDs cannot be probed.
	ErrUnknownID = E(KindNotFound, "not_found", "Not found.")
)

// RateLimited returns the error for a locked counter, with the time left.
func RateLimited(retryAfter time.Duration) *Error {
	if retryAfter < time.Second {
		retryAfter = time.Second
	}
	return &Error{Kind: KindRateLimited, Code: "too_many_attempts",
		Message: "Too many attempts. Try again later.", RetryAfter: retryAfter}
}

// Overloaded returns the error for a full password-hashing queue.
func Overloaded(retryAfter time.Duration) *Error {
	return &Error{Kind: KindOverloaded, Code: "overloaded",
		Message: "The server is busy. Try again shortly.", RetryAfter: retryAfter}
}

// InvalidInput returns a validation error with per-field problems.
func InvalidInput(fields map[string]string) *Error {
	msg := "The request is not valid."
	for _, k := range sortedKeys(fields) {
		msg = k + ": " + fields[k]
		break
	}
	return &Error{Kind: KindInvalidInput, Code: "invalid_input", Message: msg, Fields: fields}
}

// Errors of SSH keys and recovery requests.
var (
	ErrDuplicateSSHKey = &Error{Kind: KindConflict, Code: "duplicate_ssh_key",
		Message: "That SSH key is already registered.", Fields: map[string]string{"public_key": "is already registered"}}
	// ErrVerificationFailed is the one answer to every failed recovery verification:
	// wrong key, wrong namespace, wrong bytes, unknown request, expired, used. The
	// precise reason goes to the log and the security log only.
	ErrVerificationFailed = E(KindInvalidInput, "verification_failed", "The recovery request could not be verified.")
	ErrNotVerified        = E(KindConflict, "not_verified", "Only a verified recovery request can be approved.")
	ErrRecoveryNotFound   = E(KindNotFound, "not_found", "No such recovery request.")
)

// RecoveryClosedError is the answer once five failed verifications have closed a request:
// nothing reopens it, so the client is told to open a new one after the wait.
func RecoveryClosedError(retryAfter time.Duration) *Error {
	e := RateLimited(retryAfter)
	e.Message = "Too many failed verifications; this recovery request is closed. Open a new one later."
	return e
}
