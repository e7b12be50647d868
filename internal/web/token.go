package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/status"
)

// tokensData is the personal access tokens page. New is set only on the answer to the
// form that created it: the secret exists nowhere else, so it is shown in that one
// response and never travels in a URL or a flash.
type tokensData struct {
	Tokens      []auth.AccessToken
	New         *auth.NewAccessToken
	Never       bool // "No expiry" was chosen on the form being shown again
	ReauthUntil time.Time
}

// defaultTokenDays is what the expiry field offers first: long enough for a script,
// short enough that a forgotten token dies on its own.
const defaultTokenDays = "30"

// Tokens lists the user's personal access tokens.
func (h *Handler) Tokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	return h.renderTokens(w, r, p, http.StatusOK, nil)
}

// renderTokens shows the tokens page; fill may put a new token or a form problem on it.
func (h *Handler) renderTokens(w http.ResponseWriter, r *http.Request, p *auth.Principal, status int, fill func(*page, *tokensData)) error {
	list, err := h.svc.Tokens(r.Context(), p)
	if err != nil {
		return err
	}
	pg := h.newPage(w, r, "Personal access tokens")
	d := &tokensData{Tokens: list, ReauthUntil: h.svc.ReauthUntil(p)}
	pg.Values["expires_in_days"] = defaultTokenDays
	if fill != nil {
		fill(pg, d)
	}
	pg.Data = d
	h.render(w, status, "tokens", pg)
	return nil
}

// tokenExpiry reads the form's expiry: "never" for no expiry, otherwise a whole number
// of days from 1 to 365. It returns the days (0: no expiry) or the field's problem.
// The API refuses 0 for the same reason: "no expiry" must be chosen, never implied by
// a typo.
func tokenExpiry(choice, days string) (int, string) {
	if choice == "never" {
		return 0, ""
	}
	n, err := strconv.Atoi(strings.TrimSpace(days))
	if err != nil || n < 1 || n > 365 {
		return 0, "Expiry must be a whole number of days from 1 to 365, or choose No expiry."
	}
	return n, ""
}

// CreateToken makes a token and shows its secret once, in this response.
func (h *Handler) CreateToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	name, choice, daysText := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("expiry"), r.PostFormValue("expires_in_days")
	again := func(pg *page, d *tokensData) {
		pg.Values["name"], pg.Values["expires_in_days"], d.Never = name, daysText, choice == "never"
	}
	days, problem := tokenExpiry(choice, daysText)
	if problem != "" {
		return h.renderTokens(w, r, p, http.StatusBadRequest, func(pg *page, d *tokensData) {
			again(pg, d)
			pg.Fields["expires_in_days"] = problem
			pg.Error = "Please correct the marked fields."
		})
	}
	t, err := h.svc.CreateToken(r.Context(), client(r), p, name, days)
	if err != nil {
		e := auth.AsError(err)
		if e == nil || e.Kind != auth.KindInvalidInput {
			return err // re-authentication, forbidden, internal: whole-page answers
		}
		return h.renderTokens(w, r, p, status.Code(e.Kind), func(pg *page, d *tokensData) {
			again(pg, d)
			pg.formError(err, "name")
		})
	}
	return h.renderTokens(w, r, p, http.StatusOK, func(_ *page, d *tokensData) { d.New = t })
}

// RevokeToken revokes one of the user's personal access tokens.
func (h *Handler) RevokeToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return errNotFound
	}
	if err := h.svc.DeleteToken(r.Context(), client(r), p, auth.TokenID(id)); err != nil {
		return err
	}
	redirect(w, r, "/settings/tokens?done=token_revoked")
	return nil
}
