package web

import (
	"encoding/json"
	"net/http"

	"github.com/latchkey/latchkey/internal/api"
	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/recovery"
)

// exportAccount downloads everything stored about the account as a JSON file.
func (h *Handler) exportAccount(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	x, err := h.svc.Export(r.Context(), client(r), p)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(api.ToExport(x, h.svc.Now(), p.Session), "", "  ")
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+recovery.Slug(h.opts.SiteName)+`-account.json"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(append(b, '\n'))
	return nil
}

// deleteAccount deletes the account once its username is typed; the browser is
// signed out with it.
func (h *Handler) deleteAccount(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := h.svc.DeleteAccount(r.Context(), client(r), p, r.PostFormValue("username")); err != nil {
		pending, perr := h.svc.PendingEmailChange(r.Context(), p)
		if perr != nil {
			return perr
		}
		pg := h.newPage(w, r, "Account")
		pg.Data = accountData{Email: p.User.Email, Verified: p.User.EmailVerified, PendingEmail: pending}
		return h.formOrPage(w, err, "account", pg, "username")
	}
	h.clearSession(w)
	redirect(w, r, "/login?done=account_deleted")
	return nil
}
