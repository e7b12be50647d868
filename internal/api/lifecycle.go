package api

import (
	"net/http"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// DeleteMeRequest is the body of DELETE /api/v1/me.
type DeleteMeRequest struct {
	Username string `json:"username"`
}

// DeleteMe deletes the caller's account.
func (h *Handler) DeleteMe(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req DeleteMeRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := h.svc.DeleteAccount(r.Context(), client(r), p, req.Username); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ExportJSON is the answer of GET /api/v1/me/export: everything stored about the
// account, and never a secret (no password hash, token, token hash, TOTP secret or
// recovery code).
type ExportJSON struct {
	ExportedAt time.Time `json:"exported_at"`
	User       struct {
		ID            int64     `json:"id"`
		Username      string    `json:"username"`
		Email         *string   `json:"email"`
		EmailVerified bool      `json:"email_verified"`
		PendingEmail  *string   `json:"pending_email"`
		IsAdmin       bool      `json:"is_admin"`
		CreatedAt     time.Time `json:"created_at"`
	} `json:"user"`
	MFA struct {
		Enabled       bool       `json:"enabled"`
		TOTPAddedAt   *time.Time `json:"totp_added_at"`
		RecoveryCodes struct {
			Total     int `json:"total"`
			Remaining int `json:"remaining"`
		} `json:"recovery_codes"`
	} `json:"mfa"`
	Sessions []sessionJSON  `json:"sessions"`
	Tokens   []tokenExport  `json:"personal_access_tokens"`
	SSHKeys  []sshKeyExport `json:"ssh_keys"`
	Events   []eventJSON    `json:"security_log"`
}

type tokenExport struct {
	ID         int64      `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
}

type sshKeyExport struct {
	ID          int64      `json:"id"`
	Title       string     `json:"title"`
	PublicKey   string     `json:"public_key"`
	Fingerprint string     `json:"fingerprint"`
	CreatedAt   time.Time  `json:"created_at"`
	LastUsedAt  *time.Time `json:"last_used_at"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// toExport renders an account export.
func toExport(x *auth.AccountExport, now time.Time, current *auth.Session) ExportJSON {
	var j ExportJSON
	j.ExportedAt = now
	j.User.ID, j.User.Username, j.User.Email = int64(x.User.ID), x.User.Username, optString(x.User.Email)
	j.User.EmailVerified, j.User.PendingEmail = x.User.EmailVerified, optString(x.PendingEmail)
	j.User.IsAdmin, j.User.CreatedAt = x.User.IsAdmin, x.User.CreatedAt
	j.MFA.Enabled, j.MFA.TOTPAddedAt = x.MFAEnabled, optTime(x.TOTPAddedAt)
	j.MFA.RecoveryCodes.Total, j.MFA.RecoveryCodes.Remaining = x.RecoveryCodes.Total, x.RecoveryCodes.Remaining
	j.Sessions = make([]sessionJSON, 0, len(x.Sessions))
	for _, s := range x.Sessions {
		j.Sessions = append(j.Sessions, sessionJSON{ID: int64(s.ID), CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt,
			ExpiresAt: s.ExpiresAt, IP: s.IP, UserAgent: s.UserAgent, Current: current != nil && current.ID == s.ID})
	}
	j.Tokens = make([]tokenExport, 0, len(x.Tokens))
	for _, t := range x.Tokens {
		j.Tokens = append(j.Tokens, tokenExport{ID: int64(t.ID), Name: t.Name, CreatedAt: t.CreatedAt,
			ExpiresAt: optTime(t.ExpiresAt), LastUsedAt: optTime(t.LastUsedAt)})
	}
	j.SSHKeys = make([]sshKeyExport, 0, len(x.SSHKeys))
	for _, k := range x.SSHKeys {
		j.SSHKeys = append(j.SSHKeys, sshKeyExport{ID: int64(k.ID), Title: k.Title, PublicKey: k.PublicKey,
			Fingerprint: k.Fingerprint, CreatedAt: k.CreatedAt, LastUsedAt: optTime(k.LastUsedAt)})
	}
	j.Events = make([]eventJSON, 0, len(x.Events))
	for _, e := range x.Events {
		j.Events = append(j.Events, eventJSON{Time: e.Time, Event: e.Event, IP: e.IP, UserAgent: e.UserAgent, Outcome: e.Outcome, Detail: e.Detail})
	}
	return j
}

// Export returns everything stored about the caller.
func (h *Handler) Export(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	x, err := h.svc.Export(r.Context(), client(r), p)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Query().Get("download") == "1" {
		// The account page's "Download account data" saves the same answer as a file.
		w.Header().Set("Content-Disposition", `attachment; filename="`+h.svc.ExportFileName()+`"`)
	}
	writeJSON(w, http.StatusOK, toExport(x, h.svc.Now(), p.Session))
	return nil
}
