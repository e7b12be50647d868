package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/status"
)

// signedIn reports whether the request carries a live browser session.
func signedIn(r *http.Request) bool {
	p := auth.PrincipalFrom(r.Context())
	return p != nil && p.Session != nil
}

// afterSignIn is where a completed sign-in lands: the return URL (already checked by
// returnTo), else the page the user asked for, else the authentication settings.
func afterSignIn(next, rd string) string {
	if rd != "" {
		return rd
	}
	if n := localPath(next); n != "" && !strings.HasPrefix(n, "/login") && !strings.HasPrefix(n, "/signup") {
		return n
	}
	return "/settings/authentication"
}

// SignupForm shows the sign-up form; a signed-in browser goes to its settings.
func (h *Handler) SignupForm(w http.ResponseWriter, r *http.Request) error {
	if signedIn(r) {
		redirect(w, r, "/settings/authentication")
		return nil
	}
	h.render(w, http.StatusOK, "signup", h.newPage(w, r, "Create your account"))
	return nil
}

// Signup creates the account and signs it in, as people expect of a sign-up form.
func (h *Handler) Signup(w http.ResponseWriter, r *http.Request) error {
	username, email, pw := strings.TrimSpace(r.PostFormValue("username")), strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password")
	if _, err := h.svc.Signup(r.Context(), client(r), username, email, pw); err != nil {
		pg := h.newPage(w, r, "Create your account")
		pg.Values["username"], pg.Values["email"] = username, email
		if !pg.formError(err, "") {
			return err
		}
		h.render(w, status.Code(auth.AsError(err).Kind), "signup", pg)
		return nil
	}
	res, err := h.svc.Login(r.Context(), client(r), username, pw)
	if err != nil {
		// The account exists; only the automatic sign-in failed (a busy hasher, say).
		redirect(w, r, "/login?done=signed_up")
		return nil
	}
	h.setSession(w, res.SessionToken.Reveal())
	if rd := h.returnTo(r.PostFormValue("rd")); rd != "" {
		// Signed up on the way to another application: go on there.
		redirect(w, r, rd)
		return nil
	}
	redirect(w, r, "/settings/authentication?done=signed_up")
	return nil
}

// LoginForm shows the sign-in form; a signed-in browser goes where next= says.
func (h *Handler) LoginForm(w http.ResponseWriter, r *http.Request) error {
	if signedIn(r) {
		redirect(w, r, afterSignIn(r.URL.Query().Get("next"), h.returnTo(r.URL.Query().Get("rd"))))
		return nil
	}
	h.render(w, http.StatusOK, "login", h.newPage(w, r, "Sign in"))
	return nil
}

// Login is the password step. With MFA on, the pending token goes into its own
// short-lived cookie and the browser moves on to the code page.
func (h *Handler) Login(w http.ResponseWriter, r *http.Request) error {
	login, next := strings.TrimSpace(r.PostFormValue("login")), localPath(r.PostFormValue("next"))
	rd := h.returnTo(r.PostFormValue("rd"))
	res, err := h.svc.Login(r.Context(), client(r), login, r.PostFormValue("password"))
	if err != nil {
		pg := h.newPage(w, r, "Sign in")
		pg.Values["login"] = login
		return h.formOrPage(w, err, "login", pg, "")
	}
	if res.Status == auth.StatusMFARequired {
		h.setMFA(w, res.MFAToken.Reveal(), res.MFAExpiresIn)
		redirect(w, r, "/login/mfa"+carry(next, rd))
		return nil
	}
	h.setSession(w, res.SessionToken.Reveal())
	redirect(w, r, afterSignInAs(res.User, next, rd))
	return nil
}

// formOrPage shows err on the form when it is about the form (invalid input, a wrong
// password or code, too many attempts) and returns it to the adapter otherwise.
func (h *Handler) formOrPage(w http.ResponseWriter, err error, tmpl string, pg *page, field string) error {
	e := auth.AsError(err)
	if e == nil {
		return err
	}
	if e.Kind == auth.KindRateLimited || e.Kind == auth.KindOverloaded {
		pg.Error = e.Message
		pg.RetryAfter = retryText(e.RetryAfter)
		setRetryAfter(w, e.RetryAfter)
		h.render(w, status.Code(e.Kind), tmpl, pg)
		return nil
	}
	if !pg.formError(err, field) {
		return err
	}
	h.render(w, status.Code(e.Kind), tmpl, pg)
	return nil
}

// MFAForm shows the code page, or the recovery-code page.
func (h *Handler) MFAForm(recovery bool) PageFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if cookieValue(r, h.mfaCookieName()) == "" {
			// No password step in progress: start again, still on the way to rd.
			q := r.URL.Query()
			redirect(w, r, "/login"+carry(localPath(q.Get("next")), h.returnTo(q.Get("rd"))))
			return nil
		}
		tmpl, title := "login_mfa", "Two-step sign-in"
		if recovery {
			tmpl, title = "login_recovery", "Sign in with a recovery code"
		}
		pg := h.newPage(w, r, title)
		if err := h.offerKey(r, pg); err != nil {
			return err
		}
		h.render(w, http.StatusOK, tmpl, pg)
		return nil
	}
}

// LoginMFA is the second-factor step.
func (h *Handler) LoginMFA(recovery bool) PageFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		token := cookieValue(r, h.mfaCookieName())
		rd := h.returnTo(r.PostFormValue("rd"))
		expired := "/login?done=mfa_expired"
		if rd != "" {
			expired += "&rd=" + url.QueryEscape(rd)
		}
		if token == "" {
			redirect(w, r, expired)
			return nil
		}
		code, rc, field, tmpl, title := r.PostFormValue("code"), "", "code", "login_mfa", "Two-step sign-in"
		if recovery {
			code, rc, field, tmpl, title = "", r.PostFormValue("recovery_code"), "recovery_code", "login_recovery", "Sign in with a recovery code"
		}
		var res *auth.LoginResult
		var err error
		if cred := r.PostFormValue("credential"); cred != "" && !recovery {
			res, err = h.svc.LoginWebAuthn(r.Context(), client(r), token, json.RawMessage(cred))
		} else {
			res, err = h.svc.LoginMFA(r.Context(), client(r), token, code, rc)
		}
		if err != nil {
			if e := auth.AsError(err); e != nil && e.Code == auth.ErrInvalidMFAToken.Code {
				h.clearMFA(w)
				redirect(w, r, expired)
				return nil
			}
			pg := h.newPage(w, r, title)
			if err := h.offerKey(r, pg); err != nil {
				return err
			}
			if e := auth.AsError(err); e != nil && e.Fields["code"] != "" && recovery {
				// The domain names one field for both methods; this page's is the recovery code.
				e = &auth.Error{Kind: e.Kind, Code: e.Code, Message: e.Message, Fields: map[string]string{field: e.Fields["code"]}}
				err = e
			}
			return h.formOrPage(w, err, tmpl, pg, field)
		}
		h.setSession(w, res.SessionToken.Reveal())
		// After a recovery code the settings page says so and offers new codes; an
		// application waiting for the user comes first (the owner is mailed anyway).
		if res.RecoveryCodesRemaining != nil && rd == "" {
			redirect(w, r, "/settings/authentication?done=recovery_used")
			return nil
		}
		redirect(w, r, afterSignInAs(res.User, r.PostFormValue("next"), rd))
		return nil
	}
}

// Logout ends the browser's session and clears its cookie.
func (h *Handler) Logout(w http.ResponseWriter, r *http.Request) error {
	if p := auth.PrincipalFrom(r.Context()); p != nil && p.Session != nil {
		if err := h.svc.Logout(r.Context(), client(r), p); err != nil {
			return err
		}
	}
	h.clearSession(w)
	h.clearMFA(w)
	redirect(w, r, "/login?done=signed_out")
	return nil
}

// ForgotForm asks for the address to send a password-reset link to.
func (h *Handler) ForgotForm(w http.ResponseWriter, r *http.Request) error {
	h.render(w, http.StatusOK, "forgot", h.newPage(w, r, "Reset your password"))
	return nil
}

// Forgot answers the same whether or not the address is known.
func (h *Handler) Forgot(w http.ResponseWriter, r *http.Request) error {
	email := strings.TrimSpace(r.PostFormValue("email"))
	if err := h.svc.ForgotPassword(r.Context(), client(r), email); err != nil {
		pg := h.newPage(w, r, "Reset your password")
		pg.Values["email"] = email
		return h.formOrPage(w, err, "forgot", pg, "email")
	}
	redirect(w, r, "/login?done=reset_sent")
	return nil
}

// ResetForm renders the new-password form with the emailed token in a hidden field, so
// that the form posts it in the body; the page is served with Referrer-Policy:
// no-referrer so the token in this URL is not sent anywhere else.
func (h *Handler) ResetForm(w http.ResponseWriter, r *http.Request) error {
	pg := h.newPage(w, r, "Choose a new password")
	pg.Values["token"] = r.URL.Query().Get("token")
	if pg.Values["token"] == "" {
		pg.Error = auth.ErrInvalidToken.Message
	}
	h.resetCredentials(r, pg, true)
	h.render(w, http.StatusOK, "reset", pg)
	return nil
}

// Reset sets the new password from a reset link's form.
func (h *Handler) Reset(w http.ResponseWriter, r *http.Request) error {
	token := r.PostFormValue("token")
	revoke := r.PostFormValue("revoke_credentials") != ""
	if err := h.svc.ResetPassword(r.Context(), client(r), token, r.PostFormValue("new_password"), revoke); err != nil {
		pg := h.newPage(w, r, "Choose a new password")
		pg.Values["token"] = token
		h.resetCredentials(r, pg, revoke)
		return h.formOrPage(w, err, "reset", pg, "new_password")
	}
	h.clearSession(w)
	redirect(w, r, "/login?done=password_reset")
	return nil
}

// reauthData tells the re-authentication form whether to ask for a code, and whether
// to offer the account's security keys.
type reauthData struct{ MFA, Keys bool }

func (h *Handler) reauthDataOf(st auth.MFAState) reauthData {
	return reauthData{MFA: st.Enabled, Keys: st.WebAuthnKeys > 0 && h.svc.WebAuthnUnavailable() == ""}
}

// mfaPageData is what the second-factor page offers: the key's request options (the
// pending login's challenge) when the account has a key.
type mfaPageData struct{ WebAuthn string }

// ReauthForm asks a signed-in user to confirm it is them before a sensitive action.
func (h *Handler) ReauthForm(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	st, err := h.svc.MFAStateOf(r.Context(), p)
	if err != nil {
		return err
	}
	pg := h.newPage(w, r, "Confirm it is you")
	pg.Data = h.reauthDataOf(st)
	h.render(w, http.StatusOK, "reauth", pg)
	return nil
}

// Reauth checks the password and, with MFA on, a code, and reopens the window for sensitive actions.
func (h *Handler) Reauth(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	code, rc := strings.TrimSpace(r.PostFormValue("code")), strings.TrimSpace(r.PostFormValue("recovery_code"))
	if code != "" && rc != "" {
		rc = "" // both filled in: the app's code is the one people mean
	}
	var err error
	if cred := r.PostFormValue("credential"); cred != "" {
		// The key alone (user verification required), as the script began it.
		_, err = h.svc.ReauthWebAuthn(r.Context(), client(r), p, "", r.PostFormValue("ceremony_id"), json.RawMessage(cred))
	} else {
		_, err = h.svc.Reauth(r.Context(), client(r), p, r.PostFormValue("password"), code, rc)
	}
	if err != nil {
		st, serr := h.svc.MFAStateOf(r.Context(), p)
		if serr != nil {
			return serr
		}
		pg := h.newPage(w, r, "Confirm it is you")
		pg.Data = h.reauthDataOf(st)
		field := "password"
		if e := auth.AsError(err); e != nil && e.Code == auth.ErrInvalidCode.Code {
			field = "code"
		}
		return h.formOrPage(w, err, "reauth", pg, field)
	}
	to := afterSignIn(r.PostFormValue("next"), "")
	if !strings.Contains(to, "?") {
		to += "?done=reauthenticated"
	}
	redirect(w, r, to)
	return nil
}

// offerKey puts the pending login's key challenge on the second-factor page, so the key
// is offered first when the account has one.
func (h *Handler) offerKey(r *http.Request, pg *page) error {
	opts, err := h.svc.SecondFactorOptions(r.Context(), cookieValue(r, h.mfaCookieName()))
	if err != nil {
		return err
	}
	pg.Data = mfaPageData{WebAuthn: string(opts)}
	return nil
}
