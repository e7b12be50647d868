package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/recovery"
)

// UsernameReservation is how long a deleted account's username stays taken, so that
// nobody can sign up as the former owner and receive what was meant for them.
const UsernameReservation = 30 * 24 * time.Hour

// DeleteAccount deletes the caller's account after a recent sign-in, confirmed by
// typing the username: sessions, tokens, keys, MFA, links and pending recovery
// requests go with it; the security log keeps a tombstone; the username stays
// reserved for 30 days.
func (s *Service) DeleteAccount(ctx context.Context, c Client, p *Principal, username string) error {
	if err := s.requireRecent(p); err != nil {
		return err
	}
	if !strings.EqualFold(strings.TrimSpace(username), p.User.Username) {
		return InvalidInput(map[string]string{"username": "does not match your username; type it to confirm"})
	}
	u, err := s.store.UserByID(ctx, p.User.ID)
	if err != nil {
		return fmt.Errorf("reading user: %w", err)
	}
	return s.deleteUser(ctx, c, u, "by its owner", "")
}

// deleteUser deletes u, leaving a tombstone that names who did it and why, and tells
// the owner's verified address.
func (s *Service) deleteUser(ctx context.Context, c Client, u *User, by, reason string) error {
	detail := fmt.Sprintf("account %d (%s) deleted %s", int64(u.ID), u.Username, by)
	if reason != "" {
		detail += "; reason: " + reason
	}
	now := s.now()
	tomb := s.newEvent(0, c, "account_deleted", "success", detail)
	if err := s.store.DeleteUser(ctx, u.ID, now.Add(UsernameReservation), tomb); errors.Is(err, ErrNotFound) {
		return ErrUnknownID
	} else if err != nil {
		return fmt.Errorf("deleting account: %w", err)
	}
	s.logEvent(tomb)
	why := ""
	if reason != "" {
		why = "\n\nReason given: " + reason
	}
	s.notify(u, "Your account was deleted",
		"The account %s at %s was deleted %s, with its sessions, tokens, SSH keys and multiple-factor authentication.%s\n\nThe username stays reserved for 30 days. If you did not expect this, contact support.",
		u.Username, s.cfg.SiteName, by, why)
	return nil
}

// AccountExport is everything stored about an account, never a secret: no password
// hash, no token or its hash, no TOTP secret, no recovery code.
type AccountExport struct {
	User          User
	MFAEnabled    bool
	TOTPAddedAt   time.Time // zero when MFA is off
	RecoveryCodes RecoveryCodeCounts
	PendingEmail  string
	Sessions      []Session
	Tokens        []AccessToken
	SSHKeys       []SSHKey
	Events        []Event
}

// exportEvents bounds the security log in an export.
const exportEvents = 100000

// Export gathers everything stored about the caller. A personal access token cannot
// ask: a leaked token must not be able to carry the whole account away.
func (s *Service) Export(ctx context.Context, c Client, p *Principal) (*AccountExport, error) {
	if err := requireSession(p); err != nil {
		return nil, err
	}
	id := p.User.ID
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading user: %w", err)
	}
	x := &AccountExport{User: *u}
	x.User.PasswordHash = ""
	st, err := s.store.MFAState(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reading MFA state: %w", err)
	}
	x.MFAEnabled, x.RecoveryCodes = st.Enabled, st.Codes
	if cred, err := s.store.TOTP(ctx, id); err == nil {
		x.TOTPAddedAt = cred.CreatedAt
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("reading TOTP: %w", err)
	}
	if x.PendingEmail, err = s.PendingEmailChange(ctx, p); err != nil {
		return nil, err
	}
	if x.Sessions, err = s.store.ListSessions(ctx, id); err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	if x.Tokens, err = s.store.ListTokens(ctx, id); err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	if x.SSHKeys, err = s.store.ListSSHKeys(ctx, id); err != nil {
		return nil, fmt.Errorf("listing SSH keys: %w", err)
	}
	if x.Events, err = s.store.Events(ctx, id, exportEvents); err != nil {
		return nil, fmt.Errorf("reading security log: %w", err)
	}
	s.event(ctx, id, c, "account_exported", "success", "")
	return x, nil
}

// ExportFileName names a downloaded account export after the site:
// "Hugging Face" → huggingface-account.json.
func (s *Service) ExportFileName() string { return recovery.Slug(s.cfg.SiteName) + "-account.json" }

// Now is the Service's clock, at the precision the stores keep.
func (s *Service) Now() time.Time { return s.now() }
