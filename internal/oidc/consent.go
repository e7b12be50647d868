package oidc

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/latchkey/latchkey/internal/auth"
)

// consentPage is what the consent template shows.
type consentPage struct {
	ClientName string
	Scopes     []string
	Request    string // the authorization request's query, posted back with the decision
}

// scopeWords says what each scope lets the app see, in words a person reads.
var scopeWords = map[string]string{
	"profile":        "your username",
	"email":          "your email address",
	"offline_access": "access while you are away, until you revoke it",
}

// ConsentForm serves GET /oauth2/consent: the Allow / Deny page of a client added
// with --consent.
func (p *Provider) ConsentForm(w http.ResponseWriter, r *http.Request) {
	q := parseRequest(r.URL.Query())
	c := p.client(w, r, q)
	if c == nil {
		return
	}
	if pr := auth.PrincipalFrom(r.Context()); pr == nil || pr.Session == nil {
		// Signed out meanwhile: the request starts again and sends them to sign in.
		http.Redirect(w, r, PathAuthorize+"?"+q.encodeWithMarker(), http.StatusFound)
		return
	}
	var words []string
	for _, s := range q.scopes {
		if w, ok := scopeWords[s]; ok {
			words = append(words, w)
		}
	}
	p.allowFormAction(w, q.redirectURI)
	p.pages.Render(w, r, http.StatusOK, "oidc_consent", "Allow "+c.Name+"?",
		consentPage{ClientName: c.Name, Scopes: words, Request: q.encodeWithMarker()})
}

// Consent serves POST /oauth2/consent: Allow records the consent and resumes the
// request; Deny sends access_denied back to the app.
func (p *Provider) Consent(w http.ResponseWriter, r *http.Request) {
	if !p.pages.ValidForm(r) {
		p.pages.RenderError(w, r, http.StatusForbidden, "Not allowed",
			"This form has expired. Go back to the application and try again.")
		return
	}
	form, err := url.ParseQuery(r.PostForm.Get("request"))
	if err != nil {
		p.pages.RenderError(w, r, http.StatusBadRequest, "That did not work", "The sign-in request could not be read.")
		return
	}
	q := parseRequest(form)
	c := p.client(w, r, q)
	if c == nil {
		return
	}
	pr := auth.PrincipalFrom(r.Context())
	if pr == nil || pr.Session == nil {
		http.Redirect(w, r, PathAuthorize+"?"+q.encodeWithMarker(), http.StatusSeeOther)
		return
	}
	if r.PostForm.Get("decision") != "allow" {
		p.logEvent(r.Context(), pr.User.ID, "oidc_consent", "denied", "client "+c.ID)
		v := url.Values{"error": {"access_denied"}, "error_description": {"the user denied access"}, "iss": {p.issuer}, "state": {q.state}}
		http.Redirect(w, r, withQuery(q.redirectURI, v), http.StatusSeeOther)
		return
	}
	scopes := slices.DeleteFunc(slices.Clone(q.scopes), func(s string) bool { return !slices.Contains(supportedScopes, s) })
	if prev, err := p.store.OIDCConsent(r.Context(), pr.User.ID, c.ID); err == nil {
		for _, s := range prev.Scopes {
			if !slices.Contains(scopes, s) {
				scopes = append(scopes, s)
			}
		}
	} else if !errors.Is(err, auth.ErrNotFound) {
		p.serverError(w, r, err)
		return
	}
	if err := p.store.SaveOIDCConsent(r.Context(), &auth.OIDCConsent{UserID: pr.User.ID, ClientID: c.ID,
		Scopes: scopes, CreatedAt: p.now()}); err != nil {
		p.serverError(w, r, err)
		return
	}
	p.logEvent(r.Context(), pr.User.ID, "oidc_consent", "success", "client "+c.ID+": "+strings.Join(scopes, " "))
	http.Redirect(w, r, PathAuthorize+"?"+q.encodeWithMarker(), http.StatusSeeOther)
}

// allowFormAction widens the page's Content-Security-Policy so that a form on it may
// end in a redirect to the app (browsers apply form-action to the redirects that
// follow a submission).
func (p *Provider) allowFormAction(w http.ResponseWriter, uri string) {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return
	}
	origin := u.Scheme + "://" + u.Host
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src 'self' data:; style-src 'self'; form-action 'self' "+
		origin+"; frame-ancestors 'none'; base-uri 'none'")
}
