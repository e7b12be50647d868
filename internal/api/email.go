package api

import (
	"net/http"

	"github.com/latchkey/latchkey/internal/auth"
)

// EmailVerifyRequest is the body of POST /api/v1/email/verify.
type EmailVerifyRequest struct {
	Token string `json:"token"`
}

// VerifyEmail follows an emailed verification link.
func (h *Handler) VerifyEmail(w http.ResponseWriter, r *http.Request) error {
	var req EmailVerifyRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	u, err := h.svc.VerifyEmail(r.Context(), client(r), req.Token)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"email": u.Email, "email_verified": u.EmailVerified})
	return nil
}

// ResendVerification mails a new verification link.
func (h *Handler) ResendVerification(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := h.svc.ResendVerification(r.Context(), client(r), p); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "A new verification link is on its way."})
	return nil
}

// EmailChangeRequest is the body of POST /api/v1/email.
type EmailChangeRequest struct {
	Email string `json:"email"`
}

// ChangeEmail mails a verification link to a new address, which becomes the
// account's when the link is followed.
func (h *Handler) ChangeEmail(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req EmailChangeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := h.svc.ChangeEmail(r.Context(), client(r), p, req.Email); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"status": "A verification link is on its way to the new address; the change takes effect when it is followed.",
		"pending_email": req.Email})
	return nil
}
