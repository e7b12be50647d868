package auth

import (
	"context"
	"errors"
	"fmt"
)

// ErrAccountDisabled answers a right password for an account an operator disabled.
// It is given only after the password was checked, so it tells nothing to someone
// who does not know the password.
var ErrAccountDisabled = E(KindForbidden, "account_disabled", "This account is disabled. Contact support.")

// refuseDisabled ends a sign-in whose password was right but whose account is
// disabled: the right password was no failure, so the counts it took go back.
func (s *Service) refuseDisabled(ctx context.Context, c Client, u *User, sl *slot) error {
	if err := sl.succeed(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	s.event(ctx, u.ID, c, "login", "disabled", "")
	s.observe("login", "disabled")
	return ErrAccountDisabled
}

// notifyOperator tells operator-email that a recovery request was verified, so that
// someone looks at it.
func (s *Service) notifyOperator(u *User, r *RecoveryRequest, evidence string) {
	if s.cfg.OperatorEmail == "" {
		return
	}
	s.notifyAddress(s.cfg.OperatorEmail, "A recovery request was verified",
		"The recovery request %s for the account %s (opened from %s) was verified with %s.\n\nReview it with `latchkey admin recovery list` or at %s/admin/recovery, and approve or deny it with a reason.",
		r.ID, u.Username, r.IP, evidence, s.cfg.PublicURL)
}

// operatorUser reads the account an operator names, after checking the reason.
func (s *Service) operatorUser(ctx context.Context, login, reason string) (*User, string, error) {
	reason, err := requireReason(reason)
	if err != nil {
		return nil, "", err
	}
	u, err := s.UserByLogin(ctx, login)
	if err != nil {
		return nil, "", err
	}
	return u, reason, nil
}

// AdminSetDisabled disables an account (it can no longer sign in, its personal access
// tokens stop working, and every session ends) or enables it again, on an operator's
// word: the reason goes to the security log and the mail to the user.
func (s *Service) AdminSetDisabled(ctx context.Context, c Client, login, reason string, disabled bool) (*User, error) {
	u, reason, err := s.operatorUser(ctx, login, reason)
	if err != nil {
		return nil, err
	}
	if err := s.store.SetDisabled(ctx, u.ID, disabled); errors.Is(err, ErrNotFound) {
		return nil, ErrUnknownID
	} else if err != nil {
		return nil, fmt.Errorf("setting disabled: %w", err)
	}
	u.Disabled = disabled
	if disabled {
		s.event(ctx, u.ID, c, "account_disabled", "success", "reason: "+reason)
		s.notify(u, "Your account was disabled",
			"A support operator disabled the account %s at %s and signed out every session. It cannot sign in until it is enabled again.\n\nReason given: %s",
			u.Username, s.cfg.SiteName, reason)
	} else {
		s.event(ctx, u.ID, c, "account_enabled", "success", "reason: "+reason)
		s.notify(u, "Your account was enabled again",
			"A support operator enabled the account %s at %s again: you can sign in.\n\nReason given: %s",
			u.Username, s.cfg.SiteName, reason)
	}
	return u, nil
}

// AdminDelete deletes an account on an operator's word, as DeleteAccount does for its
// owner; the tombstone and the mail carry the reason.
func (s *Service) AdminDelete(ctx context.Context, c Client, login, reason string) (*User, error) {
	u, reason, err := s.operatorUser(ctx, login, reason)
	if err != nil {
		return nil, err
	}
	if err := s.deleteUser(ctx, c, u, "by an operator", reason); err != nil {
		return nil, err
	}
	return u, nil
}

// AdminSetOperator grants or revokes the operator role, with a reason that goes to
// the security log and the mail to the user.
func (s *Service) AdminSetOperator(ctx context.Context, c Client, login, reason string, admin bool) (*User, error) {
	u, reason, err := s.operatorUser(ctx, login, reason)
	if err != nil {
		return nil, err
	}
	if admin {
		if err := s.requireMFAForAdmin(ctx, u); err != nil {
			return nil, err
		}
	}
	if err := s.store.SetAdmin(ctx, u.ID, admin); err != nil {
		return nil, fmt.Errorf("setting the operator role: %w", err)
	}
	u.IsAdmin = admin
	if admin {
		s.event(ctx, u.ID, c, "admin_granted", "success", "reason: "+reason)
		s.notify(u, "You are now an operator",
			"The account %s at %s was given the operator role: it can review recovery requests. If you did not expect this, contact support.\n\nReason given: %s",
			u.Username, s.cfg.SiteName, reason)
	} else {
		s.event(ctx, u.ID, c, "admin_revoked", "success", "reason: "+reason)
		s.notify(u, "You are no longer an operator",
			"The operator role was taken from the account %s at %s.\n\nReason given: %s",
			u.Username, s.cfg.SiteName, reason)
	}
	return u, nil
}
