package web

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/recovery"
	"github.com/latchkey/latchkey/internal/status"
)

// challengeData is the page that shows a recovery challenge and takes the proof.
type challengeData struct {
	RequestID string
	Challenge string // empty when the posted one could not be trusted for display
	Namespace string
	ExpiresAt time.Time
	Token     bool // the personal access token tab was the one used
}

// recoverResult is one of the recovery outcome pages.
type recoverResult struct {
	Outcome string // "verified", "closed", "cancelled", "cancel" (the confirm form)
	Method  string
	Key     string
	Token   string // the cancel link's token, for the confirm form's hidden field
}

// shownChallenge is exactly the shape auth.OpenRecovery hands out. The verify form
// posts the challenge back only so a failed attempt can show it again; anything else
// is not displayed, so the form cannot be used to put other words on our page.
var shownChallenge = regexp.MustCompile(`^` + regexp.QuoteMeta(auth.ChallengePrefix) + `[0-9a-f]{32}$`)

// RecoverForm starts account recovery for someone who lost every factor.
func (h *Handler) RecoverForm(w http.ResponseWriter, r *http.Request) error {
	h.render(w, http.StatusOK, "recover", h.newPage(w, r, "Recover your account"))
	return nil
}

// OpenRecovery opens a request and shows its challenge. Unknown logins get the same
// page (the service returns a decoy of the same shape), so it tells nothing about
// which accounts exist.
func (h *Handler) OpenRecovery(w http.ResponseWriter, r *http.Request) error {
	login := strings.TrimSpace(r.PostFormValue("login"))
	ch, err := h.svc.OpenRecovery(r.Context(), client(r), login)
	if err != nil {
		pg := h.newPage(w, r, "Recover your account")
		pg.Values["login"] = login
		return h.formOrPage(w, err, "recover", pg, "login")
	}
	pg := h.newPage(w, r, "Prove it is your account")
	pg.Data = challengeData{RequestID: string(ch.ID), Challenge: ch.Challenge, Namespace: ch.Namespace, ExpiresAt: ch.ExpiresAt}
	h.render(w, http.StatusOK, "recover_challenge", pg)
	return nil
}

// VerifyRecovery takes the pasted signature or token. A failure shows the one generic
// message and the same challenge again, since a failed attempt leaves it valid; the
// fifth failure closes the request and gets its own page.
func (h *Handler) VerifyRecovery(w http.ResponseWriter, r *http.Request) error {
	id := strings.TrimSpace(r.PostFormValue("request_id"))
	sig, tok := strings.TrimSpace(r.PostFormValue("ssh_signature")), strings.TrimSpace(r.PostFormValue("personal_access_token"))
	d := challengeData{RequestID: id, Namespace: recovery.Namespace, Token: sig == "" && tok != ""}
	if c := r.PostFormValue("challenge"); shownChallenge.MatchString(c) {
		d.Challenge = c
		if t, err := time.Parse(time.RFC3339, r.PostFormValue("expires_at")); err == nil {
			d.ExpiresAt = t
		}
	}
	again := func(status int, fill func(*page)) error {
		pg := h.newPage(w, r, "Prove it is your account")
		pg.Data = d
		// The signature is public (it proves nothing for another challenge), so it is
		// kept to fix; the token is a secret and is never written back into the page.
		pg.Values["ssh_signature"] = sig
		fill(pg)
		h.render(w, status, "recover_challenge", pg)
		return nil
	}
	if (sig == "") == (tok == "") {
		return again(http.StatusBadRequest, func(pg *page) {
			pg.Error = "Paste the signature, or enter a personal access token: one of the two."
			pg.Fields["ssh_signature"] = "Paste the whole contents of challenge.txt.sig, or leave this empty and use a token."
		})
	}
	v, err := h.svc.VerifyRecovery(r.Context(), client(r), auth.RecoveryRequestID(id), sig, tok)
	if err != nil {
		e := auth.AsError(err)
		switch {
		case e != nil && e.Kind == auth.KindRateLimited:
			pg := h.newPage(w, r, "Recovery request closed")
			pg.Error, pg.RetryAfter = e.Message, retryText(e.RetryAfter)
			pg.Data = recoverResult{Outcome: "closed"}
			setRetryAfter(w, e.RetryAfter)
			h.render(w, http.StatusTooManyRequests, "recover_result", pg)
			return nil
		case e != nil && e.Kind == auth.KindInvalidInput:
			return again(status.Code(e.Kind), func(pg *page) { pg.Error = e.Message })
		}
		return err
	}
	pg := h.newPage(w, r, "Recovery request verified")
	pg.Data = recoverResult{Outcome: "verified", Method: v.Method, Key: v.KeyFingerprint}
	h.render(w, http.StatusOK, "recover_result", pg)
	return nil
}

// CancelForm is where the owner's emailed link lands. A GET changes nothing (mail
// scanners follow links); the button posts the token from a hidden field. The page is
// served with Referrer-Policy: no-referrer, so the token in this URL goes nowhere else.
func (h *Handler) CancelForm(w http.ResponseWriter, r *http.Request) error {
	pg := h.newPage(w, r, "Cancel the recovery request")
	tok := r.URL.Query().Get("token")
	if tok == "" {
		pg.Error = auth.ErrInvalidToken.Message
	}
	pg.Data = recoverResult{Outcome: "cancel", Token: tok}
	h.render(w, http.StatusOK, "recover_result", pg)
	return nil
}

// CancelRecovery cancels a recovery request with the token from the owner's mail.
func (h *Handler) CancelRecovery(w http.ResponseWriter, r *http.Request) error {
	tok := r.PostFormValue("token")
	if err := h.svc.CancelRecovery(r.Context(), client(r), tok); err != nil {
		pg := h.newPage(w, r, "Cancel the recovery request")
		pg.Data = recoverResult{Outcome: "cancel", Token: tok}
		return h.formOrPage(w, err, "recover_result", pg, "")
	}
	pg := h.newPage(w, r, "Recovery request cancelled")
	pg.Data = recoverResult{Outcome: "cancelled"}
	h.render(w, http.StatusOK, "recover_result", pg)
	return nil
}

// adminData is the operator's list of recovery requests.
type adminData struct {
	Requests []auth.RecoveryRequestInfo
	Status   string
	Statuses []string
	Failed   string // the request whose decision form has a problem
}

var adminStatuses = []string{auth.RecoveryVerified, auth.RecoveryPending, auth.RecoveryApproved, auth.RecoveryDenied,
	auth.RecoveryCancelled, auth.RecoveryClosed, auth.RecoveryExpired}

// AdminRecovery lists the recovery requests for an administrator to decide.
func (h *Handler) AdminRecovery(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.renderAdmin(w, r, p, http.StatusOK, nil)
}

// renderAdmin lists the requests; the service refuses anyone but an administrator,
// and that refusal is the 403 page.
func (h *Handler) renderAdmin(w http.ResponseWriter, r *http.Request, p *auth.Principal, status int, fill func(*page, *adminData)) error {
	filter := r.URL.Query().Get("status")
	list, err := h.svc.RecoveryRequests(r.Context(), p, filter)
	if err != nil {
		return err
	}
	pg := h.newPage(w, r, "Recovery requests")
	d := &adminData{Requests: list, Status: filter, Statuses: adminStatuses}
	if fill != nil {
		fill(pg, d)
	}
	pg.Data = d
	h.render(w, status, "admin_recovery", pg)
	return nil
}

// DecideRecovery approves or denies a request. Both need an administrator's session
// within the re-authentication window and a reason, which the user is mailed.
func (h *Handler) DecideRecovery(approve bool) AuthedFunc {
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		id, reason := auth.RecoveryRequestID(r.PathValue("id")), r.PostFormValue("reason")
		var err error
		if approve {
			_, err = h.svc.ApproveRecovery(r.Context(), client(r), p, id, reason)
		} else {
			_, err = h.svc.DenyRecovery(r.Context(), client(r), p, id, reason)
		}
		if err != nil {
			e := auth.AsError(err)
			if e == nil || (e.Kind != auth.KindInvalidInput && e.Kind != auth.KindConflict) {
				return err
			}
			return h.renderAdmin(w, r, p, status.Code(e.Kind), func(pg *page, d *adminData) {
				d.Failed = string(id)
				pg.Values["reason"] = reason
				if e.Fields["reason"] != "" {
					pg.Fields["reason"] = "Give a reason: " + e.Fields["reason"] + "."
					pg.Error = "Please correct the marked field."
					return
				}
				pg.Error = e.Message
			})
		}
		done := "recovery_denied"
		if approve {
			done = "recovery_approved"
		}
		redirect(w, r, "/admin/recovery?done="+done)
		return nil
	}
}

// age says how old a key or token was when it was used, in the largest whole unit:
// a key added an hour before the request is weaker evidence than one from last year.
func age(from, to time.Time) string {
	if from.IsZero() || to.IsZero() {
		return ""
	}
	d := to.Sub(from)
	plural := func(n int, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d < time.Minute:
		return "less than a minute"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour")
	default:
		return plural(int(d/(24*time.Hour)), "day")
	}
}
