package web

import (
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
	"github.com/latchkey/latchkey/internal/qrcode"
	"github.com/latchkey/latchkey/internal/recovery"
	"github.com/latchkey/latchkey/internal/status"
)

// authData is the authentication settings page.
type authData struct {
	MFA         auth.MFAState
	Remaining   int
	Low         bool
	Setup       *setupView // a setup in progress, when MFA is off
	ReauthUntil time.Time
	// Keys are the security keys and passkeys; WebAuthn is false when the server
	// cannot offer them (public-url has an IP address).
	Keys     []keyRow
	WebAuthn bool
}

// setupView is what an authenticator app needs: the QR code and the same details for
// typing in by hand.
type setupView struct {
	QR           template.HTML
	SecretGroups string
	Account      string
	Issuer       string
	Algorithm    string
	Digits       int
	Period       int
	ExpiresAt    time.Time
}

// codesData is the page that shows a new set of recovery codes, once.
type codesData struct {
	Codes    []string
	FileName string
	Again    bool // regenerated rather than first enrolment
}

func (h *Handler) authData(r *http.Request, p *auth.Principal) (*authData, error) {
	st, err := h.svc.MFAStateOf(r.Context(), p)
	if err != nil {
		return nil, err
	}
	d := &authData{MFA: st, Remaining: st.Codes.Remaining, Low: st.Low(), ReauthUntil: h.svc.ReauthUntil(p)}
	d.WebAuthn = h.svc.WebAuthnUnavailable() == ""
	ks, err := h.svc.WebAuthnKeys(r.Context(), p)
	if err != nil {
		return nil, err
	}
	for _, k := range ks {
		d.Keys = append(d.Keys, keyRow{WebAuthnKey: k, Last: len(ks) == 1 && !st.TOTP})
	}
	if !st.TOTP {
		setup, err := h.svc.PendingSetup(r.Context(), p)
		switch {
		case err == nil:
			if d.Setup, err = newSetupView(setup); err != nil {
				return nil, err
			}
		case errors.Is(err, auth.ErrNoPendingSetup):
		default:
			return nil, err
		}
	}
	return d, nil
}

func newSetupView(s *auth.TOTPSetup) (*setupView, error) {
	svg, err := qrcode.SVG(s.URI)
	if err != nil {
		return nil, fmt.Errorf("drawing QR code: %w", err)
	}
	return &setupView{
		// qrcode.SVG builds the markup from module coordinates only: no input text
		// reaches it, so it is safe to inline.
		QR:           template.HTML(svg),
		SecretGroups: groupsOfFour(s.SecretBase32()),
		Account:      s.Account, Issuer: s.Issuer, Algorithm: s.Algorithm,
		Digits: s.Digits, Period: s.Period, ExpiresAt: s.ExpiresAt,
	}, nil
}

// groupsOfFour spaces a base32 secret for reading aloud or typing; apps ignore spaces.
func groupsOfFour(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Authentication shows the authentication settings: password, app, recovery codes.
func (h *Handler) Authentication(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	d, err := h.authData(r, p)
	if err != nil {
		return err
	}
	pg := h.newPage(w, r, "Authentication settings")
	pg.Data = d
	h.render(w, http.StatusOK, "authentication", pg)
	return nil
}

// renderAuthentication shows the settings page again with a problem on one of its forms.
func (h *Handler) renderAuthentication(w http.ResponseWriter, r *http.Request, p *auth.Principal, status int, fill func(*page)) error {
	d, err := h.authData(r, p)
	if err != nil {
		return err
	}
	pg := h.newPage(w, r, "Authentication settings")
	pg.Data = d
	fill(pg)
	h.render(w, status, "authentication", pg)
	return nil
}

// SetupTOTP is "Add multiple-factor authentication": a new secret, shown on the page.
func (h *Handler) SetupTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.svc.SetupTOTP(r.Context(), client(r), p); err != nil {
		return err
	}
	redirect(w, r, "/settings/authentication"+carry("", h.returnTo(r.PostFormValue("rd")))+"#setup")
	return nil
}

// ConfirmTOTP is "Save": a right code turns MFA on and shows the recovery codes once; a
// wrong one is shown next to the Code field and changes nothing.
func (h *Handler) ConfirmTOTP(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	codes, err := h.svc.ConfirmTOTP(r.Context(), client(r), p, strings.TrimSpace(r.PostFormValue("code")))
	if err != nil {
		e := auth.AsError(err)
		if e == nil || (e.Kind != auth.KindInvalidInput && e.Kind != auth.KindInvalidCredentials) {
			return err
		}
		msg := e.Message
		if e.Fields["code"] != "" {
			msg = e.Fields["code"]
		}
		return h.renderAuthentication(w, r, p, http.StatusBadRequest, func(pg *page) {
			pg.Fields["code"] = msg
			pg.Error = "That code did not match. Nothing was changed; check the time on your phone and try the newest code."
		})
	}
	if codes == nil {
		// The app joined a security key: MFA was on, the recovery codes stay.
		redirect(w, r, "/settings/authentication?done=app_added")
		return nil
	}
	h.showCodes(w, r, codes, false)
	return nil
}

func (h *Handler) showCodes(w http.ResponseWriter, r *http.Request, codes []string, again bool) {
	pg := h.newPage(w, r, "Your recovery codes")
	pg.Data = codesData{Codes: codes, FileName: h.svc.RecoveryCodesFileName(), Again: again}
	h.render(w, http.StatusOK, "recovery_codes", pg)
}

// confirmed reports whether the warning's checkbox was ticked: destructive actions need
// it, and the form works without JavaScript.
func confirmed(r *http.Request) bool { return r.PostFormValue("confirm") == "yes" }

// Regenerate replaces the recovery codes once the user ticks the confirmation.
func (h *Handler) Regenerate(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !confirmed(r) {
		return h.renderAuthentication(w, r, p, http.StatusBadRequest, func(pg *page) {
			pg.Fields["confirm_regenerate"] = "Tick the box to confirm that your current codes stop working."
		})
	}
	codes, err := h.svc.RegenerateRecoveryCodes(r.Context(), client(r), p)
	if err != nil {
		return err
	}
	h.showCodes(w, r, codes, true)
	return nil
}

// RemoveMFA turns the second factor off once the user ticks the confirmation.
func (h *Handler) RemoveMFA(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if !confirmed(r) {
		return h.renderAuthentication(w, r, p, http.StatusBadRequest, func(pg *page) {
			pg.Fields["confirm_remove"] = "Tick the box to confirm the removal."
		})
	}
	if err := h.svc.DisableMFA(r.Context(), client(r), p); err != nil {
		return err
	}
	redirect(w, r, "/settings/authentication?done=mfa_removed")
	return nil
}

// shownCode is exactly the form a recovery code is shown in: four groups of four
// lower-case Crockford characters.
var shownCode = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

// DownloadCodes turns the codes on the page into a text file. The server keeps only
// hashes, so the page posts the codes back; each must look exactly like a recovery code
// so that this cannot be used to serve arbitrary text as a download from our origin.
func (h *Handler) DownloadCodes(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	codes := r.PostForm["code"]
	if len(codes) == 0 || len(codes) > recovery.Count {
		return auth.E(auth.KindInvalidInput, "invalid_codes", "There are no recovery codes to download.")
	}
	for _, c := range codes {
		canon, ok := recovery.Normalize(c)
		if !ok || !shownCode.MatchString(c) || recovery.Format(canon) != c {
			return auth.E(auth.KindInvalidInput, "invalid_codes", "Those are not recovery codes.")
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s recovery codes\n", h.opts.SiteName)
	fmt.Fprintf(&b, "Account: %s\n", p.User.Username)
	fmt.Fprintf(&b, "Generated: %s\n\n", time.Now().UTC().Format("2006-01-02"))
	b.WriteString("Each code signs you in once. Keep this file somewhere safe.\n\n")
	for _, c := range codes {
		b.WriteString(c + "\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, h.svc.RecoveryCodesFileName()))
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(b.String()))
	return nil
}

// ChangePassword changes the password from the settings form.
func (h *Handler) ChangePassword(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	err := h.svc.ChangePassword(r.Context(), client(r), p, r.PostFormValue("current_password"), r.PostFormValue("new_password"))
	if err == nil {
		redirect(w, r, "/settings/authentication?done=password_changed")
		return nil
	}
	e := auth.AsError(err)
	if e == nil || (e.Kind != auth.KindInvalidInput && e.Kind != auth.KindInvalidCredentials) {
		return err
	}
	return h.renderAuthentication(w, r, p, status.Code(e.Kind), func(pg *page) {
		if len(e.Fields) > 0 {
			for k, v := range e.Fields {
				pg.Fields[k] = v
			}
		} else {
			pg.Fields["current_password"] = e.Message
		}
	})
}
