package oidc

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/latchkey/latchkey/internal/auth"
)

// logoutPage is what the sign-out template shows.
type logoutPage struct{ Done bool }

// Logout serves GET and POST /oauth2/logout (RP-initiated logout 1.0). A valid
// id_token_hint (expired accepted) for the signed-in user with a post_logout_redirect_uri
// registered for its client ends the session and goes there with state. Without a
// usable hint the user confirms on a page, so that no other site can sign them out
// with a link. An unregistered URI gets a page, never a redirect.
func (p *Provider) Logout(w http.ResponseWriter, r *http.Request) {
	r = signedOutIfCrossSite(r)
	if err := r.ParseForm(); err != nil {
		p.pages.RenderError(w, r, http.StatusBadRequest, "That did not work", "The sign-out request could not be read.")
		return
	}
	pr := auth.PrincipalFrom(r.Context())
	var sess *auth.Session
	if pr != nil && pr.Token == nil {
		sess = pr.Session
	}
	if r.Method == http.MethodPost && r.PostForm.Get("confirm") == "1" {
		if !p.pages.ValidForm(r) {
			p.pages.RenderError(w, r, http.StatusForbidden, "Not allowed", "This form has expired. Reload the page and try again.")
			return
		}
		if sess != nil {
			if err := p.svc.Logout(r.Context(), auth.ClientFrom(r.Context()), pr); err != nil {
				p.serverError(w, r, err)
				return
			}
		}
		r = r.WithContext(auth.WithPrincipal(r.Context(), nil))
		p.pages.Render(w, r, http.StatusOK, "oidc_logout", "Signed out", logoutPage{Done: true})
		return
	}

	hint, uri, state, clientID := r.Form.Get("id_token_hint"), r.Form.Get("post_logout_redirect_uri"),
		r.Form.Get("state"), r.Form.Get("client_id")
	var claims *oidc.IDTokenClaims
	if hint != "" {
		ctx := op.ContextWithIssuer(r.Context(), p.issuer)
		c, err := op.VerifyIDTokenHint[*oidc.IDTokenClaims](ctx, hint, p.op.IDTokenHintVerifier(ctx))
		var expired op.IDTokenHintExpiredError
		if err == nil || errors.As(err, &expired) {
			claims = c
		}
	}
	if claims != nil {
		hinted := claims.AuthorizedParty
		if hinted == "" && len(claims.Audience) == 1 {
			hinted = claims.Audience[0]
		}
		if clientID == "" {
			clientID = hinted
		} else if clientID != hinted {
			claims = nil // a hint for another client names nobody here
		}
	}
	if uri != "" && clientID == "" {
		// Neither a usable hint nor client_id names the application, so nothing says
		// where the URI belongs: it is not followed, and the user confirms on the page.
		uri = ""
	}
	if uri != "" {
		c, err := p.store.OIDCClient(r.Context(), clientID)
		if err != nil || !slices.Contains(c.PostLogoutRedirectURIs, uri) {
			if err != nil && !errors.Is(err, auth.ErrNotFound) {
				p.serverError(w, r, err)
				return
			}
			p.logEvent(r.Context(), userOf(r), "oidc_logout_redirect_refused", "refused",
				"client "+truncate(clientID, 64)+": unregistered post_logout_redirect_uri "+truncate(uri, 200))
			p.pages.RenderError(w, r, http.StatusBadRequest, "Unknown return address",
				"The application asked to send you to an address it has not registered, so this site will not send you there.")
			return
		}
	}
	sameUser := claims != nil && (sess == nil || claims.Subject == strconv.FormatInt(int64(pr.User.ID), 10))
	if sameUser && uri != "" {
		if sess != nil {
			if err := p.svc.Logout(r.Context(), auth.ClientFrom(r.Context()), pr); err != nil {
				p.serverError(w, r, err)
				return
			}
		}
		http.Redirect(w, r, withQuery(uri, url.Values{"state": {state}}), http.StatusFound)
		return
	}
	if sameUser && sess != nil {
		if err := p.svc.Logout(r.Context(), auth.ClientFrom(r.Context()), pr); err != nil {
			p.serverError(w, r, err)
			return
		}
		r = r.WithContext(auth.WithPrincipal(r.Context(), nil))
		p.pages.Render(w, r, http.StatusOK, "oidc_logout", "Signed out", logoutPage{Done: true})
		return
	}
	p.pages.Render(w, r, http.StatusOK, "oidc_logout", "Sign out?", logoutPage{})
}
