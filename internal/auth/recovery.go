package auth

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/latchkey/latchkey/internal/recovery"
)

// Recovery when everything is lost (SPEC §2 item 7). The flow: OpenRecovery hands out
// a server-chosen challenge bound to one account; VerifyRecovery accepts a signature
// over it by one of the account's SSH keys, or one of its personal access tokens,
// exactly once; an operator (or, when configured, the passing of time without the
// owner cancelling) approves, which removes MFA, ends every session and mails a
// password-reset link. The owner's mailbox hears of every step, with a cancel link.
const (
	// RecoveryChallengeTTL is how long a challenge can be verified.
	RecoveryChallengeTTL = 15 * time.Minute
	// RecoveryMaxFailures failed verifications close a request.
	RecoveryMaxFailures = 5
	// RecoveryPerAccount and RecoveryPerIP bound the requests opened in RecoveryWindow.
	RecoveryPerAccount = 5
	RecoveryPerIP      = 20
	RecoveryWindow     = time.Hour
	// RecoveryResetTTL is the life of the reset link an approval mails: longer than a
	// forgotten-password link because an operator may approve while the user sleeps.
	RecoveryResetTTL = 24 * time.Hour

	// ChallengePrefix starts every challenge, so that a signed challenge read out of
	// context says what it was for. The rest is 128 random bits in lower-case hex.
	ChallengePrefix = "latchkey-recovery:"
)

// Recovery verification methods, as the API and the operator's list show them.
const (
	RecoveryMethodSSHKey = "ssh_key"
	RecoveryMethodToken  = "personal_access_token"
)

// RecoveryChallenge is the answer to opening a request.
type RecoveryChallenge struct {
	ID        RecoveryRequestID
	Challenge string
	Namespace string
	ExpiresAt time.Time
}

// RecoveryVerification is the answer to a successful verification.
type RecoveryVerification struct {
	Method         string
	KeyFingerprint string // set for ssh_key
}

// RecoveryRequestInfo is a request as the operator sees it: the evidence and whose
// account it is. Status is RecoveryExpired for a pending request past its window.
type RecoveryRequestInfo struct {
	RecoveryRequest
	Username string
	Email    string
}

func (s *Service) randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// cancelToken is derived from the request id under the secret key: unguessable, only
// its hash is stored, and yet every reminder mail can carry the same cancel link.
func (s *Service) cancelToken(id RecoveryRequestID) string {
	return base64.RawURLEncoding.EncodeToString(s.keys.MAC("recovery-cancel", []byte(id)))
}

func (s *Service) cancelLink(id RecoveryRequestID) string {
	return s.cfg.PublicURL + "/recover/cancel?token=" + s.cancelToken(id)
}

// validRequestID accepts exactly 32 lower-case hex digits.
func validRequestID(id RecoveryRequestID) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(string(id))
	return err == nil && strings.ToLower(string(id)) == string(id)
}

// OpenRecovery opens a recovery request for the account named by login (username or
// email) and returns its challenge. For a login that names no account it stores and
// returns a decoy of the same shape after the same work, so the answer says nothing
// about which accounts exist; verifying a decoy fails like a wrong signature. The
// account's other requests are left as they are; the owner is mailed at once, with a
// link that cancels this one.
func (s *Service) OpenRecovery(ctx context.Context, c Client, login string) (*RecoveryChallenge, error) {
	login = strings.TrimSpace(login)
	if login == "" || len(login) > 254 {
		return nil, InvalidInput(map[string]string{"login": "enter your username or email"})
	}
	u, err := s.store.UserByLogin(ctx, login)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("looking up user: %w", err)
	}
	id, err := s.randomHex(16)
	if err != nil {
		return nil, err
	}
	nonce, err := s.randomHex(16)
	if err != nil {
		return nil, err
	}
	now := s.now()
	r := &RecoveryRequest{ID: RecoveryRequestID(id), Status: RecoveryPending, Challenge: ChallengePrefix + nonce,
		CreatedAt: now, ExpiresAt: now.Add(RecoveryChallengeTTL), IP: c.IP, UserAgent: truncate(c.UserAgent, maxUserAgent)}
	r.CancelHash = hashToken(s.cancelToken(r.ID))
	// Decoys are limited per spelling of the login, so the sixth request for an unknown
	// name is refused just like the sixth for a real account.
	r.Subject = "login:" + strings.ToLower(login)
	if u != nil {
		r.UserID = u.ID
		r.Subject = fmt.Sprintf("user:%d", int64(u.ID))
	}
	opened, oldest, err := s.store.OpenRecoveryRequest(ctx, r, RecoveryLimit{Since: now.Add(-RecoveryWindow),
		PerSubject: RecoveryPerAccount, PerIP: RecoveryPerIP})
	if err != nil {
		return nil, fmt.Errorf("opening recovery request: %w", err)
	}
	if !opened {
		s.event(ctx, r.UserID, c, "recovery_requested", "limited", "")
		return nil, RateLimited(oldest.Add(RecoveryWindow).Sub(now))
	}
	if u == nil {
		s.event(ctx, 0, c, "recovery_requested", "unknown_login", "decoy "+id)
	} else {
		s.event(ctx, u.ID, c, "recovery_requested", "success", "request "+id)
		s.notify(u, "A recovery request was opened for your account",
			// The User-Agent stays out: it is the requester's own text, and a genuine mail
			// from us must not carry an attacker's words (a phishing link, say). The
			// security log keeps it.
			"Someone (hopefully you) asked to recover the account %s from %s because they lost every way to sign in.\n\nIf this was you, prove it with one of your SSH keys or personal access tokens; a support operator will then review the request.\n\nIf this was NOT you, cancel the request now:\n%s\n\nNothing changes on your account unless the request is verified and approved.",
			u.Username, c.IP, s.cancelLink(r.ID))
	}
	return &RecoveryChallenge{ID: r.ID, Challenge: r.Challenge, Namespace: recovery.Namespace, ExpiresAt: r.ExpiresAt}, nil
}

// VerifyRecovery proves a request with exactly one of an armored SSHSIG signature
// over the challenge (namespace latchkey-recovery, by one of the account's SSH keys)
// or a live personal access token of the account.
//
// Each attempt takes a slot on the request's counter before it is checked (the one
// attempt limiter), so parallel guesses cannot exceed RecoveryMaxFailures, and an
// attempt whose check never ran gives it back; a failure leaves the challenge valid,
// and the failure that reaches the limit closes the request (429, and 429 for every
// later call). Marking the request verified is one conditional update, so of
// any number of parallel verifications exactly one succeeds; the request is then used
// up. Unknown, expired, used, cancelled or decided requests all answer
// ErrVerificationFailed; the precise reason goes to the log only.
func (s *Service) VerifyRecovery(ctx context.Context, c Client, id RecoveryRequestID, signature, token string) (*RecoveryVerification, error) {
	if (signature == "") == (token == "") {
		return nil, InvalidInput(map[string]string{"ssh_signature": "give either ssh_signature or personal_access_token"})
	}
	fail := func(user UserID, why string) (*RecoveryVerification, error) {
		s.event(ctx, user, c, "recovery_verify", "failure", why)
		s.log.Info("recovery verification failed", "request", string(id), "reason", why)
		return nil, ErrVerificationFailed
	}
	if !validRequestID(id) {
		return fail(0, "malformed request id")
	}
	r, err := s.recoveryRequest(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return fail(0, "unknown request")
	}
	if err != nil {
		return nil, fmt.Errorf("reading recovery request: %w", err)
	}
	now := s.now()
	if closedByFailures(r) {
		return nil, RecoveryClosedError(RecoveryWindow)
	}
	if st := displayStatus(r, now); st != RecoveryPending {
		return fail(r.UserID, fmt.Sprintf("request is %s", st))
	}
	// Counted first, on the request's own counter: a slot before the proof is checked,
	// given back if the check never runs.
	sl, err := s.acquire(ctx, recoveryKey(id), recoveryLimit)
	if err != nil {
		if e := AsError(err); e != nil && e.Kind == KindRateLimited {
			return nil, RecoveryClosedError(RecoveryWindow)
		}
		return nil, err
	}
	defer sl.release(ctx)

	ev, why, err := s.checkRecoveryProof(ctx, r, signature, token, now)
	if err != nil {
		return nil, err
	}
	if why != "" {
		d, _, err := sl.fail(ctx)
		if err != nil {
			return nil, err
		}
		s.event(ctx, r.UserID, c, "recovery_verify", "failure", why)
		s.log.Info("recovery verification failed", "request", string(id), "reason", why)
		// The failure that reached the limit closes the request.
		if d.Locked {
			if closed, err := s.store.SetRecoveryStatus(ctx, id, []string{RecoveryPending}, RecoveryClosed, now,
				fmt.Sprintf("%d failed verifications", RecoveryMaxFailures)); err != nil {
				return nil, fmt.Errorf("closing recovery request: %w", err)
			} else if closed {
				s.event(ctx, r.UserID, c, "recovery_closed", "locked", fmt.Sprintf("%d failed verifications", RecoveryMaxFailures))
				return nil, RecoveryClosedError(RecoveryWindow)
			}
		}
		return nil, ErrVerificationFailed
	}
	won, err := s.store.VerifyRecoveryRequest(ctx, id, ev.RecoveryEvidence, now)
	if err != nil {
		return nil, fmt.Errorf("marking recovery request verified: %w", err)
	}
	if !won {
		return fail(r.UserID, "lost the race: request already verified, closed or expired")
	}
	// The slot goes back (deferred) without resetting the counter: the request is used
	// up, and its earlier failures are evidence for the operator.
	if ev.keyID != 0 {
		if err := s.store.TouchSSHKey(ctx, ev.keyID, now); err != nil {
			s.log.Warn("touching ssh key", "err", err)
		}
	}
	if ev.tokenID != 0 {
		if err := s.store.TouchToken(ctx, ev.tokenID, now); err != nil {
			s.log.Warn("touching token", "err", err)
		}
	}
	detail := ev.Method
	if ev.KeyFingerprint != "" {
		detail += " " + ev.KeyFingerprint
	} else {
		detail += " " + ev.TokenName
	}
	s.event(ctx, r.UserID, c, "recovery_verified", "success", detail)
	if u, err := s.store.UserByID(ctx, r.UserID); err == nil {
		next := "A support operator will review it; you will hear from us by mail."
		if d := s.cfg.RecoveryAutoApproveAfter; d > 0 {
			next = fmt.Sprintf("Unless you cancel it, it will be approved automatically at %s (UTC), which removes multiple-factor authentication, signs out every session and mails a password-reset link.",
				now.Add(d).Format("2006-01-02 15:04"))
		}
		s.notify(u, "Your recovery request was verified",
			"The recovery request for %s opened from %s was verified with %s from %s.\n\n%s\n\nIf this was NOT you, cancel it now:\n%s",
			u.Username, r.IP, detail, c.IP, next, s.cancelLink(r.ID))
		s.notifyOperator(u, r, detail)
	}
	return &RecoveryVerification{Method: ev.Method, KeyFingerprint: ev.KeyFingerprint}, nil
}

// recoveryLimit closes a request at its fifth failed verification; the lock outlives
// the request, so it never reopens.
var recoveryLimit = LimitPolicy{MaxFailures: RecoveryMaxFailures, BaseLock: 24 * time.Hour, MaxLock: 24 * time.Hour}

// recoveryKey is the counter of a recovery request's verification attempts.
func recoveryKey(id RecoveryRequestID) AttemptKey {
	return AttemptKey{Scope: scopeRecovery, Key: string(id)}
}

// recoveryRequest reads a request with its failed verifications, which its counter
// holds.
func (s *Service) recoveryRequest(ctx context.Context, id RecoveryRequestID) (*RecoveryRequest, error) {
	r, err := s.store.RecoveryRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.withFailures(ctx, r); err != nil {
		return nil, err
	}
	return r, nil
}

// withFailures sets r.Failures from the request's counter.
func (s *Service) withFailures(ctx context.Context, r *RecoveryRequest) error {
	a, err := s.store.Attempt(ctx, recoveryKey(r.ID))
	if err != nil {
		return fmt.Errorf("reading recovery attempts: %w", err)
	}
	r.Failures = a.Failures
	return nil
}

// closedByFailures tells a request closed by failed verifications (429) from every
// other dead request (400).
func closedByFailures(r *RecoveryRequest) bool {
	return r.Failures >= RecoveryMaxFailures && (r.Status == RecoveryClosed || r.Status == RecoveryPending)
}

type recoveryProof struct {
	RecoveryEvidence
	keyID   SSHKeyID
	tokenID TokenID
}

// checkRecoveryProof checks the signature or token against the request's account. It
// returns the reason of a failure (for the log only) or the evidence.
func (s *Service) checkRecoveryProof(ctx context.Context, r *RecoveryRequest, signature, token string, now time.Time) (*recoveryProof, string, error) {
	ev := &recoveryProof{RecoveryEvidence: RecoveryEvidence{VerifiedAt: now}}
	if signature != "" {
		var keys []SSHKey
		if r.UserID != 0 {
			var err error
			if keys, err = s.store.ListSSHKeys(ctx, r.UserID); err != nil {
				return nil, "", fmt.Errorf("listing ssh keys: %w", err)
			}
		}
		allowed := make([]ssh.PublicKey, 0, len(keys))
		byFP := map[string]*SSHKey{}
		for i := range keys {
			k, _, err := recovery.ParsePublicKey(keys[i].PublicKey)
			if err != nil {
				s.log.Warn("stored ssh key no longer passes the key policy", "key", int64(keys[i].ID), "err", err)
				continue
			}
			allowed = append(allowed, k)
			byFP[recovery.Fingerprint(k)] = &keys[i]
		}
		signer, err := recovery.VerifySignature(signature, recovery.Namespace, []byte(r.Challenge), allowed)
		if err != nil {
			if r.UserID == 0 {
				return nil, "decoy request: " + err.Error(), nil
			}
			return nil, err.Error(), nil
		}
		k := byFP[recovery.Fingerprint(signer)]
		if k == nil {
			return nil, "signer is not a registered key", nil
		}
		ev.Method, ev.KeyFingerprint, ev.KeyCreatedAt, ev.keyID = RecoveryMethodSSHKey, k.Fingerprint, k.CreatedAt, k.ID
		ev.KeyID = k.ID
		return ev, "", nil
	}
	if !strings.HasPrefix(token, TokenPrefix) || len(token) > 200 {
		return nil, "not a personal access token", nil
	}
	t, err := s.checkToken(ctx, token, now)
	if errors.Is(err, ErrUnauthenticated) {
		return nil, "unknown, revoked or expired personal access token", nil
	}
	if err != nil {
		return nil, "", err
	}
	if r.UserID == 0 || t.UserID != r.UserID {
		return nil, "personal access token of another account", nil
	}
	ev.Method, ev.TokenName, ev.KeyCreatedAt, ev.tokenID = RecoveryMethodToken, t.Name, t.CreatedAt, t.ID
	ev.TokenID = t.ID
	return ev, "", nil
}

func displayStatus(r *RecoveryRequest, now time.Time) string {
	if r.Status == RecoveryPending && !now.Before(r.ExpiresAt) {
		return RecoveryExpired
	}
	return r.Status
}

// CancelRecovery cancels a pending or verified request with the token of the link
// mailed to the account's owner.
func (s *Service) CancelRecovery(ctx context.Context, c Client, token string) error {
	if token == "" || len(token) > 200 {
		return ErrInvalidToken
	}
	r, err := s.store.CancelRecoveryRequest(ctx, hashToken(token), s.now())
	if errors.Is(err, ErrNotFound) {
		s.event(ctx, 0, c, "recovery_cancelled", "invalid_token", "")
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("cancelling recovery request: %w", err)
	}
	s.event(ctx, r.UserID, c, "recovery_cancelled", "success", "request "+string(r.ID))
	if u, err := s.store.UserByID(ctx, r.UserID); err == nil {
		s.notify(u, "The recovery request was cancelled",
			"The recovery request for %s opened from %s was cancelled from %s. Nothing on your account changed.\n\nIf someone else opened it, they may know your username or email; consider changing your password.",
			u.Username, r.IP, c.IP)
	}
	return nil
}

// requireOperator admits administrators only; actions also need a session within
// the re-authentication window, never a token.
func (s *Service) requireOperator(p *Principal, action bool) error {
	if p == nil || !p.User.IsAdmin {
		return ErrForbidden
	}
	if action {
		return s.requireRecent(p)
	}
	return requireSession(p)
}

// RecoveryRequests lists recovery requests for an administrator's session; status
// filters ("" for all; "expired" and "pending" are told apart by time).
func (s *Service) RecoveryRequests(ctx context.Context, p *Principal, status string) ([]RecoveryRequestInfo, error) {
	if err := s.requireOperator(p, false); err != nil {
		return nil, err
	}
	return s.AdminRecoveryRequests(ctx, status)
}

// AdminRecoveryRequests is RecoveryRequests for the operator's CLI.
func (s *Service) AdminRecoveryRequests(ctx context.Context, status string) ([]RecoveryRequestInfo, error) {
	stored := status
	switch status {
	case "", RecoveryPending, RecoveryVerified, RecoveryApproved, RecoveryDenied, RecoveryCancelled, RecoveryClosed:
	case RecoveryExpired:
		stored = RecoveryPending
	default:
		return nil, InvalidInput(map[string]string{"status": "must be one of pending, verified, approved, denied, cancelled, closed, expired"})
	}
	rs, err := s.store.ListRecoveryRequests(ctx, stored, 500)
	if err != nil {
		return nil, fmt.Errorf("listing recovery requests: %w", err)
	}
	now := s.now()
	users := map[UserID]*User{}
	out := make([]RecoveryRequestInfo, 0, len(rs))
	for _, r := range rs {
		if err := s.withFailures(ctx, &r); err != nil {
			return nil, err
		}
		r.Status = displayStatus(&r, now)
		if status != "" && r.Status != status {
			continue
		}
		u, ok := users[r.UserID]
		if !ok {
			if u, err = s.store.UserByID(ctx, r.UserID); err != nil {
				return nil, fmt.Errorf("reading user of recovery request: %w", err)
			}
			users[r.UserID] = u
		}
		out = append(out, RecoveryRequestInfo{RecoveryRequest: r, Username: u.Username, Email: u.Email})
	}
	return out, nil
}

// ApproveRecovery approves a verified request on an administrator's recent session.
func (s *Service) ApproveRecovery(ctx context.Context, c Client, p *Principal, id RecoveryRequestID, reason string) (*User, error) {
	if err := s.requireOperator(p, true); err != nil {
		return nil, err
	}
	return s.approveRecovery(ctx, c, id, reason, "operator "+p.User.Username)
}

// AdminApproveRecovery approves a verified request from the operator's CLI.
func (s *Service) AdminApproveRecovery(ctx context.Context, c Client, id RecoveryRequestID, reason string) (*User, error) {
	return s.approveRecovery(ctx, c, id, reason, "operator (cli)")
}

// operatorRequest reads a request an operator names; decoys do not exist for them.
func (s *Service) operatorRequest(ctx context.Context, id RecoveryRequestID) (*RecoveryRequest, error) {
	if !validRequestID(id) {
		return nil, ErrRecoveryNotFound
	}
	r, err := s.recoveryRequest(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && r.UserID == 0) {
		return nil, ErrRecoveryNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("reading recovery request: %w", err)
	}
	return r, nil
}

// approveRecovery does, in one store transaction: request approved, the account's
// other open requests closed, MFA removed, every session and pending login ended, and
// a single-use reset link stored. The password stays as it is until the link is used.
func (s *Service) approveRecovery(ctx context.Context, c Client, id RecoveryRequestID, reason, actor string) (*User, error) {
	reason, err := requireReason(reason)
	if err != nil {
		return nil, err
	}
	r, err := s.operatorRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if r.Status != RecoveryVerified {
		return nil, notApprovable(r, now)
	}
	tok, hash, err := s.newToken(32)
	if err != nil {
		return nil, err
	}
	reset := &PasswordReset{TokenHash: hash, CreatedAt: now, ExpiresAt: now.Add(RecoveryResetTTL)}
	uid, err := s.store.ApproveRecoveryRequest(ctx, id, reason, now, reset)
	if errors.Is(err, ErrNotFound) {
		// Decided or cancelled meanwhile, or its evidence no longer holds.
		return nil, s.evidenceGone(ctx, c, id, now)
	}
	if err != nil {
		return nil, fmt.Errorf("approving recovery request: %w", err)
	}
	u, err := s.store.UserByID(ctx, uid)
	if err != nil {
		return nil, fmt.Errorf("reading recovered user: %w", err)
	}
	s.event(ctx, uid, c, "recovery_approved", "success", fmt.Sprintf("request %s by %s; reason: %s", id, actor, reason))
	s.notify(u, "Your recovery request was approved",
		"The recovery request for %s was approved.\n\nReason given: %s\n\nMultiple-factor authentication was removed and every session was signed out. Your password is unchanged; set a new one within %s with this single-use link:\n%s\n\nThen sign in and turn multiple-factor authentication back on at %s/settings/authentication. If you did not ask for this, contact support at once.",
		u.Username, reason, RecoveryResetTTL, s.cfg.PublicURL+"/password/reset?token="+tok, s.cfg.PublicURL)
	return u, nil
}

// DenyRecovery denies a pending or verified request on an administrator's recent
// session.
func (s *Service) DenyRecovery(ctx context.Context, c Client, p *Principal, id RecoveryRequestID, reason string) (*User, error) {
	if err := s.requireOperator(p, true); err != nil {
		return nil, err
	}
	return s.denyRecovery(ctx, c, id, reason, "operator "+p.User.Username)
}

// AdminDenyRecovery denies a request from the operator's CLI.
func (s *Service) AdminDenyRecovery(ctx context.Context, c Client, id RecoveryRequestID, reason string) (*User, error) {
	return s.denyRecovery(ctx, c, id, reason, "operator (cli)")
}

func (s *Service) denyRecovery(ctx context.Context, c Client, id RecoveryRequestID, reason, actor string) (*User, error) {
	reason, err := requireReason(reason)
	if err != nil {
		return nil, err
	}
	r, err := s.operatorRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	now := s.now()
	ok, err := s.store.SetRecoveryStatus(ctx, id, []string{RecoveryPending, RecoveryVerified}, RecoveryDenied, now, reason)
	if err != nil {
		return nil, fmt.Errorf("denying recovery request: %w", err)
	}
	if !ok {
		return nil, E(KindConflict, "not_open", fmt.Sprintf("The recovery request is %s already.", r.Status))
	}
	u, err := s.store.UserByID(ctx, r.UserID)
	if err != nil {
		return nil, fmt.Errorf("reading user: %w", err)
	}
	s.event(ctx, u.ID, c, "recovery_denied", "success", fmt.Sprintf("request %s by %s; reason: %s", id, actor, reason))
	s.notify(u, "Your recovery request was denied",
		"The recovery request for %s opened from %s was denied by a support operator.\n\nReason given: %s\n\nNothing on your account changed.",
		u.Username, r.IP, reason)
	return u, nil
}

// AutoApproveDue approves every verified request whose owner did not cancel it within
// RecoveryAutoApproveAfter (0: never), and sends the halfway reminder of the others.
// Serve runs it periodically; on several replicas each approval and each reminder
// still happens once, because both are conditional updates.
func (s *Service) AutoApproveDue(ctx context.Context) (int, error) {
	d := s.cfg.RecoveryAutoApproveAfter
	if d <= 0 {
		return 0, nil
	}
	rs, err := s.store.ListRecoveryRequests(ctx, RecoveryVerified, 1000)
	if err != nil {
		return 0, fmt.Errorf("listing verified recovery requests: %w", err)
	}
	now := s.now()
	auto := Client{IP: "auto-approval", UserAgent: "latchkey"}
	n := 0
	for _, r := range rs {
		switch {
		case !now.Before(r.VerifiedAt.Add(d)):
			_, err := s.approveRecovery(ctx, auto, r.ID,
				fmt.Sprintf("automatic: verified with %s and not cancelled by the owner within %s", r.Method, d), "auto-approval")
			if e := AsError(err); e != nil && e.Kind == KindConflict {
				continue // cancelled, denied or approved elsewhere meanwhile, or its evidence is gone
			}
			if err != nil {
				return n, err
			}
			n++
		case !now.Before(r.VerifiedAt.Add(d/2)) && r.Reminders < 1:
			won, err := s.store.MarkRecoveryReminder(ctx, r.ID, 1)
			if err != nil {
				return n, fmt.Errorf("recording recovery reminder: %w", err)
			}
			if !won {
				continue
			}
			if u, err := s.store.UserByID(ctx, r.UserID); err == nil {
				s.notify(u, "Reminder: a recovery request for your account will be approved",
					"The verified recovery request for %s (opened from %s) will be approved automatically at %s (UTC): multiple-factor authentication will be removed, every session signed out and a password-reset link mailed.\n\nIf this was NOT you, cancel it now:\n%s",
					u.Username, r.IP, r.VerifiedAt.Add(d).Format("2006-01-02 15:04"), s.cancelLink(r.ID))
			}
		}
	}
	return n, nil
}
