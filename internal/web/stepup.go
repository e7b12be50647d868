package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkey/latchkey/internal/auth"
)

// returnTo returns rd if a finished sign-in, step-up or set-up may go there, else "":
// a page of this site (other than the sign-in and sign-up pages, which would loop), or
// an absolute URL on public-url's host or under cookie-domain (authz.ReturnURLs). A
// refused rd is ignored, never an error: the user still signs in and lands on their
// settings, and an attacker's link leads nowhere else.
func (h *Handler) returnTo(rd string) string {
	if rd == "" {
		return ""
	}
	if strings.HasPrefix(rd, "/") {
		if p := localPath(rd); p != "" && !strings.HasPrefix(p, "/login") && !strings.HasPrefix(p, "/signup") {
			return p
		}
		return ""
	}
	if h.returns == nil {
		return ""
	}
	if _, err := h.returns.Check(rd); err != nil {
		return ""
	}
	return rd
}

// stepUpData is the step-up page: ask for a code when the account has a second
// factor, otherwise offer to set one up.
type stepUpData struct {
	MFA bool
}

// stepUpForm is /step-up?rd=URL: an application behind forward auth (or an OpenID
// Connect client) needs a session that passed MFA, and this one has not, or too long
// ago. Without a session the user signs in first and comes back here.
func (h *Handler) stepUpForm(w http.ResponseWriter, r *http.Request) error {
	p := auth.PrincipalFrom(r.Context())
	if p == nil || p.Session == nil {
		redirect(w, r, "/login?rd="+url.QueryEscape(r.URL.RequestURI()))
		return nil
	}
	rd := h.returnTo(r.URL.Query().Get("rd"))
	if h.svc.MFAFresh(p, h.opts.MFAMaxAge) {
		redirect(w, r, afterSignIn("", rd))
		return nil
	}
	return h.renderStepUp(w, r, p, http.StatusOK, nil)
}

func (h *Handler) renderStepUp(w http.ResponseWriter, r *http.Request, p *auth.Principal, status int, fill func(*page)) error {
	st, err := h.svc.MFAStatusOf(r.Context(), p)
	if err != nil {
		return err
	}
	title := "Confirm with your second factor"
	if !st.Enabled {
		title = "Multiple-factor authentication needed"
	}
	pg := h.newPage(w, r, title)
	pg.Data = stepUpData{MFA: st.Enabled}
	if fill != nil {
		fill(pg)
	}
	h.render(w, status, "step_up", pg)
	return nil
}

// stepUp checks the code or recovery code and goes on to rd.
func (h *Handler) stepUp(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	rd := h.returnTo(r.PostFormValue("rd"))
	code, rc := strings.TrimSpace(r.PostFormValue("code")), strings.TrimSpace(r.PostFormValue("recovery_code"))
	if code != "" && rc != "" {
		rc = "" // both filled in: the app's code is the one people mean
	}
	err := h.svc.StepUp(r.Context(), client(r), p, code, rc)
	if err == nil {
		redirect(w, r, afterSignIn("", rd))
		return nil
	}
	e := auth.AsError(err)
	if e == nil {
		return err
	}
	if e.Code == auth.ErrMFANotEnabled.Code {
		return h.renderStepUp(w, r, p, http.StatusOK, nil)
	}
	st, serr := h.svc.MFAStatusOf(r.Context(), p)
	if serr != nil {
		return serr
	}
	pg := h.newPage(w, r, "Confirm with your second factor")
	pg.Data = stepUpData{MFA: st.Enabled}
	return h.formOrPage(w, err, "step_up", pg, "code")
}
