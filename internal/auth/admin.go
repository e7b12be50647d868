package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// CreateUser is the operator's way to make an account (optionally an operator).
func (s *Service) CreateUser(ctx context.Context, c Client, username, email, pw string, admin bool) (*User, error) {
	return s.createUser(ctx, c, username, email, pw, admin)
}

// Users lists every account.
func (s *Service) Users(ctx context.Context) ([]User, error) {
	us, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	return us, nil
}

// UserByLogin finds an account by username or email.
func (s *Service) UserByLogin(ctx context.Context, login string) (*User, error) {
	u, err := s.store.UserByLogin(ctx, strings.TrimSpace(login))
	if errors.Is(err, ErrNotFound) {
		return nil, E(KindNotFound, "not_found", fmt.Sprintf("no user %q", login))
	}
	if err != nil {
		return nil, fmt.Errorf("looking up user: %w", err)
	}
	return u, nil
}

// GrantAdmin gives an account the operator role.
func (s *Service) GrantAdmin(ctx context.Context, c Client, login string) (*User, error) {
	u, err := s.UserByLogin(ctx, login)
	if err != nil {
		return nil, err
	}
	if err := s.requireMFAForAdmin(ctx, u); err != nil {
		return nil, err
	}
	if err := s.store.SetAdmin(ctx, u.ID, true); err != nil {
		return nil, fmt.Errorf("granting admin: %w", err)
	}
	u.IsAdmin = true
	s.event(ctx, u.ID, c, "admin_granted", "success", "")
	return u, nil
}

func requireReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len(reason) > 500 {
		return "", InvalidInput(map[string]string{"reason": "every operator action needs a reason (1 to 500 characters)"})
	}
	return reason, nil
}

// AdminResetMFA removes a user's MFA on an operator's word: every registration and every
// session go, the reason lands in the security log and in the mail to the user.
func (s *Service) AdminResetMFA(ctx context.Context, c Client, login, reason string) (*User, bool, error) {
	reason, err := requireReason(reason)
	if err != nil {
		return nil, false, err
	}
	u, err := s.UserByLogin(ctx, login)
	if err != nil {
		return nil, false, err
	}
	existed, err := s.store.DisableMFA(ctx, u.ID, 0)
	if err != nil {
		return nil, false, fmt.Errorf("removing MFA: %w", err)
	}
	s.event(ctx, u.ID, c, "mfa_reset_by_operator", "success", "reason: "+reason)
	s.notify(u, "An operator removed multiple-factor authentication",
		"A support operator removed multiple-factor authentication from %s and signed out every session.\n\nReason given: %s\n\nSign in and turn it back on at %s/settings/authentication. If you did not ask for this, contact support at once.",
		u.Username, reason, s.cfg.PublicURL)
	return u, existed, nil
}
