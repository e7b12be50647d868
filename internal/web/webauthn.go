package web

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/latchkey/latchkey/internal/auth"
)

//go:embed static/webauthn.js
var webauthnScript []byte

// scriptPath carries a hash of the script, as cssPath does the stylesheet's.
var scriptPath = func() string {
	sum := sha256.Sum256(webauthnScript)
	return "/static/webauthn.js?v=" + hex.EncodeToString(sum[:6])
}()

// scriptPages are the pages that run WebAuthn: they load the script file and their
// Content-Security-Policy allows it and its calls to our API (SPEC §8). Every other
// page keeps the policy that forbids script altogether.
var scriptPages = map[string]bool{"authentication": true, "login": true, "login_mfa": true, "reauth": true}

const scriptCSP = "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (h *Handler) Script(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(webauthnScript)
}

// credential is the PublicKeyCredential.toJSON() the script put in the form.
func credential(r *http.Request) json.RawMessage {
	return json.RawMessage(r.PostFormValue("credential"))
}

// addKey finishes "Add security key or passkey". The first second factor shows the
// recovery codes, once; otherwise the settings page says the key was added.
func (h *Handler) AddKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name := strings.TrimSpace(r.PostFormValue("name"))
	res, err := h.svc.FinishWebAuthnRegistration(r.Context(), client(r), p, r.PostFormValue("ceremony_id"), name, credential(r))
	if err != nil {
		e := auth.AsError(err)
		if e == nil || e.Kind == auth.KindReauthRequired || e.Kind == auth.KindForbidden {
			return err
		}
		return h.renderAuthentication(w, r, p, http.StatusBadRequest, func(pg *page) {
			pg.Values["name"] = name
			if e.Fields["name"] != "" {
				pg.Fields["name"] = e.Fields["name"]
			}
			pg.Error = e.Message
		})
	}
	if res.RecoveryCodes != nil {
		h.showCodes(w, r, res.RecoveryCodes, false)
		return nil
	}
	redirect(w, r, "/settings/authentication?done=key_added")
	return nil
}

func keyID(r *http.Request) (auth.WebAuthnKeyID, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return auth.WebAuthnKeyID(id), nil
}

func (h *Handler) RenameKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := keyID(r)
	if err != nil {
		return err
	}
	if _, err := h.svc.RenameWebAuthnKey(r.Context(), client(r), p, id, r.PostFormValue("name")); err != nil {
		e := auth.AsError(err)
		if e == nil || e.Kind != auth.KindInvalidInput {
			return err
		}
		return h.renderAuthentication(w, r, p, http.StatusBadRequest, func(pg *page) {
			pg.Error = "A key's name must be 1 to 64 characters. Nothing was changed."
		})
	}
	redirect(w, r, "/settings/authentication?done=key_renamed")
	return nil
}

func (h *Handler) RemoveKey(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := keyID(r)
	if err != nil {
		return err
	}
	if !confirmed(r) {
		return h.renderAuthentication(w, r, p, http.StatusBadRequest, func(pg *page) {
			pg.Fields["confirm_key_"+r.PathValue("id")] = "Tick the box to confirm the removal."
		})
	}
	if err := h.svc.RemoveWebAuthnKey(r.Context(), client(r), p, id); err != nil {
		return err
	}
	redirect(w, r, "/settings/authentication?done=key_removed")
	return nil
}

// PasskeyLogin finishes "Sign in with a passkey".
func (h *Handler) PasskeyLogin(w http.ResponseWriter, r *http.Request) error {
	res, err := h.svc.FinishPasskeyLogin(r.Context(), client(r), r.PostFormValue("ceremony_id"), credential(r))
	if err != nil {
		return h.formOrPage(w, err, "login", h.newPage(w, r, "Sign in"), "")
	}
	h.setSession(w, res.SessionToken.Reveal())
	redirect(w, r, afterSignInAs(res.User, r.PostFormValue("next"), h.returnTo(r.PostFormValue("rd"))))
	return nil
}

// keyRow is one security key as the settings page lists it.
type keyRow struct {
	auth.WebAuthnKey
	Last bool // the account's last second factor: removing it turns MFA off
}
