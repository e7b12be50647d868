package api

import (
	"net/http"
	"time"

	"github.com/latchkey/latchkey/internal/auth"
)

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name          string `json:"name"`
	ExpiresInDays *int   `json:"expires_in_days"`
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func tokenJSON(t *auth.AccessToken) map[string]any {
	return map[string]any{"id": int64(t.ID), "name": t.Name, "created_at": t.CreatedAt,
		"expires_at": timeOrNil(t.ExpiresAt), "last_used_at": timeOrNil(t.LastUsedAt)}
}

// CreateToken makes a personal access token; its secret is in this answer only.
func (h *Handler) CreateToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var req TokenRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	days := 0
	if req.ExpiresInDays != nil {
		days = *req.ExpiresInDays
		if days == 0 {
			return auth.InvalidInput(map[string]string{"expires_in_days": "must be between 1 and 365; leave it out for no expiry"})
		}
	}
	t, err := h.svc.CreateToken(r.Context(), client(r), p, req.Name, days)
	if err != nil {
		return err
	}
	body := tokenJSON(&t.AccessToken)
	body["token"] = t.Secret.Reveal()
	writeJSON(w, http.StatusCreated, body)
	return nil
}

// Tokens lists the caller's tokens.
func (h *Handler) Tokens(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	list, err := h.svc.Tokens(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for i := range list {
		out = append(out, tokenJSON(&list[i]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

// DeleteToken revokes a token.
func (h *Handler) DeleteToken(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	if err := h.svc.DeleteToken(r.Context(), client(r), p, auth.TokenID(id)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
