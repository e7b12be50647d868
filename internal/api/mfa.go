package api

import (
	"net/http"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/qrcode"
)

// SetupTOTP starts enrolment.
func (h *Handler) SetupTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	st, err := h.svc.SetupTOTP(r.Context(), client(r), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"secret": st.SecretBase32(), "otpauth_uri": st.URI, "issuer": st.Issuer, "account": st.Account,
		"algorithm": st.Algorithm, "digits": st.Digits, "period": st.Period,
		"qr_png_url": "/api/v1/mfa/totp/setup/qr.png", "qr_svg_url": "/api/v1/mfa/totp/setup/qr.svg",
		"expires_at": st.ExpiresAt,
	})
	return nil
}

// QRCode renders the pending setup's otpauth URI as a PNG or SVG QR code.
func (h *Handler) QRCode(format string) func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		st, err := h.svc.PendingSetup(r.Context(), p)
		if err != nil {
			return err
		}
		var body []byte
		ctype := "image/png"
		if format == "svg" {
			var svg string
			svg, err = qrcode.SVG(st.URI)
			body, ctype = []byte(svg), "image/svg+xml"
		} else {
			body, err = qrcode.PNG(st.URI)
		}
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", ctype)
		// The image encodes the secret: never cache it.
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(body)
		return nil
	}
}

// ConfirmRequest is the body of POST /api/v1/mfa/totp/confirm.
type ConfirmRequest struct {
	Code string `json:"code"`
}

// ConfirmTOTP finishes enrolment and returns the recovery codes once.
func (h *Handler) ConfirmTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req ConfirmRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	codes, err := h.svc.ConfirmTOTP(r.Context(), client(r), p, req.Code)
	if err != nil {
		return err
	}
	body := map[string]any{"enabled": true}
	// The codes come only when this app turned MFA on (not when it joined a key).
	if codes != nil {
		body["recovery_codes"] = codes
		body["recovery_codes_filename"] = h.svc.RecoveryCodesFileName()
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// RecoveryCodes reports counts, never the codes.
func (h *Handler) RecoveryCodes(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	n, err := h.svc.RecoveryCodeCounts(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"total": n.Total, "remaining": n.Remaining})
	return nil
}

// RegenerateRecoveryCodes replaces the codes.
func (h *Handler) RegenerateRecoveryCodes(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	codes, err := h.svc.RegenerateRecoveryCodes(r.Context(), client(r), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"recovery_codes": codes, "recovery_codes_filename": h.svc.RecoveryCodesFileName()})
	return nil
}

// DisableMFA removes every MFA registration.
func (h *Handler) DisableMFA(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := h.svc.DisableMFA(r.Context(), client(r), p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"enabled": false})
	return nil
}
