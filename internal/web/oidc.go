package web

import (
	"net/http"
)

// Render shows one page for a collaborator outside this package (the OpenID Connect
// provider's consent, sign-out and error pages): the template name with data as
// .Data, and the form token every form on it needs.
func (h *Handler) Render(w http.ResponseWriter, r *http.Request, status int, name, title string, data any) {
	pg := h.newPage(w, r, title)
	pg.Data = data
	h.render(w, status, name, pg)
}

// RenderError shows the error page with message, for answers that must never be a
// redirect (an unknown client, an unregistered redirect URI).
func (h *Handler) RenderError(w http.ResponseWriter, r *http.Request, status int, title, message string) {
	pg := h.newPage(w, r, title)
	pg.Error = message
	h.render(w, status, "error", pg)
}

// ValidForm parses a posted form and checks its form token, as every form handler of
// this package does before acting.
func (h *Handler) ValidForm(r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		return false
	}
	return h.validCSRF(r)
}
