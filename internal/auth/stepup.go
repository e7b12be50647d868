package auth

import (
	"context"
	"fmt"
	"time"
)

// MFAFresh reports whether the caller's session passed MFA recently enough: a second
// factor was proved, and when maxAge > 0, no longer than maxAge ago. The forward-auth
// endpoints and the step-up page ask the same question through this one function, so
// they can never disagree and send a browser round in circles.
func (s *Service) MFAFresh(p *Principal, maxAge time.Duration) bool {
	if p == nil || p.Session == nil || !p.Session.HasMFA() {
		return false
	}
	return maxAge <= 0 || s.now().Sub(p.Session.MFAAt) <= maxAge
}

// StepUp proves a second factor in a signed-in session that has none yet (or an old
// one): a code from the app or a recovery code. It counts in the per-account
// second-factor counter exactly like the code step of re-authentication — counted
// first, refused during a lock, spent by its own conditional write so a code works
// once — and on success records the factor and its time on the session. No password
// is asked: the session already proved it, and the step-up adds only what is missing.
func (s *Service) StepUp(ctx context.Context, c Client, p *Principal, code, recoveryCode string) error {
	if err := requireSession(p); err != nil {
		return err
	}
	st, err := s.MFAStatusOf(ctx, p)
	if err != nil {
		return err
	}
	if !st.Enabled {
		return ErrMFANotEnabled
	}
	cred := func() (*TOTPCredential, error) { return s.totpCredential(ctx, p.User.ID) }
	f, counted, err := s.checkSecondFactor(ctx, c, p.User, cred, nil, code, recoveryCode, "step_up")
	if err != nil {
		return err
	}
	won, err := s.spend(ctx, p.User.ID, f)
	if err != nil {
		return err
	}
	if !won {
		return s.secondFactorFailed(ctx, c, p.User, counted, f.method, "step_up")
	}
	if err := s.resetLimit(ctx, MFACounterKey(p.User.ID)); err != nil {
		return err
	}
	now := s.now()
	method := SessionMethodFor(f.method)
	if err := s.store.SetSessionMFA(ctx, p.Session.ID, method, now); err != nil {
		return fmt.Errorf("recording step-up: %w", err)
	}
	p.Session.Method, p.Session.MFAAt = method, now
	s.event(ctx, p.User.ID, c, "step_up", "success", f.method)
	s.observe("step_up", "success")
	if f.method == MethodRecoveryCode {
		if _, err := s.recoveryCodeUsed(ctx, c, p.User); err != nil {
			return err
		}
	}
	return nil
}
