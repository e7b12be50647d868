package auth

import (
	"context"
	"fmt"
	"time"
)

// ErrRequestClosed answers an approval of a request that can no longer be approved:
// cancelled, denied, approved, closed, expired, or verified by evidence that no
// longer holds.
var ErrRequestClosed = E(KindConflict, "request_closed", "The recovery request is closed and cannot be approved.")

// notApprovable says why a request that is not verified cannot be approved: a pending
// one is not verified yet; anything else is closed.
func notApprovable(r *RecoveryRequest, now time.Time) error {
	status := displayStatus(r, now)
	if status == RecoveryPending {
		e := *ErrNotVerified
		e.Message = "Only a verified recovery request can be approved; this one is pending."
		return &e
	}
	e := *ErrRequestClosed
	e.Message = fmt.Sprintf("The recovery request is %s: only a verified, open request can be approved.", status)
	return &e
}

// evidenceGone explains an approval the store refused. A request still verified was
// refused because the token or SSH key that verified it was revoked, removed or
// expired: it is cancelled now, which the owner's log and mailbox hear of.
func (s *Service) evidenceGone(ctx context.Context, c Client, id RecoveryRequestID, now time.Time) error {
	r, err := s.store.RecoveryRequest(ctx, id)
	if err != nil {
		return fmt.Errorf("re-reading recovery request: %w", err)
	}
	if r.Status != RecoveryVerified {
		return notApprovable(r, now)
	}
	const why = "the token or SSH key that verified it was revoked, removed or expired"
	won, err := s.store.SetRecoveryStatus(ctx, id, []string{RecoveryVerified}, RecoveryCancelled, now, why)
	if err != nil {
		return fmt.Errorf("cancelling recovery request: %w", err)
	}
	if won {
		if u, err := s.store.UserByID(ctx, r.UserID); err == nil {
			s.recoveryCancelled(ctx, c, u, id, why)
		}
	}
	e := *ErrRequestClosed
	e.Message = "The recovery request was cancelled: " + why + "."
	return &e
}

// cancelRecovery ends the account's recovery requests that m matches, because their
// reason to exist is gone: the owner proved a second factor, or the evidence that
// verified one was revoked. A failure is logged, never returned: the action that
// caused it (a sign-in, a revocation) stands, and approval re-checks the evidence
// anyway.
func (s *Service) cancelRecovery(ctx context.Context, c Client, u *User, m RecoveryMatch, why string) {
	ids, err := s.store.CancelRecoveryRequests(ctx, u.ID, m, s.now(), why)
	if err != nil {
		s.log.Error("cancelling recovery requests", "user_id", int64(u.ID), "err", err)
		return
	}
	for _, id := range ids {
		s.recoveryCancelled(ctx, c, u, id, why)
	}
}

func (s *Service) recoveryCancelled(ctx context.Context, c Client, u *User, id RecoveryRequestID, why string) {
	s.event(ctx, u.ID, c, "recovery_cancelled", "success", fmt.Sprintf("request %s: %s", id, why))
	s.notify(u, "A recovery request for your account was cancelled",
		"The recovery request %s for %s was cancelled: %s. Nothing on your account changed.\n\nIf you still need to recover the account, open a new request.",
		id, u.Username, why)
}
