package oidc

import (
	"net/http"

	"github.com/latchkey/latchkey/internal/auth"
)

// Apps serves /settings/apps: every application with the user's consent or a live
// token, each with Revoke.
func (p *Provider) Apps(w http.ResponseWriter, r *http.Request, pr *auth.Principal) error {
	apps, err := p.store.ListOIDCApps(r.Context(), pr.User.ID, p.now())
	if err != nil {
		return err
	}
	p.pages.Render(w, r, http.StatusOK, "oidc_apps", "Apps", apps)
	return nil
}

// RevokeApp ends an application's access: its consent and every token it holds for
// the user. Revoking only takes access away, so it needs no re-authentication.
func (p *Provider) RevokeApp(w http.ResponseWriter, r *http.Request, pr *auth.Principal) error {
	client := r.PathValue("client")
	if err := p.store.RevokeOIDCApp(r.Context(), pr.User.ID, client, p.now()); err != nil {
		return err
	}
	p.logEvent(r.Context(), pr.User.ID, "oidc_app_revoked", "success", "client "+truncate(client, 64))
	http.Redirect(w, r, "/settings/apps", http.StatusSeeOther)
	return nil
}
