package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/latchkey/latchkey/internal/keys"
)

// WebAuthn method name (SPEC §8), and the session methods a key gives.
const (
	MethodWebAuthn = "webauthn"

	SessionPasswordWebAuthn = "password+webauthn"
	// SessionPasskey is a passwordless sign-in with a passkey. It counts as MFA: the key
	// is something the user has, the user verification (PIN or biometric, checked by
	// the authenticator) something they know or are, and the origin binding makes it
	// unphishable (SPEC §8).
	SessionPasskey = "passkey"
)

// Limits of SPEC §8.
const (
	// MaxWebAuthnKeys is how many security keys and passkeys one account may hold.
	MaxWebAuthnKeys = 20
	// CeremonyTTL is how long a begun WebAuthn ceremony may be finished.
	CeremonyTTL = 5 * time.Minute
	// webauthnHandleLen is the size of an account's WebAuthn user handle.
	webauthnHandleLen = 64
)

// Ceremony kinds: what a challenge may be used for. A ceremony of one kind never
// satisfies another.
const (
	CeremonyRegister    = "register"
	CeremonySecond      = "second_factor" // bound to a pending login
	CeremonyPasskey     = "passkey"       // passwordless sign-in, bound to nothing
	CeremonyReauth      = "reauth"        // bound to a session; with a password, UV preferred
	CeremonyReauthAlone = "reauth_uv"     // bound to a session; the key alone, UV required
)

// WebAuthnKeyID identifies a registered security key or passkey.
type WebAuthnKeyID int64

// WebAuthnKey is a registered security key or passkey.
type WebAuthnKey struct {
	ID           WebAuthnKeyID
	UserID       UserID
	CredentialID []byte // unique across every account
	Name         string
	Record       []byte // the library's credential record as JSON: public key, flags, transports
	SignCount    int64
	Passkey      bool // discoverable and user-verified at registration: signs in alone
	BackedUp     bool // synced (backup state set at registration)
	CreatedAt    time.Time
	LastUsedAt   time.Time // zero: never used
}

// Ceremony is a begun WebAuthn ceremony. Only the SHA-256 of the id the client holds
// is stored. Binding is what it belongs to: the session id for register and reauth,
// the pending login's token hash for a second factor, nothing for a passkey sign-in.
type Ceremony struct {
	IDHash    []byte
	Kind      string
	UserID    UserID // 0 for a passkey sign-in
	Binding   []byte
	Data      []byte // ceremonyData as JSON: the library's session data and the options sent
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time
}

// ceremonyData is what a ceremony keeps between begin and finish.
type ceremonyData struct {
	Session webauthn.SessionData `json:"session"`
	Options json.RawMessage      `json:"options"` // the publicKey sent to the browser
}

// Errors of WebAuthn (SPEC §8).
var (
	ErrWebAuthnUnavailable = E(KindConflict, "webauthn_unavailable", "Security keys and passkeys are not available on this server: its public URL has no domain name.")
	ErrTooManyKeys         = E(KindConflict, "too_many_keys", "An account can hold at most 20 security keys and passkeys. Remove one first.")
	ErrDuplicateKey        = E(KindConflict, "duplicate_key", "That security key or passkey is already registered.")
	ErrInvalidCredential   = E(KindInvalidInput, "invalid_credential", "The security key's answer could not be verified. Try again.")
	ErrNoPendingCeremony   = E(KindNotFound, "no_pending_ceremony", "Start again: the security key request has expired or was already used.")
	ErrInvalidAssertion    = E(KindInvalidCredentials, "invalid_assertion", "The security key or passkey could not be verified.")
	// ErrLimitReached is returned by stores when a per-account limit would be exceeded.
	ErrLimitReached = errors.New("limit reached")
)

// newRelyingParty configures the WebAuthn library from public-url: the RP ID is its
// host and the only accepted origin is exactly its origin. It returns a reason (and
// no relying party) when WebAuthn cannot work there: browsers refuse IP-address RP IDs.
func newRelyingParty(siteName, publicURL string) (*webauthn.WebAuthn, string) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" {
		return nil, "public-url is not an absolute URL"
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil {
		return nil, fmt.Sprintf("public-url's host %s is an IP address, and browsers accept only a domain name as the WebAuthn relying party ID (use http://localhost:8080 locally)", host)
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:                  host,
		RPDisplayName:         siteName,
		RPOrigins:             []string{u.Scheme + "://" + u.Host},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, "WebAuthn configuration: " + err.Error()
	}
	return wa, ""
}

// WebAuthnUnavailable says why WebAuthn is off ("" when it is on): serve logs it.
func (s *Service) WebAuthnUnavailable() string { return s.webauthnOff }

// RPID is the WebAuthn relying party ID ("" when WebAuthn is off). Keys are bound to it:
// changing public-url's host orphans every key.
func (s *Service) RPID() string {
	if s.wa == nil {
		return ""
	}
	return s.wa.Config.RPID
}

func (s *Service) requireWebAuthn() error {
	if s.wa == nil {
		return ErrWebAuthnUnavailable
	}
	return nil
}

// waUser is an account as the library sees it.
type waUser struct {
	handle []byte
	name   string
	creds  []webauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                         { return u.handle }
func (u *waUser) WebAuthnName() string                       { return u.name }
func (u *waUser) WebAuthnDisplayName() string                { return u.name }
func (u *waUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// credentialOf decodes a stored key into the library's record, with the sign count of
// its own column (the one the conditional update keeps).
func credentialOf(k *WebAuthnKey) (webauthn.Credential, error) {
	var c webauthn.Credential
	if err := json.Unmarshal(k.Record, &c); err != nil {
		return c, fmt.Errorf("decoding WebAuthn credential %d: %w", k.ID, err)
	}
	c.Authenticator.SignCount = uint32(k.SignCount)
	return c, nil
}

// webauthnUser reads the account's handle (creating it on first use) and keys.
func (s *Service) webauthnUser(ctx context.Context, u *User) (*waUser, []WebAuthnKey, error) {
	fresh := make([]byte, webauthnHandleLen)
	if _, err := io.ReadFull(s.rand, fresh); err != nil {
		return nil, nil, fmt.Errorf("reading randomness: %w", err)
	}
	handle, err := s.store.WebAuthnHandle(ctx, u.ID, fresh)
	if err != nil {
		return nil, nil, fmt.Errorf("reading WebAuthn user handle: %w", err)
	}
	ks, err := s.store.WebAuthnKeys(ctx, u.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("reading WebAuthn keys: %w", err)
	}
	wu := &waUser{handle: handle, name: u.Username}
	for i := range ks {
		c, err := credentialOf(&ks[i])
		if err != nil {
			return nil, nil, err
		}
		wu.creds = append(wu.creds, c)
	}
	return wu, ks, nil
}

// WebAuthnBegin is the answer of every begin call: the ceremony id and the standard
// WebAuthn JSON options for navigator.credentials.
type WebAuthnBegin struct {
	CeremonyID string
	PublicKey  json.RawMessage
}

// startCeremony stores a begun ceremony and returns its id.
func (s *Service) startCeremony(ctx context.Context, kind string, user UserID, binding []byte,
	sd *webauthn.SessionData, options any, idHash []byte) (*WebAuthnBegin, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, fmt.Errorf("encoding WebAuthn options: %w", err)
	}
	// Expiry is ours, judged by the Service's clock; the library's would use the wall
	// clock.
	sd.Expires = time.Time{}
	data, err := json.Marshal(ceremonyData{Session: *sd, Options: opts})
	if err != nil {
		return nil, fmt.Errorf("encoding WebAuthn ceremony: %w", err)
	}
	id := ""
	if idHash == nil {
		if id, idHash, err = s.newToken(32); err != nil {
			return nil, err
		}
	}
	now := s.now()
	c := &Ceremony{IDHash: idHash, Kind: kind, UserID: user, Binding: binding, Data: data,
		CreatedAt: now, ExpiresAt: now.Add(CeremonyTTL)}
	if err := s.store.CreateCeremony(ctx, c); err != nil {
		return nil, fmt.Errorf("storing WebAuthn ceremony: %w", err)
	}
	return &WebAuthnBegin{CeremonyID: id, PublicKey: opts}, nil
}

// openCeremony reads a ceremony and checks that it is of this kind, bound to this
// account and binding, unused and unexpired. Using it up is a later conditional write.
func (s *Service) openCeremony(ctx context.Context, idHash []byte, kind string, user UserID, binding []byte) (*Ceremony, *ceremonyData, error) {
	c, err := s.store.Ceremony(ctx, idHash)
	if errors.Is(err, ErrNotFound) {
		return nil, nil, ErrNoPendingCeremony
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading WebAuthn ceremony: %w", err)
	}
	if c.Kind != kind || c.UserID != user || !bytes.Equal(c.Binding, binding) ||
		!c.UsedAt.IsZero() || !s.now().Before(c.ExpiresAt) {
		return nil, nil, ErrNoPendingCeremony
	}
	var d ceremonyData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return nil, nil, fmt.Errorf("decoding WebAuthn ceremony: %w", err)
	}
	return c, &d, nil
}

func sessionBinding(id SessionID) []byte {
	return []byte("session:" + strconv.FormatInt(int64(id), 10))
}

// secondFactorCeremony is the id hash of a pending login's second-factor ceremony: one
// per pending login, so a new /login means a new challenge and the ceremony needs no id
// of its own beyond the mfa_token.
func secondFactorCeremony(pendingHash []byte) []byte {
	return hashToken("webauthn-second-factor:" + string(pendingHash))
}

func descriptors(ks []WebAuthnKey, creds []webauthn.Credential) []protocol.CredentialDescriptor {
	out := make([]protocol.CredentialDescriptor, 0, len(ks))
	for _, c := range creds {
		out = append(out, c.Descriptor())
	}
	return out
}

// BeginWebAuthnRegistration starts adding a security key or passkey. Like adding an app
// it needs a recent sign-in and a browser session (a passkey signs in on its own, so a
// token must never add one).
func (s *Service) BeginWebAuthnRegistration(ctx context.Context, c Client, p *Principal) (*WebAuthnBegin, error) {
	if err := s.requireWebAuthn(); err != nil {
		return nil, err
	}
	if err := s.requireRecent(p); err != nil {
		return nil, err
	}
	wu, ks, err := s.webauthnUser(ctx, p.User)
	if err != nil {
		return nil, err
	}
	if len(ks) >= MaxWebAuthnKeys {
		return nil, ErrTooManyKeys
	}
	creation, sd, err := s.wa.BeginRegistration(wu,
		webauthn.WithExclusions(descriptors(ks, wu.creds)),
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationPreferred}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithCredentialParameters([]protocol.CredentialParameter{
			{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgEdDSA},
			{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgES256},
			{Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.AlgRS256},
		}),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()),
	)
	if err != nil {
		return nil, fmt.Errorf("beginning WebAuthn registration: %w", err)
	}
	return s.startCeremony(ctx, CeremonyRegister, p.User.ID, sessionBinding(p.Session.ID), sd, creation.Response, nil)
}

// ValidateKeyName checks a key's name: 1 to 64 characters after trimming.
func ValidateKeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n < 1 || n > 64 || !utf8.ValidString(name) {
		return "", InvalidInput(map[string]string{"name": "must be 1 to 64 characters"})
	}
	return name, nil
}

// WebAuthnRegistered is the result of adding a key: the key, and the recovery codes
// when this key turned MFA on (shown once).
type WebAuthnRegistered struct {
	Key           *WebAuthnKey
	RecoveryCodes []string
}

// FinishWebAuthnRegistration verifies the authenticator's answer and stores the key.
// The first second factor turns MFA on: in the same transaction 16 recovery codes are
// stored and every other session ends; the codes are returned only after it commits.
func (s *Service) FinishWebAuthnRegistration(ctx context.Context, c Client, p *Principal, ceremonyID, name string, credential json.RawMessage) (*WebAuthnRegistered, error) {
	if err := s.requireWebAuthn(); err != nil {
		return nil, err
	}
	if err := s.requireRecent(p); err != nil {
		return nil, err
	}
	name, err := ValidateKeyName(name)
	if err != nil {
		return nil, err
	}
	if ceremonyID == "" || len(ceremonyID) > 200 {
		return nil, ErrNoPendingCeremony
	}
	idHash := hashToken(ceremonyID)
	_, d, err := s.openCeremony(ctx, idHash, CeremonyRegister, p.User.ID, sessionBinding(p.Session.ID))
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(credential)
	if err != nil {
		s.event(ctx, p.User.ID, c, "webauthn_key_added", "failure", "unparsable credential")
		return nil, ErrInvalidCredential
	}
	wu, _, err := s.webauthnUser(ctx, p.User)
	if err != nil {
		return nil, err
	}
	cred, err := s.wa.CreateCredential(wu, d.Session, parsed)
	if err != nil {
		s.log.Info("WebAuthn registration refused", "user_id", int64(p.User.ID), "err", err)
		s.event(ctx, p.User.ID, c, "webauthn_key_added", "failure", "verification failed")
		return nil, ErrInvalidCredential
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return nil, fmt.Errorf("encoding WebAuthn credential: %w", err)
	}
	won, err := s.store.UseCeremony(ctx, idHash, s.now())
	if err != nil {
		return nil, fmt.Errorf("using WebAuthn ceremony: %w", err)
	}
	if !won {
		return nil, ErrNoPendingCeremony
	}
	// A passkey can sign in alone: the authenticator keeps it (discoverable, as the
	// credProps extension reports) and verified the user when it was made.
	discoverable := cred.Extensions.RK != nil && *cred.Extensions.RK
	now := s.now()
	k := &WebAuthnKey{UserID: p.User.ID, CredentialID: cred.ID, Name: name, Record: record,
		SignCount: int64(cred.Authenticator.SignCount), Passkey: discoverable && cred.Flags.UserVerified,
		BackedUp: cred.Flags.BackupState, CreatedAt: now}
	codes, hashes, err := s.newRecoveryCodes(p.User.ID)
	if err != nil {
		return nil, err
	}
	turnedOn, err := s.store.AddWebAuthnKey(ctx, k, hashes, p.Session.ID, MaxWebAuthnKeys)
	switch {
	case errors.Is(err, ErrLimitReached):
		return nil, ErrTooManyKeys
	case errors.Is(err, ErrConflict):
		s.event(ctx, p.User.ID, c, "webauthn_key_added", "failure", "duplicate key")
		return nil, ErrDuplicateKey
	case err != nil:
		return nil, fmt.Errorf("storing WebAuthn key: %w", err)
	}
	res := &WebAuthnRegistered{Key: k}
	s.event(ctx, p.User.ID, c, "webauthn_key_added", "success", k.Name)
	s.notify(p.User, "A security key was added",
		"The security key or passkey %q was added to %s from %s.\n\nIf this was not you, remove it at %s/settings/authentication and change your password.",
		k.Name, p.User.Username, c.IP, s.cfg.PublicURL)
	if turnedOn {
		res.RecoveryCodes = codes
		// The key just answered a fresh challenge in this session: a second factor proved.
		if err := s.store.SetSessionMFA(ctx, p.Session.ID, SessionPasswordWebAuthn, now); err != nil {
			s.log.Warn("recording the session's second factor", "user_id", int64(p.User.ID), "err", err)
		} else {
			p.Session.Method, p.Session.MFAAt = SessionPasswordWebAuthn, now
		}
		s.event(ctx, p.User.ID, c, "mfa_enabled", "success", MethodWebAuthn)
		s.notify(p.User, "Multiple-factor authentication is on",
			"Multiple-factor authentication was turned on for %s from %s with a security key. Every other session was signed out.\n\nKeep your recovery codes somewhere safe: they are the way back in if you lose your keys.",
			p.User.Username, c.IP)
	}
	return res, nil
}

// WebAuthnKeys lists the caller's keys, oldest first.
func (s *Service) WebAuthnKeys(ctx context.Context, p *Principal) ([]WebAuthnKey, error) {
	ks, err := s.store.WebAuthnKeys(ctx, p.User.ID)
	if err != nil {
		return nil, fmt.Errorf("listing WebAuthn keys: %w", err)
	}
	return ks, nil
}

// RenameWebAuthnKey renames one of the caller's keys.
func (s *Service) RenameWebAuthnKey(ctx context.Context, c Client, p *Principal, id WebAuthnKeyID, name string) (*WebAuthnKey, error) {
	name, err := ValidateKeyName(name)
	if err != nil {
		return nil, err
	}
	k, err := s.store.RenameWebAuthnKey(ctx, p.User.ID, id, name)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUnknownID
	}
	if err != nil {
		return nil, fmt.Errorf("renaming WebAuthn key: %w", err)
	}
	s.event(ctx, p.User.ID, c, "webauthn_key_renamed", "success", name)
	s.notify(p.User, "A security key was renamed",
		"A security key or passkey of %s was renamed to %q from %s.", p.User.Username, name, c.IP)
	return k, nil
}

// RemoveWebAuthnKey removes one of the caller's keys. Removing the last second factor
// turns MFA off: the recovery codes go and every other session ends, in the same
// transaction. It needs a recent sign-in, like every change of second factors.
func (s *Service) RemoveWebAuthnKey(ctx context.Context, c Client, p *Principal, id WebAuthnKeyID) error {
	if err := s.requireRecent(p); err != nil {
		return err
	}
	ks, err := s.store.WebAuthnKeys(ctx, p.User.ID)
	if err != nil {
		return fmt.Errorf("listing WebAuthn keys: %w", err)
	}
	name := ""
	for _, k := range ks {
		if k.ID == id {
			name = k.Name
		}
	}
	if s.policyCovers(p.User) && name != "" && len(ks) == 1 {
		if st, err := s.store.MFAState(ctx, p.User.ID); err != nil {
			return fmt.Errorf("reading MFA state: %w", err)
		} else if !st.TOTP {
			return ErrMFARequiredByPolicy
		}
	}
	turnedOff, err := s.store.DeleteWebAuthnKey(ctx, p.User.ID, id, p.Session.ID)
	if errors.Is(err, ErrNotFound) {
		return ErrUnknownID
	}
	if err != nil {
		return fmt.Errorf("removing WebAuthn key: %w", err)
	}
	s.event(ctx, p.User.ID, c, "webauthn_key_removed", "success", name)
	s.notify(p.User, "A security key was removed",
		"The security key or passkey %q was removed from %s from %s.", name, p.User.Username, c.IP)
	if turnedOff {
		s.event(ctx, p.User.ID, c, "mfa_disabled", "success", "last second factor removed")
		s.notify(p.User, "Multiple-factor authentication is off",
			"The last second factor of %s was removed from %s, so multiple-factor authentication is off and the recovery codes no longer work. Every other session was signed out.\n\nIf this was not you, reset your password and turn it back on.",
			p.User.Username, c.IP)
	}
	return nil
}

// beginSecondFactor starts the pending login's second-factor ceremony (the challenge
// /login hands out with mfa_required): allowCredentials are the account's keys.
func (s *Service) beginSecondFactor(ctx context.Context, u *User, pendingHash []byte) (json.RawMessage, error) {
	wu, ks, err := s.webauthnUser(ctx, u)
	if err != nil {
		return nil, err
	}
	assertion, sd, err := s.wa.BeginLogin(wu, webauthn.WithUserVerification(protocol.VerificationPreferred),
		webauthn.WithAllowedCredentials(descriptors(ks, wu.creds)))
	if err != nil {
		return nil, fmt.Errorf("beginning WebAuthn second factor: %w", err)
	}
	b, err := s.startCeremony(ctx, CeremonySecond, u.ID, pendingHash, sd, assertion.Response, secondFactorCeremony(pendingHash))
	if err != nil {
		return nil, err
	}
	return b.PublicKey, nil
}

// SecondFactorOptions returns the WebAuthn options of a pending login (for the page
// that asks for the second factor), or nil when the account has no key.
func (s *Service) SecondFactorOptions(ctx context.Context, mfaToken string) (json.RawMessage, error) {
	if s.wa == nil || mfaToken == "" || len(mfaToken) > 200 {
		return nil, nil
	}
	c, err := s.store.Ceremony(ctx, secondFactorCeremony(hashToken(mfaToken)))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading WebAuthn ceremony: %w", err)
	}
	var d ceremonyData
	if err := json.Unmarshal(c.Data, &d); err != nil {
		return nil, fmt.Errorf("decoding WebAuthn ceremony: %w", err)
	}
	return d.Options, nil
}

// assertionCheck is a verified assertion not yet spent: the key and its new count.
type assertionCheck struct {
	key   *WebAuthnKey
	count int64
}

// verifyAssertion checks an assertion against the ceremony's session data and the
// account's keys (the library does WebAuthn L3 §7.2: type, challenge, origin,
// crossOrigin, rpIdHash, UP, UV when required, signature), then the sign count. It
// spends nothing. regression is true when the count went backwards.
func (s *Service) verifyAssertion(ctx context.Context, u *User, sd webauthn.SessionData, credential json.RawMessage) (*assertionCheck, bool, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return nil, false, nil
	}
	wu, ks, err := s.webauthnUser(ctx, u)
	if err != nil {
		return nil, false, err
	}
	var key *WebAuthnKey
	for i := range ks {
		if bytes.Equal(ks[i].CredentialID, parsed.RawID) {
			key = &ks[i]
		}
	}
	if key == nil {
		return nil, false, nil // not a key of this account
	}
	if _, err := s.wa.ValidateLogin(wu, sd, parsed); err != nil {
		s.log.Info("WebAuthn assertion refused", "user_id", int64(u.ID), "err", err)
		return nil, false, nil
	}
	got := int64(parsed.Response.AuthenticatorData.Counter)
	// WebAuthn L3 §7.2 step 21: a counter that does not move forward means a cloned or
	// replayed authenticator. Synced passkeys send 0 every time, and 0 against 0 passes.
	if (got != 0 || key.SignCount != 0) && got <= key.SignCount {
		return &assertionCheck{key: key, count: got}, true, nil
	}
	return &assertionCheck{key: key, count: got}, false, nil
}

// spendAssertion uses the ceremony up and moves the key's counter and last use, each a
// conditional write: of any number of racing finishes, one wins.
func (s *Service) spendAssertion(ctx context.Context, idHash []byte, a *assertionCheck) (bool, error) {
	won, err := s.store.UseCeremony(ctx, idHash, s.now())
	if err != nil || !won {
		return false, err
	}
	return s.store.UseWebAuthnKey(ctx, a.key.ID, a.key.SignCount, a.count, s.now())
}

// counterRegressed logs and mails a counter that went backwards.
func (s *Service) counterRegressed(ctx context.Context, c Client, u *User, a *assertionCheck) {
	s.event(ctx, u.ID, c, "webauthn_counter_regression", "failure",
		fmt.Sprintf("%s: stored %d, received %d", a.key.Name, a.key.SignCount, a.count))
	s.notify(u, "A security key may have been copied",
		"The security key or passkey %q of %s answered with a signature counter that went backwards (from %s). That happens when a key was cloned. The sign-in was refused.\n\nIf you did not just use this key, remove it at %s/settings/authentication and change your password.",
		a.key.Name, u.Username, c.IP, s.cfg.PublicURL)
}

// checkWebAuthnFactor takes one second-factor slot first (its own committed write,
// shared with TOTP and recovery codes), then checks the assertion and spends it. A
// wrong or replayed assertion settles the slot as a failure; on success the slot is
// returned for the caller to settle with the sign-in or re-authentication it opens.
func (s *Service) checkWebAuthnFactor(ctx context.Context, c Client, u *User,
	idHash []byte, sd webauthn.SessionData, credential json.RawMessage, purpose string) (*slot, error) {
	sl, err := s.acquire(ctx, MFACounterKey(u.ID), s.cfg.MFALimit)
	if err != nil {
		if e := AsError(err); e != nil && e.Kind == KindRateLimited {
			s.event(ctx, u.ID, c, purpose, "locked", "")
			s.observe(purpose, "locked")
		}
		return nil, err
	}
	fail := func() (*slot, error) {
		if err := s.secondFactorFailed(ctx, c, u, sl, MethodWebAuthn, purpose); !errors.Is(err, ErrInvalidCode) {
			return nil, err
		}
		return nil, ErrInvalidAssertion
	}
	a, regressed, err := s.verifyAssertion(ctx, u, sd, credential)
	if err != nil {
		sl.release(ctx)
		return nil, err
	}
	if a == nil {
		return fail()
	}
	if regressed {
		s.counterRegressed(ctx, c, u, a)
		return fail()
	}
	won, err := s.spendAssertion(ctx, idHash, a)
	if err != nil {
		sl.release(ctx)
		return nil, fmt.Errorf("spending WebAuthn assertion: %w", err)
	}
	if !won {
		return fail()
	}
	return sl, nil
}

// LoginWebAuthn is the second sign-in step with a security key: the assertion answers
// the challenge /login handed out for this pending login.
func (s *Service) LoginWebAuthn(ctx context.Context, c Client, mfaToken string, credential json.RawMessage) (*LoginResult, error) {
	if err := s.requireWebAuthn(); err != nil {
		return nil, err
	}
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
	if !s.now().Before(pend.ExpiresAt) || pend.CredEpoch != u.CredEpoch {
		return nil, ErrInvalidMFAToken
	}
	idHash := secondFactorCeremony(hash)
	_, d, err := s.openCeremony(ctx, idHash, CeremonySecond, u.ID, hash)
	if errors.Is(err, ErrNoPendingCeremony) {
		// The account has no key (no ceremony was begun), or it was used: a wrong
		// assertion all the same, and counted as one.
		d = &ceremonyData{Session: webauthn.SessionData{Challenge: "-"}}
	} else if err != nil {
		return nil, err
	}
	sl, err := s.checkWebAuthnFactor(ctx, c, u, idHash, d.Session, credential, "login_mfa")
	if err != nil {
		return nil, err
	}
	defer sl.release(ctx)
	sess, tok, err := s.newSession(c, u, pend.CredEpoch)
	if err != nil {
		return nil, err
	}
	sess.Method, sess.MFAAt = SessionPasswordWebAuthn, sess.CreatedAt
	fin := &SignInFinish{Session: sess, PendingHash: hash, Counters: []AttemptStep{sl.step(OpSucceed, nil)},
		Event: s.newEvent(u.ID, c, "login_mfa", "success", MethodWebAuthn)}
	switch err := s.store.FinishSignIn(ctx, fin); {
	case errors.Is(err, ErrPendingGone), errors.Is(err, ErrCredentialsChanged):
		return nil, ErrInvalidMFAToken
	case err != nil:
		return nil, fmt.Errorf("finishing sign-in: %w", err)
	}
	sl.settled = true
	s.logEvent(fin.Event)
	s.observe("login_mfa", "success")
	s.cancelRecovery(ctx, c, u, RecoveryMatch{Open: true}, "the owner signed in with a second factor")
	return &LoginResult{Status: StatusAuthenticated, User: u, Session: sess, SessionToken: keys.Secret(tok)}, nil
}

// BeginPasskeyLogin starts a passwordless sign-in: no account is named, so
// allowCredentials is empty and the authenticator offers its passkeys for this site;
// user verification is required because the key is then both factors.
func (s *Service) BeginPasskeyLogin(ctx context.Context, c Client) (*WebAuthnBegin, error) {
	if err := s.requireWebAuthn(); err != nil {
		return nil, err
	}
	// A client already locked for wrong passwords gets no challenge either.
	if err := s.checkLimit(ctx, addressKey(scopeIP, c.IP), s.cfg.IPLimit); err != nil {
		return nil, err
	}
	assertion, sd, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, fmt.Errorf("beginning passkey sign-in: %w", err)
	}
	// SPEC §8 shows allowCredentials as an empty list; the library leaves it out.
	raw, err := json.Marshal(assertion.Response)
	if err != nil {
		return nil, fmt.Errorf("encoding passkey options: %w", err)
	}
	var opts map[string]any
	if err := json.Unmarshal(raw, &opts); err != nil {
		return nil, fmt.Errorf("encoding passkey options: %w", err)
	}
	opts["allowCredentials"] = []any{}
	return s.startCeremony(ctx, CeremonyPasskey, 0, []byte{}, sd, opts, nil)
}

// FinishPasskeyLogin signs in with a passkey alone. A wrong assertion counts like a
// wrong password: per client IP always, and per account when the credential names one.
// The session counts as MFA.
func (s *Service) FinishPasskeyLogin(ctx context.Context, c Client, ceremonyID string, credential json.RawMessage) (*LoginResult, error) {
	if err := s.requireWebAuthn(); err != nil {
		return nil, err
	}
	var k *WebAuthnKey
	var u *User
	parsed, perr := protocol.ParseCredentialRequestResponseBytes(credential)
	if perr == nil {
		key, err := s.store.WebAuthnKeyByCredentialID(ctx, parsed.RawID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("looking up WebAuthn key: %w", err)
		}
		if key != nil {
			if u, err = s.store.UserByID(ctx, key.UserID); err != nil && !errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("looking up user: %w", err)
			}
			if u != nil {
				k = key
			}
		}
	}
	// As for a password: the address is refused while locked and counts failures only;
	// the account, when the credential names one, takes a slot first (count first).
	ipK := addressKey(scopeIP, c.IP)
	var uid UserID
	if k != nil {
		uid = u.ID
	}
	if err := s.checkLimit(ctx, ipK, s.cfg.IPLimit); err != nil {
		s.event(ctx, 0, c, "login_passkey", "locked_ip", "")
		s.observe("login_passkey", "locked")
		return nil, err
	}
	var sl *slot
	if k != nil {
		var err error
		if sl, err = s.acquire(ctx, passwordKey(u.ID), s.cfg.PasswordLimit); err != nil {
			if e := AsError(err); e != nil && e.Kind == KindRateLimited {
				s.event(ctx, uid, c, "login_passkey", "locked", "")
				s.observe("login_passkey", "locked")
			}
			return nil, err
		}
		defer sl.release(ctx)
	}
	fail := func(detail string) error {
		steps := []AttemptStep{s.limitStep(ipK, s.cfg.IPLimit, OpCount, s.now(), nil)}
		if sl != nil {
			steps = append(steps, sl.step(OpFail, nil))
		}
		if _, err := s.store.UpdateAttempts(context.WithoutCancel(ctx), steps); err != nil {
			return fmt.Errorf("counting a failed passkey sign-in: %w", err)
		}
		if sl != nil {
			sl.settled = true
		}
		s.event(ctx, uid, c, "login_passkey", "failure", detail)
		s.observe("login_passkey", "failure")
		return ErrInvalidAssertion
	}
	if perr != nil || k == nil {
		return nil, fail("unknown credential")
	}
	if ceremonyID == "" || len(ceremonyID) > 200 {
		return nil, fail("no ceremony")
	}
	idHash := hashToken(ceremonyID)
	_, d, err := s.openCeremony(ctx, idHash, CeremonyPasskey, 0, []byte{})
	if errors.Is(err, ErrNoPendingCeremony) {
		return nil, fail("no pending ceremony")
	} else if err != nil {
		return nil, err
	}
	// The user handle must name the same account as the credential.
	owner, err := s.store.UserByWebAuthnHandle(ctx, parsed.Response.UserHandle)
	if errors.Is(err, ErrNotFound) || (err == nil && owner != u.ID) {
		return nil, fail("user handle does not match the credential")
	} else if err != nil {
		return nil, fmt.Errorf("looking up WebAuthn user handle: %w", err)
	}
	// A discoverable ceremony names no user when it begins; now the handle does, and
	// the library checks the assertion against that user's keys.
	d.Session.UserID = parsed.Response.UserHandle
	a, regressed, err := s.verifyAssertion(ctx, u, d.Session, credential)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fail("verification failed")
	}
	if regressed {
		s.counterRegressed(ctx, c, u, a)
		return nil, fail("counter regression")
	}
	won, err := s.spendAssertion(ctx, idHash, a)
	if err != nil {
		return nil, fmt.Errorf("spending WebAuthn assertion: %w", err)
	}
	if !won {
		return nil, fail("ceremony already used")
	}
	sess, tok, err := s.newSession(c, u, u.CredEpoch)
	if err != nil {
		return nil, err
	}
	sess.Method, sess.MFAAt = SessionPasskey, sess.CreatedAt
	fin := &SignInFinish{Session: sess, Counters: []AttemptStep{sl.step(OpSucceed, nil)},
		Event: s.newEvent(u.ID, c, "login_passkey", "success", a.key.Name)}
	if err := s.store.FinishSignIn(ctx, fin); errors.Is(err, ErrCredentialsChanged) {
		return nil, ErrInvalidAssertion
	} else if err != nil {
		return nil, fmt.Errorf("finishing sign-in: %w", err)
	}
	sl.settled = true
	s.logEvent(fin.Event)
	s.observe("login_passkey", "success")
	return &LoginResult{Status: StatusAuthenticated, User: u, Session: sess, SessionToken: keys.Secret(tok)}, nil
}

// BeginWebAuthnReauth starts a re-authentication with a key: alone (user verification
// required: the key is then both factors) or after a password (preferred).
func (s *Service) BeginWebAuthnReauth(ctx context.Context, c Client, p *Principal, withPassword bool) (*WebAuthnBegin, error) {
	if err := s.requireWebAuthn(); err != nil {
		return nil, err
	}
	if err := requireSession(p); err != nil {
		return nil, err
	}
	wu, ks, err := s.webauthnUser(ctx, p.User)
	if err != nil {
		return nil, err
	}
	if len(ks) == 0 {
		return nil, E(KindConflict, "no_webauthn_keys", "This account has no security key or passkey.")
	}
	kind, uv := CeremonyReauthAlone, protocol.VerificationRequired
	if withPassword {
		kind, uv = CeremonyReauth, protocol.VerificationPreferred
	}
	assertion, sd, err := s.wa.BeginLogin(wu, webauthn.WithUserVerification(uv),
		webauthn.WithAllowedCredentials(descriptors(ks, wu.creds)))
	if err != nil {
		return nil, fmt.Errorf("beginning WebAuthn re-authentication: %w", err)
	}
	return s.startCeremony(ctx, kind, p.User.ID, sessionBinding(p.Session.ID), sd, assertion.Response, nil)
}

// ReauthWebAuthn re-opens the window for sensitive actions with a key: alone, when the
// ceremony was begun without a password (user verification required), or after the
// password. The assertion counts in the second-factor counter like a code.
func (s *Service) ReauthWebAuthn(ctx context.Context, c Client, p *Principal, pw, ceremonyID string, credential json.RawMessage) (time.Time, error) {
	if err := s.requireWebAuthn(); err != nil {
		return time.Time{}, err
	}
	if err := requireSession(p); err != nil {
		return time.Time{}, err
	}
	if err := s.checkLimit(ctx, MFACounterKey(p.User.ID), s.cfg.MFALimit); err != nil {
		return time.Time{}, err
	}
	kind := CeremonyReauthAlone
	if pw != "" {
		kind = CeremonyReauth
		if err := s.checkReauthPassword(ctx, c, p, pw); err != nil {
			return time.Time{}, err
		}
	}
	if ceremonyID == "" || len(ceremonyID) > 200 {
		return time.Time{}, ErrNoPendingCeremony
	}
	idHash := hashToken(ceremonyID)
	_, d, err := s.openCeremony(ctx, idHash, kind, p.User.ID, sessionBinding(p.Session.ID))
	if err != nil {
		return time.Time{}, err
	}
	sl, err := s.checkWebAuthnFactor(ctx, c, p.User, idHash, d.Session, credential, "reauth")
	if err != nil {
		return time.Time{}, err
	}
	defer sl.release(ctx)
	if err := sl.succeed(ctx); err != nil {
		return time.Time{}, err
	}
	now := s.now()
	if err := s.store.SetSessionReauth(ctx, p.Session.ID, now); err != nil {
		return time.Time{}, fmt.Errorf("recording re-authentication: %w", err)
	}
	method := SessionPasswordWebAuthn
	if pw == "" {
		method = SessionPasskey
	}
	if err := s.store.SetSessionMFA(ctx, p.Session.ID, method, now); err != nil {
		return time.Time{}, fmt.Errorf("recording re-authentication: %w", err)
	}
	p.Session.ReauthAt, p.Session.Method, p.Session.MFAAt = now, method, now
	s.event(ctx, p.User.ID, c, "reauth", "success", MethodWebAuthn)
	return now.Add(s.cfg.ReauthWindow), nil
}

// checkReauthPassword checks the password of a re-authentication under the account's
// password counter: a slot first (count first), settled by the outcome, given back
// when the check never ran.
func (s *Service) checkReauthPassword(ctx context.Context, c Client, p *Principal, pw string) error {
	if len(pw) > 4*128 {
		return ErrInvalidCredentials
	}
	sl, err := s.acquire(ctx, passwordKey(p.User.ID), s.cfg.PasswordLimit)
	if err != nil {
		return err
	}
	defer sl.release(ctx)
	hash, err := s.passwordHash(ctx, p.User.ID)
	if err != nil {
		return err
	}
	ok, err := s.hasher.Verify(ctx, pw, hash)
	if err != nil {
		return s.hashError(err)
	}
	if !ok {
		if _, _, err := sl.fail(ctx); err != nil {
			return err
		}
		s.event(ctx, p.User.ID, c, "reauth", "failure", "password")
		return ErrInvalidCredentials
	}
	return sl.succeed(ctx)
}
