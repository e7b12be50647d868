package web

import (
	"net/http"
	"strconv"

	"github.com/latchkey/latchkey/internal/auth"
)

// sessionView is one row of the sessions page.
type sessionView struct {
	auth.Session
	Current bool
}

// Sessions lists the user's signed-in sessions.
func (h *Handler) Sessions(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	list, err := h.svc.Sessions(r.Context(), p)
	if err != nil {
		return err
	}
	rows := make([]sessionView, len(list))
	for i, s := range list {
		rows[i] = sessionView{Session: s, Current: s.ID == p.Session.ID}
	}
	pg := h.newPage(w, r, "Sessions")
	pg.Data = rows
	h.render(w, http.StatusOK, "sessions", pg)
	return nil
}

// RevokeSession ends one of the user's sessions.
func (h *Handler) RevokeSession(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return errNotFound
	}
	if err := h.svc.RevokeSession(r.Context(), client(r), p, auth.SessionID(id)); err != nil {
		return err
	}
	if auth.SessionID(id) == p.Session.ID {
		h.clearSession(w)
		redirect(w, r, "/login?done=signed_out")
		return nil
	}
	redirect(w, r, "/settings/sessions?done=session_revoked")
	return nil
}

// SecurityLog shows the user's latest security events.
func (h *Handler) SecurityLog(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	events, err := h.svc.Events(r.Context(), p, 100)
	if err != nil {
		return err
	}
	pg := h.newPage(w, r, "Security log")
	pg.Data = events
	h.render(w, http.StatusOK, "security_log", pg)
	return nil
}
