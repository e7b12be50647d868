package auth

import (
	"context"
	"errors"
	"fmt"
	"github.com/latchkey/latchkey/internal/keys"
	"strconv"
	"time"

	"github.com/latchkey/latchkey/internal/recovery"
	"github.com/latchkey/latchkey/internal/totp"
)

// Second-factor method names, as the API shows them.
const (
	MethodTOTP         = "totp"
	MethodRecoveryCode = "recovery_code"
)

// LowRecoveryCodes is the count at or below which pages and /me warn.
const LowRecoveryCodes = 3

// Low reports whether the user should regenerate recovery codes soon.
func (m MFAState) Low() bool { return m.Enabled && m.Codes.Remaining <= LowRecoveryCodes }

// MFAState reads the user's second-factor state.
func (s *Service) MFAState(ctx context.Context, user UserID) (MFAState, error) {
	st, err := s.store.MFAState(ctx, user)
	if err != nil {
		return MFAState{}, fmt.Errorf("reading MFA state: %w", err)
	}
	return normalMFA(st), nil
}

// MFAStateOf is the caller's second-factor state: read with the session when the
// principal was authenticated by one (no second query), otherwise read now.
func (s *Service) MFAStateOf(ctx context.Context, p *Principal) (MFAState, error) {
	if p.mfa != nil {
		return *p.mfa, nil
	}
	return s.MFAState(ctx, p.User.ID)
}

// normalMFA is m as the rules read it: while no second factor is registered there are
// no recovery codes to speak of, only the policy's deadline.
func normalMFA(m MFAState) MFAState {
	if !m.Enabled {
		return MFAState{Deadline: m.Deadline}
	}
	return m
}

// Methods lists the second factors the account has, in the order SPEC §8 gives:
// webauthn, totp, recovery_code.
func (m MFAState) Methods() []string {
	out := []string{}
	if m.WebAuthnKeys > 0 {
		out = append(out, MethodWebAuthn)
	}
	if m.TOTP {
		out = append(out, MethodTOTP)
	}
	if m.Enabled {
		out = append(out, MethodRecoveryCode)
	}
	return out
}

// TOTPSetup is what an authenticator app needs, shown for QR scan and manual entry.
type TOTPSetup struct {
	Secret    []byte
	URI       string
	Issuer    string
	Account   string
	Algorithm string
	Digits    int
	Period    int
	ExpiresAt time.Time
}

// SecretBase32 is the secret as typed into an app by hand.
func (t TOTPSetup) SecretBase32() string { return totp.EncodeSecret(t.Secret) }

func totpAAD(u UserID) []byte { return []byte("totp:" + strconv.FormatInt(int64(u), 10)) }
func totpPendingAAD(u UserID) []byte {
	return []byte("totp-pending:" + strconv.FormatInt(int64(u), 10))
}

func (s *Service) seal(plaintext, aad []byte) (EncryptedSecret, error) {
	id, ct, err := s.keys.Seal(plaintext, aad)
	if err != nil {
		return EncryptedSecret{}, fmt.Errorf("sealing secret: %w", err)
	}
	return EncryptedSecret{KeyID: id, Ciphertext: ct}, nil
}

func (s *Service) open(e EncryptedSecret, aad []byte) ([]byte, error) {
	pt, err := s.keys.Open(e.KeyID, e.Ciphertext, aad)
	if err != nil {
		return nil, fmt.Errorf("opening secret (wrong secret key?): %w", err)
	}
	return pt, nil
}

func (s *Service) setupFor(u *User, secret []byte, expires time.Time) *TOTPSetup {
	return &TOTPSetup{Secret: secret, URI: totp.URI(s.cfg.SiteName, u.Username, secret), Issuer: s.cfg.SiteName,
		Account: u.Username, Algorithm: "SHA1", Digits: totp.Digits, Period: totp.Period, ExpiresAt: expires}
}

// SetupTOTP starts enrolment: a new random secret, kept encrypted as the pending setup
// for 15 minutes (replacing any earlier one). Like GitHub's, it needs a recent sign-in.
func (s *Service) SetupTOTP(ctx context.Context, c Client, p *Principal) (*TOTPSetup, error) {
	if err := requireSession(p); err != nil {
		return nil, err
	}
	if _, err := s.store.TOTP(ctx, p.User.ID); err == nil {
		return nil, ErrMFAAlreadyEnabled
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("reading MFA state: %w", err)
	}
	if err := s.requireRecent(p); err != nil {
		return nil, err
	}
	secret, err := totp.NewSecret(s.rand)
	if err != nil {
		return nil, fmt.Errorf("new TOTP secret: %w", err)
	}
	enc, err := s.seal(secret, totpPendingAAD(p.User.ID))
	if err != nil {
		return nil, err
	}
	exp := s.now().Add(s.cfg.SetupTTL)
	pend := &PendingTOTP{UserID: p.User.ID, SessionID: p.Session.ID, Secret: enc, ExpiresAt: exp}
	if err := s.store.SetPendingTOTP(ctx, pend); err != nil {
		return nil, fmt.Errorf("storing pending setup: %w", err)
	}
	s.event(ctx, p.User.ID, c, "mfa_setup_started", "success", "")
	return s.setupFor(p.User, secret, exp), nil
}

// PendingSetup returns the setup in progress of the caller's own session (for the QR
// code and the settings page).
func (s *Service) PendingSetup(ctx context.Context, p *Principal) (*TOTPSetup, error) {
	if err := requireSession(p); err != nil {
		return nil, err
	}
	pend, err := s.store.PendingTOTP(ctx, p.User.ID)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNoPendingSetup
	}
	if err != nil {
		return nil, fmt.Errorf("reading pending setup: %w", err)
	}
	// Another session of the same account — an old or stolen one — must never read the
	// secret being enrolled, nor finish the enrolment (which would end the session that
	// started it and hand the recovery codes to the other).
	if !s.now().Before(pend.ExpiresAt) || pend.SessionID != p.Session.ID {
		return nil, ErrNoPendingSetup
	}
	secret, err := s.open(pend.Secret, totpPendingAAD(p.User.ID))
	if err != nil {
		return nil, err
	}
	return s.setupFor(p.User, secret, pend.ExpiresAt), nil
}

// ConfirmTOTP finishes enrolment with a code from the app. A wrong code changes nothing
// and is not counted (the caller is already signed in). On success, in one
// transaction: the credential (its step counted as used), 16 new recovery codes, and
// every other session ended. The codes are returned only after that commits.
func (s *Service) ConfirmTOTP(ctx context.Context, c Client, p *Principal, code string) ([]string, error) {
	if err := s.requireRecent(p); err != nil {
		return nil, err
	}
	setup, err := s.PendingSetup(ctx, p)
	if err != nil {
		return nil, err
	}
	step, ok := totp.Verify(setup.Secret, code, s.now(), s.cfg.TOTPWindow)
	if !ok {
		s.event(ctx, p.User.ID, c, "mfa_enable", "invalid_code", "")
		return nil, &Error{Kind: KindInvalidInput, Code: "invalid_code", Message: "That code is not valid. Check the time on your device and try the next code.", Fields: map[string]string{"code": "is not valid"}}
	}
	enc, err := s.seal(setup.Secret, totpAAD(p.User.ID))
	if err != nil {
		return nil, err
	}
	// With a security key already registered, MFA is on: the app joins it and the
	// recovery codes and other sessions stay as they are.
	state, err := s.store.MFAState(ctx, p.User.ID)
	if err != nil {
		return nil, fmt.Errorf("reading MFA state: %w", err)
	}
	var codes []string
	var hashes [][]byte
	if !state.Enabled {
		if codes, hashes, err = s.newRecoveryCodes(p.User.ID); err != nil {
			return nil, err
		}
	}
	cred := &TOTPCredential{UserID: p.User.ID, Secret: enc, LastStep: step, CreatedAt: s.now()}
	if err := s.store.EnableTOTP(ctx, cred, hashes, p.Session.ID); errors.Is(err, ErrConflict) {
		return nil, ErrMFAAlreadyEnabled
	} else if err != nil {
		return nil, fmt.Errorf("enabling TOTP: %w", err)
	}
	// The right code from the new app is a second factor proved in this session.
	now := s.now()
	// MFA is on and the codes are valid whatever happens here, and they are shown only
	// once: a failure to record it costs the session a step-up later, never the codes.
	if err := s.store.SetSessionMFA(ctx, p.Session.ID, SessionPasswordTOTP, now); err != nil {
		s.log.Warn("recording the session's second factor", "user_id", int64(p.User.ID), "err", err)
	} else {
		p.Session.Method, p.Session.MFAAt = SessionPasswordTOTP, now
	}
	s.event(ctx, p.User.ID, c, "mfa_enabled", "success", "")
	s.notify(p.User, "Multiple-factor authentication is on",
		"Multiple-factor authentication was turned on for %s from %s. Every other session was signed out.\n\nKeep your recovery codes somewhere safe: they are the way back in if you lose your phone.",
		p.User.Username, c.IP)
	return codes, nil
}

// recoveryHash is the only form in which recovery codes are stored: HMAC-SHA256 under a
// subkey of the secret key, so a copy of the database without the key can be neither
// used nor brute-forced, and checking a code is one lookup by hash (a keyed hash, unlike
// a salted password hash, is deterministic, which is what makes that lookup possible;
// 80 bits of entropy make salting moot).
func (s *Service) recoveryHash(u UserID, canonical string) []byte {
	// The user id is inside the MAC so a code's hash means nothing on another account.
	return s.keys.MAC("recovery-code", []byte(strconv.FormatInt(int64(u), 10)+":"+canonical))
}

func (s *Service) newRecoveryCodes(u UserID) ([]string, [][]byte, error) {
	codes, err := recovery.Generate(s.rand, recovery.Count)
	if err != nil {
		return nil, nil, fmt.Errorf("generating recovery codes: %w", err)
	}
	hashes := make([][]byte, len(codes))
	for i, code := range codes {
		canon, ok := recovery.Normalize(code)
		if !ok {
			return nil, nil, fmt.Errorf("generated recovery code does not normalise")
		}
		hashes[i] = s.recoveryHash(u, canon)
	}
	return codes, hashes, nil
}

// RecoveryCodesFileName is the download name of the codes file.
func (s *Service) RecoveryCodesFileName() string { return recovery.FileName(s.cfg.SiteName) }

// factor is a second factor that passed the checks that need no write; it is spent by
// a conditional write later — inside FinishSignIn for a sign-in, on its own for reauth.
type factor struct {
	method   string
	step     int64  // MethodTOTP: the matched time step, later than the last accepted
	codeHash []byte // MethodRecoveryCode: the keyed hash of the normalised code
}

// checkSecondFactor takes a slot on the account's second-factor counter first (its
// own committed write), then checks exactly one of code or recoveryCode without
// spending it. It is shared by the sign-in step and re-authentication so the lock and
// the replay rule cannot differ between them. A wrong factor is settled as a failure
// and comes back as ErrInvalidCode, already logged. A right one comes back with its
// slot, which the caller settles (or releases) once the factor is spent.
//
// cred gives the user's TOTP credential (nil when there is none); it may have been
// read before the count, since only the check of the code must come after it.
func (s *Service) checkSecondFactor(ctx context.Context, c Client, u *User, cred func() (*TOTPCredential, error),
	code, recoveryCode, purpose string) (*factor, *slot, error) {
	if (code == "") == (recoveryCode == "") {
		return nil, nil, InvalidInput(map[string]string{"code": "enter the code from your app or a recovery code"})
	}
	sl, err := s.acquire(ctx, MFACounterKey(u.ID), s.cfg.MFALimit)
	if err != nil {
		if e := AsError(err); e != nil && e.Kind == KindRateLimited {
			s.event(ctx, u.ID, c, purpose, "locked", "")
			s.observe(purpose, "locked")
		}
		return nil, nil, err
	}
	if code != "" {
		f, err := s.checkTOTP(u.ID, cred, code)
		if err != nil {
			sl.release(ctx)
			return nil, nil, err
		}
		if f == nil {
			return nil, nil, s.secondFactorFailed(ctx, c, u, sl, MethodTOTP, purpose)
		}
		return f, sl, nil
	}
	canon, ok := recovery.Normalize(recoveryCode)
	if !ok {
		return nil, nil, s.secondFactorFailed(ctx, c, u, sl, MethodRecoveryCode, purpose)
	}
	return &factor{method: MethodRecoveryCode, codeHash: s.recoveryHash(u.ID, canon)}, sl, nil
}

// secondFactorFailed settles sl as a failure, logs the wrong factor, mails the owner
// when it locked the account, and returns ErrInvalidCode.
func (s *Service) secondFactorFailed(ctx context.Context, c Client, u *User, sl *slot, method, purpose string) error {
	d, st, err := sl.fail(ctx)
	if err != nil {
		return err
	}
	s.event(ctx, u.ID, c, purpose, "failure", method)
	s.observe(purpose, "failure")
	if d.Locked {
		s.event(ctx, u.ID, c, "mfa_locked", "locked", fmt.Sprintf("%d consecutive failures", st.Failures))
		s.notify(u, "Too many wrong sign-in codes",
			"There were %d wrong second-factor codes in a row for %s, the last from %s. Further codes are refused for %s.\n\nIf this was not you, someone knows your password: change it now.",
			st.Failures, u.Username, c.IP, st.LockedUntil.Sub(s.now()).Round(time.Second))
	}
	return ErrInvalidCode
}

// recoveryCodeUsed tells the owner a recovery code was spent and how many remain.
func (s *Service) recoveryCodeUsed(ctx context.Context, c Client, u *User) (*int, error) {
	n, err := s.store.RecoveryCodeCounts(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("counting recovery codes: %w", err)
	}
	s.event(ctx, u.ID, c, "recovery_code_used", "success", fmt.Sprintf("%d remaining", n.Remaining))
	s.notify(u, "A recovery code was used",
		"A recovery code was used for %s from %s. %d of your recovery codes remain.%s",
		u.Username, c.IP, n.Remaining, lowCodesHint(n.Remaining, s.cfg.PublicURL))
	return &n.Remaining, nil
}

func lowCodesHint(remaining int, base string) string {
	if remaining > LowRecoveryCodes {
		return ""
	}
	return fmt.Sprintf("\n\nYou are running low. Regenerate your recovery codes at %s/settings/authentication.", base)
}

// checkTOTP verifies a code against the enabled secret and returns its step, or nil
// when the code is wrong or not later than the last accepted step. The step is only
// taken by a conditional update later (last_step < step), so a code, and any earlier
// code, works once on every replica.
func (s *Service) checkTOTP(u UserID, credential func() (*TOTPCredential, error), code string) (*factor, error) {
	cred, err := credential()
	if err != nil || cred == nil {
		return nil, err
	}
	secret, err := s.open(cred.Secret, totpAAD(u))
	if err != nil {
		return nil, err
	}
	step, ok := totp.Verify(secret, code, s.now(), s.cfg.TOTPWindow)
	if !ok || step <= cred.LastStep {
		return nil, nil
	}
	return &factor{method: MethodTOTP, step: step}, nil
}

// totpCredential reads the user's TOTP credential, nil when there is none.
func (s *Service) totpCredential(ctx context.Context, u UserID) (*TOTPCredential, error) {
	cred, err := s.store.TOTP(ctx, u)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading TOTP credential: %w", err)
	}
	return cred, nil
}

// spend uses a factor with its own conditional write (re-authentication, where no
// session is created) and reports whether it won.
func (s *Service) spend(ctx context.Context, u UserID, f *factor) (bool, error) {
	if f.method == MethodTOTP {
		won, err := s.store.AdvanceTOTPStep(ctx, u, f.step)
		if err != nil {
			return false, fmt.Errorf("recording TOTP step: %w", err)
		}
		return won, nil
	}
	won, err := s.store.UseRecoveryCode(ctx, u, f.codeHash, s.now())
	if err != nil {
		return false, fmt.Errorf("using recovery code: %w", err)
	}
	return won, nil
}

// LoginMFA is the second sign-in step. After the count-first write, one transaction
// spends the factor, consumes the pending token, resets the count, opens the session
// and logs it: a factor is never spent without its session, and a mistyped code can be
// retried on the same pending token until the lock. The lock is per account and
// shared by every pending login and every replica.
func (s *Service) LoginMFA(ctx context.Context, c Client, mfaToken, code, recoveryCode string) (*LoginResult, error) {
	if mfaToken == "" || len(mfaToken) > 200 {
		return nil, ErrInvalidMFAToken
	}
	hash := hashToken(mfaToken)
	ps, err := s.store.PendingSignIn(ctx, hash)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrInvalidMFAToken
	}
	if err != nil {
		return nil, fmt.Errorf("reading pending login: %w", err)
	}
	pend, u := &ps.Pending, &ps.User
	if !s.now().Before(pend.ExpiresAt) {
		return nil, ErrInvalidMFAToken
	}
	if pend.CredEpoch != u.CredEpoch {
		return nil, ErrInvalidMFAToken // the password or MFA changed since the password step
	}
	cred := func() (*TOTPCredential, error) { return ps.TOTP, nil }
	f, sl, err := s.checkSecondFactor(ctx, c, u, cred, code, recoveryCode, "login_mfa")
	if err != nil {
		return nil, err
	}
	defer sl.release(ctx)
	sess, tok, err := s.newSession(c, u, pend.CredEpoch)
	if err != nil {
		return nil, err
	}
	sess.Method, sess.MFAAt = SessionMethodFor(f.method), sess.CreatedAt
	fin := &SignInFinish{Session: sess, PendingHash: hash, TOTPStep: f.step, RecoveryCodeHash: f.codeHash,
		Counters: []AttemptStep{sl.step(OpSucceed, nil)}, Event: s.newEvent(u.ID, c, "login_mfa", "success", f.method)}
	switch err := s.store.FinishSignIn(ctx, fin); {
	case errors.Is(err, ErrFactorUsed):
		return nil, s.secondFactorFailed(ctx, c, u, sl, f.method, "login_mfa")
	case errors.Is(err, ErrPendingGone), errors.Is(err, ErrCredentialsChanged):
		return nil, ErrInvalidMFAToken
	case err != nil:
		return nil, fmt.Errorf("finishing sign-in: %w", err)
	}
	sl.settled = true
	s.logEvent(fin.Event)
	s.observe("login_mfa", "success")
	s.cancelRecovery(ctx, c, u, RecoveryMatch{Open: true}, "the owner signed in with a second factor")
	res := &LoginResult{Status: StatusAuthenticated, User: u, Session: sess, SessionToken: keys.Secret(tok)}
	if f.method == MethodRecoveryCode {
		if res.RecoveryCodesRemaining, err = s.recoveryCodeUsed(ctx, c, u); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Reauth re-opens the window for sensitive actions: the password, and with MFA on a
// code or a recovery code, checked under the same counters as sign-in.
func (s *Service) Reauth(ctx context.Context, c Client, p *Principal, pw, code, recoveryCode string) (time.Time, error) {
	if err := requireSession(p); err != nil {
		return time.Time{}, err
	}
	st, err := s.MFAState(ctx, p.User.ID)
	if err != nil {
		return time.Time{}, err
	}
	if st.Enabled {
		if err := s.checkLimit(ctx, MFACounterKey(p.User.ID), s.cfg.MFALimit); err != nil {
			return time.Time{}, err
		}
		if (code == "") == (recoveryCode == "") {
			return time.Time{}, ErrInvalidCode
		}
	}
	if err := s.checkReauthPassword(ctx, c, p, pw); err != nil {
		return time.Time{}, err
	}
	mfaMethod := ""
	if st.Enabled {
		cred := func() (*TOTPCredential, error) { return s.totpCredential(ctx, p.User.ID) }
		f, sl, err := s.checkSecondFactor(ctx, c, p.User, cred, code, recoveryCode, "reauth")
		if err != nil {
			return time.Time{}, err
		}
		defer sl.release(ctx)
		won, err := s.spend(ctx, p.User.ID, f)
		if err != nil {
			return time.Time{}, err
		}
		if !won {
			return time.Time{}, s.secondFactorFailed(ctx, c, p.User, sl, f.method, "reauth")
		}
		if err := sl.succeed(ctx); err != nil {
			return time.Time{}, err
		}
		mfaMethod = f.method
		if f.method == MethodRecoveryCode {
			if _, err := s.recoveryCodeUsed(ctx, c, p.User); err != nil {
				return time.Time{}, err
			}
		}
	}
	now := s.now()
	if err := s.store.SetSessionReauth(ctx, p.Session.ID, now); err != nil {
		return time.Time{}, fmt.Errorf("recording re-authentication: %w", err)
	}
	p.Session.ReauthAt = now
	if mfaMethod != "" {
		// A second factor presented now is a fresh MFA proof for this session.
		method := SessionMethodFor(mfaMethod)
		if err := s.store.SetSessionMFA(ctx, p.Session.ID, method, now); err != nil {
			return time.Time{}, fmt.Errorf("recording re-authentication: %w", err)
		}
		p.Session.Method, p.Session.MFAAt = method, now
	}
	s.event(ctx, p.User.ID, c, "reauth", "success", "")
	return now.Add(s.cfg.ReauthWindow), nil
}

// RegenerateRecoveryCodes replaces every recovery code in one transaction; the new
// codes are returned only after it commits, so a crash leaves exactly one set valid.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, c Client, p *Principal) ([]string, error) {
	if err := requireSession(p); err != nil {
		return nil, err
	}
	// The state is told before the re-authentication is asked for: re-authenticating
	// only to learn that MFA is off would be a waste of the user's time.
	if st, err := s.MFAState(ctx, p.User.ID); err != nil {
		return nil, err
	} else if !st.Enabled {
		return nil, ErrMFANotEnabled
	}
	if err := s.requireRecent(p); err != nil {
		return nil, err
	}
	codes, hashes, err := s.newRecoveryCodes(p.User.ID)
	if err != nil {
		return nil, err
	}
	if err := s.store.ReplaceRecoveryCodes(ctx, p.User.ID, hashes, s.now()); errors.Is(err, ErrNotFound) {
		return nil, ErrMFANotEnabled
	} else if err != nil {
		return nil, fmt.Errorf("replacing recovery codes: %w", err)
	}
	s.event(ctx, p.User.ID, c, "recovery_codes_regenerated", "success", "")
	s.notify(p.User, "Your recovery codes were regenerated",
		"New recovery codes were generated for %s from %s. Every earlier code stopped working.", p.User.Username, c.IP)
	return codes, nil
}

// RecoveryCodeCounts returns total and remaining codes.
func (s *Service) RecoveryCodeCounts(ctx context.Context, p *Principal) (RecoveryCodeCounts, error) {
	st, err := s.MFAState(ctx, p.User.ID)
	if err != nil {
		return RecoveryCodeCounts{}, err
	}
	if !st.Enabled {
		return RecoveryCodeCounts{}, ErrMFANotEnabled
	}
	return st.Codes, nil
}

// DisableMFA ("Remove") clears every MFA registration — the TOTP secret, any pending
// setup and the recovery codes — and ends every other session, in one transaction.
// It is idempotent: with MFA already off it answers the same and changes nothing.
func (s *Service) DisableMFA(ctx context.Context, c Client, p *Principal) error {
	if err := s.requireRecent(p); err != nil {
		return err
	}
	if s.policyCovers(p.User) {
		return ErrMFARequiredByPolicy
	}
	existed, err := s.store.DisableMFA(ctx, p.User.ID, p.Session.ID)
	if err != nil {
		return fmt.Errorf("removing MFA: %w", err)
	}
	if existed {
		s.event(ctx, p.User.ID, c, "mfa_disabled", "success", "")
		s.notify(p.User, "Multiple-factor authentication is off",
			"Multiple-factor authentication was removed from %s from %s. Every other session was signed out.\n\nIf this was not you, reset your password and turn it back on.",
			p.User.Username, c.IP)
	}
	return nil
}
