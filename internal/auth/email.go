package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Purposes of an EmailLink.
const (
	EmailLinkVerify = "verify" // confirms the account's current address
	EmailLinkChange = "change" // a new address, which replaces the current one when followed
	EmailLinkUndo   = "undo"   // puts back the address a change replaced
)

// Lifetimes of the address links: a verification link lives a day, an undo link a
// week, so an owner away from their mail for a few days can still take their address
// back.
const (
	EmailLinkTTL = 24 * time.Hour
	EmailUndoTTL = 7 * 24 * time.Hour
)

// EmailLink is an emailed single-use link about an address; only its SHA-256 is stored.
type EmailLink struct {
	TokenHash []byte
	UserID    UserID
	Purpose   string
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// EmailConfirmed is what following an address link did.
type EmailConfirmed struct {
	Link EmailLink
	// Previous is the address the account had before (for "change" and "undo").
	Previous string
	// Dropped are the accounts whose unverified copy of the address was dropped.
	Dropped []UserID
	// Undo is set when an undo link was stored.
	Undo bool
}

// verifyMailLimit bounds how many verification mails one account can ask for.
func verifyMailLimit() LimitPolicy {
	return LimitPolicy{MaxFailures: 5, BaseLock: time.Hour, MaxLock: time.Hour, ResetAfter: time.Hour}
}

// sendVerification mails a fresh link for the account's current, unverified address
// (purpose verify) or for a new address (purpose change).
func (s *Service) sendVerification(ctx context.Context, u *User, purpose, email string) error {
	tok, hash, err := s.newToken(32)
	if err != nil {
		return err
	}
	now := s.now()
	if err := s.store.CreateEmailLink(ctx, &EmailLink{TokenHash: hash, UserID: u.ID, Purpose: purpose, Email: email,
		CreatedAt: now, ExpiresAt: now.Add(EmailLinkTTL)}); err != nil {
		return fmt.Errorf("storing verification link: %w", err)
	}
	link := s.cfg.PublicURL + "/verify-email?token=" + tok
	what := "Confirm that this address belongs to your account " + u.Username
	if purpose == EmailLinkChange {
		what = "Confirm this address to make it the new address of your account " + u.Username + "; the change takes effect when you do"
	}
	s.notifyAddress(email, "Verify your email address",
		"%s at %s:\n%s\n\nThe link works once, for 24 hours. Until the address is verified, it receives no password-reset or recovery mail and cannot be used to sign in. If you did not ask for this, ignore this mail.",
		what, s.cfg.SiteName, link)
	return nil
}

// ResendVerification mails a new verification link for the caller's unverified
// address; earlier links stop working. At most five an hour per account.
func (s *Service) ResendVerification(ctx context.Context, c Client, p *Principal) error {
	u, err := s.store.UserByID(ctx, p.User.ID)
	if err != nil {
		return fmt.Errorf("reading user: %w", err)
	}
	if u.Email == "" {
		return E(KindConflict, "no_email", "Your account has no email address; add one first.")
	}
	if u.EmailVerified {
		return E(KindConflict, "email_already_verified", "Your email address is already verified.")
	}
	if err := s.countUse(ctx, AttemptKey{Scope: scopeVerifyMail, Key: fmt.Sprint(int64(u.ID))}, verifyMailLimit()); err != nil {
		return err
	}
	if err := s.sendVerification(ctx, u, EmailLinkVerify, u.Email); err != nil {
		return err
	}
	s.event(ctx, u.ID, c, "email_verification_sent", "success", "")
	return nil
}

// VerifyEmail follows an emailed verification link (or an undo link): the address
// becomes the account's, verified; every other account's unverified copy of it is
// dropped, and their owners are asked for a new address at their next sign-in.
func (s *Service) VerifyEmail(ctx context.Context, c Client, token string) (*User, error) {
	if token == "" || len(token) > 200 {
		return nil, ErrInvalidToken
	}
	undoTok, undoHash, err := s.newToken(32)
	if err != nil {
		return nil, err
	}
	now := s.now()
	undo := &EmailLink{TokenHash: undoHash, CreatedAt: now, ExpiresAt: now.Add(EmailUndoTTL)}
	res, err := s.store.ConfirmEmail(ctx, hashToken(token), now, undo)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) {
		s.event(ctx, 0, c, "email_verify", "invalid_token", "")
		return nil, ErrInvalidToken
	}
	if err != nil {
		return nil, fmt.Errorf("verifying email: %w", err)
	}
	for _, id := range res.Dropped {
		s.event(ctx, id, c, "email_dropped", "success", "another account verified the address")
	}
	u, err := s.store.UserByID(ctx, res.Link.UserID)
	if err != nil {
		return nil, fmt.Errorf("reading user: %w", err)
	}
	switch res.Link.Purpose {
	case EmailLinkVerify:
		s.event(ctx, u.ID, c, "email_verified", "success", "")
	case EmailLinkChange:
		s.event(ctx, u.ID, c, "email_changed", "success", "")
		if res.Undo {
			s.notifyAddress(res.Previous, "Your email address was changed",
				"The email address of your account %s at %s was changed from this address to %s.\n\nIf you did not do this, put this address back within 7 days (this also signs out every session):\n%s\n\nThen reset your password.",
				u.Username, s.cfg.SiteName, u.Email, s.cfg.PublicURL+"/settings/account/undo-email?token="+undoTok)
		}
	case EmailLinkUndo:
		s.event(ctx, u.ID, c, "email_change_undone", "success", "")
		s.notify(u, "Your email address was put back",
			"The email address of your account %s is this address again, and every session was signed out. If the change was not yours, reset your password now at %s/password/forgot.",
			u.Username, s.cfg.PublicURL)
	}
	return u, nil
}

// ChangeEmail starts a change of address: the new address gets a verification link,
// and the change takes effect when it is followed. It needs a recent sign-in.
func (s *Service) ChangeEmail(ctx context.Context, c Client, p *Principal, email string) error {
	if err := s.requireRecent(p); err != nil {
		return err
	}
	email = strings.TrimSpace(email)
	if pr := ValidateEmail(email); pr != "" {
		return InvalidInput(map[string]string{"email": pr})
	}
	u, err := s.store.UserByID(ctx, p.User.ID)
	if err != nil {
		return fmt.Errorf("reading user: %w", err)
	}
	if u.EmailVerified && strings.EqualFold(u.Email, email) {
		return InvalidInput(map[string]string{"email": "is already your address"})
	}
	if other, err := s.store.UserByEmail(ctx, email); err == nil && other.ID != u.ID {
		return &Error{Kind: KindConflict, Code: "email_taken", Message: "That email is already registered.", Fields: map[string]string{"email": "is already registered"}}
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("looking up email: %w", err)
	}
	if err := s.countUse(ctx, AttemptKey{Scope: scopeVerifyMail, Key: fmt.Sprint(int64(u.ID))}, verifyMailLimit()); err != nil {
		return err
	}
	if err := s.sendVerification(ctx, u, EmailLinkChange, email); err != nil {
		return err
	}
	s.event(ctx, u.ID, c, "email_change_requested", "success", "")
	return nil
}

// PendingEmailChange returns the address the caller asked to change to and has not
// confirmed yet, or "".
func (s *Service) PendingEmailChange(ctx context.Context, p *Principal) (string, error) {
	l, err := s.store.PendingEmailChange(ctx, p.User.ID, s.now())
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading pending change: %w", err)
	}
	return l.Email, nil
}

// verifyNewAddress mails the verification link of a new account. The account exists
// either way: a failure is logged, and the owner can ask for another link.
func (s *Service) verifyNewAddress(ctx context.Context, u *User) {
	if u.EmailVerified {
		return
	}
	if err := s.sendVerification(ctx, u, EmailLinkVerify, u.Email); err != nil {
		s.log.Error("sign-up: sending the verification link", "user_id", int64(u.ID), "err", err)
	}
}

// ResetLinkCredentials lists what a reset may revoke: the personal access tokens and
// SSH keys of the account whose live reset link this is. Whoever holds the link may
// see their names, as the account's owner would after signing in.
func (s *Service) ResetLinkCredentials(ctx context.Context, token string) ([]AccessToken, []SSHKey, error) {
	if token == "" || len(token) > 200 {
		return nil, nil, ErrInvalidToken
	}
	r, err := s.store.PasswordReset(ctx, hashToken(token), s.now())
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrInvalidToken
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading reset link: %w", err)
	}
	toks, err := s.store.ListTokens(ctx, r.UserID)
	if err != nil {
		return nil, nil, fmt.Errorf("listing tokens: %w", err)
	}
	keys, err := s.store.ListSSHKeys(ctx, r.UserID)
	if err != nil {
		return nil, nil, fmt.Errorf("listing SSH keys: %w", err)
	}
	return toks, keys, nil
}
