package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// webauthnKeyJSON is a security key or passkey as the API shows it (SPEC §8).
type webauthnKeyJSON struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	Passkey    bool       `json:"passkey"`
	BackedUp   bool       `json:"backed_up"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

func toWebAuthnKey(k *auth.WebAuthnKey) webauthnKeyJSON {
	out := webauthnKeyJSON{ID: int64(k.ID), Name: k.Name, Passkey: k.Passkey, BackedUp: k.BackedUp, CreatedAt: k.CreatedAt}
	if !k.LastUsedAt.IsZero() {
		t := k.LastUsedAt
		out.LastUsedAt = &t
	}
	return out
}

func writeBegin(w http.ResponseWriter, b *auth.WebAuthnBegin) {
	writeJSON(w, http.StatusOK, map[string]any{"ceremony_id": b.CeremonyID, "publicKey": b.PublicKey})
}

// mfaSummary is the {enabled, methods} object of the answers that change second factors.
func (h *Handler) mfaSummary(r *http.Request, p *auth.Principal) (map[string]any, error) {
	st, err := h.svc.MFAState(r.Context(), p.User.ID)
	if err != nil {
		return nil, err
	}
	return map[string]any{"enabled": st.Enabled, "methods": st.Methods()}, nil
}

// BeginWebAuthnRegistration starts adding a security key or passkey.
func (h *Handler) BeginWebAuthnRegistration(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	b, err := h.svc.BeginWebAuthnRegistration(r.Context(), client(r), p)
	if err != nil {
		return err
	}
	writeBegin(w, b)
	return nil
}

// WebAuthnRegisterRequest is the body of POST /api/v1/mfa/webauthn/register/finish.
type WebAuthnRegisterRequest struct {
	CeremonyID string          `json:"ceremony_id"`
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
}

// FinishWebAuthnRegistration stores the new key; the recovery codes come once, when
// it turned MFA on.
func (h *Handler) FinishWebAuthnRegistration(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req WebAuthnRegisterRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := h.svc.FinishWebAuthnRegistration(r.Context(), client(r), p, req.CeremonyID, req.Name, req.Credential)
	if err != nil {
		return err
	}
	mfa, err := h.mfaSummary(r, p)
	if err != nil {
		return err
	}
	body := map[string]any{"key": toWebAuthnKey(res.Key), "mfa": mfa}
	if res.RecoveryCodes != nil {
		body["recovery_codes"] = res.RecoveryCodes
		body["recovery_codes_filename"] = h.svc.RecoveryCodesFileName()
	}
	writeJSON(w, http.StatusCreated, body)
	return nil
}

// WebAuthnKeys lists the caller's keys.
func (h *Handler) WebAuthnKeys(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ks, err := h.svc.WebAuthnKeys(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]webauthnKeyJSON, 0, len(ks))
	for i := range ks {
		out = append(out, toWebAuthnKey(&ks[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
	return nil
}

// RenameRequest is the body of PATCH /api/v1/mfa/webauthn/{id}.
type RenameRequest struct {
	Name string `json:"name"`
}

// RenameWebAuthnKey renames one key.
func (h *Handler) RenameWebAuthnKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	var req RenameRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	k, err := h.svc.RenameWebAuthnKey(r.Context(), client(r), p, auth.WebAuthnKeyID(id), req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"key": toWebAuthnKey(k)})
	return nil
}

// DeleteWebAuthnKey removes one key; the last second factor turns MFA off.
func (h *Handler) DeleteWebAuthnKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := h.svc.RemoveWebAuthnKey(r.Context(), client(r), p, auth.WebAuthnKeyID(id)); err != nil {
		return err
	}
	mfa, err := h.mfaSummary(r, p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"mfa": mfa})
	return nil
}

// BeginPasskeyLogin starts a passwordless sign-in.
func (h *Handler) BeginPasskeyLogin(w http.ResponseWriter, r *http.Request) error {
	b, err := h.svc.BeginPasskeyLogin(r.Context(), client(r))
	if err != nil {
		return err
	}
	writeBegin(w, b)
	return nil
}

// PasskeyLoginRequest is the body of POST /api/v1/login/passkey/finish.
type PasskeyLoginRequest struct {
	CeremonyID string          `json:"ceremony_id"`
	Credential json.RawMessage `json:"credential"`
}

// FinishPasskeyLogin signs in with a passkey alone.
func (h *Handler) FinishPasskeyLogin(w http.ResponseWriter, r *http.Request) error {
	var req PasskeyLoginRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := h.svc.FinishPasskeyLogin(r.Context(), client(r), req.CeremonyID, req.Credential)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": res.Status, "session_token": res.SessionToken.Reveal(),
		"user": toUser(res.User), "method": auth.SessionPasskey})
	return nil
}

// ReauthWebAuthnRequest is the body of POST /api/v1/reauth/webauthn.
type ReauthWebAuthnRequest struct {
	WithPassword bool `json:"with_password"`
}

// BeginWebAuthnReauth starts a re-authentication with a key.
func (h *Handler) BeginWebAuthnReauth(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req ReauthWebAuthnRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	b, err := h.svc.BeginWebAuthnReauth(r.Context(), client(r), p, req.WithPassword)
	if err != nil {
		return err
	}
	writeBegin(w, b)
	return nil
}
