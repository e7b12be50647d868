package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/latchkey/latchkey/internal/keys"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/latchkey/latchkey/internal/password"
)

// Sign-in outcomes of LoginResult.Status.
const (
	StatusAuthenticated = "authenticated"
	StatusMFARequired   = "mfa_required"
)

// LoginResult is the answer to a sign-in step.
type LoginResult struct {
	Status       string
	User         *User
	Session      *Session
	SessionToken keys.Secret // shown once to the client; only its hash is stored
	MFAToken     keys.Secret
	MFAExpiresIn time.Duration
	// RecoveryCodesRemaining is set after a sign-in with a recovery code.
	RecoveryCodesRemaining *int
	// Methods are the second factors the account has (with mfa_required), in the
	// order webauthn, totp, recovery_code.
	Methods []string
	// WebAuthn is the publicKey request options of the pending login's key challenge,
	// when the account has a key.
	WebAuthn json.RawMessage
}

// ValidateUsername enforces 2–39 characters of ASCII letters, digits, '-', '_' and '.'.
func ValidateUsername(u string) string {
	if len(u) < 2 || len(u) > 39 {
		return "must be 2 to 39 characters"
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return "may contain only letters, digits, '-', '_' and '.'"
		}
	}
	return ""
}

// ValidateEmail accepts one plain address (no display name), at most 254 bytes.
func ValidateEmail(e string) string {
	if e == "" || len(e) > 254 {
		return "must be an email address of at most 254 characters"
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" || !strings.Contains(e, "@") || strings.ContainsAny(e, " \r\n<>") {
		return "must be a plain email address like name@example.com"
	}
	return ""
}

func passwordProblem(pw string) string {
	if err := password.Validate(pw); err != nil {
		// The policy's messages start with "password "; the field name says that already.
		return strings.TrimPrefix(err.Error(), "password ")
	}
	return ""
}

// weakPassword refuses a new password that guessers would try early, judged with what
// they know of the account (its username and email, the site's name), with a message
// saying why.
func (s *Service) weakPassword(field, pw string, context ...string) error {
	why := password.Weakness(pw, append(context, s.cfg.SiteName)...)
	if why == "" {
		return nil
	}
	return &Error{Kind: KindInvalidInput, Code: "weak_password",
		Message: "Choose a stronger password: this one " + why + ".",
		Fields:  map[string]string{field: why}}
}

// Signup creates an account.
func (s *Service) Signup(ctx context.Context, c Client, username, email, pw string) (*User, error) {
	return s.createUser(ctx, c, username, email, pw, false)
}

var (
	errUsernameTaken = &Error{Kind: KindConflict, Code: "username_taken", Message: "That username is taken.", Fields: map[string]string{"username": "is taken"}}
	errEmailTaken    = &Error{Kind: KindConflict, Code: "email_taken", Message: "That email is already registered.", Fields: map[string]string{"email": "is already registered"}}
)

// createUser makes an account. Everything that costs no hash comes first — the input,
// the per-address limit (sign-ups only), whether the username or email is taken, the
// password's strength — so a refused sign-up costs microseconds, not an argon2id hash,
// and a flood of them cannot fill the hashing pool.
func (s *Service) createUser(ctx context.Context, c Client, username, email, pw string, admin bool) (*User, error) {
	fields := map[string]string{}
	if p := ValidateUsername(username); p != "" {
		fields["username"] = p
	}
	if p := ValidateEmail(email); p != "" {
		fields["email"] = p
	}
	if p := passwordProblem(pw); p != "" {
		fields["password"] = p
	}
	if len(fields) > 0 {
		return nil, InvalidInput(fields)
	}
	signup := addressKey(scopeSignupIP, c.IP)
	if !admin {
		if err := s.checkLimit(ctx, signup, s.cfg.SignupLimit); err != nil {
			s.observe("signup", "locked")
			return nil, err
		}
	}
	if _, err := s.store.UserByLogin(ctx, username); err == nil {
		return nil, errUsernameTaken
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("looking up username: %w", err)
	}
	if _, err := s.store.UserByEmail(ctx, email); err == nil {
		return nil, errEmailTaken
	} else if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("looking up email: %w", err)
	}
	if err := s.weakPassword("password", pw, username, email); err != nil {
		return nil, err
	}
	if !admin {
		// Counted first (a slot, given back if the hash never runs), then as a use.
		sl, err := s.acquire(ctx, signup, s.cfg.SignupLimit)
		if err != nil {
			return nil, err
		}
		defer sl.release(ctx)
		hash, err := s.hasher.Hash(ctx, pw)
		if err != nil {
			return nil, s.hashError(err)
		}
		if _, _, err := sl.fail(ctx); err != nil {
			return nil, err
		}
		return s.insertUser(ctx, c, username, email, hash, admin)
	}
	hash, err := s.hasher.Hash(ctx, pw)
	if err != nil {
		return nil, s.hashError(err)
	}
	return s.insertUser(ctx, c, username, email, hash, admin)
}

func (s *Service) insertUser(ctx context.Context, c Client, username, email, hash string, admin bool) (*User, error) {
	u := &User{Username: username, Email: email, PasswordHash: hash, IsAdmin: admin, CreatedAt: s.now()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) {
			// Taken between the check above and now.
			if ce.Field == "email" {
				return nil, errEmailTaken
			}
			return nil, errUsernameTaken
		}
		return nil, fmt.Errorf("creating user: %w", err)
	}
	s.event(ctx, u.ID, c, "signup", "success", "")
	s.verifyNewAddress(ctx, u)
	return u, nil
}

func (s *Service) hashError(err error) error {
	if errors.Is(err, password.ErrOverloaded) {
		return Overloaded(password.RetryAfter(err))
	}
	return fmt.Errorf("hashing password: %w", err)
}

// Login checks a password. With MFA on it answers mfa_required with a pending token that
// grants nothing but the second-factor step; otherwise it opens a session.
//
// Unknown user and wrong password give the same answer after the same work: a lookup,
// one counted attempt, one argon2id verification (against a dummy hash for unknown
// users) and one log write.
func (s *Service) Login(ctx context.Context, c Client, login, pw string) (*LoginResult, error) {
	if utf8.RuneCountInString(pw) > password.MaxLength {
		return nil, InvalidInput(map[string]string{"password": fmt.Sprintf("must be at most %d characters", password.MaxLength)})
	}
	login = strings.TrimSpace(login)
	if login == "" || pw == "" || len(login) > 254 {
		fields := map[string]string{}
		if login == "" || len(login) > 254 {
			fields["login"] = "enter your username or email"
		}
		if pw == "" {
			fields["password"] = "enter your password"
		}
		return nil, InvalidInput(fields)
	}
	u, err := s.store.UserByLogin(ctx, login)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("looking up user: %w", err)
	}
	key := AttemptKey{Scope: "pw-account", Key: "login:" + strings.ToLower(login)}
	var uid UserID
	if u != nil {
		uid = u.ID
		key = passwordKey(u.ID)
	}
	// Per address only failures count, after the fact: a lock refuses, but neither a
	// success nor a sign-in in flight takes anything from the address's allowance.
	ipKey := addressKey(scopeIP, c.IP)
	if err := s.checkLimit(ctx, ipKey, s.cfg.IPLimit); err != nil {
		s.event(ctx, 0, c, "login", "locked_ip", "")
		s.observe("login", "locked")
		return nil, err
	}
	// Per account the attempt is counted first: a slot, committed before the password
	// is checked, so parallel guesses never evaluate more than the limit.
	sl, err := s.acquire(ctx, key, s.cfg.PasswordLimit)
	if err != nil {
		if e := AsError(err); e != nil && e.Kind == KindRateLimited {
			s.event(ctx, uid, c, "login", "locked", "")
			s.observe("login", "locked")
		}
		return nil, err
	}
	// Overload, the client gone or a database error before the outcome is recorded:
	// the slot goes back, since none of those is a failure.
	defer sl.release(ctx)
	ok := false
	if u == nil {
		err = s.hasher.VerifyDummy(ctx, pw)
	} else {
		ok, err = s.hasher.Verify(ctx, pw, u.PasswordHash)
	}
	if err != nil {
		return nil, s.hashError(err)
	}
	if !ok {
		// The account's failure and the address's, in one write.
		now := s.now()
		if _, err := s.store.UpdateAttempts(context.WithoutCancel(ctx), []AttemptStep{
			sl.step(OpFail, nil), s.limitStep(ipKey, s.cfg.IPLimit, OpCount, now, nil)}); err != nil {
			return nil, fmt.Errorf("counting a failed sign-in: %w", err)
		}
		sl.settled = true
		s.event(ctx, uid, c, "login", "failure", "")
		s.observe("login", "failure")
		return nil, ErrInvalidCredentials
	}
	if u.Disabled {
		return nil, s.refuseDisabled(ctx, c, u, sl)
	}
	mfa, err := s.store.MFAState(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("reading MFA state: %w", err)
	}
	if mfa.Enabled {
		if err := sl.succeed(ctx); err != nil {
			return nil, err
		}
		tok, hash, err := s.newToken(32)
		if err != nil {
			return nil, err
		}
		now := s.now()
		p := &PendingLogin{TokenHash: hash, UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.PendingLoginTTL),
			IP: c.IP, UserAgent: truncate(c.UserAgent, maxUserAgent), CredEpoch: u.CredEpoch}
		if err := s.store.CreatePendingLogin(ctx, p); errors.Is(err, ErrCredentialsChanged) {
			return nil, ErrInvalidCredentials // the password changed while this one was checked
		} else if err != nil {
			return nil, fmt.Errorf("storing pending login: %w", err)
		}
		res := &LoginResult{Status: StatusMFARequired, User: u, MFAToken: keys.Secret(tok),
			MFAExpiresIn: s.cfg.PendingLoginTTL, Methods: mfa.Methods()}
		if mfa.WebAuthnKeys > 0 && s.wa != nil {
			// The key's challenge belongs to this pending login: a new /login, a new one.
			if res.WebAuthn, err = s.beginSecondFactor(ctx, u, hash); err != nil {
				return nil, err
			}
		}
		s.event(ctx, u.ID, c, "login", "mfa_required", "")
		s.observe("login", "mfa_required")
		return res, nil
	}
	sess, tok, err := s.newSession(c, u, u.CredEpoch)
	if err != nil {
		return nil, err
	}
	// The success settles the slot in the sign-in's own transaction. If that rolls back
	// (the password changed meanwhile), the deferred release gives the slot back: the
	// password was right, so it was no failure either.
	fin := &SignInFinish{Session: sess, Counters: []AttemptStep{sl.step(OpSucceed, nil)},
		Event: s.newEvent(u.ID, c, "login", "success", "")}
	if err := s.store.FinishSignIn(ctx, fin); errors.Is(err, ErrCredentialsChanged) {
		return nil, ErrInvalidCredentials
	} else if err != nil {
		return nil, fmt.Errorf("finishing sign-in: %w", err)
	}
	sl.settled = true
	s.logEvent(fin.Event)
	s.observe("login", "success")
	s.notePolicy(ctx, u)
	return &LoginResult{Status: StatusAuthenticated, User: u, Session: sess, SessionToken: keys.Secret(tok)}, nil
}

// newSession mints a session for u under the credentials epoch its factors were
// checked against; it is stored by FinishSignIn. Every sign-in step ends with a fresh
// token.
func (s *Service) newSession(c Client, u *User, epoch int64) (*Session, string, error) {
	tok, hash, err := s.newToken(32)
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	return &Session{UserID: u.ID, TokenHash: hash, CreatedAt: now, LastSeenAt: now,
		ExpiresAt: now.Add(s.cfg.SessionMax), ReauthAt: now, IP: c.IP, UserAgent: truncate(c.UserAgent, maxUserAgent),
		CredEpoch: epoch, Method: SessionPassword}, tok, nil
}

// touchEvery limits last-seen writes to one a minute per session, so a session check
// is a read, not a write, on the hot path.
const touchEvery = time.Minute

// Authenticate resolves a bearer secret — a session token or a personal access token
// (prefix "lk_") — to its principal. Expired, idle and unknown secrets are all
// ErrUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, secret string) (*Principal, error) {
	if secret == "" || len(secret) > 200 {
		return nil, ErrUnauthenticated
	}
	now := s.now()
	if strings.HasPrefix(secret, TokenPrefix) {
		return s.authenticateToken(ctx, secret, now)
	}
	sess, u, mfa, err := s.store.SessionWithUser(ctx, hashToken(secret))
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUnauthenticated
	}
	if err != nil {
		return nil, fmt.Errorf("looking up session: %w", err)
	}
	// A session opened under an older credentials epoch died with the change (password,
	// MFA, recovery) even if a racing sign-in inserted it after the change committed.
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) >= s.cfg.SessionIdle || sess.CredEpoch != u.CredEpoch {
		return nil, ErrUnauthenticated
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		if err := s.store.TouchSession(ctx, sess.ID, now); err != nil {
			return nil, fmt.Errorf("touching session: %w", err)
		}
		sess.LastSeenAt = now
	}
	mfa = normalMFA(mfa)
	return &Principal{User: u, Session: sess, mfa: &mfa, policy: s.policyFor(u, mfa)}, nil
}

// Logout ends the caller's session. A personal access token has no session to end.
func (s *Service) Logout(ctx context.Context, c Client, p *Principal) error {
	if p.Session == nil {
		return nil
	}
	if err := s.store.DeleteSession(ctx, p.User.ID, p.Session.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("ending session: %w", err)
	}
	s.event(ctx, p.User.ID, c, "logout", "success", "")
	return nil
}

// passwordHash reads the user's current password hash: the principal's User does not
// carry it (see Store.SessionWithUser), and the check must use the hash as it is now.
func (s *Service) passwordHash(ctx context.Context, id UserID) (string, error) {
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return "", fmt.Errorf("reading password hash: %w", err)
	}
	return u.PasswordHash, nil
}

// requireSession refuses personal access tokens.
func requireSession(p *Principal) error {
	if p.Session == nil {
		return ErrForbiddenForToken
	}
	return nil
}

// requireRecent enforces the re-authentication window for sensitive actions.
func (s *Service) requireRecent(p *Principal) error {
	if err := requireSession(p); err != nil {
		return err
	}
	if s.now().Sub(p.Session.ReauthAt) >= s.cfg.ReauthWindow {
		return ErrReauthRequired
	}
	return nil
}

// ReauthUntil says until when the caller may do sensitive actions (zero: not now).
func (s *Service) ReauthUntil(p *Principal) time.Time {
	if p.Session == nil {
		return time.Time{}
	}
	until := p.Session.ReauthAt.Add(s.cfg.ReauthWindow)
	if !until.After(s.now()) {
		return time.Time{}
	}
	return until
}

// Sessions lists the caller's sessions.
func (s *Service) Sessions(ctx context.Context, p *Principal) ([]Session, error) {
	list, err := s.store.ListSessions(ctx, p.User.ID)
	if err != nil {
		return nil, fmt.Errorf("listing sessions: %w", err)
	}
	now := s.now()
	live := list[:0]
	for _, x := range list {
		if now.Before(x.ExpiresAt) && now.Sub(x.LastSeenAt) < s.cfg.SessionIdle {
			live = append(live, x)
		}
	}
	return live, nil
}

// RevokeSession ends one of the caller's sessions.
func (s *Service) RevokeSession(ctx context.Context, c Client, p *Principal, id SessionID) error {
	// Ending sessions is for the account's owner at a browser; a leaked token must not
	// be able to sign the owner out.
	if err := requireSession(p); err != nil {
		return err
	}
	if err := s.store.DeleteSession(ctx, p.User.ID, id); errors.Is(err, ErrNotFound) {
		return ErrUnknownID
	} else if err != nil {
		return fmt.Errorf("revoking session: %w", err)
	}
	s.event(ctx, p.User.ID, c, "session_revoked", "success", fmt.Sprintf("session %d", id))
	return nil
}

// ChangePassword sets a new password after checking the current one, and ends every
// other session of the account.
func (s *Service) ChangePassword(ctx context.Context, c Client, p *Principal, current, next string) error {
	if err := s.requireRecent(p); err != nil {
		return err
	}
	if pp := passwordProblem(next); pp != "" {
		return InvalidInput(map[string]string{"new_password": pp})
	}
	if err := s.weakPassword("new_password", next, p.User.Username, p.User.Email); err != nil {
		return err
	}
	if utf8.RuneCountInString(current) > password.MaxLength {
		return InvalidInput(map[string]string{"current_password": "is incorrect"})
	}
	sl, err := s.acquire(ctx, passwordKey(p.User.ID), s.cfg.PasswordLimit)
	if err != nil {
		return err
	}
	defer sl.release(ctx)
	stored, err := s.passwordHash(ctx, p.User.ID)
	if err != nil {
		return err
	}
	ok, err := s.hasher.Verify(ctx, current, stored)
	if err != nil {
		return s.hashError(err)
	}
	if !ok {
		if _, _, err := sl.fail(ctx); err != nil {
			return err
		}
		s.event(ctx, p.User.ID, c, "password_change", "failure", "")
		return InvalidInput(map[string]string{"current_password": "is incorrect"})
	}
	if err := sl.succeed(ctx); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return s.hashError(err)
	}
	if err := s.store.ChangePassword(ctx, p.User.ID, hash, p.Session.ID); err != nil {
		return fmt.Errorf("changing password: %w", err)
	}
	s.event(ctx, p.User.ID, c, "password_change", "success", "")
	s.notify(p.User, "Your password was changed",
		"The password of your account %s was changed from %s.\n\nEvery other session was signed out. If this was not you, reset your password at %s/password/forgot now.",
		p.User.Username, c.IP, s.cfg.PublicURL)
	return nil
}

// ForgotPassword emails a single-use reset link (1 hour) if the address belongs to an
// account. It answers the same (nil: 202) whatever the address, and before any work
// on it: the lookup, the link, the log row and the mail all happen after the answer,
// in the forgot-password queue (forgot.go), so neither the answer nor its timing says
// whether an account exists, on either store.
func (s *Service) ForgotPassword(ctx context.Context, c Client, email string) error {
	s.forgot.enqueue(s, forgotJob{client: c, email: email})
	return nil
}

// forgotPassword is the work of one forgot-password request, after its answer. It
// writes one security-log row whatever happens (folded per address like every
// forgot-password row, see foldable).
func (s *Service) forgotPassword(ctx context.Context, c Client, email string) {
	email = strings.TrimSpace(email)
	if email == "" || len(email) > 254 {
		s.event(ctx, 0, c, "password_forgot", "invalid_email", "")
		return
	}
	u, err := s.store.UserByEmail(ctx, email)
	if err != nil {
		outcome := "unknown_email"
		if !errors.Is(err, ErrNotFound) {
			s.log.Error("forgot password: looking up email", "err", err)
			outcome = "error"
		}
		s.event(ctx, 0, c, "password_forgot", outcome, "")
		return
	}
	if err := s.sendResetLink(ctx, c, u); err != nil {
		s.log.Error("forgot password: sending the reset link", "user_id", int64(u.ID), "err", err)
		s.event(ctx, u.ID, c, "password_forgot", "error", "")
	}
}

func (s *Service) sendResetLink(ctx context.Context, c Client, u *User) error {
	// At most a few reset mails an hour per account, so the form can't be used to flood
	// someone's inbox.
	hourly := func(n int) LimitPolicy {
		return LimitPolicy{MaxFailures: n, BaseLock: time.Hour, MaxLock: time.Hour, ResetAfter: time.Hour}
	}
	if err := s.countUse(ctx, addressKey(scopeForgotIP, c.IP), hourly(forgotPerAddress)); err != nil {
		if AsError(err) != nil {
			s.event(ctx, u.ID, c, "password_forgot", "limited", "address")
			return nil
		}
		return err
	}
	if err := s.countUse(ctx, AttemptKey{Scope: scopeResetTo, Key: fmt.Sprint(int64(u.ID))}, hourly(5)); err != nil {
		if AsError(err) != nil {
			s.event(ctx, u.ID, c, "password_forgot", "limited", "")
			return nil
		}
		return err
	}
	link, err := s.createResetLink(ctx, u.ID)
	if err != nil {
		return err
	}
	s.event(ctx, u.ID, c, "password_forgot", "sent", "")
	s.notify(u, "Reset your password",
		"Someone (hopefully you) asked to reset the password of %s from %s.\n\nSet a new password within the hour:\n%s\n\nThe link works once. If you did not ask, ignore this mail; your password stays as it is. Multiple-factor authentication stays on either way.",
		u.Username, c.IP, link)
	return nil
}

func (s *Service) createResetLink(ctx context.Context, user UserID) (string, error) {
	tok, hash, err := s.newToken(32)
	if err != nil {
		return "", err
	}
	now := s.now()
	if err := s.store.CreatePasswordReset(ctx, &PasswordReset{TokenHash: hash, UserID: user, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.ResetTTL)}); err != nil {
		return "", fmt.Errorf("storing reset link: %w", err)
	}
	return s.cfg.PublicURL + "/password/reset?token=" + tok, nil
}

// ResetPassword sets a new password with an emailed link. It never signs the user in,
// ends every session, and leaves MFA as it is. With revokeCredentials (what the API
// and the page default to) every personal access token and SSH key of the account
// goes in the same transaction: whoever held the account before may have added them.
func (s *Service) ResetPassword(ctx context.Context, c Client, token, next string, revokeCredentials bool) error {
	if pp := passwordProblem(next); pp != "" {
		return InvalidInput(map[string]string{"new_password": pp})
	}
	if token == "" || len(token) > 200 {
		return ErrInvalidToken
	}
	// The account is known only once the link is spent, so the site's name is the
	// context here; the frequency lists are the same as at sign-up.
	if err := s.weakPassword("new_password", next); err != nil {
		return err
	}
	// Each attempt costs an argon2id hash before the link is known to be good, so
	// attempts are counted per client IP first: random tokens cannot fill the hashing
	// pool and starve sign-ins.
	sl, err := s.acquire(ctx, addressKey(scopeResetIP, c.IP), resetIPLimit())
	if err != nil {
		return err
	}
	defer sl.release(ctx)
	hash, err := s.hasher.Hash(ctx, next)
	if err != nil {
		return s.hashError(err)
	}
	uid, err := s.store.ResetPassword(ctx, hashToken(token), hash, s.now(), revokeCredentials)
	if errors.Is(err, ErrNotFound) {
		if _, _, err := sl.fail(ctx); err != nil {
			return err
		}
		s.event(ctx, 0, c, "password_reset", "invalid_token", "")
		return ErrInvalidToken
	}
	if err != nil {
		return fmt.Errorf("resetting password: %w", err)
	}
	if err := sl.succeed(ctx); err != nil {
		return err
	}
	detail, revoked := "", ""
	if revokeCredentials {
		detail, revoked = "personal access tokens and SSH keys revoked", " Every personal access token and SSH key was revoked."
	}
	s.event(ctx, uid, c, "password_reset", "success", detail)
	if u, err := s.store.UserByID(ctx, uid); err == nil {
		s.notify(u, "Your password was reset",
			"The password of %s was reset with an emailed link from %s. Every session was signed out.%s", u.Username, c.IP, revoked)
	}
	return nil
}

// Events returns the caller's security log, newest first.
func (s *Service) Events(ctx context.Context, p *Principal, limit int) ([]Event, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	ev, err := s.store.Events(ctx, p.User.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("reading security log: %w", err)
	}
	return ev, nil
}

// forgotPerAddress bounds the reset mails one client address can have sent an hour.
const forgotPerAddress = 20

// resetIPLimit bounds password-reset attempts per client IP.
func resetIPLimit() LimitPolicy {
	return LimitPolicy{MaxFailures: 20, BaseLock: time.Minute, MaxLock: time.Hour, ResetAfter: time.Hour}
}

// Purge deletes expired sessions, pending logins, setups, reset links and stale per-IP
// counters. Serve runs it periodically; correctness never depends on it, because every
// read checks expiry itself.
func (s *Service) Purge(ctx context.Context) (int64, error) {
	now := s.now()
	n, err := s.store.Purge(ctx, PurgeBefore{Now: now, IdleBefore: now.Add(-s.cfg.SessionIdle),
		StaleAttemptsBefore: now.Add(-max(s.cfg.IPLimit.ResetAfter, s.cfg.IPLimit.MaxLock, time.Hour)),
		AttemptScopes:       []string{scopeIP, scopeSignupIP, scopeResetIP, scopeForgotIP, scopeResetTo, scopeRecovery, scopeVerifyMail}})
	if err != nil {
		return n, fmt.Errorf("purging expired rows: %w", err)
	}
	return n, nil
}
