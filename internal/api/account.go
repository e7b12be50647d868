package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

type userJSON struct {
	ID            int64     `json:"id"`
	Username      string    `json:"username"`
	Email         *string   `json:"email"` // null when another account verified the address first
	EmailVerified bool      `json:"email_verified"`
	CreatedAt     time.Time `json:"created_at"`
}

func toUser(u *auth.User) userJSON {
	j := userJSON{ID: int64(u.ID), Username: u.Username, EmailVerified: u.EmailVerified, CreatedAt: u.CreatedAt}
	if u.Email != "" {
		j.Email = &u.Email
	}
	return j
}

// SignupRequest is the body of POST /api/v1/signup.
type SignupRequest struct {
	Username string `json:"username"`
	Email    string `json:"email"`
	Password string `json:"password"`
}

// Signup creates an account.
func (h *Handler) Signup(w http.ResponseWriter, r *http.Request) error {
	var req SignupRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := h.svc.Signup(r.Context(), client(r), req.Username, req.Email, req.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]any{"user": toUser(u)})
	return nil
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

// Login is the password step.
func (h *Handler) Login(w http.ResponseWriter, r *http.Request) error {
	var req LoginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := h.svc.Login(r.Context(), client(r), req.Login, req.Password)
	if err != nil {
		return err
	}
	writeLogin(w, res)
	return nil
}

func writeLogin(w http.ResponseWriter, res *auth.LoginResult) {
	if res.Status == auth.StatusMFARequired {
		body := map[string]any{
			"status": res.Status, "mfa_token": res.MFAToken.Reveal(),
			"methods":    res.Methods,
			"expires_in": int(res.MFAExpiresIn / time.Second),
		}
		if res.WebAuthn != nil {
			body["webauthn"] = map[string]any{"publicKey": res.WebAuthn}
		}
		writeJSON(w, http.StatusOK, body)
		return
	}
	body := map[string]any{"status": res.Status, "session_token": res.SessionToken.Reveal(), "user": toUser(res.User)}
	if res.User.Email == "" {
		// Another account verified this account's address first: ask for a new one.
		body["email_required"] = true
	}
	if res.RecoveryCodesRemaining != nil {
		body["recovery_codes_remaining"] = *res.RecoveryCodesRemaining
	}
	writeJSON(w, http.StatusOK, body)
}

// LoginMFARequest is the body of POST /api/v1/login/mfa.
type LoginMFARequest struct {
	MFAToken     string `json:"mfa_token"`
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
	// WebAuthn is a security key's assertion: what PublicKeyCredential.toJSON() gives.
	WebAuthn json.RawMessage `json:"webauthn"`
}

// LoginMFA is the second-factor step.
func (h *Handler) LoginMFA(w http.ResponseWriter, r *http.Request) error {
	var req LoginMFARequest
	if err := decode(r, &req); err != nil {
		return err
	}
	var res *auth.LoginResult
	var err error
	if len(req.WebAuthn) > 0 && string(req.WebAuthn) != "null" {
		if req.Code != "" || req.RecoveryCode != "" {
			return auth.InvalidInput(map[string]string{"webauthn": "send one of code, recovery_code or webauthn"})
		}
		res, err = h.svc.LoginWebAuthn(r.Context(), client(r), req.MFAToken, req.WebAuthn)
	} else {
		res, err = h.svc.LoginMFA(r.Context(), client(r), req.MFAToken, req.Code, req.RecoveryCode)
	}
	if err != nil {
		return err
	}
	writeLogin(w, res)
	return nil
}

// Logout ends the session.
func (h *Handler) Logout(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := h.svc.Logout(r.Context(), client(r), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// meJSON is the answer of GET /api/v1/me. Typed rather than a map: it is the hottest
// response, and encoding/json caches a struct's encoder.
type meJSON struct {
	User    userJSON       `json:"user"`
	MFA     mfaJSON        `json:"mfa"`
	Session *meSessionJSON `json:"session,omitempty"`
}

// meSessionJSON says how the caller's session was signed in.
type meSessionJSON struct {
	Method string     `json:"method"`
	MFAAt  *time.Time `json:"mfa_at"`
}

type mfaJSON struct {
	Enabled                bool     `json:"enabled"`
	Methods                []string `json:"methods"`
	RecoveryCodesRemaining *int     `json:"recovery_codes_remaining"` // null while MFA is off
	RecoveryCodesLow       bool     `json:"recovery_codes_low,omitempty"`
	TOTPApps               int      `json:"totp_apps"`
	WebAuthnKeys           int      `json:"webauthn_keys"`
	// Required says the require-mfa policy covers the account; SetupDeadline is when
	// it must have a second factor (null when it has one or no deadline is set).
	Required      bool       `json:"required"`
	SetupDeadline *time.Time `json:"setup_deadline"`
	Warning       string     `json:"warning,omitempty"`
}

// Me describes the caller.
func (h *Handler) Me(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	st, err := h.svc.MFAStateOf(r.Context(), p)
	if err != nil {
		return err
	}
	mfa := mfaJSON{Enabled: st.Enabled, Methods: st.Methods(), WebAuthnKeys: st.WebAuthnKeys}
	if st.Enabled {
		remaining := st.Codes.Remaining
		mfa.RecoveryCodesRemaining = &remaining
	}
	if st.TOTP {
		mfa.TOTPApps = 1
	}
	if pol := p.MFAPolicy(); pol.Required {
		mfa.Required = true
		if !pol.Deadline.IsZero() {
			d := pol.Deadline
			mfa.SetupDeadline = &d
		}
	}
	if st.Low() {
		mfa.RecoveryCodesLow = true
		mfa.Warning = "Three or fewer recovery codes remain: regenerate them."
	}
	me := meJSON{User: toUser(p.User), MFA: mfa}
	if p.Session != nil {
		me.Session = &meSessionJSON{Method: p.Session.Method}
		if !p.Session.MFAAt.IsZero() {
			at := p.Session.MFAAt
			me.Session.MFAAt = &at
		}
	}
	writeJSON(w, http.StatusOK, me)
	return nil
}

// ReauthRequest is the body of POST /api/v1/reauth.
type ReauthRequest struct {
	Password     string `json:"password"`
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
	// CeremonyID and WebAuthn re-authenticate with a key: alone, or after Password.
	CeremonyID string          `json:"ceremony_id"`
	WebAuthn   json.RawMessage `json:"webauthn"`
}

// Reauth re-opens the window for sensitive actions.
func (h *Handler) Reauth(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req ReauthRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	var until time.Time
	var err error
	if len(req.WebAuthn) > 0 && string(req.WebAuthn) != "null" {
		if req.Code != "" || req.RecoveryCode != "" {
			return auth.InvalidInput(map[string]string{"webauthn": "send one of code, recovery_code or webauthn"})
		}
		until, err = h.svc.ReauthWebAuthn(r.Context(), client(r), p, req.Password, req.CeremonyID, req.WebAuthn)
	} else {
		until, err = h.svc.Reauth(r.Context(), client(r), p, req.Password, req.Code, req.RecoveryCode)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"reauthenticated_until": until})
	return nil
}

// PasswordChangeRequest is the body of POST /api/v1/password.
type PasswordChangeRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// ChangePassword sets a new password.
func (h *Handler) ChangePassword(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req PasswordChangeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := h.svc.ChangePassword(r.Context(), client(r), p, req.CurrentPassword, req.NewPassword); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ForgotRequest is the body of POST /api/v1/password/forgot.
type ForgotRequest struct {
	Email string `json:"email"`
}

// ForgotPassword always answers 202, whether or not the address is known.
func (h *Handler) ForgotPassword(w http.ResponseWriter, r *http.Request) error {
	var req ForgotRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := h.svc.ForgotPassword(r.Context(), client(r), req.Email); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "If that address belongs to an account, a reset link is on its way."})
	return nil
}

// ResetRequest is the body of POST /api/v1/password/reset.
type ResetRequest struct {
	Token       string `json:"token"`
	NewPassword string `json:"new_password"`
	// RevokeCredentials revokes every personal access token and SSH key of the
	// account with the reset; absent means true.
	RevokeCredentials *bool `json:"revoke_credentials"`
}

// ResetPassword sets a password with an emailed link.
func (h *Handler) ResetPassword(w http.ResponseWriter, r *http.Request) error {
	var req ResetRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	revoke := req.RevokeCredentials == nil || *req.RevokeCredentials
	if err := h.svc.ResetPassword(r.Context(), client(r), req.Token, req.NewPassword, revoke); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type sessionJSON struct {
	ID         int64     `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	IP         string    `json:"ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

// Sessions lists the caller's sessions.
func (h *Handler) Sessions(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	list, err := h.svc.Sessions(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, 0, len(list))
	for _, s := range list {
		out = append(out, sessionJSON{ID: int64(s.ID), CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, ExpiresAt: s.ExpiresAt,
			IP: s.IP, UserAgent: s.UserAgent, Current: p.Session != nil && p.Session.ID == s.ID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

// RevokeSession ends one session.
func (h *Handler) RevokeSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := h.svc.RevokeSession(r.Context(), client(r), p, auth.SessionID(id)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type eventJSON struct {
	Time      time.Time `json:"time"`
	Event     string    `json:"event"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	Outcome   string    `json:"outcome"`
	Detail    string    `json:"detail,omitempty"`
}

// SecurityLog returns the caller's security log, newest first.
func (h *Handler) SecurityLog(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ev, err := h.svc.Events(r.Context(), p, 100)
	if err != nil {
		return err
	}
	out := make([]eventJSON, 0, len(ev))
	for _, e := range ev {
		out = append(out, eventJSON{Time: e.Time, Event: e.Event, IP: e.IP, UserAgent: e.UserAgent, Outcome: e.Outcome, Detail: e.Detail})
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": out})
	return nil
}
