// Package auth is Latchkey's domain: accounts, sessions, second factors, recovery and the
// rules that tie them together. Every rule lives here — sign-in, lockout, TOTP replay,
// recovery-code use, re-authentication — so that the JSON API, the web pages and the
// admin CLI behave the same and both databases enforce the same thing. It imports no
// storage and no HTTP: handlers parse, call one Service method and render.
//
// # Glossary
//
// "Sign-in" and "login" name the same act; a login (the noun) is what the user types
// to name their account, a username or an email.
//
//   - User: an account. UserID, SessionID, TokenID, SSHKeyID and RecoveryRequestID
//     are typed identifiers.
//   - Session: a signed-in browser or API client, stored as the SHA-256 of its token.
//   - Principal: the caller of a Service method, authenticated by a Session or an
//     AccessToken; Client is where the request came from (IP, user agent).
//   - PendingLogin: the stored state between a right password and the second factor;
//     it grants only the second-factor step.
//   - PendingSignIn: what that step reads in one query: the PendingLogin with its User,
//     TOTPCredential and, where the store can, the account's second-factor counter.
//   - SignInFinish: everything a successful sign-in step writes in one transaction.
//   - LoginResult: what a sign-in step answers (signed in, or a second factor needed).
//   - TOTPCredential: an enabled authenticator app; PendingTOTP: one being set up,
//     shown to the user as TOTPSetup; EncryptedSecret: its sealed secret.
//   - MFAState: whether a user's second factor is on, with RecoveryCodeCounts.
//   - AttemptKey, AttemptState: one failure counter (second factor per account,
//     password per account or per client IP); LimitPolicy says when it locks;
//     AttemptStep is one change of it computed inside a store's write.
//   - AccessToken: a personal access token; SSHKey: a registered recovery key.
//   - RecoveryRequest: one "lost everything" request, with RecoveryEvidence once
//     verified; PasswordReset: an emailed reset link.
//   - Event: one line of the security log; OutboxMessage: a mail not sent by SMTP.
//   - Error and Kind: the closed set of errors every surface knows how to show
//     (errors.go). ErrNotFound and ErrConflict are what stores return; the Service
//     turns them into the Errors that clients see.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey/latchkey/internal/keys"
	"github.com/latchkey/latchkey/internal/password"
)

// Config is the part of the configuration the rules need.
type Config struct {
	SiteName  string
	PublicURL string

	TOTPWindow int

	MFALimit      LimitPolicy
	PasswordLimit LimitPolicy
	IPLimit       LimitPolicy
	// SignupLimit bounds sign-ups per client address.
	SignupLimit LimitPolicy

	SessionIdle     time.Duration
	SessionMax      time.Duration
	ReauthWindow    time.Duration
	PendingLoginTTL time.Duration
	SetupTTL        time.Duration
	ResetTTL        time.Duration

	RecoveryAutoApproveAfter time.Duration

	// SecurityLogRetention is how long security-log rows are kept (0: forever).
	SecurityLogRetention time.Duration
	// OperatorEmail, when set, is told of every verified recovery request.
	OperatorEmail string
	// RequireMFA is who must have MFA ("off", "admins", "all"; "" is off) and
	// RequireMFAGrace the time a non-admin gets from the first sign-in it meets them at.
	RequireMFA      string
	RequireMFAGrace time.Duration
}

// Mailer delivers one plain-text message. The SMTP sender satisfies it; when none is
// configured the Service writes to the outbox instead.
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// Deps are the Service's collaborators, passed in explicitly.
type Deps struct {
	Store  Store
	Hasher *password.Hasher
	Keys   *keys.Keyring
	Mailer Mailer // nil: the outbox
	Logger *slog.Logger
	Clock  func() time.Time // nil: time.Now
	Rand   io.Reader        // nil: crypto/rand
	// Observe, if set, is told of every sign-in outcome (for metrics).
	Observe func(event, outcome string)
}

// Service holds every rule of Latchkey.
type Service struct {
	cfg     Config
	store   Store
	hasher  *password.Hasher
	keys    *keys.Keyring
	mailer  Mailer
	log     *slog.Logger
	clock   func() time.Time
	rand    io.Reader
	observe func(event, outcome string)

	// wa is the WebAuthn relying party, nil when public-url cannot have one; then
	// webauthnOff says why.
	wa          *webauthn.WebAuthn
	webauthnOff string

	mailWG sync.WaitGroup
	folds  eventFolder
	forgot forgotQueue
}

// New returns a Service. Zero durations in cfg take the defaults of SPEC §3.
func New(cfg Config, d Deps) *Service {
	def := func(p *time.Duration, v time.Duration) {
		if *p <= 0 {
			*p = v
		}
	}
	def(&cfg.SessionIdle, 7*24*time.Hour)
	def(&cfg.SessionMax, 30*24*time.Hour)
	def(&cfg.ReauthWindow, 10*time.Minute)
	def(&cfg.PendingLoginTTL, 5*time.Minute)
	def(&cfg.SetupTTL, 15*time.Minute)
	def(&cfg.ResetTTL, time.Hour)
	cfg.MFALimit = cfg.MFALimit.withDefaults(5, 30*time.Second, 15*time.Minute)
	cfg.PasswordLimit = cfg.PasswordLimit.withDefaults(5, 30*time.Second, 15*time.Minute)
	// Per address only failures count, sized for an office or a carrier NAT: 100 within
	// 15 minutes; the counter is forgotten 15 minutes after its last failure.
	cfg.IPLimit = cfg.IPLimit.withDefaults(100, 30*time.Second, 15*time.Minute)
	if cfg.IPLimit.ResetAfter == 0 {
		cfg.IPLimit.ResetAfter = 15 * time.Minute
	}
	cfg.SignupLimit = cfg.SignupLimit.withDefaults(10, time.Hour, time.Hour)
	if cfg.SignupLimit.ResetAfter == 0 {
		cfg.SignupLimit.ResetAfter = time.Hour
	}
	if cfg.SiteName == "" {
		cfg.SiteName = "Latchkey"
	}
	s := &Service{cfg: cfg, store: d.Store, hasher: d.Hasher, keys: d.Keys, mailer: d.Mailer,
		log: d.Logger, clock: d.Clock, rand: d.Rand, observe: d.Observe}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.observe == nil {
		s.observe = func(string, string) {}
	}
	s.wa, s.webauthnOff = newRelyingParty(cfg.SiteName, cfg.PublicURL)
	return s
}

// Config returns the effective rules configuration.
func (s *Service) Config() Config { return s.cfg }

// Store returns the store, for health checks.
func (s *Service) Store() Store { return s.store }

// now is the clock truncated to the microsecond, the precision both stores keep, so a
// value read back equals the value written.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// Client describes where a request came from, for the security log.
type Client struct {
	IP        string
	UserAgent string
}

// Principal is an authenticated caller: a session, or a personal access token.
type Principal struct {
	User    *User
	Session *Session     // nil when authenticated by a personal access token
	Token   *AccessToken // nil when authenticated by a session
	// mfa is the user's second-factor state read with the session, nil when not read
	// (a personal access token): see MFAStateOf.
	mfa *MFAState
	// policy is what require-mfa says about the account (see MFAPolicy).
	policy MFAPolicy
}

// newToken returns n random bytes as unpadded base64url and the SHA-256 that is stored.
func (s *Service) newToken(n int) (string, []byte, error) {
	b := make([]byte, n)
	for {
		if _, err := io.ReadFull(s.rand, b); err != nil {
			return "", nil, fmt.Errorf("reading randomness: %w", err)
		}
		tok := base64.RawURLEncoding.EncodeToString(b)
		// One token in 2^18 would start with the personal-access-token prefix and be
		// taken for one by Authenticate: draw again.
		if !strings.HasPrefix(tok, TokenPrefix) {
			return tok, hashToken(tok), nil
		}
	}
}

// hashToken is how every bearer secret is stored: SHA-256 is enough because the tokens
// carry 256 random bits, so there is nothing to brute-force.
func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// newEvent builds one line of the security log.
func (s *Service) newEvent(user UserID, c Client, name, outcome, detail string) *Event {
	return &Event{UserID: user, Time: s.now(), Event: name, Outcome: outcome, IP: truncate(c.IP, 64),
		UserAgent: truncate(c.UserAgent, maxUserAgent), Detail: truncate(detail, 1000)}
}

// logEvent mirrors a security-log line into the process log.
func (s *Service) logEvent(e *Event) {
	s.log.Info("security event", "user_id", int64(e.UserID), "event", e.Event, "outcome", e.Outcome, "ip", e.IP)
}

// event writes one line of the security log. A failure to write is logged, not
// returned: the log must not turn a refused sign-in into a 500 an attacker could use
// to tell cases apart. Events an anonymous client can repeat at will are limited per
// address and folded (see foldable), so a flood cannot fill the disk.
func (s *Service) event(ctx context.Context, user UserID, c Client, name, outcome, detail string) {
	e := s.newEvent(user, c, name, outcome, detail)
	write := true
	if foldable(e) {
		var due []*Event
		write, due = s.folds.admit(e)
		s.writeEvents(due)
	}
	if !write {
		// Folded: the process log is not to be flooded either.
		s.log.Debug("security event folded", "user_id", int64(e.UserID), "event", e.Event, "outcome", e.Outcome, "ip", e.IP)
		return
	}
	if err := s.store.AddEvent(context.WithoutCancel(ctx), e); err != nil {
		s.log.Error("writing security log", "event", name, "err", err)
	}
	s.logEvent(e)
}

// truncate makes client-supplied text storable: valid UTF-8 (PostgreSQL refuses
// anything else, and a refused security-log row would hide an attack) cut to at most
// n bytes on a rune boundary.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Wait blocks until every mail queued so far has been sent or stored.
func (s *Service) Wait() { s.mailWG.Wait() }
