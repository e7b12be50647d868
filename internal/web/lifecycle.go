package web

import (
	"net/http"

	"github.com/latchkey/latchkey/internal/auth"
)

// ExportAccount downloads everything stored about the account as a JSON file: the
// API's export, which this page's session may read, saved under the site's name.
func (h *Handler) ExportAccount(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	redirect(w, r, "/api/v1/me/export?download=1")
	return nil
}

// deleteAccount deletes the account once its username is typed; the browser is
// signed out with it.
func (h *Handler) DeleteAccount(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
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
