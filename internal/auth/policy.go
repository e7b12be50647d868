package auth

import (
	"context"
	"fmt"
	"time"
)

// ErrMFASetupRequired is the answer to everything but MFA setup for an account past
// its require-mfa deadline.
var ErrMFASetupRequired = E(KindForbidden, "mfa_setup_required",
	"This site requires multiple-factor authentication. Set it up first at /settings/authentication.")

// ErrMFARequiredByPolicy refuses to remove the last second factor (or all of MFA) of an
// account the require-mfa policy covers.
var ErrMFARequiredByPolicy = E(KindConflict, "mfa_required_by_policy",
	"This site requires multiple-factor authentication for your account: add another second factor before removing this one.")

// MFAPolicy is what the require-mfa policy says about one account right now.
type MFAPolicy struct {
	Required bool      // the policy covers the account
	Deadline time.Time // when it must have a second factor (zero: none yet, or it has one)
	Blocked  bool      // past the deadline without a second factor: only setup is allowed
}

// policyCovers reports whether require-mfa covers u.
func (s *Service) policyCovers(u *User) bool {
	switch s.cfg.RequireMFA {
	case "all":
		return true
	case "admins":
		return u.IsAdmin
	}
	return false
}

// policyFor judges the account by its stored state.
func (s *Service) policyFor(u *User, m MFAState) MFAPolicy {
	if !s.policyCovers(u) {
		return MFAPolicy{}
	}
	pol := MFAPolicy{Required: true}
	if !m.Enabled && !m.Deadline.IsZero() {
		pol.Deadline = m.Deadline
		pol.Blocked = !s.now().Before(m.Deadline)
	}
	return pol
}

// MFAPolicy is what require-mfa says about the caller.
func (p *Principal) MFAPolicy() MFAPolicy { return p.policy }

// notePolicy starts the account's grace period at a sign-in without MFA: its deadline
// becomes now + grace (now for operators), unless an earlier one is stored, so a
// shorter grace applies at once. A failure to store it is logged: the sign-in stands,
// and the next one tries again.
func (s *Service) notePolicy(ctx context.Context, u *User) {
	if !s.policyCovers(u) {
		return
	}
	grace := s.cfg.RequireMFAGrace
	if u.IsAdmin {
		grace = 0
	}
	if _, err := s.store.SetMFADeadline(ctx, u.ID, s.now().Add(grace)); err != nil {
		s.log.Warn("storing the MFA deadline", "user_id", int64(u.ID), "err", err)
	}
}

// requireMFAForAdmin refuses to make an account without MFA an operator while the
// policy covers operators.
func (s *Service) requireMFAForAdmin(ctx context.Context, u *User) error {
	if s.cfg.RequireMFA != "admins" && s.cfg.RequireMFA != "all" {
		return nil
	}
	st, err := s.store.MFAState(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("reading MFA state: %w", err)
	}
	if !st.Enabled {
		return E(KindConflict, "mfa_required",
			fmt.Sprintf("%s has no multiple-factor authentication; require-mfa is %s, so operators must add it first", u.Username, s.cfg.RequireMFA))
	}
	return nil
}
