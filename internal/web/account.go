package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/latchkey/latchkey/internal/api"
	"github.com/latchkey/latchkey/internal/auth"
)

// signedIn reports whether the request carries a live browser session.
func signedIn(r *http.Request) bool {
	p := auth.PrincipalFrom(r.Context())
	return p != nil && p.Session != nil
}

// afterSignIn is where a completed sign-in lands: the page the user asked for, or the
// authentication settings.
func afterSignIn(next string) string {
	if n := localPath(next); n != "" && !strings.HasPrefix(n, "/login") && !strings.HasPrefix(n, "/signup") {
		return n
	}
	return "/settings/authentication"
}

func (h *Handler) signupForm(w http.ResponseWriter, r *http.Request) error {
	if signedIn(r) {
		redirect(w, r, "/settings/authentication")
		return nil
	}
	h.render(w, http.StatusOK, "signup", h.newPage(w, r, "Create your account"))
	return nil
}

// signup creates the account and signs it in, as people expect of a sign-up form.
func (h *Handler) signup(w http.ResponseWriter, r *http.Request) error {
	username, email, pw := strings.TrimSpace(r.PostFormValue("username")), strings.TrimSpace(r.PostFormValue("email")), r.PostFormValue("password")
	if _, err := h.svc.Signup(r.Context(), client(r), username, email, pw); err != nil {
		pg := h.newPage(w, r, "Create your account")
		pg.Values["username"], pg.Values["email"] = username, email
		if !pg.formError(err, "") {
			return err
		}
		h.render(w, api.Status(auth.AsError(err).Kind), "signup", pg)
		return nil
	}
	res, err := h.svc.Login(r.Context(), client(r), username, pw)
	if err != nil {
		// The account exists; only the automatic sign-in failed (a busy hasher, say).
		redirect(w, r, "/login?done=signed_up")
		return nil
	}
	h.setSession(w, res.SessionToken.Reveal())
	redirect(w, r, "/settings/authentication?done=signed_up")
	return nil
}

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) error {
	if signedIn(r) {
		redirect(w, r, afterSignIn(r.URL.Query().Get("next")))
		return nil
	}
	h.render(w, http.StatusOK, "login", h.newPage(w, r, "Sign in"))
	return nil
}

// login is the password step. With MFA on, the pending token goes into its own
// short-lived cookie and the browser moves on to the code page.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	login, next := strings.TrimSpace(r.PostFormValue("login")), localPath(r.PostFormValue("next"))
	res, err := h.svc.Login(r.Context(), client(r), login, r.PostFormValue("password"))
	if err != nil {
		pg := h.newPage(w, r, "Sign in")
		pg.Values["login"] = login
		return h.formOrPage(w, err, "login", pg, "")
	}
	if res.Status == auth.StatusMFARequired {
		h.setMFA(w, res.MFAToken.Reveal(), res.MFAExpiresIn)
		to := "/login/mfa"
		if next != "" {
			to += "?next=" + url.QueryEscape(next)
		}
		redirect(w, r, to)
		return nil
	}
	h.setSession(w, res.SessionToken.Reveal())
	redirect(w, r, afterSignIn(next))
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
		h.render(w, api.Status(e.Kind), tmpl, pg)
		return nil
	}
	if !pg.formError(err, field) {
		return err
	}
	h.render(w, api.Status(e.Kind), tmpl, pg)
	return nil
}

// mfaForm shows the code page, or the recovery-code page.
func (h *Handler) mfaForm(recovery bool) pageFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if cookieValue(r, h.mfaCookieName()) == "" {
			redirect(w, r, "/login")
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

// loginMFA is the second-factor step.
func (h *Handler) loginMFA(recovery bool) pageFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		token := cookieValue(r, h.mfaCookieName())
		if token == "" {
			redirect(w, r, "/login?done=mfa_expired")
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
				redirect(w, r, "/login?done=mfa_expired")
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
		if res.RecoveryCodesRemaining != nil {
			redirect(w, r, "/settings/authentication?done=recovery_used")
			return nil
		}
		redirect(w, r, afterSignIn(r.PostFormValue("next")))
		return nil
	}
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
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

func (h *Handler) forgotForm(w http.ResponseWriter, r *http.Request) error {
	h.render(w, http.StatusOK, "forgot", h.newPage(w, r, "Reset your password"))
	return nil
}

// forgot answers the same whether or not the address is known.
func (h *Handler) forgot(w http.ResponseWriter, r *http.Request) error {
	email := strings.TrimSpace(r.PostFormValue("email"))
	if err := h.svc.ForgotPassword(r.Context(), client(r), email); err != nil {
		pg := h.newPage(w, r, "Reset your password")
		pg.Values["email"] = email
		return h.formOrPage(w, err, "forgot", pg, "email")
	}
	redirect(w, r, "/login?done=reset_sent")
	return nil
}

// resetForm renders the new-password form with the emailed token in a hidden field, so
// that the form posts it in the body; the page is served with Referrer-Policy:
// no-referrer so the token in this URL is not sent anywhere else.
func (h *Handler) resetForm(w http.ResponseWriter, r *http.Request) error {
	pg := h.newPage(w, r, "Choose a new password")
	pg.Values["token"] = r.URL.Query().Get("token")
	if pg.Values["token"] == "" {
		pg.Error = auth.ErrInvalidToken.Message
	}
	h.render(w, http.StatusOK, "reset", pg)
	return nil
}

func (h *Handler) reset(w http.ResponseWriter, r *http.Request) error {
	token := r.PostFormValue("token")
	if err := h.svc.ResetPassword(r.Context(), client(r), token, r.PostFormValue("new_password")); err != nil {
		pg := h.newPage(w, r, "Choose a new password")
		pg.Values["token"] = token
		return h.formOrPage(w, err, "reset", pg, "new_password")
	}
	h.clearSession(w)
	redirect(w, r, "/login?done=password_reset")
	return nil
}

// reauthData tells the re-authentication form whether to ask for a code, and whether
// to offer the account's security keys.
type reauthData struct{ MFA, Keys bool }

func (h *Handler) reauthDataOf(st auth.MFAStatus) reauthData {
	return reauthData{MFA: st.Enabled, Keys: st.WebAuthnKeys > 0 && h.svc.WebAuthnUnavailable() == ""}
}

// mfaPageData is what the second-factor page offers: the key's request options (the
// pending login's challenge) when the account has a key.
type mfaPageData struct{ WebAuthn string }

func (h *Handler) reauthForm(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	st, err := h.svc.MFAStatusOf(r.Context(), p)
	if err != nil {
		return err
	}
	pg := h.newPage(w, r, "Confirm it is you")
	pg.Data = h.reauthDataOf(st)
	h.render(w, http.StatusOK, "reauth", pg)
	return nil
}

func (h *Handler) reauth(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
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
		st, serr := h.svc.MFAStatusOf(r.Context(), p)
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
	to := afterSignIn(r.PostFormValue("next"))
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
