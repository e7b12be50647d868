package web

import (
	"net/http"

	"github.com/latchkey/latchkey/internal/auth"
)

// accountFlashes are the messages of the account page and the address links.
var accountFlashes = map[string]flash{
	"email_verified":    {"ok", "Your email address is verified."},
	"verification_sent": {"ok", "A new verification link is on its way. It works for 24 hours."},
	"email_change_sent": {"ok", "We sent a link to the new address. The change takes effect when you follow it."},
	"email_restored":    {"ok", "Your previous email address is back and every session was signed out. Sign in, and reset your password if the change was not yours."},
	"email_dropped":     {"warn", "Another account verified the email address you had given, so it was removed from your account. Add an address you can receive mail at."},
	"account_deleted":   {"ok", "Your account was deleted."},
	"signed_up":         {"ok", "Welcome! Your account is ready. We sent a link to your email address: follow it within 24 hours to verify it."},
}

// afterSignInAs is afterSignIn for u: an account whose address was dropped (another
// account verified it first) is asked for a new one before anything else.
func afterSignInAs(u *auth.User, next, rd string) string {
	if u != nil && u.Email == "" {
		return "/settings/account?done=email_dropped"
	}
	return afterSignIn(next, rd)
}

// accountData is what the account page shows.
type accountData struct {
	Email        string
	Verified     bool
	PendingEmail string
}

func (h *Handler) Account(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	pending, err := h.svc.PendingEmailChange(r.Context(), p)
	if err != nil {
		return err
	}
	pg := h.newPage(w, r, "Account")
	pg.Data = accountData{Email: p.User.Email, Verified: p.User.EmailVerified, PendingEmail: pending}
	h.render(w, http.StatusOK, "account", pg)
	return nil
}

func (h *Handler) ResendVerification(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := h.svc.ResendVerification(r.Context(), client(r), p); err != nil {
		return err
	}
	redirect(w, r, "/settings/account?done=verification_sent")
	return nil
}

func (h *Handler) ChangeEmail(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	email := r.PostFormValue("email")
	if err := h.svc.ChangeEmail(r.Context(), client(r), p, email); err != nil {
		pending, perr := h.svc.PendingEmailChange(r.Context(), p)
		if perr != nil {
			return perr
		}
		pg := h.newPage(w, r, "Account")
		pg.Values["email"] = email
		pg.Data = accountData{Email: p.User.Email, Verified: p.User.EmailVerified, PendingEmail: pending}
		return h.formOrPage(w, err, "account", pg, "email")
	}
	redirect(w, r, "/settings/account?done=email_change_sent")
	return nil
}

// verifyEmailForm asks before it acts: following the link (GET) changes nothing, so a
// mail scanner that fetches links cannot verify an address, and the token moves into a
// form field (the page is served with Referrer-Policy: no-referrer).
func (h *Handler) VerifyEmailForm(title, tmpl string) PageFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pg := h.newPage(w, r, title)
		pg.Values["token"] = r.URL.Query().Get("token")
		if pg.Values["token"] == "" {
			pg.Error = auth.ErrInvalidToken.Message
		}
		h.render(w, http.StatusOK, tmpl, pg)
		return nil
	}
}

func (h *Handler) VerifyEmail(w http.ResponseWriter, r *http.Request) error {
	token := r.PostFormValue("token")
	if _, err := h.svc.VerifyEmail(r.Context(), client(r), token); err != nil {
		pg := h.newPage(w, r, "Verify your email address")
		return h.formOrPage(w, err, "verify_email", pg, "")
	}
	if signedIn(r) {
		redirect(w, r, "/settings/account?done=email_verified")
		return nil
	}
	redirect(w, r, "/login?done=email_verified")
	return nil
}

// undoEmail puts back the address a change replaced. Every session ends with it, this
// browser's too.
func (h *Handler) UndoEmail(w http.ResponseWriter, r *http.Request) error {
	token := r.PostFormValue("token")
	if _, err := h.svc.VerifyEmail(r.Context(), client(r), token); err != nil {
		pg := h.newPage(w, r, "Put back your email address")
		return h.formOrPage(w, err, "undo_email", pg, "")
	}
	h.clearSession(w)
	redirect(w, r, "/login?done=email_restored")
	return nil
}

// resetData is what the reset form lists: the tokens and SSH keys the reset can
// revoke, with one choice for all of them.
type resetData struct {
	Tokens []auth.AccessToken
	Keys   []auth.SSHKey
	Revoke bool
}

// resetCredentials fills the reset form's list for the link in pg. An unknown or dead
// link lists nothing; the reset itself then says so.
func (h *Handler) resetCredentials(r *http.Request, pg *page, revoke bool) {
	d := resetData{Revoke: revoke}
	if tok := pg.Values["token"]; tok != "" {
		toks, keys, err := h.svc.ResetLinkCredentials(r.Context(), tok)
		if err != nil && auth.AsError(err) == nil {
			h.log.Error("reset form: listing credentials", "err", err)
		}
		d.Tokens, d.Keys = toks, keys
	}
	pg.Data = d
}
