package auth

import (
	"context"
	"errors"
	"fmt"
	"github.com/latchkey/latchkey/internal/keys"
	"strings"
	"time"
	"unicode/utf8"
)

// TokenPrefix starts every personal access token, so that secret scanners and the
// bearer parser can tell one from a session token.
const TokenPrefix = "lk_"

// NewAccessToken is a token just created: the secret is shown once.
type NewAccessToken struct {
	AccessToken
	Secret keys.Secret
}

// CreateToken makes a personal access token (256 random bits) for the caller. It
// counts as a credential change: a session signed in within the re-authentication
// window is needed, never a token.
func (s *Service) CreateToken(ctx context.Context, c Client, p *Principal, name string, expiresInDays int) (*NewAccessToken, error) {
	if err := s.requireRecent(p); err != nil {
		return nil, err
	}
	name = strings.TrimSpace(name)
	fields := map[string]string{}
	if name == "" || utf8.RuneCountInString(name) > 100 {
		fields["name"] = "must be 1 to 100 characters"
	}
	if expiresInDays < 0 || expiresInDays > 365 {
		fields["expires_in_days"] = "must be between 1 and 365, or 0 for no expiry"
	}
	if len(fields) > 0 {
		return nil, InvalidInput(fields)
	}
	raw, _, err := s.newToken(32)
	if err != nil {
		return nil, err
	}
	secret := TokenPrefix + raw
	now := s.now()
	t := &AccessToken{UserID: p.User.ID, Name: name, TokenHash: hashToken(secret), CreatedAt: now}
	if expiresInDays > 0 {
		t.ExpiresAt = now.Add(time.Duration(expiresInDays) * 24 * time.Hour)
	}
	if err := s.store.CreateToken(ctx, t); err != nil {
		return nil, fmt.Errorf("creating token: %w", err)
	}
	s.event(ctx, p.User.ID, c, "token_created", "success", name)
	s.notify(p.User, "A personal access token was created",
		"A personal access token named %q was created for %s from %s. If this was not you, delete it at %s/settings/tokens and change your password.",
		name, p.User.Username, c.IP, s.cfg.PublicURL)
	return &NewAccessToken{AccessToken: *t, Secret: keys.Secret(secret)}, nil
}

// Tokens lists the caller's tokens (never their secrets).
func (s *Service) Tokens(ctx context.Context, p *Principal) ([]AccessToken, error) {
	list, err := s.store.ListTokens(ctx, p.User.ID)
	if err != nil {
		return nil, fmt.Errorf("listing tokens: %w", err)
	}
	return list, nil
}

// DeleteToken revokes one of the caller's tokens. A token cannot revoke tokens: that is
// a credential change.
func (s *Service) DeleteToken(ctx context.Context, c Client, p *Principal, id TokenID) error {
	if err := requireSession(p); err != nil {
		return err
	}
	if err := s.store.DeleteToken(ctx, p.User.ID, id); errors.Is(err, ErrNotFound) {
		return ErrUnknownID
	} else if err != nil {
		return fmt.Errorf("deleting token: %w", err)
	}
	s.event(ctx, p.User.ID, c, "token_deleted", "success", fmt.Sprintf("token %d", id))
	s.cancelRecovery(ctx, c, p.User, RecoveryMatch{TokenID: id}, "the personal access token that verified it was revoked")
	s.notify(p.User, "A personal access token was deleted",
		"A personal access token of %s was deleted from %s.", p.User.Username, c.IP)
	return nil
}

// checkToken returns the live token with this secret, or ErrUnauthenticated.
func (s *Service) checkToken(ctx context.Context, secret string, now time.Time) (*AccessToken, error) {
	t, err := s.store.TokenByHash(ctx, hashToken(secret))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("looking up token: %w", err)
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return nil, ErrUnauthenticated
	}
	return t, nil
}

func (s *Service) authenticateToken(ctx context.Context, secret string, now time.Time) (*Principal, error) {
	t, err := s.checkToken(ctx, secret, now)
	if err != nil {
		return nil, err
	}
	u, err := s.store.UserByID(ctx, t.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("looking up token user: %w", err)
	}
	if u.Disabled {
		return nil, ErrUnauthenticated
	}
	if now.Sub(t.LastUsedAt) >= touchEvery {
		if err := s.store.TouchToken(ctx, t.ID, now); err != nil {
			return nil, fmt.Errorf("touching token: %w", err)
		}
		t.LastUsedAt = now
	}
	p := &Principal{User: u, Token: t}
	if s.policyCovers(u) {
		// A token of an account past its MFA deadline gets the same 403 as its sessions.
		m, err := s.store.MFAState(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("reading MFA state: %w", err)
		}
		p.policy = s.policyFor(u, m)
	}
	return p, nil
}
